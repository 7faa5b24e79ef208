// GradientSynchronizer: DDP's gradient averaging for accel. Parameters are packed into buckets
// (plan_buckets: reverse registration order, the first bucket small, the others
// `bucket_cap_mb`); during backward each parameter's post-accumulation hook copies its gradient
// into its bucket, and a bucket whose gradients are all ready is all-reduced asynchronously at
// once (buckets are launched in order, identically on every rank), so communication overlaps the
// rest of backward. At the end of backward every `.grad` becomes a view of its bucket (DDP's
// gradient_as_bucket_view: no second copy of the gradients is kept).
//
// Step modes (set by the Accelerator): with `communicate` false (no_sync, accumulation
// micro-steps) nothing is sent. `.grad` is a view of its bucket slot after every backward; with
// `optimizer_steps` false the slot also counts as set aside, so a zero_grad() between micro-steps
// (for example through a plain torch::optim::Optimizer&, which drops `.grad`) loses nothing: the
// next backward adds its gradients to the slot.
#pragma once

#include "accel/core/options.h"
#include "accel/distributed/grad_hooks.h"
#include "accel/distributed/process_group.h"

#include <ATen/core/Tensor.h>

#include <memory>
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

  /// communicate=false: the next backward passes only accumulate locally. optimizer_steps=false:
  /// their gradients are set aside (see the header comment).
  void set_mode(bool communicate, bool optimizer_steps);
  bool communicate() const { return communicate_; }
  bool optimizer_steps() const { return optimizer_steps_; }

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

 private:
  struct Bucket;
  void on_grad_ready(size_t param_index);
  void on_backward_end();
  void launch_ready_buckets();
  void launch(size_t bucket_index);
  at::Tensor slot(size_t param_index) const;

  std::shared_ptr<ProcessGroup> group_;
  DDPOptions options_;
  std::vector<at::Tensor> params_;
  std::vector<std::string> names_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, int64_t>> slot_;  // param -> (bucket, offset)
  std::vector<char> pending_;                     // the slot holds gradients set aside on earlier micro-steps
  bool communicate_ = true;
  bool optimizer_steps_ = true;
  // Mode of the backward in flight (fixed at its first hook).
  bool bw_communicate_ = true;
  bool bw_optimizer_steps_ = true;
  bool started_ = false;
  size_t next_launch_ = 0;
  bool warned_unused_ = false;
  Stats stats_;
  std::unique_ptr<GradReadyHooks> hooks_;  // last: destroyed first
};

}  // namespace accel::distributed
