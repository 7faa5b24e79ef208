// CUDA-graph capture of a whole training step for fixed shapes (the precision benchmark's
// --cuda_graph): the step's kernels are recorded once and replayed with one launch, which removes
// the CPU's per-kernel launch cost. Builds without CUDA compile it and report it unavailable.
#pragma once

#include <functional>

namespace accel::bench {

/// Whether this build can capture CUDA graphs (a CUDA torch and nvcc at build time). A GPU is
/// still needed at run time.
bool cuda_graphs_available();

/// One captured step. Contract: the step runs the same kernels on tensors of the same shapes
/// every time and never reads a GPU value on the host (no .item(), no data-dependent shapes);
/// tensors it allocates keep their addresses across replays (its outputs are read after replay).
/// Run the step eagerly at least once before capture (optimizer state, lazy initialisation).
class CudaGraphStep {
 public:
  /// Throws accel::Error when cuda_graphs_available() is false.
  CudaGraphStep();
  ~CudaGraphStep();
  CudaGraphStep(const CudaGraphStep&) = delete;
  CudaGraphStep& operator=(const CudaGraphStep&) = delete;

  /// Runs `step` once eagerly on a side stream (warm-up of that stream), captures one run of it on
  /// that stream (autocast's weight-cast cache is cleared first so that the casts are recorded),
  /// replays it once and waits: two real steps in all.
  void capture(const std::function<void()>& step);
  /// Launches the recorded step on the current stream (asynchronous). Throws before capture().
  void replay();

  struct Impl;

 private:
  Impl* impl_ = nullptr;  // owned; created and destroyed by the CUDA side
};

namespace detail {
/// The CUDA side's entry points.
struct CudaGraphOps {
  CudaGraphStep::Impl* (*create)();
  void (*destroy)(CudaGraphStep::Impl*);
  void (*capture)(CudaGraphStep::Impl*, const std::function<void()>&);
  void (*replay)(CudaGraphStep::Impl*);
};
/// Defined by src/bench/cuda_graph_cuda.cu, which only CUDA builds compile; src/bench/cuda_graph.cpp
/// calls it only then (ACCEL_BENCH_CUDA_GRAPHS). A direct reference, not a registration at load
/// time: accel_bench is a static library, and the linker would drop an object nothing refers to.
const CudaGraphOps* cuda_graph_ops();
}  // namespace detail

}  // namespace accel::bench
