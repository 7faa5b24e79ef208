// Environment parsing and option resolution (tier 1: fake environments, no processes).
#include "accel/core/env.h"
#include "accel/core/error.h"
#include "accel/core/logging.h"
#include "accel/core/options.h"
#include "accel/core/state.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

using namespace accel;

namespace {

// Runs `fn`, expects an accel::Error whose message contains every needle.
template <typename F>
void expect_error(F&& fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    FAIL() << "expected an accel::Error";
  } catch (const accel::Error& e) {
    std::string msg = e.what_without_backtrace();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

}  // namespace

TEST(ProcessEnv, DefaultsToSingleProcess) {
  ProcessEnv e = read_process_env({});
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_FALSE(e.launched);
  EXPECT_EQ(e.master_addr, "127.0.0.1");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_FALSE(e.mixed_precision.has_value());
}

TEST(ProcessEnv, ReadsTorchrunVariablesForEveryRankOfTwoMachines) {
  for (int node = 0; node < 2; ++node) {
    for (int local = 0; local < 2; ++local) {
      const int rank = node * 2 + local;
      ProcessEnv e = read_process_env({{"RANK", std::to_string(rank)},
                                       {"LOCAL_RANK", std::to_string(local)},
                                       {"WORLD_SIZE", "4"},
                                       {"LOCAL_WORLD_SIZE", "2"},
                                       {"GROUP_RANK", std::to_string(node)},
                                       {"MASTER_ADDR", "10.1.2.3"},
                                       {"MASTER_PORT", "29555"}});
      EXPECT_EQ(e.rank, rank);
      EXPECT_EQ(e.local_rank, local);
      EXPECT_EQ(e.world_size, 4);
      EXPECT_EQ(e.local_world_size, 2);
      EXPECT_EQ(e.node_rank, node);
      EXPECT_EQ(e.num_nodes, 2);
      EXPECT_EQ(e.master_addr, "10.1.2.3");
      EXPECT_EQ(e.master_port, 29555);
      EXPECT_TRUE(e.launched);
    }
  }
}

TEST(ProcessEnv, ReadsMpiAndSlurmNames) {
  ProcessEnv e = read_process_env({{"OMPI_COMM_WORLD_RANK", "1"},
                                   {"OMPI_COMM_WORLD_SIZE", "2"},
                                   {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                   {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 2);
  EXPECT_EQ(e.local_rank, 1);
  ProcessEnv s = read_process_env({{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}});
  EXPECT_EQ(s.rank, 3);
  EXPECT_EQ(s.world_size, 4);
}

TEST(ProcessEnv, ReadsAccelerateSettings) {
  ProcessEnv e = read_process_env({{"ACCELERATE_MIXED_PRECISION", "BF16"},
                                   {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4"},
                                   {"ACCELERATE_USE_CPU", "yes"},
                                   {"ACCEL_TIMEOUT", "2.5"},
                                   {"ACCEL_HEARTBEAT_S", "0.25"}});
  EXPECT_EQ(*e.mixed_precision, "bf16");
  EXPECT_EQ(*e.gradient_accumulation_steps, 4);
  EXPECT_TRUE(*e.use_cpu);
  EXPECT_DOUBLE_EQ(*e.collective_timeout_s, 2.5);
  EXPECT_DOUBLE_EQ(*e.heartbeat_s, 0.25);
  EXPECT_DOUBLE_EQ(resolve_options(AcceleratorOptions(), e).heartbeat_s, 0.25);
  EXPECT_DOUBLE_EQ(resolve_options(AcceleratorOptions(), read_process_env({})).heartbeat_s, 1.0);
  AcceleratorOptions off;
  off.process_group().heartbeat_s(0.0);
  EXPECT_DOUBLE_EQ(resolve_options(off, e).heartbeat_s, 0.0);
}

TEST(ProcessEnv, MalformedValuesNameTheVariableAndValue) {
  expect_error([] { read_process_env({{"ACCEL_HEARTBEAT_S", "-1"}}); }, {"ACCEL_HEARTBEAT_S", "-1"});
  expect_error([] { read_process_env({{"ACCEL_HEARTBEAT_S", "often"}}); }, {"ACCEL_HEARTBEAT_S", "often"});
  expect_error([] { read_process_env({{"RANK", "abc"}, {"WORLD_SIZE", "2"}}); }, {"RANK", "abc"});
  expect_error([] { read_process_env({{"RANK", "2"}, {"WORLD_SIZE", "2"}}); }, {"rank 2", "world size 2"});
  expect_error(
      [] {
        read_process_env({{"ACCELERATE_MIXED_PRECISION", "fp8x"}});
      },
      {"fp8x", "no, fp16, bf16"});
  expect_error(
      [] {
        read_process_env({{"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "0"}});
      },
      {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", ">= 1"});
  expect_error([] { read_process_env({{"ACCELERATE_USE_CPU", "maybe"}}); }, {"ACCELERATE_USE_CPU", "maybe"});
  expect_error([] { read_process_env({{"MASTER_PORT", "70000"}}); }, {"MASTER_PORT", "70000"});
  expect_error(
      [] {
        read_process_env({{"WORLD_SIZE", "3"}, {"LOCAL_WORLD_SIZE", "2"}});
      },
      {"WORLD_SIZE=3", "LOCAL_WORLD_SIZE=2"});
}

TEST(Options, MixedPrecisionRejectsUnknownValueListingAccepted) {
  expect_error([] { resolve_options(AcceleratorOptions().mixed_precision("fp8x"), ProcessEnv{}); },
               {"fp8x", "no, fp16, bf16"});
}

TEST(Options, AccumulationZeroIsRejected) {
  expect_error([] { resolve_options(AcceleratorOptions().gradient_accumulation_steps(0), ProcessEnv{}); },
               {"gradient_accumulation_steps=0", ">= 1"});
}

TEST(Options, ExplicitBeatsEnvironmentBeatsDefault) {
  ProcessEnv env = read_process_env({{"ACCELERATE_MIXED_PRECISION", "fp16"},
                                     {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "3"},
                                     {"ACCELERATE_USE_CPU", "1"}});
  ResolvedOptions from_env = resolve_options(AcceleratorOptions(), env);
  EXPECT_EQ(from_env.mixed_precision, MixedPrecision::kFP16);
  EXPECT_EQ(from_env.gradient_accumulation_steps, 3);
  EXPECT_TRUE(from_env.cpu);
  ResolvedOptions explicit_ = resolve_options(
      AcceleratorOptions().mixed_precision("bf16").gradient_accumulation_steps(2).cpu(false), env);
  EXPECT_EQ(explicit_.mixed_precision, MixedPrecision::kBF16);
  EXPECT_EQ(explicit_.gradient_accumulation_steps, 2);
  EXPECT_FALSE(explicit_.cpu);
  ResolvedOptions defaults = resolve_options(AcceleratorOptions(), ProcessEnv{});
  EXPECT_EQ(defaults.mixed_precision, MixedPrecision::kNo);
  EXPECT_EQ(defaults.gradient_accumulation_steps, 1);
  EXPECT_FALSE(defaults.cpu);
  EXPECT_DOUBLE_EQ(defaults.timeout_s, 300.0);
}

TEST(Options, ScalerAndDdpValidation) {
  expect_error(
      [] {
        resolve_options(AcceleratorOptions().scaler(GradScalerOptions().backoff_factor(1.5)), ProcessEnv{});
      },
      {"backoff_factor", "(0, 1)"});
  expect_error(
      [] { resolve_options(AcceleratorOptions().ddp(DDPOptions().comm_hook("int8")), ProcessEnv{}); },
      {"int8", "none, fp16, bf16"});
  expect_error(
      [] {
        resolve_options(AcceleratorOptions().process_group(ProcessGroupOptions().backend("mpi")),
                        ProcessEnv{});
      },
      {"mpi", "auto, gloo, nccl"});
}

TEST(ProcessState, ChoosesDevices) {
  ProcessEnv env = read_process_env({{"RANK", "3"}, {"LOCAL_RANK", "3"}, {"WORLD_SIZE", "4"}});
  EXPECT_TRUE(make_process_state(env, /*cpu=*/false, /*cuda_device_count=*/0).device.is_cpu());
  ProcessState gpu = make_process_state(env, false, 2);
  EXPECT_TRUE(gpu.device.is_cuda());
  EXPECT_EQ(gpu.device.index(), 1);  // local rank 3 mod 2 devices
  EXPECT_TRUE(make_process_state(env, /*cpu=*/true, 2).device.is_cpu());
  ProcessEnv forced = read_process_env({{"ACCELERATE_TORCH_DEVICE", "cpu"}});
  EXPECT_TRUE(make_process_state(forced, false, 2).device.is_cpu());
}

TEST(Logging, PrefixesRankAndFiltersByScope) {
  std::FILE* f = std::tmpfile();
  Logger& log = Logger::instance();
  log.set_stream(f);
  log.set_level(LogLevel::kInfo);
  log.set_rank(1, 2, 1);
  log.info("hidden on rank 1");
  log.log(LogLevel::kInfo, LogScope::kAllRanks, "all ranks\nsecond line");
  log.debug("below level");
  log.set_rank(0, 2, 0);
  log.warning("careful");
  std::fflush(f);
  std::rewind(f);
  char buf[1024] = {0};
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::string out(buf, n);
  log.set_stream(stderr);
  log.set_rank(0, 1, 0);
  std::fclose(f);
  EXPECT_EQ(out, "[rank 1/2] all ranks\n[rank 1/2] second line\n[rank 0/2] WARNING: careful\n");
}

TEST(Logging, ParsesLevels) {
  EXPECT_EQ(parse_log_level("DEBUG"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::kWarning);
  expect_error([] { parse_log_level("loud"); }, {"loud", "debug, info, warning, error"});
}
