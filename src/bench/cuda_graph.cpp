// CudaGraphStep (accel/bench/cuda_graph.h): forwards to the CUDA side when it is built.
#include "accel/bench/cuda_graph.h"

#include "accel/core/error.h"

#include <atomic>

namespace accel::bench {
namespace {
std::atomic<const detail::CudaGraphOps*> g_ops{nullptr};

const detail::CudaGraphOps& ops() {
  const auto* o = g_ops.load();
  ACCEL_CHECK(o != nullptr,
              "CUDA graphs are not available in this build (it has no CUDA torch or was built without nvcc). "
              "HINT: build against a CUDA libtorch with the CUDA toolkit installed, or drop --cuda_graph.");
  return *o;
}
}  // namespace

namespace detail {
void register_cuda_graph_ops(const CudaGraphOps* o) {
  g_ops.store(o);
}
}  // namespace detail

bool cuda_graphs_available() {
  return g_ops.load() != nullptr;
}

CudaGraphStep::CudaGraphStep() : impl_(ops().create()) {}

CudaGraphStep::~CudaGraphStep() {
  if (impl_ != nullptr) g_ops.load()->destroy(impl_);
}

void CudaGraphStep::capture(const std::function<void()>& step) {
  ops().capture(impl_, step);
}

void CudaGraphStep::replay() {
  ops().replay(impl_);
}

}  // namespace accel::bench
