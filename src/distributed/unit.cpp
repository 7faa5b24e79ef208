#include "accel/distributed/unit.h"


#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/ivalue.h>
#include <torch/autograd.h>
#include <torch/custom_class.h>
#include <torch/torch.h>

#include <atomic>
#include <map>
#include <shared_mutex>

namespace accel {
namespace detail {

namespace {

struct Registry {
  std::shared_mutex mu;
  std::map<const torch::nn::Module*, std::weak_ptr<UnitRunner>> runners;
  std::atomic<int64_t> count{0};
};

Registry& registry() {
  static auto* r = new Registry();  // never destroyed: modules may outlive static destruction order
  return *r;
}

}  // namespace

UnitRunner* unit_runner_for(const torch::nn::Module* module) {
  Registry& r = registry();
  if (r.count.load(std::memory_order_relaxed) == 0) return nullptr;
  std::shared_lock<std::shared_mutex> lock(r.mu);
  auto it = r.runners.find(module);
  if (it == r.runners.end()) return nullptr;
  // The registration handle keeps the runner alive as long as it is registered.
  auto p = it->second.lock();
  return p.get();
}

std::shared_ptr<void> register_unit_runner(const std::vector<const torch::nn::Module*>& modules,
                                           std::shared_ptr<UnitRunner> runner) {
  Registry& r = registry();
  {
    std::unique_lock<std::shared_mutex> lock(r.mu);
    for (const auto* m : modules) r.runners[m] = runner;
    r.count.fetch_add(1);
  }
  // The handle refers to the runner without owning it (the runner usually owns the handle).
  struct Handle {
    std::vector<const torch::nn::Module*> modules;
    const UnitRunner* runner;
    ~Handle() {
      Registry& r = registry();
      std::unique_lock<std::shared_mutex> lock(r.mu);
      for (const auto* m : modules) {
        auto it = r.runners.find(m);
        if (it == r.runners.end()) continue;
        auto live = it->second.lock();
        if (!live || live.get() == runner) r.runners.erase(it);
      }
      r.count.fetch_sub(1);
    }
  };
  auto handle = std::make_shared<Handle>();
  handle->modules = modules;
  handle->runner = runner.get();
  return handle;
}

// ---- activation checkpointing -----------------------------------------------------------------

namespace {

struct Closure : torch::CustomClassHolder {
  std::function<at::Tensor(const std::vector<at::Tensor>&)> fn;
  std::function<void()> before_recompute;
  size_t num_inputs = 0;               // defined inputs, passed through the autograd function
  std::vector<bool> input_defined;     // per argument of fn: defined (else an undefined tensor)
  std::vector<bool> input_requires_grad;
  std::vector<at::Tensor> params;
  // fn's arguments from the defined inputs.
  std::vector<at::Tensor> arguments(const std::vector<at::Tensor>& defined) const {
    std::vector<at::Tensor> out;
    size_t k = 0;
    for (bool d : input_defined) out.push_back(d ? defined[k++] : at::Tensor());
    return out;
  }
  // Generator and autocast state of the forward, replayed for the recomputation.
  at::Tensor cpu_rng;
  std::vector<std::pair<c10::DeviceIndex, at::Tensor>> cuda_rng;
  bool autocast_cpu = false, autocast_cuda = false;
  c10::ScalarType autocast_cpu_dtype = at::kBFloat16, autocast_cuda_dtype = at::kHalf;
};

class RngSnapshot {
 public:
  static void capture(Closure& c) {
    c.cpu_rng = at::detail::getDefaultCPUGenerator().get_state();
    if (torch::cuda::is_available()) {
      for (c10::DeviceIndex d = 0; d < static_cast<c10::DeviceIndex>(torch::cuda::device_count()); ++d) {
        at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, d));
        c.cuda_rng.emplace_back(d, gen.get_state());
      }
    }
  }
  // Restores the saved states now and the current ones when destroyed.
  explicit RngSnapshot(const Closure& c) {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    prev_cpu_ = cpu.get_state();
    cpu.set_state(c.cpu_rng);
    for (const auto& [d, state] : c.cuda_rng) {
      at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, d));
      prev_cuda_.emplace_back(d, gen.get_state());
      gen.set_state(state);
    }
  }
  ~RngSnapshot() {
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    cpu.set_state(prev_cpu_);
    for (const auto& [d, state] : prev_cuda_) {
      at::Generator gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, d));
      gen.set_state(state);
    }
  }

 private:
  at::Tensor prev_cpu_;
  std::vector<std::pair<c10::DeviceIndex, at::Tensor>> prev_cuda_;
};

class AutocastReplay {
 public:
  explicit AutocastReplay(const Closure& c)
      : cpu_(at::autocast::is_autocast_enabled(at::kCPU)),
        cuda_(at::autocast::is_autocast_enabled(at::kCUDA)),
        cpu_dtype_(at::autocast::get_autocast_dtype(at::kCPU)),
        cuda_dtype_(at::autocast::get_autocast_dtype(at::kCUDA)) {
    at::autocast::set_autocast_enabled(at::kCPU, c.autocast_cpu);
    at::autocast::set_autocast_enabled(at::kCUDA, c.autocast_cuda);
    at::autocast::set_autocast_dtype(at::kCPU, c.autocast_cpu_dtype);
    at::autocast::set_autocast_dtype(at::kCUDA, c.autocast_cuda_dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastReplay() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCPU, cpu_);
    at::autocast::set_autocast_enabled(at::kCUDA, cuda_);
    at::autocast::set_autocast_dtype(at::kCPU, cpu_dtype_);
    at::autocast::set_autocast_dtype(at::kCUDA, cuda_dtype_);
  }

 private:
  bool cpu_, cuda_;
  c10::ScalarType cpu_dtype_, cuda_dtype_;
};

// Inputs then parameters go in as tensors, so that autograd connects the parameters'
// accumulators to this node: their gradients are accumulated by the outer backward (hooks fire
// there), not by a nested one.
class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::TensorList tensors,
                            c10::intrusive_ptr<Closure> closure) {
    std::vector<at::Tensor> inputs(tensors.begin(), tensors.begin() + static_cast<int64_t>(closure->num_inputs));
    RngSnapshot::capture(*closure);
    closure->autocast_cpu = at::autocast::is_autocast_enabled(at::kCPU);
    closure->autocast_cuda = at::autocast::is_autocast_enabled(at::kCUDA);
    closure->autocast_cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
    closure->autocast_cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
    at::Tensor out;
    {
      torch::NoGradGuard no_grad;
      out = closure->fn(closure->arguments(inputs));
    }
    ctx->save_for_backward(inputs);
    ctx->saved_data["closure"] = c10::IValue::make_capsule(closure);
    ctx->saved_data["num_params"] = static_cast<int64_t>(tensors.size() - closure->num_inputs);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto closure = c10::static_intrusive_pointer_cast<Closure>(ctx->saved_data["closure"].toCapsule());
    const int64_t num_params = ctx->saved_data["num_params"].toInt();
    auto saved = ctx->get_saved_variables();
    if (closure->before_recompute) closure->before_recompute();
    std::vector<at::Tensor> inputs;
    for (size_t i = 0; i < saved.size(); ++i) {
      at::Tensor x = saved[i].detach();
      if (closure->input_requires_grad[i]) x.requires_grad_(true);
      inputs.push_back(x);
    }
    at::Tensor out;
    {
      RngSnapshot rng(*closure);
      AutocastReplay autocast(*closure);
      torch::AutoGradMode grad_mode(true);
      out = closure->fn(closure->arguments(inputs));
    }
    // Gradients for the inputs that need them and for the parameters that took part.
    std::vector<at::Tensor> wrt;
    std::vector<size_t> which;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (closure->input_requires_grad[i]) {
        wrt.push_back(inputs[i]);
        which.push_back(i);
      }
    }
    const auto& params = closure->params;
    for (size_t j = 0; j < params.size(); ++j) {
      wrt.push_back(params[j]);
      which.push_back(inputs.size() + j);
    }
    torch::autograd::variable_list result(inputs.size() + static_cast<size_t>(num_params) + 1);
    if (!wrt.empty() && out.requires_grad()) {
      auto g = torch::autograd::grad({out}, wrt, {grads[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                     /*allow_unused=*/true);
      for (size_t k = 0; k < which.size(); ++k) result[which[k]] = g[k];
    }
    return result;
  }
};

}  // namespace

at::Tensor checkpointed_call(const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                             const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& params,
                             std::function<void()> before_recompute) {
  auto closure = c10::make_intrusive<Closure>();
  closure->fn = fn;
  closure->before_recompute = std::move(before_recompute);
  std::vector<at::Tensor> tensors;
  for (const auto& x : inputs) {
    closure->input_defined.push_back(x.defined());
    if (!x.defined()) continue;
    tensors.push_back(x);
    closure->input_requires_grad.push_back(x.requires_grad());
  }
  closure->num_inputs = tensors.size();
  for (const auto& p : params) {
    if (p.requires_grad()) {
      tensors.push_back(p);
      closure->params.push_back(p);
    }
  }
  return CheckpointFunction::apply(at::TensorList(tensors), closure);
}

}  // namespace detail
}  // namespace accel
