#include "accel/accelerator.h"

#include "accel/distributed/grad_sync.h"
#include "accel/precision/cpu_compute.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

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
    group_ = distributed::ProcessGroup::create(state_, po);
    std::weak_ptr<distributed::ProcessGroup> weak = group_;
    logger().set_barrier([weak] {
      if (auto g = weak.lock()) g->barrier();
    });
  }
  if (options_.seed()) set_seed(*options_.seed());
  iteration_ = options_.project().iteration();
  logger().debug("Accelerator: ", state_.world_size, " process(es), device ", state_.device.str(),
                 ", mixed precision ", to_string(resolved_.mixed_precision), ", gradient accumulation ",
                 resolved_.gradient_accumulation_steps);
}

Accelerator::~Accelerator() {
  *alive_ = false;
  if (group_) logger().set_barrier(nullptr);
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
  st->device_type = state_.device.type();
  st->autocast_dtype = autocast_dtype();
  if (group_) {
    torch::NoGradGuard no_grad;
    // Every rank starts from rank 0's weights and buffers.
    for (auto& p : module->parameters()) {
      at::Tensor t = p.detach();
      group_->broadcast(t, 0);
    }
    for (auto& b : module->buffers()) {
      at::Tensor t = b.detach();
      group_->broadcast(t, 0);
    }
    std::vector<at::Tensor> params;
    std::vector<std::string> names;
    for (auto& item : module->named_parameters()) {
      params.push_back(item.value());
      names.push_back(item.key());
    }
    bool any_trainable = false;
    for (auto& p : params) any_trainable = any_trainable || p.requires_grad();
    if (any_trainable) {
      st->sync = std::make_shared<distributed::GradientSynchronizer>(group_, params, names, options_.ddp());
    }
    if (options_.ddp().broadcast_buffers() && !module->buffers().empty()) {
      std::weak_ptr<torch::nn::Module> wm = module;
      auto group = group_;
      st->before_forward = [wm, group] {
        auto m = wm.lock();
        if (!m || !m->is_training()) return;
        torch::NoGradGuard ng;
        for (auto& b : m->buffers()) {
          at::Tensor t = b.detach();
          group->broadcast(t, 0);
        }
      };
    }
  }
  models_.push_back(st);
  return st;
}

std::shared_ptr<AcceleratedOptimizer> Accelerator::prepare_optimizer(
    std::shared_ptr<torch::optim::Optimizer> opt) {
  ACCEL_CHECK(opt != nullptr, "prepare: the optimizer is null.");
  auto wrapped = std::make_shared<AcceleratedOptimizer>(this, std::move(opt), options_.fused_optimizer());
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
  loader.set_activity_hook([this, alive](data::DataLoaderBase* l, bool begin) {
    auto a = alive.lock();
    if (!a || !*a) return;
    if (begin) {
      active_loaders_.push_back(l);
    } else {
      auto it = std::find(active_loaders_.rbegin(), active_loaders_.rend(), l);
      if (it != active_loaders_.rend()) active_loaders_.erase(std::next(it).base());
    }
  });
}

data::DataLoaderBase* Accelerator::active_loader() const {
  return active_loaders_.empty() ? nullptr : active_loaders_.back();
}

// ---- training step ---------------------------------------------------------------------------

void Accelerator::backward(const at::Tensor& loss) {
  ACCEL_CHECK(loss.defined(), "backward: the loss is an undefined tensor.");
  AutocastDisabledGuard no_autocast(state_.device.type());
  at::Tensor l = loss;
  if (resolved_.gradient_accumulation_steps > 1) {
    l = l / static_cast<double>(resolved_.gradient_accumulation_steps);
  }
  if (scaler_) l = scaler_->scale(l);
  l.backward();
}

Accelerator::SyncGuard::SyncGuard(std::vector<std::shared_ptr<distributed::GradientSynchronizer>> syncs,
                                  bool sync)
    : syncs_(std::move(syncs)) {
  for (auto& s : syncs_) {
    if (s) s->set_require_sync(sync);
  }
}

Accelerator::SyncGuard::SyncGuard(SyncGuard&& other) noexcept : syncs_(std::move(other.syncs_)) {
  other.syncs_.clear();
}

Accelerator::SyncGuard::~SyncGuard() {
  for (auto& s : syncs_) {
    if (s) s->set_require_sync(true);
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
  std::vector<std::shared_ptr<distributed::GradientSynchronizer>> syncs;
  for (auto& s : states) syncs.push_back(s->sync);
  const bool communicate = sync_gradients_ || ga.sync_each_batch();
  return SyncGuard(std::move(syncs), communicate);
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

double Accelerator::clip_grad_norm_(const std::vector<at::Tensor>& parameters, double max_norm,
                                    double norm_type) {
  unscale_gradients();
  return torch::nn::utils::clip_grad_norm_(parameters, max_norm, norm_type);
}

void Accelerator::clip_grad_value_(const std::vector<at::Tensor>& parameters, double clip_value) {
  unscale_gradients();
  torch::nn::utils::clip_grad_value_(parameters, clip_value);
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
  // Shapes may differ off the root: send the shape first.
  std::string meta = c10::str(tensor.sizes());
  std::string root_meta = group_->broadcast_bytes(meta, root);
  at::Tensor t;
  if (state_.rank == root) {
    t = tensor.to(state_.device).clone().contiguous();
  } else {
    // Parse "[a, b, c]".
    std::vector<int64_t> shape;
    std::string digits;
    for (char c : root_meta) {
      if (std::isdigit(static_cast<unsigned char>(c))) {
        digits += c;
      } else if (!digits.empty()) {
        shape.push_back(std::stoll(digits));
        digits.clear();
      }
    }
    t = at::empty(shape, tensor.options().device(state_.device));
  }
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

bool fused_adamw_eligible(torch::optim::Optimizer& opt) {
  if (dynamic_cast<torch::optim::AdamW*>(&opt) == nullptr) return false;
  std::optional<c10::Device> device;
  std::optional<c10::ScalarType> dtype;
  for (auto& group : opt.param_groups()) {
    for (auto& p : group.params()) {
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
    : acc_(acc), optimizer_(std::move(optimizer)) {
  fused_ = try_fused && fused_adamw_eligible(*optimizer_);
}

std::vector<at::Tensor> AcceleratedOptimizer::parameters() const {
  std::vector<at::Tensor> out;
  for (auto& g : optimizer_->param_groups()) {
    for (auto& p : g.params()) out.push_back(p);
  }
  return out;
}

void AcceleratedOptimizer::unscale_gradients() {
  GradScaler* scaler = acc_->scaler();
  if (scaler == nullptr || found_inf_) return;
  std::vector<at::Tensor> grads;
  for (auto& p : parameters()) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  found_inf_ = scaler->unscale_(grads);
}

void AcceleratedOptimizer::step() {
  if (!acc_->sync_gradients()) return;
  GradScaler* scaler = acc_->scaler();
  step_was_skipped_ = false;
  if (scaler != nullptr) {
    unscale_gradients();
    at::Tensor found_inf = *found_inf_;
    found_inf_.reset();
    if (found_inf.item<float>() > 0) {
      step_was_skipped_ = true;
    } else if (fused_) {
      fused_adamw_step();
    } else {
      optimizer_->step();
    }
    scaler->update({found_inf});
    return;
  }
  if (fused_) {
    fused_adamw_step();
  } else {
    optimizer_->step();
  }
}

void AcceleratedOptimizer::zero_grad(bool set_to_none) {
  if (!acc_->sync_gradients()) return;
  optimizer_->zero_grad(set_to_none);
}

void AcceleratedOptimizer::fused_adamw_step() {
  torch::NoGradGuard no_grad;
  auto& state = optimizer_->state();
  for (auto& group : optimizer_->param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, max_sqs, steps;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      void* key = p.unsafeGetTensorImpl();
      auto it = state.find(key);
      if (it == state.end()) {
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(0);
        s->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        if (o.amsgrad()) s->max_exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        it = state.emplace(key, std::move(s)).first;
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      s.step(s.step() + 1);
      params.push_back(p);
      grads.push_back(p.grad());
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
