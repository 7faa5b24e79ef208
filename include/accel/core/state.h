// Process state: who this process is (rank, local rank, world size, machine) and which device
// it computes on, derived from the environment in one place.
#pragma once

#include "accel/core/env.h"

#include <c10/core/Device.h>

#include <optional>
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

/// Physical cores of this machine (from /proc/cpuinfo; falls back to logical cores).
int physical_core_count();

/// Whether this CPU has native bf16 matrix instructions (x86 avx512_bf16 / amx_bf16, or Arm
/// bf16). Without them LibTorch's bf16 matmuls on the CPU run several times slower than fp32.
bool cpu_has_native_bf16();

}  // namespace accel
