// Memory measurements for benchmarks: a counting CPU allocator (current and peak bytes held by
// CPU tensors, installed in front of c10's), the process's peak resident set (VmHWM), and the
// CUDA caching allocator's peak statistics when a GPU is present.
#pragma once

#include <cstdint>
#include <optional>

namespace accel::bench {

/// Installs a c10::Allocator wrapper as the CPU allocator (c10::SetCPUAllocator with priority
/// kCountingAllocatorPriority) that counts the bytes it hands out and gets back. Call it before
/// the first tensor of the process exists for exact counts (tensors made earlier are freed
/// correctly but not counted). Idempotent. Returns false when another allocator of higher
/// priority is already installed (then nothing is counted).
bool install_counting_cpu_allocator();
/// Priority given to c10::SetCPUAllocator (above the default allocator's 0).
inline constexpr uint8_t kCountingAllocatorPriority = 100;
/// Whether the counting allocator is the current CPU allocator.
bool counting_cpu_allocator_installed();
/// Bytes held by CPU tensors allocated through it right now.
int64_t cpu_tensor_bytes_current();
/// Highest cpu_tensor_bytes_current() since the last reset.
int64_t cpu_tensor_bytes_peak();
/// Sets the peak to the current value.
void reset_cpu_tensor_bytes_peak();

/// The process's peak resident set size (VmHWM in /proc/self/status), bytes; nullopt when
/// unavailable. It cannot be reset within a process.
std::optional<int64_t> peak_rss_bytes();
/// The current resident set size (VmRSS), bytes; nullopt when unavailable.
std::optional<int64_t> current_rss_bytes();

/// CUDA caching allocator statistics for one device (peaks since the last reset).
struct CudaMemoryStats {
  int64_t peak_allocated_bytes = 0;
  int64_t peak_reserved_bytes = 0;
  int64_t current_allocated_bytes = 0;
};
/// The stats of `device_index`; nullopt without CUDA (CPU build or no GPU).
std::optional<CudaMemoryStats> cuda_memory_stats(int device_index = 0);
/// Resets the CUDA peak statistics of `device_index` (and empties the cache); a no-op without
/// CUDA.
void reset_cuda_peak_memory(int device_index = 0);

}  // namespace accel::bench
