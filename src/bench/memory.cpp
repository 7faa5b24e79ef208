// Counting CPU allocator, VmHWM/VmRSS and CUDA caching-allocator statistics (see memory.h).
#include "accel/bench/memory.h"

#include <ATen/Context.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <string>
#include <unordered_map>

// CUDA memory statistics. torch gives consumers no USE_CUDA macro, and c10::cuda's
// CUDACachingAllocator needs libc10_cuda (absent from CPU builds). Since torch 2.9 the same
// statistics are reachable through the device-generic c10::DeviceAllocator interface, which is
// declared and linked in every build (CPU ones included) and dispatches at run time; we use it
// and only call it when torch::cuda::is_available(). Older torch: no CUDA statistics.
#if __has_include(<c10/core/CachingDeviceAllocator.h>) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9))
#define ACCEL_BENCH_HAS_DEVICE_ALLOCATOR_STATS 1
#include <c10/core/CachingDeviceAllocator.h>
#else
#define ACCEL_BENCH_HAS_DEVICE_ALLOCATOR_STATS 0
#endif

namespace accel::bench {
namespace {

// Wraps the allocator that was current at installation. When that allocator hands out "simple"
// pointers (context == data, with a raw deleter: c10's default CPU allocator does), ours does
// too, so is_simple_data_ptr() and the raw allocate/deallocate interface keep working; the size
// of each live block is kept in a table for the deleter. Otherwise each block gets a small
// context that owns the inner DataPtr and remembers its size.
class CountingAllocator final : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner), inner_raw_(inner->raw_deleter()) {}

  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr d = inner_->allocate(n);
    const c10::Device device = d.device();
    if (d.get() == nullptr) return d;  // zero bytes: nothing to count
    add(static_cast<int64_t>(n));
    if (inner_raw_ != nullptr && d.get() == d.get_context() && d.get_deleter() == inner_raw_) {
      void* p = d.release_context();
      {
        std::lock_guard<std::mutex> lock(mu_);
        sizes_[p] = n;
      }
      return {p, p, &raw_delete, device};
    }
    void* data = d.get();
    auto* ctx = new Block{std::move(d), n};
    return {data, ctx, &block_delete, device};
  }

  c10::DeleterFnPtr raw_deleter() const override { return inner_raw_ != nullptr ? &raw_delete : nullptr; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  int64_t current() const { return current_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(current_.load()); }

  static CountingAllocator* instance;

 private:
  struct Block {
    c10::DataPtr inner;
    size_t n;
  };

  void add(int64_t n) {
    const int64_t now = current_.fetch_add(n) + n;
    int64_t p = peak_.load();
    while (now > p && !peak_.compare_exchange_weak(p, now)) {
    }
  }
  void sub(int64_t n) { current_.fetch_sub(n); }

  static void raw_delete(void* p) {
    CountingAllocator* self = instance;
    size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      auto it = self->sizes_.find(p);
      if (it != self->sizes_.end()) {
        n = it->second;
        self->sizes_.erase(it);
      }
    }
    self->sub(static_cast<int64_t>(n));
    self->inner_raw_(p);
  }
  static void block_delete(void* ctx) {
    auto* b = static_cast<Block*>(ctx);
    instance->sub(static_cast<int64_t>(b->n));
    delete b;  // frees through the inner DataPtr's own deleter
  }

  c10::Allocator* inner_;
  c10::DeleterFnPtr inner_raw_;
  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
  std::atomic<int64_t> current_{0};
  std::atomic<int64_t> peak_{0};
};

CountingAllocator* CountingAllocator::instance = nullptr;
std::mutex g_install_mu;

std::optional<int64_t> status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      try {
        return static_cast<int64_t>(std::stoll(line.substr(key.size() + 1))) * 1024;
      } catch (...) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

bool install_counting_cpu_allocator() {
  std::lock_guard<std::mutex> lock(g_install_mu);
  if (CountingAllocator::instance == nullptr) {
    // Never destroyed: tensors may be freed during static destruction.
    CountingAllocator::instance = new CountingAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(CountingAllocator::instance, kCountingAllocatorPriority);
  }
  return counting_cpu_allocator_installed();
}

bool counting_cpu_allocator_installed() {
  return CountingAllocator::instance != nullptr && c10::GetCPUAllocator() == CountingAllocator::instance;
}

int64_t cpu_tensor_bytes_current() {
  return CountingAllocator::instance ? CountingAllocator::instance->current() : 0;
}

int64_t cpu_tensor_bytes_peak() {
  return CountingAllocator::instance ? CountingAllocator::instance->peak() : 0;
}

void reset_cpu_tensor_bytes_peak() {
  if (CountingAllocator::instance) CountingAllocator::instance->reset_peak();
}

std::optional<int64_t> peak_rss_bytes() {
  return status_kb("VmHWM");
}

std::optional<int64_t> current_rss_bytes() {
  return status_kb("VmRSS");
}

#if ACCEL_BENCH_HAS_DEVICE_ALLOCATOR_STATS
namespace {
// CUDA's caching allocator, set up first: it is created by CUDA's lazy initialisation, and before it
// every statistics call fails with "Invalid device argument" (seen on an H100 when nothing had
// touched CUDA yet).
c10::DeviceAllocator* cuda_allocator() {
  at::globalContext().lazyInitDevice(c10::DeviceType::CUDA);
  return c10::getDeviceAllocator(c10::kCUDA);
}
}  // namespace
#endif

std::optional<CudaMemoryStats> cuda_memory_stats(int device_index) {
#if ACCEL_BENCH_HAS_DEVICE_ALLOCATOR_STATS
  if (!torch::cuda::is_available()) return std::nullopt;
  auto* alloc = cuda_allocator();
  const auto stats = alloc->getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
  constexpr auto kAll = static_cast<size_t>(c10::CachingDeviceAllocator::StatType::AGGREGATE);
  CudaMemoryStats s;
  s.peak_allocated_bytes = stats.allocated_bytes[kAll].peak;
  s.peak_reserved_bytes = stats.reserved_bytes[kAll].peak;
  s.current_allocated_bytes = stats.allocated_bytes[kAll].current;
  return s;
#else
  (void)device_index;
  return std::nullopt;
#endif
}

void reset_cuda_peak_memory(int device_index) {
#if ACCEL_BENCH_HAS_DEVICE_ALLOCATOR_STATS
  if (!torch::cuda::is_available()) return;
  auto* alloc = cuda_allocator();
  alloc->emptyCache();
  alloc->resetPeakStats(static_cast<c10::DeviceIndex>(device_index));
#else
  (void)device_index;
#endif
}

}  // namespace accel::bench
