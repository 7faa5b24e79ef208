// `accel launch` as a library: the command line (Accelerate's flag names), its merge with a
// config file (command line > file > default), the environment each worker gets (torchrun's and
// Accelerate's variable names) and the rendezvous port choice. All pure or nearly so, so tests
// can loop over ranks in one process; running the workers lives in accel/launcher/process.h.
#pragma once

#include <accel/launcher/config_file.h>
#include <accel/launcher/sharding.h>

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace accel::launcher {

/// A wrong command line or configuration (unknown flag, bad value, missing required value).
/// `accel launch` prints it as one line and exits with code 2. (The launcher area is torch-free,
/// so this does not derive from c10::Error.)
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The rendezvous port used when neither the command line nor the config file gives one.
inline constexpr int kDefaultMainProcessPort = 29500;
/// Seconds between SIGTERM and SIGKILL when the launcher stops its workers.
inline constexpr double kDefaultGracePeriod = 5.0;
/// Lines of a failed worker's stderr repeated in the launcher's failure message.
inline constexpr int kFailureTailLines = 20;

/// The `accel launch` command line as typed. Optionals are unset when the flag was not given, so
/// the config file can fill them in. `given` lists the canonical names (underscore spelling,
/// without dashes, e.g. "num_processes") of every flag that appeared on the command line.
struct LaunchArgs {
  std::optional<std::string> config_file;
  std::optional<int> num_processes;  // total over all machines, as in Accelerate
  std::optional<int> num_machines;
  std::optional<int> machine_rank;
  std::optional<std::string> main_process_ip;
  std::optional<int> main_process_port;  // 0: pick a free port
  std::optional<std::string> mixed_precision;
  std::optional<int> gradient_accumulation_steps;
  std::optional<bool> cpu;
  std::optional<std::string> gpu_ids;  // "all" or "0,1"
  std::optional<int> max_restarts;
  std::optional<double> monitor_interval;  // seconds between worker checks
  std::optional<int> num_cpu_threads_per_process;
  std::optional<double> grace_period;  // accel extension: SIGTERM -> SIGKILL delay, seconds
  std::optional<bool> debug;
  bool quiet = false;
  bool tee = false;
  std::optional<std::string> log_dir;
  bool multi_gpu = false;      // Accelerate compatibility; requires >= 2 processes
  bool use_fsdp = false;       // --use_fsdp: sharded data parallel with FSDP's settings
  bool use_deepspeed = false;  // --use_deepspeed: sharded data parallel with DeepSpeed's settings
  /// FSDP / DeepSpeed flags as typed (canonical name, e.g. "fsdp_sharding_strategy" -> "FULL_SHARD");
  /// checked by resolve_launch_config.
  std::map<std::string, std::string> sharding;
  bool help = false;                      // -h / --help: nothing else is validated
  std::string program;                    // the first token that is not a flag (empty only with help)
  std::vector<std::string> program_args;  // everything after program, untouched
  std::set<std::string> given;
};

/// Parses the arguments after `accel launch`. Accepts `--num_processes` and `--num-processes`,
/// `--flag value` and `--flag=value`, `-q`, `-t`, `-h`, and `--` before the program. The first
/// token that is not a flag is the program; every later token goes to it untouched.
/// Throws UsageError for an unknown flag (naming the closest valid one), a missing or malformed
/// value, or a missing program.
LaunchArgs parse_launch_args(const std::vector<std::string>& args);

/// The closest known flag to `flag` (edit distance over the underscore spelling), as
/// "--canonical_name". Never empty.
std::string closest_launch_flag(const std::string& flag);

/// The grouped `accel launch --help` text.
std::string launch_help();

/// Everything the launcher needs, after merging command line > config file > defaults and
/// validating. Built by resolve_launch_config; tests may also fill one in directly.
struct LaunchConfig {
  int num_processes = 1;  // total over all machines
  int num_machines = 1;
  int machine_rank = 0;
  std::string main_process_ip;  // required (non-empty) when num_machines > 1
  int main_process_port = kDefaultMainProcessPort;
  std::string mixed_precision = "no";  // no | fp16 | bf16
  int gradient_accumulation_steps = 1;
  bool use_cpu = false;
  std::string gpu_ids = "all";
  int max_restarts = 0;
  double monitor_interval = 0.1;
  std::optional<int> num_cpu_threads_per_process;  // unset: OMP_NUM_THREADS rule (worker_env)
  double grace_period = kDefaultGracePeriod;
  bool debug = false;
  bool quiet = false;
  std::string log_dir;          // empty: no log files
  std::string run_id = "none";  // TORCHELASTIC_RUN_ID
  std::string program;
  std::vector<std::string> program_args;
  std::string config_file;      // the file the values came from, empty if none
  std::set<std::string> given;  // flags given on the command line (LaunchArgs::given)
  /// Sharded data parallel (FSDP / DeepSpeed), resolved; mode kNone for plain data parallel.
  ShardingSettings sharding;
  std::vector<std::string> warnings;     // settings that change behaviour but cannot be honoured
  std::vector<std::string> notes;        // what was honoured, worth one line (DeepSpeed settings)
  std::vector<std::string> debug_notes;  // settings that change nothing here (shown at debug level)

  /// Processes on this machine: num_processes / num_machines.
  int local_world_size() const { return num_processes / num_machines; }
};

/// Merges `args` with `file` (the loaded config, if any): a command-line value wins, else the
/// file's, else the default. `visible_gpus` is the number of GPUs this machine has (it sets the
/// default num_processes when neither gives one; 0 or use_cpu: 1 process). Validates every value
/// and throws UsageError naming the value and the accepted ones (mixed_precision fp8: "not
/// supported"; num_processes -1 in the file without --num_processes; num_processes not divisible
/// by num_machines; a missing main_process_ip with several machines; ...). Sharding comes from
/// resolve_sharding. Every setting of the file is reviewed: one that would change behaviour but
/// cannot be honoured becomes one entry of `warnings` naming it; one that changes nothing here
/// (TPU keys, downcast_bf16, an empty mpirun_config, ipex: false, ...) an entry of `debug_notes`.
LaunchConfig resolve_launch_config(const LaunchArgs& args, const std::optional<ClusterConfig>& file,
                                   int visible_gpus = 0);

/// The sharded-data-parallel settings of a launch. The mode: --use_fsdp or --use_deepspeed, else
/// (without --multi_gpu) the file's distributed_type FSDP or DEEPSPEED; two of --multi_gpu,
/// --use_fsdp, --use_deepspeed together are a UsageError. Each setting: its flag, else the file's
/// fsdp_config / deepspeed_config entry, else Accelerate's launch default (FSDP only). Values are
/// checked (UsageError naming the setting, where it came from, the value and the accepted values);
/// fsdp_cpu_ram_efficient_loading true needs fsdp_sync_module_states true, and with fsdp_version 2
/// fsdp_reshard_after_forward must be true or false. One deviation from Accelerate 1.15: with
/// fsdp_version 1 and no sharding strategy given, a strategy name in fsdp_reshard_after_forward
/// (what `accelerate config` writes for FSDP1) becomes the sharding strategy, where Accelerate's
/// launcher would pass FULL_SHARD. DeepSpeed settings are sorted into `honoured` and `ignored`.
/// `warnings` receives one line per flag or config key given for the other mode (or none) and per
/// unknown key in the file's fsdp_config / deepspeed_config.
ShardingSettings resolve_sharding(const LaunchArgs& args, const ClusterConfig& file,
                                  std::vector<std::string>* warnings);

/// The variables the launcher sets for the worker with `local_rank` on this machine, on top of
/// the launcher's own environment `parent_env` (which is read, not copied): RANK, LOCAL_RANK,
/// WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, NODE_RANK, GROUP_WORLD_SIZE, ROLE_RANK,
/// ROLE_WORLD_SIZE, ROLE_NAME, MASTER_ADDR (127.0.0.1 on one machine, else main_process_ip),
/// MASTER_PORT, TORCHELASTIC_RESTART_COUNT/MAX_RESTARTS/RUN_ID, ACCELERATE_MIXED_PRECISION,
/// ACCELERATE_GRADIENT_ACCUMULATION_STEPS, ACCELERATE_USE_CPU ("True"/"False"),
/// ACCELERATE_DEBUG_MODE ("true"/"false"), ACCELERATE_NUM_PROCESSES, the sharding variables
/// (sharding_env: ACCELERATE_USE_FSDP and FSDP_*, or ACCELERATE_USE_DEEPSPEED and
/// ACCELERATE_DEEPSPEED_*), CUDA_VISIBLE_DEVICES (only
/// when gpu_ids is not "all"), OMP_NUM_THREADS (num_cpu_threads_per_process if set, else
/// cpu_count / local processes with at least 1, unless parent_env has OMP_NUM_THREADS) and
/// ACCEL_LAUNCHED=1. `cpu_count` is the number of CPUs the launcher may use.
std::map<std::string, std::string> worker_env(const LaunchConfig& config, int local_rank, int restart_count,
                                              int cpu_count,
                                              const std::map<std::string, std::string>& parent_env);

/// `parent_env` with `overlay` applied, as "NAME=value" strings sorted by name (an execve envp).
std::vector<std::string> merge_env(const std::map<std::string, std::string>& parent_env,
                                   const std::map<std::string, std::string>& overlay);

/// This process's environment as a map.
std::map<std::string, std::string> current_env();

/// CPUs this process may run on (its affinity mask), at least 1.
int available_cpu_count();

/// GPUs this machine shows (/proc/driver/nvidia/gpus), limited by CUDA_VISIBLE_DEVICES if set.
int detect_visible_gpus();

/// True when a TCP socket can bind `port` on all interfaces (SO_REUSEADDR, as TCPStore does).
bool port_is_free(int port);

/// A currently free TCP port, found by binding 127.0.0.1:0.
int find_free_port();

/// The rendezvous port to use, and a note for the user when it differs from the one asked for.
struct PortChoice {
  int port = 0;
  std::string note;  // e.g. "port 29500 is busy; using 41235 instead"; empty if unchanged
};

/// Single machine: port 0 or a busy port -> a free one (with a note). Several machines: port 0
/// is a UsageError; on machine_rank 0 a busy port is a UsageError (the other machines cannot know
/// another port); other machine ranks keep the port unchecked.
PortChoice choose_port(const LaunchConfig& config);

/// Resolves `program` like execvp would: a name with a '/' is used as given; else the first
/// executable `dir/program` over the ':'-separated `path_env`. Empty when not found.
std::string find_program(const std::string& program, const std::string& path_env);

/// The `accel-check` program `accel test` runs: `self_dir/accel-check` if executable, else the
/// first on `path_env`. Empty when not found.
std::string find_check_program(const std::string& self_dir, const std::string& path_env);

/// The directory of the running executable (/proc/self/exe), empty if unknown.
std::string self_exe_dir();

}  // namespace accel::launcher
