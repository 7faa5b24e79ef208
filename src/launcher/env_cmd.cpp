// `accel env`: a copy-paste block describing the build, LibTorch, the machine and the config file
// in use, for bug reports (like `accelerate env`). The one launcher file that includes torch.
#include "accel/launcher/cli.h"
#include "accel/core/fs.h"
#include "accel/core/state.h"
#include "accel/core/strings.h"
#include "accel/launcher/config_file.h"
#include "accel/launcher/launch.h"
#include "accel/launcher/questionnaire.h"

#include <sched.h>
#include <sys/utsname.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace accel::launcher {
namespace {

const char* kEnvHelp =
    "usage: accel env [--config_file PATH]\n"
    "\n"
    "Print accel's version and build options, the LibTorch version, the compiler, the operating\n"
    "system, CPU, memory and GPUs, and the config file `accel launch` would use with its sharded\n"
    "data parallel settings (FSDP / DeepSpeed, resolved as `accel launch` resolves them, and whether\n"
    "this build can run them), as a block to paste into a bug report.\n"
    "\n"
    "options:\n"
    "  --config_file PATH  the config file to show (default: the one `accel launch` would use:\n"
    "                      $ACCEL_CONFIG_FILE or ~/.cache/accel/default_config.yaml, else\n"
    "                      Accelerate's ~/.cache/huggingface/accelerate/default_config.yaml)\n"
    "  -h, --help          show this help\n";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value after "key<spaces>:" on the first line starting with `key` in a /proc file.
std::string proc_field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  }
  return "";
}

std::string gib(double kib) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2) << kib / (1024.0 * 1024.0) << " GiB";
  return os.str();
}

std::string yes_no(bool b) {
  return b ? "yes" : "no";
}

std::string cpu_summary() {
  const CpuInfo& info = cpu_info();
  const std::string model = info.model_name.empty() ? "unknown" : info.model_name;
  cpu_set_t set;
  CPU_ZERO(&set);
  int usable = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
  std::ostringstream os;
  os << model << " (" << sysconf(_SC_NPROCESSORS_ONLN) << " logical CPUs online";
  if (info.physical_cores > 0) os << ", " << info.physical_cores << " physical cores";
  if (usable > 0) os << ", " << usable << " usable by this process (nproc)";
  os << ")";
  return os.str();
}

std::vector<std::string> nvidia_gpu_names() {
  // The driver's /proc files need no CUDA headers, so this works with a CPU-only LibTorch too.
  std::vector<std::string> names;
  std::error_code ec;
  const std::string root = "/proc/driver/nvidia/gpus";
  for (const fs::DirEntry& d : fs::list_dir(root, ec)) {  // sorted by name
    std::string model = proc_field(read_file(fs::join(root, d.name, "information")), "Model");
    names.push_back(model.empty() ? d.name : model + " (" + d.name + ")");
  }
  return names;
}

// The sharded path `accel launch` would take with this config (no flags): the resolved FSDP /
// DeepSpeed settings, where each came from, the variables the workers get, and whether this build
// has the collectives to run it.
void write_sharding_report(std::ostream& out, const ClusterConfig& c, const std::string& config_file,
                           bool gloo, bool nccl_usable) {
  LaunchArgs args;
  args.config_file = config_file;
  std::vector<std::string> warnings;
  ShardingSettings s;
  try {
    s = resolve_sharding(args, c, &warnings);
  } catch (const UsageError& e) {
    out << "- Sharded data parallel: the config's settings are not valid: " << e.what() << "\n";
    return;
  }
  if (s.mode == ShardingMode::kNone) {
    out << "- Sharded data parallel: no (distributed_type " << c.distributed_type.value_or("NO")
        << "; --use_fsdp or --use_deepspeed at launch turns it on)\n";
    return;
  }
  const bool fsdp = s.mode == ShardingMode::kFsdp;
  out << "- Sharded data parallel: "
      << (fsdp ? "FSDP, fsdp_version " + s.get("fsdp_version").value_or("1") : "DeepSpeed ZeRO")
      << ", strategy " << describe_strategy(sharding_strategy(s)) << "\n";
  for (const auto& [name, value] : s.values) {
    const auto origin = s.origin.find(name);
    out << "\t- " << name << ": " << value << " ("
        << (origin == s.origin.end() ? "config file" : origin->second) << ")\n";
  }
  if (!fsdp) {
    out << "\t- honoured: " << (s.honoured.empty() ? "-" : join(s.honoured, ", ")) << "\n";
    if (!s.ignored.empty()) out << "\t- ignored: " << join(s.ignored, ", ") << "\n";
  }
  for (const auto& w : warnings) out << "\t- warning: " << w << "\n";
  std::vector<std::string> vars;
  for (const auto& [k, v] : sharding_env(s)) vars.push_back(k + "=" + v);
  out << "\t- the workers get: " << join(vars, " ") << "\n";
  const bool on_cpu = c.use_cpu.value_or(false) || upper(c.distributed_type.value_or("")) == "MULTI_CPU";
  if (on_cpu) {
    out << "- Sharded data parallel runs here: "
        << (gloo ? "yes, CPU processes over Gloo" : "no: Gloo is not built") << "\n";
  } else {
    out << "- Sharded data parallel runs here: "
        << (nccl_usable ? "yes, GPUs over NCCL"
            : gloo      ? "not on GPUs (no NCCL with a CUDA device here); on CPU processes over Gloo: yes"
                        : "no: neither NCCL with a CUDA device nor Gloo")
        << "\n";
  }
}

}  // namespace

int cuda_device_count() {
  try {
    return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

void write_env_report(std::ostream& out, const std::string& config_file_arg) {
#if defined(USE_C10D_GLOO)
  const bool gloo = true;
#else
  const bool gloo = false;
#endif
#if defined(USE_C10D_NCCL)
  const bool nccl = true;
#else
  const bool nccl = false;
#endif
  bool cuda = false;
  int devices = 0;
  try {
    cuda = torch::cuda::is_available();
    devices = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (const std::exception&) {
  }

  utsname u{};
  std::string platform = "unknown";
  if (uname(&u) == 0) platform = std::string(u.sysname) + "-" + u.release + "-" + u.machine;
  std::string distro;
  {
    std::istringstream in(read_file("/etc/os-release"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("PRETTY_NAME=", 0) == 0) distro = line.substr(12);
    }
  }
  distro.erase(std::remove(distro.begin(), distro.end(), '"'), distro.end());
  const std::string exe = fs::read_symlink("/proc/self/exe").value_or("");
  const std::string meminfo = read_file("/proc/meminfo");
  auto kib = [&](const std::string& key) {
    std::string v = proc_field(meminfo, key);
    return v.empty() ? 0.0 : std::stod(v);
  };

  out << "Copy-and-paste the text below in your GitHub issue\n\n";
  out << "- `accel` version: " << version() << "\n";
  out << "- `accel` binary: " << (exe.empty() ? "unknown" : exe) << "\n";
  out << "- Build: LibTorch " << TORCH_VERSION << " (C++ API, _GLIBCXX_USE_CXX11_ABI="
#if defined(_GLIBCXX_USE_CXX11_ABI)
      << _GLIBCXX_USE_CXX11_ABI
#else
      << "n/a"
#endif
      << "); CUDA backend (NCCL) compiled: " << yes_no(nccl)
      << "; Gloo (CPU collectives) compiled: " << yes_no(gloo) << "\n";
  out << "- Compiler: "
#if defined(__clang__)
      << "clang "
#elif defined(__GNUC__)
      << "GCC "
#endif
      << __VERSION__ << "\n";
  const long cxx = __cplusplus;
  out << "- C++ standard: C++"
      << (cxx > 202002L    ? "23"
          : cxx >= 202002L ? "20"
          : cxx >= 201703L ? "17"
                           : "14")
      << " (__cplusplus " << cxx << ")\n";
  out << "- Platform: " << platform << (distro.empty() ? "" : " (" + distro + ")") << "\n";
  out << "- CPU: " << cpu_summary() << "\n";
  out << "- System RAM: " << gib(kib("MemTotal")) << " total, " << gib(kib("MemAvailable")) << " available\n";
  out << "- CUDA available: " << yes_no(cuda) << " (" << devices << " device" << (devices == 1 ? "" : "s")
      << " visible to LibTorch)\n";
  const auto gpus = nvidia_gpu_names();
  out << "- GPU type: " << (gpus.empty() ? "none found (/proc/driver/nvidia)" : "") << "\n";
  for (const auto& g : gpus) out << "\t- " << g << "\n";
  out << "- Distributed backends: gloo " << (gloo ? "available" : "not built") << ", nccl "
      << (nccl ? (cuda ? "available" : "built, but no CUDA device") : "not built") << "\n";
  const char* env_names[] = {"CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "ACCEL_CONFIG_FILE", "HF_HOME"};
  for (const char* n : env_names) {
    if (const char* v = std::getenv(n)) out << "- $" << n << ": " << v << "\n";
  }

  std::string config_file = config_file_arg.empty() ? find_default_config() : config_file_arg;
  if (config_file.empty()) {
    out << "- `accel` config: not found (looked at " << default_config_path() << " and "
        << accelerate_default_config_path() << ")\n";
    return;
  }
  out << "- `accel` config file: " << config_file << "\n";
  try {
    ClusterConfig c = load_config_file(config_file);
    out << "- `accel` config:\n";
    std::istringstream lines(config_to_yaml(c));
    std::string line;
    while (std::getline(lines, line)) out << "\t- " << line << "\n";
    write_sharding_report(out, c, config_file, gloo, nccl && cuda);
  } catch (const c10::Error& e) {
    out << "- `accel` config: cannot be loaded: " << e.what_without_backtrace() << "\n";
  }
}

int env_main(const std::vector<std::string>& args) {
  try {
    detail::ParsedArgs a = detail::parse_flags(args, {{"--config_file", 1}}, "accel env");
    if (a.help) {
      std::cout << kEnvHelp;
      return 0;
    }
    if (!a.positional.empty()) {
      std::cerr << "accel env: error: unexpected argument '" << a.positional[0]
                << "'. HINT: see `accel env --help`.\n";
      return 2;
    }
    const std::string path = a.get("--config_file");
    if (!path.empty() && !fs::exists(path)) {
      std::cerr << "accel env: error: config file " << path
                << " does not exist. HINT: pass an existing file, "
                   "or leave --config_file out to show the default one.\n";
      return 1;
    }
    write_env_report(std::cout, path);
    std::cout << std::flush;
    return 0;
  } catch (const detail::UsageError& e) {
    std::cerr << "accel env: error: " << e.what_without_backtrace() << "\n";
    return 2;
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const c10::Error*>(&e);
    std::cerr << "accel env: error: " << (ce ? ce->what_without_backtrace() : e.what()) << "\n";
    return 1;
  }
}

}  // namespace accel::launcher
