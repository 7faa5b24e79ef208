// DataLoader: batches of a dataset for a training loop, with a seedable shuffle (same order on
// every rank, reseeded per epoch), per-rank sharding with Accelerate's semantics (set by
// Accelerator::prepare), background collation threads, device transfer, a one-batch look-ahead
// (so "this is the last batch" is known while it is processed) and a resumable position.
//
//   auto loader = accel::data::make_loader(n, [&](const Indices& i) { return collate(i); },
//                                          DataLoaderOptions(32).shuffle(true));
//   for (auto& batch : *loader) { ... }
// LibTorch datasets (torch::data, with their .map() transforms) go through make_dataset_loader,
// or straight into Accelerator::prepare(dataset, options).
#pragma once

#include "accel/core/error.h"
#include "accel/data/device.h"
#include "accel/data/sampler.h"

#include <torch/arg.h>

#include <atomic>
#include <concepts>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace accel::data {

struct DataLoaderOptions {
  /* implicit */ DataLoaderOptions(int64_t batch_size) : batch_size_(batch_size) {}
  /// Samples per batch (per process unless the Accelerator splits batches). Required, >= 1.
  TORCH_ARG(int64_t, batch_size);
  /// Shuffle with a SeedableRandomSampler each epoch. Default false.
  TORCH_ARG(bool, shuffle) = false;
  /// Drop the last incomplete batch. Default false.
  TORCH_ARG(bool, drop_last) = false;
  /// Shuffle seed. Default: the Accelerator's data seed when prepared, else 0.
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  /// Background threads that collate batches ahead of the loop. Default 0 (collate inline).
  TORCH_ARG(int64_t, num_workers) = 0;
  /// Batches buffered ahead per worker. Default 2.
  TORCH_ARG(int64_t, prefetch_factor) = 2;
  /// Custom index order (overrides `shuffle`), e.g. a LengthGroupedSampler.
  TORCH_ARG(std::shared_ptr<Sampler>, sampler) = nullptr;
};

/// The type-independent part of a loader: order, sharding, epoch and position.
class DataLoaderBase {
 public:
  DataLoaderBase(int64_t dataset_size, DataLoaderOptions options);
  virtual ~DataLoaderBase() = default;
  DataLoaderBase(const DataLoaderBase&) = delete;
  DataLoaderBase& operator=(const DataLoaderBase&) = delete;

  int64_t dataset_size() const { return dataset_size_; }
  const DataLoaderOptions& options() const { return options_; }
  /// Batches this process yields per epoch (after sharding).
  int64_t size() const;
  /// Samples in one optimizer-step's global batch: batch_size x world size (batch_size when split).
  int64_t total_batch_size() const;

  /// Epoch counter: seeds the shuffle (seed + epoch); advanced when an iteration completes.
  int64_t epoch() const { return epoch_; }
  void set_epoch(int64_t epoch);
  /// Batches yielded so far in the current epoch (skipped ones included).
  int64_t position() const { return position_; }
  /// True while the last batch of the epoch is being processed.
  bool end_of_dataloader() const { return end_of_dataloader_; }
  /// Real samples in the last global batch (Accelerate's GradientState.remainder); 0 if even.
  int64_t remainder() const;
  bool in_iteration() const { return in_iteration_; }

  /// The next iteration starts at batch `n` of the epoch (no data is loaded for skipped batches).
  void skip_first_batches(int64_t n);

  /// Sharding and placement, set by Accelerator::prepare.
  void set_shard(const ShardSpec& spec);
  const ShardSpec& shard() const { return shard_; }
  void set_device(std::optional<c10::Device> device, bool non_blocking);
  std::optional<c10::Device> device() const { return device_; }
  /// Seed used when the options give none.
  void set_default_seed(uint64_t seed) { default_seed_ = seed; }
  uint64_t seed() const { return options_.seed().value_or(default_seed_); }

  /// Resumable position for checkpoints.
  struct State {
    int64_t epoch = 0;
    int64_t position = 0;
    int world_size = 1;
    int64_t batch_size = 0;
    uint64_t seed = 0;
  };
  State state() const;
  /// Restores a position; when the world size or batch size differs the data position cannot be
  /// transferred: throws accel::Error saying so (weights and optimizer state are unaffected).
  void load_state(const State& state);

  /// What an activity hook is told: an iteration starts, a batch is handed to the loop, the
  /// iteration ends (the Accelerator keeps the stack of active loaders for accumulate() and
  /// gather_for_metrics(), and starts each training step's autocast on a new batch).
  enum class Event { kBegin, kBatch, kEnd };
  using ActivityHook = std::function<void(DataLoaderBase*, Event)>;
  void set_activity_hook(ActivityHook hook) { hook_ = std::move(hook); }

 protected:
  /// This process's batches of the current epoch, from the current position on.
  Batches begin_epoch();
  void on_yield(bool last);
  void on_end(bool completed);

 private:
  int64_t dataset_size_;
  DataLoaderOptions options_;
  ShardSpec shard_;
  std::optional<c10::Device> device_;
  bool non_blocking_ = false;
  uint64_t default_seed_ = 0;
  int64_t epoch_ = 0;
  int64_t position_ = 0;
  int64_t skip_ = 0;
  bool end_of_dataloader_ = false;
  bool in_iteration_ = false;
  ActivityHook hook_;

 protected:
  bool non_blocking() const { return non_blocking_; }
};

/// A loader of `Batch` values built by a collate function from a batch's sample indices.
template <typename Batch>
class DataLoader : public DataLoaderBase {
 public:
  using CollateFn = std::function<Batch(const Indices& indices)>;

  DataLoader(int64_t dataset_size, CollateFn collate, DataLoaderOptions options)
      : DataLoaderBase(dataset_size, std::move(options)), collate_(std::move(collate)) {
    ACCEL_CHECK(collate_, "DataLoader: the collate function is empty.");
  }

  class Iterator;
  Iterator begin() {
    auto run = std::make_shared<Run>(this);
    run->start();  // after construction, so an error in the first batches still joins the threads
    return Iterator(std::move(run));
  }
  Iterator end() { return Iterator(nullptr); }

 private:
  // One pass over the epoch: owns the prefetch threads; ends the iteration when destroyed.
  class Run {
   public:
    explicit Run(DataLoader* loader) : loader_(loader), batches_(loader->begin_epoch()) {}
    void start() {
      const int64_t workers = loader_->options().num_workers();
      window_ = static_cast<size_t>(std::max<int64_t>(1, workers * loader_->options().prefetch_factor()));
      for (int64_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
      if (!batches_.empty()) current_ = fetch(0);
      if (batches_.size() > 1) lookahead_ = fetch(1);
      next_ = std::min<size_t>(2, batches_.size());
      if (current_) yield();
    }
    ~Run() {
      {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      for (auto& t : threads_) t.join();
      // An epoch whose last batch was handed out is complete even if the loop broke right after it.
      loader_->on_end(completed_ || yielded_last_);
    }
    bool done() const { return !current_.has_value(); }
    Batch& current() { return *current_; }
    void advance() {
      current_ = std::move(lookahead_);
      lookahead_.reset();
      if (next_ < batches_.size()) lookahead_ = fetch(next_++);
      if (current_) {
        yield();
      } else {
        completed_ = true;
      }
    }

   private:
    void yield() {
      const bool last = !lookahead_.has_value();
      yielded_last_ = yielded_last_ || last;
      loader_->on_yield(last);
    }
    Batch place(Batch b) {
      if (auto d = loader_->device()) return send_to_device(b, *d, loader_->non_blocking());
      return b;
    }
    Batch fetch(size_t i) {
      if (threads_.empty()) return place(loader_->collate_(batches_[i]));
      std::unique_lock<std::mutex> lk(mu_);
      consumed_ = i;
      cv_.notify_all();
      // A failed batch is reported when the loop reaches it, not earlier.
      cv_.wait(lk, [&] { return ready_.count(i) || (error_ && error_job_ == i); });
      if (!ready_.count(i)) std::rethrow_exception(error_);
      Batch b = std::move(ready_.at(i));
      ready_.erase(i);
      lk.unlock();
      cv_.notify_all();
      return place(std::move(b));
    }
    void work() {
      for (;;) {
        size_t job;
        {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(lk, [&] {
            return stop_ || (claimed_ < batches_.size() && claimed_ < consumed_ + window_ + 1);
          });
          if (stop_ || claimed_ >= batches_.size()) return;
          job = claimed_++;
        }
        try {
          Batch b = loader_->collate_(batches_[job]);
          std::lock_guard<std::mutex> g(mu_);
          ready_.emplace(job, std::move(b));
        } catch (...) {
          std::lock_guard<std::mutex> g(mu_);
          if (!error_ || job < error_job_) {
            error_ = std::current_exception();
            error_job_ = job;
          }
        }
        cv_.notify_all();
      }
    }

    DataLoader* loader_;
    Batches batches_;
    std::optional<Batch> current_;
    std::optional<Batch> lookahead_;
    size_t next_ = 0;
    bool completed_ = false;
    bool yielded_last_ = false;
    // Prefetch state.
    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::map<size_t, Batch> ready_;
    size_t claimed_ = 0;
    size_t consumed_ = 0;
    size_t window_ = 1;
    bool stop_ = false;
    std::exception_ptr error_;
    size_t error_job_ = 0;
  };

 public:
  class Iterator {
   public:
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    explicit Iterator(std::shared_ptr<Run> run) : run_(std::move(run)) {}
    Batch& operator*() const { return run_->current(); }
    Batch* operator->() const { return &run_->current(); }
    Iterator& operator++() {
      run_->advance();
      return *this;
    }
    bool operator==(const Iterator& other) const { return at_end() == other.at_end(); }
    bool operator!=(const Iterator& other) const { return !(*this == other); }

   private:
    bool at_end() const { return !run_ || run_->done(); }
    std::shared_ptr<Run> run_;
  };

 private:
  CollateFn collate_;
};

/// A loader over a collate function of indices, with the batch type given:
/// `make_loader<MyBatch>(n, collate, DataLoaderOptions(32))`.
template <typename Batch>
std::shared_ptr<DataLoader<Batch>> make_loader(int64_t dataset_size,
                                               std::function<Batch(const Indices&)> collate,
                                               DataLoaderOptions options) {
  return std::make_shared<DataLoader<Batch>>(dataset_size, std::move(collate), std::move(options));
}

/// The same with the batch type deduced from the collate function (a lambda):
/// `make_loader(n, [&](const Indices& i) { return make_batch(i); }, DataLoaderOptions(32))`.
template <typename Collate>
requires std::invocable<Collate&, const Indices&>
auto make_loader(int64_t dataset_size, Collate collate, DataLoaderOptions options) {
  using Batch = std::decay_t<std::invoke_result_t<Collate&, const Indices&>>;
  return std::make_shared<DataLoader<Batch>>(
      dataset_size, std::function<Batch(const Indices&)>(std::move(collate)), std::move(options));
}

/// A loader over a LibTorch dataset (torch::data::datasets::Dataset or BatchDataset, with its
/// `.map(...)` transforms): each batch is `dataset.get_batch(indices)` (a Stack<> transform makes
/// it one torch::data::Example), read from a copy of the dataset, as LibTorch's loader gives each
/// worker its own copy. The dataset must know its size.
template <typename Dataset>
requires requires(Dataset& d, std::vector<size_t> i) {
  d.get_batch(i);
  { d.size() } -> std::convertible_to<std::optional<size_t>>;
}
auto make_dataset_loader(Dataset dataset, DataLoaderOptions options) {
  using Batch =
      std::decay_t<decltype(std::declval<Dataset&>().get_batch(std::declval<std::vector<size_t>>()))>;
  const std::optional<size_t> size = dataset.size();
  ACCEL_CHECK(
      size.has_value(),
      "make_dataset_loader: the dataset does not know its size (size() returned nullopt). HINT: accel "
      "shards datasets by index; give the dataset a size.");
  auto shared = std::make_shared<const Dataset>(std::move(dataset));
  std::function<Batch(const Indices&)> collate = [shared](const Indices& idx) {
    Dataset local = *shared;
    return local.get_batch(std::vector<size_t>(idx.begin(), idx.end()));
  };
  return std::make_shared<DataLoader<Batch>>(static_cast<int64_t>(*size), std::move(collate),
                                             std::move(options));
}

/// A loader over tensors sharing their first dimension (like torch's TensorDataset): each batch
/// is the vector of the tensors' rows at the batch's indices.
std::shared_ptr<DataLoader<std::vector<at::Tensor>>> make_tensor_loader(std::vector<at::Tensor> tensors,
                                                                        DataLoaderOptions options);

}  // namespace accel::data
