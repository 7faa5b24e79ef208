// accel::scaled_dot_product_attention (precision/attention.h): the CPU training kernel against
// torch's attention (outputs and every input gradient), with masks, causal, fully masked
// rows, dropout (against a reference that uses the same keep-mask), bf16 under autocast, and when
// torch's kernel runs instead.
#include "accel/core/error.h"
#include "accel/precision/attention.h"
#include "accel/precision/autocast.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <limits>
#include <mutex>
#include <string>

using namespace accel;

namespace {

struct Result {
  at::Tensor out, gq, gk, gv;
};

struct Inputs {
  at::Tensor q, k, v, go;
};

// q (B, N, T, D), k/v (B, N, S, D); a fixed upstream gradient.
Inputs make_inputs(int64_t B, int64_t N, int64_t T, int64_t S, int64_t D, uint64_t seed = 1) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto r = [&](std::initializer_list<int64_t> s) { return at::randn(s, g, at::TensorOptions(at::kFloat)); };
  return {r({B, N, T, D}), r({B, N, S, D}), r({B, N, S, D}), r({B, N, T, D})};
}

template <typename F>
Result run(const Inputs& in, F&& attend) {
  auto q = in.q.clone().requires_grad_(true), k = in.k.clone().requires_grad_(true),
       v = in.v.clone().requires_grad_(true);
  at::Tensor out = attend(q, k, v);
  (out.to(at::kFloat) * in.go).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kFloat) - b.to(at::kFloat)).abs().max().item<double>();
}

void expect_close(const Result& a, const Result& b, double tol) {
  EXPECT_LE(max_diff(a.out, b.out), tol);
  EXPECT_LE(max_diff(a.gq, b.gq), tol);
  EXPECT_LE(max_diff(a.gk, b.gk), tol);
  EXPECT_LE(max_diff(a.gv, b.gv), tol);
}

// Attention written out with autograd: softmax of masked scores (rows with every key masked give
// 0), optional dropout with a given keep-mask, product with v.
at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     bool causal, const at::Tensor& keep, double p) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor s = at::matmul(q, k.transpose(-2, -1)) * scale;
  const float ninf = -std::numeric_limits<float>::infinity();
  if (mask.defined())
    s = mask.scalar_type() == at::kBool ? s.masked_fill(mask.logical_not(), ninf) : s + mask;
  if (causal) s = s.masked_fill(at::ones({q.size(-2), k.size(-2)}, at::kBool).triu(1), ninf);
  at::Tensor all_masked = s.isneginf().all(-1, /*keepdim=*/true);
  at::Tensor probs = at::softmax(s.masked_fill(all_masked, 0), -1).masked_fill(all_masked, 0);
  if (keep.defined()) probs = probs * keep / (1.0 - p);
  return at::matmul(probs, v);
}

at::Tensor keep_mask_after_seed(uint64_t seed, int64_t B, int64_t N, int64_t T, int64_t S, double p) {
  at::manual_seed(seed);
  auto* gen = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
  uint64_t draw = 0;
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    draw = gen->random64();
  }
  return accel::detail::cpu_attention_keep_mask(draw, B, N, T, S, p);
}

}  // namespace

TEST(CpuAttention, MatchesTorchWithoutDropout) {
  // T != S, an odd head size; no mask, a bool mask, an additive mask, causal.
  Inputs in = make_inputs(2, 3, 7, 9, 5);
  auto mask_b = at::rand({2, 1, 1, 9}) > 0.3;
  mask_b.index_put_({at::indexing::Slice(), 0, 0, 0}, true);
  auto mask_f = at::randn({2, 3, 7, 9});
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant);
    std::optional<at::Tensor> mask;
    if (variant == 1) mask = mask_b;
    if (variant == 2) mask = mask_f;
    const bool causal = variant == 3;
    Result ours = run(in, [&](auto& q, auto& k, auto& v) {
      return accel::detail::cpu_attention_kernel(q, k, v, mask, 0.0, causal, std::nullopt);
    });
    Result theirs = run(in, [&](auto& q, auto& k, auto& v) {
      return at::scaled_dot_product_attention(q, k, v, mask, 0.0, causal);
    });
    expect_close(ours, theirs, 1e-5);
  }
}

TEST(CpuAttention, RowsWithEveryKeyMaskedGiveZero) {
  Inputs in = make_inputs(1, 2, 4, 5, 3);
  auto mask = at::ones({1, 1, 4, 5}, at::kBool);
  mask.index_put_({0, 0, 2}, false);  // query 2 sees nothing
  Result ours = run(in, [&](auto& q, auto& k, auto& v) {
    return accel::detail::cpu_attention_kernel(q, k, v, mask, 0.0, false, std::nullopt);
  });
  Result ref = run(in, [&](auto& q, auto& k, auto& v) { return reference(q, k, v, mask, false, {}, 0); });
  EXPECT_TRUE(ours.out.isfinite().all().item<bool>());
  EXPECT_EQ(ours.out.select(2, 2).abs().max().item<float>(), 0.0f);
  expect_close(ours, ref, 1e-5);
}

TEST(CpuAttention, DropoutMatchesAReferenceWithTheSameKeepMask) {
  // The kernel seeds its keep-mask with one random64() of the default generator; the reference
  // takes the same draw after the same seed and asks for that mask.
  const double p = 0.3;
  Inputs in = make_inputs(2, 3, 6, 8, 4);
  auto mask = at::rand({2, 1, 1, 8}) > 0.2;
  mask.index_put_({at::indexing::Slice(), 0, 0, 0}, true);
  at::manual_seed(123);
  Result ours = run(in, [&](auto& q, auto& k, auto& v) {
    return accel::scaled_dot_product_attention(q, k, v, mask, p, false, std::nullopt);
  });
  auto keep = keep_mask_after_seed(123, 2, 3, 6, 8, p);
  Result ref = run(in, [&](auto& q, auto& k, auto& v) { return reference(q, k, v, mask, false, keep, p); });
  expect_close(ours, ref, 1e-5);
  // The same seed gives the same result; another seed another mask.
  at::manual_seed(123);
  Result again = run(in, [&](auto& q, auto& k, auto& v) {
    return accel::scaled_dot_product_attention(q, k, v, mask, p, false, std::nullopt);
  });
  EXPECT_TRUE(at::equal(again.out, ours.out));
  EXPECT_TRUE(at::equal(again.gq, ours.gq));
  at::manual_seed(124);
  Result other = run(in, [&](auto& q, auto& k, auto& v) {
    return accel::scaled_dot_product_attention(q, k, v, mask, p, false, std::nullopt);
  });
  EXPECT_FALSE(at::equal(other.out, ours.out));
}

TEST(CpuAttention, KeepMaskHasTheRequestedShareAndDiffersPerHeadAndSeed) {
  auto m = accel::detail::cpu_attention_keep_mask(42, 2, 3, 64, 64, 0.1);
  EXPECT_NEAR(m.to(at::kFloat).mean().item<double>(), 0.9, 0.005);  // 24,576 draws
  EXPECT_FALSE(at::equal(m[0][0], m[0][1]));
  EXPECT_FALSE(at::equal(m[0][0], m[1][0]));
  EXPECT_FALSE(at::equal(m, accel::detail::cpu_attention_keep_mask(43, 2, 3, 64, 64, 0.1)));
  EXPECT_TRUE(at::equal(m, accel::detail::cpu_attention_keep_mask(42, 2, 3, 64, 64, 0.1)));
  // No visible structure: neighbouring elements are as independent as distant ones.
  auto f = m.to(at::kFloat).reshape({-1});
  auto a = f.slice(0, 0, -1) - 0.9, b = f.slice(0, 1) - 0.9;
  EXPECT_LT(std::abs((a * b).mean().item<double>()) / 0.09, 0.03);
}

TEST(CpuAttention, DropoutKeepsTheExpectedShareAndScale) {
  // Uniform scores (q = 0): every probability is 1/S, so out = mean of kept v rows / (1 - p);
  // with v = 1 each output is (kept keys / S) / (1 - p), whose average over many rows is 1.
  const double p = 0.25;
  auto q = at::zeros({4, 8, 64, 16}).requires_grad_(true);
  auto k = at::randn({4, 8, 128, 16});
  auto v = at::ones({4, 8, 128, 16});
  at::manual_seed(7);
  at::Tensor out = accel::scaled_dot_product_attention(q, k, v, std::nullopt, p);
  EXPECT_NEAR(out.mean().item<double>(), 1.0, 0.01);
  EXPECT_GT(out.std().item<double>(), 0.05);  // rows differ: dropout happened
}

TEST(CpuAttention, Bf16UnderAutocastComputesInFp32AndReturnsBf16) {
  Inputs in = make_inputs(2, 4, 16, 16, 8);
  auto mask = at::ones({2, 1, 1, 16}, at::kBool);
  mask.index_put_({1, 0, 0, at::indexing::Slice(12)}, false);
  const double p = 0.1;
  at::manual_seed(5);
  Result ours = run(in, [&](auto& q, auto& k, auto& v) {
    AutocastGuard g(c10::kCPU, at::kBFloat16);
    return accel::scaled_dot_product_attention(q, k, v, mask, p, false, std::nullopt);
  });
  EXPECT_EQ(ours.out.scalar_type(), at::kBFloat16);
  EXPECT_EQ(ours.gq.scalar_type(), at::kFloat);  // leaf gradients in the leaves' dtype
  // Reference: the same math on the bf16-rounded inputs in fp32, same keep-mask.
  auto keep = keep_mask_after_seed(5, 2, 4, 16, 16, p);
  Inputs rounded{in.q.to(at::kBFloat16).to(at::kFloat), in.k.to(at::kBFloat16).to(at::kFloat),
                 in.v.to(at::kBFloat16).to(at::kFloat), in.go};
  Result ref =
      run(rounded, [&](auto& q, auto& k, auto& v) { return reference(q, k, v, mask, false, keep, p); });
  EXPECT_LE(max_diff(ours.out, ref.out), 2e-2 * ref.out.abs().max().item<double>());
  EXPECT_LE(max_diff(ours.gq, ref.gq), 2e-2 * ref.gq.abs().max().item<double>());
  EXPECT_LE(max_diff(ours.gk, ref.gk), 2e-2 * ref.gk.abs().max().item<double>());
  EXPECT_LE(max_diff(ours.gv, ref.gv), 2e-2 * ref.gv.abs().max().item<double>());
}

TEST(CpuAttention, TorchRunsWhenTheKernelIsNotNeeded) {
  Inputs in = make_inputs(1, 2, 4, 4, 3);
  auto q = in.q.clone().requires_grad_(true);
  const int64_t before = cpu_memory_efficient_attention_calls();
  (void)accel::scaled_dot_product_attention(q, in.k, in.v, std::nullopt,
                                            0.0);  // no dropout: torch's flash path
  {
    at::NoGradGuard no_grad;
    (void)accel::scaled_dot_product_attention(q, in.k, in.v, std::nullopt, 0.2);  // no grad
  }
  (void)accel::scaled_dot_product_attention(in.q, in.k, in.v, std::nullopt, 0.2);  // nothing requires grad
  EXPECT_EQ(cpu_memory_efficient_attention_calls(), before);
  set_cpu_memory_efficient_attention(false);
  (void)accel::scaled_dot_product_attention(q, in.k, in.v, std::nullopt, 0.2);
  EXPECT_EQ(cpu_memory_efficient_attention_calls(), before);
  set_cpu_memory_efficient_attention(true);
  (void)accel::scaled_dot_product_attention(q, in.k, in.v, std::nullopt, 0.2);
  EXPECT_EQ(cpu_memory_efficient_attention_calls(), before + 1);
  // Three-dimensional inputs (batch, T, D) too.
  Result three = run(Inputs{in.q[0], in.k[0], in.v[0], in.go[0]}, [&](auto& q3, auto& k3, auto& v3) {
    return accel::detail::cpu_attention_kernel(q3, k3, v3, std::nullopt, 0.0, false, std::nullopt);
  });
  Result torch3 = run(Inputs{in.q[0], in.k[0], in.v[0], in.go[0]}, [&](auto& q3, auto& k3, auto& v3) {
    return at::scaled_dot_product_attention(q3, k3, v3, std::nullopt, 0.0, false);
  });
  expect_close(three, torch3, 1e-5);
}

// ACCEL_CPU_ATTENTION comes from an environment map (the process's, through current_environment(),
// at first use): accel (default) or torch; anything else is an error that names the variable.
TEST(CpuAttention, EnvironmentChoosesTheKernel) {
  EXPECT_TRUE(resolve_cpu_memory_efficient_attention({}));
  EXPECT_TRUE(resolve_cpu_memory_efficient_attention({{"ACCEL_CPU_ATTENTION", ""}}));
  EXPECT_TRUE(resolve_cpu_memory_efficient_attention({{"ACCEL_CPU_ATTENTION", "accel"}}));
  EXPECT_FALSE(resolve_cpu_memory_efficient_attention({{"ACCEL_CPU_ATTENTION", "torch"}}));
  try {
    resolve_cpu_memory_efficient_attention({{"ACCEL_CPU_ATTENTION", "Torch"}});
    FAIL() << "no error";
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ACCEL_CPU_ATTENTION='Torch'"), std::string::npos) << e.what();
  }
}
