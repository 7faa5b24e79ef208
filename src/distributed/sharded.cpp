#include "accel/distributed/sharded.h"

#include "accel/core/error.h"
#include "accel/core/logging.h"
#include "accel/distributed/grad_hooks.h"

#include <ATen/ATen.h>
#include <c10/core/StorageImpl.h>
#include <torch/autograd.h>
#include <torch/nn/modules/container/any.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>
#include <unordered_map>

namespace accel::distributed {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

c10::ScalarType dtype_of(const std::string& name, c10::ScalarType fallback) {
  if (name == "fp32") return at::kFloat;
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp16") return at::kHalf;
  return fallback;
}

// A tensor's storage without its memory (a resharded unit), and the memory back.
void free_storage(const at::Tensor& t) {
  c10::StorageImpl* st = t.storage().unsafeGetStorageImpl();
  st->set_data_ptr_noswap(at::DataPtr(nullptr, t.device()));
  st->set_nbytes(0);
}

void alloc_storage(const at::Tensor& t, int64_t nbytes) {
  c10::StorageImpl* st = t.storage().unsafeGetStorageImpl();
  if (static_cast<int64_t>(st->nbytes()) == nbytes) return;
  ACCEL_INTERNAL_ASSERT(st->allocator() != nullptr, "flat parameter storage has no allocator");
  st->set_data_ptr_noswap(st->allocator()->allocate(static_cast<size_t>(nbytes)));
  st->set_nbytes(static_cast<size_t>(nbytes));
}

}  // namespace

struct ShardedEngine::Impl {
  struct Param {
    std::string name;
    at::Tensor tensor;  // the module's parameter object
    std::vector<int64_t> shape;
    int64_t numel = 0;
    size_t group = 0;
    int64_t offset = 0;          // in the group's flat buffer
    int64_t begin = 0, end = 0;  // piece: flat range of this parameter held by this rank
    int64_t shard_offset = 0;    // where the piece starts in the group's shard
    at::Tensor piece;            // master view, end - begin elements
  };

  struct Group {
    std::string name;
    const torch::nn::Module* unit = nullptr;
    bool shardable = false;  // FULL_SHARD / HYBRID_SHARD unit
    bool confirmed = false;  // its forward ran through unit_forward: gathered on demand
    bool gathered = true;
    std::vector<size_t> params;
    int64_t numel = 0, padded = 0, shard = 0;
    c10::ScalarType param_dtype = at::kFloat, master_dtype = at::kFloat;
    at::Tensor full;              // (padded) param dtype, on the device
    at::Tensor compute;           // (shard) param dtype, on the device (shardable groups)
    at::Tensor master;            // (shard) master dtype (CPU when offloading)
    bool master_in_full = false;  // master is a view of full's slice
    at::Tensor grad_full;         // (padded) reduce dtype
    bool grad_pending = false;
    at::Tensor shard_acc;  // (shard) reduce dtype: reduced gradients set aside
    size_t ready = 0;
    std::shared_ptr<Work> gather_work;
    std::shared_ptr<Work> rs_work;
    at::Tensor rs_out;
    bool launched = false;  // reduce-scatter launched in this backward
  };

  Impl(std::shared_ptr<torch::nn::Module> m, std::shared_ptr<ProcessMesh> me, const ResolvedSharding& o)
      : module(std::move(m)), mesh(std::move(me)), opts(o) {}

  std::shared_ptr<torch::nn::Module> module;
  std::shared_ptr<ProcessMesh> mesh;
  ResolvedSharding opts;
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType reduce_dtype = at::kFloat;
  bool keep_full_grad = false;  // ZeRO-1
  bool offload = false;         // master and optimizer state in CPU memory
  std::vector<Param> params;
  std::vector<Group> groups;
  std::unordered_map<const c10::TensorImpl*, size_t> by_param;  // model parameter -> index
  std::unordered_map<const c10::TensorImpl*, size_t> by_piece;  // optimizer tensor -> index
  std::unordered_map<const torch::nn::Module*, size_t> unit_group;
  std::unordered_map<const torch::nn::Module*, std::vector<at::Tensor>> unit_params;  // for checkpointing
  std::unique_ptr<GradReadyHooks> hooks;
  std::recursive_mutex mu;
  StepMode mode;
  StepMode bw_mode;
  bool started = false;
  std::vector<size_t> inflight;          // reduce-scatters launched, not completed
  std::vector<size_t> order, recording;  // units in forward order
  bool warned_unused = false, warned_unconfirmed = false;
  int backwards = 0;
  Stats stats;

  ProcessGroup& shard_group() const { return *mesh->shard_group(); }
  int shard_size() const { return mesh->shard_size(); }
  int shard_rank() const { return mesh->shard_rank(); }

  // ---- construction ---------------------------------------------------------------------------

  void build() {
    torch::NoGradGuard no_grad;
    auto& world = *mesh->world();
    // Every rank starts from rank 0's parameters and buffers.
    for (auto& p : module->parameters()) {
      at::Tensor t = p.detach();
      world.broadcast(t, 0);
    }
    for (auto& b : module->buffers()) {
      at::Tensor t = b.detach();
      world.broadcast(t, 0);
    }
    reduce_dtype = dtype_of(opts.reduce_dtype, at::kFloat);
    keep_full_grad = opts.strategy == ShardingStrategy::kShardOptimizer;
    const bool full_shard =
        opts.strategy == ShardingStrategy::kFullShard || opts.strategy == ShardingStrategy::kHybridShard;

    // Trainable parameters, in registration order.
    for (auto& item : module->named_parameters()) {
      if (!item.value().requires_grad()) continue;
      Param p;
      p.name = item.key();
      p.tensor = item.value();
      ACCEL_CHECK(p.tensor.is_leaf(), "sharding: parameter ", p.name, " is not a leaf tensor.");
      p.shape = p.tensor.sizes().vec();
      p.numel = p.tensor.numel();
      by_param[p.tensor.unsafeGetTensorImpl()] = params.size();
      params.push_back(std::move(p));
    }
    ACCEL_CHECK(!params.empty(), "sharding: the model has no parameter that requires a gradient.");
    device = params.front().tensor.device();
    offload = opts.offload_params && !device.is_cpu();

    // Units: the modules the wrap policy picks; each parameter belongs to its innermost unit.
    auto units = detail::pick_units(module, opts);
    std::vector<long> owner(params.size(), -1);
    for (size_t u = 0; u < units.size(); ++u) {
      std::vector<at::Tensor> unit_trainable;
      for (auto& item : units[u].second->named_parameters()) {
        auto it = by_param.find(item.value().unsafeGetTensorImpl());
        if (it == by_param.end()) continue;
        owner[it->second] = static_cast<long>(u);  // later (inner) units overwrite outer ones
        unit_trainable.push_back(item.value());
      }
      unit_params[units[u].second.get()] = unit_trainable;
    }
    // Groups: one per unit (FULL_SHARD), buckets for the rest.
    std::vector<std::vector<size_t>> unit_members(units.size());
    std::vector<at::Tensor> rest;
    std::vector<size_t> rest_index;
    for (size_t k = 0; k < params.size(); ++k) {
      if (full_shard && owner[k] >= 0) {
        unit_members[static_cast<size_t>(owner[k])].push_back(k);
      } else {
        rest.push_back(params[k].tensor);
        rest_index.push_back(k);
      }
    }
    for (size_t u = 0; u < units.size(); ++u) {
      if (unit_members[u].empty()) continue;
      Group g;
      g.name = "unit " + units[u].first;
      g.unit = units[u].second.get();
      g.shardable = true;
      g.params = unit_members[u];
      unit_group[g.unit] = groups.size();
      groups.push_back(std::move(g));
    }
    const double mb = 1024.0 * 1024.0;
    size_t bucket = 0;
    for (auto& plan : plan_buckets(rest, opts.bucket_cap_mb * mb, opts.bucket_cap_mb * mb)) {
      Group g;
      g.name = "bucket " + std::to_string(bucket++);
      for (size_t i : plan) g.params.push_back(rest_index[i]);
      std::sort(g.params.begin(), g.params.end());
      groups.push_back(std::move(g));
    }
    if (full_shard && units.empty()) {
      logger().warning("sharding: ", to_string(opts.strategy), " found no unit to shard (auto_wrap_policy ",
                       to_string(opts.auto_wrap_policy),
                       "): every parameter stays replicated as under SHARD_GRAD_OP (gradients and optimizer "
                       "state are still sharded). HINT: name the layer class to wrap "
                       "(fsdp_transformer_layer_cls_to_wrap, e.g. BertLayer) or use SIZE_BASED_WRAP.");
    }
    for (size_t gi = 0; gi < groups.size(); ++gi) init_group(gi);
    // Optimizer tensors.
    for (size_t k = 0; k < params.size(); ++k) by_piece[params[k].piece.unsafeGetTensorImpl()] = k;
    std::vector<at::Tensor> tensors;
    for (auto& p : params) tensors.push_back(p.tensor);
    hooks = std::make_unique<GradReadyHooks>(
        tensors, [this](size_t k) { on_grad_ready(k); }, [this] { on_backward_end(); });
  }

  void init_group(size_t gi) {
    Group& g = groups[gi];
    const int S = shard_size();
    const int r = shard_rank();
    const at::Tensor& first = params[g.params.front()].tensor;
    const c10::ScalarType orig = first.scalar_type();
    for (size_t k : g.params) {
      ACCEL_CHECK(params[k].tensor.scalar_type() == orig && params[k].tensor.device() == first.device(),
                  "sharding: ", g.name, " mixes dtypes or devices (", params[k].name, " is ",
                  params[k].tensor.scalar_type(), " on ", params[k].tensor.device(), ", ",
                  params[g.params.front()].name, " is ", orig, " on ", first.device(),
                  "). HINT: give the unit's parameters one dtype and device before prepare().");
    }
    g.master_dtype = (orig == at::kDouble || orig == at::kFloat) ? orig : at::kFloat;
    g.param_dtype = dtype_of(opts.param_dtype, orig);
    int64_t off = 0;
    for (size_t k : g.params) {
      params[k].group = gi;
      params[k].offset = off;
      off += params[k].numel;
    }
    g.numel = off;
    g.padded = (off + S - 1) / S * S;
    if (g.padded == 0) g.padded = S;
    g.shard = g.padded / S;
    // The values, in the master dtype, then the parameter copy.
    at::Tensor flat = at::zeros({g.padded}, first.options().dtype(g.master_dtype).requires_grad(false));
    for (size_t k : g.params) {
      flat.narrow(0, params[k].offset, params[k].numel).copy_(params[k].tensor.detach().reshape({-1}));
    }
    g.full = g.param_dtype == g.master_dtype ? flat : flat.to(g.param_dtype);
    const bool same = g.param_dtype == g.master_dtype;
    if (offload) {
      g.master = flat.narrow(0, r * g.shard, g.shard).to(at::kCPU).clone();
    } else if (same && !g.shardable) {
      g.master = g.full.narrow(0, r * g.shard, g.shard);
      g.master_in_full = true;
    } else {
      g.master = flat.narrow(0, r * g.shard, g.shard).clone();
    }
    if (g.shardable)
      g.compute = (same && !offload) ? g.master : g.full.narrow(0, r * g.shard, g.shard).clone();
    flat = at::Tensor();
    // Pieces and parameter views.
    for (size_t k : g.params) {
      Param& p = params[k];
      const int64_t lo = std::max<int64_t>(p.offset, r * g.shard);
      const int64_t hi = std::min<int64_t>(p.offset + p.numel, (r + 1) * g.shard);
      if (hi > lo) {
        p.begin = lo - p.offset;
        p.end = hi - p.offset;
        p.shard_offset = lo - r * g.shard;
      } else {
        p.begin = p.end = 0;
        p.shard_offset = 0;
      }
      p.piece = alias_of(g.master, p.shard_offset, {p.end - p.begin});
    }
    set_views(g);
    g.gathered = true;
  }

  // ---- parameter views --------------------------------------------------------------------

  void set_views(Group& g) {
    for (size_t k : g.params) {
      Param& p = params[k];
      p.tensor.set_data(g.full.narrow(0, p.offset, p.numel).view(p.shape));
    }
  }

  void set_empty(Group& g) {
    for (size_t k : g.params) {
      Param& p = params[k];
      p.tensor.set_data(at::empty({0}, g.full.options()));
    }
  }

  void start_gather(size_t gi) {
    Group& g = groups[gi];
    if (g.gathered || g.gather_work) return;
    alloc_storage(g.full, g.padded * static_cast<int64_t>(g.full.element_size()));
    g.gather_work = shard_group().all_gather_into_async(g.full, g.compute);
    ++stats.gathers;
    stats.gathered_bytes += g.padded * static_cast<int64_t>(g.full.element_size());
  }

  void ensure_gathered(size_t gi) {
    Group& g = groups[gi];
    if (g.gathered) return;
    if (!g.gather_work) start_gather(gi);
    auto t0 = Clock::now();
    g.gather_work->wait();
    stats.gather_wait_s += seconds_since(t0);
    g.gather_work.reset();
    set_views(g);
    g.gathered = true;
  }

  void reshard(size_t gi) {
    Group& g = groups[gi];
    if (!g.shardable || !g.confirmed) return;
    if (g.gather_work) {  // a prefetch nobody used
      g.gather_work->wait();
      g.gather_work.reset();
    } else if (!g.gathered) {
      return;
    }
    set_empty(g);
    free_storage(g.full);
    g.gathered = false;
  }

  // ---- forward ------------------------------------------------------------------------------

  long neighbour(size_t gi, int step) const {
    auto it = std::find(order.begin(), order.end(), gi);
    if (it == order.end()) return -1;
    const long i = static_cast<long>(it - order.begin()) + step;
    if (i < 0 || i >= static_cast<long>(order.size())) return -1;
    return static_cast<long>(order[static_cast<size_t>(i)]);
  }

  void prefetch(long gi) {
    if (gi < 0) return;
    Group& g = groups[static_cast<size_t>(gi)];
    if (g.shardable && g.confirmed) start_gather(static_cast<size_t>(gi));
  }

  void record(size_t gi) {
    if (std::find(recording.begin(), recording.end(), gi) != recording.end()) {
      order = recording;
      recording.clear();
    }
    recording.push_back(gi);
  }

  void pre_backward(size_t gi) {
    std::lock_guard<std::recursive_mutex> lock(mu);
    ensure_gathered(gi);
    if (opts.backward_prefetch) prefetch(neighbour(gi, -1));
  }

  // ---- backward -----------------------------------------------------------------------------

  void on_grad_ready(size_t k) {
    std::lock_guard<std::recursive_mutex> lock(mu);
    if (!started) {
      started = true;
      bw_mode = mode;
      for (auto& g : groups) {
        g.ready = 0;
        // A buffer still referenced from the last step (ZeRO-1) is not written again.
        if (!g.grad_pending) g.grad_full = at::Tensor();
      }
    }
    Param& p = params[k];
    Group& g = groups[p.group];
    ensure_grad_buffer(g);
    at::Tensor& grad = p.tensor.mutable_grad();
    at::Tensor slot = g.grad_full.narrow(0, p.offset, p.numel);
    if (grad.defined()) {
      if (g.grad_pending) {
        slot.add_(grad.reshape({-1}));
      } else {
        slot.copy_(grad.reshape({-1}));
      }
      grad.reset();
    } else if (!g.grad_pending) {
      slot.zero_();
    }
    if (++g.ready == g.params.size()) group_ready(p.group);
  }

  // This backward's flat gradient buffer (padding zeroed; slots are written by the hooks).
  void ensure_grad_buffer(Group& g) {
    if (g.grad_full.defined()) return;
    g.grad_full = at::empty({g.padded}, g.full.options().dtype(reduce_dtype));
    if (g.padded > g.numel) g.grad_full.narrow(0, g.numel, g.padded - g.numel).zero_();
  }

  void group_ready(size_t gi) {
    Group& g = groups[gi];
    if (bw_mode.communicate) {
      launch_reduce_scatter(gi);
    } else {
      g.grad_pending = true;
    }
    // The unit's backward is done: its parameters are not needed any more.
    reshard(gi);
  }

  void launch_reduce_scatter(size_t gi) {
    Group& g = groups[gi];
    g.grad_full.div_(static_cast<double>(mesh->data_parallel_size()));
    g.rs_out = at::empty({g.shard}, g.grad_full.options());
    g.rs_work = shard_group().reduce_scatter_async(g.rs_out, g.grad_full, ReduceOp::kSum);
    g.launched = true;
    ++stats.reduce_scatters;
    stats.reduce_scattered_bytes += g.padded * static_cast<int64_t>(g.grad_full.element_size());
    inflight.push_back(gi);
    // At most two in flight: the full gradient buffers of finished units are freed as they go.
    while (inflight.size() > 2) {
      complete_reduce_scatter(inflight.front());
      inflight.erase(inflight.begin());
    }
  }

  void complete_reduce_scatter(size_t gi) {
    Group& g = groups[gi];
    auto t0 = Clock::now();
    g.rs_work->wait();
    stats.reduce_scatter_wait_s += seconds_since(t0);
    g.rs_work.reset();
    if (auto& rep = mesh->replicate_group()) rep->all_reduce(g.rs_out, ReduceOp::kSum);
    at::Tensor shard_grad = g.rs_out;
    g.rs_out = at::Tensor();
    if (keep_full_grad) {
      // ZeRO-1 keeps the full gradient buffer; this rank's slice now holds the reduced values.
      at::Tensor mine = g.grad_full.narrow(0, shard_rank() * g.shard, g.shard);
      mine.copy_(shard_grad);
      shard_grad = mine;
    } else {
      g.grad_full = at::Tensor();
    }
    g.grad_pending = false;
    if (!bw_mode.optimizer_steps) {
      // Set aside until the backward after which the optimizer steps.
      if (g.shard_acc.defined()) {
        g.shard_acc.add_(shard_grad);
      } else {
        g.shard_acc = keep_full_grad ? shard_grad.clone() : shard_grad;
      }
      return;
    }
    if (g.shard_acc.defined()) {
      shard_grad.add_(g.shard_acc);
      g.shard_acc = at::Tensor();
    }
    if (offload) shard_grad = shard_grad.to(at::kCPU);
    for (size_t k : g.params) {
      Param& p = params[k];
      if (p.end == p.begin) continue;
      at::Tensor view = alias_of(shard_grad, p.shard_offset, {p.end - p.begin});
      at::Tensor& pg = p.piece.mutable_grad();
      if (pg.defined()) {
        pg.add_(view);
      } else {
        pg = view;
      }
    }
  }

  void on_backward_end() {
    std::lock_guard<std::recursive_mutex> lock(mu);
    started = false;
    std::vector<std::string> unused;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      Group& g = groups[gi];
      if (g.ready == g.params.size()) continue;
      for (size_t k : g.params) {
        if (!hooks->fired(k)) unused.push_back(params[k].name);
      }
      if (!g.grad_full.defined() && !bw_mode.communicate) {
        reshard(gi);  // nothing to keep and nothing to send
        continue;
      }
      // The missing gradients are zeros (or what was set aside for them), so every rank sends
      // the same groups in the same order.
      const bool fresh = !g.grad_full.defined();
      ensure_grad_buffer(g);
      if (!g.grad_pending) {
        for (size_t k : g.params) {
          if (fresh || !hooks->fired(k)) g.grad_full.narrow(0, params[k].offset, params[k].numel).zero_();
        }
      }
      g.ready = g.params.size();
      group_ready(gi);
    }
    if (!unused.empty() && !warned_unused) {
      warned_unused = true;
      logger().log(LogLevel::kWarning, LogScope::kAllRanks,
                   c10::str("sharding: ", unused.size(),
                            " parameter(s) received no gradient in this backward (first: ", unused.front(),
                            "); their gradients are reduced as zeros."));
    }
    for (size_t gi : inflight) complete_reduce_scatter(gi);
    inflight.clear();
    for (size_t gi = 0; gi < groups.size(); ++gi) reshard(gi);
    if (!recording.empty()) {
      order = recording;
      recording.clear();
    }
    if (++backwards == 1) check_units_confirmed();
  }

  void check_units_confirmed() {
    std::vector<std::string> missing;
    for (auto& g : groups) {
      if (g.shardable && !g.confirmed) missing.push_back(g.name.substr(5));
    }
    if (missing.empty() || warned_unconfirmed) return;
    warned_unconfirmed = true;
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 4; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 4) list += ", ...";
    logger().warning(
        "sharding: ", missing.size(), " unit(s) picked by the wrap policy (", list,
        ") never ran their forward through accel::unit_forward, so their parameters stay gathered "
        "(replicated). HINT: write the module's forward with accel::unit_forward "
        "(include/accel/distributed/unit.h), or wrap another module type.");
  }

  // ---- after the optimizer ------------------------------------------------------------------

  // Brings every parameter copy up to date with the master slices (after a step or a load).
  void sync_from_master() {
    torch::NoGradGuard no_grad;
    auto t0 = Clock::now();
    std::vector<std::pair<std::shared_ptr<Work>, at::Tensor>> works;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      Group& g = groups[gi];
      if (g.shardable && g.confirmed) {
        reshard(gi);
        if (!g.compute.is_same(g.master)) g.compute.copy_(g.master);
        continue;
      }
      at::Tensor src = g.master_in_full ? g.master.clone() : g.master.to(g.full.device(), g.param_dtype);
      if (g.shardable) g.compute.copy_(src);
      works.emplace_back(shard_group().all_gather_into_async(g.full, src), src);
    }
    for (auto& [w, src] : works) w->wait();
    stats.step_gather_s += seconds_since(t0);
  }
};

// ---- ShardedEngine ------------------------------------------------------------------------------

ShardedEngine::ShardedEngine(std::shared_ptr<torch::nn::Module> module, std::shared_ptr<ProcessMesh> mesh,
                             const ResolvedSharding& options)
    : impl_(std::make_shared<Impl>(std::move(module), std::move(mesh), options)) {
  ACCEL_CHECK(options.strategy != ShardingStrategy::kNoShard, "ShardedEngine: NO_SHARD is plain DDP.");
  impl_->build();
}

ShardedEngine::~ShardedEngine() = default;

std::string ShardedEngine::name() const {
  switch (impl_->opts.strategy) {
    case ShardingStrategy::kShardOptimizer:
      return "zero1";
    case ShardingStrategy::kShardGradOp:
      return "zero2";
    case ShardingStrategy::kFullShard:
      return "full_shard";
    case ShardingStrategy::kHybridShard:
      return "hybrid_shard";
    case ShardingStrategy::kHybridShardGradOp:
      return "hybrid_shard_zero2";
    case ShardingStrategy::kNoShard:
      break;
  }
  return "ddp";
}

void ShardedEngine::set_step_mode(StepMode mode) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mu);
  impl_->mode = mode;
}

StepMode ShardedEngine::step_mode() const {
  return impl_->mode;
}

size_t ShardedEngine::adopt_optimizer(std::vector<torch::optim::OptimizerParamGroup>& groups) {
  size_t n = 0;
  for (auto& group : groups) {
    for (auto& t : group.params()) {
      auto it = impl_->by_param.find(t.unsafeGetTensorImpl());
      if (it == impl_->by_param.end()) continue;
      t = impl_->params[it->second].piece;
      ++n;
    }
  }
  return n;
}

void ShardedEngine::after_optimizer_step() {
  std::lock_guard<std::recursive_mutex> lock(impl_->mu);
  impl_->sync_from_master();
}

bool ShardedEngine::owns(const at::Tensor& t) const {
  const auto* key = t.unsafeGetTensorImpl();
  return impl_->by_param.count(key) != 0 || impl_->by_piece.count(key) != 0;
}

at::Tensor ShardedEngine::gradient_holder(const at::Tensor& param) const {
  auto it = impl_->by_param.find(param.unsafeGetTensorImpl());
  return it == impl_->by_param.end() ? param : impl_->params[it->second].piece;
}

ProcessGroup* ShardedEngine::gradient_shard_group() const {
  return impl_->mesh->shard_group().get();
}

bool ShardedEngine::writes_pieces() const {
  return impl_->mesh->replicate_rank() == 0;
}

std::vector<TensorPiece> ShardedEngine::parameter_pieces() const {
  std::vector<TensorPiece> out;
  for (const auto& p : impl_->params) out.push_back({p.name, p.shape, p.begin, p.end, p.piece});
  return out;
}

void ShardedEngine::load_parameters(const RangeReader& read) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mu);
  torch::NoGradGuard no_grad;
  for (auto& p : impl_->params) {
    if (p.end == p.begin) continue;
    at::Tensor v = read(p.name, p.begin, p.end);
    ACCEL_CHECK_INPUT(v.numel() == p.end - p.begin, "load: '", p.name, "' range [", p.begin, ", ", p.end,
                      ") read ", v.numel(), " elements.");
    p.piece.copy_(v);
  }
  // Parameters that need no gradient, and buffers: whole on every rank.
  for (auto& item : impl_->module->named_parameters()) {
    if (item.value().requires_grad()) continue;
    at::Tensor v = read(item.key(), 0, item.value().numel());
    item.value().detach().copy_(v.view(item.value().sizes()));
  }
  for (auto& item : impl_->module->named_buffers()) {
    at::Tensor v = read(item.key(), 0, item.value().numel());
    item.value().detach().copy_(v.view(item.value().sizes()));
  }
  impl_->sync_from_master();
}

void ShardedEngine::for_each_full_tensor(
    const std::function<void(const std::string&, const at::Tensor&)>& sink, bool all_ranks) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mu);
  torch::NoGradGuard no_grad;
  const bool me = all_ranks || impl_->mesh->world()->rank() == 0;
  for (auto& g : impl_->groups) {
    // One group at a time: the full master values, gathered in the master dtype.
    at::Tensor full = at::empty({g.padded}, g.full.options().dtype(g.master_dtype));
    at::Tensor src = g.master.to(full.device());
    impl_->shard_group().all_gather_into_async(full, src)->wait();
    if (me) {
      for (size_t k : g.params) {
        const auto& p = impl_->params[k];
        sink(p.name, full.narrow(0, p.offset, p.numel).view(p.shape).to(at::kCPU));
      }
    }
  }
  if (!me) return;
  for (auto& item : impl_->module->named_parameters()) {
    if (!item.value().requires_grad()) sink(item.key(), item.value().detach().to(at::kCPU));
  }
  for (auto& item : impl_->module->named_buffers()) sink(item.key(), item.value().detach().to(at::kCPU));
}

std::vector<ParallelStrategy::TensorInfo> ShardedEngine::full_layout() const {
  std::vector<TensorInfo> out;
  for (const auto& g : impl_->groups) {
    for (size_t k : g.params) out.push_back({impl_->params[k].name, g.master_dtype, impl_->params[k].shape});
  }
  for (auto& item : impl_->module->named_parameters()) {
    if (!item.value().requires_grad())
      out.push_back({item.key(), item.value().scalar_type(), item.value().sizes().vec()});
  }
  for (auto& item : impl_->module->named_buffers())
    out.push_back({item.key(), item.value().scalar_type(), item.value().sizes().vec()});
  return out;
}

ParallelStrategy::CommStats ShardedEngine::comm_stats() const {
  CommStats c;
  c.exposed_wait_s = impl_->stats.gather_wait_s + impl_->stats.reduce_scatter_wait_s;
  c.syncs = impl_->backwards;
  for (const auto& g : impl_->groups) c.bucket_sizes.push_back(g.padded);
  return c;
}

std::map<std::string, at::Tensor> ShardedEngine::full_state_dict(bool rank0_only) {
  std::map<std::string, at::Tensor> out;
  for_each_full_tensor([&](const std::string& n, const at::Tensor& t) { out[n] = t.clone(); }, !rank0_only);
  return out;
}

at::Tensor ShardedEngine::run_unit(torch::nn::Module& module,
                                   const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                                   const std::vector<at::Tensor>& inputs) {
  Impl& d = *impl_;
  long gi = -1;
  {
    std::lock_guard<std::recursive_mutex> lock(d.mu);
    auto it = d.unit_group.find(&module);
    if (it != d.unit_group.end()) {
      gi = static_cast<long>(it->second);
      Impl::Group& g = d.groups[it->second];
      g.confirmed = true;
      d.record(it->second);
      d.ensure_gathered(it->second);
      if (d.opts.forward_prefetch) d.prefetch(d.neighbour(it->second, +1));
    }
  }
  // As FSDP's mixed precision (cast_forward_inputs): floating inputs of a unit whose parameters
  // are in a reduced dtype are cast to it.
  std::vector<at::Tensor> cast_inputs;
  const std::vector<at::Tensor>* args = &inputs;
  if (gi >= 0) {
    const auto pdt = d.groups[static_cast<size_t>(gi)].param_dtype;
    if (pdt == at::kBFloat16 || pdt == at::kHalf) {
      for (const auto& x : inputs) {
        cast_inputs.push_back(
            x.defined() && at::isFloatingType(x.scalar_type()) && x.scalar_type() != pdt ? x.to(pdt) : x);
      }
      args = &cast_inputs;
    }
  }
  at::Tensor out;
  const bool grad = torch::autograd::GradMode::is_enabled();
  std::weak_ptr<Impl> weak = impl_;
  auto regather = [weak, gi] {
    if (gi < 0) return;
    if (auto d = weak.lock()) d->pre_backward(static_cast<size_t>(gi));
  };
  if (d.opts.activation_checkpointing && grad) {
    out = accel::detail::checkpointed_call(fn, *args, d.unit_params[&module], regather);
  } else {
    out = fn(*args);
  }
  if (gi >= 0) {
    std::lock_guard<std::recursive_mutex> lock(d.mu);
    const auto g = static_cast<size_t>(gi);
    if (out.defined() && out.requires_grad()) {
      // Before autograd runs this unit's backward: its parameters again (and the unit before it).
      out.register_hook([regather](const at::Tensor& grad_out) {
        regather();
        return grad_out;
      });
      if (d.opts.reshard_after_forward) d.reshard(g);
    } else {
      d.reshard(g);  // no backward will follow (evaluation)
    }
  }
  return out;
}

std::vector<const torch::nn::Module*> ShardedEngine::unit_modules() const {
  std::vector<const torch::nn::Module*> out;
  for (const auto& [m, params] : impl_->unit_params) out.push_back(m);
  return out;
}

std::vector<ShardedEngine::GroupInfo> ShardedEngine::groups() const {
  std::vector<GroupInfo> out;
  for (const auto& g : impl_->groups) {
    GroupInfo info{g.name, g.shardable && g.confirmed, g.numel, g.padded, {}};
    for (size_t k : g.params) info.params.push_back(impl_->params[k].name);
    out.push_back(std::move(info));
  }
  return out;
}

ShardedEngine::Stats ShardedEngine::stats() const {
  return impl_->stats;
}

void ShardedEngine::reset_stats() {
  impl_->stats = Stats{};
}

double ShardedEngine::time_step_communication(int repeats) {
  std::lock_guard<std::recursive_mutex> lock(impl_->mu);
  torch::NoGradGuard no_grad;
  auto& group = impl_->shard_group();
  std::vector<double> times;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    group.barrier();
    auto t0 = Clock::now();
    std::vector<std::shared_ptr<Work>> works;
    std::vector<at::Tensor> keep;
    for (auto& g : impl_->groups) {
      const bool on_demand = g.shardable && g.confirmed;
      at::Tensor full = at::empty({g.padded}, g.full.options());
      at::Tensor shard = at::empty({g.shard}, g.full.options());
      at::Tensor grads = at::zeros({g.padded}, g.full.options().dtype(impl_->reduce_dtype));
      at::Tensor out = at::empty({g.shard}, grads.options());
      // Gathered for forward and again for backward (units), or once after the step (replicated).
      for (int k = 0; k < (on_demand ? 2 : 1); ++k) works.push_back(group.all_gather_into_async(full, shard));
      works.push_back(group.reduce_scatter_async(out, grads, ReduceOp::kSum));
      keep.insert(keep.end(), {full, shard, grads, out});
    }
    for (auto& w : works) w->wait();
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace accel::distributed
