// `accel launch` argument parsing: both spellings, --flag=value, unknown-flag suggestions, and
// the program's own arguments passed through untouched.
#include <accel/launcher/launch.h>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace accel::launcher {
namespace {

using Args = std::vector<std::string>;

std::string usage_error(const Args& args) {
  try {
    parse_launch_args(args);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(LaunchArgs, BothSpellingsAndEqualsForm) {
  for (const Args& args : {Args{"--num_processes", "4", "prog"}, Args{"--num-processes", "4", "prog"},
                           Args{"--num_processes=4", "prog"}, Args{"--num-processes=4", "prog"}}) {
    const LaunchArgs a = parse_launch_args(args);
    ASSERT_TRUE(a.num_processes.has_value());
    EXPECT_EQ(*a.num_processes, 4);
    EXPECT_EQ(a.program, "prog");
    EXPECT_TRUE(a.program_args.empty());
    EXPECT_EQ(a.given, (std::set<std::string>{"num_processes"}));
  }
}

TEST(LaunchArgs, AllFlags) {
  const LaunchArgs a = parse_launch_args({"--num_processes",
                                          "4",
                                          "--num_machines",
                                          "2",
                                          "--machine_rank=1",
                                          "--main_process_ip",
                                          "10.0.0.1",
                                          "--main-process-port",
                                          "1234",
                                          "--mixed_precision",
                                          "bf16",
                                          "--gradient_accumulation_steps",
                                          "3",
                                          "--cpu",
                                          "--gpu_ids",
                                          "0,1",
                                          "--config_file",
                                          "c.yaml",
                                          "--max_restarts",
                                          "2",
                                          "--monitor_interval",
                                          "0.5",
                                          "--num_cpu_threads_per_process",
                                          "7",
                                          "--debug",
                                          "-q",
                                          "--log_dir",
                                          "logs",
                                          "--tee",
                                          "--grace_period",
                                          "1.5",
                                          "./train",
                                          "x"});
  EXPECT_EQ(a.num_processes, 4);
  EXPECT_EQ(a.num_machines, 2);
  EXPECT_EQ(a.machine_rank, 1);
  EXPECT_EQ(a.main_process_ip, "10.0.0.1");
  EXPECT_EQ(a.main_process_port, 1234);
  EXPECT_EQ(a.mixed_precision, "bf16");
  EXPECT_EQ(a.gradient_accumulation_steps, 3);
  EXPECT_EQ(a.cpu, true);
  EXPECT_EQ(a.gpu_ids, "0,1");
  EXPECT_EQ(a.config_file, "c.yaml");
  EXPECT_EQ(a.max_restarts, 2);
  EXPECT_DOUBLE_EQ(*a.monitor_interval, 0.5);
  EXPECT_EQ(a.num_cpu_threads_per_process, 7);
  EXPECT_EQ(a.debug, true);
  EXPECT_TRUE(a.quiet);
  EXPECT_EQ(a.log_dir, "logs");
  EXPECT_TRUE(a.tee);
  EXPECT_DOUBLE_EQ(*a.grace_period, 1.5);
  EXPECT_EQ(a.program, "./train");
  EXPECT_EQ(a.program_args, (Args{"x"}));
  EXPECT_EQ(a.given.size(), 18u);
  EXPECT_TRUE(a.given.count("main_process_port"));
  EXPECT_TRUE(a.given.count("quiet"));
  EXPECT_FALSE(a.given.count("help"));
}

TEST(LaunchArgs, NotGivenStaysUnset) {
  const LaunchArgs a = parse_launch_args({"prog"});
  EXPECT_FALSE(a.num_processes);
  EXPECT_FALSE(a.mixed_precision);
  EXPECT_FALSE(a.cpu);
  EXPECT_FALSE(a.debug);
  EXPECT_TRUE(a.given.empty());
}

TEST(LaunchArgs, ProgramArgumentsUntouched) {
  const LaunchArgs a = parse_launch_args(
      {"--cpu", "./train", "--num_processes", "9", "--bogus", "-q", "--", "a b", "--cpu=x"});
  EXPECT_EQ(a.program, "./train");
  EXPECT_EQ(a.program_args, (Args{"--num_processes", "9", "--bogus", "-q", "--", "a b", "--cpu=x"}));
  EXPECT_FALSE(a.num_processes);
  EXPECT_FALSE(a.quiet);
}

TEST(LaunchArgs, DoubleDashEndsFlags) {
  const LaunchArgs a = parse_launch_args({"--cpu", "--", "--weird-program-name", "--x"});
  EXPECT_EQ(a.program, "--weird-program-name");
  EXPECT_EQ(a.program_args, (Args{"--x"}));
}

TEST(LaunchArgs, BoolFlagsTakeEqualsValue) {
  EXPECT_EQ(parse_launch_args({"--cpu=false", "p"}).cpu, false);
  EXPECT_EQ(parse_launch_args({"--cpu=true", "p"}).cpu, true);
  EXPECT_EQ(parse_launch_args({"--debug=1", "p"}).debug, true);
  // A bare boolean flag never swallows the next token.
  const LaunchArgs a = parse_launch_args({"--cpu", "false"});
  EXPECT_EQ(a.cpu, true);
  EXPECT_EQ(a.program, "false");
  EXPECT_NE(usage_error({"--cpu=maybe", "p"}).find("expects true or false"), std::string::npos);
}

TEST(LaunchArgs, TeeTakesTorchrunSelectors) {
  const LaunchArgs a = parse_launch_args({"--tee", "3", "prog", "1"});
  EXPECT_TRUE(a.tee);
  EXPECT_EQ(a.program, "prog");
  EXPECT_FALSE(parse_launch_args({"--tee=0", "prog"}).tee);
  EXPECT_TRUE(parse_launch_args({"-t", "0:3,1:1", "prog"}).tee);
  EXPECT_EQ(parse_launch_args({"--tee", "./prog"}).program, "./prog");
}

TEST(LaunchArgs, UnknownFlagNamesItAndTheClosest) {
  const std::string e = usage_error({"--num_proceses", "2", "prog"});
  EXPECT_NE(e.find("unknown flag '--num_proceses'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean '--num_processes'"), std::string::npos) << e;
  const std::string e2 = usage_error({"--mixed-precison=bf16", "prog"});
  EXPECT_NE(e2.find("'--mixed-precison=bf16'"), std::string::npos) << e2;
  EXPECT_NE(e2.find("--mixed_precision"), std::string::npos) << e2;
  EXPECT_NE(usage_error({"-x", "prog"}).find("unknown flag '-x'"), std::string::npos);
}

TEST(LaunchArgs, ClosestFlag) {
  EXPECT_EQ(closest_launch_flag("--num_machine"), "--num_machines");
  EXPECT_EQ(closest_launch_flag("--main-process-prt"), "--main_process_port");
  EXPECT_EQ(closest_launch_flag("--gpu-id=3"), "--gpu_ids");
  EXPECT_EQ(closest_launch_flag("--max_restart"), "--max_restarts");
  EXPECT_EQ(closest_launch_flag("--quite"), "--quiet");
}

TEST(LaunchArgs, UnsupportedAccelerateFlags) {
  const std::string e = usage_error({"--use_megatron_lm", "prog"});
  EXPECT_NE(e.find("--use_megatron_lm is an Accelerate launch flag"), std::string::npos) << e;
  EXPECT_NE(usage_error({"--dynamo_backend", "inductor", "prog"}).find("does not support"),
            std::string::npos);
  // FSDP and DeepSpeed flags are accel's too; a misspelt one gets a suggestion.
  EXPECT_NE(
      usage_error({"--fsdp_sharding_stratgy", "1", "prog"}).find("did you mean '--fsdp_sharding_strategy'?"),
      std::string::npos);
  EXPECT_NE(usage_error({"--rdzv_backend", "c10d", "prog"}).find("only does 'static'"), std::string::npos);
  EXPECT_EQ(parse_launch_args({"--rdzv_backend", "static", "--same_network", "p"}).program, "p");
}

TEST(LaunchArgs, ShardingFlagsAsAccelerateSpellsThem) {
  const LaunchArgs a =
      parse_launch_args({"--use_fsdp", "--fsdp-version", "2", "--fsdp_reshard_after_forward=false",
                         "--fsdp_transformer_layer_cls_to_wrap", "BertLayer", "--fsdp_offload_params", "true",
                         "prog", "--zero_stage", "3"});
  EXPECT_TRUE(a.use_fsdp);
  EXPECT_FALSE(a.use_deepspeed);
  const std::map<std::string, std::string> expected = {{"fsdp_version", "2"},
                                                       {"fsdp_reshard_after_forward", "false"},
                                                       {"fsdp_transformer_layer_cls_to_wrap", "BertLayer"},
                                                       {"fsdp_offload_params", "true"}};
  EXPECT_EQ(a.sharding, expected);
  EXPECT_EQ(a.program_args, (std::vector<std::string>{"--zero_stage", "3"}));  // the program's own
  const LaunchArgs d =
      parse_launch_args({"--use_deepspeed", "--zero_stage", "3", "--gradient_clipping", "1.0",
                         "--offload_optimizer_device", "cpu", "--zero3_init_flag", "false", "p"});
  EXPECT_TRUE(d.use_deepspeed);
  EXPECT_EQ(d.sharding.at("zero_stage"), "3");
  EXPECT_EQ(d.sharding.at("zero3_init_flag"), "false");
  EXPECT_NE(usage_error({"--zero_stage"}).find("--zero_stage needs a value"), std::string::npos);
}

TEST(LaunchArgs, BadValues) {
  EXPECT_NE(
      usage_error({"--num_processes", "two", "p"}).find("--num_processes expects an integer, got 'two'"),
      std::string::npos);
  EXPECT_NE(usage_error({"--num_processes=", "p"}).find("expects an integer"), std::string::npos);
  EXPECT_NE(usage_error({"--monitor_interval", "x", "p"}).find("expects a number"), std::string::npos);
  EXPECT_NE(usage_error({"--num_processes"}).find("--num_processes needs a value"), std::string::npos);
  EXPECT_NE(usage_error({"--cpu"}).find("no program given"), std::string::npos);
  EXPECT_NE(usage_error({}).find("no program given"), std::string::npos);
}

TEST(LaunchArgs, Help) {
  EXPECT_TRUE(parse_launch_args({"--help"}).help);
  EXPECT_TRUE(parse_launch_args({"-h"}).help);
  const std::string h = launch_help();
  for (const char* s :
       {"General:", "Hardware:", "Resources:", "Distributed:", "Logging:", "FSDP:", "DeepSpeed:",
        "--use_fsdp", "--fsdp_sharding_strategy V", "--fsdp_offload_params [true|false]", "--use_deepspeed",
        "--zero_stage V", "--num_processes N", "--mixed_precision {no,fp16,bf16}", "-q, --quiet",
        "--max_restarts K", "PROGRAM [ARGS...]"})
    EXPECT_NE(h.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace accel::launcher
