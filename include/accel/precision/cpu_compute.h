// How autocast's reduced-precision matmuls and convolutions run on the CPU.
//
// CPUs without bf16/fp16 instructions (no AVX512-BF16/AMX-BF16, no AVX512-FP16/AMX-FP16) run
// torch's bf16/fp16 GEMMs and convolutions on generic fallback loops that are 4-20x slower than its
// fp32 kernels, so mixed precision there is slower than fp32 instead of faster. In the `kFp32` mode
// accel replaces autocast's CPU kernels for `linear`, `matmul`, `mm`, `addmm`, `bmm`,
// `scaled_dot_product_attention` (LibTorch's nn::Linear uses addmm or matmul), `conv1d`/`conv2d`/
// `conv3d` (also with padding "same"/"valid") and `conv_transpose1d`/`2d`/`3d` (LibTorch's nn::Conv*
// and nn::ConvTranspose* modules): the inputs are still cast to the autocast dtype (the same
// rounding, the same cached weight copies), the product or convolution is computed by the fp32
// kernels, and the result is rounded back to the autocast dtype. That is the arithmetic of a
// bf16/fp16 kernel with fp32 accumulation (what native kernels do), so results agree with the
// native path up to summation order. Products with a 2-D right operand (every nn::Linear) and every
// convolution save their inputs in the reduced dtype for backward (which up-casts them and runs
// torch's fp32 backward kernels, each gradient rounded to its input's dtype), so activation memory
// stays that of mixed precision; batched products and attention keep fp32 copies for backward.
// Other ops (pooling, activations, normalisation, losses, `_convolution`, `conv_tbc`) keep torch's
// policy.
//
// The mode is process-wide (a kernel registration in torch's dispatcher, removed again by `kNative`).
// The Accelerator applies `resolve_cpu_autocast_compute()` when it runs on the CPU with bf16/fp16;
// the environment variable ACCEL_CPU_AUTOCAST_COMPUTE=auto|fp32|native overrides its choice.
#pragma once

#include "accel/core/env.h"

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>
#include <vector>

namespace accel {

enum class CpuAutocastCompute {
  kNative,  // torch's kernels in the autocast dtype
  kFp32,    // reduced-precision inputs and outputs, fp32 compute (see above)
};

/// Parses "auto", "fp32" or "native" (case-sensitive); nullopt for "auto". Throws InputError
/// naming ACCEL_CPU_AUTOCAST_COMPUTE for anything else.
std::optional<CpuAutocastCompute> parse_cpu_autocast_compute(const std::string& value);

/// The mode for `dtype` (kBFloat16 or kHalf) on this CPU: `requested` when given, else kFp32
/// exactly when the CPU lacks native instructions for that dtype (cpu_has_native_bf16/fp16 in
/// core/state.h).
CpuAutocastCompute resolve_cpu_autocast_compute(c10::ScalarType dtype,
                                                std::optional<CpuAutocastCompute> requested);

/// The same, `requested` read from ACCEL_CPU_AUTOCAST_COMPUTE in `env` (absent = auto).
CpuAutocastCompute resolve_cpu_autocast_compute(c10::ScalarType dtype, const EnvMap& env);

/// Installs (kFp32) or removes (kNative) the fp32-compute kernels for autocast `dtype` on the CPU.
/// Each reduced dtype is switched independently; idempotent; not thread-safe against running ops.
void set_cpu_autocast_compute(c10::ScalarType dtype, CpuAutocastCompute mode);

/// The current mode for `dtype`.
CpuAutocastCompute cpu_autocast_compute(c10::ScalarType dtype);

/// Number of ops that took the fp32-compute path so far (for tests and benchmarks).
int64_t cpu_autocast_fp32_compute_calls();

namespace detail {
/// The dtypes of the tensors that the fp32-compute op which produced `output` saved for backward
/// (empty when `output` does not come from one). Tests use it to check the memory contract above.
std::vector<c10::ScalarType> cpu_compute_saved_dtypes(const at::Tensor& output);
}  // namespace detail

}  // namespace accel
