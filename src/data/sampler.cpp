#include "accel/data/sampler.h"

#include "accel/core/error.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <numeric>

namespace accel::data {

Indices SequentialSampler::indices(int64_t /*epoch*/) const {
  Indices out(static_cast<size_t>(n_));
  std::iota(out.begin(), out.end(), int64_t{0});
  return out;
}

namespace {

Indices seeded_permutation(int64_t n, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor perm = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong));
  const int64_t* p = perm.data_ptr<int64_t>();
  return Indices(p, p + n);
}

}  // namespace

Indices SeedableRandomSampler::indices(int64_t epoch) const {
  return seeded_permutation(n_, seed_ + static_cast<uint64_t>(epoch));
}

LengthGroupedSampler::LengthGroupedSampler(std::vector<int64_t> lengths, int64_t batch_size,
                                           uint64_t seed, int64_t mega_batch_mult)
    : lengths_(std::move(lengths)),
      batch_size_(batch_size),
      seed_(seed),
      mega_batch_mult_(mega_batch_mult) {
  ACCEL_CHECK(batch_size_ >= 1, "LengthGroupedSampler: batch_size=", batch_size_, " must be >= 1.");
  ACCEL_CHECK(mega_batch_mult_ >= 1, "LengthGroupedSampler: mega_batch_mult=", mega_batch_mult_,
              " must be >= 1.");
}

Indices LengthGroupedSampler::indices(int64_t epoch) const {
  const int64_t n = size();
  Indices perm = seeded_permutation(n, seed_ + static_cast<uint64_t>(epoch));
  const int64_t mega = batch_size_ * mega_batch_mult_;
  std::vector<Indices> megas;
  for (int64_t start = 0; start < n; start += mega) {
    Indices m(perm.begin() + start, perm.begin() + std::min(n, start + mega));
    std::stable_sort(m.begin(), m.end(),
                     [&](int64_t a, int64_t b) { return lengths_[a] > lengths_[b]; });
    megas.push_back(std::move(m));
  }
  if (megas.empty()) return {};
  // Move the batch holding the longest sample to the front.
  size_t best_mega = 0;
  int64_t best_len = -1;
  for (size_t i = 0; i < megas.size(); ++i) {
    if (lengths_[megas[i][0]] > best_len) {
      best_len = lengths_[megas[i][0]];
      best_mega = i;
    }
  }
  if (best_mega != 0) {
    const int64_t k = std::min<int64_t>(batch_size_, static_cast<int64_t>(megas[0].size()));
    const int64_t kb = std::min<int64_t>(batch_size_, static_cast<int64_t>(megas[best_mega].size()));
    if (k == kb) {
      std::swap_ranges(megas[0].begin(), megas[0].begin() + k, megas[best_mega].begin());
    }
  }
  Indices out;
  out.reserve(static_cast<size_t>(n));
  for (auto& m : megas) out.insert(out.end(), m.begin(), m.end());
  return out;
}

Batches make_batches(const Indices& indices, int64_t batch_size, bool drop_last) {
  ACCEL_CHECK(batch_size >= 1, "batch_size=", batch_size, " must be >= 1.");
  Batches out;
  const int64_t n = static_cast<int64_t>(indices.size());
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    if (end - start < batch_size && drop_last) break;
    out.emplace_back(indices.begin() + start, indices.begin() + end);
  }
  return out;
}

namespace {

Batches shard_no_split(const Batches& batches, int64_t batch_size, const ShardSpec& s) {
  const int64_t world = s.world_size;
  Batches out;
  Indices initial;
  Indices pending;
  int64_t idx = 0;
  Indices last;
  for (const auto& batch : batches) {
    if (!s.drop_last && idx < world) initial.insert(initial.end(), batch.begin(), batch.end());
    if (idx % world == s.rank) pending = batch;
    if (idx % world == world - 1 && static_cast<int64_t>(batch.size()) == batch_size) {
      out.push_back(pending);
      pending.clear();
    }
    last = batch;
    ++idx;
  }
  if (s.drop_last || initial.empty()) return out;
  if (!s.even_batches) {
    if (!pending.empty()) out.push_back(pending);
    return out;
  }
  if (static_cast<int64_t>(pending.size()) == batch_size) out.push_back(pending);
  while (static_cast<int64_t>(initial.size()) < world * batch_size) {
    Indices copy = initial;
    initial.insert(initial.end(), copy.begin(), copy.end());
  }
  // `idx` is one past the last batch; step back onto it to mirror the reference loop.
  --idx;
  Indices batch = last;
  if (static_cast<int64_t>(batch.size()) == batch_size) {
    batch.clear();
    ++idx;
  }
  int64_t cycle = 0;
  while (idx % world != 0 || !batch.empty()) {
    const int64_t end = cycle + batch_size - static_cast<int64_t>(batch.size());
    batch.insert(batch.end(), initial.begin() + cycle, initial.begin() + end);
    if (idx % world == s.rank) out.push_back(batch);
    cycle = end;
    batch.clear();
    ++idx;
  }
  return out;
}

Batches shard_split(const Batches& batches, int64_t batch_size, const ShardSpec& s) {
  ACCEL_CHECK(batch_size % s.world_size == 0, "split_batches: batch_size=", batch_size,
              " must be a multiple of the number of processes (", s.world_size,
              "). HINT: change the batch size or turn split_batches off.");
  const int64_t len = batch_size / s.world_size;
  const int64_t lo = len * s.rank;
  Batches out;
  Indices initial;
  for (size_t i = 0; i < batches.size(); ++i) {
    const auto& b = batches[i];
    if (i == 0) initial = b;
    if (static_cast<int64_t>(b.size()) == batch_size) out.emplace_back(b.begin() + lo, b.begin() + lo + len);
  }
  if (batches.empty() || s.drop_last) return out;
  const Indices& last = batches.back();
  if (static_cast<int64_t>(last.size()) >= batch_size) return out;
  if (!s.even_batches) {
    if (static_cast<int64_t>(last.size()) > lo) {
      out.emplace_back(last.begin() + lo,
                       last.begin() + std::min<int64_t>(lo + len, static_cast<int64_t>(last.size())));
    }
    return out;
  }
  while (static_cast<int64_t>(initial.size()) < batch_size) {
    Indices copy = initial;
    initial.insert(initial.end(), copy.begin(), copy.end());
  }
  Indices padded = last;
  padded.insert(padded.end(), initial.begin(), initial.end());
  out.emplace_back(padded.begin() + lo, padded.begin() + lo + len);
  return out;
}

}  // namespace

Batches shard_batches(const Batches& batches, int64_t batch_size, const ShardSpec& spec) {
  ACCEL_CHECK(spec.world_size >= 1 && spec.rank >= 0 && spec.rank < spec.world_size,
              "shard_batches: rank ", spec.rank, " is not in [0, ", spec.world_size, ").");
  if (spec.world_size == 1) return batches;
  return spec.split_batches ? shard_split(batches, batch_size, spec)
                            : shard_no_split(batches, batch_size, spec);
}

int64_t shard_remainder(int64_t dataset_size, int64_t batch_size, const ShardSpec& spec) {
  if (spec.drop_last) return 0;
  const int64_t total = spec.split_batches ? batch_size : batch_size * spec.world_size;
  return dataset_size % total;
}

}  // namespace accel::data
