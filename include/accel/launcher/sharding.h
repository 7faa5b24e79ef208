// Sharded data parallel (FSDP, DeepSpeed ZeRO) as `accel launch` hands it to the workers, in
// Accelerate's terms: the settings of fsdp_config / deepspeed_config and their --flags, the values
// each accepts, Accelerate's defaults, and the FSDP_* / ACCELERATE_DEEPSPEED_* variables its
// launcher sets (accelerate/utils/launch.py), which are the contract with the library.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace accel::launcher {

/// Which sharding front end a launch uses. Both drive the same sharded engine.
enum class ShardingMode { kNone, kFsdp, kDeepSpeed };

/// The kind of value a setting takes (decides the check and the spelling the workers get).
enum class SettingKind {
  kBool,         // true/false (yes/no/on/off/1/0 accepted) -> "true" / "false"
  kCount,        // an integer >= 0 (an integral float such as 100000000.0 is accepted)
  kNumber,       // a finite number >= 0, written as Python's str(float) ("1.0")
  kChoice,       // one of `choices` (any case) -> upper case
  kStrategy,     // an FSDP sharding strategy name (any case) -> upper case, or 1-5 kept
  kReshard,      // true/false (FSDP2) or a strategy name / 1-5 (FSDP1) -> lower case
  kFsdpVersion,  // 1 or 2
  kZeroStage,    // 0, 1, 2 or 3
  kDevice,       // none, cpu or nvme -> lower case
  kClassList,    // comma-separated class names (a YAML list is accepted) -> "A,B"
  kText,         // any non-empty text, as given
};

/// One setting of fsdp_config or deepspeed_config, and its `accel launch` flag.
struct ShardingSetting {
  const char* name;   // canonical: the flag without dashes, e.g. "fsdp_sharding_strategy"
  ShardingMode mode;  // kFsdp or kDeepSpeed
  SettingKind kind;
  const char* default_value;         // Accelerate's launch default; nullptr: unset unless given
  const char* env;                   // variable the workers get; nullptr: none
  bool is_flag;                      // an `accelerate launch` flag (else config file only)
  std::vector<std::string> choices;  // kChoice only
  const char* help;                  // one line for `accel launch --help`
};

/// Every FSDP and DeepSpeed setting, in `accelerate launch --help` order.
const std::vector<ShardingSetting>& sharding_settings();

/// The setting named `name` (canonical spelling), or nullptr.
const ShardingSetting* find_sharding_setting(const std::string& name);

/// A key of a config file's fsdp_config / deepspeed_config as Accelerate reads it: fsdp_config
/// keys without the "fsdp_" prefix get it (older releases wrote `sharding_strategy`,
/// `offload_params`, ...), and `fsdp_backward_prefetch_policy` (releases before 0.26) is
/// `fsdp_backward_prefetch`. Other keys are returned unchanged.
std::string canonical_sharding_key(const std::string& section, const std::string& key);

/// FSDP's sharding strategy names, in Accelerate's order (index + 1 is the number form).
const std::vector<std::string>& fsdp_sharding_strategies();

/// Checks `value` for the setting `setting` and returns it as the workers get it (booleans
/// "true"/"false", names in Accelerate's case, integral floats as integers, ...). Throws
/// std::invalid_argument whose message names the value and lists the accepted ones (without the
/// setting's name: the caller says where the value came from).
std::string normalize_setting_value(const ShardingSetting& setting, const std::string& value);

/// The resolved sharding of a launch (see resolve_sharding in accel/launcher/launch.h).
struct ShardingSettings {
  ShardingMode mode = ShardingMode::kNone;
  /// Every setting of the mode that has a value, given or Accelerate's default: canonical name ->
  /// value as the workers get it. For DeepSpeed also "gradient_accumulation_steps" when the file's
  /// deepspeed_config has it.
  std::map<std::string, std::string> values;
  /// Where each value came from: "command line", "config file" or "default".
  std::map<std::string, std::string> origin;
  /// DeepSpeed: the deepspeed_config keys of the file, in file order (ACCELERATE_CONFIG_DS_FIELDS),
  /// plus "mixed_precision" when the mixed precision came from the file.
  std::vector<std::string> config_fields;
  /// DeepSpeed: the settings the engine acts on ("zero_stage=2", ...) and those it cannot
  /// ("deepspeed_hostfile=hosts (multi-node DeepSpeed launcher)", ...).
  std::vector<std::string> honoured;
  std::vector<std::string> ignored;

  /// The value of `name`, or std::nullopt.
  std::optional<std::string> get(const std::string& name) const;
};

/// The variables Accelerate's launcher sets for these settings, with its presence rules: FSDP:
/// ACCELERATE_USE_FSDP=true and every FSDP_* setting that has a value; DeepSpeed:
/// ACCELERATE_USE_DEEPSPEED=true, ACCELERATE_CONFIG_DS_FIELDS and each ACCELERATE_DEEPSPEED_* /
/// ACCELERATE_GRADIENT_CLIPPING setting that was given. Empty for kNone.
std::map<std::string, std::string> sharding_env(const ShardingSettings& settings);

/// What the sharded engine runs: NO_SHARD, SHARD_OPTIMIZER (ZeRO-1), SHARD_GRAD_OP (ZeRO-2),
/// FULL_SHARD (ZeRO-3), HYBRID_SHARD or HYBRID_SHARD_ZERO2. FSDP1: the sharding strategy (a
/// number is mapped to its name); FSDP2: fsdp_reshard_after_forward true -> FULL_SHARD, false ->
/// SHARD_GRAD_OP, unless a sharding strategy was given; DeepSpeed: zero_stage 0-3 (default 2).
/// Empty for kNone.
std::string sharding_strategy(const ShardingSettings& settings);

/// One line for people: "FULL_SHARD (ZeRO-3: parameters, gradients and optimizer states
/// sharded)".
std::string describe_strategy(const std::string& strategy);

}  // namespace accel::launcher
