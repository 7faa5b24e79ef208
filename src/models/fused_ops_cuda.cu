// CUDA kernels of accel/models/fused_ops.h: bias + GELU and bias + dropout + residual + LayerNorm,
// forward and backward, for bf16 / fp16 / fp32 activations (parameters read as fp32, every sum in
// fp32). Built only with a CUDA torch and nvcc; registers its entry points at load time.
// R = rows (tokens), C = columns (features).
#include "accel/models/fused_ops.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxUtils.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <curand_kernel.h>

#include <algorithm>
#include <mutex>

namespace accel::models::detail {
namespace {

constexpr int kThreads = 256;        // threads per block of every kernel
constexpr int kMaxPerThread = 16;    // LayerNorm: columns per thread (C <= kThreads * kMaxPerThread)
constexpr int kMaxRowBlocks = 1024;  // blocks over rows; each block loops over its rows

template <typename T>
__device__ __forceinline__ float to_f(T v) {
  return static_cast<float>(v);
}
template <typename T>
__device__ __forceinline__ T from_f(float v) {
  return static_cast<T>(v);
}

__device__ __forceinline__ float gelu_f(float v, bool tanh_approx) {
  if (tanh_approx) {
    const float k = 0.7978845608028654f;  // sqrt(2 / pi)
    return 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
  }
  return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
}

__device__ __forceinline__ float gelu_grad_f(float v, bool tanh_approx) {
  if (tanh_approx) {
    const float k = 0.7978845608028654f;
    const float inner = k * (v + 0.044715f * v * v * v);
    const float t = tanhf(inner);
    const float d_inner = k * (1.0f + 3.0f * 0.044715f * v * v);
    return 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * d_inner;
  }
  const float cdf = 0.5f * (1.0f + erff(v * 0.7071067811865476f));
  const float pdf = 0.3989422804014327f * expf(-0.5f * v * v);  // 1 / sqrt(2 pi)
  return cdf + v * pdf;
}

// ---- bias + GELU --------------------------------------------------------------------------------
// Grid (row blocks, column blocks); thread owns column c and walks rows blockIdx.x, +gridDim.x, ...

template <typename T>
__global__ void bias_gelu_fwd_kernel(const T* __restrict__ x, const float* __restrict__ b, T* __restrict__ y,
                                     int64_t R, int64_t C, bool tanh_approx) {
  const int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float bc = b[c];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const int64_t i = r * C + c;
    y[i] = from_f<T>(gelu_f(to_f(x[i]) + bc, tanh_approx));
  }
}

// dx = dy * gelu'(x + b); partial[blockIdx.x, c] = sum of dx over this block's rows.
template <typename T, typename GT>
__global__ void bias_gelu_bwd_kernel(const GT* __restrict__ dy, const T* __restrict__ x,
                                     const float* __restrict__ b, T* __restrict__ dx,
                                     float* __restrict__ partial, int64_t R, int64_t C, bool tanh_approx) {
  const int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float bc = b[c];
  float acc = 0.0f;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const int64_t i = r * C + c;
    const float g = to_f(dy[i]) * gelu_grad_f(to_f(x[i]) + bc, tanh_approx);
    const T rounded = from_f<T>(g);
    dx[i] = rounded;
    acc += to_f(rounded);  // the bias gradient sums what dx holds, as the composite's sum(dx) does
  }
  partial[static_cast<int64_t>(blockIdx.x) * C + c] = acc;
}

// ---- block reductions -----------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum of `v` over the block (every thread gets it). `shared` holds kThreads / 32 floats.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read from the previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x >> 5); ++w) total += shared[w];
  return total;
}

// ---- bias + dropout + residual + LayerNorm -------------------------------------------------------
// One block per row at a time (rows blockIdx.x, +gridDim.x, ...); thread t owns columns
// t, t + kThreads, ... (at most kMaxPerThread of them), held in registers.

template <typename XT, typename RT, typename OT>
__global__ void bdrln_fwd_kernel(const XT* __restrict__ x, const float* __restrict__ bias,
                                 const RT* __restrict__ res, const float* __restrict__ gamma,
                                 const float* __restrict__ beta, OT* __restrict__ y, float* __restrict__ z,
                                 float* __restrict__ mean_out, float* __restrict__ rstd_out,
                                 uint8_t* __restrict__ keep, int64_t R, int64_t C, float dropout_p, float eps,
                                 at::PhiloxCudaState philox) {
  __shared__ float shared[kThreads / 32];
  const bool dropout = keep != nullptr;
  curandStatePhilox4_32_10_t state;
  if (dropout) {
    const auto seeds = at::cuda::philox::unpack(philox);
    curand_init(std::get<0>(seeds), static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x,
                std::get<1>(seeds), &state);
  }
  const float keep_scale = dropout ? 1.0f / (1.0f - dropout_p) : 1.0f;
  const float inv_c = 1.0f / static_cast<float>(C);
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    float v[kMaxPerThread];
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxPerThread; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * kThreads;
      v[k] = 0.0f;
      if (c < C) {
        const int64_t i = r * C + c;
        float a = to_f(x[i]) + bias[c];
        if (dropout) {
          const bool kept = curand_uniform(&state) > dropout_p;  // uniform in (0, 1]
          keep[i] = kept ? 1 : 0;
          a = kept ? a * keep_scale : 0.0f;
        }
        a += to_f(res[i]);
        z[i] = a;
        v[k] = a;
        sum += a;
      }
    }
    const float mean = block_sum(sum, shared) * inv_c;
    float sq = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxPerThread; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * kThreads;
      if (c < C) sq += (v[k] - mean) * (v[k] - mean);
    }
    const float rstd = rsqrtf(block_sum(sq, shared) * inv_c + eps);
#pragma unroll
    for (int k = 0; k < kMaxPerThread; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * kThreads;
      if (c < C) y[r * C + c] = from_f<OT>((v[k] - mean) * rstd * gamma[c] + beta[c]);
    }
    if (threadIdx.x == 0) {
      mean_out[r] = mean;
      rstd_out[r] = rstd;
    }
  }
}

// dz = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma; dresidual = dz;
// dx = dz * keep / (1 - p). Partial sums per block: dgamma (dy * xhat), dbeta (dy), dbias (dx).
template <typename XT, typename RT, typename OT>
__global__ void bdrln_bwd_kernel(const OT* __restrict__ dy, const float* __restrict__ z,
                                 const float* __restrict__ mean_in, const float* __restrict__ rstd_in,
                                 const uint8_t* __restrict__ keep, const float* __restrict__ gamma,
                                 XT* __restrict__ dx, RT* __restrict__ dres, float* __restrict__ partial,
                                 int64_t R, int64_t C, float dropout_p) {
  __shared__ float shared[kThreads / 32];
  const float keep_scale = keep != nullptr ? 1.0f / (1.0f - dropout_p) : 1.0f;
  const float inv_c = 1.0f / static_cast<float>(C);
  float dgamma[kMaxPerThread], dbeta[kMaxPerThread], dbias[kMaxPerThread];
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) dgamma[k] = dbeta[k] = dbias[k] = 0.0f;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const float mean = mean_in[r], rstd = rstd_in[r];
    float xhat[kMaxPerThread], g[kMaxPerThread];
    float sum_g = 0.0f, sum_gx = 0.0f;
#pragma unroll
    for (int k = 0; k < kMaxPerThread; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * kThreads;
      xhat[k] = g[k] = 0.0f;
      if (c < C) {
        const int64_t i = r * C + c;
        const float d = to_f(dy[i]);
        xhat[k] = (z[i] - mean) * rstd;
        g[k] = d * gamma[c];
        dgamma[k] += d * xhat[k];
        dbeta[k] += d;
        sum_g += g[k];
        sum_gx += g[k] * xhat[k];
      }
    }
    const float mean_g = block_sum(sum_g, shared) * inv_c;
    const float mean_gx = block_sum(sum_gx, shared) * inv_c;
#pragma unroll
    for (int k = 0; k < kMaxPerThread; ++k) {
      const int64_t c = threadIdx.x + static_cast<int64_t>(k) * kThreads;
      if (c < C) {
        const int64_t i = r * C + c;
        const float dz = rstd * (g[k] - mean_g - xhat[k] * mean_gx);
        dres[i] = from_f<RT>(dz);
        float d = dz;
        if (keep != nullptr) d = keep[i] ? dz * keep_scale : 0.0f;
        const XT rounded = from_f<XT>(d);
        dx[i] = rounded;
        dbias[k] += to_f(rounded);
      }
    }
  }
  // partial is (3, gridDim.x, C): dgamma, dbeta, dbias.
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(k) * kThreads;
    if (c < C) {
      const int64_t row = static_cast<int64_t>(blockIdx.x) * C + c,
                    plane = static_cast<int64_t>(gridDim.x) * C;
      partial[row] = dgamma[k];
      partial[plane + row] = dbeta[k];
      partial[2 * plane + row] = dbias[k];
    }
  }
}

// ---- host side ------------------------------------------------------------------------------------

// Calls fn(T{}) with T the C++ type of `t` (fp32, bf16 or fp16).
template <typename F>
void dispatch_float(at::ScalarType t, F&& fn) {
  switch (t) {
    case at::kFloat:
      fn(float{});
      return;
    case at::kBFloat16:
      fn(c10::BFloat16{});
      return;
    case at::kHalf:
      fn(c10::Half{});
      return;
    default:
      TORCH_CHECK(false, "accel fused ops: unsupported dtype ", t);
  }
}

int row_blocks(int64_t R) {
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({R, int64_t{4} * sms, kMaxRowBlocks})));
}

at::Tensor bias_gelu_forward(const at::Tensor& x, const at::Tensor& bias, bool tanh_approximation) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t C = x.size(-1), R = x.numel() / C;
  at::Tensor b = bias.to(at::kFloat).contiguous();
  at::Tensor y = at::empty_like(x);
  if (R == 0) return y;
  const dim3 grid(row_blocks(R), static_cast<unsigned>((C + kThreads - 1) / kThreads));
  auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_float(x.scalar_type(), [&](auto t) {
    using T = decltype(t);
    bias_gelu_fwd_kernel<T><<<grid, kThreads, 0, stream>>>(x.data_ptr<T>(), b.data_ptr<float>(),
                                                           y.data_ptr<T>(), R, C, tanh_approximation);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

std::pair<at::Tensor, at::Tensor> bias_gelu_backward(const at::Tensor& dy_in, const at::Tensor& x,
                                                     const at::Tensor& bias, bool tanh_approximation) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t C = x.size(-1), R = x.numel() / C;
  at::Tensor dy = dy_in.contiguous();
  at::Tensor b = bias.to(at::kFloat).contiguous();
  at::Tensor dx = at::empty_like(x);
  if (R == 0) return {dx, at::zeros({C}, x.options().dtype(at::kFloat))};
  const int blocks = row_blocks(R);
  at::Tensor partial = at::empty({blocks, C}, x.options().dtype(at::kFloat));
  const dim3 grid(blocks, static_cast<unsigned>((C + kThreads - 1) / kThreads));
  auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_float(x.scalar_type(), [&](auto t) {
    using T = decltype(t);
    dispatch_float(dy.scalar_type(), [&](auto gt) {
      using GT = decltype(gt);
      bias_gelu_bwd_kernel<T, GT><<<grid, kThreads, 0, stream>>>(
          dy.data_ptr<GT>(), x.data_ptr<T>(), b.data_ptr<float>(), dx.data_ptr<T>(),
          partial.data_ptr<float>(), R, C, tanh_approximation);
    });
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {dx, partial.sum(0)};
}

// The supported (x, residual, output) dtype combinations: residual is x's dtype or fp32, the output
// the residual's dtype or fp32. Calls fn(XT{}, RT{}, OT{}).
template <typename F>
void dispatch_bdrln(at::ScalarType xt, at::ScalarType rt, at::ScalarType ot, F&& fn) {
  dispatch_float(xt, [&](auto x) {
    using XT = decltype(x);
    TORCH_CHECK(rt == xt || rt == at::kFloat, "accel fused LayerNorm: residual dtype ", rt, " with x ", xt);
    TORCH_CHECK(ot == rt || ot == at::kFloat, "accel fused LayerNorm: output dtype ", ot, " with residual ",
                rt);
    if (rt == at::kFloat) {
      fn(x, float{}, float{});
    } else if (ot == at::kFloat) {
      fn(x, x, float{});
    } else {
      fn(x, x, x);
    }
  });
}

std::vector<at::Tensor> bdrln_forward(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& residual,
                                      const at::Tensor& weight, const at::Tensor& ln_bias, double dropout_p,
                                      double eps, at::ScalarType out_type) {
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t C = x.size(-1), R = x.numel() / C;
  TORCH_CHECK(C <= int64_t{kThreads} * kMaxPerThread, "accel fused LayerNorm: ", C, " columns (at most ",
              kThreads * kMaxPerThread, ")");
  at::Tensor b = bias.to(at::kFloat).contiguous(), g = weight.to(at::kFloat).contiguous(),
             be = ln_bias.to(at::kFloat).contiguous();
  auto f32 = x.options().dtype(at::kFloat);
  at::Tensor y = at::empty(x.sizes(), x.options().dtype(out_type));
  at::Tensor z = at::empty(x.sizes(), f32);
  at::Tensor mean = at::empty({R}, f32), rstd = at::empty({R}, f32);
  at::Tensor keep;
  if (dropout_p > 0) keep = at::empty(x.sizes(), x.options().dtype(at::kByte));
  if (R == 0) return {y, z, mean, rstd, keep};
  const int blocks = row_blocks(R);
  at::PhiloxCudaState philox;
  if (dropout_p > 0) {
    auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
        std::nullopt, at::cuda::detail::getDefaultCUDAGenerator(x.device().index()));
    // One 32-bit draw per element a thread handles, rounded up to Philox's 4.
    const int64_t per_thread = ((R + blocks - 1) / blocks) * kMaxPerThread;
    std::lock_guard<std::mutex> lock(gen->mutex_);
    philox = gen->philox_cuda_state(static_cast<uint64_t>((per_thread + 3) / 4 * 4));
  }
  auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_bdrln(x.scalar_type(), residual.scalar_type(), out_type, [&](auto xt, auto rt, auto ot) {
    using XT = decltype(xt);
    using RT = decltype(rt);
    using OT = decltype(ot);
    bdrln_fwd_kernel<XT, RT, OT><<<blocks, kThreads, 0, stream>>>(
        x.data_ptr<XT>(), b.data_ptr<float>(), residual.data_ptr<RT>(), g.data_ptr<float>(),
        be.data_ptr<float>(), y.data_ptr<OT>(), z.data_ptr<float>(), mean.data_ptr<float>(),
        rstd.data_ptr<float>(), keep.defined() ? keep.data_ptr<uint8_t>() : nullptr, R, C,
        static_cast<float>(dropout_p), static_cast<float>(eps), philox);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {y, z, mean, rstd, keep};
}

std::vector<at::Tensor> bdrln_backward(const at::Tensor& dy_in, const at::Tensor& z, const at::Tensor& mean,
                                       const at::Tensor& rstd, const at::Tensor& keep,
                                       const at::Tensor& weight, double dropout_p, at::ScalarType x_dtype,
                                       at::ScalarType residual_dtype) {
  const c10::cuda::CUDAGuard guard(z.device());
  const int64_t C = z.size(-1), R = z.numel() / C;
  at::Tensor dy = dy_in.contiguous();
  at::Tensor g = weight.to(at::kFloat).contiguous();
  at::Tensor dx = at::empty(z.sizes(), z.options().dtype(x_dtype));
  at::Tensor dres = at::empty(z.sizes(), z.options().dtype(residual_dtype));
  const int blocks = row_blocks(std::max<int64_t>(R, 1));
  at::Tensor partial = at::zeros({3, blocks, C}, z.options().dtype(at::kFloat));
  if (R > 0) {
    auto stream = at::cuda::getCurrentCUDAStream();
    dispatch_bdrln(x_dtype, residual_dtype, dy.scalar_type(), [&](auto xt, auto rt, auto ot) {
      using XT = decltype(xt);
      using RT = decltype(rt);
      using OT = decltype(ot);
      bdrln_bwd_kernel<XT, RT, OT><<<blocks, kThreads, 0, stream>>>(
          dy.data_ptr<OT>(), z.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(),
          keep.defined() ? keep.data_ptr<uint8_t>() : nullptr, g.data_ptr<float>(), dx.data_ptr<XT>(),
          dres.data_ptr<RT>(), partial.data_ptr<float>(), R, C, static_cast<float>(dropout_p));
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  at::Tensor sums = partial.sum(1);  // (3, C)
  return {dx, sums[2], dres, sums[0], sums[1]};
}

const FusedOpsCudaKernels kKernels{&bias_gelu_forward, &bias_gelu_backward, &bdrln_forward, &bdrln_backward};

struct Registrar {
  Registrar() { register_fused_ops_cuda_kernels(&kKernels); }
};
const Registrar kRegistrar;

}  // namespace
}  // namespace accel::models::detail
