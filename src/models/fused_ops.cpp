// Fused bias-GELU and bias-dropout-residual-LayerNorm (accel/models/fused_ops.h): the autograd
// functions over the CUDA kernels (fused_ops_cuda.cu, registered when built), the eligibility
// checks and the composite fallbacks.
#include "accel/models/fused_ops.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

#include <atomic>

namespace accel::models {
namespace detail {
namespace {

std::atomic<const FusedOpsCudaKernels*> g_kernels{nullptr};
std::atomic<int64_t> g_calls{0};

bool is_float_type(at::ScalarType t) {
  return t == at::kFloat || t == at::kBFloat16 || t == at::kHalf;
}

bool vector_of(const at::Tensor& t, int64_t n, const at::Device& device) {
  return t.defined() && t.dim() == 1 && t.size(0) == n && t.device() == device &&
         is_float_type(t.scalar_type());
}

// The output dtype of the fused LayerNorm: fp32 under CUDA autocast (LayerNorm's policy), else
// what `x + residual` promotes to.
at::ScalarType layer_norm_out_type(const at::Tensor& x, const at::Tensor& residual) {
  return at::autocast::is_autocast_enabled(at::kCUDA)
             ? at::kFloat
             : at::promote_types(x.scalar_type(), residual.scalar_type());
}

class BiasGelu : public torch::autograd::Function<BiasGelu> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& bias, bool tanh_approximation) {
    const at::Tensor xc = x.contiguous();
    ctx->save_for_backward({xc, bias});
    ctx->saved_data["tanh"] = tanh_approximation;
    return fused_ops_cuda_kernels()->bias_gelu_forward(xc, bias, tanh_approximation);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &bias = saved[1];
    auto [dx, db] =
        fused_ops_cuda_kernels()->bias_gelu_backward(grads[0], x, bias, ctx->saved_data["tanh"].toBool());
    return {dx, db.to(bias.scalar_type()), at::Tensor()};
  }
};

class BiasDropoutResidualLayerNorm : public torch::autograd::Function<BiasDropoutResidualLayerNorm> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& bias, const at::Tensor& residual, const at::Tensor& weight,
                            const at::Tensor& ln_bias, double dropout_p, double eps) {
    const at::Tensor xc = x.contiguous(), rc = residual.contiguous();
    auto out = fused_ops_cuda_kernels()->bdrln_forward(xc, bias, rc, weight, ln_bias, dropout_p, eps,
                                                       layer_norm_out_type(x, residual));
    ctx->save_for_backward({out[1], out[2], out[3], out[4], weight});
    ctx->saved_data["p"] = dropout_p;
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["residual_type"] = static_cast<int64_t>(residual.scalar_type());
    ctx->saved_data["bias_type"] = static_cast<int64_t>(bias.scalar_type());
    ctx->saved_data["ln_bias_type"] = static_cast<int64_t>(ln_bias.scalar_type());
    return out[0];
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto type = [&](const char* key) { return static_cast<at::ScalarType>(ctx->saved_data[key].toInt()); };
    auto g = fused_ops_cuda_kernels()->bdrln_backward(grads[0], saved[0], saved[1], saved[2], saved[3],
                                                      saved[4], ctx->saved_data["p"].toDouble(),
                                                      type("x_type"), type("residual_type"));
    return {g[0],
            g[1].to(type("bias_type")),
            g[2],
            g[3].to(saved[4].scalar_type()),
            g[4].to(type("ln_bias_type")),
            at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

const FusedOpsCudaKernels* fused_ops_cuda_kernels() {
  return g_kernels.load();
}

void register_fused_ops_cuda_kernels(const FusedOpsCudaKernels* kernels) {
  g_kernels.store(kernels);
}

int64_t fused_ops_cuda_calls() {
  return g_calls.load();
}

at::Tensor bias_gelu_composite(const at::Tensor& x, const at::Tensor& bias, bool tanh_approximation) {
  // The bias in x's dtype, as a linear layer under autocast adds it.
  const at::Tensor a = x + bias.to(x.scalar_type());
  return tanh_approximation ? at::gelu(a, "tanh") : at::gelu(a);
}

at::Tensor bias_dropout_residual_layer_norm_composite(const at::Tensor& x, const at::Tensor& bias,
                                                      const at::Tensor& residual, const at::Tensor& weight,
                                                      const at::Tensor& ln_bias, double dropout_p,
                                                      bool training, double eps) {
  at::Tensor a = x + bias.to(x.scalar_type());
  if (training && dropout_p > 0) a = at::dropout(a, dropout_p, /*train=*/true);
  return at::layer_norm(a + residual, {x.size(-1)}, weight, ln_bias, eps);
}

bool bias_gelu_cuda_eligible(const at::Tensor& x, const at::Tensor& bias) {
  if (fused_ops_cuda_kernels() == nullptr || !x.defined() || !x.is_cuda() || x.dim() < 1 || x.size(-1) == 0)
    return false;
  if (x.layout() != at::kStrided || !is_float_type(x.scalar_type())) return false;
  return vector_of(bias, x.size(-1), x.device());
}

bool bias_dropout_residual_layer_norm_cuda_eligible(const at::Tensor& x, const at::Tensor& bias,
                                                    const at::Tensor& residual, const at::Tensor& weight,
                                                    const at::Tensor& ln_bias) {
  if (fused_ops_cuda_kernels() == nullptr || !x.defined() || !residual.defined() || !x.is_cuda())
    return false;
  if (x.dim() < 1 || x.size(-1) == 0 || x.size(-1) > 4096 || x.sizes() != residual.sizes()) return false;
  if (x.layout() != at::kStrided || residual.layout() != at::kStrided || residual.device() != x.device())
    return false;
  const auto xt = x.scalar_type(), rt = residual.scalar_type();
  if (!is_float_type(xt) || !(rt == xt || rt == at::kFloat)) return false;
  const auto out = layer_norm_out_type(x, residual);
  if (!(out == rt || out == at::kFloat)) return false;
  const int64_t c = x.size(-1);
  return vector_of(bias, c, x.device()) && vector_of(weight, c, x.device()) &&
         vector_of(ln_bias, c, x.device());
}

}  // namespace detail

bool fused_ops_cuda_available() {
  return detail::fused_ops_cuda_kernels() != nullptr;
}

at::Tensor bias_gelu(const at::Tensor& x, const at::Tensor& bias, bool tanh_approximation) {
  if (!detail::bias_gelu_cuda_eligible(x, bias))
    return detail::bias_gelu_composite(x, bias, tanh_approximation);
  ++detail::g_calls;
  return detail::BiasGelu::apply(x, bias, tanh_approximation);
}

at::Tensor bias_dropout_residual_layer_norm(const at::Tensor& x, const at::Tensor& bias,
                                            const at::Tensor& residual, const at::Tensor& weight,
                                            const at::Tensor& ln_bias, double dropout_p, bool training,
                                            double eps) {
  if (!detail::bias_dropout_residual_layer_norm_cuda_eligible(x, bias, residual, weight, ln_bias))
    return detail::bias_dropout_residual_layer_norm_composite(x, bias, residual, weight, ln_bias, dropout_p,
                                                              training, eps);
  ++detail::g_calls;
  return detail::BiasDropoutResidualLayerNorm::apply(x, bias, residual, weight, ln_bias,
                                                     training ? dropout_p : 0.0, eps);
}

}  // namespace accel::models
