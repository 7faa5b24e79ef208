// Unpadded (variable-length) self-attention for dynamically padded batches: the real tokens of a
// (B, T) batch are packed into one (total, ...) tensor with cumulative sequence lengths, and on
// CUDA (bf16 / fp16) attention runs as FlashAttention's variable-length kernel
// (at::_flash_attention_forward / _backward with cu_seqlens, dropout included), which does no
// work for padding. Everywhere else the same function runs the padded reference (unpack, SDPA
// with the key-padding mask, pack), so callers need no second code path.
//
// Contract: pack_tokens / unpack_tokens are exact inverses on the real tokens (unpack puts zeros
// at padding positions) and differentiable. varlen_attention() equals padded
// scaled_dot_product_attention with the boolean key-padding mask on every real query row (up to
// the kernels' rounding; dropout draws differ between the two paths).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace accel {

/// Where the real tokens of a padded (B, T) batch are.
struct VarlenPacking {
  at::Tensor indices;      ///< (total,) int64: flat positions b * T + t of the real tokens, in order
  at::Tensor cu_seqlens;   ///< (B + 1,) int32: 0, len_0, len_0 + len_1, ... (on the mask's device)
  int64_t max_seqlen = 0;  ///< longest sequence (tokens)
  int64_t batch = 0;       ///< B
  int64_t seq_len = 0;     ///< T
  int64_t total = 0;       ///< real tokens in the batch
  /// Every position is a real token (no padding anywhere).
  bool dense() const { return total == batch * seq_len; }
};

/// The packing of a (B, T) key-padding mask (nonzero / true = real token; real tokens need not be
/// left-aligned: they are packed in position order). Costs one device-to-host copy (the counts).
/// Throws accel::Error unless the mask is 2-D.
VarlenPacking make_varlen_packing(const at::Tensor& padding_mask);

/// x (B, T, ...) -> (total, ...): the real tokens, in order.
at::Tensor pack_tokens(const at::Tensor& x, const VarlenPacking& packing);
/// packed (total, ...) -> (B, T, ...) with zeros at padding positions.
at::Tensor unpack_tokens(const at::Tensor& packed, const VarlenPacking& packing);

/// Self-attention of the packed sequences: q, k, v (total, N, D) -> (total, N, D); a token attends
/// to the real tokens of its own sequence. dropout_p applies to the attention probabilities
/// (pass 0 in evaluation). scale defaults to 1 / sqrt(D).
at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const VarlenPacking& packing, double dropout_p = 0.0,
                            std::optional<double> scale = std::nullopt);

/// Whether varlen_attention() runs FlashAttention's kernel for these inputs: CUDA tensors of one
/// dtype, bf16 or fp16, head dim a multiple of 8 and at most 256, and no earlier failure of the
/// kernel in this process (an unsupported GPU: one warning, then the reference path).
bool varlen_flash_eligible(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

namespace detail {
/// The padded reference varlen_attention() falls back to.
at::Tensor varlen_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const VarlenPacking& packing, double dropout_p,
                                      std::optional<double> scale);
/// Forward calls that ran the flash kernel since the process started (tests).
int64_t varlen_flash_calls();
}  // namespace detail

}  // namespace accel
