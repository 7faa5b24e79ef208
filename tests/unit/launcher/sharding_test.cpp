// FSDP / DeepSpeed settings through `accel launch`: value checks, command line > config file >
// Accelerate's default, the workers' variables compared with what the real `accelerate launch`
// sets for the same files (fixtures from generate_fixtures.py), and Accelerate-written configs
// launching without a warning.
#include <accel/core/error.h>
#include <accel/launcher/config_file.h>
#include <accel/launcher/launch.h>
#include <accel/launcher/sharding.h>

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace accel::launcher {
namespace {

using Args = std::vector<std::string>;
using Env = std::map<std::string, std::string>;

std::string fixture(const std::string& name) {
  return std::string(ACCEL_SOURCE_DIR) + "/tests/fixtures/configs/" + name;
}

std::string normalized(const char* setting, const std::string& value) {
  return normalize_setting_value(*find_sharding_setting(setting), value);
}

std::string value_error(const char* setting, const std::string& value) {
  try {
    normalized(setting, value);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no error>";
}

LaunchConfig resolve(const Args& args, const std::optional<ClusterConfig>& file = std::nullopt,
                     int gpus = 0) {
  return resolve_launch_config(parse_launch_args(args), file, gpus);
}

std::string resolve_error(const Args& args, const std::optional<ClusterConfig>& file = std::nullopt) {
  try {
    resolve(args, file);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "<no error>";
}

ClusterConfig fsdp_file(const std::string& fsdp_config_text) {
  ClusterConfig f;
  f.distributed_type = "FSDP";
  f.num_processes = 2;
  if (!fsdp_config_text.empty()) f.passthrough["fsdp_config"] = fsdp_config_text;
  return f;
}

TEST(ShardingValues, EachKindIsCheckedAndSpelledAsTheWorkersGetIt) {
  EXPECT_EQ(normalized("fsdp_offload_params", "True"), "true");
  EXPECT_EQ(normalized("fsdp_offload_params", "no"), "false");
  EXPECT_EQ(normalized("fsdp_min_num_params", "100000000"), "100000000");
  EXPECT_EQ(normalized("fsdp_min_num_params", "100000000.0"), "100000000");  // written by releases < 0.20
  EXPECT_EQ(normalized("fsdp_sharding_strategy", "shard_grad_op"), "SHARD_GRAD_OP");
  EXPECT_EQ(normalized("fsdp_sharding_strategy", "2"), "2");
  EXPECT_EQ(normalized("fsdp_reshard_after_forward", "FULL_SHARD"), "full_shard");  // Accelerate lower-cases
  EXPECT_EQ(normalized("fsdp_reshard_after_forward", "False"), "false");
  EXPECT_EQ(normalized("fsdp_auto_wrap_policy", "transformer_based_wrap"), "TRANSFORMER_BASED_WRAP");
  EXPECT_EQ(normalized("fsdp_transformer_layer_cls_to_wrap", " BertLayer , BertEmbeddings,"),
            "BertLayer,BertEmbeddings");
  EXPECT_EQ(normalized("fsdp_version", "2"), "2");
  EXPECT_EQ(normalized("zero_stage", "3"), "3");
  EXPECT_EQ(normalized("offload_optimizer_device", "CPU"), "cpu");
  // Python's str(float), as Accelerate writes ACCELERATE_GRADIENT_CLIPPING.
  EXPECT_EQ(normalized("gradient_clipping", "1"), "1.0");
  EXPECT_EQ(normalized("gradient_clipping", "0.5"), "0.5");
  EXPECT_EQ(normalized("gradient_clipping", "0.0001"), "0.0001");
  EXPECT_EQ(normalized("gradient_clipping", "1e-5"), "1e-05");
  EXPECT_EQ(normalized("gradient_clipping", "1e16"), "1e+16");
  EXPECT_EQ(normalized("gradient_clipping", "123456789.25"), "123456789.25");
  EXPECT_EQ(normalized("gradient_clipping", "0"), "0.0");
}

TEST(ShardingValues, BadValuesNameTheValueAndTheAcceptedOnes) {
  EXPECT_EQ(
      value_error("fsdp_sharding_strategy", "FULL"),
      "'FULL' is not valid; accepted: FULL_SHARD, SHARD_GRAD_OP, NO_SHARD, HYBRID_SHARD, HYBRID_SHARD_ZERO2 "
      "(or their numbers 1-5)");
  EXPECT_EQ(value_error("fsdp_sharding_strategy", "6"), value_error("fsdp_sharding_strategy", "6"));
  EXPECT_NE(value_error("fsdp_sharding_strategy", "6").find("'6' is not valid"), std::string::npos);
  EXPECT_EQ(value_error("fsdp_min_num_params", "1e8"),
            "'1e8' is not valid; accepted: an integer >= 0, e.g. 100000000");
  EXPECT_EQ(value_error("fsdp_min_num_params", "lots"),
            "'lots' is not valid; accepted: an integer >= 0, e.g. 100000000");
  EXPECT_EQ(value_error("fsdp_offload_params", "maybe"), "'maybe' is not valid; accepted: true or false");
  EXPECT_EQ(value_error("fsdp_version", "3"), "'3' is not valid; accepted: 1 or 2");
  EXPECT_EQ(value_error("zero_stage", "4"), "'4' is not valid; accepted: 0, 1, 2 or 3");
  EXPECT_EQ(value_error("offload_param_device", "disk"), "'disk' is not valid; accepted: none, cpu or nvme");
  EXPECT_EQ(value_error("gradient_clipping", "-1"), "'-1' is not valid; accepted: a number >= 0, e.g. 1.0");
  EXPECT_EQ(value_error("fsdp_state_dict_type", "FULL"),
            "'FULL' is not valid; accepted: FULL_STATE_DICT, LOCAL_STATE_DICT, SHARDED_STATE_DICT");
  EXPECT_NE(value_error("fsdp_reshard_after_forward", "sometimes").find("true or false (FSDP2)"),
            std::string::npos);
}

TEST(ShardingValues, LegacyConfigKeysAreAcceleratesOwn) {
  EXPECT_EQ(canonical_sharding_key("fsdp_config", "sharding_strategy"), "fsdp_sharding_strategy");
  EXPECT_EQ(canonical_sharding_key("fsdp_config", "min_num_params"), "fsdp_min_num_params");
  EXPECT_EQ(canonical_sharding_key("fsdp_config", "fsdp_backward_prefetch_policy"), "fsdp_backward_prefetch");
  EXPECT_EQ(canonical_sharding_key("fsdp_config", "fsdp_version"), "fsdp_version");
  EXPECT_EQ(canonical_sharding_key("deepspeed_config", "zero_stage"), "zero_stage");
}

TEST(ShardingResolve, ModeComesFromTheFlagsElseTheFile) {
  EXPECT_EQ(resolve({"p"}).sharding.mode, ShardingMode::kNone);
  EXPECT_EQ(resolve({"--use_fsdp", "p"}).sharding.mode, ShardingMode::kFsdp);
  EXPECT_EQ(resolve({"--use_deepspeed", "p"}).sharding.mode, ShardingMode::kDeepSpeed);
  EXPECT_EQ(resolve({"p"}, fsdp_file("")).sharding.mode, ShardingMode::kFsdp);
  // --multi_gpu chooses plain data parallel over the file's FSDP, as in Accelerate.
  EXPECT_EQ(resolve({"--multi_gpu", "p"}, fsdp_file("")).sharding.mode, ShardingMode::kNone);
  EXPECT_EQ(resolve({"--use_deepspeed", "p"}, fsdp_file("")).sharding.mode, ShardingMode::kDeepSpeed);
  EXPECT_EQ(resolve_error({"--use_fsdp", "--use_deepspeed", "p"}),
            "only one of --multi_gpu, --use_fsdp and --use_deepspeed can be given");
  EXPECT_EQ(resolve_error({"--use_fsdp", "--multi_gpu", "--num_processes", "2", "p"}),
            "only one of --multi_gpu, --use_fsdp and --use_deepspeed can be given");
  // FSDP on CPUs: sharded training over Gloo (Accelerate refuses --cpu with --use_fsdp).
  const LaunchConfig cpu = resolve({"--use_fsdp", "--cpu", "--num_processes", "2", "p"});
  EXPECT_TRUE(cpu.use_cpu);
  EXPECT_EQ(cpu.sharding.mode, ShardingMode::kFsdp);
  EXPECT_TRUE(cpu.warnings.empty());
}

TEST(ShardingResolve, FlagBeatsFileBeatsAcceleratesDefault) {
  const ClusterConfig f =
      fsdp_file("fsdp_version: 2\nfsdp_offload_params: true\nfsdp_auto_wrap_policy: SIZE_BASED_WRAP\n");
  const LaunchConfig c = resolve({"--fsdp_offload_params", "false", "--fsdp_min_num_params=5000", "p"}, f);
  const Env env = sharding_env(c.sharding);
  const Env expected = {{"ACCELERATE_USE_FSDP", "true"},
                        {"FSDP_VERSION", "2"},             // file
                        {"FSDP_OFFLOAD_PARAMS", "false"},  // flag over file
                        {"FSDP_MIN_NUM_PARAMS", "5000"},   // flag
                        {"FSDP_AUTO_WRAP_POLICY", "SIZE_BASED_WRAP"},
                        {"FSDP_SHARDING_STRATEGY", "FULL_SHARD"},  // Accelerate's defaults from here
                        {"FSDP_RESHARD_AFTER_FORWARD", "true"},
                        {"FSDP_FORWARD_PREFETCH", "false"},
                        {"FSDP_USE_ORIG_PARAMS", "true"},
                        {"FSDP_CPU_RAM_EFFICIENT_LOADING", "true"},
                        {"FSDP_SYNC_MODULE_STATES", "true"},
                        {"FSDP_ACTIVATION_CHECKPOINTING", "false"},
                        {"FSDP_ACTIVATION_CHECKPOINTING_OFFLOAD", "false"}};
  EXPECT_EQ(env, expected);
  EXPECT_EQ(c.sharding.origin.at("fsdp_version"), "config file");
  EXPECT_EQ(c.sharding.origin.at("fsdp_offload_params"), "command line");
  EXPECT_EQ(c.sharding.origin.at("fsdp_use_orig_params"), "default");
  // Bare boolean flags mean true; the next token is only taken when it is a boolean.
  const LaunchArgs a =
      parse_launch_args({"--fsdp_offload_params", "prog", "--fsdp_activation_checkpointing", "x"});
  EXPECT_EQ(a.sharding.at("fsdp_offload_params"), "true");
  EXPECT_EQ(a.program, "prog");
  EXPECT_EQ(a.program_args, (Args{"--fsdp_activation_checkpointing", "x"}));
  // The worker environment carries them.
  const Env w = worker_env(c, 0, 0, 2, {});
  EXPECT_EQ(w.at("FSDP_MIN_NUM_PARAMS"), "5000");
  EXPECT_EQ(w.at("ACCELERATE_USE_FSDP"), "true");
  EXPECT_EQ(worker_env(resolve({"p"}), 0, 0, 2, {}).count("ACCELERATE_USE_FSDP"), 0u);
}

TEST(ShardingResolve, BadValuesAreUsageErrorsNamingWhereTheyCameFrom) {
  EXPECT_EQ(resolve_error({"--use_fsdp", "--fsdp_sharding_strategy", "FULL", "p"}),
            "--fsdp_sharding_strategy 'FULL' is not valid; accepted: FULL_SHARD, SHARD_GRAD_OP, NO_SHARD, "
            "HYBRID_SHARD, HYBRID_SHARD_ZERO2 (or their numbers 1-5)");
  EXPECT_EQ(resolve_error({"--use_fsdp", "--fsdp_min_num_params", "1e8", "p"}),
            "--fsdp_min_num_params '1e8' is not valid; accepted: an integer >= 0, e.g. 100000000");
  ClusterConfig f = fsdp_file("sharding_strategy: ZERO3\n");  // built in code: not checked on load
  EXPECT_EQ(
      resolve_error({"--config_file", "cfg.yaml", "p"}, f),
      "fsdp_config.sharding_strategy in cfg.yaml 'ZERO3' is not valid; accepted: FULL_SHARD, SHARD_GRAD_OP, "
      "NO_SHARD, HYBRID_SHARD, HYBRID_SHARD_ZERO2 (or their numbers 1-5)");
  EXPECT_NE(resolve_error(
                {"--use_fsdp", "--fsdp_version", "2", "--fsdp_reshard_after_forward", "SHARD_GRAD_OP", "p"})
                .find("fsdp_reshard_after_forward is 'shard_grad_op' (from the command line), but with "
                      "fsdp_version 2 "
                      "it is true or false"),
            std::string::npos);
  EXPECT_NE(resolve_error({"--use_fsdp", "--fsdp_sync_module_states", "false", "p"})
                .find("fsdp_cpu_ram_efficient_loading is true but fsdp_sync_module_states is false"),
            std::string::npos);
  EXPECT_EQ(resolve_error({"--use_deepspeed", "--zero_stage", "5", "p"}),
            "--zero_stage '5' is not valid; accepted: 0, 1, 2 or 3");
  // A file's values are checked when it loads, with the line and column.
  try {
    parse_config_text("distributed_type: FSDP\nfsdp_config:\n  fsdp_min_num_params: lots\n", "c.yaml");
    ADD_FAILURE() << "no error";
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace())
                  .find("c.yaml:3:24: fsdp_config.fsdp_min_num_params 'lots' is not valid; accepted: an "
                        "integer >= 0"),
              std::string::npos)
        << e.what_without_backtrace();
  }
  EXPECT_THROW(
      parse_config_text("distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 7\n", "c.yaml"),
      accel::InputError);
  EXPECT_THROW(parse_config_text("distributed_type: FSDP\nfsdp_config: [1, 2]\n", "c.yaml"), InputError);
}

TEST(ShardingResolve, OldAccelerateFsdpFilesKeepTheirMeaning) {
  // Releases 0.7-0.9 wrote unprefixed keys, an integer strategy and the 1e8 default as a float;
  // 0.12-0.25 wrote fsdp_backward_prefetch_policy.
  const ClusterConfig f = parse_config_text(
      "distributed_type: FSDP\nnum_processes: 2\nfsdp_config:\n  min_num_params: 100000000.0\n  "
      "offload_params: false\n"
      "  sharding_strategy: 2\n  fsdp_backward_prefetch_policy: BACKWARD_PRE\n",
      "old.yaml");
  const LaunchConfig c = resolve({"p"}, f);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings[0];
  const Env env = sharding_env(c.sharding);
  EXPECT_EQ(env.at("FSDP_SHARDING_STRATEGY"), "2");
  EXPECT_EQ(env.at("FSDP_MIN_NUM_PARAMS"), "100000000");
  EXPECT_EQ(env.at("FSDP_BACKWARD_PREFETCH"), "BACKWARD_PRE");
  EXPECT_EQ(sharding_strategy(c.sharding), "SHARD_GRAD_OP");
}

TEST(ShardingResolve, SettingsForAModeThatIsOffAreNamedNotDropped) {
  const LaunchConfig c = resolve({"--fsdp_version", "2", "--zero_stage", "3", "p"});
  ASSERT_EQ(c.warnings.size(), 2u);
  EXPECT_EQ(
      c.warnings[0],
      "--fsdp_version is a FSDP setting, but FSDP is not enabled, so it is ignored. HINT: add --use_fsdp (or "
      "set distributed_type in the config file)");
  EXPECT_NE(c.warnings[1].find("--zero_stage is a DeepSpeed setting"), std::string::npos);
  const LaunchConfig unknown = resolve({"p"}, fsdp_file("fsdp_sharding_stratgy: FULL_SHARD\n"));
  ASSERT_EQ(unknown.warnings.size(), 1u);
  EXPECT_NE(unknown.warnings[0].find("fsdp_config key 'fsdp_sharding_stratgy'"), std::string::npos);
  EXPECT_NE(unknown.warnings[0].find("did you mean 'fsdp_sharding_strategy'?"), std::string::npos);
}

TEST(ShardingResolve, EngineStrategy) {
  auto strategy = [](const Args& args) { return sharding_strategy(resolve(args).sharding); };
  EXPECT_EQ(strategy({"--use_fsdp", "p"}), "FULL_SHARD");
  EXPECT_EQ(strategy({"--use_fsdp", "--fsdp_sharding_strategy", "4", "p"}), "HYBRID_SHARD");
  EXPECT_EQ(strategy({"--use_fsdp", "--fsdp_version", "2", "--fsdp_reshard_after_forward", "false", "p"}),
            "SHARD_GRAD_OP");
  EXPECT_EQ(strategy({"--use_fsdp", "--fsdp_version", "2", "--fsdp_sharding_strategy", "NO_SHARD", "p"}),
            "NO_SHARD");
  EXPECT_EQ(strategy({"--use_deepspeed", "p"}), "SHARD_GRAD_OP");  // ZeRO stage 2 by default
  EXPECT_EQ(strategy({"--use_deepspeed", "--zero_stage", "1", "p"}), "SHARD_OPTIMIZER");
  EXPECT_EQ(strategy({"--use_deepspeed", "--zero_stage", "3", "p"}), "FULL_SHARD");
  EXPECT_EQ(strategy({"p"}), "");
}

// The contract: for every Accelerate-written sharded config, the workers get the variables the real
// `accelerate launch` sets (recorded by generate_fixtures.py), with one documented difference.
TEST(ShardingEnv, SameVariablesAsAccelerateLaunch) {
  for (const char* name :
       {"fsdp2", "fsdp2_offload", "fsdp1", "deepspeed_zero1", "deepspeed_zero2", "deepspeed_zero3"}) {
    SCOPED_TRACE(name);
    std::ifstream in(fixture(std::string(name) + ".accelerate_env.json"));
    const nlohmann::json expected_json = nlohmann::json::parse(in);
    Env expected;
    for (const auto& [k, v] : expected_json.items()) expected[k] = v.get<std::string>();
    const ClusterConfig file = load_config_file(fixture(std::string(name) + ".yaml"));
    const LaunchConfig c = resolve({"p"}, file, 2);
    if (std::string(name) == "fsdp1") {
      // `accelerate config` writes FSDP1's strategy under fsdp_reshard_after_forward, and Accelerate
      // 1.15's launcher then passes FSDP_SHARDING_STRATEGY=FULL_SHARD, dropping the answer.
      EXPECT_EQ(expected.at("FSDP_SHARDING_STRATEGY"), "FULL_SHARD");
      expected["FSDP_SHARDING_STRATEGY"] = "SHARD_GRAD_OP";
    }
    EXPECT_EQ(sharding_env(c.sharding), expected);
    if (std::string(name) == "deepspeed_zero3") {
      EXPECT_EQ(c.gradient_accumulation_steps, 4);
    }
  }
}

TEST(ShardingEnv, DeepSpeedSaysWhatItHonoursAndWhatNot) {
  const LaunchConfig z2 = resolve({"p"}, load_config_file(fixture("deepspeed_zero2.yaml")), 2);
  EXPECT_TRUE(z2.warnings.empty());
  ASSERT_EQ(z2.notes.size(), 1u);
  EXPECT_EQ(z2.notes[0],
            "DeepSpeed settings honoured: zero_stage=2, gradient_accumulation_steps=1, "
            "offload_optimizer_device=cpu, "
            "gradient_clipping=1.0 (SHARD_GRAD_OP (ZeRO-2: gradients and optimizer states sharded))");
  ClusterConfig f;
  f.distributed_type = "DEEPSPEED";
  f.num_processes = 2;
  f.passthrough["deepspeed_config"] =
      "zero_stage: 3\ndeepspeed_hostfile: hosts\nzero3_init_flag: true\noffload_param_device: nvme\n";
  const LaunchConfig c = resolve({"--gradient_clipping", "0.5", "--config_file", "ds.yaml", "p"}, f, 2);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(
      c.warnings[0],
      "DeepSpeed settings honoured: zero_stage=3, gradient_clipping=0.5; ignored: deepspeed_hostfile=hosts "
      "(DeepSpeed's multi-node launcher: run accel launch on each machine with --machine_rank)");
  // zero3_init_flag and offload_param_device reach the program, which says itself that it cannot
  // honour them (src/core/options.cpp), so the launcher does not warn twice.
  EXPECT_EQ(sharding_env(c.sharding).at("ACCELERATE_CONFIG_DS_FIELDS"),
            "zero_stage,deepspeed_hostfile,zero3_init_flag,offload_param_device");
  EXPECT_EQ(sharding_env(c.sharding).at("ACCELERATE_GRADIENT_CLIPPING"), "0.5");
  // Accumulation steps in both places must agree.
  f.passthrough["deepspeed_config"] = "gradient_accumulation_steps: 2\n";
  f.gradient_accumulation_steps = 3;
  EXPECT_NE(resolve_error({"p"}, f).find(
                "gradient_accumulation_steps 3 and deepspeed_config.gradient_accumulation_steps 2"),
            std::string::npos);
  EXPECT_EQ(resolve({"--gradient_accumulation_steps", "5", "p"}, f).gradient_accumulation_steps, 5);
}

// Issue acceptance: config files as Accelerate writes them launch with no warning.
TEST(AccelerateFiles, LaunchWithNoWarning) {
  for (const char* name :
       {"single_cpu.yaml", "multi_cpu.yaml", "multi_cpu.json", "multi_gpu.yaml", "multi_node.yaml",
        "default_cpu.yaml", "default_cpu.accelerate_updated.yaml", "legacy_0_x_fp16.accelerate_updated.yaml",
        "multi_cpu_ipex_mpirun.yaml", "multi_cpu_mpirun.yaml", "fsdp1.yaml", "fsdp2.yaml",
        "fsdp2_offload.yaml", "fsdp2_cpu.yaml", "deepspeed_zero1.yaml", "deepspeed_zero2.yaml",
        "deepspeed_zero3.yaml", "legacy_0_x_fp16.yaml"}) {
    SCOPED_TRACE(name);
    const LaunchConfig c = resolve({"p"}, load_config_file(fixture(name)), 2);
    EXPECT_TRUE(c.warnings.empty()) << c.warnings[0];
  }
  // What changes nothing is listed for debug logging.
  const LaunchConfig cpu = resolve({"p"}, load_config_file(fixture("multi_cpu_ipex_mpirun.yaml")));
  std::string notes;
  for (const auto& n : cpu.debug_notes) notes += n + "\n";
  for (const char* key : {"'ipex_config' changes nothing here (IPEX is off)",
                          "'mpirun_config' changes nothing here (one machine: every process runs here)",
                          "'downcast_bf16' changes nothing here (TPU only)", "'tpu_env'", "'same_network'"})
    EXPECT_NE(notes.find(key), std::string::npos) << key << "\n" << notes;
}

TEST(AccelerateFiles, WhatCannotBeHonouredIsOneWarningNamingIt) {
  auto warnings_for = [](const std::string& text) {
    return resolve({"p"},
                   parse_config_text("distributed_type: MULTI_CPU\nnum_processes: 2\n" + text, "c.yaml"))
        .warnings;
  };
  auto one = [&](const std::string& text, const std::string& needle) {
    const auto w = warnings_for(text);
    ASSERT_EQ(w.size(), 1u) << text;
    EXPECT_NE(w[0].find(needle), std::string::npos) << w[0];
  };
  one("ipex_config:\n  ipex: true\n", "ipex_config (ipex: true) is ignored");
  one("dynamo_config:\n  dynamo_backend: INDUCTOR\n", "dynamo_config (dynamo_backend INDUCTOR) is ignored");
  one("num_machines: 2\nmain_process_ip: 10.0.0.1\nmpirun_config:\n  mpirun_hostfile: /h\n  mpirun_ccl: 1\n",
      "mpirun_config (mpirun_hostfile /h) is ignored");
  one("parallelism_config:\n  parallelism_config_tp_size: 2\n  parallelism_config_dp_shard_size: 1\n",
      "parallelism_config (parallelism_config_tp_size 2) is ignored");
  one("tp_config:\n  tp_size: 4\n", "tp_config (tp_size 4) is ignored");
  one("enable_cpu_affinity: true\n", "enable_cpu_affinity");
  EXPECT_TRUE(warnings_for("tp_config:\n  tp_size: 1\nipex_config:\n  use_xpu: false\n").empty());
  // Old releases' legacy dynamo key keeps its meaning: one warning.
  const auto dynamo = resolve({"p"}, load_config_file(fixture("legacy_0_1x_dynamo.yaml"))).warnings;
  ASSERT_EQ(dynamo.size(), 1u);
  EXPECT_NE(dynamo[0].find("dynamo_backend INDUCTOR"), std::string::npos);
}

}  // namespace
}  // namespace accel::launcher
