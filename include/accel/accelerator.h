// accel::Accelerator: the facade a training loop talks to, after Hugging Face Accelerate. It
// reads what `accel launch` decided (rank, world size, precision, accumulation), and wraps the
// loop's own objects:
//   - prepare(model): device placement, broadcast from rank 0, bucketed gradient all-reduce,
//     autocast around the forward (`model->forward(...)` / `model(...)`);
//   - prepare(optimizer): skips step()/zero_grad() on accumulation micro-steps, unscales and
//     skips on inf/nan in fp16, uses the fused AdamW kernel when it can;
//   - prepare(scheduler): steps only when the optimizer really stepped;
//   - prepare(loader): this rank's shard, batches on the device.
// plus backward(), accumulate(), clipping, collectives and process control.
#pragma once

#include "accel/core/error.h"
#include "accel/core/logging.h"
#include "accel/core/options.h"
#include "accel/core/state.h"
#include "accel/data/loader.h"
#include "accel/distributed/process_group.h"
#include "accel/precision/autocast.h"
#include "accel/precision/grad_scaler.h"
#include "accel/tracking/tracker.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
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
class GradientSynchronizer;
}

namespace detail {

// What the Accelerator knows about one prepared model.
struct ModelState {
  std::shared_ptr<torch::nn::Module> module;
  std::shared_ptr<distributed::GradientSynchronizer> sync;  // null when not distributed
  c10::DeviceType device_type = c10::kCPU;
  std::optional<c10::ScalarType> autocast_dtype;  // set when mixed precision is on
  std::function<void()> before_forward;           // buffer broadcast (DDP)
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

}  // namespace detail

/// A prepared model. `model->forward(x)` and `model(x)` run under the Accelerator's autocast;
/// every other member (`model->parameters()`, `model->train()`) reaches the module as usual.
/// `model.module()` returns the original holder (unwrap_model).
template <typename M>
class PreparedModel {
 public:
  using Impl = typename detail::ModuleTraits<M>::ImplType;

  PreparedModel(M module, std::shared_ptr<detail::ModelState> state)
      : module_(std::move(module)), state_(std::move(state)) {}

  /// Keeps autocast on for the rest of the full expression `model->forward(...)...;`.
  class Access {
   public:
    Access(Impl* impl, const detail::ModelState& s) : impl_(impl) {
      if (s.autocast_dtype) guard_.emplace(s.device_type, *s.autocast_dtype);
    }
    Impl* operator->() const { return impl_; }

   private:
    Impl* impl_;
    std::optional<AutocastGuard> guard_;
  };

  Access operator->() const { return Access(detail::ModuleTraits<M>::ptr(module_).get(), *state_); }
  Impl& operator*() const { return *detail::ModuleTraits<M>::ptr(module_); }

  /// The forward pass with everything DDP does before it (buffer broadcast) and autocast.
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    if (state_->before_forward) state_->before_forward();
    Access a(detail::ModuleTraits<M>::ptr(module_).get(), *state_);
    return a->forward(std::forward<Args>(args)...);
  }

  /// The user's module, without accel's wrapping (a holder sharing the same module).
  M module() const { return module_; }
  std::shared_ptr<Impl> ptr() const { return detail::ModuleTraits<M>::ptr(module_); }
  const std::shared_ptr<detail::ModelState>& state() const { return state_; }

 private:
  M module_;
  std::shared_ptr<detail::ModelState> state_;
};

/// A prepared optimizer: no-ops on accumulation micro-steps, loss-scale aware.
class AcceleratedOptimizer {
 public:
  AcceleratedOptimizer(Accelerator* acc, std::shared_ptr<torch::optim::Optimizer> optimizer, bool try_fused);
  /// Steps when gradients are synchronised; with fp16, unscales first and skips the step (and
  /// halves the scale) when a gradient is inf/nan.
  void step();
  /// Clears gradients (set to none) when gradients are synchronised.
  void zero_grad(bool set_to_none = true);
  /// True when the last step() was skipped because of inf/nan gradients.
  bool step_was_skipped() const { return step_was_skipped_; }
  /// Whether step() uses the fused AdamW kernel.
  bool fused() const { return fused_; }
  torch::optim::Optimizer& inner() { return *optimizer_; }
  const std::shared_ptr<torch::optim::Optimizer>& inner_ptr() const { return optimizer_; }

  /// Unscales the gradients once per step (fp16); later calls in the same step do nothing.
  void unscale_gradients();
  /// All parameters of all groups.
  std::vector<at::Tensor> parameters() const;

 private:
  void fused_adamw_step();

  Accelerator* acc_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  bool fused_ = false;
  bool step_was_skipped_ = false;
  std::optional<at::Tensor> found_inf_;  // set once unscaled in this step
  std::vector<at::Tensor> fused_steps_;  // per-parameter step tensors for the fused kernel
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
  /// A model (a TORCH_MODULE holder or shared_ptr to a Module): moved to the device, parameters
  /// and buffers broadcast from rank 0, gradient sync attached when distributed.
  template <typename M>
  requires std::is_base_of_v<torch::nn::Module, typename detail::ModuleTraits<M>::ImplType> PreparedModel<M>
  prepare(M model) {
    auto ptr = detail::ModuleTraits<M>::ptr(model);
    ACCEL_CHECK(ptr != nullptr, "prepare: the model is empty (a null module holder).");
    return PreparedModel<M>(std::move(model), prepare_module(ptr));
  }

  /// An optimizer, moved in (owned): `acc.prepare(torch::optim::AdamW(params, opts))`.
  template <typename O>
  requires(std::is_base_of_v<torch::optim::Optimizer, O> &&
           !std::is_lvalue_reference_v<O>) std::shared_ptr<AcceleratedOptimizer> prepare(O&& optimizer) {
    return prepare_optimizer(std::make_shared<O>(std::move(optimizer)));
  }
  /// An optimizer the caller keeps alive (schedulers built on it keep working).
  template <typename O>
  requires std::is_base_of_v<torch::optim::Optimizer, O> std::shared_ptr<AcceleratedOptimizer> prepare(
      O& optimizer) {
    return prepare_optimizer(std::shared_ptr<torch::optim::Optimizer>(&optimizer, [](auto*) {}));
  }
  template <typename O>
  requires std::is_base_of_v<torch::optim::Optimizer, O> std::shared_ptr<AcceleratedOptimizer> prepare(
      std::shared_ptr<O> optimizer) {
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

  // ---- training step -----------------------------------------------------------------------
  /// loss / gradient_accumulation_steps, scaled for fp16, then backward.
  void backward(const at::Tensor& loss);

  /// Gradient accumulation context: decides sync_gradients for this micro-step (the last batch
  /// of a prepared loader always syncs) and suspends communication when not syncing.
  class SyncGuard {
   public:
    SyncGuard(std::vector<std::shared_ptr<distributed::GradientSynchronizer>> syncs, bool sync);
    ~SyncGuard();
    SyncGuard(SyncGuard&& other) noexcept;
    SyncGuard(const SyncGuard&) = delete;
    SyncGuard& operator=(const SyncGuard&) = delete;
    SyncGuard& operator=(SyncGuard&&) = delete;

   private:
    std::vector<std::shared_ptr<distributed::GradientSynchronizer>> syncs_;
  };
  /// For the given models (all prepared models when none are given).
  template <typename... Models>
  [[nodiscard]] SyncGuard accumulate(const Models&... models) {
    return accumulate_states({models.state()...});
  }
  /// Suspends gradient communication for the given model while the guard lives.
  template <typename M>
  [[nodiscard]] SyncGuard no_sync(const PreparedModel<M>& model) {
    return SyncGuard({model.state()->sync}, false);
  }

  /// Autocast with the Accelerator's mixed precision, for code outside the prepared forward
  /// (a no-op guard when mixed precision is off).
  [[nodiscard]] std::unique_ptr<AutocastGuard> autocast() const;

  /// Unscales (fp16) then clips the total gradient norm; returns the norm before clipping.
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
  /// The model's weights on the CPU, keyed by parameter/buffer name (unwrapped).
  template <typename M>
  std::map<std::string, at::Tensor> get_state_dict(const PreparedModel<M>& model) const {
    return module_state(*model.ptr());
  }
  /// Writes the model's weights as `model.safetensors` (sharded with an index above
  /// `max_shard_bytes`) in `dir`, on the main process only; returns the files written.
  template <typename M>
  std::vector<std::string> save_model(const PreparedModel<M>& model, const std::string& dir,
                                      int64_t max_shard_bytes = int64_t{10} << 30) {
    return save_module(*model.ptr(), dir, max_shard_bytes);
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

 private:
  std::shared_ptr<detail::ModelState> prepare_module(std::shared_ptr<torch::nn::Module> module);
  std::shared_ptr<AcceleratedOptimizer> prepare_optimizer(std::shared_ptr<torch::optim::Optimizer> opt);
  std::shared_ptr<AcceleratedScheduler> prepare_scheduler_fn(std::function<void()> step);
  void prepare_loader(std::shared_ptr<data::DataLoaderBase> loader);
  std::map<std::string, at::Tensor> module_state(torch::nn::Module& m) const;
  std::vector<std::string> save_module(torch::nn::Module& m, const std::string& dir, int64_t max_shard_bytes);
  std::vector<std::shared_ptr<detail::ModelState>> live_models() const;
  SyncGuard accumulate_states(std::vector<std::shared_ptr<detail::ModelState>> states);
  std::tuple<int64_t, int64_t, int64_t> split_range(int64_t n, bool apply_padding) const;
  void print_line(const std::string& line) const;
  void check_same_shapes(const at::Tensor& tensor, const char* op);

  AcceleratorOptions options_;
  ResolvedOptions resolved_;
  ProcessState state_;
  std::shared_ptr<distributed::ProcessGroup> group_;
  std::unique_ptr<GradScaler> scaler_;
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
