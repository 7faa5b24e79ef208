#include "accel/core/state.h"

#include "accel/core/error.h"

#include <torch/cuda.h>

#include <fstream>
#include <set>
#include <thread>

namespace accel {

int cuda_device_count() {
  return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
}

int physical_core_count() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int phys = 0;
  while (std::getline(in, line)) {
    if (line.rfind("physical id", 0) == 0) phys = std::stoi(line.substr(line.find(':') + 1));
    if (line.rfind("core id", 0) == 0) cores.emplace(phys, std::stoi(line.substr(line.find(':') + 1)));
  }
  int logical = static_cast<int>(std::thread::hardware_concurrency());
  if (cores.empty()) return std::max(1, logical);
  return static_cast<int>(cores.size());
}

bool cpu_has_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0) {
      return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos ||
             line.find(" bf16") != std::string::npos;
    }
  }
  return false;
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
