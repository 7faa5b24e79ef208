// Running the workers of one machine: fork/exec each local rank in its own process group with the
// environment from worker_env(), prefix their output by rank, forward SIGINT/SIGTERM, stop all
// when one fails (SIGTERM, then SIGKILL after a grace period), restart the group up to
// max_restarts times, and report the failing worker's exit code and last stderr lines.
#pragma once

#include <accel/launcher/launch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace accel::launcher {

/// Where the runner writes and what it tells its caller. Defaults suit the CLI.
struct RunOptions {
  /// The workers' stdout lines go here, their stderr lines and the launcher's messages to err_fd.
  int out_fd = 1;
  int err_fd = 2;
  /// Called in the launcher after each worker is started (all attempts), e.g. for tests.
  std::function<void(int local_rank, int pid)> on_worker_started;
  /// The launcher's environment the workers inherit (worker_env is applied on top). Unset: this
  /// process's environment.
  std::optional<std::map<std::string, std::string>> parent_env;
  /// CPUs used for the OMP_NUM_THREADS rule. 0: available_cpu_count().
  int cpu_count = 0;
  /// Whether out_fd / err_fd are terminals. Unset: isatty(). On a terminal the progress line of
  /// the local main process (text between '\r's) is redrawn in place, and other lines are written
  /// above it; on a pipe or file it is written as a line every progress_interval_s.
  std::optional<bool> terminal;
  /// Terminal width used to cut a progress line (a wrapped line cannot be redrawn). 0: ask the
  /// terminal (TIOCGWINSZ); no cut when unknown.
  int terminal_columns = 0;
  /// Pipe or file: seconds between the lines showing a running progress line (its final state is
  /// always written, once).
  double progress_interval_s = 30.0;
};

/// How one worker ended.
struct WorkerExit {
  int local_rank = 0;
  int rank = 0;  // global rank
  int pid = 0;
  int exit_code = 0;                     // the code it exited with, or 128+signal
  int signal = 0;                        // the signal that killed it, 0 if it exited
  std::vector<std::string> stderr_tail;  // its last kFailureTailLines stderr lines
};

/// The outcome of run_workers.
struct LaunchResult {
  /// 0 when every worker exited 0; the failing worker's exit code (128+signal for a signal);
  /// 128+signal when the launcher itself got SIGINT/SIGTERM; 126/127 when the program could not
  /// be executed.
  int exit_code = 0;
  int restarts = 0;                   // how many times the group was restarted
  std::optional<WorkerExit> failure;  // the first worker to fail in the last attempt
  int interrupted_by = 0;             // the signal the launcher received, 0 if none
  std::vector<int> worker_pids;       // every worker started, all attempts (all reaped)
  std::vector<WorkerExit> exits;      // how each worker of the last attempt ended
  std::string message;                // the failure report printed to err_fd, empty on success
};

/// Runs config.local_world_size() workers of config.program on this machine, with
/// config.main_process_port as MASTER_PORT (call choose_port first), and waits for them.
/// Output lines are prefixed "[rank i] " when the world size is > 1 and not quiet (not when the line
/// already starts with the library logger's "[rank i/N]"); a progress line (text between '\r's) is
/// shown as described at RunOptions::terminal, its final state as one line; with
/// config.log_dir each rank's raw stdout and stderr also go to
/// log_dir/attempt_<k>/rank_<i>.{stdout,stderr}.log. SIGINT/SIGTERM received meanwhile are
/// forwarded to every worker's process group (a second one kills at once). Every worker started
/// has been reaped when this returns, and each worker's process group has been sent SIGKILL after
/// a failure or an interrupt. Workers die with the launcher (PR_SET_PDEATHSIG, tied to the
/// calling thread: call it from a thread that outlives the run). Installs its own SIGINT, SIGTERM,
/// SIGCHLD and SIGPIPE handlers for the duration and restores the previous ones; one run at a
/// time per process. Throws UsageError when the program cannot be found.
LaunchResult run_workers(const LaunchConfig& config, const RunOptions& options = {});

/// "killed by signal 11 (SIGSEGV)" or "exit code 3".
std::string describe_exit(const WorkerExit& exit);

/// The message printed when a worker fails: names the rank, pid and cause, then its last stderr
/// lines.
std::string format_failure(const WorkerExit& exit, int restarts);

}  // namespace accel::launcher
