// CudaGraphStep (accel/bench/cuda_graph.h): forwards to the CUDA side when it is built.
#include "accel/bench/cuda_graph.h"

#include "accel/core/error.h"

namespace accel::bench {
namespace {

// The CUDA side when this build has it (src/CMakeLists.txt defines ACCEL_BENCH_CUDA_GRAPHS=1 when
// it compiles src/bench/cuda_graph_cuda.cu), else none.
const detail::CudaGraphOps* available_ops() {
#if defined(ACCEL_BENCH_CUDA_GRAPHS) && ACCEL_BENCH_CUDA_GRAPHS
  return detail::cuda_graph_ops();
#else
  return nullptr;
#endif
}

const detail::CudaGraphOps& ops() {
  const auto* o = available_ops();
  ACCEL_CHECK(o != nullptr,
              "CUDA graphs are not available in this build (it has no CUDA torch or was built without nvcc). "
              "HINT: build against a CUDA libtorch with the CUDA toolkit installed, or drop --cuda_graph.");
  return *o;
}
}  // namespace

bool cuda_graphs_available() {
  return available_ops() != nullptr;
}

CudaGraphStep::CudaGraphStep() : impl_(ops().create()) {}

CudaGraphStep::~CudaGraphStep() {
  if (impl_ != nullptr) ops().destroy(impl_);
}

void CudaGraphStep::capture(const std::function<void()>& step) {
  ops().capture(impl_, step);
}

void CudaGraphStep::replay() {
  ops().replay(impl_);
}

}  // namespace accel::bench
