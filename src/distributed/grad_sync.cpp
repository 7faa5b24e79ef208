#include "accel/distributed/grad_sync.h"

#include "accel/core/error.h"
#include "accel/core/logging.h"

#include <ATen/ATen.h>

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

GradientSynchronizer::GradientSynchronizer(std::shared_ptr<ProcessGroup> group,
                                           std::vector<at::Tensor> params, std::vector<std::string> names,
                                           const DDPOptions& options)
    : group_(std::move(group)), options_(options) {
  ACCEL_CHECK(group_, "GradientSynchronizer needs a process group.");
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].requires_grad()) continue;
    ACCEL_CHECK(params[i].is_leaf(), "GradientSynchronizer: parameter ",
                i < names.size() ? names[i] : std::to_string(i), " is not a leaf tensor.");
    params_.push_back(params[i]);
    names_.push_back(i < names.size() ? names[i] : c10::str("parameter ", i));
  }
  const double mb = 1024.0 * 1024.0;
  slot_.resize(params_.size());
  for (auto& plan :
       plan_buckets(params_, options_.first_bucket_cap_mb() * mb, options_.bucket_cap_mb() * mb)) {
    Bucket bucket;
    bucket.params = std::move(plan);
    buckets_.push_back(std::move(bucket));
  }
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
  pending_.assign(params_.size(), 0);
  hooks_ = std::make_unique<GradReadyHooks>(
      params_, [this](size_t k) { on_grad_ready(k); }, [this] { on_backward_end(); });
}

GradientSynchronizer::~GradientSynchronizer() = default;

void GradientSynchronizer::set_mode(bool communicate, bool optimizer_steps) {
  communicate_ = communicate;
  optimizer_steps_ = optimizer_steps;
}

std::vector<int64_t> GradientSynchronizer::bucket_sizes() const {
  std::vector<int64_t> out;
  for (const auto& b : buckets_) out.push_back(b.buffer.numel());
  return out;
}

GradientSynchronizer::Stats GradientSynchronizer::stats() const {
  return stats_;
}

at::Tensor GradientSynchronizer::slot(size_t k) const {
  auto [b, offset] = slot_[k];
  return buckets_[b].buffer.narrow(0, offset, params_[k].numel());
}

void GradientSynchronizer::on_grad_ready(size_t k) {
  if (!started_) {
    started_ = true;
    bw_communicate_ = communicate_;
    bw_optimizer_steps_ = optimizer_steps_;
    next_launch_ = 0;
    for (auto& b : buckets_) b.pending = b.params.size();
  }
  at::Tensor dst = slot(k);
  at::Tensor& grad = params_[k].mutable_grad();
  // After a synchronised step `.grad` is a view of its slot; autograd then accumulated into it
  // in place and the slot already holds everything.
  const bool aliased = grad.defined() && grad.data_ptr() == dst.data_ptr();
  if (grad.defined() && !aliased) {
    if (pending_[k]) {
      dst.add_(grad.reshape({-1}));
    } else {
      dst.copy_(grad.reshape({-1}));
    }
  } else if (!grad.defined() && !pending_[k]) {
    dst.zero_();
  }
  if (!bw_communicate_) {
    // Nothing to send: this backward's gradients stay in the slot (`.grad` shows them).
    pending_[k] = 1;
    grad = alias_of(buckets_[slot_[k].first].buffer, slot_[k].second, params_[k].sizes());
    return;
  }
  pending_[k] = 0;
  if (--buckets_[slot_[k].first].pending == 0) launch_ready_buckets();
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

void GradientSynchronizer::on_backward_end() {
  started_ = false;
  if (bw_communicate_) {
    // Parameters that got no gradient in this backward take part with what their slot holds
    // (zeros, or gradients set aside earlier), so every rank launches the same buckets in the
    // same order.
    std::vector<std::string> unused;
    for (size_t k = 0; k < params_.size(); ++k) {
      if (hooks_->fired(k)) continue;
      unused.push_back(names_[k]);
      if (!pending_[k]) slot(k).zero_();
      pending_[k] = 0;
      --buckets_[slot_[k].first].pending;
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
    for (auto& bucket : buckets_) bucket.work.reset();
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    at::Tensor& grad = params_[k].mutable_grad();
    if (!bw_communicate_ && !hooks_->fired(k) && !pending_[k]) continue;
    auto [b, offset] = slot_[k];
    grad = alias_of(buckets_[b].buffer, offset, params_[k].sizes());
    // When the optimizer does not step after this backward the slot keeps counting as set aside,
    // so that a zero_grad() before the next backward (which drops `.grad`) loses nothing.
    pending_[k] = bw_optimizer_steps_ ? 0 : 1;
  }
}

}  // namespace accel::distributed
