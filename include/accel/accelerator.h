// accel::Accelerator: the facade a training loop talks to, after Hugging Face Accelerate. It
// reads what `accel launch` decided (rank, world size, precision, accumulation, sharding), and
// wraps the loop's own objects:
//   - prepare(model): device placement and a parallel strategy (distributed/strategy.h): rank 0's
//     weights broadcast and bucketed all-reduce (DDP), or sharded data parallel (ZeRO-1/2/3,
//     FSDP); calling it (`model(x)`, `model.forward(x)`) returns fp32 outputs under mixed precision;
//   - prepare(optimizer): a torch::optim::Optimizer that skips step()/zero_grad() on accumulation
//     micro-steps, unscales and skips on inf/nan in fp16, uses the fused AdamW kernel when it can,
//     and steps on this rank's shards when the model is sharded;
//   - prepare(scheduler): steps only when the optimizer really stepped;
//   - prepare(loader) / prepare(torch::data dataset, options): this rank's shard, on the device.
// Mixed precision covers every call path of a model: autocast is on from the moment a prepared
// loader hands out a batch (or accumulate() is entered, or a prepared model is called) until the
// backward or the optimizer step, so `model->forward(x)`, `(*model).forward(x)` or a plain `Net&`
// all compute in bf16/fp16. Plus backward(), accumulate(), clipping, collectives, checkpoints.
#pragma once

#include "accel/core/error.h"
#include "accel/core/logging.h"
#include "accel/core/options.h"
#include "accel/core/state.h"
#include "accel/data/loader.h"
#include "accel/distributed/process_group.h"
#include "accel/precision/autocast.h"
#include "accel/precision/grad_scaler.h"
#include "accel/precision/output_cast.h"
#include "accel/tracking/tracker.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/data/dataloader_options.h>
#include <torch/data/samplers/random.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace accel {

class Accelerator;
namespace distributed {
class ParallelStrategy;
class ProcessMesh;
}  // namespace distributed
namespace checkpoint {
class StateFolderWriter;
}  // namespace checkpoint

namespace detail {

// What the Accelerator knows about one prepared model: the module and its strategy.
struct ModelState {
  std::shared_ptr<torch::nn::Module> module;
  std::shared_ptr<distributed::ParallelStrategy> strategy;
  Accelerator* accelerator = nullptr;
  std::shared_ptr<bool> alive;  // false once the Accelerator is gone
  bool fp32_outputs = true;     // convert outputs of a call to fp32 under mixed precision
  /// Before a forward through the prepared model: the training step's autocast and, with
  /// `strategy_work`, the strategy's pre-forward work (DDP: a buffer broadcast, collective).
  void enter_forward(bool strategy_work) const;
  bool mixed_precision() const;
};

template <typename M>
struct ModuleTraits;
template <typename Impl>
struct ModuleTraits<torch::nn::ModuleHolder<Impl>> {
  using ImplType = Impl;
  static std::shared_ptr<Impl> ptr(const torch::nn::ModuleHolder<Impl>& m) { return m.ptr(); }
};
template <typename Impl>
struct ModuleTraits<std::shared_ptr<Impl>> {
  using ImplType = Impl;
  static std::shared_ptr<Impl> ptr(const std::shared_ptr<Impl>& m) { return m; }
};
template <typename M>
requires std::is_base_of_v<torch::nn::ModuleHolder<typename M::ContainedType>, M>
struct ModuleTraits<M> : ModuleTraits<torch::nn::ModuleHolder<typename M::ContainedType>> {
};

template <typename T>
struct IsLoaderPtr : std::false_type {};
template <typename B>
struct IsLoaderPtr<std::shared_ptr<data::DataLoader<B>>> : std::true_type {};
template <typename T>
struct IsSharedPtr : std::false_type {};
template <typename T>
struct IsSharedPtr<std::shared_ptr<T>> : std::true_type {
  using Element = T;
};

/// What Accelerator::prepare(x) takes with one argument.
template <typename T>
concept Preparable = requires {
  typename ModuleTraits<T>::ImplType;
}
|| std::is_base_of_v<torch::optim::Optimizer, T> || IsLoaderPtr<T>::value ||
    (IsSharedPtr<T>::value &&
     requires { requires std::is_base_of_v<torch::optim::Optimizer, typename IsSharedPtr<T>::Element>; });

}  // namespace detail

/// A prepared model. `model(x)` and `model.forward(x)` run the forward (under the step's
/// autocast) and return fp32 outputs under mixed precision, as Accelerate does
/// (AcceleratorOptions::convert_outputs_to_fp32(false) keeps them as computed); `model->forward(x)`
/// and every other member reach the module directly (autocast still on, outputs as computed).
/// `*model` is the module; `model.module()` returns the original holder (unwrap_model).
template <typename M>
class PreparedModel {
 public:
  using Impl = typename detail::ModuleTraits<M>::ImplType;

  PreparedModel(M module, std::shared_ptr<detail::ModelState> state)
      : module_(std::move(module)), state_(std::move(state)) {}

  /// The module's members, with the step's autocast on (no communication happens here).
  Impl* operator->() const {
    state_->enter_forward(false);
    return detail::ModuleTraits<M>::ptr(module_).get();
  }
  Impl& operator*() const { return *detail::ModuleTraits<M>::ptr(module_); }

  /// The forward pass; outputs in fp32 under mixed precision (see the class comment).
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    state_->enter_forward(true);
    auto out = detail::ModuleTraits<M>::ptr(module_)->forward(std::forward<Args>(args)...);
    if (state_->fp32_outputs && state_->mixed_precision()) return to_fp32(std::move(out));
    return out;
  }
  template <typename... Args>
  decltype(auto) forward(Args&&... args) const {
    return (*this)(std::forward<Args>(args)...);
  }

  /// The user's module, without accel's wrapping (a holder sharing the same module).
  M module() const { return module_; }
  std::shared_ptr<Impl> ptr() const { return detail::ModuleTraits<M>::ptr(module_); }
  const std::shared_ptr<detail::ModelState>& state() const { return state_; }
  /// The parallel strategy of this model (distributed/strategy.h).
  distributed::ParallelStrategy& strategy() const { return *state_->strategy; }

 private:
  M module_;
  std::shared_ptr<detail::ModelState> state_;
};

/// A prepared optimizer. It is a torch::optim::Optimizer (pass it where an Optimizer& is
/// expected; build LR schedulers on it) that owns the parameter groups and state of the optimizer
/// it wraps and runs that optimizer's algorithm in step():
///   - step() does nothing on gradient-accumulation micro-steps; with fp16 it unscales first and
///     skips the step (and lowers the scale) when a gradient is inf/nan, across all ranks;
///   - zero_grad() does nothing on micro-steps; the base class's zero_grad() (through an
///     Optimizer&) clears `.grad`, which loses nothing on micro-steps either, because accel keeps
///     accumulated gradients aside until the step;
///   - for a sharded model its parameter groups hold this rank's fp32 shards, not the model's
///     parameters (every element-wise torch::optim optimizer works on them).
class AcceleratedOptimizer : public torch::optim::Optimizer {
 public:
  AcceleratedOptimizer(Accelerator* acc, std::shared_ptr<torch::optim::Optimizer> optimizer, bool try_fused);
  ~AcceleratedOptimizer() override;
  /// Steps when gradients are synchronised (see above). Returns the closure's loss, if any.
  at::Tensor step(LossClosure closure = nullptr) override;
  /// Clears gradients (set to none by default) when gradients are synchronised.
  void zero_grad(bool set_to_none = true);
  /// True when the last step() was skipped because of inf/nan gradients.
  bool step_was_skipped() const { return step_was_skipped_; }
  /// Whether step() uses the fused AdamW kernel.
  bool fused() const { return fused_; }
  /// Decides whether step() uses the fused AdamW kernel (after the parameters are final).
  void decide_fused(bool try_fused);
  /// Runs `fn` on the wrapped optimizer with this object's parameter groups and state moved into
  /// it (outside such a call the wrapped optimizer holds none).
  void with_inner(const std::function<void(torch::optim::Optimizer&)>& fn);
  /// The wrapped optimizer's type, e.g. for dynamic_cast checks.
  const torch::optim::Optimizer& inner() const { return *optimizer_; }

  /// Unscales the gradients once per step (fp16); later calls in the same step do nothing.
  void unscale_gradients();
  /// All parameters of all groups (the model's, or this rank's shards).
  std::vector<at::Tensor> parameters() const;

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  void swap_with_inner();
  void run_step(const LossClosure& closure, at::Tensor* loss);
  void fused_adamw_step();

  Accelerator* acc_;
  std::shared_ptr<bool> alive_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  bool fused_ = false;
  bool step_was_skipped_ = false;
  std::optional<at::Tensor> found_inf_;  // set once unscaled in this step
};

/// A prepared learning-rate scheduler.
class AcceleratedScheduler {
 public:
  AcceleratedScheduler(Accelerator* acc, std::function<void()> step_fn);
  /// Steps (num_processes times, as Accelerate, unless batches are split) when the optimizers
  /// really stepped; does nothing on accumulation micro-steps and after a skipped fp16 step.
  void step();
  /// Inner step() calls made so far.
  int64_t steps_taken() const { return steps_; }
  /// Replays `n` inner steps (used when resuming).
  void fast_forward(int64_t n);

 private:
  Accelerator* acc_;
  std::function<void()> step_fn_;
  int64_t steps_ = 0;
};

class Accelerator {
 public:
  /// Reads the process environment (RANK, WORLD_SIZE, ACCELERATE_*); creates the process group
  /// when the world size is > 1. Throws accel::Error for invalid options or environment.
  explicit Accelerator(AcceleratorOptions options = {});
  /// Same, with an explicit environment (tests).
  Accelerator(AcceleratorOptions options, const EnvMap& env);
  ~Accelerator();
  Accelerator(const Accelerator&) = delete;
  Accelerator& operator=(const Accelerator&) = delete;

  // ---- state -------------------------------------------------------------------------------
  const ProcessState& state() const { return state_; }
  c10::Device device() const { return state_.device; }
  int num_processes() const { return state_.world_size; }
  int process_index() const { return state_.rank; }
  int local_process_index() const { return state_.local_rank; }
  bool is_main_process() const { return state_.is_main_process(); }
  bool is_local_main_process() const { return state_.is_local_main_process(); }
  bool is_last_process() const { return state_.is_last_process(); }
  bool use_distributed() const { return state_.distributed(); }
  MixedPrecision mixed_precision() const { return resolved_.mixed_precision; }
  /// The sharding settings in effect (options > FSDP / DeepSpeed environment > defaults).
  const ResolvedSharding& sharding() const { return resolved_.sharding; }
  const AcceleratorOptions& options() const { return options_; }
  int64_t gradient_accumulation_steps() const { return resolved_.gradient_accumulation_steps; }
  void set_gradient_accumulation_steps(int64_t steps);
  /// True on micro-steps where gradients are synchronised and the optimizer steps.
  bool sync_gradients() const { return sync_gradients_; }
  void set_sync_gradients(bool sync) { sync_gradients_ = sync; }
  /// Micro-steps since the last synchronisation (Accelerate's `step`).
  int64_t step() const { return step_; }
  /// True when any prepared optimizer skipped its last step (fp16 inf/nan).
  bool optimizer_step_was_skipped() const;
  /// The loss scaler (fp16 only; null otherwise).
  GradScaler* scaler() { return scaler_.get(); }
  /// The dtype autocast uses, when mixed precision is on.
  std::optional<c10::ScalarType> autocast_dtype() const;
  /// The process group (null for a single process).
  const std::shared_ptr<distributed::ProcessGroup>& process_group() const { return group_; }

  // ---- prepare -----------------------------------------------------------------------------
  /// A model (a TORCH_MODULE holder or shared_ptr to a Module): moved to the device and given
  /// its parallel strategy (broadcast + all-reduce, or sharding per options().sharding() /
  /// FSDP / DeepSpeed settings). Collective when distributed.
  template <typename M>
  requires std::is_base_of_v<torch::nn::Module, typename detail::ModuleTraits<M>::ImplType> PreparedModel<M>
  prepare(M model) {
    auto ptr = detail::ModuleTraits<M>::ptr(model);
    ACCEL_CHECK(ptr != nullptr, "prepare: the model is empty (a null module holder).");
    return PreparedModel<M>(std::move(model), prepare_module(ptr));
  }

  /// An optimizer, moved in (owned): `acc.prepare(torch::optim::AdamW(params, opts))`.
  template <typename O>
  requires(std::is_base_of_v<torch::optim::Optimizer, O> && !std::is_base_of_v<AcceleratedOptimizer, O> &&
           !std::is_lvalue_reference_v<O>) std::shared_ptr<AcceleratedOptimizer> prepare(O&& optimizer) {
    return prepare_optimizer(std::make_shared<O>(std::move(optimizer)));
  }
  /// An optimizer the caller keeps alive. Its parameter groups and state move into the returned
  /// optimizer: build schedulers on the returned one (it is a torch::optim::Optimizer).
  template <typename O>
  requires(std::is_base_of_v<torch::optim::Optimizer, O> && !std::is_base_of_v<AcceleratedOptimizer, O>)
      std::shared_ptr<AcceleratedOptimizer> prepare(O& optimizer) {
    return prepare_optimizer(std::shared_ptr<torch::optim::Optimizer>(&optimizer, [](auto*) {}));
  }
  template <typename O>
  requires(std::is_base_of_v<torch::optim::Optimizer, O> && !std::is_base_of_v<AcceleratedOptimizer, O>)
      std::shared_ptr<AcceleratedOptimizer> prepare(std::shared_ptr<O> optimizer) {
    return prepare_optimizer(std::move(optimizer));
  }

  /// A learning-rate scheduler (anything with step(): torch::optim::LRScheduler subclasses, or
  /// your own), kept alive by the returned wrapper when passed as shared_ptr.
  template <typename S>
  requires requires(S& s) { s.step(); }
  std::shared_ptr<AcceleratedScheduler> prepare_scheduler(std::shared_ptr<S> scheduler) {
    return prepare_scheduler_fn([scheduler] { scheduler->step(); });
  }

  /// A data loader: sharded for this rank, batches moved to the device.
  template <typename B>
  std::shared_ptr<data::DataLoader<B>> prepare(std::shared_ptr<data::DataLoader<B>> loader) {
    prepare_loader(loader);
    return loader;
  }

  /// A LibTorch dataset (torch::data, with its .map() transforms) and loader options: this
  /// rank's shard of it as a resumable accel loader (data::make_dataset_loader), batches on the
  /// device. The shape of torch::data::make_data_loader:
  ///   auto loader = acc.prepare(std::move(dataset), torch::data::DataLoaderOptions(64).workers(2));
  /// `Sampler` RandomSampler (default, as make_data_loader) shuffles each epoch (seeded, the same
  /// order on every rank); SequentialSampler keeps the order.
  template <typename Sampler = torch::data::samplers::RandomSampler, typename Dataset>
  requires requires(Dataset& d, std::vector<size_t> i) { d.get_batch(i); }
  auto prepare(Dataset dataset, const torch::data::DataLoaderOptions& options) {
    auto o = data::DataLoaderOptions(static_cast<int64_t>(options.batch_size()))
                 .shuffle(std::is_same_v<Sampler, torch::data::samplers::RandomSampler>)
                 .drop_last(options.drop_last())
                 .num_workers(static_cast<int64_t>(options.workers()));
    return prepare(data::make_dataset_loader(std::move(dataset), std::move(o)));
  }
  /// The same with a batch size (make_data_loader(dataset, batch_size)).
  template <typename Sampler = torch::data::samplers::RandomSampler, typename Dataset>
  requires requires(Dataset& d, std::vector<size_t> i) { d.get_batch(i); }
  auto prepare(Dataset dataset, size_t batch_size) {
    return prepare<Sampler>(std::move(dataset), torch::data::DataLoaderOptions(batch_size));
  }
  /// The same with accel's loader options (shuffle, seed, sampler, prefetch, ...).
  template <typename Dataset>
  requires requires(Dataset& d, std::vector<size_t> i) { d.get_batch(i); }
  auto prepare(Dataset dataset, data::DataLoaderOptions options) {
    return prepare(data::make_dataset_loader(std::move(dataset), std::move(options)));
  }

  /// Anything else is a compile-time error that says what prepare() accepts.
  template <typename T>
  requires(!detail::Preparable<std::remove_cvref_t<T>>) void prepare(T&&) {
    static_assert(detail::Preparable<std::remove_cvref_t<T>>,
                  "accel::Accelerator::prepare accepts: a model (a TORCH_MODULE holder or "
                  "std::shared_ptr to a torch::nn::Module), a torch::optim optimizer (moved in, by "
                  "reference or shared_ptr), a std::shared_ptr<accel::data::DataLoader<B>> "
                  "(make_loader / make_tensor_loader), or a LibTorch dataset plus loader options "
                  "(prepare(dataset, torch::data::DataLoaderOptions(...))). Schedulers go to "
                  "prepare_scheduler().");
  }

  // ---- training step -----------------------------------------------------------------------
  /// loss / gradient_accumulation_steps, scaled for fp16, then backward.
  void backward(const at::Tensor& loss);

  /// Gradient accumulation context: decides sync_gradients for this micro-step (the last batch
  /// of a prepared loader always syncs), suspends communication when not syncing, and starts the
  /// step's autocast.
  class SyncGuard {
   public:
    SyncGuard(std::vector<std::shared_ptr<distributed::ParallelStrategy>> strategies, bool communicate,
              bool optimizer_steps);
    ~SyncGuard();
    SyncGuard(SyncGuard&& other) noexcept;
    SyncGuard(const SyncGuard&) = delete;
    SyncGuard& operator=(const SyncGuard&) = delete;
    SyncGuard& operator=(SyncGuard&&) = delete;

   private:
    std::vector<std::shared_ptr<distributed::ParallelStrategy>> strategies_;
  };
  /// For the given models (all prepared models when none are given).
  template <typename... Models>
  [[nodiscard]] SyncGuard accumulate(const Models&... models) {
    return accumulate_states({models.state()...});
  }
  /// Suspends gradient communication for the given model while the guard lives.
  template <typename M>
  [[nodiscard]] SyncGuard no_sync(const PreparedModel<M>& model) {
    return SyncGuard({model.state()->strategy}, false, true);
  }

  /// Autocast with the Accelerator's mixed precision, for code outside the prepared forward
  /// (a no-op guard when mixed precision is off).
  [[nodiscard]] std::unique_ptr<AutocastGuard> autocast() const;

  /// Unscales (fp16) then clips the total gradient norm; returns the norm before clipping. For a
  /// sharded model the norm is over the whole model (each rank's shards, reduced across ranks).
  double clip_grad_norm_(const std::vector<at::Tensor>& parameters, double max_norm, double norm_type = 2.0);
  /// Unscales (fp16) then clamps every gradient element to [-clip_value, clip_value].
  void clip_grad_value_(const std::vector<at::Tensor>& parameters, double clip_value);
  /// Unscales the gradients of every prepared optimizer (fp16); a no-op otherwise.
  void unscale_gradients();

  // ---- collectives (no-ops for a single process) --------------------------------------------
  /// Every rank's tensor concatenated along dim 0 (0-d tensors become [1]). Shapes must match on
  /// all ranks; a mismatch raises accel::DistributedError naming the ranks and shapes (use
  /// pad_across_processes first for ragged tensors).
  at::Tensor gather(const at::Tensor& tensor);
  /// gather(), then drops the samples duplicated to even out the last batch of the active loader.
  at::Tensor gather_for_metrics(const at::Tensor& tensor);
  /// "sum" | "mean" | "max" | "min" across ranks.
  at::Tensor reduce(const at::Tensor& tensor, const std::string& reduction = "sum");
  /// Pads `tensor` along `dim` to the largest size across ranks with `pad_index`.
  at::Tensor pad_across_processes(const at::Tensor& tensor, int64_t dim = 0, double pad_index = 0,
                                  bool pad_first = false);
  /// Rank `root`'s tensor on every rank.
  at::Tensor broadcast(const at::Tensor& tensor, int root = 0);
  /// Rank `root`'s bytes on every rank.
  std::string broadcast_object(const std::string& bytes, int root = 0);
  std::vector<std::string> gather_object(const std::string& bytes);
  /// Barrier (with the group's timeout).
  void wait_for_everyone();
  /// Runs `fn` on the main process first, then on the others.
  void main_process_first(const std::function<void()>& fn);
  void local_main_process_first(const std::function<void()>& fn);
  /// This rank's contiguous share of `items`: the first len % N ranks get one more; with
  /// apply_padding every rank gets the same count (the last item repeated).
  template <typename T>
  std::vector<T> split_between_processes(const std::vector<T>& items, bool apply_padding = false) const {
    auto [begin, end, pad] = split_range(static_cast<int64_t>(items.size()), apply_padding);
    std::vector<T> out(items.begin() + begin, items.begin() + end);
    for (int64_t i = 0; i < pad && !items.empty(); ++i) out.push_back(items.back());
    return out;
  }
  /// Cross-rank flag: set_trigger() on any rank makes check_trigger() true on all (then reset).
  void set_trigger() { trigger_ = true; }
  bool check_trigger();

  // ---- checkpoints -------------------------------------------------------------------------
  /// Saves everything needed to resume exactly (see docs/checkpoints.md): weights, optimizer,
  /// schedulers, scaler, every rank's RNG, loaders' epoch and position, counters and registered
  /// objects. Atomic: the folder appears complete or not at all. With no folder, needs
  /// project().automatic_checkpoint_naming: writes project_dir/checkpoints/checkpoint_<iteration>
  /// and keeps at most project().total_limit of them. Collective: call on every rank.
  std::string save_state(const std::string& dir = "");
  /// Restores a folder written by save_state (with no folder: the latest automatic checkpoint).
  /// Every file is verified (size, checksum, shapes) before anything is changed. A checkpoint
  /// from another world size loads weights and optimizer state; the data position then cannot
  /// transfer and is reported (loaders restart their saved epoch).
  void load_state(const std::string& dir = "");
  /// Objects with `std::map<std::string, at::Tensor> state_dict()` and
  /// `void load_state_dict(const std::map<std::string, at::Tensor>&)`, saved by save_state.
  template <typename T>
  void register_for_checkpointing(std::shared_ptr<T> obj) {
    custom_.push_back({[obj] { return obj->state_dict(); },
                       [obj](const std::map<std::string, at::Tensor>& s) { obj->load_state_dict(s); }});
  }
  /// The model's full weights on the CPU, keyed by parameter/buffer name (unwrapped; gathered
  /// from the shards of a sharded model, in fp32). Collective. With `main_process_only` the other
  /// ranks get an empty map.
  template <typename M>
  std::map<std::string, at::Tensor> get_state_dict(const PreparedModel<M>& model,
                                                   bool main_process_only = false) {
    return module_state(*model.state(), main_process_only);
  }
  /// Writes the model's weights as `model.safetensors` (sharded with an index above
  /// `max_shard_bytes`) in `dir`, from the main process (a sharded model is gathered one unit
  /// at a time); returns the files written. Collective.
  template <typename M>
  std::vector<std::string> save_model(const PreparedModel<M>& model, const std::string& dir,
                                      int64_t max_shard_bytes = int64_t{10} << 30) {
    return save_module(*model.state(), dir, max_shard_bytes);
  }
  /// The next iteration of `loader` starts at batch `n` (Accelerate's skip_first_batches).
  template <typename B>
  std::shared_ptr<data::DataLoader<B>> skip_first_batches(std::shared_ptr<data::DataLoader<B>> loader,
                                                          int64_t n) {
    loader->skip_first_batches(n);
    return loader;
  }
  /// Index of the next automatic checkpoint.
  int64_t save_iteration() const { return iteration_; }

  // ---- tracking ----------------------------------------------------------------------------
  /// Starts the trackers named in options().log_with() (plus `extra`) under the logging folder
  /// (project().logging_dir(), else project_dir/logs, else ./logs), main process only.
  void init_trackers(const std::string& project, const tracking::Values& config = {},
                     std::vector<std::unique_ptr<tracking::GeneralTracker>> extra = {});
  /// Logs to every tracker (main process only; a no-op before init_trackers on other ranks).
  void log(const tracking::Values& values, int64_t step);
  /// Finishes the trackers.
  void end_training();
  /// The tracker called `name` (nullptr when absent or not started here).
  tracking::GeneralTracker* get_tracker(const std::string& name) const;

  // ---- misc --------------------------------------------------------------------------------
  /// Seeds torch's CPU and CUDA generators (seed + rank when device_specific).
  void set_seed(uint64_t seed, bool device_specific = false);
  /// Prints on the local main process only.
  template <typename... Args>
  void print(const Args&... args) const {
    if (is_local_main_process()) print_line(c10::str(args...));
  }
  /// The original model of a prepared one.
  template <typename M>
  M unwrap_model(const PreparedModel<M>& model) const {
    return model.module();
  }
  /// Drops accel's references to prepared objects, resets the step counter and releases cached
  /// device memory.
  void free_memory();

  // ---- internals used by the wrappers -------------------------------------------------------
  const std::vector<std::weak_ptr<AcceleratedOptimizer>>& optimizers() const { return optimizers_; }
  data::DataLoaderBase* active_loader() const;
  /// Starts the training step's autocast (mixed precision only) if it is not running.
  void begin_autocast_step();
  /// Ends it (before backward and after the optimizer step), clearing autocast's weight cache.
  void end_autocast_step();
  /// After `opt` really stepped: the strategies owning its parameters update the models.
  void after_optimizer_step(const AcceleratedOptimizer& opt);
  /// Makes an fp16 inf/nan flag agree across ranks when gradients are sharded.
  void reduce_found_inf(at::Tensor& found_inf);
  /// DeepSpeed's gradient_clipping (0: none), applied by the prepared optimizers.
  double gradient_clipping() const { return resolved_.sharding.gradient_clipping; }
  /// The process mesh (null for a single process).
  const std::shared_ptr<distributed::ProcessMesh>& mesh() const { return mesh_; }

 private:
  std::shared_ptr<detail::ModelState> prepare_module(std::shared_ptr<torch::nn::Module> module);
  friend class AcceleratedOptimizer;
  std::shared_ptr<AcceleratedOptimizer> prepare_optimizer(std::shared_ptr<torch::optim::Optimizer> opt);
  void adopt_parameters(AcceleratedOptimizer& opt, distributed::ParallelStrategy& strategy);
  void save_models_and_optimizers(checkpoint::StateFolderWriter& w);
  void log_sharding() const;
  std::shared_ptr<AcceleratedScheduler> prepare_scheduler_fn(std::function<void()> step);
  void prepare_loader(std::shared_ptr<data::DataLoaderBase> loader);
  std::map<std::string, at::Tensor> module_state(detail::ModelState& m, bool main_process_only);
  std::vector<std::string> save_module(detail::ModelState& m, const std::string& dir,
                                       int64_t max_shard_bytes);
  std::shared_ptr<distributed::ParallelStrategy> strategy_of(const at::Tensor& t) const;
  std::vector<std::shared_ptr<detail::ModelState>> live_models() const;
  SyncGuard accumulate_states(std::vector<std::shared_ptr<detail::ModelState>> states);
  std::tuple<int64_t, int64_t, int64_t> split_range(int64_t n, bool apply_padding) const;
  void print_line(const std::string& line) const;
  void check_same_shapes(const at::Tensor& tensor, const char* op);

  AcceleratorOptions options_;
  ResolvedOptions resolved_;
  ProcessState state_;
  std::shared_ptr<distributed::ProcessGroup> group_;
  std::shared_ptr<distributed::ProcessMesh> mesh_;
  std::unique_ptr<GradScaler> scaler_;
  std::unique_ptr<AutocastGuard> step_autocast_;  // the training step's autocast
  bool autocast_checked_ = false;                 // a backward's graph was seen with mixed precision
  std::optional<std::string> fault_save_;         // ACCEL_FAULT_SAVE (tests), read by save_state
  bool sync_gradients_ = true;
  int64_t step_ = 0;
  bool trigger_ = false;
  std::vector<std::weak_ptr<detail::ModelState>> models_;
  std::vector<std::weak_ptr<AcceleratedOptimizer>> optimizers_;
  std::vector<std::weak_ptr<AcceleratedScheduler>> schedulers_;
  std::vector<data::DataLoaderBase*> active_loaders_;
  std::vector<std::weak_ptr<data::DataLoaderBase>> loaders_;
  struct Custom {
    std::function<std::map<std::string, at::Tensor>()> save;
    std::function<void(const std::map<std::string, at::Tensor>&)> load;
  };
  std::vector<Custom> custom_;
  int64_t iteration_ = 0;
  std::unique_ptr<tracking::Trackers> trackers_;
  std::shared_ptr<bool> alive_;  // loaders' hooks check it before touching the Accelerator
};

}  // namespace accel
