// ParallelStrategy: the one interface between the Accelerator and a data-parallel strategy for
// one prepared model. The Accelerator asks it to prepare the module (broadcast or shard), to
// bracket forwards, to switch gradient communication on and off (no_sync, accumulation), to own
// what the optimizer steps on (full parameters, or this rank's shards), to reduce gradient norms
// and inf/nan checks, and to give and take the model's state. Implementations: a single process
// ("none"), data parallel ("ddp", distributed/grad_sync.h) and the sharded engine
// (ZeRO-1/2/3, FSDP, hybrid: distributed/sharded.h). make_strategy() picks one from the options.
#pragma once

#include "accel/core/options.h"
#include "accel/distributed/mesh.h"

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace accel::distributed {

/// How the next backward passes behave (set by the Accelerator's accumulate() and no_sync()).
struct StepMode {
  bool communicate = true;      ///< send gradients (false: no_sync, or an accumulation micro-step)
  bool optimizer_steps = true;  ///< the optimizer steps after this backward (false: set gradients aside)
};

/// One piece of a model tensor held by this rank: elements [begin, end) of the flattened tensor.
struct TensorPiece {
  std::string name;            ///< the parameter's name in the model (named_parameters())
  std::vector<int64_t> shape;  ///< the full tensor's shape
  int64_t begin = 0, end = 0;  ///< flat range held here
  at::Tensor data;             ///< 1-D, end - begin elements (the master copy under mixed precision)
};

/// Reads elements [begin, end) of the flattened tensor `name` (from a checkpoint, whatever its
/// sharding). Returns a 1-D CPU tensor of end - begin elements.
using RangeReader = std::function<at::Tensor(const std::string& name, int64_t begin, int64_t end)>;

class ParallelStrategy {
 public:
  virtual ~ParallelStrategy() = default;
  /// "none", "ddp", "zero1", "zero2", "full_shard", "hybrid_shard", "hybrid_shard_zero2".
  virtual std::string name() const = 0;
  virtual void set_step_mode(StepMode mode) = 0;
  virtual StepMode step_mode() const = 0;
  /// Before each forward through the prepared model (DDP: buffer broadcast).
  virtual void pre_forward() {}

  /// Replaces, in the optimizer's parameter groups, the model parameters this strategy shards by
  /// the tensors this rank steps on; returns how many it replaced (0 unless sharded).
  virtual size_t adopt_optimizer(std::vector<torch::optim::OptimizerParamGroup>& groups) { return 0; }
  /// After an optimizer step that ran (not skipped): bring the model's parameters up to date.
  virtual void after_optimizer_step() {}

  /// Whether `t` (a model parameter or an optimizer tensor) belongs to this strategy's model.
  virtual bool owns(const at::Tensor& t) const = 0;
  /// The tensor whose `.grad` holds this rank's gradient for model parameter `param` (the
  /// parameter itself, or its shard).
  virtual at::Tensor gradient_holder(const at::Tensor& param) const { return param; }
  /// The group across which gradient holders are partial (their norms and inf/nan flags must be
  /// reduced over it), or null when every rank holds full gradients.
  virtual ProcessGroup* gradient_shard_group() const { return nullptr; }

  /// Communication of the last synchronised backward, for benchmarks and tests.
  struct CommStats {
    double exposed_wait_s = 0;          ///< waited after backward (or in forward) for communication
    double total_s = 0;                 ///< from the first launch to the last completion (DDP)
    int64_t syncs = 0;                  ///< synchronised backward passes so far
    std::vector<int64_t> bucket_sizes;  ///< elements per communication bucket / group
  };
  virtual CommStats comm_stats() const { return {}; }

  /// Whether parameters are sharded (the state is saved and loaded in pieces).
  virtual bool sharded() const { return false; }
  /// This rank's pieces of every parameter (sharded strategies); empty otherwise.
  virtual std::vector<TensorPiece> parameter_pieces() const { return {}; }
  /// Loads every parameter from `read` (each rank reads the ranges it holds). Collective for
  /// sharded strategies.
  virtual void load_parameters(const RangeReader& read) = 0;
  /// The full parameters and buffers, CPU tensors. Collective; with `rank0_only` other ranks get
  /// an empty map (gathered one unit at a time, so rank 0 holds at most one unit more than its
  /// shard besides the map it returns).
  virtual std::map<std::string, at::Tensor> full_state_dict(bool rank0_only) = 0;
  /// Name, dtype and shape of every full tensor, in the order for_each_full_tensor delivers them.
  struct TensorInfo {
    std::string name;
    c10::ScalarType dtype = at::kFloat;
    std::vector<int64_t> shape;
  };
  virtual std::vector<TensorInfo> full_layout() const = 0;
  /// Calls `sink(name, tensor)` with every full parameter and buffer (CPU tensors) on rank 0, or
  /// on every rank with `all_ranks`, gathering one unit at a time (the streaming form of
  /// full_state_dict). Collective.
  virtual void for_each_full_tensor(const std::function<void(const std::string&, const at::Tensor&)>& sink,
                                    bool all_ranks) = 0;
};

namespace detail {
/// The modules the wrap policy of `options` picks as units, with their paths (named_modules
/// order; nested units come after the modules holding them). Warns once for a wrap type that
/// matches nothing.
std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> pick_units(
    const std::shared_ptr<torch::nn::Module>& module, const ResolvedSharding& options);
/// "accel::models::BertLayerImpl" -> "BertLayer".
std::string short_type_name(const std::string& name);
}  // namespace detail

/// Creates the strategy for `module` and prepares it (device placement is done by the caller):
/// no group -> "none"; options.sharding unset or NO_SHARD -> "ddp"; otherwise the sharded engine
/// over `mesh`. Throws accel::Error when the options ask for something impossible.
std::shared_ptr<ParallelStrategy> make_strategy(const std::shared_ptr<torch::nn::Module>& module,
                                                const std::shared_ptr<ProcessMesh>& mesh,
                                                const AcceleratorOptions& options,
                                                const ResolvedOptions& resolved);

}  // namespace accel::distributed
