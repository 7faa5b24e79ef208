// Autocast on the CPU with fp32 compute for bf16/fp16 linear and attention (precision/cpu_compute.h):
// the mode switch, the dispatcher override, its numerics against torch's native kernels, and how
// the Accelerator picks the mode.
#include "accel/accelerator.h"
#include "accel/core/error.h"
#include "accel/precision/autocast.h"
#include "accel/precision/cpu_compute.h"
#include "support/cpu_compute_mode.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/nn/modules/linear.h>

using namespace accel;

namespace {

using ModeRestorer = accel::testing::CpuComputeModeRestorer;

struct LinearRun {
  at::Tensor y, gx, gw, gb;
};

// y = linear(x, w, b) under CPU autocast in `dt`, loss = sum(y^2) in fp32, one backward.
LinearRun run_linear(c10::ScalarType dt, const at::Tensor& x0, const at::Tensor& w0, const at::Tensor& b0) {
  auto x = x0.clone().requires_grad_(true);
  auto w = w0.clone().requires_grad_(true);
  auto b = b0.clone().requires_grad_(true);
  at::Tensor y;
  {
    AutocastGuard g(c10::kCPU, dt);
    y = at::linear(x, w, b);
  }
  y.to(at::kFloat).pow(2).sum().backward();
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  auto a32 = a.to(at::kFloat), b32 = b.to(at::kFloat);
  return ((a32 - b32).abs().max() / b32.abs().max().clamp_min(1e-12)).item<double>();
}

}  // namespace

TEST(CpuAutocastCompute, ParsesModesAndRejectsOthers) {
  EXPECT_FALSE(parse_cpu_autocast_compute("auto").has_value());
  EXPECT_EQ(parse_cpu_autocast_compute("fp32"), CpuAutocastCompute::kFp32);
  EXPECT_EQ(parse_cpu_autocast_compute("native"), CpuAutocastCompute::kNative);
  try {
    parse_cpu_autocast_compute("fast");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ACCEL_CPU_AUTOCAST_COMPUTE='fast'"), std::string::npos) << e.what();
  }
}

TEST(CpuAutocastCompute, AutoFollowsTheCpusInstructions) {
  EXPECT_EQ(resolve_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kNative),
            CpuAutocastCompute::kNative);
  EXPECT_EQ(resolve_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32),
            CpuAutocastCompute::kFp32);
  EXPECT_EQ(resolve_cpu_autocast_compute(at::kBFloat16, std::nullopt),
            cpu_has_native_bf16() ? CpuAutocastCompute::kNative : CpuAutocastCompute::kFp32);
  EXPECT_EQ(resolve_cpu_autocast_compute(at::kHalf, std::nullopt),
            cpu_has_native_fp16() ? CpuAutocastCompute::kNative : CpuAutocastCompute::kFp32);
  EXPECT_THROW(set_cpu_autocast_compute(at::kFloat, CpuAutocastCompute::kFp32), Error);
}

TEST(CpuAutocastCompute, LinearForwardIsTheFp32ProductOfRoundedInputs) {
  ModeRestorer restore;
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32);
  auto x = at::randn({3, 5, 48}), w = at::randn({24, 48}), b = at::randn({24});
  const auto calls = cpu_autocast_fp32_compute_calls();
  auto run = run_linear(at::kBFloat16, x, w, b);
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls + 1) << "the override did not run";
  EXPECT_EQ(run.y.scalar_type(), at::kBFloat16);
  EXPECT_EQ(run.y.sizes(), (at::IntArrayRef{3, 5, 24}));
  auto r = [](const at::Tensor& t) { return t.to(at::kBFloat16).to(at::kFloat); };
  auto expected = at::linear(r(x), r(w), r(b)).to(at::kBFloat16);
  EXPECT_TRUE(at::equal(run.y, expected))
      << "max diff " << (run.y.to(at::kFloat) - expected.to(at::kFloat)).abs().max();
  // Gradients reach the fp32 leaves in fp32, like native autocast.
  EXPECT_EQ(run.gx.scalar_type(), at::kFloat);
  EXPECT_EQ(run.gw.scalar_type(), at::kFloat);
  EXPECT_EQ(run.gb.scalar_type(), at::kFloat);
}

TEST(CpuAutocastCompute, LinearAgreesWithTorchsNativeKernels) {
  ModeRestorer restore;
  auto x = at::randn({4, 7, 64}), w = at::randn({32, 64}) * 0.1, b = at::randn({32});
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    set_cpu_autocast_compute(dt, CpuAutocastCompute::kNative);
    auto native = run_linear(dt, x, w, b);
    set_cpu_autocast_compute(dt, CpuAutocastCompute::kFp32);
    auto fp32 = run_linear(dt, x, w, b);
    // Same roundings; only the summation order differs: a few units in the last bf16/fp16 place.
    const double tol = dt == at::kBFloat16 ? 2e-2 : 4e-3;
    EXPECT_EQ(fp32.y.scalar_type(), dt);
    EXPECT_LT(rel_err(fp32.y, native.y), tol) << dt;
    EXPECT_LT(rel_err(fp32.gx, native.gx), tol) << dt;
    EXPECT_LT(rel_err(fp32.gw, native.gw), tol) << dt;
    EXPECT_LT(rel_err(fp32.gb, native.gb), tol) << dt;
    // And both are far from a plain fp32 run only by reduced-precision rounding.
    auto ref = at::linear(x, w, b);
    EXPECT_LT(rel_err(fp32.y, ref), 2 * tol) << dt;
  }
}

// LibTorch's nn::Linear does not call at::linear: addmm for 2-D inputs, matmul + bias otherwise.
// Both, and mm/bmm, take the fp32 path and agree with torch's native kernels.
TEST(CpuAutocastCompute, NnLinearMatmulMmAddmmBmm) {
  ModeRestorer restore;
  torch::manual_seed(3);
  torch::nn::Linear lin(32, 16);
  auto x3 = at::randn({2, 5, 32}), x2 = at::randn({6, 32});
  auto a3 = at::randn({4, 6, 8}), b3 = at::randn({4, 8, 5});
  auto run = [&](CpuAutocastCompute mode) {
    set_cpu_autocast_compute(at::kBFloat16, mode);
    for (auto& p : lin->parameters()) p.mutable_grad() = at::Tensor();
    auto a = a3.clone().requires_grad_(true);
    std::vector<at::Tensor> outs;
    {
      AutocastGuard g(c10::kCPU, at::kBFloat16);
      outs.push_back(lin(x3));                      // matmul + in-place bias
      outs.push_back(lin(x2));                      // addmm
      outs.push_back(at::mm(x2, lin->weight.t()));  // mm
      outs.push_back(at::bmm(a, b3));               // bmm
    }
    at::Tensor loss = at::zeros({});
    for (auto& o : outs) {
      EXPECT_EQ(o.scalar_type(), at::kBFloat16);
      loss = loss + o.to(at::kFloat).pow(2).sum();
    }
    loss.backward();
    outs.push_back(lin->weight.grad().clone());
    outs.push_back(lin->bias.grad().clone());
    outs.push_back(a.grad().clone());
    for (auto& o : outs) o = o.detach();
    return outs;
  };
  auto native = run(CpuAutocastCompute::kNative);
  const auto calls = cpu_autocast_fp32_compute_calls();
  auto fp32 = run(CpuAutocastCompute::kFp32);
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls + 4) << "not every product took the fp32 path";
  ASSERT_EQ(native.size(), fp32.size());
  for (size_t i = 0; i < native.size(); ++i) EXPECT_LT(rel_err(fp32[i], native[i]), 3e-2) << "output " << i;
}

TEST(CpuAutocastCompute, LinearWithoutBiasAndInputWithoutGrad) {
  ModeRestorer restore;
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32);
  auto x = at::randn({6, 16});  // no grad: only the weight gradient is computed
  auto w = at::randn({8, 16}).requires_grad_(true);
  at::Tensor y;
  {
    AutocastGuard g(c10::kCPU, at::kBFloat16);
    y = at::linear(x, w);
  }
  y.to(at::kFloat).sum().backward();
  ASSERT_TRUE(w.grad().defined());
  // d/dw sum(x w^T) = column sums of x for every output row (x rounded to bf16, result to bf16).
  auto expected = x.to(at::kBFloat16).to(at::kFloat).sum(0).expand({8, 16}).to(at::kBFloat16).to(at::kFloat);
  EXPECT_TRUE(at::allclose(w.grad(), expected, 0, 0)) << (w.grad() - expected).abs().max();
}

TEST(CpuAutocastCompute, AttentionMatchesNativeAndKeepsTheDtype) {
  ModeRestorer restore;
  auto q = at::randn({2, 4, 10, 8}), k = at::randn({2, 4, 10, 8}), v = at::randn({2, 4, 10, 8});
  auto mask = at::zeros({2, 1, 1, 10});
  mask.narrow(3, 7, 3).fill_(-1e4);
  auto run = [&](CpuAutocastCompute mode) {
    set_cpu_autocast_compute(at::kBFloat16, mode);
    auto qq = q.clone().requires_grad_(true);
    at::Tensor out;
    {
      AutocastGuard g(c10::kCPU, at::kBFloat16);
      out = at::scaled_dot_product_attention(qq, k, v, mask);
    }
    out.to(at::kFloat).sum().backward();
    return std::make_pair(out.detach(), qq.grad());
  };
  auto native = run(CpuAutocastCompute::kNative);
  const auto calls = cpu_autocast_fp32_compute_calls();
  auto fp32 = run(CpuAutocastCompute::kFp32);
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls + 1);
  EXPECT_EQ(fp32.first.scalar_type(), at::kBFloat16);
  EXPECT_LT(rel_err(fp32.first, native.first), 3e-2);
  EXPECT_LT(rel_err(fp32.second, native.second), 6e-2);
}

TEST(CpuAutocastCompute, NativeModeRemovesTheOverride) {
  ModeRestorer restore;
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32);
  set_cpu_autocast_compute(at::kHalf, CpuAutocastCompute::kNative);
  auto x = at::randn({4, 8}), w = at::randn({8, 8});
  auto calls = cpu_autocast_fp32_compute_calls();
  {
    AutocastGuard g(c10::kCPU, at::kHalf);  // fp16 stays native while bf16 is switched
    EXPECT_EQ(at::linear(x, w).scalar_type(), at::kHalf);
  }
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls);
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kNative);
  {
    AutocastGuard g(c10::kCPU, at::kBFloat16);
    EXPECT_EQ(at::linear(x, w).scalar_type(), at::kBFloat16);
  }
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls);
  // Outside autocast nothing changes either way.
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32);
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls);
}

TEST(CpuAutocastCompute, AcceleratorAppliesTheEnvironmentsChoice) {
  ModeRestorer restore;
  auto opts = [] { return AcceleratorOptions().mixed_precision("bf16").cpu(true); };
  {
    Accelerator acc(opts(), EnvMap{{"ACCEL_CPU_AUTOCAST_COMPUTE", "native"}});
    EXPECT_EQ(cpu_autocast_compute(at::kBFloat16), CpuAutocastCompute::kNative);
  }
  {
    Accelerator acc(opts(), EnvMap{{"ACCEL_CPU_AUTOCAST_COMPUTE", "fp32"}});
    EXPECT_EQ(cpu_autocast_compute(at::kBFloat16), CpuAutocastCompute::kFp32);
  }
  {
    Accelerator acc(opts(), EnvMap{});
    EXPECT_EQ(cpu_autocast_compute(at::kBFloat16), resolve_cpu_autocast_compute(at::kBFloat16, std::nullopt));
  }
  EXPECT_THROW(Accelerator(opts(), EnvMap{{"ACCEL_CPU_AUTOCAST_COMPUTE", "fast"}}), InputError);
}
