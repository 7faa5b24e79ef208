// `accel launch`: merging the command line with the config file, the workers' environment, the
// rendezvous port and program lookup.
#include "accel/launcher/launch.h"

#include "accel/core/strings.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>

extern char** environ;

namespace accel::launcher {
namespace {

template <typename T>
T pick(const std::optional<T>& cli, const std::optional<T>& file, T fallback) {
  if (cli) return *cli;
  if (file) return *file;
  return fallback;
}

// "0,1,3" -> 3 entries; throws for anything but "all" or a list of non-negative integers.
int count_gpu_ids(const std::string& ids) {
  if (ids == "all") return -1;
  int n = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = ids.find(',', start);
    const std::string item = ids.substr(start, comma == std::string::npos ? comma : comma - start);
    const bool digits =
        !item.empty() && std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits)
      throw UsageError("gpu_ids '" + ids +
                       "' is not valid; expected 'all' or a comma-separated list like '0,1'");
    ++n;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return n;
}

// Sorts every setting of the file accel does not act on into a warning (it would change
// behaviour and cannot be honoured) or a debug note (it changes nothing here). Sharding sections
// of the active mode are resolve_sharding's.
void review_config(const ClusterConfig& file, LaunchConfig& c) {
  const ShardingMode mode = c.sharding.mode;
  auto quiet = [&](const std::string& key, const std::string& why) {
    c.debug_notes.push_back("config key '" + key + "' changes nothing here (" + why + ")");
  };
  auto entry = [&](const std::string& section, const std::string& key) -> std::optional<std::string> {
    for (const auto& [k, v] : passthrough_entries(file, section))
      if (k == key) return v;
    return std::nullopt;
  };
  auto is_true = [](const std::optional<std::string>& v) {
    if (!v) return false;
    const std::string l = lower(*v);
    return l == "true" || l == "yes" || l == "on" || l == "1";
  };
  if (file.compute_environment && upper(*file.compute_environment) != "LOCAL_MACHINE")
    c.warnings.push_back("compute_environment " + *file.compute_environment +
                         " is ignored; accel launches on this machine");
  if (file.rdzv_backend && *file.rdzv_backend != "static")
    c.warnings.push_back("rdzv_backend " + *file.rdzv_backend +
                         " is ignored; accel uses static rendezvous (MASTER_ADDR/MASTER_PORT)");
  if (file.enable_cpu_affinity.value_or(false))
    c.warnings.push_back("enable_cpu_affinity is not supported yet and is ignored");
  if (file.same_network) quiet("same_network", "rendezvous is static, at main_process_ip");
  if (file.main_training_function) quiet("main_training_function", "TPU notebook launches only");
  for (const auto& [key, text] : file.passthrough) {
    const auto entries = passthrough_entries(file, key);
    if (key == "fsdp_config" || key == "deepspeed_config") {
      const ShardingMode own = key == "fsdp_config" ? ShardingMode::kFsdp : ShardingMode::kDeepSpeed;
      if (own != mode) quiet(key, "distributed_type is " + file.distributed_type.value_or("NO"));
    } else if (key == "dynamo_config") {
      const auto backend = entry(key, "dynamo_backend");
      if (backend && upper(*backend) != "NO")
        c.warnings.push_back("dynamo_config (dynamo_backend " + *backend +
                             ") is ignored: torch.compile is Python-only, accel programs run LibTorch's "
                             "eager kernels");
      else
        quiet(key, "no dynamo backend");
    } else if (key == "mpirun_config") {
      // mpirun would place the processes on the hostfile's machines: the same as accel's own start
      // on one machine; several machines need accel launch on each. mpirun_ccl (oneCCL threads)
      // has no meaning with Gloo.
      const auto hostfile = entry(key, "mpirun_hostfile");
      if (hostfile && c.num_machines > 1)
        c.warnings.push_back("mpirun_config (mpirun_hostfile " + *hostfile +
                             ") is ignored: accel launch starts this machine's processes itself, without "
                             "mpirun. HINT: run accel launch on each machine with its --machine_rank");
      else
        quiet(key, hostfile ? "one machine: every process runs here" : "mpirun is not asked for");
    } else if (key == "ipex_config") {
      std::vector<std::string> asked;
      for (const char* k : {"ipex", "ipex_enabled", "use_xpu"})
        if (is_true(entry(key, k))) asked.push_back(std::string(k) + ": true");
      if (!asked.empty())
        c.warnings.push_back("ipex_config (" + join(asked, ", ") +
                             ") is ignored: Intel Extension for PyTorch and XPU devices are not "
                             "supported; accel runs LibTorch's CPU or CUDA kernels");
      else
        quiet(key, "IPEX is off");
    } else if (key == "tp_config" || key == "parallelism_config") {
      std::vector<std::string> sizes;
      for (const auto& [k, v] : entries)
        if (ends_with(k, "_size") && v != "1") sizes.push_back(k + " " + v);
      if (!sizes.empty())
        c.warnings.push_back(key + " (" + join(sizes, ", ") +
                             ") is ignored: accel runs data parallel only (plain or sharded); tensor and "
                             "context parallelism are not supported");
      else
        quiet(key, "every size is 1");
    } else if (key == "downcast_bf16" || starts_with(key, "tpu_") || key == "commands" ||
               key == "command_file") {
      quiet(key, "TPU only");
    } else if (key == "fp8_config") {
      quiet(key, "used with mixed_precision fp8 only");
    } else if (key == "megatron_lm_config") {
      quiet(key, "used with distributed_type MEGATRON_LM only");
    } else {
      quiet(key, "Amazon SageMaker only");
    }
  }
}

int make_socket() {
  return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

}  // namespace

LaunchConfig resolve_launch_config(const LaunchArgs& args, const std::optional<ClusterConfig>& file_opt,
                                   int visible_gpus) {
  const ClusterConfig file = file_opt.value_or(ClusterConfig{});
  LaunchConfig c;
  c.given = args.given;
  c.program = args.program;
  c.program_args = args.program_args;
  c.quiet = args.quiet;
  c.debug = pick(args.debug, file.debug, false);

  // Paradigm: plain or sharded data parallel; say so when the file asks for more.
  const std::string dist = upper(file.distributed_type.value_or("NO"));
  static const char* const kSupported[] = {"NO", "MULTI_CPU", "MULTI_GPU", "FSDP", "DEEPSPEED"};
  if (std::find(std::begin(kSupported), std::end(kSupported), dist) == std::end(kSupported))
    c.warnings.push_back("distributed_type " + dist +
                         " in the config file is not supported by accel; running plain data "
                         "parallel (one process per device)");
  c.sharding = resolve_sharding(args, file, &c.warnings);

  // Hardware.
  std::optional<bool> file_cpu = file.use_cpu;
  if (!file_cpu && dist == "MULTI_CPU") file_cpu = true;
  c.use_cpu = pick(args.cpu, file_cpu, false);
  if (args.multi_gpu && args.cpu.value_or(false))
    throw UsageError("--cpu and --multi_gpu cannot be used together; give only one of them");

  c.gpu_ids = pick(args.gpu_ids, file.gpu_ids, std::string("all"));
  if (c.gpu_ids.empty()) c.gpu_ids = "all";
  const int listed_gpus = count_gpu_ids(c.gpu_ids);

  // Processes.
  if (args.num_processes) {
    c.num_processes = *args.num_processes;
  } else if (file.num_processes) {
    if (*file.num_processes == -1)
      throw UsageError("the config file " + args.config_file.value_or("") +
                       " sets num_processes: -1, which means it must be given on the command "
                       "line. HINT: add --num_processes N");
    c.num_processes = *file.num_processes;
  } else {
    c.num_processes = c.use_cpu ? 1 : std::max(1, listed_gpus > 0 ? listed_gpus : visible_gpus);
  }
  if (c.num_processes < 1)
    throw UsageError("num_processes must be at least 1, got " + std::to_string(c.num_processes));
  if (args.multi_gpu && c.num_processes < 2)
    throw UsageError("--multi_gpu needs at least 2 processes, got num_processes " +
                     std::to_string(c.num_processes) + ". HINT: add --num_processes 2");

  c.num_machines = pick(args.num_machines, file.num_machines, 1);
  if (c.num_machines < 1)
    throw UsageError("num_machines must be at least 1, got " + std::to_string(c.num_machines));
  if (c.num_processes % c.num_machines != 0)
    throw UsageError("num_processes " + std::to_string(c.num_processes) +
                     " is not a multiple of num_machines " + std::to_string(c.num_machines) +
                     "; num_processes counts the processes of all machines together");
  c.machine_rank = pick(args.machine_rank, file.machine_rank, 0);
  if (c.machine_rank < 0 || c.machine_rank >= c.num_machines)
    throw UsageError("machine_rank " + std::to_string(c.machine_rank) + " is not in 0.." +
                     std::to_string(c.num_machines - 1) + " (num_machines " + std::to_string(c.num_machines) +
                     ")");
  c.main_process_ip = pick(args.main_process_ip, file.main_process_ip, std::string());
  if (c.num_machines > 1 && c.main_process_ip.empty())
    throw UsageError("--main_process_ip is required with num_machines " + std::to_string(c.num_machines) +
                     ": give the address of machine_rank 0, the same on every machine");
  c.main_process_port = pick(args.main_process_port, file.main_process_port, kDefaultMainProcessPort);
  if (c.main_process_port < 0 || c.main_process_port > 65535)
    throw UsageError("main_process_port " + std::to_string(c.main_process_port) +
                     " is not in 0..65535 (0 picks a free port on one machine)");

  if (!c.use_cpu && listed_gpus > 0 && listed_gpus < c.local_world_size())
    c.warnings.push_back("gpu_ids '" + c.gpu_ids + "' lists " + std::to_string(listed_gpus) + " GPU(s) but " +
                         std::to_string(c.local_world_size()) + " processes run on this machine");

  // Precision and training.
  c.mixed_precision = pick(args.mixed_precision, file.mixed_precision, std::string("no"));
  {
    const std::string mp = lower(c.mixed_precision);
    if (mp == "fp8")
      throw UsageError("mixed_precision fp8 is not supported by accel; accepted: no, fp16, bf16");
    if (mp != "no" && mp != "fp16" && mp != "bf16")
      throw UsageError("mixed_precision '" + c.mixed_precision + "' is not valid; accepted: no, fp16, bf16");
    c.mixed_precision = mp;
  }
  std::optional<int> file_steps = file.gradient_accumulation_steps;
  if (auto ds = c.sharding.get("gradient_accumulation_steps")) {
    // DeepSpeed keeps it in deepspeed_config (checked to be an integer >= 1 when the file loaded).
    const int ds_steps = std::atoi(ds->c_str());
    if (file_steps && *file_steps != ds_steps && !args.gradient_accumulation_steps)
      throw UsageError("the config file sets gradient_accumulation_steps " + std::to_string(*file_steps) +
                       " and deepspeed_config.gradient_accumulation_steps " + *ds +
                       ". HINT: keep one of them, or give --gradient_accumulation_steps");
    file_steps = ds_steps;
  }
  c.gradient_accumulation_steps = pick(args.gradient_accumulation_steps, file_steps, 1);
  if (c.gradient_accumulation_steps < 1)
    throw UsageError("gradient_accumulation_steps must be at least 1, got " +
                     std::to_string(c.gradient_accumulation_steps));

  // Supervision.
  c.max_restarts = args.max_restarts.value_or(0);
  if (c.max_restarts < 0)
    throw UsageError("--max_restarts must be 0 or more, got " + std::to_string(c.max_restarts));
  c.monitor_interval = args.monitor_interval.value_or(0.1);
  if (!(c.monitor_interval > 0.0) || c.monitor_interval > 3600.0)
    throw UsageError("--monitor_interval must be a number of seconds in (0, 3600], got " +
                     std::to_string(c.monitor_interval));
  c.grace_period = args.grace_period.value_or(kDefaultGracePeriod);
  if (!(c.grace_period >= 0.0) || c.grace_period > 3600.0)
    throw UsageError("--grace_period must be a number of seconds in [0, 3600], got " +
                     std::to_string(c.grace_period));
  if (args.num_cpu_threads_per_process) {
    if (*args.num_cpu_threads_per_process < 1)
      throw UsageError("--num_cpu_threads_per_process must be at least 1, got " +
                       std::to_string(*args.num_cpu_threads_per_process));
    c.num_cpu_threads_per_process = args.num_cpu_threads_per_process;
  }
  c.log_dir = args.log_dir.value_or(args.tee ? std::string("accel_logs") : std::string());
  c.config_file = args.config_file.value_or("");

  review_config(file, c);

  // Sharding: the DeepSpeed settings handed to the program are listed (a warning names those that
  // never reach it); the program itself says which of the values it gets it cannot honour. FSDP's
  // values are the program's to judge, so they are listed at debug level only.
  if (c.sharding.mode == ShardingMode::kDeepSpeed) {
    std::string line = "DeepSpeed settings honoured: " + join(c.sharding.honoured, ", ");
    if (c.sharding.ignored.empty()) {
      c.notes.push_back(line + " (" + describe_strategy(sharding_strategy(c.sharding)) + ")");
    } else {
      c.warnings.push_back(line + "; ignored: " + join(c.sharding.ignored, ", "));
    }
  } else if (c.sharding.mode == ShardingMode::kFsdp) {
    std::vector<std::string> vars;
    for (const auto& [k, v] : sharding_env(c.sharding)) vars.push_back(k + "=" + v);
    c.debug_notes.push_back("FSDP: " + describe_strategy(sharding_strategy(c.sharding)) +
                            "; the workers get " + join(vars, " "));
  }
  return c;
}

std::map<std::string, std::string> worker_env(const LaunchConfig& c, int local_rank, int restart_count,
                                              int cpu_count,
                                              const std::map<std::string, std::string>& parent_env) {
  const int local = c.local_world_size();
  const int rank = c.machine_rank * local + local_rank;
  std::map<std::string, std::string> e;
  auto s = [](auto v) { return std::to_string(v); };
  // torchrun's names.
  e["RANK"] = s(rank);
  e["LOCAL_RANK"] = s(local_rank);
  e["WORLD_SIZE"] = s(c.num_processes);
  e["LOCAL_WORLD_SIZE"] = s(local);
  e["GROUP_RANK"] = s(c.machine_rank);
  e["NODE_RANK"] = s(c.machine_rank);
  e["GROUP_WORLD_SIZE"] = s(c.num_machines);
  e["ROLE_RANK"] = s(rank);
  e["ROLE_WORLD_SIZE"] = s(c.num_processes);
  e["ROLE_NAME"] = "default";
  e["MASTER_ADDR"] = c.num_machines == 1 ? std::string("127.0.0.1") : c.main_process_ip;
  e["MASTER_PORT"] = s(c.main_process_port);
  e["TORCHELASTIC_RESTART_COUNT"] = s(restart_count);
  e["TORCHELASTIC_MAX_RESTARTS"] = s(c.max_restarts);
  e["TORCHELASTIC_RUN_ID"] = c.run_id;
  // Accelerate's names.
  e["ACCELERATE_MIXED_PRECISION"] = c.mixed_precision;
  e["ACCELERATE_GRADIENT_ACCUMULATION_STEPS"] = s(c.gradient_accumulation_steps);
  e["ACCELERATE_USE_CPU"] = c.use_cpu ? "True" : "False";
  e["ACCELERATE_DEBUG_MODE"] = c.debug ? "true" : "false";
  e["ACCELERATE_NUM_PROCESSES"] = s(c.num_processes);
  for (const auto& [k, v] : sharding_env(c.sharding)) e[k] = v;
  if (c.gpu_ids != "all" && !c.gpu_ids.empty()) e["CUDA_VISIBLE_DEVICES"] = c.gpu_ids;
  if (c.num_cpu_threads_per_process) {
    e["OMP_NUM_THREADS"] = s(*c.num_cpu_threads_per_process);
  } else if (parent_env.find("OMP_NUM_THREADS") == parent_env.end()) {
    e["OMP_NUM_THREADS"] = s(std::max(1, cpu_count / std::max(1, local)));
  }
  e["ACCEL_LAUNCHED"] = "1";
  return e;
}

std::vector<std::string> merge_env(const std::map<std::string, std::string>& parent_env,
                                   const std::map<std::string, std::string>& overlay) {
  std::map<std::string, std::string> all = parent_env;
  for (const auto& [k, v] : overlay) all[k] = v;
  std::vector<std::string> out;
  out.reserve(all.size());
  for (const auto& [k, v] : all) out.push_back(k + "=" + v);
  return out;
}

std::map<std::string, std::string> current_env() {
  std::map<std::string, std::string> m;
  for (char** p = environ; p != nullptr && *p != nullptr; ++p) {
    const char* eq = std::strchr(*p, '=');
    if (eq == nullptr) continue;
    m.emplace(std::string(*p, static_cast<size_t>(eq - *p)), std::string(eq + 1));
  }
  return m;
}

int available_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int detect_visible_gpus() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/driver/nvidia/gpus")) {
    while (const dirent* ent = ::readdir(d))
      if (ent->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  if (const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES")) {
    const std::string v = cvd;
    const int listed = v.empty() ? 0 : static_cast<int>(std::count(v.begin(), v.end(), ',')) + 1;
    n = std::min(n, listed);
  }
  return n;
}

bool port_is_free(int port) {
  const int fd = make_socket();
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

int find_free_port() {
  const int fd = make_socket();
  if (fd < 0) throw std::runtime_error(std::string("socket() failed: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("cannot find a free port on 127.0.0.1: ") + std::strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

PortChoice choose_port(const LaunchConfig& c) {
  PortChoice pc;
  pc.port = c.main_process_port;
  if (c.num_machines == 1) {
    if (c.main_process_port == 0) {
      pc.port = find_free_port();
      pc.note = "main_process_port 0: using free port " + std::to_string(pc.port);
    } else if (!port_is_free(c.main_process_port)) {
      pc.port = find_free_port();
      pc.note = "port " + std::to_string(c.main_process_port) + " is busy; using free port " +
                std::to_string(pc.port) + " instead";
    }
    return pc;
  }
  if (c.main_process_port == 0)
    throw UsageError("main_process_port 0 (pick a free port) only works on one machine; with " +
                     std::to_string(c.num_machines) +
                     " machines give every machine the same --main_process_port");
  if (c.machine_rank == 0 && !port_is_free(c.main_process_port))
    throw UsageError("port " + std::to_string(c.main_process_port) +
                     " is busy on this machine (machine_rank 0), so the other machines cannot "
                     "rendezvous on it. HINT: pick another --main_process_port and give it to "
                     "every machine");
  return pc;
}

std::string find_program(const std::string& program, const std::string& path_env) {
  if (program.empty()) return "";
  if (program.find('/') != std::string::npos) return program;
  size_t start = 0;
  while (true) {
    const size_t colon = path_env.find(':', start);
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on `dir = "."` here.
    std::string cand = path_env.substr(start, colon == std::string::npos ? colon : colon - start);
    if (cand.empty()) cand.push_back('.');
    cand.push_back('/');
    cand.append(program);
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0)
      return cand;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

std::string self_exe_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string p(buf, static_cast<size_t>(n));
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? std::string() : p.substr(0, slash == 0 ? 1 : slash);
}

std::string find_check_program(const std::string& self_dir, const std::string& path_env) {
  if (!self_dir.empty()) {
    const std::string cand = self_dir + "/accel-check";
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0)
      return cand;
  }
  return find_program("accel-check", path_env);
}

}  // namespace accel::launcher
