// `accel env`: a copy-paste block describing the build, LibTorch, the machine and the config file
// in use, for bug reports (like `accelerate env`). The one launcher file that includes torch.
#include "accel/launcher/cli.h"

#include "accel/core/state.h"
#include "accel/launcher/config_file.h"
#include "accel/launcher/questionnaire.h"

#include <sched.h>
#include <sys/utsname.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
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
    "system, CPU, memory and GPUs, and the config file `accel launch` would use, as a block to\n"
    "paste into a bug report.\n"
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
  const std::filesystem::path root("/proc/driver/nvidia/gpus");
  if (!std::filesystem::is_directory(root, ec)) return names;
  std::vector<std::filesystem::path> dirs;
  for (const auto& e : std::filesystem::directory_iterator(root, ec)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    std::string model = proc_field(read_file((d / "information").string()), "Model");
    names.push_back(model.empty() ? d.filename().string() : model + " (" + d.filename().string() + ")");
  }
  return names;
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
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
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
    std::error_code ec;
    if (!path.empty() && !std::filesystem::exists(path, ec)) {
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
