// `accel launch` on real processes: the launch library (run_workers) and the launcher as its own
// process (launch_driver = launch_main), running launch_worker. Checks exit codes, the failure
// report, that no worker is left behind (pids checked in /proc), signal forwarding, rank
// prefixes, the workers' environment, restarts, log files and descriptor hygiene.
// Timings are printed for the notes, never asserted.
#include <accel/launcher/cli.h>
#include <accel/launcher/launch.h>
#include <accel/launcher/process.h>

#include "support/temp_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace accel::launcher {
namespace {

namespace fs = accel::fs;
using accel::test::Path;
using Args = std::vector<std::string>;
using Clock = std::chrono::steady_clock;

const std::string kWorker = ACCEL_LAUNCH_WORKER;
const std::string kDriver = ACCEL_LAUNCH_DRIVER;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct TempDir {
  Path path;
  TempDir() {
    std::string tmpl = (Path(fs::temp_directory()) / "accel_launch_XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str(const std::string& name = "") const { return (path / name).string(); }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string l; std::getline(ss, l);) out.push_back(l);
  return out;
}

// A process is gone when /proc has no entry for it, or only a zombie no one of ours will reap
// (an orphan whose reaper is slow).
bool process_gone(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string all;
  std::getline(stat, all);
  const size_t close = all.rfind(')');
  return close != std::string::npos && close + 2 < all.size() && all[close + 2] == 'Z';
}

// True when a live (non-zombie) process is in one of the process groups `pgids`.
bool group_has_live_member(const std::vector<int>& pgids) {
  std::error_code ec;
  for (const auto& entry : fs::list_dir("/proc", ec)) {
    const std::string& name = entry.name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(fs::join("/proc", name, "stat"));
    std::string all;
    if (!std::getline(stat, all)) continue;
    const size_t close = all.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(all.substr(close + 2));
    char state = 0;
    int ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (state == 'Z') continue;
    for (int g : pgids)
      if (pgrp == g) return true;
  }
  return false;
}

bool wait_gone(const std::vector<int>& pids, double timeout_s) {
  const auto t0 = Clock::now();
  while (true) {
    bool all = true;
    for (int p : pids) all = all && process_gone(p);
    if (all) return true;
    if (seconds_since(t0) > timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The pids the workers wrote with --pid_dir, once `n` are there.
std::vector<int> wait_pid_files(const std::string& dir, int n, double timeout_s = 30) {
  const auto t0 = Clock::now();
  while (seconds_since(t0) < timeout_s) {
    std::vector<int> pids;
    for (int r = 0; r < n; ++r) {
      std::ifstream in(dir + "/rank" + std::to_string(r) + ".pid");
      int pid = 0;
      if (in >> pid) pids.push_back(pid);
    }
    if (static_cast<int>(pids.size()) == n) return pids;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

// No child of this test process is left, zombie or alive.
void expect_no_children() {
  int status = 0;
  errno = 0;
  EXPECT_EQ(::waitpid(-1, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

// The launcher's controlled environment: PATH only, plus what the test adds.
std::map<std::string, std::string> base_env() {
  const char* path = std::getenv("PATH");
  return {{"PATH", path ? path : "/usr/bin:/bin"}};
}

struct Outcome {
  LaunchResult result;
  LaunchConfig config;
  std::string out, err;
  double seconds = 0;
};

// parse -> resolve (no config file) -> choose_port -> run_workers, output captured in files.
Outcome run_launch(const Args& args, RunOptions options = {}) {
  Outcome r;
  r.config = resolve_launch_config(parse_launch_args(args), std::nullopt, 0);
  r.config.main_process_port = choose_port(r.config).port;
  TempDir tmp;
  const int out = ::open(tmp.str("out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err = ::open(tmp.str("err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  options.out_fd = out;
  options.err_fd = err;
  if (!options.parent_env) options.parent_env = base_env();
  if (options.cpu_count == 0) options.cpu_count = 4;
  const auto t0 = Clock::now();
  r.result = run_workers(r.config, options);
  r.seconds = seconds_since(t0);
  ::close(out);
  ::close(err);
  r.out = read_file(tmp.str("out"));
  r.err = read_file(tmp.str("err"));
  return r;
}

void expect_all_gone(const LaunchResult& r) {
  EXPECT_FALSE(r.worker_pids.empty());
  for (int pid : r.worker_pids) EXPECT_TRUE(process_gone(pid)) << "worker pid " << pid << " left";
  expect_no_children();
}

const WorkerExit* exit_of(const LaunchResult& r, int rank) {
  for (const auto& e : r.exits)
    if (e.rank == rank) return &e;
  return nullptr;
}

TEST(LaunchProcess, WorkerExitCodeIsReturnedAndOthersStopped) {
  // Grace period 30 s: rank 0 must die of the SIGTERM itself, not of a late SIGKILL.
  const Outcome r = run_launch({"--num_processes", "2", "--grace_period", "30", kWorker, "--on_rank", "1",
                                "--stderr_lines", "30", "--exit", "3", "--sleep", "-1"});
  std::printf("[timing] worker exit 3 -> run_workers returned in %.3f s\n", r.seconds);
  EXPECT_EQ(r.result.exit_code, 3);
  ASSERT_TRUE(r.result.failure);
  EXPECT_EQ(r.result.failure->rank, 1);
  EXPECT_EQ(r.result.failure->exit_code, 3);
  EXPECT_EQ(r.result.failure->signal, 0);
  ASSERT_EQ(r.result.failure->stderr_tail.size(), 20u);
  EXPECT_EQ(r.result.failure->stderr_tail.front(), "rank 1 stderr 10");
  EXPECT_EQ(r.result.failure->stderr_tail.back(), "rank 1 stderr 29");
  const WorkerExit* other = exit_of(r.result, 0);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->signal, SIGTERM);
  EXPECT_NE(r.err.find("accel launch: rank 1 (local rank 1, pid "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("failed: exit code 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("last 20 line(s) of rank 1's stderr:\n  | rank 1 stderr 10\n"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("exiting with code 3"), std::string::npos);
  expect_all_gone(r.result);
}

TEST(LaunchProcess, SignalDeathGives128PlusSignal) {
  const Outcome r =
      run_launch({"--num_processes", "2", kWorker, "--on_rank", "0", "--segv", "--sleep", "-1"});
  EXPECT_EQ(r.result.exit_code, 128 + SIGSEGV);
  ASSERT_TRUE(r.result.failure);
  EXPECT_EQ(r.result.failure->rank, 0);
  EXPECT_EQ(r.result.failure->signal, SIGSEGV);
  EXPECT_NE(r.err.find("killed by signal 11 (SIGSEGV)"), std::string::npos) << r.err;
  expect_all_gone(r.result);
}

TEST(LaunchProcess, KillNineOfOneWorkerFailsFast) {
  TempDir tmp;
  std::thread killer([&] {
    const auto pids = wait_pid_files(tmp.str(), 3);
    ASSERT_EQ(pids.size(), 3u);
    ::kill(pids[1], SIGKILL);
  });
  const Outcome r = run_launch({"--num_processes", "3", kWorker, "--pid_dir", tmp.str(), "--sleep", "-1"});
  killer.join();
  std::printf("[timing] kill -9 of rank 1 -> run_workers returned %.3f s after start\n", r.seconds);
  EXPECT_EQ(r.result.exit_code, 137);
  ASSERT_TRUE(r.result.failure);
  EXPECT_EQ(r.result.failure->rank, 1);
  EXPECT_EQ(r.result.failure->signal, SIGKILL);
  EXPECT_NE(r.err.find("killed by signal 9 (SIGKILL)"), std::string::npos) << r.err;
  expect_all_gone(r.result);
}

TEST(LaunchProcess, SigkillAfterGracePeriodWhenSigtermIgnored) {
  // Rank 1 fails only once both ranks ignore SIGTERM (pid files are written after --ignore_term).
  TempDir tmp;
  const Outcome r = run_launch({"--num_processes", "2", "--grace_period", "0.3", kWorker, "--ignore_term",
                                "--pid_dir", tmp.str(), "--wait_pids", tmp.str(), "2", "--on_rank", "1",
                                "--exit", "5", "--sleep", "-1"});
  std::printf("[timing] exit 5 with a SIGTERM-ignoring peer, grace 0.3 s -> %.3f s\n", r.seconds);
  EXPECT_EQ(r.result.exit_code, 5);
  const WorkerExit* other = exit_of(r.result, 0);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->signal, SIGKILL);
  expect_all_gone(r.result);
}

TEST(LaunchProcess, GrandchildrenInTheWorkersGroupAreKilledToo) {
  const Outcome r = run_launch(
      {"--num_processes", "2", kWorker, "--spawn_child", "--on_rank", "1", "--exit", "2", "--sleep", "-1"});
  EXPECT_EQ(r.result.exit_code, 2);
  expect_all_gone(r.result);
  // The grandchildren were in the workers' process groups: nothing is left alive in them
  // (killed grandchildren are orphans, reaped by init whenever it gets to them).
  const auto t0 = Clock::now();
  while (group_has_live_member(r.result.worker_pids) && seconds_since(t0) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(group_has_live_member(r.result.worker_pids));
}

TEST(LaunchProcess, OutputIsPrefixedByRankAndPartialLinesFlushed) {
  const Outcome r =
      run_launch({"--num_processes", "2", kWorker, "--lines", "200", "--no_newline", "tail-text"});
  EXPECT_EQ(r.result.exit_code, 0);
  std::map<int, int> next;  // rank -> next expected line number
  int tails = 0;
  for (const auto& l : lines_of(r.out)) {
    ASSERT_TRUE(l.rfind("[rank 0] ", 0) == 0 || l.rfind("[rank 1] ", 0) == 0) << l;
    const int rank = l[6] - '0';
    const std::string body = l.substr(9);
    if (body == "tail-text") {
      ++tails;
      continue;
    }
    EXPECT_EQ(body, "rank " + std::to_string(rank) + " line " + std::to_string(next[rank]));
    ++next[rank];
  }
  EXPECT_EQ(next[0], 200);
  EXPECT_EQ(next[1], 200);
  EXPECT_EQ(tails, 2);
  EXPECT_NE(r.err.find("[rank 1] rank 1 err 190\n"), std::string::npos);
  expect_all_gone(r.result);
}

TEST(LaunchProcess, OneRankPrefixPerLine) {
  // The library's logger already writes "[rank i/N]": the launcher adds no second prefix.
  const Outcome r = run_launch({"--num_processes", "2", kWorker, "--log_line", "hello", "--lines", "1"});
  ASSERT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[rank 0/2] hello\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rank 1/2] hello\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rank 1] rank 1 line 0\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("] [rank"), std::string::npos) << r.out;
}

// A worker's "\r" progress bar on a pipe or file: no carriage returns, no fragments; its final
// state as one line (and, with a 0 s interval, each complete state as a line, once).
TEST(LaunchProcess, ProgressBarsOnAPipeBecomeLines) {
  RunOptions o;
  o.terminal = false;
  const Outcome r = run_launch({"--num_processes", "2", kWorker, "--progress", "4"}, o);
  ASSERT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  std::vector<std::string> lines = lines_of(r.err);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"[rank 0] 4/4|####|", "[rank 1] 4/4|####|"})) << r.err;
  o.progress_interval_s = 0;
  const Outcome every = run_launch({"--num_processes", "2", kWorker, "--on_rank", "0", "--progress", "4"}, o);
  std::vector<std::string> states;
  for (const auto& l : lines_of(every.err)) states.push_back(l);
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), "[rank 0] 4/4|####|");
  // Each state a line, in order, once (states read together in one chunk show only the last).
  for (size_t i = 1; i < states.size(); ++i) EXPECT_LT(states[i - 1], states[i]) << every.err;
}

// On a terminal the local main process's bar is redrawn in place ("\r[rank 0] ...", no newline);
// a line from another rank is written above it (the bar is cleared, then drawn again below).
TEST(LaunchProcess, ProgressBarOnATerminalUpdatesInPlace) {
  TempDir tmp;
  const std::string out_path = tmp.str("out"), err_path = tmp.str("err"), go = tmp.str("go");
  LaunchConfig config = resolve_launch_config(parse_launch_args({"--num_processes",
                                                                 "2",
                                                                 kWorker,
                                                                 "--wait_file",
                                                                 go,
                                                                 "--on_rank",
                                                                 "0",
                                                                 "--progress",
                                                                 "3",
                                                                 "--on_rank",
                                                                 "1",
                                                                 "--wait_text",
                                                                 err_path,
                                                                 "1/3|#  |",
                                                                 "--log_line",
                                                                 "between",
                                                                 "--wait_text",
                                                                 out_path,
                                                                 "between",
                                                                 "--touch",
                                                                 go,
                                                                 "--wait_text",
                                                                 err_path,
                                                                 "3/3|###|\n",
                                                                 "--progress",
                                                                 "2"}),
                                              std::nullopt, 0);
  config.main_process_port = choose_port(config).port;
  RunOptions o;
  o.terminal = true;
  o.terminal_columns = 200;
  o.parent_env = base_env();
  o.out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  o.err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const LaunchResult result = run_workers(config, o);
  ::close(o.out_fd);
  ::close(o.err_fd);
  ASSERT_EQ(result.exit_code, 0);
  const std::string err = read_file(err_path);
  const std::string bar1 = "[rank 0] 1/3|#  |";
  // Drawn, cleared for rank 1's line, drawn again, updated in place (updates read in one chunk
  // show only the last), ended with a newline.
  const std::string first = "\r" + bar1 + "\r" + std::string(bar1.size(), ' ') + "\r\r" + bar1;
  ASSERT_EQ(err.compare(0, first.size(), first), 0) << err;
  const std::string rest = err.substr(first.size(), err.find('\n') + 1 - first.size());
  EXPECT_TRUE(
      std::regex_match(rest, std::regex(R"((\r\[rank 0\] [23]/3\|[# ]{3}\|)*\r\[rank 0\] 3/3\|###\|\n)")))
      << rest;
  // Rank 1's bar (not the main process) shows only its final state, as a line.
  EXPECT_NE(err.find("[rank 1] 2/2|##|\n"), std::string::npos) << err;
  EXPECT_EQ(read_file(out_path), "[rank 1/2] between\n");
  expect_all_gone(result);
}

TEST(LaunchProcess, QuietAndSingleProcessOutputIsRaw) {
  const Outcome q = run_launch({"-q", "--num_processes", "2", kWorker, "--on_rank", "1", "--lines", "3"});
  EXPECT_EQ(q.out, "rank 1 line 0\nrank 1 line 1\nrank 1 line 2\n");
  const Outcome one = run_launch({kWorker, "--lines", "2", "--no_newline", "end"});
  EXPECT_EQ(one.out, "rank 0 line 0\nrank 0 line 1\nend");
  EXPECT_EQ(one.err, "rank 0 err 0\n");
}

TEST(LaunchProcess, WorkersGetTheEnvironment) {
  const Outcome r = run_launch({"--num_processes", "2", "--main_process_port", "0", "--mixed_precision",
                                "bf16", "--gradient_accumulation_steps", "4", "--cpu", "--debug", "--gpu_ids",
                                "0,1", kWorker, "--print_env"});
  ASSERT_EQ(r.result.exit_code, 0) << r.err;
  std::map<int, std::map<std::string, std::string>> env;
  for (const auto& l : lines_of(r.out)) {
    const int rank = l[6] - '0';
    const std::string body = l.substr(9);
    ASSERT_EQ(body.rfind("ENV ", 0), 0u) << l;
    const size_t eq = body.find('=');
    env[rank][body.substr(4, eq - 4)] = body.substr(eq + 1);
  }
  ASSERT_EQ(env.size(), 2u);
  const std::string port = std::to_string(r.config.main_process_port);
  EXPECT_NE(r.config.main_process_port, 0);
  for (int rank = 0; rank < 2; ++rank) {
    const std::map<std::string, std::string> expected = {{"RANK", std::to_string(rank)},
                                                         {"LOCAL_RANK", std::to_string(rank)},
                                                         {"WORLD_SIZE", "2"},
                                                         {"LOCAL_WORLD_SIZE", "2"},
                                                         {"GROUP_RANK", "0"},
                                                         {"NODE_RANK", "0"},
                                                         {"ROLE_RANK", std::to_string(rank)},
                                                         {"ROLE_WORLD_SIZE", "2"},
                                                         {"GROUP_WORLD_SIZE", "1"},
                                                         {"MASTER_ADDR", "127.0.0.1"},
                                                         {"MASTER_PORT", port},
                                                         {"TORCHELASTIC_RESTART_COUNT", "0"},
                                                         {"TORCHELASTIC_MAX_RESTARTS", "0"},
                                                         {"TORCHELASTIC_RUN_ID", "none"},
                                                         {"ACCELERATE_MIXED_PRECISION", "bf16"},
                                                         {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4"},
                                                         {"ACCELERATE_USE_CPU", "True"},
                                                         {"ACCELERATE_DEBUG_MODE", "true"},
                                                         {"ACCELERATE_NUM_PROCESSES", "2"},
                                                         {"CUDA_VISIBLE_DEVICES", "0,1"},
                                                         {"OMP_NUM_THREADS", "2"},
                                                         {"ACCEL_LAUNCHED", "1"}};
    EXPECT_EQ(env[rank], expected) << "rank " << rank;
  }
}

TEST(LaunchProcess, MaxRestartsRecoversFromAFailureOnce) {
  TempDir tmp;
  const Outcome r = run_launch({"--num_processes", "2", "--max_restarts", "2", kWorker, "--print_env",
                                "--on_rank", "1", "--fail_once", tmp.str("marker")});
  EXPECT_EQ(r.result.exit_code, 0) << r.err;
  EXPECT_EQ(r.result.restarts, 1);
  EXPECT_FALSE(r.result.failure);
  EXPECT_EQ(r.result.worker_pids.size(), 4u);
  EXPECT_NE(r.out.find("[rank 1] ENV TORCHELASTIC_RESTART_COUNT=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rank 0] ENV TORCHELASTIC_RESTART_COUNT=1\n"), std::string::npos);
  EXPECT_NE(r.out.find("ENV TORCHELASTIC_MAX_RESTARTS=2\n"), std::string::npos);
  EXPECT_NE(r.err.find("restarting all 2 local worker(s) (restart 1 of 2)"), std::string::npos) << r.err;
  expect_all_gone(r.result);
}

TEST(LaunchProcess, MaxRestartsExhausted) {
  const Outcome r = run_launch({"--num_processes", "2", "--max_restarts", "2", kWorker, "--on_rank", "0",
                                "--exit", "4", "--sleep", "-1"});
  EXPECT_EQ(r.result.exit_code, 4);
  EXPECT_EQ(r.result.restarts, 2);
  EXPECT_EQ(r.result.worker_pids.size(), 6u);
  EXPECT_NE(r.err.find("(after 2 restart(s))"), std::string::npos) << r.err;
  expect_all_gone(r.result);
}

TEST(LaunchProcess, LogDirGetsEachRanksRawOutput) {
  TempDir tmp;
  const Outcome r =
      run_launch({"--num_processes", "2", "--log_dir", tmp.str("logs"), kWorker, "--lines", "11"});
  EXPECT_EQ(r.result.exit_code, 0);
  for (int rank = 0; rank < 2; ++rank) {
    const std::string base = tmp.str("logs") + "/attempt_0/rank_" + std::to_string(rank);
    const auto out = lines_of(read_file(base + ".stdout.log"));
    ASSERT_EQ(out.size(), 11u);
    EXPECT_EQ(out[10], "rank " + std::to_string(rank) + " line 10");
    EXPECT_EQ(read_file(base + ".stderr.log"),
              "rank " + std::to_string(rank) + " err 0\nrank " + std::to_string(rank) + " err 10\n");
  }
  EXPECT_NE(r.out.find("[rank 0] rank 0 line 10"), std::string::npos);  // console too
}

TEST(LaunchProcess, WorkersInheritOnlyStdio) {
  const Outcome r = run_launch({"--num_processes", "2", kWorker, "--print_fds"});
  EXPECT_EQ(r.result.exit_code, 0);
  EXPECT_NE(r.out.find("[rank 0] FDS 3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[rank 1] FDS 3\n"), std::string::npos) << r.out;
}

TEST(LaunchProcess, MissingProgramIsAUsageError) {
  EXPECT_THROW(run_launch({"no-such-program-for-accel-tests"}), UsageError);
  const Outcome r = run_launch({"/nonexistent/accel-prog"});
  EXPECT_EQ(r.result.exit_code, 127);
  EXPECT_NE(r.err.find("cannot execute '/nonexistent/accel-prog': No such file or directory"),
            std::string::npos)
      << r.err;
  expect_no_children();
}

TEST(LaunchProcess, AnExceptionInsideTheRunLeavesNoWorker) {
  std::vector<int> started;
  RunOptions o;
  o.on_worker_started = [&](int local_rank, int pid) {
    started.push_back(pid);
    if (local_rank == 1) throw std::runtime_error("callback failed");
  };
  EXPECT_THROW(run_launch({"--num_processes", "3", kWorker, "--sleep", "-1"}, o), std::runtime_error);
  ASSERT_EQ(started.size(), 2u);
  for (int pid : started) EXPECT_TRUE(process_gone(pid)) << pid;
  expect_no_children();
}

// ---- the launcher as a process ---------------------------------------------------------------

struct Driver {
  int pid = -1;
  TempDir dir;
  // Starts launch_driver with `args`; stdout/stderr go to files; no default config is found.
  explicit Driver(const Args& args, std::map<std::string, std::string> extra_env = {}) {
    std::map<std::string, std::string> env = base_env();
    env["ACCEL_CONFIG_FILE"] = dir.str("no-accel-config.yaml");
    env["HF_HOME"] = dir.str("no-hf-home");
    env["HOME"] = dir.str();
    for (auto& [k, v] : extra_env) env[k] = v;
    std::vector<std::string> envs;
    for (auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<char*> envp, argv;
    for (auto& s : envs) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> all = {kDriver};
    all.insert(all.end(), args.begin(), args.end());
    for (auto& s : all) argv.push_back(s.data());
    argv.push_back(nullptr);
    const std::string out = dir.str("driver.out"), err = dir.str("driver.err");
    pid = ::fork();
    if (pid == 0) {
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(99);
    }
  }
  int wait() {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string out() const { return read_file(dir.str("driver.out")); }
  std::string err() const { return read_file(dir.str("driver.err")); }
};

TEST(LaunchDriver, ExitCodeAndReport) {
  const auto t0 = Clock::now();
  Driver d({"--num_processes", "2", kWorker, "--on_rank", "1", "--stderr_lines", "3", "--exit", "3",
            "--sleep", "-1"});
  EXPECT_EQ(d.wait(), 3);
  std::printf("[timing] accel launch process: worker exit 3 -> launcher exit in %.3f s\n", seconds_since(t0));
  EXPECT_NE(d.err().find("[rank 1] rank 1 stderr 2\n"), std::string::npos) << d.err();
  EXPECT_NE(d.err().find("  | rank 1 stderr 2\n"), std::string::npos) << d.err();
}

TEST(LaunchDriver, SigintStopsAllWorkers) {
  TempDir pids_dir;
  Driver d({"--num_processes", "3", kWorker, "--pid_dir", pids_dir.str(), "--sleep", "-1"});
  const auto pids = wait_pid_files(pids_dir.str(), 3);
  ASSERT_EQ(pids.size(), 3u) << d.err();
  const auto t0 = Clock::now();
  ::kill(d.pid, SIGINT);
  EXPECT_EQ(d.wait(), 128 + SIGINT);
  std::printf("[timing] SIGINT to the launcher -> launcher exit in %.3f s\n", seconds_since(t0));
  EXPECT_TRUE(wait_gone(pids, 5));
  for (int p : pids) EXPECT_TRUE(process_gone(p)) << p;
  EXPECT_NE(d.err().find("received SIGINT; stopped all 3 worker(s)"), std::string::npos) << d.err();
}

TEST(LaunchDriver, SigtermIsForwardedAndEscalated) {
  TempDir pids_dir;
  Driver d({"--num_processes", "2", "--grace_period", "0.3", kWorker, "--ignore_term", "--pid_dir",
            pids_dir.str(), "--sleep", "-1"});
  const auto pids = wait_pid_files(pids_dir.str(), 2);
  ASSERT_EQ(pids.size(), 2u) << d.err();
  ::kill(d.pid, SIGTERM);
  EXPECT_EQ(d.wait(), 128 + SIGTERM);
  EXPECT_TRUE(wait_gone(pids, 5));
}

TEST(LaunchDriver, WorkersDieWhenTheLauncherIsKilled) {
  TempDir pids_dir;
  Driver d({"--num_processes", "2", kWorker, "--pid_dir", pids_dir.str(), "--sleep", "-1"});
  const auto pids = wait_pid_files(pids_dir.str(), 2);
  ASSERT_EQ(pids.size(), 2u) << d.err();
  const auto t0 = Clock::now();
  ::kill(d.pid, SIGKILL);
  EXPECT_EQ(d.wait(), 128 + SIGKILL);
  EXPECT_TRUE(wait_gone(pids, 10));
  std::printf("[timing] SIGKILL of the launcher -> workers gone in %.3f s\n", seconds_since(t0));
}

TEST(LaunchDriver, UsageErrorsExitTwo) {
  Driver bad({"--num_proceses", "2", kWorker});
  EXPECT_EQ(bad.wait(), 2);
  EXPECT_NE(bad.err().find("unknown flag '--num_proceses'; did you mean '--num_processes'?"),
            std::string::npos)
      << bad.err();
  Driver fp8({"--mixed_precision", "fp8", kWorker});
  EXPECT_EQ(fp8.wait(), 2);
  EXPECT_NE(fp8.err().find("fp8 is not supported"), std::string::npos);
  Driver help({"--help"});
  EXPECT_EQ(help.wait(), 0);
  EXPECT_NE(help.out().find("usage: accel launch"), std::string::npos);
}

TEST(LaunchDriver, ConfigFileSuppliesDefaults) {
  TempDir tmp;
  const std::string cfg = tmp.str("config.yaml");
  std::ofstream(cfg) << "compute_environment: LOCAL_MACHINE\n"
                        "distributed_type: MULTI_CPU\n"
                        "num_processes: 2\n"
                        "mixed_precision: fp16\n"
                        "use_cpu: true\n";
  Driver d({"--config_file", cfg, "--mixed_precision", "bf16", kWorker, "--print_env"});
  ASSERT_EQ(d.wait(), 0) << d.err();
  const std::string out = d.out();
  EXPECT_NE(out.find("[rank 1] ENV WORLD_SIZE=2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 1] ENV ACCELERATE_MIXED_PRECISION=bf16\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 0] ENV ACCELERATE_USE_CPU=True\n"), std::string::npos) << out;
}

TEST(LaunchDriver, TwoMachinesOnLoopback) {
  const std::string port = std::to_string(find_free_port());
  const Args common = {"--num_processes",   "4",         "--num_machines",      "2",
                       "--main_process_ip", "127.0.0.1", "--main_process_port", port};
  Args a0 = common, a1 = common;
  for (Args* a : {&a0, &a1})
    a->insert(a->end(), {"--machine_rank", a == &a0 ? "0" : "1", kWorker, "--print_env"});
  Driver m0(a0), m1(a1);
  ASSERT_EQ(m0.wait(), 0) << m0.err();
  ASSERT_EQ(m1.wait(), 0) << m1.err();
  for (int node = 0; node < 2; ++node) {
    const std::string out = (node == 0 ? m0 : m1).out();
    for (int local = 0; local < 2; ++local) {
      const std::string p = "[rank " + std::to_string(node * 2 + local) + "] ENV ";
      EXPECT_NE(out.find(p + "LOCAL_RANK=" + std::to_string(local) + "\n"), std::string::npos) << out;
      EXPECT_NE(out.find(p + "NODE_RANK=" + std::to_string(node) + "\n"), std::string::npos) << out;
      EXPECT_NE(out.find(p + "WORLD_SIZE=4\n"), std::string::npos) << out;
      EXPECT_NE(out.find(p + "MASTER_PORT=" + port + "\n"), std::string::npos) << out;
      EXPECT_NE(out.find(p + "MASTER_ADDR=127.0.0.1\n"), std::string::npos) << out;
    }
  }
}

// ---- accel test ------------------------------------------------------------------------------

// Sets environment variables for one test and restores them.
struct ScopedEnv {
  std::map<std::string, std::optional<std::string>> saved;
  void set(const std::string& k, const std::string& v) {
    if (!saved.count(k)) {
      const char* old = std::getenv(k.c_str());
      saved[k] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto& [k, v] : saved) {
      if (v)
        ::setenv(k.c_str(), v->c_str(), 1);
      else
        ::unsetenv(k.c_str());
    }
  }
};

void write_script(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
}

TEST(TestCommand, RunsAccelCheckFromPath) {
  TempDir tmp;
  ScopedEnv env;
  env.set("ACCEL_CONFIG_FILE", tmp.str("none.yaml"));
  env.set("HF_HOME", tmp.str("none"));
  write_script(tmp.str("accel-check"), "echo check-ran rank=$RANK world=$WORLD_SIZE; exit 0");
  env.set("ACCEL_CHECK_PROGRAM", tmp.str("accel-check"));  // the real one sits next to this binary
  env.set("PATH", tmp.str() + ":" + std::getenv("PATH"));
  testing::internal::CaptureStdout();
  const int rc = test_main({});
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("check-ran rank=0 world=1"), std::string::npos) << out;
  EXPECT_NE(out.find("accel test: all checks passed"), std::string::npos) << out;
}

TEST(TestCommand, ReportsFailureAndMissingProgram) {
  TempDir tmp;
  ScopedEnv env;
  env.set("ACCEL_CONFIG_FILE", tmp.str("none.yaml"));
  env.set("HF_HOME", tmp.str("none"));
  write_script(tmp.str("accel-check"), "echo boom >&2; exit 3");
  env.set("ACCEL_CHECK_PROGRAM", tmp.str("accel-check"));
  env.set("PATH", tmp.str() + ":/usr/bin:/bin");
  testing::internal::CaptureStderr();
  EXPECT_EQ(test_main({}), 3);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("accel test: FAILED"), std::string::npos) << err;
  EXPECT_NE(err.find("  | boom"), std::string::npos) << err;
  env.set("PATH", tmp.str("empty"));
  env.set("ACCEL_CHECK_PROGRAM", tmp.str("empty/accel-check"));  // names a program that is not there
  testing::internal::CaptureStderr();
  EXPECT_EQ(test_main({}), 1);
  const std::string missing = testing::internal::GetCapturedStderr();
  EXPECT_NE(missing.find("'accel-check' was found neither next to"), std::string::npos) << missing;
  testing::internal::CaptureStderr();
  EXPECT_EQ(test_main({"--confg_file", "x"}), 2);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("did you mean '--config_file'"), std::string::npos);
}

}  // namespace
}  // namespace accel::launcher
