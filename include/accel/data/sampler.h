// Index samplers and Accelerate's per-rank batch sharding. Everything here is a pure function
// of (dataset size, epoch, seed, rank, world size), so every rank computes the same global order
// without communication, and tests loop over ranks in one process.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace accel::data {

using Indices = std::vector<int64_t>;
using Batches = std::vector<Indices>;

/// Yields the dataset's indices for one epoch. Implementations must be deterministic in
/// (epoch) so that every rank sees the same order.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// Number of indices per epoch.
  virtual int64_t size() const = 0;
  /// The indices of `epoch`.
  virtual Indices indices(int64_t epoch) const = 0;
};

/// 0, 1, ..., n-1.
class SequentialSampler : public Sampler {
 public:
  explicit SequentialSampler(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  Indices indices(int64_t epoch) const override;

 private:
  int64_t n_;
};

/// A permutation drawn from a torch CPU generator seeded with seed + epoch (Accelerate's
/// SeedableRandomSampler), so resume and every rank reproduce it exactly.
class SeedableRandomSampler : public Sampler {
 public:
  SeedableRandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t size() const override { return n_; }
  Indices indices(int64_t epoch) const override;
  uint64_t seed() const { return seed_; }

 private:
  int64_t n_;
  uint64_t seed_;
};

/// Groups samples of similar length (transformers' LengthGroupedSampler): a seeded permutation is
/// cut into mega-batches of `mega_batch_mult * batch_size` indices, each sorted by length
/// (longest first), so batches need little padding while the order stays random. The longest
/// sample's batch goes first (so an out-of-memory shows up at once).
class LengthGroupedSampler : public Sampler {
 public:
  LengthGroupedSampler(std::vector<int64_t> lengths, int64_t batch_size, uint64_t seed,
                       int64_t mega_batch_mult = 50);
  int64_t size() const override { return static_cast<int64_t>(lengths_.size()); }
  Indices indices(int64_t epoch) const override;

 private:
  std::vector<int64_t> lengths_;
  int64_t batch_size_;
  uint64_t seed_;
  int64_t mega_batch_mult_;
};

/// Cuts `indices` into batches of `batch_size` (the last one shorter unless drop_last).
Batches make_batches(const Indices& indices, int64_t batch_size, bool drop_last);

/// How one rank takes its share of the global batches (Accelerate's BatchSamplerShard).
struct ShardSpec {
  int rank = 0;
  int world_size = 1;
  /// false: batch i goes to rank i mod N; true: every batch is cut into N equal slices.
  bool split_batches = false;
  /// Complete the last round with indices from the start of the epoch.
  bool even_batches = true;
  /// The original loader's drop_last.
  bool drop_last = false;
};

/// This rank's batches for one epoch, given the global `batches` (from make_batches with the
/// loader's batch size and drop_last). With split_batches, `batch_size` must divide by the world
/// size. Golden cases are in Accelerate's tests/test_data_loader.py.
Batches shard_batches(const Batches& batches, int64_t batch_size, const ShardSpec& spec);

/// Samples of the last global batch that are real (not recycled), as Accelerate's
/// GradientState.remainder: dataset_size mod total_batch_size (0 with drop_last).
int64_t shard_remainder(int64_t dataset_size, int64_t batch_size, const ShardSpec& spec);

}  // namespace accel::data
