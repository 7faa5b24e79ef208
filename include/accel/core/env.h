// The process environment contract between `accel launch` (or torchrun / srun / mpirun) and a
// worker: rank, world size, rendezvous address and Accelerate's ACCELERATE_* settings. The
// environment is read in exactly one function, read_process_env(), which tests call with a fake map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace accel {

using EnvMap = std::map<std::string, std::string>;

/// A snapshot of this process's environment variables.
EnvMap current_environment();

/// Everything accel reads from the environment, parsed and validated.
struct ProcessEnv {
  int rank = 0;                                // RANK (or PMI_RANK / OMPI_COMM_WORLD_RANK / SLURM_PROCID)
  int local_rank = 0;                          // LOCAL_RANK (or MPI / SLURM local rank)
  int world_size = 1;                          // WORLD_SIZE
  int local_world_size = 1;                    // LOCAL_WORLD_SIZE
  int node_rank = 0;                           // GROUP_RANK / NODE_RANK
  int num_nodes = 1;                           // derived: world_size / local_world_size
  std::string master_addr = "127.0.0.1";       // MASTER_ADDR
  int master_port = 29500;                     // MASTER_PORT
  bool launched = false;                       // a launcher set RANK/WORLD_SIZE (or MPI/SLURM equivalents)
  std::optional<std::string> mixed_precision;  // ACCELERATE_MIXED_PRECISION
  std::optional<int> gradient_accumulation_steps;  // ACCELERATE_GRADIENT_ACCUMULATION_STEPS
  std::optional<bool> use_cpu;                     // ACCELERATE_USE_CPU
  std::optional<bool> debug_mode;                  // ACCELERATE_DEBUG_MODE
  std::optional<std::string> torch_device;         // ACCELERATE_TORCH_DEVICE
  std::optional<double> collective_timeout_s;      // ACCEL_TIMEOUT (seconds)
  std::optional<double> heartbeat_s;               // ACCEL_HEARTBEAT_S (seconds, 0 = off)
  std::optional<std::string> log_level;            // ACCEL_LOG_LEVEL / ACCELERATE_LOG_LEVEL
  std::optional<std::string> gloo_socket_ifname;   // GLOO_SOCKET_IFNAME (the interface Gloo uses)
  std::optional<std::string> fault_save;           // ACCEL_FAULT_SAVE (tests: die before writing that file)
  /// ACCELERATE_USE_FSDP, FSDP_*, ACCELERATE_USE_DEEPSPEED, ACCELERATE_DEEPSPEED_* and
  /// ACCELERATE_GRADIENT_CLIPPING as given (validated by resolve_options).
  EnvMap sharding;
};

/// Parses `env`. Throws accel::Error naming the variable, its value and what is accepted when a
/// value is malformed (e.g. RANK=abc, ACCELERATE_MIXED_PRECISION=fp8x, RANK >= WORLD_SIZE).
ProcessEnv read_process_env(const EnvMap& env);

/// Parses a boolean the way Accelerate's str_to_bool does: 1/true/yes/y/on and 0/false/no/n/off.
/// Throws accel::Error naming `what` for anything else.
bool parse_bool(const std::string& value, const std::string& what);

}  // namespace accel
