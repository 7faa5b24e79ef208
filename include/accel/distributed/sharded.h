// ShardedEngine: sharded data parallel (ZeRO-1/2/3, FSDP's FULL_SHARD / SHARD_GRAD_OP /
// HYBRID_SHARD) over c10d collectives, as one ParallelStrategy.
//
// Parameters are packed into flat groups: one per unit (a module picked by the wrap policy whose
// forward runs through accel::unit_forward) and buckets of the rest. Each group is padded to a
// multiple of the shard group size S (padding is zeros, never data) and rank j of a shard group
// owns the contiguous slice j of it: the fp32 master copy of that slice is what the optimizer
// steps on (one 1-D tensor per model parameter, possibly empty, replacing the parameter in the
// optimizer's groups; any element-wise torch::optim optimizer works). Gradients are copied into a
// flat buffer in the reduce dtype as soon as autograd has accumulated them and reduce-scattered
// per group as soon as the group is complete, overlapping the rest of backward.
//
//   SHARD_OPTIMIZER (ZeRO-1)  params replicated; full gradients kept; optimizer state sharded
//   SHARD_GRAD_OP   (ZeRO-2)  params replicated; gradients and optimizer state sharded
//   FULL_SHARD      (ZeRO-3)  unit params sharded too: gathered before the unit's forward (the
//                             next unit prefetched), freed after it, gathered again before its
//                             backward; params outside units stay replicated as under ZeRO-2
//   HYBRID_*                  the above inside each shard group, gradients all-reduced across
//                             the replicate groups
// After an optimizer step the updated master slices are cast to the parameter dtype and
// all-gathered into the replicated parameters (sharded units keep only their slice).
//
// The module keeps its parameter objects (same TensorImpl, so references stay valid); their data
// become views of the flat groups. A sharded unit's parameters are empty tensors outside its
// forward and backward. Buffers and parameters that need no gradient are not sharded (they are
// broadcast from rank 0 at construction).
#pragma once

#include "accel/distributed/strategy.h"
#include "accel/distributed/unit.h"

#include <memory>
#include <string>
#include <vector>

namespace accel::distributed {

class ShardedEngine : public ParallelStrategy, public accel::detail::UnitRunner {
 public:
  /// Shards `module` (already on its device) over `mesh`. `strategy` must not be kNoShard.
  /// Collective over the mesh's world group.
  ShardedEngine(std::shared_ptr<torch::nn::Module> module, std::shared_ptr<ProcessMesh> mesh,
                const ResolvedSharding& options);
  ~ShardedEngine() override;
  ShardedEngine(const ShardedEngine&) = delete;
  ShardedEngine& operator=(const ShardedEngine&) = delete;

  // ParallelStrategy
  std::string name() const override;
  void set_step_mode(StepMode mode) override;
  StepMode step_mode() const override;
  size_t adopt_optimizer(std::vector<torch::optim::OptimizerParamGroup>& groups) override;
  void after_optimizer_step() override;
  bool owns(const at::Tensor& t) const override;
  at::Tensor gradient_holder(const at::Tensor& param) const override;
  ProcessGroup* gradient_shard_group() const override;
  bool sharded() const override { return true; }
  std::vector<TensorPiece> parameter_pieces() const override;
  void load_parameters(const RangeReader& read) override;
  std::map<std::string, at::Tensor> full_state_dict(bool rank0_only) override;
  std::vector<TensorInfo> full_layout() const override;
  CommStats comm_stats() const override;
  void for_each_full_tensor(const std::function<void(const std::string&, const at::Tensor&)>& sink,
                            bool all_ranks) override;

  // UnitRunner
  at::Tensor run_unit(torch::nn::Module& module,
                      const std::function<at::Tensor(const std::vector<at::Tensor>&)>& fn,
                      const std::vector<at::Tensor>& inputs) override;

  /// The modules that are units (for registration with unit_forward).
  std::vector<const torch::nn::Module*> unit_modules() const;
  /// Whether this rank writes the pieces in a sharded checkpoint (replica 0 only).
  bool writes_pieces() const;

  /// One flat group, for tests, benchmarks and `accel env`.
  struct GroupInfo {
    std::string name;               ///< "unit <module path>" or "bucket <i>"
    bool sharded_params = false;    ///< gathered on demand (FULL_SHARD units)
    int64_t numel = 0, padded = 0;  ///< elements, and after padding to a multiple of S
    std::vector<std::string> params;
  };
  std::vector<GroupInfo> groups() const;

  /// Seconds this rank waited for communication that was not hidden under computation, and
  /// counts, since construction (reset_stats() clears them).
  struct Stats {
    double gather_wait_s = 0;          ///< waiting for all-gathers in forward/backward
    double reduce_scatter_wait_s = 0;  ///< waiting for reduce-scatters (during and after backward)
    double step_gather_s = 0;          ///< the all-gather after the optimizer step
    int64_t gathers = 0;
    int64_t reduce_scatters = 0;
    int64_t gathered_bytes = 0;
    int64_t reduce_scattered_bytes = 0;
  };
  Stats stats() const;
  void reset_stats();
  /// Wall-clock seconds of one training step's communication alone (no computation to hide it):
  /// every gather and reduce-scatter a step makes, launched together, median of `repeats`.
  /// Collective; for benchmarks (the hidden share is 1 - exposed / this).
  double time_step_communication(int repeats = 3);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace accel::distributed
