// Fused transformer-layer operations for BERT on CUDA: bias + GELU after the feed-forward
// expansion, and bias + dropout + residual + LayerNorm after each output projection. Each is one
// CUDA kernel forward and one backward (bf16 / fp16 / fp32), with the composite ATen ops as the
// fallback everywhere else (CPU, builds without nvcc, shapes the kernels do not take).
//
// Contract (both functions): the same values as the composite ops up to rounding (the kernels keep
// the intermediate sums in fp32 instead of rounding them to the input dtype) and the same dtype
// rules as the composite ops under autocast: the result of bias_gelu has x's dtype; the result of
// bias_dropout_residual_layer_norm has the residual's dtype (LayerNorm's autocast policy is fp32,
// and the residual stream is fp32 there). Gradients flow to every tensor input that requires grad.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace accel::models {

/// Whether this build has the CUDA kernels (a CUDA torch and nvcc at build time).
bool fused_ops_cuda_available();

/// gelu(x + bias): x (..., I), bias (I). Exact (erf) GELU, or the tanh approximation when
/// `tanh_approximation`. On CUDA with the kernels built: one kernel (and one backward kernel that
/// also sums the bias gradient); otherwise the composite `gelu(x + bias)`.
at::Tensor bias_gelu(const at::Tensor& x, const at::Tensor& bias, bool tanh_approximation = false);

/// layer_norm(dropout(x + bias, p) + residual) over the last dimension with `weight` / `ln_bias`
/// (H) and `eps`: x and residual (..., H), bias (H). Dropout with probability `dropout_p` only when
/// `training` (dropped elements are zero, kept ones scaled by 1 / (1 - p)). On CUDA with the
/// kernels built and H <= 4096: one kernel forward (dropout mask from the CUDA generator's Philox
/// stream, so seeds and CUDA-graph replays behave as torch's dropout does), one backward;
/// otherwise the composite ops.
at::Tensor bias_dropout_residual_layer_norm(const at::Tensor& x, const at::Tensor& bias,
                                            const at::Tensor& residual, const at::Tensor& weight,
                                            const at::Tensor& ln_bias, double dropout_p, bool training,
                                            double eps);

namespace detail {
/// The composite fallbacks (what BERT computes without the fused paths).
at::Tensor bias_gelu_composite(const at::Tensor& x, const at::Tensor& bias, bool tanh_approximation);
at::Tensor bias_dropout_residual_layer_norm_composite(const at::Tensor& x, const at::Tensor& bias,
                                                      const at::Tensor& residual, const at::Tensor& weight,
                                                      const at::Tensor& ln_bias, double dropout_p,
                                                      bool training, double eps);
/// Whether the CUDA kernels would run for these arguments (device, dtypes, shapes, build).
bool bias_gelu_cuda_eligible(const at::Tensor& x, const at::Tensor& bias);
bool bias_dropout_residual_layer_norm_cuda_eligible(const at::Tensor& x, const at::Tensor& bias,
                                                    const at::Tensor& residual, const at::Tensor& weight,
                                                    const at::Tensor& ln_bias);
/// Forward calls that took the CUDA kernels since the process started (tests).
int64_t fused_ops_cuda_calls();

/// The kernels' entry points (src/models/fused_ops_cuda.cu registers them at load time when it
/// is built). All tensors contiguous on one CUDA device; R rows of C columns.
struct FusedOpsCudaKernels {
  /// y = gelu(x + b) in x's dtype.
  at::Tensor (*bias_gelu_forward)(const at::Tensor& x, const at::Tensor& bias, bool tanh_approximation);
  /// (dx in x's dtype, db in fp32) for dy.
  std::pair<at::Tensor, at::Tensor> (*bias_gelu_backward)(const at::Tensor& dy, const at::Tensor& x,
                                                          const at::Tensor& bias, bool tanh_approximation);
  /// Forward: returns {y (out_dtype: the residual's or fp32), z = pre-norm sum (fp32), mean (fp32,
  /// R), rstd (fp32, R), keep mask (uint8, R x C; undefined without dropout)}.
  std::vector<at::Tensor> (*bdrln_forward)(const at::Tensor& x, const at::Tensor& bias,
                                           const at::Tensor& residual, const at::Tensor& weight,
                                           const at::Tensor& ln_bias, double dropout_p, double eps,
                                           at::ScalarType out_dtype);
  /// Backward: returns {dx (x's dtype), dbias, dresidual (residual's dtype), dweight, dln_bias (fp32)}.
  std::vector<at::Tensor> (*bdrln_backward)(const at::Tensor& dy, const at::Tensor& z, const at::Tensor& mean,
                                            const at::Tensor& rstd, const at::Tensor& keep,
                                            const at::Tensor& weight, double dropout_p,
                                            at::ScalarType x_dtype, at::ScalarType residual_dtype);
};
/// The registered kernels, or nullptr in builds without them.
const FusedOpsCudaKernels* fused_ops_cuda_kernels();
/// Called once by the CUDA translation unit's static initialiser.
void register_fused_ops_cuda_kernels(const FusedOpsCudaKernels* kernels);
}  // namespace detail

}  // namespace accel::models
