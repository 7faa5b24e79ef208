// The CUDA side of accel/bench/cuda_graph.h: at::cuda::CUDAGraph on a side stream. Built only with
// a CUDA torch and nvcc; src/bench/cuda_graph.cpp reaches it through detail::cuda_graph_ops().
#include "accel/bench/cuda_graph.h"

#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

namespace accel::bench {

struct CudaGraphStep::Impl {
  at::cuda::CUDAGraph graph;
  bool captured = false;
};

namespace {

CudaGraphStep::Impl* create() {
  return new CudaGraphStep::Impl();
}

void destroy(CudaGraphStep::Impl* impl) {
  delete impl;
}

void capture(CudaGraphStep::Impl* impl, const std::function<void()>& step) {
  TORCH_CHECK(!impl->captured, "CudaGraphStep::capture: this step is already captured");
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  c10::cuda::device_synchronize();  // the side stream must see everything queued so far
  {
    const c10::cuda::CUDAStreamGuard guard(side);
    step();  // eager warm-up on the side stream (its cuBLAS workspace, lazy initialisation)
    side.synchronize();
    at::autocast::clear_cache();  // casts cached by the warm-up would be skipped by the capture
    impl->graph.capture_begin();
    try {
      step();
    } catch (...) {
      try {
        impl->graph.capture_end();
      } catch (...) {
      }
      throw;
    }
    impl->graph.capture_end();
  }
  impl->graph.replay();  // capture records without running: this is the captured step's real run
  c10::cuda::device_synchronize();
  impl->captured = true;
}

void replay(CudaGraphStep::Impl* impl) {
  TORCH_CHECK(impl->captured, "CudaGraphStep::replay: nothing captured yet");
  impl->graph.replay();
}

const detail::CudaGraphOps kOps{&create, &destroy, &capture, &replay};

}  // namespace

const detail::CudaGraphOps* detail::cuda_graph_ops() {
  return &kOps;
}

}  // namespace accel::bench
