#include "accel/distributed/grad_sync.h"

#include "accel/core/error.h"
#include "accel/core/logging.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>

namespace accel::distributed {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

struct GradientSynchronizer::Bucket {
  std::vector<size_t> params;  // indices into params_
  at::Tensor buffer;           // flat, params' dtype and device
  at::Tensor wire;             // buffer cast for compression (or the buffer itself)
  size_t pending = 0;          // gradients not yet ready in this backward
  std::shared_ptr<Work> work;
  Clock::time_point launched;
};

// Lives as long as any hook; lets hooks outlive the synchronizer safely.
struct GradientSynchronizer::Shared {
  std::mutex mu;
  GradientSynchronizer* owner = nullptr;
  // The accumulators' handle type: intrusive_ptr in the pinned torch, shared_ptr in older ones (GPU images
  // may carry an older torch than the one the set-up pins).
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

GradientSynchronizer::GradientSynchronizer(std::shared_ptr<ProcessGroup> group,
                                           std::vector<at::Tensor> params, std::vector<std::string> names,
                                           const DDPOptions& options)
    : group_(std::move(group)), options_(options), shared_(std::make_shared<Shared>()) {
  ACCEL_CHECK(group_, "GradientSynchronizer needs a process group.");
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].requires_grad()) continue;
    ACCEL_CHECK(params[i].is_leaf(), "GradientSynchronizer: parameter ",
                i < names.size() ? names[i] : std::to_string(i), " is not a leaf tensor.");
    params_.push_back(params[i]);
    names_.push_back(i < names.size() ? names[i] : c10::str("parameter ", i));
  }
  // Buckets in reverse registration order (gradients arrive roughly in that order).
  const double mb = 1024.0 * 1024.0;
  slot_.resize(params_.size());
  Bucket cur;
  int64_t cur_bytes = 0;
  auto flush = [&] {
    if (cur.params.empty()) return;
    buckets_.push_back(std::move(cur));
    cur = Bucket();
    cur_bytes = 0;
  };
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    if (!cur.params.empty()) {
      const at::Tensor& first = params_[cur.params.front()];
      if (first.scalar_type() != p.scalar_type() || first.device() != p.device()) flush();
    }
    const double cap = (buckets_.empty() ? options_.first_bucket_cap_mb() : options_.bucket_cap_mb()) * mb;
    cur.params.push_back(k);
    cur_bytes += p.numel() * static_cast<int64_t>(p.element_size());
    if (static_cast<double>(cur_bytes) >= cap) flush();
  }
  flush();
  for (size_t b = 0; b < buckets_.size(); ++b) {
    auto& bucket = buckets_[b];
    int64_t offset = 0;
    for (size_t k : bucket.params) {
      slot_[k] = {b, offset};
      offset += params_[k].numel();
    }
    const at::Tensor& first = params_[bucket.params.front()];
    bucket.buffer = at::zeros({offset}, first.options().requires_grad(false));
    if (options_.comm_hook() == "fp16" && first.scalar_type() == at::kFloat) {
      bucket.wire = at::empty({offset}, bucket.buffer.options().dtype(at::kHalf));
    } else if (options_.comm_hook() == "bf16" && first.scalar_type() == at::kFloat) {
      bucket.wire = at::empty({offset}, bucket.buffer.options().dtype(at::kBFloat16));
    } else {
      bucket.wire = bucket.buffer;
    }
  }
  ready_.assign(params_.size(), 0);
  // Hooks on each parameter's gradient accumulator.
  shared_->owner = this;
  std::weak_ptr<void> weak = shared_;
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    ACCEL_INTERNAL_ASSERT(acc, "no gradient accumulator for ", names_[k]);
    acc->add_post_hook(std::make_unique<ReadyHook>(weak, [this, k] { on_grad_ready(k); }));
    shared_->accumulators.push_back(acc);
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  // Hooks hold a weak reference to shared_; once it is gone they do nothing.
  std::lock_guard<std::mutex> g(mu_);
  shared_.reset();
}

std::vector<int64_t> GradientSynchronizer::bucket_sizes() const {
  std::vector<int64_t> out;
  for (const auto& b : buckets_) out.push_back(b.buffer.numel());
  return out;
}

GradientSynchronizer::Stats GradientSynchronizer::stats() const {
  return stats_;
}

void GradientSynchronizer::on_grad_ready(size_t k) {
  if (!require_sync_) return;
  std::lock_guard<std::mutex> g(mu_);
  if (!in_backward_) {
    in_backward_ = true;
    next_launch_ = 0;
    std::fill(ready_.begin(), ready_.end(), 0);
    for (auto& b : buckets_) b.pending = b.params.size();
    std::weak_ptr<void> weak = shared_;
    torch::autograd::Engine::get_default_engine().queue_callback([this, weak] {
      if (auto alive = weak.lock()) finalize();
    });
  }
  if (ready_[k]) return;  // a parameter used twice fires once per accumulation
  ready_[k] = 1;
  auto [b, offset] = slot_[k];
  const at::Tensor& grad = params_[k].grad();
  at::Tensor dst = buckets_[b].buffer.narrow(0, offset, params_[k].numel());
  if (grad.defined()) {
    dst.copy_(grad.reshape({-1}));
  } else {
    dst.zero_();
  }
  if (--buckets_[b].pending == 0) launch_ready_buckets();
}

void GradientSynchronizer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    launch(next_launch_++);
  }
}

void GradientSynchronizer::launch(size_t b) {
  auto& bucket = buckets_[b];
  const double world = static_cast<double>(group_->world_size());
  // Average as DDP does: divide before the sum.
  bucket.buffer.div_(world);
  if (!bucket.wire.is_same(bucket.buffer)) bucket.wire.copy_(bucket.buffer);
  bucket.launched = Clock::now();
  bucket.work = group_->all_reduce_async(bucket.wire, ReduceOp::kSum);
}

void GradientSynchronizer::finalize() {
  std::lock_guard<std::mutex> g(mu_);
  if (!in_backward_) return;
  // Parameters that got no gradient in this backward take part with zeros, so every rank
  // launches the same buckets in the same order.
  std::vector<std::string> unused;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (ready_[k]) continue;
    unused.push_back(names_[k]);
    auto [b, offset] = slot_[k];
    buckets_[b].buffer.narrow(0, offset, params_[k].numel()).zero_();
    --buckets_[b].pending;
  }
  if (!unused.empty() && !options_.find_unused_parameters() && !warned_unused_) {
    warned_unused_ = true;
    logger().log(LogLevel::kWarning, LogScope::kAllRanks,
                 c10::str(unused.size(),
                          " parameter(s) received no gradient in this backward (first: ", unused.front(),
                          "); they are synchronised as zeros. Set "
                          "DDPOptions::find_unused_parameters(true) to silence this warning."));
  }
  launch_ready_buckets();
  auto wait_start = Clock::now();
  for (auto& bucket : buckets_) {
    bucket.work->wait();
    if (!bucket.wire.is_same(bucket.buffer)) bucket.buffer.copy_(bucket.wire);
  }
  stats_.exposed_wait_s = seconds_since(wait_start);
  stats_.launch_to_done_s = buckets_.empty() ? 0.0 : seconds_since(buckets_.front().launched);
  ++stats_.syncs;
  for (size_t k = 0; k < params_.size(); ++k) {
    auto [b, offset] = slot_[k];
    at::Tensor avg = buckets_[b].buffer.narrow(0, offset, params_[k].numel()).view(params_[k].sizes());
    at::Tensor& grad = params_[k].mutable_grad();
    if (grad.defined()) {
      grad.copy_(avg);
    } else {
      grad = avg.clone();
    }
  }
  for (auto& bucket : buckets_) bucket.work.reset();
  in_backward_ = false;
}

}  // namespace accel::distributed
