// `accel config`: the questionnaire driven by piped answers and through a real pseudo-terminal,
// `config default`, `config update`, help and usage errors. The expected files are the ones the
// real Accelerate writes for the same answers (tests/fixtures/configs).
#include "accel/launcher/cli.h"
#include "accel/launcher/config_file.h"
#include "accel/launcher/questionnaire.h"

#include "accel/core/error.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace fs = accel::fs;
using accel::launcher::ClusterConfig;
using accel::test::Path;

namespace {

std::string fixture(const std::string& name) {
  return std::string(ACCEL_SOURCE_DIR) + "/tests/fixtures/configs/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TmpDir {
 public:
  TmpDir() {
    std::string tmpl = (Path(fs::temp_directory()) / "accel_cfgcmd_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string lines(const std::vector<std::string>& answers) {
  std::string s;
  for (const auto& a : answers) s += a + "\n";
  return s;
}

// Runs the questionnaire on piped answers; returns the YAML it produces.
std::string answer(const std::vector<std::string>& answers, std::string* transcript = nullptr) {
  std::istringstream in(lines(answers));
  std::ostringstream out;
  ClusterConfig c = accel::launcher::run_config_questionnaire(in, out);
  if (transcript) *transcript = out.str();
  return accel::launcher::config_to_yaml(c);
}

// Calls config_main with `stdin_text` as standard input; captures stdout and stderr.
int run_config(const std::vector<std::string>& args, const std::string& stdin_text, std::string* out,
               std::string* err) {
  std::istringstream in(stdin_text);
  std::streambuf* old = std::cin.rdbuf(in.rdbuf());
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int rc = accel::launcher::config_main(args);
  std::cout.flush();
  *out = testing::internal::GetCapturedStdout();
  *err = testing::internal::GetCapturedStderr();
  std::cin.rdbuf(old);
  std::cin.clear();
  return rc;
}

}  // namespace

TEST(ConfigQuestionnaire, SingleCpuMatchesAccelerate) {
  std::string transcript;
  EXPECT_EQ(answer({"", "0", "yes", "", ""}, &transcript), slurp(fixture("single_cpu.yaml")));
  // Accelerate's questions in Accelerate's order, defaults in brackets, numbered menus.
  EXPECT_NE(transcript.find("In which compute environment are you running?\n  0) This machine\n"
                            "Enter a number or a name [0: This machine]: "),
            std::string::npos)
      << transcript;
  EXPECT_NE(
      transcript.find("Which type of machine are you using?\n  0) No distributed training\n  1) multi-CPU\n"
                      "  2) multi-GPU\n"),
      std::string::npos);
  const size_t cpu = transcript.find("Do you want to run your training on CPU only");
  const size_t mp = transcript.find("Do you wish to use mixed precision?\n  0) no\n  1) fp16\n  2) bf16\n");
  const size_t ga =
      transcript.find("How many gradient accumulation steps you're passing in your script? [1]: ");
  ASSERT_NE(cpu, std::string::npos);
  ASSERT_NE(mp, std::string::npos);
  ASSERT_NE(ga, std::string::npos);
  EXPECT_LT(cpu, mp);
  EXPECT_LT(mp, ga);
  EXPECT_EQ(transcript.find("GPU(s) (by id)"), std::string::npos);  // not asked with CPU only
}

TEST(ConfigQuestionnaire, MultiCpuMultiGpuMultiNodeMatchAccelerate) {
  // Menus take the number or the name (any case); Enter takes the default.
  // Multi-CPU/GPU also ask "DeepSpeed?" and "FullyShardedDataParallel?" (no by default).
  EXPECT_EQ(answer({"", "multi-CPU", "", "", "", "", "4", "bf16", ""}), slurp(fixture("multi_cpu.yaml")));
  EXPECT_EQ(answer({"0", "2", "1", "no", "no", "no", "2", "", "1", ""}), slurp(fixture("multi_gpu.yaml")));
  EXPECT_EQ(answer({"this machine", "MULTI-gpu", "2", "1", "10.0.0.1", "29500", "yes", "", "", "", "16",
                    "all", "BF16", "1"}),
            slurp(fixture("multi_node.yaml")));
}

// FSDP and DeepSpeed: Accelerate's questions in its order; the files are what `accelerate config`
// writes for the same answers (fixtures made by running its questionnaire, generate_fixtures.py).
TEST(ConfigQuestionnaire, FsdpMatchesAccelerate) {
  std::string transcript;
  // multi-GPU, 1 machine, debug no, DeepSpeed no, FSDP yes, version 2 (default), reshard yes, offload
  // no, TRANSFORMER_BASED_WRAP, own classes no, BertLayer, SHARDED_STATE_DICT, efficient loading yes,
  // activation checkpointing no, 2 GPUs, bf16, 1 accumulation step.
  EXPECT_EQ(answer({"", "2", "", "", "", "yes", "", "", "", "", "", "BertLayer", "", "", "", "2", "bf16", ""},
                   &transcript),
            slurp(fixture("fsdp2.yaml")));
  const std::vector<std::string> order = {
      "Do you want to use DeepSpeed? [yes/NO]: ",
      "Do you want to use FullyShardedDataParallel? [yes/NO]: ",
      "What should be your FSDP version? [2]: \n  0) 1\n  1) 2\n",
      "Do you want to enable resharding after forward? [YES/no]: ",
      "Do you want to offload parameters and gradients to CPU? [yes/NO]: ",
      "What should be your auto wrap policy?\n  0) TRANSFORMER_BASED_WRAP\n  1) SIZE_BASED_WRAP\n  2) "
      "NO_WRAP\n",
      "Specify the comma-separated list of transformer layer class names",
      "What should be your FSDP's state dict type?\n  0) SHARDED_STATE_DICT\n  1) FULL_STATE_DICT\n",
      "Do you want to enable CPU RAM efficient model loading",
      "Do you want to enable FSDP activation checkpointing? [yes/NO]: ",
      "How many GPU(s) should be used for distributed training? [1]: ",
      "Do you wish to use mixed precision?"};
  size_t at = 0;
  for (const auto& q : order) {
    const size_t found = transcript.find(q, at);
    ASSERT_NE(found, std::string::npos) << q << "\n" << transcript;
    at = found + q.size();
  }
  EXPECT_EQ(transcript.find("GPU(s) (by id)"), std::string::npos);  // not asked for FSDP (as Accelerate)
  // Version 1 (typed as the name "1"): strategy menu, backward prefetch, forward prefetch, use_orig_params.
  EXPECT_EQ(answer({"", "2", "", "", "",  "yes", "1", "SHARD_GRAD_OP", "", "", "", "BertLayer", "", "2",
                    "", "",  "", "", "2", "2",   ""}),
            slurp(fixture("fsdp1.yaml")));
  // Version 2, reshard no, offload yes, SIZE_BASED_WRAP 2000000, FULL_STATE_DICT, efficient loading no,
  // activation checkpointing yes, 4 GPUs, no mixed precision.
  EXPECT_EQ(
      answer({"", "2", "", "", "", "yes", "2", "no", "yes", "1", "2000000", "1", "no", "yes", "4", "", ""}),
      slurp(fixture("fsdp2_offload.yaml")));
  // On CPUs (Accelerate asks FSDP for GPUs only): the same FSDP2 answers with use_cpu true.
  EXPECT_EQ(answer({"", "1", "", "", "", "yes", "", "", "", "", "", "BertLayer", "", "", "", "2", "bf16", ""},
                   &transcript),
            slurp(fixture("fsdp2_cpu.yaml")));
  EXPECT_NE(transcript.find("How many processes should be used for distributed training? [1]: "),
            std::string::npos);
}

TEST(ConfigQuestionnaire, DeepSpeedMatchesAccelerate) {
  std::string transcript;
  // multi-GPU, 1 machine, debug no, DeepSpeed yes, stage 1, 1 accumulation step, clipping no, 2 GPUs, bf16.
  EXPECT_EQ(answer({"", "2", "", "", "yes", "1", "", "", "2", "bf16"}, &transcript),
            slurp(fixture("deepspeed_zero1.yaml")));
  EXPECT_EQ(transcript.find("FullyShardedDataParallel"), std::string::npos);  // DeepSpeed excludes FSDP
  EXPECT_EQ(transcript.rfind("How many gradient accumulation steps"),
            transcript.find("How many gradient accumulation steps"));  // asked once, among DeepSpeed's
  // Stage 2 (the default), offload the optimizer to cpu, parameters none, clipping yes: "abc" is
  // re-asked, then 1 (written as Python's 1.0).
  EXPECT_EQ(answer({"", "2", "", "", "yes", "", "cpu", "", "", "yes", "abc", "1", "2", "bf16"}, &transcript),
            slurp(fixture("deepspeed_zero2.yaml")));
  EXPECT_NE(transcript.find("Where to offload optimizer states?\n  0) none\n  1) cpu\n"), std::string::npos);
  EXPECT_NE(transcript.find("Please enter a number >= 0, e.g. 1.0."), std::string::npos) << transcript;
  // Stage 3, no offload, 4 accumulation steps, no clipping, 16-bit save yes.
  EXPECT_EQ(answer({"", "2", "", "", "yes", "3", "", "", "4", "", "yes", "2", "bf16"}),
            slurp(fixture("deepspeed_zero3.yaml")));
}

TEST(ConfigQuestionnaire, NoDistributedOnGpuAsksForIds) {
  std::string transcript;
  const std::string yaml = answer({"", "", "", "0,1", "fp16", "4"}, &transcript);
  EXPECT_NE(
      transcript.find("What GPU(s) (by id) should be used for training on this machine as a comma-separated "
                      "list? [all]: "),
      std::string::npos);
  EXPECT_NE(yaml.find("gpu_ids: 0,1\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("use_cpu: false\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("gradient_accumulation_steps: 4\n"), std::string::npos) << yaml;  // accel extension
  EXPECT_NE(yaml.find("mixed_precision: fp16\n"), std::string::npos) << yaml;
}

TEST(ConfigQuestionnaire, MultiNodeOnDifferentNetworksAsksRendezvousBackend) {
  const std::string yaml =
      answer({"", "1", "2", "0", "node0.example", "", "no", "c10d", "no", "", "", "4", "", ""});
  EXPECT_NE(yaml.find("rdzv_backend: c10d\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("same_network: false\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("main_process_port: 29500\n"), std::string::npos) << yaml;  // the default
  EXPECT_NE(yaml.find("main_process_ip: node0.example\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("num_machines: 2\n"), std::string::npos) << yaml;
}

TEST(ConfigQuestionnaire, BadAnswersAreReAsked) {
  std::string transcript;
  const std::string yaml = answer(
      {"", "7", "multi-cpu", "one", "0", "", "maybe", "no", "", "", "two", "-3", "4", "fp32", "2", "0", ""},
      &transcript);
  EXPECT_EQ(yaml, slurp(fixture("multi_cpu.yaml")));
  EXPECT_NE(transcript.find("Please enter a number from 0 to 2 or one of the names above."),
            std::string::npos);
  EXPECT_NE(transcript.find("Please enter yes or no."), std::string::npos);
  // "two" for the number of processes: a message, then the same question again.
  const std::string q = "How many processes should be used for distributed training? [1]: ";
  const size_t first = transcript.find(q);
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(transcript.compare(first + q.size(), 30, "Please enter an integer >= 1.\n"), 0) << transcript;
  EXPECT_NE(transcript.find(q, first + q.size()), std::string::npos);
  EXPECT_NE(transcript.find("Please enter an integer >= 1.\nHow many different machines"), std::string::npos);
}

TEST(ConfigQuestionnaire, MultiGpuOnOneMachineNeedsTwoProcesses) {
  std::string transcript;
  const std::string yaml = answer({"", "2", "", "", "", "", "1", "2", "", "", ""}, &transcript);
  EXPECT_NE(transcript.find("multi-GPU on one machine needs at least 2 GPUs"), std::string::npos);
  EXPECT_NE(yaml.find("num_processes: 2\n"), std::string::npos);
  // Several machines: the total must split evenly.
  answer({"", "2", "2", "0", "h", "", "", "", "", "", "3", "4", "", "", ""}, &transcript);
  EXPECT_NE(transcript.find("must be a multiple of the number of machines (2)"), std::string::npos);
}

TEST(ConfigQuestionnaire, EndOfInputIsAClearError) {
  std::istringstream in("\n1\n");
  std::ostringstream out;
  try {
    accel::launcher::run_config_questionnaire(in, out);
    ADD_FAILURE() << "no error";
  } catch (const accel::InputError& e) {
    const std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find("standard input ended before the questionnaire was complete"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("How many different machines"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  }
  // Through the command: non-zero exit, one clean line, nothing written.
  TmpDir tmp;
  std::string out_text, err_text;
  EXPECT_EQ(run_config({"--config_file", tmp.file("c.yaml")}, "\n", &out_text, &err_text), 1);
  EXPECT_NE(err_text.find("accel config: error: standard input ended"), std::string::npos) << err_text;
  EXPECT_FALSE(fs::exists(tmp.file("c.yaml")));
}

TEST(ConfigCommand, InteractiveWithPipedStdinSavesTheFile) {
  TmpDir tmp;
  const std::string path = tmp.file("sub/dir/cfg.yaml");
  std::string out, err;
  EXPECT_EQ(run_config({"--config-file", path}, lines({"", "multi-CPU", "", "", "", "", "4", "bf16", ""}),
                       &out, &err),
            0)
      << err;
  EXPECT_EQ(slurp(path), slurp(fixture("multi_cpu.yaml")));
  EXPECT_NE(out.find("accel configuration saved at " + path), std::string::npos) << out;
  // A .json name writes Accelerate's JSON layout.
  const std::string json = tmp.file("cfg.json");
  EXPECT_EQ(run_config({"--config_file=" + json}, lines({"", "multi-CPU", "", "", "", "", "2", "bf16", ""}),
                       &out, &err),
            0);
  EXPECT_EQ(slurp(json), slurp(fixture("multi_cpu.json")));
}

// Drives the questionnaire through a real pseudo-terminal (canonical mode, echo, Enter = "\r"),
// waiting for each prompt before typing, as a person would.
TEST(ConfigCommand, InteractiveThroughAPseudoTerminal) {
  TmpDir tmp;
  const std::string path = tmp.file("pty.yaml");
  std::cout.flush();
  std::cerr.flush();
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0)
    GTEST_SKIP() << "this machine offers no pseudo-terminal (forkpty: " << std::strerror(errno) << ")";
  if (pid == 0) {
    std::cin.clear();
    int rc = accel::launcher::config_main({"--config_file", path});
    std::cout.flush();
    std::cerr.flush();
    _exit(rc);
  }
  // (prompt ending to wait for, what to type)
  const std::vector<std::pair<std::string, std::string>> script = {
      {"[0: This machine]: ", ""},
      {"[0: No distributed training]: ", "multi-CPU"},
      {"(use more than 1 for multi-node training)? [1]: ", ""},
      {"will be slower. [yes/NO]: ", "no"},
      {"Do you want to use DeepSpeed? [yes/NO]: ", ""},
      {"Do you want to use FullyShardedDataParallel? [yes/NO]: ", "no"},
      {"should be used for distributed training? [1]: ", "two"},                   // bad answer ...
      {"Please enter an integer >= 1.", ""},                                       // ... explained ...
      {"How many processes should be used for distributed training? [1]: ", "4"},  // ... and asked again
      {"[0: no]: ", "2"},
      {"passing in your script? [1]: ", ""},
      {"accel configuration saved at", ""},
  };
  std::string output;
  size_t pos = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto read_until = [&](const std::string& what) {
    while (output.find(what, pos) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{master, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) return output.find(what, pos) != std::string::npos;  // EIO: the child closed the terminal
      output.append(buf, static_cast<size_t>(n));
    }
    pos = output.find(what, pos) + what.size();
    return true;
  };
  bool ok = true;
  for (size_t i = 0; i < script.size() && ok; ++i) {
    ok = read_until(script[i].first);
    if (!ok) {
      ADD_FAILURE() << "prompt not seen: '" << script[i].first << "'; terminal output so far:\n" << output;
      break;
    }
    if (i + 1 < script.size() && script[i].first != "Please enter an integer >= 1.") {
      const std::string keys = script[i].second + "\r";  // Enter on a terminal sends CR
      ASSERT_EQ(write(master, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
    }
  }
  if (!ok) kill(pid, SIGKILL);
  // Drain until the child exits.
  while (true) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
        pid = -1;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      continue;
    }
    char buf[4096];
    ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  if (pid > 0) {
    int status = 0;
    if (waitpid(pid, &status, 0) == pid) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
    }
  }
  close(master);
  // The terminal echoed what was typed; the saved file is Accelerate's for the same answers.
  EXPECT_NE(output.find("multi-CPU\r\n"), std::string::npos) << output;
  ClusterConfig expected = accel::launcher::load_config_file(fixture("multi_cpu.yaml"));
  expected.mixed_precision = "bf16";
  EXPECT_EQ(slurp(path), accel::launcher::config_to_yaml(expected)) << output;
}

TEST(ConfigCommand, DefaultWritesAccelerateBasicConfig) {
  // Accelerate's write_basic_config on a CPU-only machine (JSON text, as Accelerate writes it).
  EXPECT_EQ(accel::launcher::config_to_json(accel::launcher::basic_config("no", 0)),
            slurp(fixture("default_cpu.yaml")));
  ClusterConfig g1 = accel::launcher::basic_config("bf16", 1);
  EXPECT_EQ(g1.distributed_type, "NO");
  EXPECT_EQ(g1.use_cpu, false);
  EXPECT_EQ(g1.num_processes, 1);
  ClusterConfig g8 = accel::launcher::basic_config("fp16", 8);
  EXPECT_EQ(g8.distributed_type, "MULTI_GPU");
  EXPECT_EQ(g8.num_processes, 8);
  EXPECT_EQ(g8.mixed_precision, "fp16");

  TmpDir tmp;
  const std::string path = tmp.file("d/default.yaml");
  std::string out, err;
  EXPECT_EQ(run_config({"default", "--config_file", path, "--mixed-precision", "bf16"}, "", &out, &err), 0)
      << err;
  EXPECT_EQ(slurp(path), accel::launcher::config_to_yaml(
                             accel::launcher::basic_config("bf16", accel::launcher::cuda_device_count())));
  EXPECT_NE(out.find("accel configuration saved at " + path), std::string::npos);
  // An existing file is not overwritten.
  EXPECT_EQ(run_config({"default", "--config_file", path}, "", &out, &err), 1);
  EXPECT_NE(err.find("configuration already exists at " + path + ", will not override. HINT:"),
            std::string::npos)
      << err;
  EXPECT_EQ(run_config({"default", "--config_file", tmp.file("x.yaml"), "--mixed_precision", "fp64"}, "",
                       &out, &err),
            2);
  EXPECT_NE(err.find("--mixed_precision is 'fp64', expected one of no, fp16, bf16"), std::string::npos)
      << err;
}

TEST(ConfigCommand, UpdateRewritesOldFormats) {
  TmpDir tmp;
  for (const char* name : {"legacy_0_x_fp16", "legacy_0_1x_dynamo", "default_cpu"}) {
    SCOPED_TRACE(name);
    const std::string path = tmp.file(std::string(name) + ".yaml");
    fs::copy_file(fixture(std::string(name) + ".yaml"), path);
    std::string out, err;
    EXPECT_EQ(run_config({"update", "--config_file", path}, "", &out, &err), 0) << err;
    EXPECT_EQ(slurp(path), slurp(fixture(std::string(name) + ".accelerate_updated.yaml")));
    EXPECT_NE(out.find("Successfully updated the configuration file at " + path), std::string::npos);
  }
  std::string out, err;
  EXPECT_EQ(run_config({"update", "--config_file", tmp.file("missing.yaml")}, "", &out, &err), 1);
  EXPECT_NE(err.find("does not exist. HINT"), std::string::npos) << err;
  // A broken file: the load error (file:line:column) is shown, exit 1.
  std::ofstream(tmp.file("bad.yaml")) << "distributed_type: NO\nnum_processes: two\n";
  EXPECT_EQ(run_config({"update", "--config_file", tmp.file("bad.yaml")}, "", &out, &err), 1);
  EXPECT_NE(err.find("bad.yaml:2:16: key 'num_processes' has value 'two'"), std::string::npos) << err;
}

TEST(ConfigCommand, HelpAndUsageErrors) {
  std::string out, err;
  EXPECT_EQ(run_config({"--help"}, "", &out, &err), 0);
  EXPECT_NE(out.find("usage: accel config [--config_file PATH]"), std::string::npos);
  EXPECT_NE(out.find("accel config default"), std::string::npos);
  EXPECT_NE(out.find("accel config update"), std::string::npos);
  EXPECT_EQ(run_config({"default", "-h"}, "", &out, &err), 0);
  EXPECT_NE(out.find("--mixed_precision MODE"), std::string::npos);
  EXPECT_EQ(run_config({"update", "--help"}, "", &out, &err), 0);
  EXPECT_NE(out.find("usage: accel config update"), std::string::npos);

  EXPECT_EQ(run_config({"--config_fle", "x.yaml"}, "", &out, &err), 2);
  EXPECT_NE(err.find("unknown flag '--config_fle'; did you mean '--config_file'?"), std::string::npos) << err;
  EXPECT_EQ(run_config({"default", "--mixed_precison", "bf16"}, "", &out, &err), 2);
  EXPECT_NE(err.find("did you mean '--mixed_precision'?"), std::string::npos) << err;
  EXPECT_EQ(run_config({"update", "--mixed_precision", "bf16"}, "", &out, &err), 2);  // not an update flag
  EXPECT_EQ(run_config({"defualt"}, "", &out, &err), 2);
  EXPECT_NE(err.find("unexpected argument 'defualt'; did you mean 'default'?"), std::string::npos) << err;
  EXPECT_EQ(run_config({"--config_file"}, "", &out, &err), 2);
  EXPECT_NE(err.find("flag --config_file needs a value"), std::string::npos) << err;
}

TEST(ConfigCommand, FlagParser) {
  using accel::launcher::detail::parse_flags;
  auto a = parse_flags({"m", "--dtypes", "fp32", "bf16", "--num-processes=4", "--json", "-h"},
                       {{"--dtypes", -1}, {"--num_processes", 1}, {"--json", 0}}, "t");
  EXPECT_EQ(a.positional, std::vector<std::string>{"m"});
  EXPECT_EQ(a.flags.at("--dtypes"), (std::vector<std::string>{"fp32", "bf16"}));
  EXPECT_EQ(a.get("--num_processes"), "4");
  EXPECT_TRUE(a.has("--json"));
  EXPECT_TRUE(a.help);
  EXPECT_THROW(parse_flags({"--json=1"}, {{"--json", 0}}, "t"), accel::launcher::detail::UsageError);
  auto b =
      parse_flags({"--num_processes", "-1"}, {{"--num_processes", 1}}, "t");  // negative numbers are values
  EXPECT_EQ(b.get("--num_processes"), "-1");
}
