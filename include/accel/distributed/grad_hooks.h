// The pieces every gradient strategy shares: hooks that fire when a parameter's gradient is
// complete in a backward pass (after autograd accumulated it into `.grad`), with one callback at
// the end of that backward, and the bucket planner that groups parameters for communication.
// GradientSynchronizer (all-reduce, DDP) and ShardedEngine (reduce-scatter, ZeRO/FSDP) are built
// on them.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace accel::distributed {

/// Post-accumulation hooks on a list of leaf parameters. `on_ready(k)` runs once per backward
/// for parameter k, on the thread running the backward, once its gradient is complete (a
/// parameter used several times fires once). `on_finish()` runs once at the end of every
/// backward in which at least one hook fired (queued on the autograd engine). Both run with
/// the hooks' mutex held. The hooks stay attached while this object lives; afterwards they do
/// nothing.
class GradReadyHooks {
 public:
  GradReadyHooks(std::vector<at::Tensor> params, std::function<void(size_t)> on_ready,
                 std::function<void()> on_finish);
  ~GradReadyHooks();
  GradReadyHooks(const GradReadyHooks&) = delete;
  GradReadyHooks& operator=(const GradReadyHooks&) = delete;

  /// Whether parameter k fired in the current (or last) backward.
  bool fired(size_t k) const { return fired_[k] != 0; }
  /// True between the first hook of a backward and its end.
  bool in_backward() const { return in_backward_; }
  size_t size() const { return params_.size(); }
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  struct Shared;
  void ready(size_t k);
  void finish();

  std::vector<at::Tensor> params_;
  std::function<void(size_t)> on_ready_;
  std::function<void()> on_finish_;
  std::shared_ptr<Shared> shared_;
  std::vector<char> fired_;
  bool in_backward_ = false;
};

/// A tensor of `sizes` (contiguous) over `flat`'s memory from element `offset` on, that autograd
/// does not see as a view, so that it can be a `.grad` LibTorch's zero_grad() may detach_().
at::Tensor alias_of(const at::Tensor& flat, int64_t offset, at::IntArrayRef sizes);

/// Groups parameter indices into buckets for communication: reverse registration order (the
/// order gradients arrive in), the first bucket up to `first_cap_bytes`, the others up to
/// `cap_bytes` (sizes in the parameters' own dtype), a new bucket whenever dtype or device changes.
std::vector<std::vector<size_t>> plan_buckets(const std::vector<at::Tensor>& params, double first_cap_bytes,
                                              double cap_bytes);

}  // namespace accel::distributed
