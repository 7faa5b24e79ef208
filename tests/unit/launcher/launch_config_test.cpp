// `accel launch` settings: command line > config file > default, and validation messages. The
// config is built in the test (no file loader needed).
#include <accel/launcher/launch.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace accel::launcher {
namespace {

using Args = std::vector<std::string>;

LaunchConfig resolve(const Args& args, const std::optional<ClusterConfig>& file = std::nullopt,
                     int gpus = 0) {
  return resolve_launch_config(parse_launch_args(args), file, gpus);
}

std::string resolve_error(const Args& args, const std::optional<ClusterConfig>& file = std::nullopt,
                          int gpus = 0) {
  try {
    resolve(args, file, gpus);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(LaunchConfig, Defaults) {
  const LaunchConfig c = resolve({"prog", "a"});
  EXPECT_EQ(c.num_processes, 1);
  EXPECT_EQ(c.num_machines, 1);
  EXPECT_EQ(c.machine_rank, 0);
  EXPECT_EQ(c.main_process_port, 29500);
  EXPECT_EQ(c.mixed_precision, "no");
  EXPECT_EQ(c.gradient_accumulation_steps, 1);
  EXPECT_FALSE(c.use_cpu);
  EXPECT_EQ(c.gpu_ids, "all");
  EXPECT_EQ(c.max_restarts, 0);
  EXPECT_DOUBLE_EQ(c.monitor_interval, 0.1);
  EXPECT_DOUBLE_EQ(c.grace_period, 5.0);
  EXPECT_FALSE(c.num_cpu_threads_per_process);
  EXPECT_EQ(c.log_dir, "");
  EXPECT_EQ(c.program, "prog");
  EXPECT_EQ(c.program_args, (Args{"a"}));
  EXPECT_TRUE(c.warnings.empty());
}

TEST(LaunchConfig, DefaultProcessesFollowGpus) {
  EXPECT_EQ(resolve({"p"}, std::nullopt, 4).num_processes, 4);
  EXPECT_EQ(resolve({"--cpu", "p"}, std::nullopt, 4).num_processes, 1);
  EXPECT_EQ(resolve({"--gpu_ids", "1,3", "p"}, std::nullopt, 4).num_processes, 2);
}

TEST(LaunchConfig, FileFillsWhatTheCommandLineLeavesOut) {
  ClusterConfig f;
  f.num_processes = 4;
  f.num_machines = 2;
  f.machine_rank = 1;
  f.main_process_ip = "10.1.2.3";
  f.main_process_port = 6000;
  f.mixed_precision = "fp16";
  f.gradient_accumulation_steps = 8;
  f.use_cpu = true;
  f.debug = true;
  f.gpu_ids = "0,1";
  const LaunchConfig c = resolve({"p"}, f);
  EXPECT_EQ(c.num_processes, 4);
  EXPECT_EQ(c.num_machines, 2);
  EXPECT_EQ(c.machine_rank, 1);
  EXPECT_EQ(c.main_process_ip, "10.1.2.3");
  EXPECT_EQ(c.main_process_port, 6000);
  EXPECT_EQ(c.mixed_precision, "fp16");
  EXPECT_EQ(c.gradient_accumulation_steps, 8);
  EXPECT_TRUE(c.use_cpu);
  EXPECT_TRUE(c.debug);
  EXPECT_EQ(c.gpu_ids, "0,1");
  EXPECT_EQ(c.local_world_size(), 2);
  EXPECT_TRUE(c.given.empty());
}

TEST(LaunchConfig, CommandLineWinsOverFile) {
  ClusterConfig f;
  f.num_processes = 4;
  f.mixed_precision = "fp16";
  f.use_cpu = true;
  f.debug = true;
  f.main_process_port = 6000;
  f.gradient_accumulation_steps = 8;
  const LaunchConfig c =
      resolve({"--num_processes", "2", "--mixed_precision=bf16", "--cpu=false", "--debug=false",
               "--main_process_port", "7000", "--gradient_accumulation_steps", "2", "p"},
              f);
  EXPECT_EQ(c.num_processes, 2);
  EXPECT_EQ(c.mixed_precision, "bf16");
  EXPECT_FALSE(c.use_cpu);
  EXPECT_FALSE(c.debug);
  EXPECT_EQ(c.main_process_port, 7000);
  EXPECT_EQ(c.gradient_accumulation_steps, 2);
  EXPECT_EQ(c.given, (std::set<std::string>{"num_processes", "mixed_precision", "cpu", "debug",
                                            "main_process_port", "gradient_accumulation_steps"}));
}

TEST(LaunchConfig, FileNumProcessesMinusOneNeedsTheFlag) {
  ClusterConfig f;
  f.num_processes = -1;
  EXPECT_NE(resolve_error({"p"}, f).find("--num_processes"), std::string::npos);
  EXPECT_EQ(resolve({"--num_processes", "3", "p"}, f).num_processes, 3);
}

TEST(LaunchConfig, MixedPrecisionValidated) {
  EXPECT_EQ(resolve({"--mixed_precision", "BF16", "p"}).mixed_precision, "bf16");
  const std::string fp8 = resolve_error({"--mixed_precision", "fp8", "p"});
  EXPECT_NE(fp8.find("fp8 is not supported"), std::string::npos) << fp8;
  ClusterConfig f;
  f.mixed_precision = "fp8";
  EXPECT_NE(resolve_error({"p"}, f).find("not supported"), std::string::npos);
  const std::string bad = resolve_error({"--mixed_precision", "fp32", "p"});
  EXPECT_NE(bad.find("'fp32' is not valid; accepted: no, fp16, bf16"), std::string::npos) << bad;
}

TEST(LaunchConfig, Validation) {
  EXPECT_NE(resolve_error({"--num_processes", "0", "p"}).find("at least 1"), std::string::npos);
  EXPECT_NE(resolve_error({"--num_processes", "3", "--num_machines", "2", "--main_process_ip", "h", "p"})
                .find("not a multiple of num_machines 2"),
            std::string::npos);
  EXPECT_NE(resolve_error({"--num_processes", "4", "--num_machines", "2", "p"})
                .find("--main_process_ip is required"),
            std::string::npos);
  EXPECT_NE(resolve_error({"--num_processes", "4", "--num_machines", "2", "--machine_rank", "2",
                           "--main_process_ip", "h", "p"})
                .find("machine_rank 2 is not in 0..1"),
            std::string::npos);
  EXPECT_NE(resolve_error({"--main_process_port", "70000", "p"}).find("not in 0..65535"), std::string::npos);
  EXPECT_NE(resolve_error({"--gradient_accumulation_steps", "0", "p"}).find("at least 1"), std::string::npos);
  EXPECT_NE(resolve_error({"--gpu_ids", "0;1", "p"}).find("gpu_ids '0;1' is not valid"), std::string::npos);
  EXPECT_NE(resolve_error({"--max_restarts", "-1", "p"}).find("0 or more"), std::string::npos);
  EXPECT_NE(resolve_error({"--monitor_interval", "0", "p"}).find("--monitor_interval"), std::string::npos);
  EXPECT_NE(resolve_error({"--multi_gpu", "p"}).find("at least 2 processes"), std::string::npos);
  EXPECT_NE(
      resolve_error({"--multi_gpu", "--cpu", "--num_processes", "2", "p"}).find("cannot be used together"),
      std::string::npos);
}

TEST(LaunchConfig, UnsupportedFileSettingsWarn) {
  ClusterConfig f;
  f.distributed_type = "MEGATRON_LM";
  f.compute_environment = "AMAZON_SAGEMAKER";
  f.passthrough["megatron_lm_config"] = "megatron_lm_tp_degree: 2\n";
  const LaunchConfig c = resolve({"p"}, f);
  ASSERT_EQ(c.warnings.size(), 2u);
  EXPECT_NE(c.warnings[0].find("distributed_type MEGATRON_LM in the config file is not supported"),
            std::string::npos);
  EXPECT_NE(c.warnings[1].find("compute_environment AMAZON_SAGEMAKER is ignored"), std::string::npos);
  // An FSDP file is sharded data parallel now: no warning.
  ClusterConfig fsdp;
  fsdp.distributed_type = "FSDP";
  fsdp.passthrough["fsdp_config"] = "fsdp_version: 2\n";
  EXPECT_TRUE(resolve({"p"}, fsdp).warnings.empty());
}

TEST(LaunchConfig, MultiCpuImpliesCpu) {
  ClusterConfig f;
  f.distributed_type = "MULTI_CPU";
  f.num_processes = 2;
  EXPECT_TRUE(resolve({"p"}, f).use_cpu);
  EXPECT_FALSE(resolve({"--cpu=false", "p"}, f).use_cpu);
}

TEST(LaunchConfig, TeeWithoutLogDirUsesDefault) {
  EXPECT_EQ(resolve({"--tee", "p"}).log_dir, "accel_logs");
  EXPECT_EQ(resolve({"--tee", "--log_dir", "d", "p"}).log_dir, "d");
  EXPECT_EQ(resolve({"--log_dir", "d", "p"}).log_dir, "d");
}

TEST(LaunchConfig, FindProgram) {
  EXPECT_EQ(find_program("./x", "/nonexistent"), "./x");
  EXPECT_EQ(find_program("sh", "/nonexistent:/bin:/usr/bin"), "/bin/sh");
  EXPECT_EQ(find_program("no-such-program-accel", "/bin:/usr/bin"), "");
  EXPECT_EQ(find_check_program("/nonexistent", "/nonexistent"), "");
}

}  // namespace
}  // namespace accel::launcher
