#include "accel/core/state.h"

#include "accel/core/error.h"

#include <torch/cuda.h>

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace accel {

int cuda_device_count() {
  return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

namespace {

// The value of a "key<tabs>: value" line of /proc/cpuinfo, or nullopt when `line` is another key.
std::optional<std::string> cpuinfo_value(const std::string& line, const char* key) {
  if (line.rfind(key, 0) != 0) return std::nullopt;
  const auto colon = line.find(':');
  if (colon == std::string::npos) return std::nullopt;
  // The key is followed only by blanks up to the colon (so "model" does not match "model name").
  for (size_t i = std::char_traits<char>::length(key); i < colon; ++i) {
    if (line[i] != ' ' && line[i] != '\t') return std::nullopt;
  }
  size_t b = colon + 1;
  while (b < line.size() && (line[b] == ' ' || line[b] == '\t')) ++b;
  size_t e = line.size();
  while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r')) --e;
  return line.substr(b, e - b);
}

std::optional<int> to_int(const std::string& s) {
  int v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

CpuInfo parse_cpuinfo(const std::string& text) {
  CpuInfo info;
  std::istringstream in(text);
  std::string line;
  bool have_flags = false;
  int phys = 0;
  std::set<std::pair<int, int>> cores;
  while (std::getline(in, line)) {
    if (auto v = cpuinfo_value(line, "model name"); v && info.model_name.empty()) {
      info.model_name = *v;
    } else if (auto m = cpuinfo_value(line, "Model"); m && info.model_name.empty()) {
      info.model_name = *m;
    } else if (auto f = cpuinfo_value(line, "flags"); f && !have_flags) {
      std::istringstream words(*f);
      for (std::string w; words >> w;) info.flags.insert(w);
      have_flags = true;
    } else if (auto a = cpuinfo_value(line, "Features"); a && !have_flags) {
      std::istringstream words(*a);
      for (std::string w; words >> w;) info.flags.insert(w);
      have_flags = true;
    } else if (auto p = cpuinfo_value(line, "physical id")) {
      phys = to_int(*p).value_or(0);
    } else if (auto c = cpuinfo_value(line, "core id")) {
      if (auto id = to_int(*c)) cores.emplace(phys, *id);
    }
  }
  info.physical_cores = static_cast<int>(cores.size());
  return info;
}

const CpuInfo& cpu_info() {
  static const CpuInfo info = [] {
    std::ifstream in("/proc/cpuinfo");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_cpuinfo(text.str());
  }();
  return info;
}

bool cpu_has_native_bf16(const CpuInfo& info) {
  return info.flags.count("avx512_bf16") || info.flags.count("amx_bf16") || info.flags.count("bf16");
}

bool cpu_has_native_fp16(const CpuInfo& info) {
  return info.flags.count("avx512_fp16") || info.flags.count("amx_fp16") || info.flags.count("asimdhp");
}

ProcessState make_process_state(const ProcessEnv& env, bool cpu, int device_count) {
  ProcessState s;
  s.rank = env.rank;
  s.local_rank = env.local_rank;
  s.world_size = env.world_size;
  s.local_world_size = env.local_world_size;
  s.node_rank = env.node_rank;
  s.num_nodes = env.num_nodes;
  s.master_addr = env.master_addr;
  s.master_port = env.master_port;
  if (env.torch_device) {
    try {
      s.device = c10::Device(*env.torch_device);
    } catch (const c10::Error&) {
      ACCEL_CHECK(false, "ACCELERATE_TORCH_DEVICE='", *env.torch_device,
                  "' is not a device; accepted: cpu, cuda, cuda:N.");
    }
  } else if (!cpu && device_count > 0) {
    s.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank % device_count));
  } else {
    s.device = c10::Device(c10::kCPU);
  }
  return s;
}

}  // namespace accel
