// FSDP / DeepSpeed settings in Accelerate's terms: the setting table, value checks, and the
// variables Accelerate's launcher sets for them.
#include "accel/launcher/sharding.h"

#include "accel/core/strings.h"
#include "accel/launcher/config_file.h"
#include "accel/launcher/launch.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace accel::launcher {
namespace {

const std::vector<std::string> kStrategies = {"FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD",
                                              "HYBRID_SHARD_ZERO2"};

bool parse_bool_word(const std::string& v, bool* out) {
  const std::string s = lower(trim(v));
  // Accelerate's str_to_bool words, and YAML 1.1's.
  if (s == "true" || s == "yes" || s == "y" || s == "t" || s == "on" || s == "1") {
    *out = true;
    return true;
  }
  if (s == "false" || s == "no" || s == "n" || s == "f" || s == "off" || s == "0") {
    *out = false;
    return true;
  }
  return false;
}

// Python's str(float) for a finite double: the shortest digits that read back the same, fixed
// notation for exponents -4..15 (always with a fractional part), else d.ddde+XX.
std::string python_float(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, std::fabs(x), std::chars_format::scientific);
  const std::string s(buf, r.ptr);
  const size_t e = s.find('e');
  const int exp = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (s[i] != '.') digits += s[i];
  std::string out = std::signbit(x) ? "-" : "";
  if (exp < -4 || exp >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char tail[16];
    std::snprintf(tail, sizeof tail, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + tail;
  }
  if (exp < 0) return out + "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  const size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0') + ".0";
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

[[noreturn]] void reject(const std::string& value, const std::string& accepted) {
  throw std::invalid_argument("'" + value + "' is not valid; accepted: " + accepted);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string strategy_of(const std::string& v) {
  if (all_digits(v)) {
    const int n = std::atoi(v.c_str());
    if (n >= 1 && n <= static_cast<int>(kStrategies.size())) return kStrategies[static_cast<size_t>(n - 1)];
    return "";
  }
  const std::string u = upper(v);
  return std::find(kStrategies.begin(), kStrategies.end(), u) != kStrategies.end() ? u : "";
}

std::string strategy_choices() {
  return join(kStrategies, ", ") + " (or their numbers 1-5)";
}

}  // namespace

const std::vector<std::string>& fsdp_sharding_strategies() {
  return kStrategies;
}

const std::vector<ShardingSetting>& sharding_settings() {
  using K = SettingKind;
  constexpr auto F = ShardingMode::kFsdp;
  constexpr auto D = ShardingMode::kDeepSpeed;
  static const std::vector<ShardingSetting> table = {
      // FSDP (accelerate launch's "FSDP Arguments", same defaults).
      {"fsdp_version", F, K::kFsdpVersion, "1", "FSDP_VERSION", true, {}, "FSDP version, 1 or 2 (default 1)"},
      {"fsdp_offload_params",
       F,
       K::kBool,
       "false",
       "FSDP_OFFLOAD_PARAMS",
       true,
       {},
       "keep parameter shards, gradients and optimizer states in CPU memory (default false)"},
      {"fsdp_min_num_params",
       F,
       K::kCount,
       "100000000",
       "FSDP_MIN_NUM_PARAMS",
       true,
       {},
       "smallest unit for SIZE_BASED_WRAP, in parameters (default 100000000)"},
      {"fsdp_sharding_strategy",
       F,
       K::kStrategy,
       "FULL_SHARD",
       "FSDP_SHARDING_STRATEGY",
       true,
       {},
       "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD, HYBRID_SHARD, HYBRID_SHARD_ZERO2 or 1-5 (FSDP1; default "
       "FULL_SHARD)"},
      {"fsdp_reshard_after_forward",
       F,
       K::kReshard,
       "true",
       "FSDP_RESHARD_AFTER_FORWARD",
       true,
       {},
       "FSDP2: true (FULL_SHARD) or false (SHARD_GRAD_OP); FSDP1: a strategy name (default true)"},
      {"fsdp_auto_wrap_policy",
       F,
       K::kChoice,
       nullptr,
       "FSDP_AUTO_WRAP_POLICY",
       true,
       {"TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP"},
       "how the model is cut into units: TRANSFORMER_BASED_WRAP, SIZE_BASED_WRAP or NO_WRAP"},
      {"fsdp_transformer_layer_cls_to_wrap",
       F,
       K::kClassList,
       nullptr,
       "FSDP_TRANSFORMER_CLS_TO_WRAP",
       true,
       {},
       "comma-separated layer classes that become units, e.g. BertLayer"},
      {"fsdp_backward_prefetch",
       F,
       K::kChoice,
       nullptr,
       "FSDP_BACKWARD_PREFETCH",
       true,
       {"BACKWARD_PRE", "BACKWARD_POST", "NO_PREFETCH"},
       "BACKWARD_PRE, BACKWARD_POST or NO_PREFETCH (FSDP1)"},
      {"fsdp_state_dict_type",
       F,
       K::kChoice,
       nullptr,
       "FSDP_STATE_DICT_TYPE",
       true,
       {"FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT"},
       "FULL_STATE_DICT, LOCAL_STATE_DICT or SHARDED_STATE_DICT"},
      {"fsdp_forward_prefetch",
       F,
       K::kBool,
       "false",
       "FSDP_FORWARD_PREFETCH",
       true,
       {},
       "gather the next unit during the forward pass (FSDP1; default false)"},
      {"fsdp_use_orig_params",
       F,
       K::kBool,
       "true",
       "FSDP_USE_ORIG_PARAMS",
       true,
       {},
       "FSDP1's use_orig_params (default true)"},
      {"fsdp_cpu_ram_efficient_loading",
       F,
       K::kBool,
       "true",
       "FSDP_CPU_RAM_EFFICIENT_LOADING",
       true,
       {},
       "only rank 0 loads the checkpoint; needs fsdp_sync_module_states (default true)"},
      {"fsdp_sync_module_states",
       F,
       K::kBool,
       "true",
       "FSDP_SYNC_MODULE_STATES",
       true,
       {},
       "broadcast rank 0's parameters at the start (default true)"},
      {"fsdp_activation_checkpointing",
       F,
       K::kBool,
       "false",
       "FSDP_ACTIVATION_CHECKPOINTING",
       true,
       {},
       "recompute each unit's activations in backward (default false)"},
      {"fsdp_activation_checkpointing_offload",
       F,
       K::kBool,
       "false",
       "FSDP_ACTIVATION_CHECKPOINTING_OFFLOAD",
       true,
       {},
       "keep checkpointed activations in CPU memory (FSDP2; default false)"},
      {"fsdp_ignored_modules", F, K::kText, nullptr, "FSDP_IGNORED_MODULES", false, {}, ""},
      // DeepSpeed (accelerate launch's "DeepSpeed Arguments"; unset ones are left to the program).
      {"deepspeed_config_file",
       D,
       K::kText,
       nullptr,
       "ACCELERATE_DEEPSPEED_CONFIG_FILE",
       true,
       {},
       "a DeepSpeed JSON config (the program reads zero_optimization.stage, offload_optimizer, "
       "gradient_clipping)"},
      {"zero_stage",
       D,
       K::kZeroStage,
       nullptr,
       "ACCELERATE_DEEPSPEED_ZERO_STAGE",
       true,
       {},
       "ZeRO stage 0-3 (program default 2)"},
      {"offload_optimizer_device",
       D,
       K::kDevice,
       nullptr,
       "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE",
       true,
       {},
       "none or cpu (nvme is not supported)"},
      {"offload_param_device",
       D,
       K::kDevice,
       nullptr,
       "ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE",
       true,
       {},
       "none or cpu (nvme is not supported)"},
      {"offload_optimizer_nvme_path", D, K::kText, nullptr, nullptr, true, {}, "not supported (nvme)"},
      {"offload_param_nvme_path", D, K::kText, nullptr, nullptr, true, {}, "not supported (nvme)"},
      {"gradient_clipping",
       D,
       K::kNumber,
       nullptr,
       "ACCELERATE_GRADIENT_CLIPPING",
       true,
       {},
       "clip gradients to this global norm"},
      {"zero3_init_flag",
       D,
       K::kBool,
       nullptr,
       "ACCELERATE_DEEPSPEED_ZERO3_INIT",
       true,
       {},
       "deepspeed.zero.Init (no meaning for accel)"},
      {"zero3_save_16bit_model",
       D,
       K::kBool,
       nullptr,
       "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL",
       true,
       {},
       "save a full 16-bit model with ZeRO-3"},
      {"deepspeed_hostfile", D, K::kText, nullptr, nullptr, true, {}, "not used (DeepSpeed's launcher)"},
      {"deepspeed_exclusion_filter",
       D,
       K::kText,
       nullptr,
       nullptr,
       true,
       {},
       "not used (DeepSpeed's launcher)"},
      {"deepspeed_inclusion_filter",
       D,
       K::kText,
       nullptr,
       nullptr,
       true,
       {},
       "not used (DeepSpeed's launcher)"},
      {"deepspeed_multinode_launcher",
       D,
       K::kText,
       nullptr,
       nullptr,
       true,
       {},
       "not used (DeepSpeed's launcher)"},
      {"deepspeed_moe_layer_cls_names",
       D,
       K::kText,
       nullptr,
       "ACCELERATE_DEEPSPEED_MOE_LAYER_CLS_NAMES",
       true,
       {},
       "not supported (mixture of experts)"},
  };
  return table;
}

const ShardingSetting* find_sharding_setting(const std::string& name) {
  for (const auto& s : sharding_settings())
    if (name == s.name) return &s;
  return nullptr;
}

std::string canonical_sharding_key(const std::string& section, const std::string& key) {
  if (section != "fsdp_config") return key;
  if (key == "fsdp_backward_prefetch_policy") return "fsdp_backward_prefetch";
  // As Accelerate's _validate_launch_command: keys not starting with "fsdp" get the prefix.
  if (!starts_with(key, "fsdp")) return "fsdp_" + key;
  return key;
}

std::string normalize_setting_value(const ShardingSetting& setting, const std::string& raw) {
  const std::string v = trim(raw);
  switch (setting.kind) {
    case SettingKind::kBool: {
      bool b = false;
      if (!parse_bool_word(v, &b)) reject(raw, "true or false");
      return b ? "true" : "false";
    }
    case SettingKind::kCount: {
      if (all_digits(v) && v.size() <= 18) return std::to_string(std::stoll(v));
      // Releases before 0.20 wrote the 1e8 default as a float (100000000.0).
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (!v.empty() && end && *end == '\0' && std::isfinite(d) && d >= 0 && d < 9e18 && std::floor(d) == d &&
          v.find_first_of("eE") == std::string::npos)
        return std::to_string(static_cast<long long>(d));
      reject(raw, "an integer >= 0, e.g. 100000000");
    }
    case SettingKind::kNumber: {
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (v.empty() || !end || *end != '\0' || !std::isfinite(d) || d < 0)
        reject(raw, "a number >= 0, e.g. 1.0");
      return python_float(d);
    }
    case SettingKind::kChoice: {
      const std::string u = upper(v);
      if (std::find(setting.choices.begin(), setting.choices.end(), u) == setting.choices.end())
        reject(raw, join(setting.choices, ", "));
      return u;
    }
    case SettingKind::kStrategy: {
      if (strategy_of(v).empty()) reject(raw, strategy_choices());
      return all_digits(v) ? v : upper(v);
    }
    case SettingKind::kReshard: {
      // "1" may be FSDP2's true or FSDP1's FULL_SHARD: kept, and read by fsdp_version later.
      bool b = false;
      if (v == "0") return "false";
      if (parse_bool_word(v, &b) && !all_digits(v)) return b ? "true" : "false";
      if (strategy_of(v).empty()) reject(raw, "true or false (FSDP2), or " + strategy_choices() + " (FSDP1)");
      return lower(v);  // Accelerate passes str(value).lower()
    }
    case SettingKind::kFsdpVersion:
      if (v != "1" && v != "2") reject(raw, "1 or 2");
      return v;
    case SettingKind::kZeroStage:
      if (v.size() != 1 || v[0] < '0' || v[0] > '3') reject(raw, "0, 1, 2 or 3");
      return v;
    case SettingKind::kDevice: {
      const std::string l = lower(v);
      if (l != "none" && l != "cpu" && l != "nvme") reject(raw, "none, cpu or nvme");
      return l;
    }
    case SettingKind::kClassList: {
      std::vector<std::string> items;
      size_t start = 0;
      while (true) {
        const size_t comma = v.find(',', start);
        const std::string item = trim(v.substr(start, comma == std::string::npos ? comma : comma - start));
        if (!item.empty()) items.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (items.empty()) reject(raw, "one or more class names separated by commas, e.g. BertLayer");
      return join(items, ",");
    }
    case SettingKind::kText:
      if (v.empty()) reject(raw, "a non-empty value");
      return v;
  }
  return v;
}

std::optional<std::string> ShardingSettings::get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::string> sharding_env(const ShardingSettings& s) {
  std::map<std::string, std::string> env;
  if (s.mode == ShardingMode::kNone) return env;
  if (s.mode == ShardingMode::kFsdp) {
    env["ACCELERATE_USE_FSDP"] = "true";
  } else {
    env["ACCELERATE_USE_DEEPSPEED"] = "true";
    env["ACCELERATE_CONFIG_DS_FIELDS"] = join(s.config_fields, ",");
  }
  for (const auto& setting : sharding_settings()) {
    if (setting.mode != s.mode || setting.env == nullptr) continue;
    if (auto v = s.get(setting.name)) env[setting.env] = *v;
  }
  return env;
}

std::string sharding_strategy(const ShardingSettings& s) {
  if (s.mode == ShardingMode::kNone) return "";
  if (s.mode == ShardingMode::kDeepSpeed) {
    const std::string stage = s.get("zero_stage").value_or("2");
    if (stage == "0") return "NO_SHARD";
    if (stage == "1") return "SHARD_OPTIMIZER";
    if (stage == "2") return "SHARD_GRAD_OP";
    return "FULL_SHARD";
  }
  const std::string version = s.get("fsdp_version").value_or("1");
  const std::string strategy = s.get("fsdp_sharding_strategy").value_or("FULL_SHARD");
  const auto origin = s.origin.find("fsdp_sharding_strategy");
  const bool strategy_given = origin != s.origin.end() && origin->second != "default";
  if (version == "2" && !strategy_given) {
    return s.get("fsdp_reshard_after_forward").value_or("true") == "false" ? "SHARD_GRAD_OP" : "FULL_SHARD";
  }
  return strategy_of(strategy);
}

std::string describe_strategy(const std::string& strategy) {
  if (strategy == "NO_SHARD") return "NO_SHARD (plain data parallel: every rank keeps everything)";
  if (strategy == "SHARD_OPTIMIZER") return "SHARD_OPTIMIZER (ZeRO-1: optimizer states sharded)";
  if (strategy == "SHARD_GRAD_OP") return "SHARD_GRAD_OP (ZeRO-2: gradients and optimizer states sharded)";
  if (strategy == "FULL_SHARD")
    return "FULL_SHARD (ZeRO-3: parameters, gradients and optimizer states sharded)";
  if (strategy == "HYBRID_SHARD")
    return "HYBRID_SHARD (ZeRO-3 within each machine, replicated across machines)";
  if (strategy == "HYBRID_SHARD_ZERO2")
    return "HYBRID_SHARD_ZERO2 (ZeRO-2 within each machine, replicated across machines)";
  return strategy;
}

namespace {

const char* mode_name(ShardingMode m) {
  return m == ShardingMode::kFsdp ? "FSDP" : "DeepSpeed";
}

// Why a DeepSpeed setting cannot be honoured; "" when it can, or when it reaches the program
// (which says itself what it honours and what it cannot: one warning, not two).
std::string deepspeed_ignored_reason(const std::string& name, const std::string& value) {
  if (name == "offload_optimizer_nvme_path" || name == "offload_param_nvme_path")
    return "NVMe offload is not supported";
  if (name == "deepspeed_hostfile" || name == "deepspeed_multinode_launcher" ||
      name == "deepspeed_exclusion_filter" || name == "deepspeed_inclusion_filter")
    return "DeepSpeed's multi-node launcher: run accel launch on each machine with --machine_rank";
  return "";
}

// A DeepSpeed setting worth naming as handed to the program (offload to none and false flags
// change nothing).
bool deepspeed_honoured(const std::string& name, const std::string& value) {
  if (name == "zero_stage" || name == "gradient_clipping" || name == "deepspeed_config_file") return true;
  if (name == "offload_optimizer_device") return value == "cpu";
  return false;
}

}  // namespace

ShardingSettings resolve_sharding(const LaunchArgs& args, const ClusterConfig& file,
                                  std::vector<std::string>* warnings) {
  ShardingSettings s;
  const std::string dist = upper(file.distributed_type.value_or("NO"));
  const std::string file_name = args.config_file.value_or("the config file");
  if (int(args.multi_gpu) + int(args.use_fsdp) + int(args.use_deepspeed) > 1)
    throw UsageError("only one of --multi_gpu, --use_fsdp and --use_deepspeed can be given");
  if (args.use_fsdp) {
    s.mode = ShardingMode::kFsdp;
  } else if (args.use_deepspeed) {
    s.mode = ShardingMode::kDeepSpeed;
  } else if (!args.multi_gpu) {
    if (dist == "FSDP") s.mode = ShardingMode::kFsdp;
    if (dist == "DEEPSPEED") s.mode = ShardingMode::kDeepSpeed;
  }

  // Flags for a mode that is not on are not silently dropped.
  for (const ShardingMode other : {ShardingMode::kFsdp, ShardingMode::kDeepSpeed}) {
    if (other == s.mode) continue;
    std::vector<std::string> unused;
    for (const auto& [name, value] : args.sharding) {
      const ShardingSetting* setting = find_sharding_setting(name);
      if (setting != nullptr && setting->mode == other) unused.push_back("--" + name);
    }
    if (!unused.empty())
      warnings->push_back(join(unused, ", ") + (unused.size() == 1 ? " is a " : " are ") + mode_name(other) +
                          " setting" + (unused.size() == 1 ? "" : "s") + ", but " + mode_name(other) +
                          " is not enabled, so " + (unused.size() == 1 ? "it is" : "they are") +
                          " ignored. HINT: add " +
                          (other == ShardingMode::kFsdp ? "--use_fsdp" : "--use_deepspeed") +
                          " (or set distributed_type in the config file)");
  }
  if (s.mode == ShardingMode::kNone) return s;

  const std::string section = s.mode == ShardingMode::kFsdp ? "fsdp_config" : "deepspeed_config";
  // The file's section, by canonical name (value, original key).
  std::map<std::string, std::pair<std::string, std::string>> from_file;
  for (const auto& [key, text] : passthrough_entries(file, section)) {
    if (s.mode == ShardingMode::kDeepSpeed) s.config_fields.push_back(key);
    const std::string name = canonical_sharding_key(section, key);
    const ShardingSetting* setting = find_sharding_setting(name);
    if (s.mode == ShardingMode::kDeepSpeed && key == "gradient_accumulation_steps") {
      s.values[key] = trim(text);
      s.origin[key] = "config file";
      continue;
    }
    if (setting == nullptr || setting->mode != s.mode) {
      std::vector<std::string> names;
      for (const auto& candidate : sharding_settings())
        if (candidate.mode == s.mode) names.push_back(candidate.name);
      warnings->push_back(section + " key '" + key + "' in " + file_name + " is not a " + mode_name(s.mode) +
                          " setting accel knows, so it is ignored (did you mean '" +
                          closest_match(name, names) + "'?)");
      continue;
    }
    from_file[name] = {text, key};
  }
  if (s.mode == ShardingMode::kDeepSpeed && !args.mixed_precision && file.mixed_precision)
    s.config_fields.push_back("mixed_precision");

  for (const auto& setting : sharding_settings()) {
    if (setting.mode != s.mode) continue;
    std::string raw, where;
    if (auto it = args.sharding.find(setting.name); it != args.sharding.end()) {
      raw = it->second;
      where = "--" + std::string(setting.name);
      s.origin[setting.name] = "command line";
    } else if (auto f = from_file.find(setting.name); f != from_file.end()) {
      raw = f->second.first;
      where = section + "." + f->second.second + " in " + file_name;
      s.origin[setting.name] = "config file";
    } else if (setting.default_value != nullptr) {
      raw = setting.default_value;
      s.origin[setting.name] = "default";
    } else {
      continue;
    }
    try {
      s.values[setting.name] = normalize_setting_value(setting, raw);
    } catch (const std::invalid_argument& e) {
      throw UsageError(where + " " + e.what());
    }
  }

  if (s.mode == ShardingMode::kFsdp) {
    const std::string version = s.values.at("fsdp_version");
    std::string& reshard = s.values.at("fsdp_reshard_after_forward");
    const bool reshard_is_bool = reshard == "true" || reshard == "false";
    if (version == "2") {
      if (reshard == "1") reshard = "true";
      if (reshard != "true" && reshard != "false")
        throw UsageError(
            "fsdp_reshard_after_forward is '" + reshard + "' (from the " +
            s.origin.at("fsdp_reshard_after_forward") +
            "), but with fsdp_version 2 it is true or false. HINT: true frees each unit's "
            "gathered parameters after its forward (FULL_SHARD), false keeps them until backward "
            "(SHARD_GRAD_OP); or set fsdp_version 1 to use a strategy name");
    } else if (!reshard_is_bool && s.origin.at("fsdp_sharding_strategy") == "default" &&
               s.origin.at("fsdp_reshard_after_forward") != "default") {
      // `accelerate config` writes FSDP1's strategy under fsdp_reshard_after_forward.
      s.values["fsdp_sharding_strategy"] = reshard == "1" ? reshard : upper(reshard);
      s.origin["fsdp_sharding_strategy"] = s.origin.at("fsdp_reshard_after_forward");
    }
    if (s.values.at("fsdp_cpu_ram_efficient_loading") == "true" &&
        s.values.at("fsdp_sync_module_states") == "false")
      throw UsageError(
          "fsdp_cpu_ram_efficient_loading is true but fsdp_sync_module_states is false: with efficient "
          "loading only rank 0 reads the weights, so they must be broadcast. HINT: set "
          "fsdp_sync_module_states true (or fsdp_cpu_ram_efficient_loading false)");
    return s;
  }

  // DeepSpeed: say what the engine acts on and what it cannot.
  s.honoured.push_back("zero_stage=" + s.get("zero_stage").value_or("2") +
                       (s.get("zero_stage") ? "" : " (default)"));
  if (auto g = s.get("gradient_accumulation_steps"))
    s.honoured.push_back("gradient_accumulation_steps=" + *g);
  for (const auto& setting : sharding_settings()) {
    if (setting.mode != ShardingMode::kDeepSpeed) continue;
    const auto v = s.get(setting.name);
    if (!v || std::string(setting.name) == "zero_stage") continue;
    const std::string reason = deepspeed_ignored_reason(setting.name, *v);
    if (!reason.empty()) {
      s.ignored.push_back(std::string(setting.name) + "=" + *v + " (" + reason + ")");
    } else if (deepspeed_honoured(setting.name, *v)) {
      s.honoured.push_back(std::string(setting.name) + "=" + *v);
    }
  }
  return s;
}

}  // namespace accel::launcher
