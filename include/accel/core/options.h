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
  /// Parameters that get no gradient in some step are synchronised as zeros instead of raising
  /// an error. Default false (as DDP: an unused parameter is reported as an error).
  TORCH_ARG(bool, find_unused_parameters) = false;
  /// Broadcast buffers (e.g. BatchNorm statistics) from rank 0 before each forward. Default true.
  TORCH_ARG(bool, broadcast_buffers) = true;
  /// All-reduce compression: "none" (default), "fp16" or "bf16" (gradients are cast for the
  /// transfer and back).
  TORCH_ARG(std::string, comm_hook) = "none";
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
  TORCH_ARG(GradientAccumulationOptions, gradient_accumulation) = {};
  TORCH_ARG(DataLoaderConfig, dataloader) = {};
  TORCH_ARG(GradScalerOptions, scaler) = {};
  TORCH_ARG(ProcessGroupOptions, process_group) = {};
  TORCH_ARG(DDPOptions, ddp) = {};
  TORCH_ARG(ProjectOptions, project) = {};
  /// Tracker names for init_trackers: "jsonl", "csv", "tensorboard", "all".
  TORCH_ARG(std::vector<std::string>, log_with) = {};
};

/// Options with every precedence decision made and every value validated.
struct ResolvedOptions {
  MixedPrecision mixed_precision = MixedPrecision::kNo;
  int64_t gradient_accumulation_steps = 1;
  bool cpu = false;
  double timeout_s = 300.0;
  double heartbeat_s = 1.0;
  bool debug = false;
};

/// Applies explicit > environment > default and validates. Throws accel::Error naming the bad
/// value and listing the accepted ones.
ResolvedOptions resolve_options(const AcceleratorOptions& options, const ProcessEnv& env);

}  // namespace accel
