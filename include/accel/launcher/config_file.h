// The launch configuration file: Accelerate-compatible YAML (or JSON) written by `accel config`
// and read by `accel launch`. Keys are Accelerate's, so an existing Accelerate
// `default_config.yaml` works unchanged. Fields not present in a file stay unset (std::nullopt)
// so the launcher can apply "command line > file > default".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace accel::launcher {

/// One config file's values. Unset optionals were not in the file.
struct ClusterConfig {
  std::optional<std::string> compute_environment;  // LOCAL_MACHINE | AMAZON_SAGEMAKER
  std::optional<std::string> distributed_type;     // NO | MULTI_CPU | MULTI_GPU | ...
  std::optional<std::string> mixed_precision;      // no | fp16 | bf16 | fp8
  std::optional<bool> use_cpu;
  std::optional<bool> debug;
  std::optional<int> num_processes;  // -1: must be given on the command line
  std::optional<int> num_machines;
  std::optional<int> machine_rank;
  std::optional<std::string> gpu_ids;  // "all" or "0,1"
  std::optional<std::string> main_process_ip;
  std::optional<int> main_process_port;
  std::optional<std::string> rdzv_backend;  // static
  std::optional<bool> same_network;
  std::optional<std::string> main_training_function;
  std::optional<bool> enable_cpu_affinity;
  std::optional<int>
      gradient_accumulation_steps;  // accel extension (Accelerate keeps it in deepspeed_config)
  /// Every other key some Accelerate release writes (fsdp_config, deepspeed_config, ipex_config,
  /// mpirun_config, dynamo_config, tpu_*, ...), kept as YAML text so `config update` preserves it.
  /// `accel launch` reads fsdp_config / deepspeed_config (passthrough_entries) and reviews the rest.
  std::map<std::string, std::string> passthrough;
};

/// Default path: $ACCEL_CONFIG_FILE, else ~/.cache/accel/default_config.yaml.
std::string default_config_path();

/// Accelerate's default path ($HF_HOME/accelerate/default_config.yaml, HF_HOME defaulting to
/// $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface); read when no accel config exists.
std::string accelerate_default_config_path();

/// The config file `accel launch` should use when none is given: accel's default if it exists,
/// else Accelerate's default if it exists, else empty.
std::string find_default_config();

/// Loads a YAML or JSON config. Throws accel::InputError naming the file, line and column for
/// malformed YAML, the key and the closest valid key for an unknown key, the key and the
/// expected type for a wrong type, and a known fsdp_config / deepspeed_config setting with a value
/// it does not take (normalize_setting_value). Legacy keys are migrated (fp16: true ->
/// mixed_precision, dynamo_backend -> dynamo_config).
ClusterConfig load_config_file(const std::string& path);

/// Writes `config` as YAML (unset fields omitted) atomically (temp file + rename).
/// A path ending in ".json" is written as JSON instead (as Accelerate does). Parent folders are
/// created. Output matches Accelerate's (PyYAML safe_dump: sorted keys, 'no' quoted), so a file
/// accel writes stays readable by `accelerate launch` (unless gradient_accumulation_steps is set).
void save_config_file(const ClusterConfig& config, const std::string& path);

// ---- additions (config/env/estimate-memory commands; usable by the launcher too) -------------

/// Parses config text (YAML or JSON; JSON is YAML). `source` names it in error messages
/// ("path/to/file.yaml"). Same checks and migrations as load_config_file.
ClusterConfig parse_config_text(const std::string& text, const std::string& source);

/// The config as YAML text, exactly as save_config_file writes it.
std::string config_to_yaml(const ClusterConfig& config);

/// The config as JSON text (2-space indent, sorted keys, like Accelerate's to_json_file).
std::string config_to_json(const ClusterConfig& config);

/// Checks values: mixed_precision in no|fp16|bf16|fp8, distributed_type in Accelerate's list,
/// num_processes >= 1 or -1, num_machines >= 1, 0 <= machine_rank < num_machines, port in
/// 0..65535, gpu_ids "all" or comma-separated ids. Throws accel::InputError naming `source`.
void validate_config(const ClusterConfig& config, const std::string& source);

/// Fills what Accelerate's ClusterConfig fills when it loads a file (compute_environment
/// LOCAL_MACHINE, use_cpu/debug/enable_cpu_affinity false, machine_rank 0, num_machines 1,
/// rdzv_backend static, same_network false, main_training_function main, num_processes 1 for NO
/// or -1 otherwise, downcast_bf16/tpu_use_cluster/tpu_use_sudo false). Used by `accel config update`.
void apply_accelerate_defaults(ClusterConfig& config);

/// Every top-level key a (non-SageMaker) Accelerate config may hold, in sorted order.
const std::vector<std::string>& known_config_keys();

/// A scalar from a passthrough entry: passthrough_scalar(c, "dynamo_config", "dynamo_backend")
/// reads a key inside a section; with an empty `subkey` the entry itself must be a scalar
/// (e.g. "downcast_bf16"). std::nullopt when absent, null, or not a scalar.
std::optional<std::string> passthrough_scalar(const ClusterConfig& config, const std::string& key,
                                              const std::string& subkey = "");

/// The entries of a passthrough section such as "fsdp_config", in file order: key -> the value as
/// one string (a scalar as written, a list joined with ","). Null values, nested mappings and an
/// absent or non-mapping section give nothing.
std::vector<std::pair<std::string, std::string>> passthrough_entries(const ClusterConfig& config,
                                                                     const std::string& key);

/// A string as PyYAML's safe_dump writes it: plain when it reads back as the same string, else
/// quoted ("no" -> "'no'", "a: b" -> "'a: b'"). For building passthrough sections in code.
std::string yaml_quote(const std::string& s);

/// The candidate closest to `word` by edit distance (Levenshtein, ties: first); "" if none.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace accel::launcher
