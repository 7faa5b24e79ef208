#include "accel/accelerator.h"

#include "accel/distributed/mesh.h"
#include "accel/distributed/strategy.h"
#include "accel/precision/cpu_compute.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <unordered_set>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if __has_include(<c10/core/CachingDeviceAllocator.h>) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9))
#define ACCEL_HAS_DEVICE_ALLOCATOR 1
#include <c10/core/CachingDeviceAllocator.h>
#else
#define ACCEL_HAS_DEVICE_ALLOCATOR 0
#endif

namespace accel {

namespace {

// CPU training allocates and frees the same large activation buffers every step. glibc serves
// blocks over its mmap threshold (32 MiB at most) with fresh mmap()s and returns freed heap tops
// to the kernel, so each step page-faults its activations in again: measured 13 % of a MiniLM
// step (seq 256, batch 16, 1 thread) spent in the kernel. Keeping large blocks on the heap and
// never trimming it makes freed blocks reusable, as torch's CUDA caching allocator does on GPUs;
// peak RSS was unchanged in that measurement. Process-wide and once per process; glibc only.
// ACCEL_CPU_MALLOC_TUNING=0 leaves malloc alone. Accelerator::free_memory() trims the heap.
bool g_malloc_tuned = false;

void tune_cpu_malloc(const EnvMap& env) {
#if defined(__GLIBC__)
  auto it = env.find("ACCEL_CPU_MALLOC_TUNING");
  if (it != env.end() && (it->second == "0" || it->second == "false" || it->second == "off")) return;
  if (g_malloc_tuned) return;
  // Values set by the user through GLIBC_TUNABLES / MALLOC_*_ env variables win.
  auto user_set = [&](const char* name) {
    auto e = env.find(name);
    return e != env.end() && !e->second.empty();
  };
  auto tunables = env.find("GLIBC_TUNABLES");
  if (tunables != env.end() && tunables->second.find("glibc.malloc.") != std::string::npos) return;
  if (!user_set("MALLOC_MMAP_MAX_")) mallopt(M_MMAP_MAX, 0);
  if (!user_set("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  g_malloc_tuned = true;
#else
  (void)env;
#endif
}

}  // namespace

// ---- prepared models -----------------------------------------------------------------------------

void detail::ModelState::enter_forward(bool strategy_work) const {
  if (!*alive) return;
  if (strategy_work) strategy->pre_forward();
  accelerator->begin_autocast_step();
}

bool detail::ModelState::mixed_precision() const {
  return *alive && accelerator->autocast_dtype().has_value();
}

// ---- construction ----------------------------------------------------------------------------

Accelerator::Accelerator(AcceleratorOptions options)
    : Accelerator(std::move(options), current_environment()) {}

Accelerator::Accelerator(AcceleratorOptions options, const EnvMap& env)
    : options_(std::move(options)), alive_(std::make_shared<bool>(true)) {
  ProcessEnv penv = read_process_env(env);
  resolved_ = resolve_options(options_, penv);
  state_ = make_process_state(penv, resolved_.cpu, resolved_.cpu ? 0 : cuda_device_count());
  logger().set_rank(state_.rank, state_.world_size, state_.local_rank);
  if (state_.device.is_cpu()) {
    // Parameter sharding (FULL_SHARD, HYBRID_SHARD) frees the gathered parameters of each unit
    // every step; under the tuning the heap kept all of it resident (bert-large FULL_SHARD on 4
    // processes: 5.5-6.2 GiB per process against a 1.9 GiB tensor peak, killed for memory on
    // 24 GiB; trimming once after prepare did not help, the growth is in the steps). Without it:
    // 2.0 GiB. ZeRO-1/2 keep full parameters and keep the tuning (and its speed).
    const auto strat = resolved_.sharding.strategy;
    if (state_.distributed() &&
        (strat == ShardingStrategy::kFullShard || strat == ShardingStrategy::kHybridShard))
      logger().debug("CPU malloc tuning off: parameter sharding returns freed memory to the system");
    else
      tune_cpu_malloc(env);
    if (resolved_.mixed_precision != MixedPrecision::kNo) {
      const bool bf16 = resolved_.mixed_precision == MixedPrecision::kBF16;
      const auto dt = bf16 ? at::kBFloat16 : at::kHalf;
      const char* name = bf16 ? "bf16" : "fp16";
      const auto mode = resolve_cpu_autocast_compute(dt, env);
      set_cpu_autocast_compute(dt, mode);
      const bool native = bf16 ? cpu_has_native_bf16() : cpu_has_native_fp16();
      if (!native && mode == CpuAutocastCompute::kNative) {
        logger().warning(
            "mixed_precision=", name, " on a CPU without native ", name,
            " instructions, with ACCEL_CPU_AUTOCAST_COMPUTE=native: LibTorch's reduced-precision "
            "matmuls and convolutions fall back to slow kernels here and training will be several "
            "times slower than fp32. HINT: unset ACCEL_CPU_AUTOCAST_COMPUTE (linear, matmul, "
            "attention and convolutions then compute in fp32 with ",
            name, " inputs and outputs) or use mixed_precision 'no'.");
      } else if (!native) {
        logger().info("mixed_precision=", name, " on a CPU without native ", name,
                      " instructions: linear, matmul, attention and convolutions (conv1d/2d/3d, "
                      "transposed too) compute in fp32 on ",
                      name, " inputs and round their outputs to ", name,
                      "; other ops follow LibTorch's autocast policy (ACCEL_CPU_AUTOCAST_COMPUTE=native "
                      "for LibTorch's ",
                      name, " kernels everywhere).");
      }
    }
  }
  if (resolved_.mixed_precision == MixedPrecision::kFP16 && options_.scaler().enabled()) {
    scaler_ = std::make_unique<GradScaler>(options_.scaler(), state_.device);
  }
  if (state_.distributed()) {
    distributed::ProcessGroup::Options po;
    po.backend = options_.process_group().backend();
    po.timeout = std::chrono::milliseconds(static_cast<int64_t>(resolved_.timeout_s * 1000.0));
    po.heartbeat = std::chrono::milliseconds(static_cast<int64_t>(resolved_.heartbeat_s * 1000.0));
    po.gloo_socket_ifname = penv.gloo_socket_ifname.value_or("");
    group_ = distributed::ProcessGroup::create(state_, po);
    std::weak_ptr<distributed::ProcessGroup> weak = group_;
    logger().set_barrier([weak] {
      if (auto g = weak.lock()) g->barrier();
    });
    // Shard groups: the whole world, or one machine's processes for HYBRID_*.
    const auto& sh = resolved_.sharding;
    int shard_size = state_.world_size;
    if (sh.strategy == ShardingStrategy::kHybridShard ||
        sh.strategy == ShardingStrategy::kHybridShardGradOp) {
      shard_size = sh.shard_group_size > 0 ? sh.shard_group_size : state_.local_world_size;
    }
    mesh_ = std::make_shared<distributed::ProcessMesh>(group_, shard_size);
  }
  log_sharding();
  if (options_.seed()) set_seed(*options_.seed());
  iteration_ = options_.project().iteration();
  logger().debug("Accelerator: ", state_.world_size, " process(es), device ", state_.device.str(),
                 ", mixed precision ", to_string(resolved_.mixed_precision), ", gradient accumulation ",
                 resolved_.gradient_accumulation_steps);
}

Accelerator::~Accelerator() {
  *alive_ = false;
  step_autocast_.reset();
  if (group_) logger().set_barrier(nullptr);
}

void Accelerator::log_sharding() const {
  const auto& sh = resolved_.sharding;
  if (!sh.enabled()) {
    if (sh.source == "FSDP" || sh.source == "DeepSpeed")
      logger().info(sh.source, " settings ask for no sharding (",
                    sh.source == "FSDP" ? "NO_SHARD" : "ZeRO stage 0", "): plain data parallel.");
    return;
  }
  std::string honoured, ignored;
  for (const auto& h : sh.honoured) honoured += (honoured.empty() ? "" : ", ") + h;
  for (const auto& i : sh.ignored) ignored += (ignored.empty() ? "" : "; ") + i;
  if (!state_.distributed() && sh.enabled()) {
    logger().warning(
        "sharding (", to_string(sh.strategy),
        ") was asked for but this is a single process: nothing to shard, training runs unsharded. "
        "HINT: launch several processes (accel launch --num_processes N).");
    return;
  }
  logger().info("sharded data parallel (", sh.source.empty() ? "options" : sh.source, "): ", honoured);
  if (!ignored.empty()) logger().warning("sharding settings accel cannot honour, ignored: ", ignored);
  if (sh.offload_params && state_.device.is_cpu())
    logger().info(
        "offload_params=true: the device is the CPU, so master shards and optimizer states are "
        "already in CPU memory (nothing to move).");
}

void Accelerator::set_gradient_accumulation_steps(int64_t steps) {
  ACCEL_CHECK(steps >= 1, "gradient_accumulation_steps=", steps, " is not valid; accepted: an integer >= 1.");
  resolved_.gradient_accumulation_steps = steps;
}

std::optional<c10::ScalarType> Accelerator::autocast_dtype() const {
  switch (resolved_.mixed_precision) {
    case MixedPrecision::kBF16:
      return c10::kBFloat16;
    case MixedPrecision::kFP16:
      return c10::kHalf;
    case MixedPrecision::kNo:
      return std::nullopt;
  }
  return std::nullopt;
}

bool Accelerator::optimizer_step_was_skipped() const {
  for (const auto& w : optimizers_) {
    if (auto o = w.lock(); o && o->step_was_skipped()) return true;
  }
  return false;
}

// ---- prepare ---------------------------------------------------------------------------------

std::shared_ptr<detail::ModelState> Accelerator::prepare_module(std::shared_ptr<torch::nn::Module> module) {
  if (options_.device_placement()) module->to(state_.device);
  auto st = std::make_shared<detail::ModelState>();
  st->module = module;
  st->accelerator = this;
  st->alive = alive_;
  st->fp32_outputs = options_.convert_outputs_to_fp32();
  st->strategy = distributed::make_strategy(module, mesh_, options_, resolved_);
  // Optimizers prepared before this model now step on what its strategy owns.
  for (auto& w : optimizers_) {
    if (auto o = w.lock()) adopt_parameters(*o, *st->strategy);
  }
  models_.push_back(st);
  return st;
}

void Accelerator::adopt_parameters(AcceleratedOptimizer& opt, distributed::ParallelStrategy& strategy) {
  // Parameters that already have optimizer state cannot move to their shards.
  std::unordered_set<const c10::TensorImpl*> stateful;
  for (auto& g : opt.param_groups()) {
    for (auto& p : g.params()) {
      if (strategy.owns(p) && opt.state().count(p.unsafeGetTensorImpl()))
        stateful.insert(p.unsafeGetTensorImpl());
    }
  }
  ACCEL_CHECK(
      stateful.empty() || !strategy.sharded(),
      "prepare: the optimizer already has state (it stepped) for parameters of a sharded model. HINT: "
      "prepare the model and the optimizer before the first step.");
  strategy.adopt_optimizer(opt.param_groups());
}

std::shared_ptr<AcceleratedOptimizer> Accelerator::prepare_optimizer(
    std::shared_ptr<torch::optim::Optimizer> opt) {
  ACCEL_CHECK(opt != nullptr, "prepare: the optimizer is null.");
  auto wrapped = std::make_shared<AcceleratedOptimizer>(this, std::move(opt), options_.fused_optimizer());
  for (const auto& m : live_models()) adopt_parameters(*wrapped, *m->strategy);
  wrapped->decide_fused(options_.fused_optimizer());
  optimizers_.push_back(wrapped);
  return wrapped;
}

std::shared_ptr<AcceleratedScheduler> Accelerator::prepare_scheduler_fn(std::function<void()> step) {
  auto wrapped = std::make_shared<AcceleratedScheduler>(this, std::move(step));
  schedulers_.push_back(wrapped);
  return wrapped;
}

void Accelerator::prepare_loader(std::shared_ptr<data::DataLoaderBase> shared) {
  data::DataLoaderBase& loader = *shared;
  loaders_.push_back(shared);
  data::ShardSpec spec;
  spec.rank = state_.rank;
  spec.world_size = state_.world_size;
  spec.split_batches = options_.dataloader().split_batches();
  spec.even_batches = options_.dataloader().even_batches();
  loader.set_shard(spec);
  if (options_.device_placement()) loader.set_device(state_.device, options_.dataloader().non_blocking());
  uint64_t seed = options_.dataloader().data_seed().value_or(options_.seed().value_or(0));
  loader.set_default_seed(seed);
  std::weak_ptr<bool> alive = alive_;
  loader.set_activity_hook([this, alive](data::DataLoaderBase* l, data::DataLoaderBase::Event event) {
    auto a = alive.lock();
    if (!a || !*a) return;
    switch (event) {
      case data::DataLoaderBase::Event::kBegin:
        active_loaders_.push_back(l);
        break;
      case data::DataLoaderBase::Event::kBatch:
        begin_autocast_step();  // a new batch: a training (or evaluation) step starts
        break;
      case data::DataLoaderBase::Event::kEnd: {
        auto it = std::find(active_loaders_.rbegin(), active_loaders_.rend(), l);
        if (it != active_loaders_.rend()) active_loaders_.erase(std::next(it).base());
        end_autocast_step();
        break;
      }
    }
  });
}

data::DataLoaderBase* Accelerator::active_loader() const {
  return active_loaders_.empty() ? nullptr : active_loaders_.back();
}

// ---- training step ---------------------------------------------------------------------------

namespace {

// Whether the autograd graph behind `loss` has a bf16/fp16 tensor anywhere (nodes' inputs are
// the forward's outputs). Bounded walk.
bool graph_has_reduced_precision(const at::Tensor& loss) {
  auto root = loss.grad_fn();
  if (!root) return false;
  std::deque<torch::autograd::Node*> todo{root.get()};
  std::unordered_set<torch::autograd::Node*> seen{root.get()};
  size_t visited = 0;
  while (!todo.empty() && visited < 200000) {
    torch::autograd::Node* n = todo.front();
    todo.pop_front();
    ++visited;
    for (uint32_t i = 0; i < n->num_inputs(); ++i) {
      const auto dt = n->input_metadata(i).dtype();
      if (dt == at::kBFloat16 || dt == at::kHalf) return true;
    }
    for (const auto& e : n->next_edges()) {
      if (e.function && seen.insert(e.function.get()).second) todo.push_back(e.function.get());
    }
  }
  return false;
}

}  // namespace

void Accelerator::backward(const at::Tensor& loss) {
  ACCEL_CHECK(loss.defined(), "backward: the loss is an undefined tensor.");
  end_autocast_step();
  if (autocast_dtype() && !autocast_checked_ && loss.requires_grad()) {
    autocast_checked_ = true;
    if (!graph_has_reduced_precision(loss)) {
      logger().warning(
          "mixed_precision=", to_string(resolved_.mixed_precision), " but this backward's graph has no ",
          to_string(resolved_.mixed_precision),
          " tensor: the forward ran without autocast, in fp32. HINT: run the forward inside the loop "
          "over a prepared loader, inside acc.accumulate(model), or through the prepared model "
          "(model(x)); or wrap it in acc.autocast().");
    }
  }
  AutocastDisabledGuard no_autocast(state_.device.type());
  at::Tensor l = loss;
  if (resolved_.gradient_accumulation_steps > 1) {
    l = l / static_cast<double>(resolved_.gradient_accumulation_steps);
  }
  if (scaler_) l = scaler_->scale(l);
  l.backward();
}

void Accelerator::begin_autocast_step() {
  if (step_autocast_) return;
  auto dt = autocast_dtype();
  if (!dt) return;
  step_autocast_ = std::make_unique<AutocastGuard>(state_.device.type(), *dt);
}

void Accelerator::end_autocast_step() {
  step_autocast_.reset();
}

Accelerator::SyncGuard::SyncGuard(std::vector<std::shared_ptr<distributed::ParallelStrategy>> strategies,
                                  bool communicate, bool optimizer_steps)
    : strategies_(std::move(strategies)) {
  for (auto& s : strategies_) {
    if (s) s->set_step_mode({communicate, optimizer_steps});
  }
}

Accelerator::SyncGuard::SyncGuard(SyncGuard&& other) noexcept : strategies_(std::move(other.strategies_)) {
  other.strategies_.clear();
}

Accelerator::SyncGuard::~SyncGuard() {
  for (auto& s : strategies_) {
    if (s) s->set_step_mode({});
  }
}

Accelerator::SyncGuard Accelerator::accumulate_states(
    std::vector<std::shared_ptr<detail::ModelState>> states) {
  if (states.empty()) {
    for (auto& w : models_) {
      if (auto s = w.lock()) states.push_back(s);
    }
  }
  const auto& ga = options_.gradient_accumulation();
  data::DataLoaderBase* loader = active_loader();
  if (ga.sync_with_dataloader() && loader != nullptr && loader->end_of_dataloader()) {
    step_ = 0;
    sync_gradients_ = true;
  } else {
    ++step_;
    sync_gradients_ = step_ % resolved_.gradient_accumulation_steps == 0;
  }
  std::vector<std::shared_ptr<distributed::ParallelStrategy>> strategies;
  for (auto& s : states) strategies.push_back(s->strategy);
  begin_autocast_step();
  return SyncGuard(std::move(strategies), sync_gradients_ || ga.sync_each_batch(), sync_gradients_);
}

std::unique_ptr<AutocastGuard> Accelerator::autocast() const {
  auto dt = autocast_dtype();
  return std::make_unique<AutocastGuard>(state_.device.type(), dt.value_or(c10::kFloat), dt.has_value());
}

void Accelerator::unscale_gradients() {
  if (!scaler_) return;
  for (auto& w : optimizers_) {
    if (auto o = w.lock()) o->unscale_gradients();
  }
}

std::shared_ptr<distributed::ParallelStrategy> Accelerator::strategy_of(const at::Tensor& t) const {
  for (const auto& w : models_) {
    auto m = w.lock();
    if (m && m->strategy->owns(t)) return m->strategy;
  }
  return nullptr;
}

double Accelerator::clip_grad_norm_(const std::vector<at::Tensor>& parameters, double max_norm,
                                    double norm_type) {
  unscale_gradients();
  // Gradients held whole on this rank, and shards whose norms add up across a shard group.
  std::vector<at::Tensor> whole, shards;
  distributed::ProcessGroup* group = nullptr;
  for (const auto& p : parameters) {
    auto s = strategy_of(p);
    if (s && s->gradient_shard_group() != nullptr) {
      shards.push_back(s->gradient_holder(p));
      group = s->gradient_shard_group();
    } else {
      whole.push_back(p);
    }
  }
  if (group == nullptr) return torch::nn::utils::clip_grad_norm_(parameters, max_norm, norm_type);
  torch::NoGradGuard no_grad;
  const bool inf = std::isinf(norm_type);
  auto partial = [&](const std::vector<at::Tensor>& ts) {
    at::Tensor acc = at::zeros({1}, at::TensorOptions().dtype(at::kDouble).device(state_.device));
    for (const auto& t : ts) {
      const at::Tensor& g = t.grad();
      if (!g.defined() || g.numel() == 0) continue;
      at::Tensor n = g.detach().to(at::kDouble).norm(norm_type);
      acc = inf ? at::maximum(acc, n.reshape({1})) : acc + n.pow(norm_type);
    }
    return acc;
  };
  at::Tensor mine = partial(shards).to(state_.device);
  group->all_reduce(mine, inf ? distributed::ReduceOp::kMax : distributed::ReduceOp::kSum);
  at::Tensor local = partial(whole).to(state_.device);
  const double total = inf ? std::max(local.item<double>(), mine.item<double>())
                           : std::pow(local.item<double>() + mine.item<double>(), 1.0 / norm_type);
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (auto* set : {&whole, &shards}) {
      for (auto& t : *set) {
        if (t.grad().defined()) t.mutable_grad().mul_(coef);
      }
    }
  }
  return total;
}

void Accelerator::reduce_found_inf(at::Tensor& found_inf) {
  if (!group_) return;
  bool sharded = false;
  for (const auto& m : live_models()) sharded = sharded || m->strategy->gradient_shard_group() != nullptr;
  if (!sharded) return;
  at::Tensor t = found_inf.to(state_.device).to(at::kFloat).reshape({1});
  group_->all_reduce(t, distributed::ReduceOp::kMax);
  found_inf.copy_(t.reshape(found_inf.sizes()).to(found_inf.device(), found_inf.scalar_type()));
}

void Accelerator::after_optimizer_step(const AcceleratedOptimizer& opt) {
  end_autocast_step();
  std::vector<at::Tensor> params = opt.parameters();
  for (const auto& m : live_models()) {
    auto& s = *m->strategy;
    if (!s.sharded()) continue;
    for (const auto& p : params) {
      if (s.owns(p)) {
        s.after_optimizer_step();
        break;
      }
    }
  }
}

void Accelerator::clip_grad_value_(const std::vector<at::Tensor>& parameters, double clip_value) {
  unscale_gradients();
  std::vector<at::Tensor> holders;
  for (const auto& p : parameters) {
    auto s = strategy_of(p);
    holders.push_back(s ? s->gradient_holder(p) : p);
  }
  torch::nn::utils::clip_grad_value_(holders, clip_value);
}

// ---- collectives -----------------------------------------------------------------------------

void Accelerator::check_same_shapes(const at::Tensor& tensor, const char* op) {
  std::string mine = c10::str(tensor.sizes(), " ", tensor.scalar_type());
  auto all = group_->all_gather_bytes(mine);
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      std::string detail;
      for (size_t k = 0; k < all.size(); ++k) detail += c10::str("\n  rank ", k, ": ", all[k]);
      throw DistributedError(
          c10::str(op, ": tensors differ across ranks (shape and dtype must match):", detail,
                   "\nHINT: call pad_across_processes() first for tensors of different lengths."));
    }
  }
}

at::Tensor Accelerator::gather(const at::Tensor& tensor) {
  at::Tensor t = tensor.dim() == 0 ? tensor.reshape({1}) : tensor;
  if (!group_) return t;
  check_same_shapes(t, "gather");
  at::Tensor src = t.device() == state_.device ? t : t.to(state_.device);
  auto parts = group_->all_gather(src);
  return at::cat(parts, 0).to(t.device());
}

at::Tensor Accelerator::gather_for_metrics(const at::Tensor& tensor) {
  at::Tensor all = gather(tensor);
  data::DataLoaderBase* loader = active_loader();
  if (loader != nullptr && loader->end_of_dataloader()) {
    const int64_t rem = loader->remainder();
    if (rem > 0 && rem < all.size(0)) return all.narrow(0, 0, rem);
  }
  return all;
}

at::Tensor Accelerator::reduce(const at::Tensor& tensor, const std::string& reduction) {
  ACCEL_CHECK(reduction == "sum" || reduction == "mean" || reduction == "max" || reduction == "min",
              "reduce: reduction='", reduction, "' is not known; accepted: sum, mean, max, min.");
  if (!group_) return tensor.clone();
  check_same_shapes(tensor, "reduce");
  at::Tensor t = tensor.to(state_.device).clone().contiguous();
  distributed::ReduceOp op = reduction == "max"   ? distributed::ReduceOp::kMax
                             : reduction == "min" ? distributed::ReduceOp::kMin
                                                  : distributed::ReduceOp::kSum;
  group_->all_reduce(t, op);
  if (reduction == "mean") t = t / static_cast<double>(state_.world_size);
  return t.to(tensor.device());
}

at::Tensor Accelerator::pad_across_processes(const at::Tensor& tensor, int64_t dim, double pad_index,
                                             bool pad_first) {
  if (!group_) return tensor;
  ACCEL_CHECK(tensor.dim() > 0, "pad_across_processes: a 0-d tensor has no dimension to pad.");
  if (dim < 0) dim += tensor.dim();
  ACCEL_CHECK(dim >= 0 && dim < tensor.dim(), "pad_across_processes: dim ", dim, " is out of range for a ",
              tensor.dim(), "-d tensor.");
  at::Tensor size = at::full({1}, tensor.size(dim), at::kLong);
  auto sizes = group_->all_gather(size);
  int64_t max_size = 0;
  for (auto& s : sizes) max_size = std::max(max_size, s.item<int64_t>());
  if (max_size == tensor.size(dim)) return tensor;
  auto shape = tensor.sizes().vec();
  shape[dim] = max_size;
  at::Tensor out = at::full(shape, pad_index, tensor.options());
  const int64_t start = pad_first ? max_size - tensor.size(dim) : 0;
  out.narrow(dim, start, tensor.size(dim)).copy_(tensor);
  return out;
}

at::Tensor Accelerator::broadcast(const at::Tensor& tensor, int root) {
  if (!group_) return tensor;
  // Shape and dtype may differ off the root: the root sends them first, as integers.
  at::Tensor header = at::zeros({2}, at::kLong);
  if (state_.rank == root) {
    header[0] = tensor.dim();
    header[1] = static_cast<int64_t>(tensor.scalar_type());
  }
  group_->broadcast(header, root);
  const int64_t ndim = header[0].item<int64_t>();
  const auto dtype = static_cast<c10::ScalarType>(header[1].item<int64_t>());
  at::Tensor sizes =
      state_.rank == root ? at::tensor(tensor.sizes().vec(), at::kLong) : at::zeros({ndim}, at::kLong);
  if (ndim > 0) group_->broadcast(sizes, root);
  std::vector<int64_t> shape(sizes.data_ptr<int64_t>(), sizes.data_ptr<int64_t>() + ndim);
  at::Tensor t = state_.rank == root ? tensor.to(state_.device).clone().contiguous()
                                     : at::empty(shape, tensor.options().dtype(dtype).device(state_.device));
  group_->broadcast(t, root);
  return t.to(tensor.device());
}

std::string Accelerator::broadcast_object(const std::string& bytes, int root) {
  if (!group_) return bytes;
  return group_->broadcast_bytes(bytes, root);
}

std::vector<std::string> Accelerator::gather_object(const std::string& bytes) {
  if (!group_) return {bytes};
  return group_->all_gather_bytes(bytes);
}

void Accelerator::wait_for_everyone() {
  if (group_) group_->barrier();
}

void Accelerator::main_process_first(const std::function<void()>& fn) {
  if (!is_main_process()) wait_for_everyone();
  fn();
  if (is_main_process()) wait_for_everyone();
}

void Accelerator::local_main_process_first(const std::function<void()>& fn) {
  if (!is_local_main_process()) wait_for_everyone();
  fn();
  if (is_local_main_process()) wait_for_everyone();
}

std::tuple<int64_t, int64_t, int64_t> Accelerator::split_range(int64_t n, bool apply_padding) const {
  const int64_t world = state_.world_size;
  const int64_t r = state_.rank;
  const int64_t base = n / world;
  const int64_t extra = n % world;
  const int64_t begin = r * base + std::min(r, extra);
  const int64_t count = base + (r < extra ? 1 : 0);
  const int64_t pad = apply_padding ? (base + (extra > 0 ? 1 : 0)) - count : 0;
  return {begin, begin + count, pad};
}

bool Accelerator::check_trigger() {
  at::Tensor flag = at::full({1}, trigger_ ? 1.0f : 0.0f, at::kFloat);
  if (group_) {
    flag = flag.to(state_.device);
    group_->all_reduce(flag);
  }
  trigger_ = false;
  return flag.item<float>() > 0;
}

// ---- tracking ----------------------------------------------------------------------------------

void Accelerator::init_trackers(const std::string& project, const tracking::Values& config,
                                std::vector<std::unique_ptr<tracking::GeneralTracker>> extra) {
  const auto& p = options_.project();
  std::string dir = p.logging_dir();
  if (dir.empty()) dir = (p.project_dir().empty() ? std::string(".") : p.project_dir()) + "/logs";
  trackers_ = std::make_unique<tracking::Trackers>(is_main_process(), options_.log_with(), dir);
  for (auto& t : extra) trackers_->add(std::move(t));
  trackers_->init(project, config);
}

void Accelerator::log(const tracking::Values& values, int64_t step) {
  ACCEL_CHECK(trackers_ != nullptr, "log: call init_trackers() first.");
  trackers_->log(values, step);
}

void Accelerator::end_training() {
  if (trackers_) trackers_->end();
  wait_for_everyone();
}

tracking::GeneralTracker* Accelerator::get_tracker(const std::string& name) const {
  return trackers_ ? trackers_->get(name) : nullptr;
}

// ---- misc ------------------------------------------------------------------------------------

void Accelerator::set_seed(uint64_t seed, bool device_specific) {
  const uint64_t s = device_specific ? seed + static_cast<uint64_t>(state_.rank) : seed;
  torch::manual_seed(s);  // CPU and every CUDA device
}

void Accelerator::print_line(const std::string& line) const {
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

void Accelerator::free_memory() {
  step_autocast_.reset();
  models_.clear();
  optimizers_.clear();
  schedulers_.clear();
  step_ = 0;
  sync_gradients_ = true;
  // Give cached memory back: the CUDA caching allocator's free blocks, and glibc's heap when
  // tune_cpu_malloc() stopped it from trimming itself.
#if ACCEL_HAS_DEVICE_ALLOCATOR
  if (state_.device.is_cuda()) c10::getDeviceAllocator(c10::kCUDA)->emptyCache();
#endif
#if defined(__GLIBC__)
  if (g_malloc_tuned) malloc_trim(0);
#endif
}

// ---- AcceleratedOptimizer ----------------------------------------------------------------------

namespace {

bool fused_adamw_eligible(const torch::optim::Optimizer& inner,
                          const std::vector<torch::optim::OptimizerParamGroup>& groups) {
  if (dynamic_cast<const torch::optim::AdamW*>(&inner) == nullptr) return false;
  std::optional<c10::Device> device;
  std::optional<c10::ScalarType> dtype;
  for (const auto& group : groups) {
    for (const auto& p : group.params()) {
      if (p.is_sparse() || !at::isFloatingType(p.scalar_type())) return false;
      if (!p.device().is_cpu() && !p.device().is_cuda()) return false;
      if (device && *device != p.device()) return false;
      if (dtype && *dtype != p.scalar_type()) return false;
      device = p.device();
      dtype = p.scalar_type();
    }
  }
  return device.has_value();
}

}  // namespace

AcceleratedOptimizer::AcceleratedOptimizer(Accelerator* acc,
                                           std::shared_ptr<torch::optim::Optimizer> optimizer, bool try_fused)
    : torch::optim::Optimizer(std::vector<torch::optim::OptimizerParamGroup>{},
                              optimizer->defaults().clone()),
      acc_(acc),
      alive_(acc->alive_),
      optimizer_(std::move(optimizer)) {
  // This object owns the groups and state from now on; the wrapped optimizer gets them back only
  // while it steps (with_inner).
  swap_with_inner();
  decide_fused(try_fused);
}

AcceleratedOptimizer::~AcceleratedOptimizer() {
  // Give a caller-owned optimizer its groups and state back.
  swap_with_inner();
}

void AcceleratedOptimizer::decide_fused(bool try_fused) {
  fused_ = try_fused && fused_adamw_eligible(*optimizer_, param_groups_);
}

void AcceleratedOptimizer::swap_with_inner() {
  std::swap(param_groups_, optimizer_->param_groups());
  std::swap(state_, optimizer_->state());
}

void AcceleratedOptimizer::with_inner(const std::function<void(torch::optim::Optimizer&)>& fn) {
  swap_with_inner();
  try {
    fn(*optimizer_);
  } catch (...) {
    swap_with_inner();
    throw;
  }
  swap_with_inner();
}

void AcceleratedOptimizer::save(torch::serialize::OutputArchive& archive) const {
  auto* self = const_cast<AcceleratedOptimizer*>(this);
  self->with_inner([&](torch::optim::Optimizer& o) { o.save(archive); });
}

void AcceleratedOptimizer::load(torch::serialize::InputArchive& archive) {
  with_inner([&](torch::optim::Optimizer& o) { o.load(archive); });
}

std::vector<at::Tensor> AcceleratedOptimizer::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& g : param_groups_) {
    for (const auto& p : g.params()) out.push_back(p);
  }
  return out;
}

void AcceleratedOptimizer::unscale_gradients() {
  if (!*alive_) return;
  GradScaler* scaler = acc_->scaler();
  if (scaler == nullptr || found_inf_) return;
  std::vector<at::Tensor> grads;
  for (auto& p : parameters()) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  at::Tensor found = scaler->unscale_(grads);
  acc_->reduce_found_inf(found);  // sharded gradients: any rank's inf/nan skips everywhere
  found_inf_ = found;
}

at::Tensor AcceleratedOptimizer::step(LossClosure closure) {
  ACCEL_CHECK(*alive_, "AcceleratedOptimizer::step: the Accelerator that prepared it is gone.");
  if (!acc_->sync_gradients()) return {};
  GradScaler* scaler = acc_->scaler();
  step_was_skipped_ = false;
  at::Tensor loss;
  if (scaler != nullptr) {
    unscale_gradients();
    at::Tensor found_inf = *found_inf_;
    found_inf_.reset();
    if (found_inf.item<float>() > 0) {
      step_was_skipped_ = true;
    } else {
      run_step(closure, &loss);
    }
    scaler->update({found_inf});
  } else {
    run_step(closure, &loss);
  }
  if (!step_was_skipped_) acc_->after_optimizer_step(*this);
  return loss;
}

void AcceleratedOptimizer::run_step(const LossClosure& closure, at::Tensor* loss) {
  if (const double clip = acc_->gradient_clipping(); clip > 0) acc_->clip_grad_norm_(parameters(), clip);
  if (fused_ && !closure) {
    fused_adamw_step();
    return;
  }
  with_inner([&](torch::optim::Optimizer& o) { *loss = o.step(closure); });
}

void AcceleratedOptimizer::zero_grad(bool set_to_none) {
  if (!acc_->sync_gradients()) return;
  torch::optim::Optimizer::zero_grad(set_to_none);
}

void AcceleratedOptimizer::fused_adamw_step() {
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      void* key = p.unsafeGetTensorImpl();
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(0);
        s->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        if (o.amsgrad()) s->max_exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(s)).first;
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      s.step(s.step() + 1);
      params.push_back(p);
      // Gradients reduced in another dtype (sharding with reduce_dtype) are cast for the kernel.
      grads.push_back(p.grad().scalar_type() == p.scalar_type() ? p.grad() : p.grad().to(p.scalar_type()));
      exp_avgs.push_back(s.exp_avg());
      exp_avg_sqs.push_back(s.exp_avg_sq());
      if (o.amsgrad()) max_sqs.push_back(s.max_exp_avg_sq());
      steps.push_back(at::full({}, static_cast<double>(s.step()),
                               at::TensorOptions().dtype(at::kFloat).device(p.device())));
    }
    if (params.empty()) continue;
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps, o.lr(), std::get<0>(o.betas()),
                      std::get<1>(o.betas()), o.weight_decay(), o.eps(), o.amsgrad(), /*maximize=*/false);
  }
}

// ---- AcceleratedScheduler ----------------------------------------------------------------------

AcceleratedScheduler::AcceleratedScheduler(Accelerator* acc, std::function<void()> step_fn)
    : acc_(acc), step_fn_(std::move(step_fn)) {}

void AcceleratedScheduler::step() {
  if (acc_->options().step_scheduler_with_optimizer()) {
    if (!acc_->sync_gradients()) return;
    if (acc_->optimizer_step_was_skipped()) return;
  }
  const int n = acc_->options().dataloader().split_batches() ? 1 : acc_->num_processes();
  for (int i = 0; i < n; ++i) {
    step_fn_();
    ++steps_;
  }
}

void AcceleratedScheduler::fast_forward(int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    step_fn_();
    ++steps_;
  }
}

}  // namespace accel
