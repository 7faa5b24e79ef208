// Autocast on the CPU with fp32 compute for bf16/fp16 convolutions (precision/cpu_compute.h):
// conv1d/2d/3d (explicit, "same" and "valid" padding, unbatched inputs) and conv_transpose1d/2d/3d.
// Forward and every gradient against fp32 math on inputs rounded to the autocast dtype, against
// torch's native reduced-precision kernels, and what is saved for backward.
#include "accel/precision/autocast.h"
#include "accel/precision/cpu_compute.h"

#include "support/compare.h"
#include "support/cpu_compute_mode.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/nn/modules/conv.h>

#include <functional>
#include <string>
#include <vector>

using namespace accel;

namespace {

using ModeRestorer = accel::testing::CpuComputeModeRestorer;

using ConvFn =
    std::function<at::Tensor(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b)>;

struct ConvCase {
  std::string name;
  std::vector<int64_t> x, w;  // shapes
  bool bias;
  bool input_grad;  // false: like a network's first layer
  ConvFn fn;
};

std::vector<ConvCase> cases() {
  using B = const std::optional<at::Tensor>&;
  using T = const at::Tensor&;
  // clang-format off
  return {
      {"conv1d stride 2 padding 1", {2, 4, 17}, {6, 4, 3}, true, true,
       [](T x, T w, B b) { return at::conv1d(x, w, b, 2, 1); }},
      {"conv2d groups 2, stride (1,2), padding (1,0), dilation (2,1)", {2, 4, 9, 11}, {8, 2, 3, 3}, true, true,
       [](T x, T w, B b) { return at::conv2d(x, w, b, {1, 2}, {1, 0}, {2, 1}, 2); }},
      {"conv2d first layer (input without grad)", {4, 1, 12, 12}, {8, 1, 3, 3}, true, false,
       [](T x, T w, B b) { return at::conv2d(x, w, b); }},
      {"conv3d without bias", {2, 3, 5, 6, 7}, {4, 3, 2, 3, 3}, false, true,
       [](T x, T w, B b) { return at::conv3d(x, w, b); }},
      {"conv2d padding same, even kernel (asymmetric)", {2, 3, 8, 9}, {5, 3, 4, 2}, true, true,
       [](T x, T w, B b) { return at::conv2d(x, w, b, 1, "same"); }},
      {"conv1d padding same, dilation 2", {2, 3, 10}, {4, 3, 3}, true, true,
       [](T x, T w, B b) { return at::conv1d(x, w, b, 1, "same", 2); }},
      {"conv3d padding valid", {1, 2, 4, 5, 6}, {3, 2, 2, 2, 2}, true, true,
       [](T x, T w, B b) { return at::conv3d(x, w, b, 1, "valid"); }},
      {"conv2d unbatched input", {3, 8, 8}, {4, 3, 3, 3}, true, true,
       [](T x, T w, B b) { return at::conv2d(x, w, b, 1, 1); }},
      {"conv_transpose1d stride 2, padding 1, output_padding 1", {2, 4, 9}, {4, 3, 3}, true, true,
       [](T x, T w, B b) { return at::conv_transpose1d(x, w, b, 2, 1, 1); }},
      {"conv_transpose2d groups 2, stride 2, dilation 2", {2, 4, 5, 6}, {4, 3, 3, 3}, true, true,
       [](T x, T w, B b) { return at::conv_transpose2d(x, w, b, 2, 0, 1, 2, 2); }},
      {"conv_transpose3d stride 2, no bias", {1, 2, 3, 4, 5}, {2, 2, 2, 2, 2}, false, true,
       [](T x, T w, B b) { return at::conv_transpose3d(x, w, b, 2); }},
  };
  // clang-format on
}

struct ConvRun {
  at::Tensor y, gx, gw, gb;
};

// Inputs of one case: x, w, b in fp32, and R, the fixed upstream gradient (loss = sum(y * R)).
struct Inputs {
  at::Tensor x, w, b, r;
};

Inputs make_inputs(const ConvCase& c) {
  at::manual_seed(7);
  Inputs in;
  in.x = at::randn(c.x);
  in.w = at::randn(c.w) * 0.3;
  if (c.bias) {
    in.b = at::randn({c.fn(in.x, in.w, std::nullopt).size(c.x.size() == c.w.size() ? 1 : 0)});
  }
  in.r = at::randn(c.fn(in.x, in.w, std::nullopt).sizes());
  return in;
}

std::optional<at::Tensor> opt(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

// The case under CPU autocast in `dt`, loss = sum(y.float() * R), one backward.
ConvRun run_autocast(const ConvCase& c, const Inputs& in, c10::ScalarType dt) {
  auto x = in.x.clone().requires_grad_(c.input_grad);
  auto w = in.w.clone().requires_grad_(true);
  auto b = in.b.defined() ? in.b.clone().requires_grad_(true) : at::Tensor();
  at::Tensor y;
  {
    AutocastGuard g(c10::kCPU, dt);
    y = c.fn(x, w, opt(b));
  }
  (y.to(at::kFloat) * in.r).sum().backward();
  return {y.detach(), c.input_grad ? x.grad() : at::Tensor(), w.grad(),
          b.defined() ? b.grad() : at::Tensor()};
}

at::Tensor rounded(const at::Tensor& t, c10::ScalarType dt) {
  return t.defined() ? t.to(dt).to(at::kFloat) : t;
}

// The reference: fp32 math on x, w, b rounded to `dt`; the upstream gradient is R rounded to
// `dt` (autocast's output is in `dt`, so its gradient is too); the output and each gradient are
// rounded to `dt` once, as a kernel with fp32 accumulation does.
ConvRun run_reference(const ConvCase& c, const Inputs& in, c10::ScalarType dt) {
  auto x = rounded(in.x, dt).requires_grad_(c.input_grad);
  auto w = rounded(in.w, dt).requires_grad_(true);
  auto b = in.b.defined() ? rounded(in.b, dt).requires_grad_(true) : at::Tensor();
  at::Tensor y = c.fn(x, w, opt(b));
  y.backward(rounded(in.r, dt));
  return {rounded(y.detach(), dt), c.input_grad ? rounded(x.grad(), dt) : at::Tensor(), rounded(w.grad(), dt),
          b.defined() ? rounded(b.grad(), dt) : at::Tensor()};
}

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  auto a32 = a.to(at::kFloat), b32 = b.to(at::kFloat);
  return ((a32 - b32).abs().max() / b32.abs().max().clamp_min(1e-12)).item<double>();
}

}  // namespace

// The fp32 path is exactly "round the inputs, compute in fp32, round the result": forward and every
// gradient equal the fp32 reference bit for bit (same torch fp32 kernels, same roundings).
TEST(CpuAutocastConv, ForwardAndGradientsAreFp32MathOnRoundedInputs) {
  ModeRestorer restore;
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    set_cpu_autocast_compute(dt, CpuAutocastCompute::kFp32);
    for (const auto& c : cases()) {
      SCOPED_TRACE(c.name + (dt == at::kHalf ? " (fp16)" : " (bf16)"));
      const auto in = make_inputs(c);
      const auto calls = cpu_autocast_fp32_compute_calls();
      const ConvRun got = run_autocast(c, in, dt);
      EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls + 1) << "the override did not run";
      const ConvRun ref = run_reference(c, in, dt);
      EXPECT_EQ(got.y.scalar_type(), dt);
      EXPECT_TRUE(accel::testing::tensors_close(got.y.to(at::kFloat), ref.y, 0, 0, "output"));
      // Gradients reach the fp32 leaves in fp32, like native autocast.
      EXPECT_EQ(got.gw.scalar_type(), at::kFloat);
      EXPECT_TRUE(accel::testing::tensors_close(got.gw, ref.gw, 0, 0, "weight gradient"));
      if (c.input_grad) {
        EXPECT_TRUE(accel::testing::tensors_close(got.gx, ref.gx, 0, 0, "input gradient"));
      }
      if (c.bias) {
        EXPECT_TRUE(accel::testing::tensors_close(got.gb, ref.gb, 0, 0, "bias gradient"));
      }
    }
  }
}

// Against torch's own bf16/fp16 kernels: the same roundings of inputs and outputs, a different
// summation order (and the native kernels round some partial results), so the outputs and
// gradients differ by a few units in the last place of the reduced dtype, relative to the
// tensor's largest element: bf16 has 8 significant bits (2^-8 = 0.4 %), fp16 11 (0.05 %).
TEST(CpuAutocastConv, AgreesWithTorchsNativeKernels) {
  ModeRestorer restore;
  for (auto dt : {at::kBFloat16, at::kHalf}) {
    const double tol = dt == at::kBFloat16 ? 2e-2 : 4e-3;
    for (const auto& c : cases()) {
      SCOPED_TRACE(c.name + (dt == at::kHalf ? " (fp16)" : " (bf16)"));
      const auto in = make_inputs(c);
      set_cpu_autocast_compute(dt, CpuAutocastCompute::kNative);
      const ConvRun native = run_autocast(c, in, dt);
      set_cpu_autocast_compute(dt, CpuAutocastCompute::kFp32);
      const ConvRun fp32 = run_autocast(c, in, dt);
      EXPECT_EQ(native.y.scalar_type(), dt);
      EXPECT_LT(rel_err(fp32.y, native.y), tol);
      EXPECT_LT(rel_err(fp32.gw, native.gw), tol);
      if (c.input_grad) {
        EXPECT_LT(rel_err(fp32.gx, native.gx), tol);
      }
      if (c.bias) {
        EXPECT_LT(rel_err(fp32.gb, native.gb), tol);
      }
    }
  }
}

// Activation memory stays that of mixed precision: the convolution saves its reduced-precision
// input and weight (as a native bf16 kernel does), not fp32 copies.
TEST(CpuAutocastConv, SavesReducedPrecisionTensorsForBackward) {
  ModeRestorer restore;
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32);
  auto x = at::randn({2, 3, 8, 8}).requires_grad_(true);
  auto w = at::randn({4, 3, 3, 3}).requires_grad_(true);
  auto lw = at::randn({5, 16}).requires_grad_(true);
  at::Tensor conv, lin;
  {
    AutocastGuard g(c10::kCPU, at::kBFloat16);
    conv = at::conv2d(x, w);
    lin = at::linear(at::randn({4, 16}), lw);
  }
  EXPECT_EQ(accel::detail::cpu_compute_saved_dtypes(conv),
            (std::vector<c10::ScalarType>{at::kBFloat16, at::kBFloat16}));
  EXPECT_EQ(accel::detail::cpu_compute_saved_dtypes(lin),
            (std::vector<c10::ScalarType>{at::kBFloat16, at::kBFloat16}));
  EXPECT_TRUE(accel::detail::cpu_compute_saved_dtypes(at::conv2d(x, w)).empty())
      << "no autocast: torch's kernel";
}

// LibTorch's modules reach the same kernels: nn::Conv2d with explicit and "same" padding, a
// circular padding mode (padded first, then a convolution with padding 0), nn::ConvTranspose2d.
// Each takes the fp32 path once and keeps the dtype.
TEST(CpuAutocastConv, NnConvModulesTakeTheFp32Path) {
  ModeRestorer restore;
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32);
  torch::manual_seed(1);
  namespace nn = torch::nn;
  nn::Conv2d plain(nn::Conv2dOptions(1, 4, 3).padding(1));
  nn::Conv2d same(nn::Conv2dOptions(4, 4, 3).padding(torch::kSame));
  nn::Conv2d circular(nn::Conv2dOptions(4, 4, 3).padding(1).padding_mode(torch::kCircular));
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(4, 2, 2).stride(2));
  auto x = at::randn({2, 1, 6, 6});
  const auto calls = cpu_autocast_fp32_compute_calls();
  at::Tensor y;
  {
    AutocastGuard g(c10::kCPU, at::kBFloat16);
    y = up(circular(same(plain(x))));
  }
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls + 4);
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 2, 12, 12}));
  y.to(at::kFloat).sum().backward();
  for (auto* m : std::vector<nn::Module*>{plain.get(), same.get(), circular.get(), up.get()}) {
    for (const auto& p : m->parameters()) {
      ASSERT_TRUE(p.grad().defined());
      EXPECT_EQ(p.grad().scalar_type(), at::kFloat);
      EXPECT_TRUE(p.grad().isfinite().all().item<bool>());
    }
  }
}

// What the fp32 path does not take goes to torch's kernel unchanged: fp64 inputs (autocast does not
// cast them), stride 2 with "same" (torch's error), and convolutions outside autocast.
TEST(CpuAutocastConv, OtherInputsKeepTorchsBehaviour) {
  ModeRestorer restore;
  set_cpu_autocast_compute(at::kBFloat16, CpuAutocastCompute::kFp32);
  auto x = at::randn({1, 2, 6, 6}), w = at::randn({3, 2, 3, 3});
  const auto calls = cpu_autocast_fp32_compute_calls();
  {
    AutocastGuard g(c10::kCPU, at::kBFloat16);
    EXPECT_EQ(at::conv2d(x.to(at::kDouble), w.to(at::kDouble)).scalar_type(), at::kDouble);
    EXPECT_THROW(at::conv2d(x, w, {}, 2, "same"), c10::Error);
    EXPECT_THROW(at::conv2d(x, w, {}, 1, "full"), c10::Error);
  }
  EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kFloat);
  EXPECT_EQ(cpu_autocast_fp32_compute_calls(), calls);
}
