// Test helper: restores the process-wide CPU autocast compute modes (precision/cpu_compute.h) of
// bf16 and fp16 when a test ends, so tests do not leak that state into each other.
#pragma once

#include "accel/precision/cpu_compute.h"

namespace accel::testing {

class CpuComputeModeRestorer {
 public:
  CpuComputeModeRestorer()
      : bf16_(cpu_autocast_compute(at::kBFloat16)), half_(cpu_autocast_compute(at::kHalf)) {}
  ~CpuComputeModeRestorer() {
    set_cpu_autocast_compute(at::kBFloat16, bf16_);
    set_cpu_autocast_compute(at::kHalf, half_);
  }
  CpuComputeModeRestorer(const CpuComputeModeRestorer&) = delete;
  CpuComputeModeRestorer& operator=(const CpuComputeModeRestorer&) = delete;

 private:
  CpuAutocastCompute bf16_, half_;
};

}  // namespace accel::testing
