// Options of the Accelerator, grouped as Accelerate groups its settings (gradient accumulation,
// data loader, scaler, process group, DDP, project), and their resolution:
// explicit option > environment (ACCELERATE_*, set by `accel launch`) > default, validated in
// one place (resolve_options).
#pragma once

#include "accel/core/env.h"

#include <torch/arg.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace accel {

enum class MixedPrecision { kNo, kFP16, kBF16 };

/// "no" | "fp16" | "bf16" (case-insensitive; "fp32" is accepted as "no"). Throws accel::Error
/// naming the value and listing the accepted ones.
MixedPrecision parse_mixed_precision(const std::string& value);
std::string to_string(MixedPrecision mp);

/// Dynamic loss scaling for fp16 (PyTorch GradScaler's algorithm and defaults).
struct GradScalerOptions {
  /// Initial scale. Default 65536 (2^16).
  TORCH_ARG(double, init_scale) = 65536.0;
  /// Multiplier applied after `growth_interval` consecutive clean steps. Default 2.0; must be > 1.
  TORCH_ARG(double, growth_factor) = 2.0;
  /// Multiplier applied when a step finds inf/nan. Default 0.5; must be in (0, 1).
  TORCH_ARG(double, backoff_factor) = 0.5;
  /// Clean steps before growing. Default 2000; must be >= 1.
  TORCH_ARG(int64_t, growth_interval) = 2000;
  /// False turns scaling off even in fp16 (not recommended). Default true.
  TORCH_ARG(bool, enabled) = true;
};

/// How prepared data loaders are sharded across processes (Accelerate's DataLoaderConfiguration).
struct DataLoaderConfig {
  /// true: each global batch is split across ranks (batch size must divide by the world size);
  /// false (default): each rank takes whole batches, batch i going to rank i mod N.
  TORCH_ARG(bool, split_batches) = false;
  /// true (default): the last round is completed with samples from the start so every rank
  /// sees the same number of batches; gather_for_metrics drops the duplicates.
  TORCH_ARG(bool, even_batches) = true;
  /// Seed of the shuffle, identical on all ranks; reseeded per epoch as seed + epoch. Default:
  /// the Accelerator's seed, else 0.
  TORCH_ARG(std::optional<uint64_t>, data_seed) = std::nullopt;
  /// Copy batches to the device asynchronously (CUDA pinned memory). Default false.
  TORCH_ARG(bool, non_blocking) = false;
};

/// Gradient accumulation (Accelerate's GradientAccumulationPlugin).
struct GradientAccumulationOptions {
  /// Micro-steps per optimizer step. Default: env ACCELERATE_GRADIENT_ACCUMULATION_STEPS, else 1.
  TORCH_ARG(std::optional<int64_t>, num_steps) = std::nullopt;
  /// The last batch of a prepared loader always syncs and steps. Default true.
  TORCH_ARG(bool, sync_with_dataloader) = true;
  /// Communicate on every micro-step (saves memory under DDP, costs bandwidth). Default false.
  TORCH_ARG(bool, sync_each_batch) = false;
};

/// The process group (c10d).
struct ProcessGroupOptions {
  /// "auto" (default: NCCL for CUDA devices, Gloo for CPU), "gloo" or "nccl".
  TORCH_ARG(std::string, backend) = "auto";
  /// Timeout of the rendezvous and of every collective, seconds. Default: env ACCEL_TIMEOUT,
  /// else 300. A dead or missing peer becomes an accel::DistributedError after this long.
  TORCH_ARG(std::optional<double>, timeout_s) = std::nullopt;
  /// Seconds between the heartbeats each rank leaves in the rendezvous store, which let a timed
  /// out collective name the ranks that are behind or silent. Default: env ACCEL_HEARTBEAT_S,
  /// else 1; 0 turns them off.
  TORCH_ARG(std::optional<double>, heartbeat_s) = std::nullopt;
};

/// Gradient synchronisation across processes (DDP).
struct DDPOptions {
  /// Bucket size in MiB. Default 25, as DDP.
  TORCH_ARG(double, bucket_cap_mb) = 25.0;
  /// Size of the first bucket (the last gradients of backward) in MiB. Default 1, as DDP.
  TORCH_ARG(double, first_bucket_cap_mb) = 1.0;
  /// Parameters that get no gradient in a backward are always synchronised as zeros (so every
  /// rank sends the same buckets); with false (default) accel warns once naming them, true
  /// silences that warning.
  TORCH_ARG(bool, find_unused_parameters) = false;
  /// Broadcast buffers (e.g. BatchNorm statistics) from rank 0 before each forward. Default true.
  TORCH_ARG(bool, broadcast_buffers) = true;
  /// All-reduce compression: "none" (default), "fp16" or "bf16" (gradients are cast for the
  /// transfer and back).
  TORCH_ARG(std::string, comm_hook) = "none";
};

/// Sharding strategies of sharded data parallel: FSDP's names, DeepSpeed's ZeRO stages.
enum class ShardingStrategy {
  kNoShard,            ///< DDP: everything replicated (FSDP NO_SHARD, ZeRO stage 0)
  kShardOptimizer,     ///< ZeRO-1: optimizer states sharded (DeepSpeed zero_stage 1)
  kShardGradOp,        ///< ZeRO-2: gradients and optimizer states sharded (FSDP SHARD_GRAD_OP, zero_stage 2)
  kFullShard,          ///< ZeRO-3: parameters too, gathered per unit (FSDP FULL_SHARD, zero_stage 3)
  kHybridShard,        ///< FULL_SHARD inside each machine, replicated across machines (FSDP HYBRID_SHARD)
  kHybridShardGradOp,  ///< SHARD_GRAD_OP inside each machine, replicated across (HYBRID_SHARD_ZERO2)
};

/// FSDP's names (FULL_SHARD, SHARD_GRAD_OP, NO_SHARD, HYBRID_SHARD, HYBRID_SHARD_ZERO2, with or
/// without a leading underscore), FSDP's numbers 1-5 in that order, and zero1/zero2/zero3 (also
/// ZeRO-1, ...), case-insensitive. Throws accel::Error naming the value and the accepted ones.
ShardingStrategy parse_sharding_strategy(const std::string& value);
/// The FSDP name ("FULL_SHARD", ...; "SHARD_OPTIMIZER" for ZeRO-1, which FSDP lacks).
std::string to_string(ShardingStrategy strategy);

/// Which submodules become units of the sharded engine (Accelerate's fsdp_auto_wrap_policy).
enum class AutoWrapPolicy {
  kNoWrap,            ///< one unit: the whole model
  kTransformerBased,  ///< every module whose type is in wrap_module_types (e.g. BertLayer)
  kSizeBased,         ///< every module with at least min_num_params parameters not in a smaller unit
};
/// TRANSFORMER_BASED_WRAP | SIZE_BASED_WRAP | NO_WRAP (case-insensitive). Throws accel::Error.
AutoWrapPolicy parse_auto_wrap_policy(const std::string& value);
std::string to_string(AutoWrapPolicy policy);

/// Sharded data parallel (Accelerate's FullyShardedDataParallelPlugin, and DeepSpeed's ZeRO
/// stages mapped onto the same engine). Unset fields fall back to the environment `accel launch`
/// (or `accelerate launch`) sets: ACCELERATE_USE_FSDP and FSDP_*, or ACCELERATE_USE_DEEPSPEED and
/// ACCELERATE_DEEPSPEED_*; then to the defaults below. Units are modules whose forward runs
/// through accel::unit_forward (accel's BERT layers and embeddings do); see
/// include/accel/distributed/unit.h.
struct ShardingOptions {
  /// Default: from the environment, else kNoShard (plain DDP).
  TORCH_ARG(std::optional<ShardingStrategy>, strategy) = std::nullopt;
  /// Default: TRANSFORMER_BASED_WRAP when wrap_module_types is given, else NO_WRAP.
  TORCH_ARG(std::optional<AutoWrapPolicy>, auto_wrap_policy) = std::nullopt;
  /// Module type names that become units (fsdp_transformer_layer_cls_to_wrap), e.g. {"BertLayer"};
  /// matched against the module's name() with and without an "Impl" suffix and a namespace.
  TORCH_ARG(std::vector<std::string>, wrap_module_types) = {};
  /// SIZE_BASED_WRAP's threshold in parameters. Default 100,000,000 (as Accelerate).
  TORCH_ARG(std::optional<int64_t>, min_num_params) = std::nullopt;
  /// Free a unit's gathered parameters after its forward and gather them again for backward.
  /// Default true (FULL_SHARD / HYBRID_SHARD); false keeps them until the end of backward.
  TORCH_ARG(std::optional<bool>, reshard_after_forward) = std::nullopt;
  /// Keep the fp32 master shards and the optimizer states in CPU memory (fsdp_offload_params).
  /// Default false; on a CPU device it changes nothing.
  TORCH_ARG(std::optional<bool>, offload_params) = std::nullopt;
  /// Recompute each unit's forward in backward instead of keeping its activations
  /// (fsdp_activation_checkpointing). Default false.
  TORCH_ARG(std::optional<bool>, activation_checkpointing) = std::nullopt;
  /// Dtype of the parameters the model computes with: "fp32", "bf16" or "fp16". Default: the
  /// mixed precision dtype (fp32 without mixed precision). Master shards are fp32.
  TORCH_ARG(std::optional<std::string>, param_dtype) = std::nullopt;
  /// Dtype gradients are reduced in: "fp32" (default), "bf16" or "fp16".
  TORCH_ARG(std::optional<std::string>, reduce_dtype) = std::nullopt;
  /// save_state writes each rank's shards (SHARDED_STATE_DICT, default) or one full copy written
  /// by rank 0 (FULL_STATE_DICT).
  TORCH_ARG(std::optional<bool>, sharded_state_dict) = std::nullopt;
  /// Gather the next unit while the current one computes (forward) / during backward. Default true.
  TORCH_ARG(std::optional<bool>, forward_prefetch) = std::nullopt;
  TORCH_ARG(std::optional<bool>, backward_prefetch) = std::nullopt;
  /// HYBRID_*: processes per shard group. Default: the processes of one machine (LOCAL_WORLD_SIZE).
  TORCH_ARG(std::optional<int>, shard_group_size) = std::nullopt;
  /// Reduce-scatter bucket size of ZeRO-1/2 in MiB. Default 25.
  TORCH_ARG(double, bucket_cap_mb) = 25.0;
};

/// Checkpoint folders (Accelerate's ProjectConfiguration).
struct ProjectOptions {
  /// Root of the run's outputs. Default "" (the current directory).
  TORCH_ARG(std::string, project_dir) = "";
  /// Where trackers write. Default: project_dir/logs.
  TORCH_ARG(std::string, logging_dir) = "";
  /// save_state() with no folder writes project_dir/checkpoints/checkpoint_<iteration>.
  TORCH_ARG(bool, automatic_checkpoint_naming) = false;
  /// Keep at most this many automatic checkpoints (oldest removed); 0 keeps all.
  TORCH_ARG(int64_t, total_limit) = 0;
  /// Index of the next automatic checkpoint; restored by load_state().
  TORCH_ARG(int64_t, iteration) = 0;
};

/// Everything the Accelerator can be told. Unset optionals fall back to the environment, then
/// to the default.
struct AcceleratorOptions {
  /// "no" | "fp16" | "bf16". Default: env ACCELERATE_MIXED_PRECISION, else "no".
  TORCH_ARG(std::optional<std::string>, mixed_precision) = std::nullopt;
  /// Shorthand for gradient_accumulation.num_steps.
  TORCH_ARG(std::optional<int64_t>, gradient_accumulation_steps) = std::nullopt;
  /// Force the CPU even when a GPU is present. Default: env ACCELERATE_USE_CPU, else false.
  TORCH_ARG(std::optional<bool>, cpu) = std::nullopt;
  /// Move prepared models and batches to the device. Default true.
  TORCH_ARG(bool, device_placement) = true;
  /// When set, seeds every RNG (torch CPU and CUDA) at construction.
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  /// Step prepared schedulers only when the optimizer really stepped. Default true.
  TORCH_ARG(bool, step_scheduler_with_optimizer) = true;
  /// Use the fused AdamW kernel when the prepared optimizer is torch::optim::AdamW and all its
  /// parameters are dense, on one device, of one floating dtype. Default true.
  TORCH_ARG(bool, fused_optimizer) = true;
  /// Calling a prepared model (`model(x)`, `model.forward(x)`) returns fp32 outputs under mixed
  /// precision, as Accelerate's convert_outputs_to_fp32. Default true; false keeps them in the
  /// autocast dtype.
  TORCH_ARG(bool, convert_outputs_to_fp32) = true;
  TORCH_ARG(GradientAccumulationOptions, gradient_accumulation) = {};
  TORCH_ARG(DataLoaderConfig, dataloader) = {};
  TORCH_ARG(GradScalerOptions, scaler) = {};
  TORCH_ARG(ProcessGroupOptions, process_group) = {};
  TORCH_ARG(DDPOptions, ddp) = {};
  TORCH_ARG(ProjectOptions, project) = {};
  TORCH_ARG(ShardingOptions, sharding) = {};
  /// Tracker names for init_trackers: "jsonl", "csv", "tensorboard", "all".
  TORCH_ARG(std::vector<std::string>, log_with) = {};
};

/// Sharding options with every precedence decision made.
struct ResolvedSharding {
  ShardingStrategy strategy = ShardingStrategy::kNoShard;
  AutoWrapPolicy auto_wrap_policy = AutoWrapPolicy::kNoWrap;
  std::vector<std::string> wrap_module_types;
  int64_t min_num_params = 100000000;
  bool reshard_after_forward = true;
  bool offload_params = false;
  bool activation_checkpointing = false;
  std::string param_dtype;  ///< "" (the model's own), "fp32", "bf16" or "fp16"
  std::string reduce_dtype = "fp32";
  bool sharded_state_dict = true;
  bool forward_prefetch = true;
  bool backward_prefetch = true;
  int shard_group_size = 0;  ///< 0: the whole world (or one machine for HYBRID_*)
  double bucket_cap_mb = 25.0;
  double gradient_clipping = 0;  ///< DeepSpeed's gradient_clipping (0: none)
  std::string source;            ///< "options", "FSDP", "DeepSpeed" or "" (not sharded)
  /// Settings from the environment or a DeepSpeed config that accel cannot honour, each named
  /// (logged once by the Accelerator).
  std::vector<std::string> ignored;
  /// Settings honoured, for the log ("sharding_strategy=FULL_SHARD", ...).
  std::vector<std::string> honoured;
  bool enabled() const { return strategy != ShardingStrategy::kNoShard; }
};

/// Options with every precedence decision made and every value validated.
struct ResolvedOptions {
  MixedPrecision mixed_precision = MixedPrecision::kNo;
  int64_t gradient_accumulation_steps = 1;
  bool cpu = false;
  double timeout_s = 300.0;
  double heartbeat_s = 1.0;
  bool debug = false;
  ResolvedSharding sharding;
};

/// Applies explicit > environment > default and validates. Throws accel::Error naming the bad
/// value and listing the accepted ones.
ResolvedOptions resolve_options(const AcceleratorOptions& options, const ProcessEnv& env);

}  // namespace accel
