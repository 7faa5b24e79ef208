#include "accel/core/env.h"

#include "accel/core/error.h"
#include "accel/core/strings.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

extern char** environ;

namespace accel {

EnvMap current_environment() {
  EnvMap env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

namespace {

std::optional<std::string> get(const EnvMap& env, const char* key) {
  auto it = env.find(key);
  if (it == env.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// First variable that is set among `keys`; returns its name too for error messages.
std::optional<std::pair<std::string, std::string>> first_of(const EnvMap& env,
                                                            std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    if (auto v = get(env, k)) return std::make_pair(std::string(k), *v);
  }
  return std::nullopt;
}

int parse_int(const std::string& name, const std::string& value, int min_value) {
  int out = 0;
  const char* b = value.data();
  const char* e = value.data() + value.size();
  auto [p, ec] = std::from_chars(b, e, out);
  ACCEL_CHECK(ec == std::errc() && p == e, "environment variable ", name, "='", value,
              "' is not an integer. HINT: unset it or set an integer >= ", min_value, ".");
  ACCEL_CHECK(out >= min_value, "environment variable ", name, "=", value, " must be >= ", min_value, ".");
  return out;
}

}  // namespace

bool parse_bool(const std::string& value, const std::string& what) {
  const std::string v = lower(value);
  if (v == "1" || v == "true" || v == "yes" || v == "y" || v == "on" || v == "t") return true;
  if (v == "0" || v == "false" || v == "no" || v == "n" || v == "off" || v == "f") return false;
  ACCEL_CHECK(false, what, "='", value, "' is not a boolean; accepted: 1/true/yes/on or 0/false/no/off.");
  return false;
}

ProcessEnv read_process_env(const EnvMap& env) {
  ProcessEnv pe;
  auto rank =
      first_of(env, {"RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID"});
  auto world = first_of(
      env, {"WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_NTASKS"});
  auto local_rank = first_of(env, {"LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK",
                                   "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"});
  auto local_world = first_of(env, {"LOCAL_WORLD_SIZE", "MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE",
                                    "MV2_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"});
  if (world) pe.world_size = parse_int(world->first, world->second, 1);
  if (rank) pe.rank = parse_int(rank->first, rank->second, 0);
  pe.launched = rank.has_value() || world.has_value();
  ACCEL_CHECK(pe.rank < pe.world_size, "rank ", pe.rank, " (", rank ? rank->first : "RANK",
              ") must be smaller than the world size ", pe.world_size, " (",
              world ? world->first : "WORLD_SIZE", "). HINT: start workers with `accel launch`.");
  if (local_rank) {
    pe.local_rank = parse_int(local_rank->first, local_rank->second, 0);
  } else {
    pe.local_rank = pe.rank;
  }
  if (local_world) {
    pe.local_world_size = parse_int(local_world->first, local_world->second, 1);
  } else {
    pe.local_world_size = pe.world_size;
  }
  ACCEL_CHECK(pe.local_rank < pe.local_world_size, "local rank ", pe.local_rank,
              " must be smaller than the local world size ", pe.local_world_size, ".");
  ACCEL_CHECK(pe.world_size % pe.local_world_size == 0, "WORLD_SIZE=", pe.world_size,
              " is not a multiple of LOCAL_WORLD_SIZE=", pe.local_world_size,
              ". HINT: every machine must run the same number of processes.");
  pe.num_nodes = pe.world_size / pe.local_world_size;
  if (auto node = first_of(env, {"GROUP_RANK", "NODE_RANK", "SLURM_NODEID"})) {
    pe.node_rank = parse_int(node->first, node->second, 0);
  } else {
    pe.node_rank = pe.rank / pe.local_world_size;
  }
  if (auto v = get(env, "MASTER_ADDR")) pe.master_addr = *v;
  if (auto v = get(env, "MASTER_PORT")) {
    pe.master_port = parse_int("MASTER_PORT", *v, 0);
    ACCEL_CHECK(pe.master_port <= 65535, "MASTER_PORT=", *v, " is not a valid port (0..65535).");
  }
  if (auto v = get(env, "ACCELERATE_MIXED_PRECISION")) {
    std::string mp = lower(*v);
    ACCEL_CHECK(mp == "no" || mp == "fp16" || mp == "bf16", "ACCELERATE_MIXED_PRECISION='", *v,
                "' is not supported; accepted: no, fp16, bf16.");
    pe.mixed_precision = mp;
  }
  if (auto v = get(env, "ACCELERATE_GRADIENT_ACCUMULATION_STEPS")) {
    pe.gradient_accumulation_steps = parse_int("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", *v, 1);
  }
  if (auto v = get(env, "ACCELERATE_USE_CPU")) pe.use_cpu = parse_bool(*v, "ACCELERATE_USE_CPU");
  if (auto v = get(env, "ACCELERATE_DEBUG_MODE")) {
    pe.debug_mode = parse_bool(*v, "ACCELERATE_DEBUG_MODE");
  }
  if (auto v = get(env, "ACCELERATE_TORCH_DEVICE")) pe.torch_device = *v;
  if (auto v = get(env, "ACCEL_TIMEOUT")) {
    char* end = nullptr;
    double t = std::strtod(v->c_str(), &end);
    ACCEL_CHECK(end != v->c_str() && *end == '\0' && t > 0, "ACCEL_TIMEOUT='", *v,
                "' must be a positive number of seconds.");
    pe.collective_timeout_s = t;
  }
  if (auto v = get(env, "ACCEL_HEARTBEAT_S")) {
    char* end = nullptr;
    double t = std::strtod(v->c_str(), &end);
    ACCEL_CHECK(end != v->c_str() && *end == '\0' && t >= 0, "ACCEL_HEARTBEAT_S='", *v,
                "' must be a number of seconds >= 0 (0 turns heartbeats off).");
    pe.heartbeat_s = t;
  }
  if (auto v = first_of(env, {"ACCEL_LOG_LEVEL", "ACCELERATE_LOG_LEVEL"})) {
    pe.log_level = lower(v->second);
  }
  if (auto v = get(env, "GLOO_SOCKET_IFNAME")) pe.gloo_socket_ifname = *v;
  if (auto v = get(env, "ACCEL_FAULT_SAVE")) pe.fault_save = *v;
  for (const auto& [k, v] : env) {
    if (v.empty()) continue;
    if (k == "ACCELERATE_USE_FSDP" || k.rfind("FSDP_", 0) == 0 || k == "ACCELERATE_USE_DEEPSPEED" ||
        k.rfind("ACCELERATE_DEEPSPEED_", 0) == 0 || k == "ACCELERATE_GRADIENT_CLIPPING") {
      pe.sharding[k] = v;
    }
  }
  return pe;
}

}  // namespace accel
