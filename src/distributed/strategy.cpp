#include "accel/distributed/strategy.h"

#include "accel/core/error.h"
#include "accel/core/logging.h"
#include "accel/distributed/grad_hooks.h"
#include "accel/distributed/grad_sync.h"
#include "accel/distributed/sharded.h"
#include "accel/distributed/unit.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <functional>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace accel::distributed {

namespace detail {

std::string short_type_name(const std::string& full) {
  std::string n = full;
  if (auto p = n.rfind("::"); p != std::string::npos) n = n.substr(p + 2);
  if (n.size() > 4 && n.compare(n.size() - 4, 4, "Impl") == 0) n = n.substr(0, n.size() - 4);
  return n;
}

std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> pick_units(
    const std::shared_ptr<torch::nn::Module>& module, const ResolvedSharding& opts) {
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> units;
  const auto policy = opts.auto_wrap_policy;
  if (policy == AutoWrapPolicy::kNoWrap) return units;
  if (policy == AutoWrapPolicy::kTransformerBased) {
    std::set<std::string> wanted, seen;
    for (const auto& t : opts.wrap_module_types) wanted.insert(short_type_name(t));
    for (auto& item : module->named_modules("", /*include_self=*/false)) {
      const std::string simple = short_type_name(item.value()->name());
      if (wanted.count(simple)) {
        units.emplace_back(item.key(), item.value());
        seen.insert(simple);
      }
    }
    for (const auto& t : wanted) {
      if (!seen.count(t)) {
        logger().warning("sharding: no module of type '", t,
                         "' in the model (fsdp_transformer_layer_cls_to_wrap), so it wraps nothing.");
      }
    }
    return units;
  }
  // Size based: bottom-up, a module becomes a unit when the trainable parameters it holds outside
  // smaller units reach min_num_params (as FSDP's size_based_auto_wrap_policy).
  std::function<int64_t(const std::string&, const std::shared_ptr<torch::nn::Module>&, bool)> visit =
      [&](const std::string& path, const std::shared_ptr<torch::nn::Module>& m, bool root) -> int64_t {
    int64_t own = 0;
    for (auto& p : m->named_parameters(/*recurse=*/false)) {
      if (p.value().requires_grad()) own += p.value().numel();
    }
    for (auto& c : m->named_children()) own += visit(path.empty() ? c.key() : path + "." + c.key(), c.value(), false);
    if (!root && own > 0 && own >= opts.min_num_params) {
      units.emplace_back(path, m);
      return 0;
    }
    return own;
  };
  visit("", module, true);
  return units;
}

}  // namespace detail

namespace {

// Shared by the strategies that keep full parameters on every rank.
class ReplicatedStrategy : public ParallelStrategy, public accel::detail::UnitRunner {
 public:
  ReplicatedStrategy(std::shared_ptr<torch::nn::Module> module, const ResolvedSharding& opts)
      : module_(std::move(module)), checkpointing_(opts.activation_checkpointing) {
    for (auto& p : module_->parameters()) params_.insert(p.unsafeGetTensorImpl());
    if (checkpointing_) {
      for (auto& [path, m] : detail::pick_units(module_, opts)) {
        std::vector<at::Tensor> ps;
        for (auto& p : m->parameters()) {
          if (p.requires_grad()) ps.push_back(p);
        }
        unit_params_[m.get()] = ps;
      }
      if (unit_params_.empty()) {
        logger().warning("activation checkpointing is on but the wrap policy picks no unit, so nothing is "
                         "recomputed. HINT: name the layer class (fsdp_transformer_layer_cls_to_wrap).");
      }
    }
  }

  bool owns(const at::Tensor& t) const override { return params_.count(t.unsafeGetTensorImpl()) != 0; }

  void load_parameters(const RangeReader& read) override {
    torch::NoGradGuard no_grad;
    for (auto& item : module_->named_parameters()) {
      at::Tensor v = read(item.key(), 0, item.value().numel());
      item.value().detach().copy_(v.view(item.value().sizes()));
    }
    for (auto& item : module_->named_buffers()) {
      at::Tensor v = read(item.key(), 0, item.value().numel());
      item.value().detach().copy_(v.view(item.value().sizes()));
    }
  }

  std::map<std::string, at::Tensor> full_state_dict(bool rank0_only) override {
    std::map<std::string, at::Tensor> out;
    for_each_full_tensor([&](const std::string& n, const at::Tensor& t) { out[n] = t; }, true);
    return out;
  }

  void for_each_full_tensor(const std::function<void(const std::string&, const at::Tensor&)>& sink,
                            bool all_ranks) override {
    if (!all_ranks && !is_main()) return;
    for (auto& item : module_->named_parameters()) sink(item.key(), item.value().detach().cpu());
    for (auto& item : module_->named_buffers()) sink(item.key(), item.value().detach().cpu());
  }

  std::vector<TensorInfo> full_layout() const override {
    std::vector<TensorInfo> out;
    for (auto& item : module_->named_parameters())
      out.push_back({item.key(), item.value().scalar_type(), item.value().sizes().vec()});
    for (auto& item : module_->named_buffers())
      out.push_back({item.key(), item.value().scalar_type(), item.value().sizes().vec()});
    return out;
  }

  at::Tensor run_unit(torch::nn::Module& module, const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                      const std::vector<at::Tensor>& inputs) override {
    if (!torch::autograd::GradMode::is_enabled()) return fn(inputs);
    return accel::detail::checkpointed_call(fn, inputs, unit_params_[&module], nullptr);
  }

  std::vector<const torch::nn::Module*> unit_modules() const {
    std::vector<const torch::nn::Module*> out;
    for (const auto& [m, ps] : unit_params_) out.push_back(m);
    return out;
  }

 protected:
  virtual bool is_main() const { return true; }

  std::shared_ptr<torch::nn::Module> module_;
  std::unordered_set<const c10::TensorImpl*> params_;
  bool checkpointing_;
  std::unordered_map<const torch::nn::Module*, std::vector<at::Tensor>> unit_params_;
};

// One process: nothing to communicate. On accumulation micro-steps (the optimizer does not step)
// each parameter's `.grad` is also kept in a stash, so a zero_grad() between micro-steps (which
// drops `.grad`) loses nothing: the next backward adds its gradient to the stash.
class SingleProcessStrategy : public ReplicatedStrategy {
 public:
  SingleProcessStrategy(std::shared_ptr<torch::nn::Module> module, const ResolvedSharding& opts)
      : ReplicatedStrategy(std::move(module), opts) {
    for (auto& p : module_->parameters()) {
      if (p.requires_grad()) trainable_.push_back(p);
    }
    stash_.resize(trainable_.size());
    if (!trainable_.empty()) {
      hooks_ = std::make_unique<GradReadyHooks>(
          trainable_, [this](size_t k) { on_ready(k); }, [this] { started_ = false; });
    }
  }
  std::string name() const override { return "none"; }
  void set_step_mode(StepMode mode) override { mode_ = mode; }
  StepMode step_mode() const override { return mode_; }

 private:
  void on_ready(size_t k) {
    if (!started_) {
      started_ = true;
      bw_mode_ = mode_;
    }
    at::Tensor& grad = trainable_[k].mutable_grad();
    at::Tensor& stash = stash_[k];
    // `.grad` normally still is the stashed tensor (autograd accumulated into it in place); after
    // a zero_grad() that dropped it, this backward's gradient is added to the stash.
    if (stash.defined() && !grad.is_same(stash)) {
      if (grad.defined()) stash.add_(grad);
      grad = stash;
    }
    if (bw_mode_.optimizer_steps) {
      stash.reset();
    } else if (grad.defined()) {
      stash = grad;
    }
  }

  std::vector<at::Tensor> trainable_;
  std::vector<at::Tensor> stash_;
  StepMode mode_, bw_mode_;
  bool started_ = false;
  std::unique_ptr<GradReadyHooks> hooks_;
};

class DdpStrategy : public ReplicatedStrategy {
 public:
  DdpStrategy(std::shared_ptr<torch::nn::Module> module, std::shared_ptr<ProcessGroup> group,
              const DDPOptions& ddp, const ResolvedSharding& opts)
      : ReplicatedStrategy(std::move(module), opts), group_(std::move(group)), broadcast_buffers_(ddp.broadcast_buffers()) {
    torch::NoGradGuard no_grad;
    // Every rank starts from rank 0's weights and buffers.
    for (auto& p : module_->parameters()) {
      at::Tensor t = p.detach();
      group_->broadcast(t, 0);
    }
    for (auto& b : module_->buffers()) {
      at::Tensor t = b.detach();
      group_->broadcast(t, 0);
    }
    std::vector<at::Tensor> params;
    std::vector<std::string> names;
    for (auto& item : module_->named_parameters()) {
      params.push_back(item.value());
      names.push_back(item.key());
    }
    bool any_trainable = false;
    for (auto& p : params) any_trainable = any_trainable || p.requires_grad();
    if (any_trainable) sync_ = std::make_unique<GradientSynchronizer>(group_, params, names, ddp);
  }

  std::string name() const override { return "ddp"; }
  void set_step_mode(StepMode mode) override {
    mode_ = mode;
    if (sync_) sync_->set_mode(mode.communicate, mode.optimizer_steps);
  }
  StepMode step_mode() const override { return mode_; }

  void pre_forward() override {
    // Buffers (e.g. BatchNorm statistics) follow rank 0, as DDP's broadcast_buffers.
    if (!broadcast_buffers_ || !module_->is_training()) return;
    auto buffers = module_->buffers();
    if (buffers.empty()) return;
    torch::NoGradGuard ng;
    for (auto& b : buffers) {
      at::Tensor t = b.detach();
      group_->broadcast(t, 0);
    }
  }

  CommStats comm_stats() const override {
    CommStats c;
    if (!sync_) return c;
    auto st = sync_->stats();
    c.exposed_wait_s = st.exposed_wait_s;
    c.total_s = st.launch_to_done_s;
    c.syncs = st.syncs;
    c.bucket_sizes = sync_->bucket_sizes();
    return c;
  }

 protected:
  bool is_main() const override { return group_->rank() == 0; }

 private:
  std::shared_ptr<ProcessGroup> group_;
  bool broadcast_buffers_;
  StepMode mode_;
  std::unique_ptr<GradientSynchronizer> sync_;
};

// Keeps the unit registration alive with the strategy.
template <typename S>
class Registered : public S {
 public:
  using S::S;
  std::shared_ptr<void> registration;
};

}  // namespace

std::shared_ptr<ParallelStrategy> make_strategy(const std::shared_ptr<torch::nn::Module>& module,
                                                const std::shared_ptr<ProcessMesh>& mesh,
                                                const AcceleratorOptions& options, const ResolvedOptions& resolved) {
  const ResolvedSharding& sh = resolved.sharding;
  if (!mesh) {
    auto s = std::make_shared<Registered<SingleProcessStrategy>>(module, sh);
    if (sh.activation_checkpointing) s->registration = accel::detail::register_unit_runner(s->unit_modules(), s);
    return s;
  }
  if (!sh.enabled()) {
    auto s = std::make_shared<Registered<DdpStrategy>>(module, mesh->world(), options.ddp(), sh);
    if (sh.activation_checkpointing) s->registration = accel::detail::register_unit_runner(s->unit_modules(), s);
    return s;
  }
  auto s = std::make_shared<Registered<ShardedEngine>>(module, mesh, sh);
  const bool full = sh.strategy == ShardingStrategy::kFullShard || sh.strategy == ShardingStrategy::kHybridShard;
  if (full || sh.activation_checkpointing) s->registration = accel::detail::register_unit_runner(s->unit_modules(), s);
  return s;
}

}  // namespace accel::distributed
