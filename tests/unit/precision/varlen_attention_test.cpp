// Unpadded attention (accel/precision/varlen_attention.h): the packing (exact indices and
// cumulative lengths), pack/unpack round trips with gradients, the reference path against padded
// SDPA on the CPU; FlashAttention's kernel against the reference on a GPU (skipped without one).
#include "support/compare.h"

#include <accel/core/error.h>
#include <accel/precision/varlen_attention.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

namespace {

using accel::testing::tensors_close;

// Lengths 3, 0, 5, 2 of T = 5; row 3's real tokens are not left-aligned (positions 1 and 3).
torch::Tensor example_mask() {
  auto m = torch::zeros({4, 5}, torch::kLong);
  m[0].slice(0, 0, 3).fill_(1);
  m[2].fill_(1);
  m[3][1] = 1;
  m[3][3] = 1;
  return m;
}

TEST(Varlen, PackingIndicesAndCumulativeLengths) {
  auto p = accel::make_varlen_packing(example_mask());
  EXPECT_EQ(p.batch, 4);
  EXPECT_EQ(p.seq_len, 5);
  EXPECT_EQ(p.total, 10);
  EXPECT_EQ(p.max_seqlen, 5);
  EXPECT_FALSE(p.dense());
  EXPECT_EQ(p.cu_seqlens.scalar_type(), torch::kInt);
  EXPECT_TRUE(torch::equal(p.cu_seqlens, torch::tensor({0, 3, 3, 8, 10}, torch::kInt)));
  EXPECT_TRUE(torch::equal(p.indices, torch::tensor({0, 1, 2, 10, 11, 12, 13, 14, 16, 18}, torch::kLong)));
  // A bool mask gives the same packing.
  auto q = accel::make_varlen_packing(example_mask().to(torch::kBool));
  EXPECT_TRUE(torch::equal(q.indices, p.indices));
}

TEST(Varlen, DenseMaskPacksByReshape) {
  auto p = accel::make_varlen_packing(torch::ones({2, 3}, torch::kLong));
  EXPECT_TRUE(p.dense());
  EXPECT_TRUE(torch::equal(p.cu_seqlens, torch::tensor({0, 3, 6}, torch::kInt)));
  auto x = torch::randn({2, 3, 4});
  auto packed = accel::pack_tokens(x, p);
  EXPECT_EQ(packed.data_ptr(), x.data_ptr());  // a view, no copy
  EXPECT_TRUE(torch::equal(accel::unpack_tokens(packed, p), x));
}

TEST(Varlen, PackUnpackRoundTripAndGradients) {
  auto mask = example_mask();
  auto p = accel::make_varlen_packing(mask);
  auto x = torch::randn({4, 5, 2, 3}, torch::requires_grad());
  auto packed = accel::pack_tokens(x, p);
  ASSERT_EQ(packed.sizes(), (std::vector<int64_t>{10, 2, 3}));
  EXPECT_TRUE(torch::equal(packed[3], x[2][0]));  // row 2's first token comes after row 0's three
  EXPECT_TRUE(torch::equal(packed[9], x[3][3]));
  auto back = accel::unpack_tokens(packed, p);
  auto m = mask.to(torch::kFloat).view({4, 5, 1, 1});
  EXPECT_TRUE(torch::equal(back, x.detach() * m));  // zeros at the padding
  back.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), m.expand_as(x)));  // gradient 1 on real tokens, 0 on padding
}

TEST(Varlen, ReferencePathEqualsPaddedSdpaOnRealTokens) {
  torch::manual_seed(11);
  auto mask = example_mask();
  auto p = accel::make_varlen_packing(mask);
  const int64_t B = 4, T = 5, N = 2, D = 8;
  auto q = torch::randn({B, T, N, D}), k = torch::randn({B, T, N, D}), v = torch::randn({B, T, N, D});
  std::vector<torch::Tensor> packed;
  for (auto* t : {&q, &k, &v}) packed.push_back(accel::pack_tokens(*t, p).detach().requires_grad_(true));
  auto out = accel::varlen_attention(packed[0], packed[1], packed[2], p);  // (total, N, D)
  // Padded SDPA with the key-padding mask, then the real query rows.
  std::vector<torch::Tensor> padded;
  for (auto* t : {&q, &k, &v}) padded.push_back(t->transpose(1, 2).detach().clone().requires_grad_(true));
  auto bool_mask = mask.to(torch::kBool).view({B, 1, 1, T});
  auto ref = at::scaled_dot_product_attention(padded[0], padded[1], padded[2], bool_mask);  // (B, N, T, D)
  auto ref_packed = accel::pack_tokens(ref.transpose(1, 2), p);
  EXPECT_TRUE(tensors_close(out, ref_packed, 1e-5, 1e-6, "attention output"));
  auto g = torch::randn_like(out);
  out.backward(g);
  ref_packed.backward(g);
  const char* names[] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(tensors_close(packed[i].grad(), accel::pack_tokens(padded[i].grad().transpose(1, 2), p), 1e-5,
                              1e-6, names[i]));
  EXPECT_FALSE(accel::varlen_flash_eligible(packed[0], packed[1], packed[2]));  // CPU tensors
}

TEST(Varlen, BadInputsAreNamed) {
  EXPECT_THROW(accel::make_varlen_packing(torch::ones({2, 3, 4})), accel::Error);
  auto p = accel::make_varlen_packing(example_mask());
  EXPECT_THROW(accel::pack_tokens(torch::zeros({3, 5, 2}), p), accel::Error);
  EXPECT_THROW(accel::unpack_tokens(torch::zeros({9, 2}), p), accel::Error);
  auto x = torch::zeros({10, 2, 8});
  try {
    accel::varlen_attention(torch::zeros({9, 2, 8}), x, x, p);
    FAIL() << "expected accel::Error";
  } catch (const accel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("pack_tokens"), std::string::npos) << e.what();
  }
  EXPECT_THROW(accel::varlen_attention(x, x, x, p, 1.0), accel::Error);
}

TEST(Varlen, FlashKernelMatchesReferenceOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA GPU";
  torch::manual_seed(12);
  auto mask = example_mask().to(torch::kCUDA);
  auto p = accel::make_varlen_packing(mask);
  auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  std::vector<torch::Tensor> a, b;
  for (int i = 0; i < 3; ++i) {
    auto t = torch::randn({p.total, 2, 64}, opts);
    a.push_back(t.clone().requires_grad_(true));
    b.push_back(t.to(torch::kFloat).requires_grad_(true));
  }
  ASSERT_TRUE(accel::varlen_flash_eligible(a[0], a[1], a[2]));
  const int64_t before = accel::detail::varlen_flash_calls();
  auto out = accel::varlen_attention(a[0], a[1], a[2], p);
  if (accel::detail::varlen_flash_calls() == before)
    GTEST_SKIP() << "FlashAttention is not available on this GPU";
  auto ref = accel::detail::varlen_attention_reference(b[0], b[1], b[2], p, 0.0, std::nullopt);
  EXPECT_TRUE(tensors_close(out, ref, 2e-2, 2e-2, "flash vs reference (bf16)"));
  auto g = torch::randn_like(ref);
  out.backward(g.to(torch::kBFloat16));
  ref.backward(g);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(tensors_close(a[i].grad(), b[i].grad(), 5e-2, 5e-2, "gradient"));
  // With dropout: output finite and different from the dropout-free one.
  auto dropped = accel::varlen_attention(a[0], a[1], a[2], p, 0.5);
  EXPECT_TRUE(torch::isfinite(dropped).all().item<bool>());
  EXPECT_FALSE(torch::allclose(dropped.to(torch::kFloat), out.to(torch::kFloat)));
}

}  // namespace
