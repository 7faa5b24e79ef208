#include "accel/core/options.h"

#include "accel/core/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace accel {

MixedPrecision parse_mixed_precision(const std::string& value) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v == "no" || v == "fp32" || v == "none") return MixedPrecision::kNo;
  if (v == "fp16") return MixedPrecision::kFP16;
  if (v == "bf16") return MixedPrecision::kBF16;
  ACCEL_CHECK(false, "mixed_precision='", value, "' is not supported; accepted: no, fp16, bf16.");
  return MixedPrecision::kNo;
}

std::string to_string(MixedPrecision mp) {
  switch (mp) {
    case MixedPrecision::kNo:
      return "no";
    case MixedPrecision::kFP16:
      return "fp16";
    case MixedPrecision::kBF16:
      return "bf16";
  }
  return "no";
}

namespace {

std::string upper(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
  return v;
}

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : v + ",") {
    if (c == ',') {
      while (!cur.empty() && std::isspace(static_cast<unsigned char>(cur.back()))) cur.pop_back();
      size_t b = 0;
      while (b < cur.size() && std::isspace(static_cast<unsigned char>(cur[b]))) ++b;
      if (b < cur.size()) out.push_back(cur.substr(b));
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

std::string check_dtype_name(const std::string& v, const char* what) {
  std::string d = v;
  std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return std::tolower(c); });
  if (d == "float32" || d == "fp32" || d == "float") return "fp32";
  if (d == "bfloat16" || d == "bf16") return "bf16";
  if (d == "float16" || d == "fp16" || d == "half") return "fp16";
  ACCEL_CHECK(false, "sharding.", what, "='", v, "' is not a dtype; accepted: fp32, bf16, fp16.");
  return "";
}

// Resolves ShardingOptions against the FSDP_* / DeepSpeed environment (explicit option > environment
// > default, per field).
ResolvedSharding resolve_sharding(const ShardingOptions& o, const EnvMap& env, MixedPrecision mp) {
  ResolvedSharding r;
  auto get = [&](const char* k) -> std::optional<std::string> {
    auto it = env.find(k);
    if (it == env.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  auto flag = [&](const char* k) -> std::optional<bool> {
    if (auto v = get(k)) return parse_bool(*v, k);
    return std::nullopt;
  };
  const bool fsdp = flag("ACCELERATE_USE_FSDP").value_or(false);
  const bool deepspeed = flag("ACCELERATE_USE_DEEPSPEED").value_or(false);
  ACCEL_CHECK(!(fsdp && deepspeed),
              "ACCELERATE_USE_FSDP and ACCELERATE_USE_DEEPSPEED are both set; use one of them.");
  std::optional<ShardingStrategy> env_strategy;
  // Values from the environment (unset: the option's default applies).
  int env_reshard = -1;  // -1 unset, else 0/1
  std::optional<bool> env_offload = std::nullopt, env_ac = std::nullopt;
  std::optional<bool> env_sharded_sd = std::nullopt, env_fwd_prefetch = std::nullopt,
                      env_bwd_prefetch = std::nullopt;
  std::optional<AutoWrapPolicy> env_wrap;
  std::vector<std::string> env_classes;
  std::optional<int64_t> env_min_params;
  if (fsdp) {
    r.source = "FSDP";
    int version = 1;
    if (auto v = get("FSDP_VERSION")) {
      ACCEL_CHECK(*v == "1" || *v == "2", "FSDP_VERSION='", *v, "' is not supported; accepted: 1, 2.");
      version = *v == "2" ? 2 : 1;
    }
    if (version == 2) {
      // FSDP1 files keep their strategy name in this key; FSDP2's is a boolean.
      if (auto v = flag("FSDP_RESHARD_AFTER_FORWARD")) env_reshard = *v ? 1 : 0;
      // FSDP2 has no sharding strategy: reshard_after_forward decides (true: FULL_SHARD).
      env_strategy = ShardingStrategy::kFullShard;
      if (auto v = get("FSDP_SHARDING_STRATEGY")) {
        const auto s = parse_sharding_strategy(*v);
        if (s == ShardingStrategy::kHybridShard || s == ShardingStrategy::kHybridShardGradOp ||
            s == ShardingStrategy::kNoShard)
          env_strategy = s;
      }
      r.honoured.push_back(std::string("fsdp_version=2, reshard_after_forward=") +
                           (env_reshard != 0 ? "true" : "false"));
    } else {
      env_strategy = parse_sharding_strategy(get("FSDP_SHARDING_STRATEGY").value_or("FULL_SHARD"));
      r.honoured.push_back("fsdp_version=1");
    }
    env_offload = flag("FSDP_OFFLOAD_PARAMS");
    env_ac = flag("FSDP_ACTIVATION_CHECKPOINTING");
    if (auto v = get("FSDP_AUTO_WRAP_POLICY")) env_wrap = parse_auto_wrap_policy(*v);
    if (auto v = get("FSDP_TRANSFORMER_CLS_TO_WRAP")) env_classes = split_list(*v);
    if (auto v = get("FSDP_MIN_NUM_PARAMS")) {
      int64_t n = 0;
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      ACCEL_CHECK(ec == std::errc() && p == v->data() + v->size() && n >= 0, "FSDP_MIN_NUM_PARAMS='", *v,
                  "' is not an integer >= 0.");
      env_min_params = n;
    }
    if (auto v = get("FSDP_STATE_DICT_TYPE")) {
      const std::string t = upper(*v);
      ACCEL_CHECK(t == "FULL_STATE_DICT" || t == "SHARDED_STATE_DICT" || t == "LOCAL_STATE_DICT",
                  "FSDP_STATE_DICT_TYPE='", *v,
                  "' is not known; accepted: FULL_STATE_DICT, SHARDED_STATE_DICT, LOCAL_STATE_DICT.");
      env_sharded_sd = t != "FULL_STATE_DICT";
      if (t == "LOCAL_STATE_DICT")
        r.ignored.push_back(
            "fsdp_state_dict_type=LOCAL_STATE_DICT (saved as SHARDED_STATE_DICT: same files per rank, "
            "and they also load on another number of processes)");
    }
    env_fwd_prefetch = flag("FSDP_FORWARD_PREFETCH");
    if (auto v = get("FSDP_BACKWARD_PREFETCH")) {
      const std::string t = upper(*v);
      ACCEL_CHECK(t == "BACKWARD_PRE" || t == "BACKWARD_POST" || t == "NO_PREFETCH",
                  "FSDP_BACKWARD_PREFETCH='", *v,
                  "' is not known; accepted: BACKWARD_PRE, BACKWARD_POST, NO_PREFETCH.");
      env_bwd_prefetch = t != "NO_PREFETCH";
    }
    if (flag("FSDP_SYNC_MODULE_STATES") == std::optional<bool>(false))
      r.ignored.push_back(
          "fsdp_sync_module_states=false (accel always starts every rank from rank 0's weights)");
    if (flag("FSDP_ACTIVATION_CHECKPOINTING_OFFLOAD").value_or(false))
      r.ignored.push_back(
          "fsdp_activation_checkpointing_offload=true (checkpointed inputs stay on the device)");
    if (auto v = get("FSDP_IGNORED_MODULES"))
      r.ignored.push_back(c10::str("fsdp_ignored_modules=", *v, " (every parameter is sharded)"));
  } else if (deepspeed) {
    r.source = "DeepSpeed";
    std::optional<int> stage;
    if (auto v = get("ACCELERATE_DEEPSPEED_ZERO_STAGE")) {
      ACCEL_CHECK(*v == "0" || *v == "1" || *v == "2" || *v == "3", "ACCELERATE_DEEPSPEED_ZERO_STAGE='", *v,
                  "' is not a ZeRO stage; accepted: 0, 1, 2, 3.");
      stage = (*v)[0] - '0';
    }
    if (auto v = get("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE")) {
      const std::string d = upper(*v);
      ACCEL_CHECK(d == "NONE" || d == "CPU" || d == "NVME", "ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE='",
                  *v, "' is not known; accepted: none, cpu, nvme.");
      if (d == "CPU") env_offload = true;
      if (d == "NVME")
        r.ignored.push_back("offload_optimizer_device=nvme (kept in CPU memory instead)"), env_offload = true;
    }
    if (auto v = get("ACCELERATE_DEEPSPEED_OFFLOAD_PARAM_DEVICE"); v && upper(*v) != "NONE")
      r.ignored.push_back(c10::str("offload_param_device=", *v, " (parameter shards stay on the device)"));
    if (auto v = get("ACCELERATE_GRADIENT_CLIPPING")) {
      char* end = nullptr;
      const double c = std::strtod(v->c_str(), &end);
      ACCEL_CHECK(end != v->c_str() && *end == '\0' && c >= 0, "ACCELERATE_GRADIENT_CLIPPING='", *v,
                  "' is not a number >= 0.");
      r.gradient_clipping = c;
      r.honoured.push_back(c10::str("gradient_clipping=", c));
    }
    if (flag("ACCELERATE_DEEPSPEED_ZERO3_INIT").value_or(false))
      r.ignored.push_back("zero3_init_flag=true (the model is built whole, then sharded by prepare)");
    if (flag("ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL").value_or(false))
      r.ignored.push_back("zero3_save_16bit_model=true (save_model writes the fp32 master weights)");
    if (auto f = get("ACCELERATE_DEEPSPEED_CONFIG_FILE")) {
      std::ifstream in(*f);
      ACCEL_CHECK_INPUT(in.good(), "ACCELERATE_DEEPSPEED_CONFIG_FILE='", *f,
                        "' cannot be read. HINT: give the path of a DeepSpeed JSON config.");
      std::stringstream ss;
      ss << in.rdbuf();
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(ss.str());
      } catch (const nlohmann::json::exception& e) {
        ACCEL_CHECK_INPUT(false, "DeepSpeed config ", *f, " is not valid JSON (", e.what(), ").");
      }
      ACCEL_CHECK_INPUT(j.is_object(), "DeepSpeed config ", *f, " is not a JSON object.");
      for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        if (k == "zero_optimization" && it->is_object()) {
          for (auto z = it->begin(); z != it->end(); ++z) {
            if (z.key() == "stage" && z->is_number_integer()) {
              const int st = z->get<int>();
              ACCEL_CHECK_INPUT(st >= 0 && st <= 3, "DeepSpeed config ", *f, ": zero_optimization.stage=", st,
                                " is not 0, 1, 2 or 3.");
              if (!stage) stage = st;
            } else if (z.key() == "offload_optimizer" && z->is_object()) {
              if (upper(z->value("device", std::string("none"))) != "NONE") env_offload = true;
            } else {
              r.ignored.push_back("zero_optimization." + z.key() + " (DeepSpeed config)");
            }
          }
        } else if (k == "gradient_clipping" && it->is_number()) {
          if (r.gradient_clipping == 0) r.gradient_clipping = it->get<double>();
        } else if (k == "train_batch_size" || k == "train_micro_batch_size_per_gpu" ||
                   k == "gradient_accumulation_steps" || k == "bf16" || k == "fp16") {
          // Accelerate fills these from its own settings ("auto"); accel takes them from the loop.
        } else {
          r.ignored.push_back(k + " (DeepSpeed config)");
        }
      }
    }
    const int st = stage.value_or(2);
    env_strategy = st == 0   ? ShardingStrategy::kNoShard
                   : st == 1 ? ShardingStrategy::kShardOptimizer
                   : st == 2 ? ShardingStrategy::kShardGradOp
                             : ShardingStrategy::kFullShard;
    r.honoured.push_back(c10::str("zero_stage=", st));
  }

  r.strategy = o.strategy().value_or(env_strategy.value_or(ShardingStrategy::kNoShard));
  if (o.strategy()) r.source = "options";
  r.wrap_module_types = !o.wrap_module_types().empty() ? o.wrap_module_types() : env_classes;
  if (o.auto_wrap_policy()) {
    r.auto_wrap_policy = *o.auto_wrap_policy();
  } else if (!o.wrap_module_types().empty()) {
    r.auto_wrap_policy = AutoWrapPolicy::kTransformerBased;
  } else if (env_wrap) {
    r.auto_wrap_policy = *env_wrap;
  } else {
    r.auto_wrap_policy =
        r.wrap_module_types.empty() ? AutoWrapPolicy::kNoWrap : AutoWrapPolicy::kTransformerBased;
  }
  ACCEL_CHECK(r.auto_wrap_policy != AutoWrapPolicy::kTransformerBased || !r.wrap_module_types.empty(),
              "sharding: auto_wrap_policy TRANSFORMER_BASED_WRAP needs the module types to wrap "
              "(fsdp_transformer_layer_cls_to_wrap / FSDP_TRANSFORMER_CLS_TO_WRAP / "
              "ShardingOptions::wrap_module_types), e.g. BertLayer.");
  r.min_num_params = o.min_num_params().value_or(env_min_params.value_or(100000000));
  ACCEL_CHECK(r.min_num_params >= 0, "sharding.min_num_params=", r.min_num_params, " must be >= 0.");
  r.reshard_after_forward = o.reshard_after_forward().value_or(env_reshard != 0);
  r.offload_params = o.offload_params().value_or(env_offload.value_or(false));
  r.activation_checkpointing = o.activation_checkpointing().value_or(env_ac.value_or(false));
  const std::string mp_name = mp == MixedPrecision::kBF16   ? "bf16"
                              : mp == MixedPrecision::kFP16 ? "fp16"
                                                            : "";
  r.param_dtype = o.param_dtype() ? check_dtype_name(*o.param_dtype(), "param_dtype") : mp_name;
  r.reduce_dtype = o.reduce_dtype() ? check_dtype_name(*o.reduce_dtype(), "reduce_dtype") : "fp32";
  r.sharded_state_dict = o.sharded_state_dict().value_or(env_sharded_sd.value_or(true));
  r.forward_prefetch = o.forward_prefetch().value_or(env_fwd_prefetch.value_or(true));
  r.backward_prefetch = o.backward_prefetch().value_or(env_bwd_prefetch.value_or(true));
  if (o.shard_group_size()) {
    ACCEL_CHECK(*o.shard_group_size() >= 1, "sharding.shard_group_size=", *o.shard_group_size(),
                " must be >= 1.");
    r.shard_group_size = *o.shard_group_size();
  }
  ACCEL_CHECK(o.bucket_cap_mb() > 0, "sharding.bucket_cap_mb=", o.bucket_cap_mb(), " must be > 0.");
  r.bucket_cap_mb = o.bucket_cap_mb();
  if (r.enabled()) {
    r.honoured.insert(r.honoured.begin(), "sharding_strategy=" + to_string(r.strategy));
    r.honoured.push_back("auto_wrap_policy=" + to_string(r.auto_wrap_policy));
    if (!r.wrap_module_types.empty()) {
      std::string cls;
      for (const auto& c : r.wrap_module_types) cls += (cls.empty() ? "" : ",") + c;
      r.honoured.push_back("transformer_layer_cls_to_wrap=" + cls);
    }
    if (r.auto_wrap_policy == AutoWrapPolicy::kSizeBased)
      r.honoured.push_back(c10::str("min_num_params=", r.min_num_params));
    r.honoured.push_back(std::string("offload_params=") + (r.offload_params ? "true" : "false"));
    r.honoured.push_back(std::string("activation_checkpointing=") +
                         (r.activation_checkpointing ? "true" : "false"));
    r.honoured.push_back(std::string("state_dict_type=") +
                         (r.sharded_state_dict ? "SHARDED_STATE_DICT" : "FULL_STATE_DICT"));
  }
  return r;
}

}  // namespace

ShardingStrategy parse_sharding_strategy(const std::string& value) {
  std::string v = upper(value);
  while (!v.empty() && v.front() == '_') v.erase(v.begin());
  v.erase(std::remove(v.begin(), v.end(), '-'), v.end());
  if (v == "FULL_SHARD" || v == "1" || v == "ZERO3") return ShardingStrategy::kFullShard;
  if (v == "SHARD_GRAD_OP" || v == "2" || v == "ZERO2") return ShardingStrategy::kShardGradOp;
  if (v == "NO_SHARD" || v == "3" || v == "ZERO0" || v == "DDP") return ShardingStrategy::kNoShard;
  if (v == "HYBRID_SHARD" || v == "4") return ShardingStrategy::kHybridShard;
  if (v == "HYBRID_SHARD_ZERO2" || v == "5") return ShardingStrategy::kHybridShardGradOp;
  if (v == "SHARD_OPTIMIZER" || v == "ZERO1") return ShardingStrategy::kShardOptimizer;
  ACCEL_CHECK(false, "sharding strategy '", value,
              "' is not known; accepted: FULL_SHARD (1), SHARD_GRAD_OP (2), NO_SHARD (3), HYBRID_SHARD (4), "
              "HYBRID_SHARD_ZERO2 (5), SHARD_OPTIMIZER, zero1, zero2, zero3.");
  return ShardingStrategy::kNoShard;
}

std::string to_string(ShardingStrategy s) {
  switch (s) {
    case ShardingStrategy::kNoShard:
      return "NO_SHARD";
    case ShardingStrategy::kShardOptimizer:
      return "SHARD_OPTIMIZER";
    case ShardingStrategy::kShardGradOp:
      return "SHARD_GRAD_OP";
    case ShardingStrategy::kFullShard:
      return "FULL_SHARD";
    case ShardingStrategy::kHybridShard:
      return "HYBRID_SHARD";
    case ShardingStrategy::kHybridShardGradOp:
      return "HYBRID_SHARD_ZERO2";
  }
  return "NO_SHARD";
}

AutoWrapPolicy parse_auto_wrap_policy(const std::string& value) {
  const std::string v = upper(value);
  if (v == "TRANSFORMER_BASED_WRAP") return AutoWrapPolicy::kTransformerBased;
  if (v == "SIZE_BASED_WRAP") return AutoWrapPolicy::kSizeBased;
  if (v == "NO_WRAP") return AutoWrapPolicy::kNoWrap;
  ACCEL_CHECK(false, "auto wrap policy '", value,
              "' is not known; accepted: TRANSFORMER_BASED_WRAP, SIZE_BASED_WRAP, NO_WRAP.");
  return AutoWrapPolicy::kNoWrap;
}

std::string to_string(AutoWrapPolicy p) {
  switch (p) {
    case AutoWrapPolicy::kNoWrap:
      return "NO_WRAP";
    case AutoWrapPolicy::kTransformerBased:
      return "TRANSFORMER_BASED_WRAP";
    case AutoWrapPolicy::kSizeBased:
      return "SIZE_BASED_WRAP";
  }
  return "NO_WRAP";
}

ResolvedOptions resolve_options(const AcceleratorOptions& options, const ProcessEnv& env) {
  ResolvedOptions r;
  if (options.mixed_precision()) {
    r.mixed_precision = parse_mixed_precision(*options.mixed_precision());
  } else if (env.mixed_precision) {
    r.mixed_precision = parse_mixed_precision(*env.mixed_precision);
  }

  const auto& ga = options.gradient_accumulation();
  ACCEL_CHECK(!(options.gradient_accumulation_steps() && ga.num_steps() &&
                *options.gradient_accumulation_steps() != *ga.num_steps()),
              "gradient_accumulation_steps=", *options.gradient_accumulation_steps(),
              " conflicts with gradient_accumulation.num_steps=", ga.num_steps().value_or(0),
              "; set only one of them.");
  std::optional<int64_t> steps = options.gradient_accumulation_steps();
  if (!steps) steps = ga.num_steps();
  if (!steps && env.gradient_accumulation_steps) steps = *env.gradient_accumulation_steps;
  if (steps) {
    ACCEL_CHECK(*steps >= 1, "gradient_accumulation_steps=", *steps,
                " is not valid; accepted: an integer >= 1.");
    r.gradient_accumulation_steps = *steps;
  }

  if (options.cpu()) {
    r.cpu = *options.cpu();
  } else if (env.use_cpu) {
    r.cpu = *env.use_cpu;
  }

  if (options.process_group().timeout_s()) {
    r.timeout_s = *options.process_group().timeout_s();
  } else if (env.collective_timeout_s) {
    r.timeout_s = *env.collective_timeout_s;
  }
  ACCEL_CHECK(r.timeout_s > 0, "process_group.timeout_s=", r.timeout_s, " must be > 0.");
  if (options.process_group().heartbeat_s()) {
    r.heartbeat_s = *options.process_group().heartbeat_s();
  } else if (env.heartbeat_s) {
    r.heartbeat_s = *env.heartbeat_s;
  }
  ACCEL_CHECK(r.heartbeat_s >= 0, "process_group.heartbeat_s=", r.heartbeat_s, " must be >= 0 (0: off).");
  const std::string& backend = options.process_group().backend();
  ACCEL_CHECK(backend == "auto" || backend == "gloo" || backend == "nccl", "process_group.backend='", backend,
              "' is not known; accepted: auto, gloo, nccl.");
  const std::string& hook = options.ddp().comm_hook();
  ACCEL_CHECK(hook == "none" || hook == "fp16" || hook == "bf16", "ddp.comm_hook='", hook,
              "' is not known; accepted: none, fp16, bf16.");
  ACCEL_CHECK(options.ddp().bucket_cap_mb() > 0 && options.ddp().first_bucket_cap_mb() > 0,
              "ddp bucket sizes must be > 0 MiB (got ", options.ddp().bucket_cap_mb(), " and ",
              options.ddp().first_bucket_cap_mb(), ").");
  const auto& sc = options.scaler();
  ACCEL_CHECK(sc.init_scale() > 0, "scaler.init_scale=", sc.init_scale(), " must be > 0.");
  ACCEL_CHECK(sc.growth_factor() > 1.0, "scaler.growth_factor=", sc.growth_factor(), " must be > 1.");
  ACCEL_CHECK(sc.backoff_factor() > 0.0 && sc.backoff_factor() < 1.0,
              "scaler.backoff_factor=", sc.backoff_factor(), " must be in (0, 1).");
  ACCEL_CHECK(sc.growth_interval() >= 1, "scaler.growth_interval=", sc.growth_interval(), " must be >= 1.");
  ACCEL_CHECK(options.project().total_limit() >= 0, "project.total_limit=", options.project().total_limit(),
              " must be >= 0 (0 keeps every checkpoint).");
  r.debug = env.debug_mode.value_or(false);
  r.sharding = resolve_sharding(options.sharding(), env.sharding, r.mixed_precision);
  return r;
}

}  // namespace accel
