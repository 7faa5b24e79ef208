#include "accel/distributed/grad_hooks.h"

#include "accel/core/error.h"

#include <ATen/ATen.h>

#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace accel::distributed {

// Lives as long as any hook; lets hooks outlive the owner safely.
struct GradReadyHooks::Shared {
  std::mutex mu;
  GradReadyHooks* owner = nullptr;
  // The accumulators' handle type: intrusive_ptr in the pinned torch, shared_ptr in older ones (GPU
  // images may carry an older torch than the one the set-up pins).
  using NodeHandle = decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()));
  std::vector<NodeHandle> accumulators;
};

namespace {

class ReadyHook : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(std::weak_ptr<void> shared, std::function<void()> fn)
      : shared_(std::move(shared)), fn_(std::move(fn)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    if (auto alive = shared_.lock()) fn_();
    return outputs;
  }

 private:
  std::weak_ptr<void> shared_;
  std::function<void()> fn_;
};

}  // namespace

GradReadyHooks::GradReadyHooks(std::vector<at::Tensor> params, std::function<void(size_t)> on_ready,
                               std::function<void()> on_finish)
    : params_(std::move(params)),
      on_ready_(std::move(on_ready)),
      on_finish_(std::move(on_finish)),
      shared_(std::make_shared<Shared>()) {
  fired_.assign(params_.size(), 0);
  shared_->owner = this;
  std::weak_ptr<Shared> weak = shared_;
  for (size_t k = 0; k < params_.size(); ++k) {
    ACCEL_CHECK(params_[k].requires_grad() && params_[k].is_leaf(), "gradient hooks: parameter ", k,
                " is not a leaf tensor that requires grad.");
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    ACCEL_INTERNAL_ASSERT(acc, "no gradient accumulator for parameter ", k);
    acc->add_post_hook(std::make_unique<ReadyHook>(weak, [weak, k] {
      auto s = weak.lock();
      if (!s) return;
      std::lock_guard<std::mutex> g(s->mu);
      if (s->owner != nullptr) s->owner->ready(k);
    }));
    shared_->accumulators.push_back(acc);
  }
}

GradReadyHooks::~GradReadyHooks() {
  std::lock_guard<std::mutex> g(shared_->mu);
  shared_->owner = nullptr;
}

void GradReadyHooks::ready(size_t k) {
  if (!in_backward_) {
    in_backward_ = true;
    std::fill(fired_.begin(), fired_.end(), 0);
    std::weak_ptr<Shared> weak = shared_;
    torch::autograd::Engine::get_default_engine().queue_callback([weak] {
      auto s = weak.lock();
      if (!s) return;
      std::lock_guard<std::mutex> g(s->mu);
      if (s->owner != nullptr) s->owner->finish();
    });
  }
  if (fired_[k]) return;
  fired_[k] = 1;
  on_ready_(k);
}

void GradReadyHooks::finish() {
  if (!in_backward_) return;
  // Cleared first: a finish callback that throws must not leave the next backward confused.
  in_backward_ = false;
  on_finish_();
}

at::Tensor alias_of(const at::Tensor& flat, int64_t offset, at::IntArrayRef sizes) {
  at::Tensor t = at::empty({0}, flat.options().requires_grad(false));
  std::vector<int64_t> strides(sizes.size(), 1);
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * sizes[d + 1];
  t.set_(flat.storage(), flat.storage_offset() + offset, sizes, strides);
  return t;
}

std::vector<std::vector<size_t>> plan_buckets(const std::vector<at::Tensor>& params, double first_cap_bytes,
                                              double cap_bytes) {
  std::vector<std::vector<size_t>> out;
  std::vector<size_t> cur;
  double cur_bytes = 0;
  auto flush = [&] {
    if (cur.empty()) return;
    out.push_back(std::move(cur));
    cur.clear();
    cur_bytes = 0;
  };
  for (size_t k = params.size(); k-- > 0;) {
    const at::Tensor& p = params[k];
    if (!cur.empty()) {
      const at::Tensor& first = params[cur.front()];
      if (first.scalar_type() != p.scalar_type() || first.device() != p.device()) flush();
    }
    const double cap = out.empty() ? first_cap_bytes : cap_bytes;
    cur.push_back(k);
    cur_bytes += static_cast<double>(p.numel()) * static_cast<double>(p.element_size());
    if (cur_bytes >= cap) flush();
  }
  flush();
  return out;
}

}  // namespace accel::distributed
