// `accel env`: the bug-report block has every section, shows the config in use, and rejects
// unknown flags with the closest valid one.
#include "accel/launcher/cli.h"
#include "accel/launcher/questionnaire.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

namespace {

std::string fixture(const std::string& name) {
  return std::string(ACCEL_SOURCE_DIR) + "/tests/fixtures/configs/" + name;
}

int run_env(const std::vector<std::string>& args, std::string* out, std::string* err) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int rc = accel::launcher::env_main(args);
  *out = testing::internal::GetCapturedStdout();
  *err = testing::internal::GetCapturedStderr();
  return rc;
}

}  // namespace

TEST(EnvCommand, ReportHasEverySection) {
  std::string out, err;
  ASSERT_EQ(run_env({"--config_file", fixture("multi_node.yaml")}, &out, &err), 0) << err;
  for (const char* section :
       {"Copy-and-paste the text below in your GitHub issue", "- `accel` version: ", "- Build: LibTorch ",
        "CUDA backend (NCCL) compiled: ", "Gloo (CPU collectives) compiled: ", "- Compiler: ",
        "- C++ standard: C++20", "- Platform: Linux-", "- CPU: ", "logical CPUs online", "- System RAM: ",
        " GiB total, ", "- CUDA available: ", "- GPU type: ", "- Distributed backends: gloo ",
        "- `accel` config file: ", "- `accel` config:\n"}) {
    EXPECT_NE(out.find(section), std::string::npos) << "missing '" << section << "' in:\n" << out;
  }
  EXPECT_NE(out.find("- `accel` version: " + accel::launcher::version() + "\n"), std::string::npos);
  EXPECT_NE(out.find(fixture("multi_node.yaml")), std::string::npos);
  // The config's contents, one indented item per line.
  EXPECT_NE(out.find("\t- distributed_type: MULTI_GPU\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\t- main_process_ip: 10.0.0.1\n"), std::string::npos) << out;
}

TEST(EnvCommand, ReportShowsTheShardedPath) {
  std::string out, err;
  ASSERT_EQ(run_env({"--config_file", fixture("fsdp2_cpu.yaml")}, &out, &err), 0) << err;
  for (const char* line :
       {"- Sharded data parallel: FSDP, fsdp_version 2, strategy FULL_SHARD (ZeRO-3: parameters, gradients "
        "and "
        "optimizer states sharded)\n",
        "\t- fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP (config file)\n",
        "\t- fsdp_transformer_layer_cls_to_wrap: BertLayer (config file)\n",
        "\t- fsdp_offload_params: false (config file)\n",
        "\t- fsdp_state_dict_type: SHARDED_STATE_DICT (config file)\n",
        "\t- fsdp_use_orig_params: true (default)\n", " FSDP_TRANSFORMER_CLS_TO_WRAP=BertLayer "}) {
    EXPECT_NE(out.find(line), std::string::npos) << "missing '" << line << "' in:\n" << out;
  }
  // A CPU config runs over Gloo, when this build has it.
  const bool gloo = out.find("Gloo (CPU collectives) compiled: yes") != std::string::npos;
  EXPECT_NE(out.find(gloo ? "- Sharded data parallel runs here: yes, CPU processes over Gloo\n"
                          : "- Sharded data parallel runs here: no: Gloo is not built\n"),
            std::string::npos)
      << out;
  ASSERT_EQ(run_env({"--config_file", fixture("deepspeed_zero2.yaml")}, &out, &err), 0) << err;
  EXPECT_NE(out.find("- Sharded data parallel: DeepSpeed ZeRO, strategy SHARD_GRAD_OP"), std::string::npos)
      << out;
  EXPECT_NE(
      out.find("\t- honoured: zero_stage=2, gradient_accumulation_steps=1, offload_optimizer_device=cpu, "
               "gradient_clipping=1.0\n"),
      std::string::npos)
      << out;
  ASSERT_EQ(run_env({"--config_file", fixture("multi_cpu.yaml")}, &out, &err), 0) << err;
  EXPECT_NE(
      out.find("- Sharded data parallel: no (distributed_type MULTI_CPU; --use_fsdp or --use_deepspeed at "
               "launch turns it on)\n"),
      std::string::npos)
      << out;
}

TEST(EnvCommand, ReportWithoutConfigAndWithABrokenOne) {
  std::ostringstream os;
  const char* old = std::getenv("ACCEL_CONFIG_FILE");
  std::string saved = old ? old : "";
  std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
  std::string hf = std::getenv("HF_HOME") ? std::getenv("HF_HOME") : "";
  setenv("ACCEL_CONFIG_FILE", "/nonexistent/accel/cfg.yaml", 1);
  setenv("HF_HOME", "/nonexistent/hf", 1);
  accel::launcher::write_env_report(os, "");
  EXPECT_NE(os.str().find("- `accel` config: not found (looked at /nonexistent/accel/cfg.yaml and "
                          "/nonexistent/hf/accelerate/default_config.yaml)"),
            std::string::npos)
      << os.str();
  if (old) {
    setenv("ACCEL_CONFIG_FILE", saved.c_str(), 1);
  } else {
    unsetenv("ACCEL_CONFIG_FILE");
  }
  if (!hf.empty()) {
    setenv("HF_HOME", hf.c_str(), 1);
  } else {
    unsetenv("HF_HOME");
  }
  std::ostringstream bad;
  accel::launcher::write_env_report(bad, fixture("invalid_keys.yaml"));
  EXPECT_NE(bad.str().find("cannot be loaded: "), std::string::npos) << bad.str();
  EXPECT_NE(bad.str().find("unknown key 'invalid_key'"), std::string::npos) << bad.str();
}

TEST(EnvCommand, HelpAndUsageErrors) {
  std::string out, err;
  EXPECT_EQ(run_env({"--help"}, &out, &err), 0);
  EXPECT_NE(out.find("usage: accel env [--config_file PATH]"), std::string::npos) << out;
  EXPECT_EQ(run_env({"--config"}, &out, &err), 2);
  EXPECT_NE(err.find("accel env: error: unknown flag '--config'; did you mean '--config_file'?"),
            std::string::npos)
      << err;
  EXPECT_EQ(run_env({"extra"}, &out, &err), 2);
  EXPECT_EQ(run_env({"--config_file", "/nonexistent.yaml"}, &out, &err), 1);
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
}

TEST(EnvCommand, CudaDeviceCountIsNonNegative) {
  EXPECT_GE(accel::launcher::cuda_device_count(), 0);
}
