// The Accelerator's fused AdamW (at::_fused_adamw_) on CUDA parameters: the eligibility decision
// for CUDA-typed parameters checked without a GPU (placeholder tensors that carry a CUDA device
// and no data; nothing runs on them), and the fused step against torch's AdamW on a real GPU
// (skipped without one).
#include "support/compare.h"

#include <accel/accelerator.h>
#include <c10/core/Storage.h>
#include <c10/core/TensorImpl.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

namespace {

using accel::testing::tensors_close;

// A tensor of `n` floats whose device is cuda:0 but which owns no memory: enough for decisions
// that look at device, dtype and layout. No operator may run on it.
at::Tensor cuda_placeholder(int64_t n, caffe2::TypeMeta dtype = caffe2::TypeMeta::Make<float>()) {
  c10::Storage storage(c10::Storage::use_byte_size_t(), 0, c10::DataPtr(nullptr, c10::Device(c10::kCUDA, 0)),
                       /*allocator=*/nullptr, /*resizable=*/false);
  auto t = at::detail::make_tensor<c10::TensorImpl>(std::move(storage),
                                                    c10::DispatchKeySet(c10::DispatchKey::CUDA), dtype);
  t.unsafeGetTensorImpl()->set_sizes_contiguous({n});
  return t;
}

TEST(FusedAdamWCuda, CudaParametersTakeTheFusedKernel) {
  auto w = cuda_placeholder(4), b = cuda_placeholder(2);
  ASSERT_TRUE(w.is_cuda());
  accel::Accelerator acc(accel::AcceleratorOptions().cpu(true), accel::EnvMap{});
  auto opt =
      acc.prepare(torch::optim::AdamW(std::vector<at::Tensor>{w, b}, torch::optim::AdamWOptions(1e-3)));
  EXPECT_TRUE(opt->fused());
  // Off when asked, and for parameters on two devices or of two dtypes (one kernel call per group).
  accel::Accelerator off(accel::AcceleratorOptions().cpu(true).fused_optimizer(false), accel::EnvMap{});
  EXPECT_FALSE(off.prepare(torch::optim::AdamW(std::vector<at::Tensor>{w}, torch::optim::AdamWOptions(1e-3)))
                   ->fused());
  auto cpu = torch::zeros({3});
  EXPECT_FALSE(
      acc.prepare(torch::optim::AdamW(std::vector<at::Tensor>{w, cpu}, torch::optim::AdamWOptions(1e-3)))
          ->fused());
  auto half = cuda_placeholder(3, caffe2::TypeMeta::Make<c10::Half>());
  EXPECT_FALSE(
      acc.prepare(torch::optim::AdamW(std::vector<at::Tensor>{w, half}, torch::optim::AdamWOptions(1e-3)))
          ->fused());
  // Not AdamW: never fused.
  EXPECT_FALSE(
      acc.prepare(torch::optim::SGD(std::vector<at::Tensor>{w}, torch::optim::SGDOptions(0.1)))->fused());
}

TEST(FusedAdamWCuda, FusedStepMatchesTorchAdamWOnTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  auto run = [](bool fused) {
    accel::Accelerator acc(accel::AcceleratorOptions().fused_optimizer(fused), accel::EnvMap{});
    EXPECT_TRUE(acc.device().is_cuda());
    torch::manual_seed(13);
    torch::nn::Linear net(8, 4);
    auto model = acc.prepare(net);
    auto opt = acc.prepare(
        torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.05)));
    EXPECT_EQ(opt->fused(), fused);
    for (int s = 0; s < 5; ++s) {
      auto x = torch::randn({6, 8}).to(acc.device());
      acc.backward(model->forward(x).pow(2).mean());
      opt->step();
      opt->zero_grad();
    }
    return torch::cat({net->weight.flatten(), net->bias}).detach().cpu();
  };
  EXPECT_TRUE(tensors_close(run(true), run(false), 1e-5, 1e-6, "parameters after 5 steps"));
}

}  // namespace
