#include "accel/data/loader.h"

#include <ATen/ATen.h>

namespace accel::data {

DataLoaderBase::DataLoaderBase(int64_t dataset_size, DataLoaderOptions options)
    : dataset_size_(dataset_size), options_(std::move(options)) {
  ACCEL_CHECK(dataset_size_ >= 0, "DataLoader: dataset size ", dataset_size_, " is negative.");
  ACCEL_CHECK(options_.batch_size() >= 1, "DataLoader: batch_size=", options_.batch_size(), " must be >= 1.");
  ACCEL_CHECK(options_.num_workers() >= 0, "DataLoader: num_workers=", options_.num_workers(),
              " must be >= 0.");
  ACCEL_CHECK(options_.prefetch_factor() >= 1, "DataLoader: prefetch_factor=", options_.prefetch_factor(),
              " must be >= 1.");
  if (options_.sampler()) {
    ACCEL_CHECK(options_.sampler()->size() == dataset_size_, "DataLoader: the sampler yields ",
                options_.sampler()->size(), " indices but the dataset has ", dataset_size_, ".");
  }
}

namespace {

Indices epoch_indices(const DataLoaderOptions& o, int64_t n, uint64_t seed, int64_t epoch) {
  if (o.sampler()) return o.sampler()->indices(epoch);
  if (o.shuffle()) return SeedableRandomSampler(n, seed).indices(epoch);
  return SequentialSampler(n).indices(epoch);
}

}  // namespace

int64_t DataLoaderBase::size() const {
  // Sharding depends only on counts, so a sequential order gives the same number of batches.
  Batches all =
      make_batches(SequentialSampler(dataset_size_).indices(0), options_.batch_size(), options_.drop_last());
  return static_cast<int64_t>(shard_batches(all, options_.batch_size(), shard_).size());
}

int64_t DataLoaderBase::total_batch_size() const {
  return shard_.split_batches ? options_.batch_size() : options_.batch_size() * shard_.world_size;
}

void DataLoaderBase::set_epoch(int64_t epoch) {
  ACCEL_CHECK(!in_iteration_, "DataLoader::set_epoch: cannot change the epoch during an iteration.");
  ACCEL_CHECK(epoch >= 0, "DataLoader::set_epoch: epoch ", epoch, " is negative.");
  epoch_ = epoch;
}

int64_t DataLoaderBase::remainder() const {
  return shard_remainder(dataset_size_, options_.batch_size(), shard_);
}

void DataLoaderBase::skip_first_batches(int64_t n) {
  ACCEL_CHECK(n >= 0, "skip_first_batches: n=", n, " is negative.");
  ACCEL_CHECK(!in_iteration_, "skip_first_batches: call it before the loop, not inside it.");
  skip_ = n;
  position_ = n;  // a pending skip is the position (a save_state now keeps it)
}

void DataLoaderBase::set_shard(const ShardSpec& spec) {
  ACCEL_CHECK(!in_iteration_, "DataLoader: cannot reshard during an iteration.");
  ShardSpec s = spec;
  s.drop_last = options_.drop_last();
  if (s.split_batches && s.world_size > 1) {
    ACCEL_CHECK(options_.batch_size() % s.world_size == 0,
                "split_batches: batch_size=", options_.batch_size(),
                " must be a multiple of the number of processes (", s.world_size,
                "). HINT: change the batch size or turn split_batches off.");
  }
  shard_ = s;
}

void DataLoaderBase::set_device(std::optional<c10::Device> device, bool non_blocking) {
  device_ = device;
  non_blocking_ = non_blocking;
}

DataLoaderBase::State DataLoaderBase::state() const {
  State s;
  s.epoch = epoch_;
  s.position = position_;
  s.world_size = shard_.world_size;
  s.batch_size = options_.batch_size();
  s.seed = seed();
  return s;
}

void DataLoaderBase::load_state(const State& state) {
  ACCEL_CHECK(!in_iteration_, "DataLoader::load_state: cannot restore during an iteration.");
  epoch_ = state.epoch;
  const bool same_layout = state.world_size == shard_.world_size && state.batch_size == options_.batch_size();
  ACCEL_CHECK(same_layout || state.position == 0, "the data loader position (epoch ", state.epoch, ", batch ",
              state.position, ") was saved with ", state.world_size, " processes and batch size ",
              state.batch_size, " and cannot be transferred to ", shard_.world_size,
              " processes and batch size ", options_.batch_size(),
              ". HINT: weights and optimizer state load fine; restart the epoch "
              "(set_epoch) or resume with the original layout.");
  skip_ = state.position;
  position_ = state.position;  // not 0: a save_state before the next loop must keep it
}

Batches DataLoaderBase::begin_epoch() {
  ACCEL_CHECK(!in_iteration_,
              "DataLoader: a second iteration started while one is active; finish (or break out "
              "of) the first loop before starting another over the same loader.");
  Indices idx = epoch_indices(options_, dataset_size_, seed(), epoch_);
  Batches all = make_batches(idx, options_.batch_size(), options_.drop_last());
  Batches mine = shard_batches(all, options_.batch_size(), shard_);
  const int64_t skip = std::min<int64_t>(skip_, static_cast<int64_t>(mine.size()));
  position_ = skip;
  skip_ = 0;
  end_of_dataloader_ = false;
  in_iteration_ = true;
  if (hook_) hook_(this, Event::kBegin);
  return Batches(mine.begin() + skip, mine.end());
}

void DataLoaderBase::on_yield(bool last) {
  ++position_;
  end_of_dataloader_ = last;
  if (hook_) hook_(this, Event::kBatch);
}

void DataLoaderBase::on_end(bool completed) {
  in_iteration_ = false;
  end_of_dataloader_ = false;
  if (completed) {
    ++epoch_;
    position_ = 0;
  }
  if (hook_) hook_(this, Event::kEnd);
}

std::shared_ptr<DataLoader<std::vector<at::Tensor>>> make_tensor_loader(std::vector<at::Tensor> tensors,
                                                                        DataLoaderOptions options) {
  ACCEL_CHECK(!tensors.empty(), "make_tensor_loader: no tensors given.");
  const int64_t n = tensors[0].size(0);
  for (size_t i = 1; i < tensors.size(); ++i) {
    ACCEL_CHECK(tensors[i].size(0) == n, "make_tensor_loader: tensor ", i, " has ", tensors[i].size(0),
                " rows but tensor 0 has ", n, ".");
  }
  auto collate = [tensors](const Indices& idx) {
    at::Tensor index =
        at::from_blob(const_cast<int64_t*>(idx.data()), {static_cast<int64_t>(idx.size())}, at::kLong);
    std::vector<at::Tensor> out;
    out.reserve(tensors.size());
    for (const auto& t : tensors) out.push_back(t.index_select(0, index));
    return out;
  };
  return std::make_shared<DataLoader<std::vector<at::Tensor>>>(n, collate, std::move(options));
}

}  // namespace accel::data
