// GradientSynchronizer: DDP's gradient averaging for accel. Parameters are packed into buckets
// (reverse registration order; the first bucket small, the others `bucket_cap_mb`); during
// backward each parameter's post-accumulation hook copies its gradient into its bucket, and a
// bucket whose gradients are all ready is all-reduced asynchronously at once (buckets are
// launched in order, identically on every rank), so communication overlaps the rest of
// backward. At the end of backward the averages are written back into `.grad`. While
// require_sync is false (no_sync / accumulation micro-steps) nothing is communicated.
#pragma once

#include "accel/core/options.h"
#include "accel/distributed/process_group.h"

#include <ATen/core/Tensor.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace accel::distributed {

class GradientSynchronizer {
 public:
  /// `params`: the model's parameters in registration order (those without requires_grad are
  /// skipped); `names` (same length, may be empty) name them in messages.
  GradientSynchronizer(std::shared_ptr<ProcessGroup> group, std::vector<at::Tensor> params,
                       std::vector<std::string> names, const DDPOptions& options);
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  /// false: the next backward passes only accumulate locally.
  void set_require_sync(bool sync) { require_sync_ = sync; }
  bool require_sync() const { return require_sync_; }

  /// Number of buckets and their sizes in elements (bucket 0 is reduced first).
  std::vector<int64_t> bucket_sizes() const;

  /// Timing of the last synchronised backward: seconds spent waiting for all-reduces after
  /// backward finished (the part not hidden under backward) and total all-reduce seconds.
  struct Stats {
    double exposed_wait_s = 0;
    double launch_to_done_s = 0;
    int64_t syncs = 0;
  };
  Stats stats() const;

  /// Runs at the end of a synchronised backward (the autograd engine calls it); public for tests.
  void finalize();

 private:
  struct Bucket;
  struct Shared;
  void on_grad_ready(size_t param_index);
  void launch_ready_buckets();
  void launch(size_t bucket_index);

  std::shared_ptr<ProcessGroup> group_;
  DDPOptions options_;
  std::shared_ptr<Shared> shared_;
  std::vector<at::Tensor> params_;
  std::vector<std::string> names_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, int64_t>> slot_;  // param -> (bucket, offset)
  std::atomic<bool> require_sync_{true};
  std::mutex mu_;
  bool in_backward_ = false;
  size_t next_launch_ = 0;
  std::vector<char> ready_;
  bool warned_unused_ = false;
  Stats stats_;
};

}  // namespace accel::distributed
