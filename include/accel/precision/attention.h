// Scaled dot-product attention for training on the CPU with O(T) saved state per query row.
//
// With dropout (every BERT in training mode) torch's CPU SDPA takes its "math" path, which keeps
// three (B, heads, T, S) fp32 tensors per layer for backward — softmax output, dropout noise and
// the dropped probabilities — also in bf16/fp16, because that path up-casts (MiniLM, batch 16,
// sequence 256: 150 MB per layer, half of the step's activations). accel's kernel saves only q, k,
// v as given (and the additive mask) and recomputes the probabilities in backward, one block of
// heads at a time on each thread (the flash-attention recipe, on the CPU's GEMMs); the dropout
// keep-mask is a counter-based hash of (seed, head, element), regenerated in backward. Same math
// as torch's path (fp32 scores, softmax, dropout, products; the result rounded to the input
// dtype; rows with every key masked give 0), ~10x less saved memory, two more small GEMMs.
//
// Contract:
//  - scaled_dot_product_attention(): at::scaled_dot_product_attention's signature and
//    semantics. It runs accel's kernel when the inputs are strided CPU tensors of one floating
//    dtype, (..., T, D) with identical leading dimensions, dropout_p > 0, grad mode is on, one of
//    q/k/v requires grad, the mask (bool: true = attend, or additive float) does not, no GQA —
//    and the kernel is enabled (below); otherwise it calls torch's. Under CPU autocast q/k/v (and
//    a float mask) are first cast to the autocast dtype, as autocast's policy for SDPA does.
//    The dropout mask is seeded from the default CPU generator (so seeds and checkpoints
//    reproduce it) but is not torch's bernoulli stream; it does not depend on the thread count.
//  - ACCEL_CPU_ATTENTION=torch (taken from the process environment at first use) or
//    set_cpu_memory_efficient_attention(false) turns the kernel off;
//    cpu_memory_efficient_attention_calls() counts its forward calls (tests).
#pragma once

#include "accel/core/env.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace accel {

at::Tensor scaled_dot_product_attention(const at::Tensor& query, const at::Tensor& key,
                                        const at::Tensor& value,
                                        const std::optional<at::Tensor>& attn_mask = std::nullopt,
                                        double dropout_p = 0.0, bool is_causal = false,
                                        std::optional<double> scale = std::nullopt, bool enable_gqa = false);

/// ACCEL_CPU_ATTENTION in `env`: true for "accel" (or absent / empty), false for "torch". Throws
/// InputError naming the variable for anything else.
bool resolve_cpu_memory_efficient_attention(const EnvMap& env);

/// Whether accel's CPU training kernel may be used (default: on unless ACCEL_CPU_ATTENTION=torch).
bool cpu_memory_efficient_attention();
void set_cpu_memory_efficient_attention(bool on);
/// Forward calls that took accel's kernel since the process started.
int64_t cpu_memory_efficient_attention_calls();

namespace detail {
/// Whether scaled_dot_product_attention() would run accel's kernel for these arguments
/// (before autocast's cast). q, k and v must have the same head count (so enable_gqa changes
/// nothing).
bool cpu_attention_eligible(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::optional<at::Tensor>& attn_mask, double dropout_p, bool is_causal);
/// The dropout keep-mask (B, N, T, S) the kernel applies for `seed`: a counter-based hash of
/// (seed, head, element), regenerated in backward rather than stored. Each forward call with
/// dropout draws its seed with one random64() from the default CPU generator.
at::Tensor cpu_attention_keep_mask(uint64_t seed, int64_t B, int64_t N, int64_t T, int64_t S,
                                   double dropout_p);
/// The kernel itself, no eligibility checks beyond its own (tests call it with dropout_p = 0).
at::Tensor cpu_attention_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const std::optional<at::Tensor>& attn_mask, double dropout_p, bool is_causal,
                                std::optional<double> scale);
}  // namespace detail

}  // namespace accel
