// unit_forward: the boundary of a unit of sharding and activation checkpointing. LibTorch modules
// have no forward hooks, so a module that can be a unit runs its forward through unit_forward:
//
//   torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask) {
//     return accel::unit_forward(*this, [&](const torch::Tensor& h) {
//       torch::Tensor a = attention(h, mask);  // (B, T, H)
//       return output(intermediate(a), a);     // (B, T, H)
//     }, hidden);
//   }
//
// With no prepared model claiming the module (one process, plain DDP, or a module the wrap policy
// did not pick) it just calls the function. Under FULL_SHARD / HYBRID_SHARD the unit's parameters
// are gathered before the call (the next unit's gather is started while this one computes), freed
// after it (reshard_after_forward) and gathered again before the unit's backward; with activation
// checkpointing the function runs without keeping activations and is run again in backward.
//
// Contract for the function: every tensor it reads comes in as an argument (`inputs`; masks too),
// it captures nothing by reference that dies with the call (capture `this`), and it returns one
// tensor: with activation checkpointing it is called again during backward, from a copy. It uses
// the unit's parameters only inside the call (tied weights belong to one unit).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

namespace accel {

namespace detail {

/// What runs a unit's forward: implemented by the strategies of prepared models.
class UnitRunner {
 public:
  virtual ~UnitRunner() = default;
  virtual at::Tensor run_unit(torch::nn::Module& module,
                              const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                              const std::vector<at::Tensor>& inputs) = 0;
};

/// The runner registered for `module`, or null (the common, fast case: a relaxed atomic check).
UnitRunner* unit_runner_for(const torch::nn::Module* module);
/// Registers `runner` for each module in `modules` (replacing any earlier one); the
/// registration ends when the returned handle is destroyed.
std::shared_ptr<void> register_unit_runner(const std::vector<const torch::nn::Module*>& modules,
                                           std::shared_ptr<UnitRunner> runner);

/// Runs `fn(inputs)` without keeping activations; in backward, calls `before_recompute` (which
/// may gather parameters), replays the forward's random and autocast state, runs `fn` again and
/// returns the gradients of the inputs and of `params` (so they accumulate in the outer backward).
at::Tensor checkpointed_call(const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                             const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& params,
                             std::function<void()> before_recompute);

template <typename Fn, size_t... I>
at::Tensor call_unpacked(Fn& fn, const std::vector<at::Tensor>& xs, std::index_sequence<I...>) {
  return fn(xs[I]...);
}

}  // namespace detail

/// Runs `fn(inputs...)` as the forward of unit `module` (see the header comment).
template <typename Fn, typename... Tensors>
at::Tensor unit_forward(torch::nn::Module& module, Fn&& fn, const Tensors&... inputs) {
  static_assert((std::is_convertible_v<const Tensors&, const at::Tensor&> && ...),
                "accel::unit_forward: the inputs after the function must be tensors");
  detail::UnitRunner* runner = detail::unit_runner_for(&module);
  if (runner == nullptr) return fn(inputs...);
  std::function<at::Tensor(const std::vector<at::Tensor>&)> erased =
      [f = std::decay_t<Fn>(std::forward<Fn>(fn))](const std::vector<at::Tensor>& xs) mutable {
        return detail::call_unpacked(f, xs, std::index_sequence_for<Tensors...>{});
      };
  return runner->run_unit(module, erased, std::vector<at::Tensor>{at::Tensor(inputs)...});
}

}  // namespace accel
