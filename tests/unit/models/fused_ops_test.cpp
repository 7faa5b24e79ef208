// Fused bias-GELU / bias-dropout-residual-LayerNorm (accel/models/fused_ops.h) and BERT's GPU
// speed paths: the CPU fallbacks against BERT's current math here; the CUDA kernels against the
// composite ops where a GPU and the kernels exist (skipped otherwise).
#include "support/compare.h"

#include <accel/models/bert.h>
#include <accel/models/fused_ops.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

namespace {

using accel::testing::tensors_close;
namespace F = torch::nn::functional;

bool gpu_kernels() {
  return torch::cuda::is_available() && accel::models::fused_ops_cuda_available();
}

// ---- fallbacks (CPU) -------------------------------------------------------------------------------

TEST(FusedOps, BiasGeluFallbackIsBertsLinearThenGelu) {
  torch::manual_seed(1);
  auto h = torch::randn({3, 5, 8});
  auto w = torch::randn({16, 8}), b = torch::randn({16});
  for (bool tanh : {false, true}) {
    auto want = tanh ? torch::gelu(F::linear(h, w, b), "tanh") : torch::gelu(F::linear(h, w, b));
    auto got = accel::models::bias_gelu(F::linear(h, w), b, tanh);
    EXPECT_TRUE(tensors_close(got, want, 1e-5, 1e-6, tanh ? "tanh" : "erf"));
  }
  EXPECT_FALSE(accel::models::detail::bias_gelu_cuda_eligible(h, b));  // CPU tensors never take the kernel
}

TEST(FusedOps, LayerNormFallbackIsBertsOutputBlock) {
  torch::manual_seed(2);
  auto h = torch::randn({2, 7, 12}), input = torch::randn({2, 7, 8});
  auto w = torch::randn({8, 12}), b = torch::randn({8});
  auto gamma = torch::randn({8}), beta = torch::randn({8});
  // Evaluation: no dropout; exactly BertOutput's LayerNorm(dense(h) + input).
  auto want = torch::layer_norm(F::linear(h, w, b) + input, {8}, gamma, beta, 1e-12);
  auto got = accel::models::bias_dropout_residual_layer_norm(F::linear(h, w), b, input, gamma, beta, 0.1,
                                                             /*training=*/false, 1e-12);
  EXPECT_TRUE(tensors_close(got, want, 1e-5, 1e-5, "eval"));
  // Training: the same dropout draws as nn::Dropout after the same seed.
  torch::manual_seed(3);
  auto dropped = torch::dropout(F::linear(h, w, b), 0.25, /*train=*/true);
  auto want_train = torch::layer_norm(dropped + input, {8}, gamma, beta, 1e-12);
  torch::manual_seed(3);
  auto got_train =
      accel::models::bias_dropout_residual_layer_norm(F::linear(h, w), b, input, gamma, beta, 0.25,
                                                      /*training=*/true, 1e-12);
  EXPECT_TRUE(tensors_close(got_train, want_train, 1e-5, 1e-5, "train"));
  EXPECT_FALSE(accel::models::detail::bias_dropout_residual_layer_norm_cuda_eligible(F::linear(h, w), b,
                                                                                     input, gamma, beta));
}

// With every GPU speed path on, a CPU model computes exactly what the default one does (the
// fallbacks are the standard ops): same loss, same gradients, bit for bit.
TEST(BertFastPath, OptionsChangeNothingOnTheCpu) {
  auto cfg = accel::models::BertConfig::from_name("bert-tiny");
  cfg.vocab_size = 300;
  cfg.max_position_embeddings = 32;
  auto fast_cfg = cfg;
  fast_cfg.unpadded_attention = fast_cfg.fused_bias_gelu = fast_cfg.fused_layer_norm = true;
  torch::manual_seed(4);
  accel::models::BertForSequenceClassification plain(cfg), fast(fast_cfg);
  {
    torch::NoGradGuard ng;
    auto src = plain->named_parameters();
    for (auto& kv : fast->named_parameters()) kv.value().copy_(src[kv.key()]);
  }
  auto ids = torch::randint(1, 300, {3, 10});
  auto mask = torch::ones({3, 10}, torch::kLong);
  mask[1].slice(0, 6).fill_(0);  // padding in one row
  auto labels = torch::tensor({0, 1, 1});
  plain->train();
  fast->train();
  torch::manual_seed(5);
  auto a = plain->forward(ids, mask, {}, labels);
  a.loss.backward();
  torch::manual_seed(5);
  auto b = fast->forward(ids, mask, {}, labels);
  b.loss.backward();
  EXPECT_TRUE(torch::equal(a.logits, b.logits));
  auto pa = plain->named_parameters();
  for (auto& kv : fast->named_parameters())
    EXPECT_TRUE(torch::equal(kv.value().grad(), pa[kv.key()].grad())) << kv.key();
}

// ---- CUDA kernels against the composite ops (GPU only) -------------------------------------------------

TEST(FusedOps, CudaBiasGeluMatchesComposite) {
  if (!gpu_kernels()) GTEST_SKIP() << "needs a CUDA GPU and the fused kernels (a CUDA build)";
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    const double tol = dtype == torch::kFloat ? 1e-5 : 2e-2;  // bf16/fp16: one rounding of each value
    for (bool tanh : {false, true}) {
      torch::manual_seed(6);
      auto opts = torch::TensorOptions().device(torch::kCUDA);
      auto x = torch::randn({37, 300}, opts.dtype(dtype)).requires_grad_(true);
      auto b = torch::randn({300}, opts).requires_grad_(true);  // fp32 bias, as a parameter under autocast
      auto x2 = x.detach().clone().requires_grad_(true), b2 = b.detach().clone().requires_grad_(true);
      const int64_t before = accel::models::detail::fused_ops_cuda_calls();
      auto y = accel::models::bias_gelu(x, b, tanh);
      EXPECT_EQ(accel::models::detail::fused_ops_cuda_calls(), before + 1);
      auto y2 = accel::models::detail::bias_gelu_composite(x2, b2, tanh);
      EXPECT_EQ(y.scalar_type(), y2.scalar_type());
      EXPECT_TRUE(tensors_close(y, y2, tol, tol, "forward"));
      auto g = torch::randn_like(y);
      y.backward(g);
      y2.backward(g);
      EXPECT_TRUE(tensors_close(x.grad(), x2.grad(), tol, tol, "dx"));
      EXPECT_TRUE(tensors_close(b.grad(), b2.grad(), tol, tol * 37, "dbias (a sum of 37 rows)"));
    }
  }
}

TEST(FusedOps, CudaLayerNormMatchesCompositeWithoutDropout) {
  if (!gpu_kernels()) GTEST_SKIP() << "needs a CUDA GPU and the fused kernels (a CUDA build)";
  struct Case {
    torch::Dtype x, residual;
  };
  for (auto c : {Case{torch::kFloat, torch::kFloat}, Case{torch::kBFloat16, torch::kFloat},
                 Case{torch::kHalf, torch::kHalf}, Case{torch::kBFloat16, torch::kBFloat16}}) {
    const double tol = (c.x == torch::kFloat && c.residual == torch::kFloat) ? 1e-4 : 3e-2;
    for (int64_t cols : {384, 768, 1000}) {
      torch::manual_seed(7);
      auto opts = torch::TensorOptions().device(torch::kCUDA);
      auto x = torch::randn({2, 33, cols}, opts.dtype(c.x)).requires_grad_(true);
      auto res = torch::randn({2, 33, cols}, opts.dtype(c.residual)).requires_grad_(true);
      auto b = torch::randn({cols}, opts).requires_grad_(true);
      auto gamma = torch::randn({cols}, opts).requires_grad_(true),
           beta = torch::randn({cols}, opts).requires_grad_(true);
      std::vector<torch::Tensor> in{x, res, b, gamma, beta}, in2;
      for (auto& t : in) in2.push_back(t.detach().clone().requires_grad_(true));
      auto y = accel::models::bias_dropout_residual_layer_norm(x, b, res, gamma, beta, 0.1,
                                                               /*training=*/false, 1e-12);
      // The composite in fp32 (what the kernel computes before rounding its output).
      auto y2 = torch::layer_norm(in2[0].to(torch::kFloat) + in2[2] + in2[1].to(torch::kFloat), {cols},
                                  in2[3], in2[4], 1e-12);
      EXPECT_EQ(y.scalar_type(), c.residual);
      EXPECT_TRUE(tensors_close(y, y2, tol, tol, "forward"));
      auto g = torch::randn_like(y2);
      y.backward(g.to(y.scalar_type()));
      y2.backward(g);
      const char* names[] = {"dx", "dresidual", "dbias", "dgamma", "dbeta"};
      for (size_t i = 0; i < in.size(); ++i)
        EXPECT_TRUE(tensors_close(in[i].grad(), in2[i].grad(), tol, i >= 2 ? tol * 66 : tol, names[i]))
            << "columns " << cols;
    }
  }
}

TEST(FusedOps, CudaLayerNormDropoutUsesItsKeepMask) {
  if (!gpu_kernels()) GTEST_SKIP() << "needs a CUDA GPU and the fused kernels (a CUDA build)";
  const auto* k = accel::models::detail::fused_ops_cuda_kernels();
  torch::manual_seed(8);
  auto opts = torch::TensorOptions().device(torch::kCUDA);
  const double p = 0.3;
  auto x = torch::randn({512, 768}, opts), res = torch::randn({512, 768}, opts),
       b = torch::randn({768}, opts);
  auto gamma = torch::randn({768}, opts), beta = torch::randn({768}, opts);
  auto out = k->bdrln_forward(x, b, res, gamma, beta, p, 1e-12, torch::kFloat);
  auto keep = out[4].to(torch::kFloat);
  const double kept = keep.mean().item<double>();
  EXPECT_NEAR(kept, 1.0 - p, 0.01);  // 393,216 draws: the standard error is 0.0007
  auto want = torch::layer_norm((x + b) * keep / (1.0 - p) + res, {768}, gamma, beta, 1e-12);
  EXPECT_TRUE(tensors_close(out[0], want, 1e-4, 1e-4, "forward with the kernel's mask"));
  // A second call draws a different mask (the generator's offset advanced).
  auto again = k->bdrln_forward(x, b, res, gamma, beta, p, 1e-12, torch::kFloat);
  EXPECT_FALSE(torch::equal(out[4], again[4]));
  // Backward: the composite's gradient with the same mask.
  auto xg = x.clone().requires_grad_(true);
  auto y2 = torch::layer_norm((xg + b) * keep / (1.0 - p) + res, {768}, gamma, beta, 1e-12);
  auto g = torch::randn_like(y2);
  y2.backward(g);
  auto grads = k->bdrln_backward(g, out[1], out[2], out[3], out[4], gamma, p, torch::kFloat, torch::kFloat);
  EXPECT_TRUE(tensors_close(grads[0], xg.grad(), 1e-4, 1e-4, "dx"));
}

TEST(BertFastPath, CudaForwardMatchesTheDefaultInEvaluation) {
  if (!gpu_kernels()) GTEST_SKIP() << "needs a CUDA GPU and the fused kernels (a CUDA build)";
  auto cfg = accel::models::BertConfig::from_name("bert-tiny");
  cfg.vocab_size = 300;
  cfg.max_position_embeddings = 64;
  cfg.hidden_size = 128;
  cfg.num_attention_heads = 2;  // head dim 64
  auto fast_cfg = cfg;
  fast_cfg.unpadded_attention = fast_cfg.fused_bias_gelu = fast_cfg.fused_layer_norm = true;
  torch::manual_seed(9);
  accel::models::BertModel plain(cfg), fast(fast_cfg);
  {
    torch::NoGradGuard ng;
    auto src = plain->named_parameters();
    for (auto& kv : fast->named_parameters()) kv.value().copy_(src[kv.key()]);
  }
  plain->to(torch::kCUDA, torch::kBFloat16);
  fast->to(torch::kCUDA, torch::kBFloat16);
  plain->eval();
  fast->eval();
  auto ids = torch::randint(1, 300, {4, 40}).to(torch::kCUDA);
  auto mask = torch::ones({4, 40}, torch::kLong);
  mask[0].slice(0, 17).fill_(0);
  mask[2].slice(0, 3).fill_(0);
  mask = mask.to(torch::kCUDA);
  torch::NoGradGuard ng;
  auto a = plain->forward(ids, mask).last_hidden_state;
  auto b = fast->forward(ids, mask).last_hidden_state;
  // Real tokens only: at padding positions the default path attends over nothing meaningful.
  auto real = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  EXPECT_TRUE(
      tensors_close(b.masked_select(real), a.masked_select(real), 5e-2, 5e-2, "last hidden state (bf16)"));
}

}  // namespace
