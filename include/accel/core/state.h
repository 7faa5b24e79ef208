// Process state: who this process is (rank, local rank, world size, machine) and which device
// it computes on, derived from the environment in one place.
#pragma once

#include "accel/core/env.h"

#include <c10/core/Device.h>

#include <optional>
#include <set>
#include <string>

namespace accel {

struct ProcessState {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  int node_rank = 0;
  int num_nodes = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  c10::Device device = c10::Device(c10::kCPU);

  bool distributed() const { return world_size > 1; }
  bool is_main_process() const { return rank == 0; }
  bool is_local_main_process() const { return local_rank == 0; }
  bool is_last_process() const { return rank == world_size - 1; }
};

/// Chooses the device: ACCELERATE_TORCH_DEVICE if set; else, unless `cpu`, CUDA device
/// local_rank mod device count when CUDA is available; else the CPU.
/// `cuda_device_count` is passed in so tests can pretend.
ProcessState make_process_state(const ProcessEnv& env, bool cpu, int cuda_device_count);

/// Number of CUDA devices visible to this process (0 when LibTorch has no CUDA).
int cuda_device_count();

/// What /proc/cpuinfo says about this machine's CPU (the one parser of that file).
struct CpuInfo {
  std::string model_name;       // "model name" (x86) or "Model" (Arm); empty when not listed
  std::set<std::string> flags;  // the first processor's "flags" (x86) or "Features" (Arm)
  int physical_cores = 0;       // distinct (physical id, core id) pairs; 0 when not listed
};

/// Parses the text of /proc/cpuinfo. Pure, so tests pass their own text; missing fields stay
/// empty / 0.
CpuInfo parse_cpuinfo(const std::string& text);

/// This machine's CpuInfo, read from /proc/cpuinfo once (all fields empty where it cannot be read).
const CpuInfo& cpu_info();

/// Whether the CPU has native bf16 matrix instructions (x86 avx512_bf16 / amx_bf16, or Arm
/// bf16). Without them LibTorch's bf16 matmuls and convolutions on the CPU run several times
/// slower than fp32.
bool cpu_has_native_bf16(const CpuInfo& info = cpu_info());

/// Whether the CPU has native fp16 arithmetic (x86 avx512_fp16 / amx_fp16, or Arm asimdhp).
bool cpu_has_native_fp16(const CpuInfo& info = cpu_info());

}  // namespace accel
