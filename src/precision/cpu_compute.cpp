#include "accel/precision/cpu_compute.h"

#include "accel/core/error.h"
#include "accel/core/state.h"
#include "accel/precision/attention.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace accel {
namespace {

std::atomic<bool> g_fp32_bf16{false};
std::atomic<bool> g_fp32_half{false};
std::atomic<int64_t> g_calls{0};
std::mutex g_mu;
// Alive while either dtype is in kFp32 mode. Deliberately not destroyed at exit: the dispatcher it
// deregisters from may already be gone then.
torch::Library* g_library = nullptr;

// The autocast dtype on the CPU, and whether its matmuls are computed in fp32 now.
bool fp32_compute_active(c10::ScalarType dt) {
  return (dt == at::kBFloat16 && g_fp32_bf16.load()) || (dt == at::kHalf && g_fp32_half.load());
}

at::Tensor up(const at::Tensor& t) {
  return t.defined() && t.is_floating_point() ? t.to(at::kFloat) : t;
}

// x @ w_t (+ bias) with reduced-precision inputs, fp32 products, one rounding of the result to the
// reduced dtype: x (..., k), w_t (k, n), bias broadcastable to (..., n) or absent. Saves the
// reduced-precision x and w_t (as a native reduced-precision GEMM would), so activation memory is
// unchanged; the backward GEMMs run in fp32 on the up-cast operands and round their results to
// the input dtypes, again as a native kernel with fp32 accumulation would. nn::Linear (at::linear,
// or LibTorch's F::linear: addmm for 2-D inputs, matmul + bias otherwise) and plain matmul/mm
// with a 2-D right operand all come here.
class AffineFp32Compute : public torch::autograd::Function<AffineFp32Compute> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w_t,
                            const std::optional<at::Tensor>& bias) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const bool has_bias = bias && bias->defined();
    ctx->save_for_backward({x, w_t});
    ctx->saved_data["has_bias"] = has_bias;
    if (has_bias) {
      ctx->saved_data["bias_sizes"] = bias->sizes().vec();
      ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias->scalar_type());
    }
    at::Tensor y = at::matmul(up(x), up(w_t));
    if (has_bias) y.add_(up(*bias));
    return y.to(x.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w_t = saved[1];
    const int64_t k = w_t.size(0), n = w_t.size(1);
    at::Tensor g = grads[0].to(at::kFloat);
    at::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) gx = g.matmul(up(w_t).t()).reshape(x.sizes()).to(x.scalar_type());
    if (ctx->needs_input_grad(1))
      gw = up(x).reshape({-1, k}).t().mm(g.reshape({-1, n})).to(w_t.scalar_type());
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) {
      const auto sizes = ctx->saved_data["bias_sizes"].toIntVector();
      gb = at::sum_to(g, sizes).to(static_cast<at::ScalarType>(ctx->saved_data["bias_dtype"].toInt()));
    }
    return {gx, gw, gb};
  }
};

bool strided(const at::Tensor& t) {
  return t.defined() && t.layout() == at::kStrided && !t.is_nested();
}

// Whether x @ w_t fits AffineFp32Compute: x (..., k) with at least one dimension, w_t (k, n).
bool affine_shapes(const at::Tensor& x, const at::Tensor& w_t, c10::ScalarType dt) {
  return strided(x) && strided(w_t) && x.scalar_type() == dt && w_t.scalar_type() == dt && x.dim() >= 1 &&
         w_t.dim() == 2 && x.size(-1) == w_t.size(0);
}

struct Casted {
  c10::ScalarType dt;
  bool fp32;  // compute in fp32 now
};

Casted autocast_state() {
  const auto dt = at::autocast::get_autocast_dtype(at::kCPU);
  return {dt, fp32_compute_active(dt)};
}

at::Tensor cast(c10::ScalarType dt, const at::Tensor& t) {
  return at::autocast::cached_cast(dt, t, c10::DeviceType::CPU);
}

at::Tensor autocast_linear(const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto st = autocast_state();
  at::Tensor x = cast(st.dt, input), w = cast(st.dt, weight);
  std::optional<at::Tensor> b = at::autocast::cached_cast(st.dt, bias, c10::DeviceType::CPU);
  if (!st.fp32 || !strided(w) || w.dim() != 2 || !affine_shapes(x, w.t(), st.dt)) return at::linear(x, w, b);
  ++g_calls;
  return AffineFp32Compute::apply(x, w.t(), b);
}

at::Tensor autocast_matmul(const at::Tensor& self, const at::Tensor& other) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto st = autocast_state();
  at::Tensor a = cast(st.dt, self), b = cast(st.dt, other);
  if (!st.fp32 || a.scalar_type() != st.dt || b.scalar_type() != st.dt) return at::matmul(a, b);
  ++g_calls;
  if (affine_shapes(a, b, st.dt)) return AffineFp32Compute::apply(a, b, std::nullopt);
  // Other shapes (batched @ batched, vectors): autograd through the up-casts; backward then keeps
  // fp32 copies of the operands.
  return at::matmul(up(a), up(b)).to(st.dt);
}

at::Tensor autocast_mm(const at::Tensor& self, const at::Tensor& mat2) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto st = autocast_state();
  at::Tensor a = cast(st.dt, self), b = cast(st.dt, mat2);
  if (!st.fp32 || a.dim() != 2 || !affine_shapes(a, b, st.dt)) return at::mm(a, b);
  ++g_calls;
  return AffineFp32Compute::apply(a, b, std::nullopt);
}

at::Tensor autocast_addmm(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                          const at::Scalar& beta, const at::Scalar& alpha) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto st = autocast_state();
  at::Tensor c = cast(st.dt, self), a = cast(st.dt, mat1), b = cast(st.dt, mat2);
  const bool unit = beta.equal(1) && alpha.equal(1);
  if (!st.fp32 || !unit || a.dim() != 2 || !affine_shapes(a, b, st.dt) || !strided(c) ||
      c.scalar_type() != st.dt)
    return at::addmm(c, a, b, beta, alpha);
  ++g_calls;
  return AffineFp32Compute::apply(a, b, c);
}

at::Tensor autocast_bmm(const at::Tensor& self, const at::Tensor& mat2) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto st = autocast_state();
  at::Tensor a = cast(st.dt, self), b = cast(st.dt, mat2);
  if (!st.fp32 || a.scalar_type() != st.dt || b.scalar_type() != st.dt) return at::bmm(a, b);
  ++g_calls;
  return at::bmm(up(a), up(b)).to(st.dt);
}

// SDPA: inputs cast as torch's policy does, then attention in fp32 and the output rounded. In
// training with dropout that is accel's kernel (precision/attention.h: fp32 math, saves the
// reduced-precision q/k/v). Otherwise autograd records the up-casts and torch's kernel runs in
// fp32, so backward keeps fp32 copies of q, k and v (3·B·T·H floats per layer).
at::Tensor autocast_sdpa(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                         const std::optional<at::Tensor>& attn_mask, double dropout_p, bool is_causal,
                         std::optional<double> scale, bool enable_gqa) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const auto st = autocast_state();
  at::Tensor q = cast(st.dt, query), k = cast(st.dt, key), v = cast(st.dt, value);
  std::optional<at::Tensor> mask = at::autocast::cached_cast(st.dt, attn_mask, c10::DeviceType::CPU);
  if (!st.fp32 || q.scalar_type() != st.dt)
    return at::scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal, scale, enable_gqa);
  ++g_calls;
  if (detail::cpu_attention_eligible(q, k, v, mask, dropout_p, is_causal))
    return detail::cpu_attention_kernel(q, k, v, mask, dropout_p, is_causal, scale);
  std::optional<at::Tensor> mask32;
  if (mask && mask->defined()) mask32 = up(*mask);
  return at::scaled_dot_product_attention(up(q), up(k), up(v), mask32, dropout_p, is_causal, scale,
                                          enable_gqa)
      .to(st.dt);
}

// ---- convolutions ---------------------------------------------------------------------------

// at::convolution's arguments besides the tensors, each list expanded to one entry per spatial
// dimension.
struct ConvSpec {
  std::vector<int64_t> stride, padding, dilation, output_padding;
  bool transposed = false;
  int64_t groups = 1;
};

// One convolution (conv1d/2d/3d or a transposed one) with reduced-precision inputs, fp32 compute
// and one rounding of the output to the reduced dtype. Saves x and w as given (reduced precision),
// so activation memory is that of a native mixed-precision convolution; backward up-casts them,
// runs torch's fp32 convolution_backward and rounds each gradient to its input's dtype.
class ConvFp32Compute : public torch::autograd::Function<ConvFp32Compute> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const std::optional<at::Tensor>& bias, const ConvSpec& spec) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const bool has_bias = bias && bias->defined();
    ctx->save_for_backward({x, w});
    ctx->saved_data["stride"] = spec.stride;
    ctx->saved_data["padding"] = spec.padding;
    ctx->saved_data["dilation"] = spec.dilation;
    ctx->saved_data["output_padding"] = spec.output_padding;
    ctx->saved_data["transposed"] = spec.transposed;
    ctx->saved_data["groups"] = spec.groups;
    ctx->saved_data["has_bias"] = has_bias;
    if (has_bias) {
      ctx->saved_data["bias_sizes"] = bias->sizes().vec();
      ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias->scalar_type());
    }
    std::optional<at::Tensor> b32;
    if (has_bias) b32 = up(*bias);
    return at::convolution(up(x), up(w), b32, spec.stride, spec.padding, spec.dilation, spec.transposed,
                           spec.output_padding, spec.groups)
        .to(x.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    auto& d = ctx->saved_data;
    const bool has_bias = d["has_bias"].toBool();
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                   has_bias && ctx->needs_input_grad(2)};
    std::vector<int64_t> bias_sizes;
    if (has_bias) bias_sizes = d["bias_sizes"].toIntVector();
    auto [gx, gw, gb] = at::convolution_backward(
        grads[0].to(at::kFloat), up(x), up(w),
        has_bias ? at::OptionalIntArrayRef(bias_sizes) : at::OptionalIntArrayRef(), d["stride"].toIntVector(),
        d["padding"].toIntVector(), d["dilation"].toIntVector(), d["transposed"].toBool(),
        d["output_padding"].toIntVector(), d["groups"].toInt(), mask);
    if (gx.defined()) gx = gx.to(x.scalar_type());
    if (gw.defined()) gw = gw.to(w.scalar_type());
    if (gb.defined()) gb = gb.to(static_cast<at::ScalarType>(d["bias_dtype"].toInt()));
    return {gx, gw, gb, at::Tensor()};
  }
};

// `v` with one entry per spatial dimension (a single entry is repeated, as torch does).
std::vector<int64_t> per_dim(c10::SymIntArrayRef v, int64_t dims) {
  std::vector<int64_t> out;
  for (const auto& s : v) out.push_back(s.guard_int(__FILE__, __LINE__));
  if (out.size() == 1 && dims > 1) out.assign(static_cast<size_t>(dims), out[0]);
  return out;
}

// The casted operands of a convolution and whether the fp32 path takes them: strided tensors of
// the autocast dtype, a weight of N+2 dimensions and an input of N+2 (batched) or N+1 (unbatched).
struct ConvOperands {
  at::Tensor x, w;
  std::optional<at::Tensor> b;
  bool fp32 = false;
};

ConvOperands conv_operands(int64_t n, const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias) {
  const auto st = autocast_state();
  ConvOperands o{cast(st.dt, input), cast(st.dt, weight),
                 at::autocast::cached_cast(st.dt, bias, c10::DeviceType::CPU)};
  const bool bias_ok = !o.b || !o.b->defined() || (strided(*o.b) && o.b->scalar_type() == st.dt);
  o.fp32 = st.fp32 && strided(o.x) && strided(o.w) && o.x.scalar_type() == st.dt &&
           o.w.scalar_type() == st.dt && bias_ok && o.w.dim() == n + 2 &&
           (o.x.dim() == n + 2 || o.x.dim() == n + 1);
  return o;
}

// The fp32-compute convolution of eligible operands; an unbatched input gets a batch of one.
at::Tensor conv_fp32(const ConvOperands& o, const ConvSpec& spec) {
  ++g_calls;
  const bool unbatched = o.x.dim() == o.w.dim() - 1;
  at::Tensor y = ConvFp32Compute::apply(unbatched ? o.x.unsqueeze(0) : o.x, o.w, o.b, spec);
  return unbatched ? y.squeeze(0) : y;
}

template <int N>
at::Tensor native_conv(const ConvOperands& o, c10::SymIntArrayRef stride, c10::SymIntArrayRef padding,
                       c10::SymIntArrayRef dilation, c10::SymInt groups) {
  if constexpr (N == 1) return at::conv1d_symint(o.x, o.w, o.b, stride, padding, dilation, std::move(groups));
  if constexpr (N == 2) return at::conv2d_symint(o.x, o.w, o.b, stride, padding, dilation, std::move(groups));
  if constexpr (N == 3) return at::conv3d_symint(o.x, o.w, o.b, stride, padding, dilation, std::move(groups));
}

template <int N>
at::Tensor native_conv(const ConvOperands& o, c10::SymIntArrayRef stride, c10::string_view padding,
                       c10::SymIntArrayRef dilation, c10::SymInt groups) {
  if constexpr (N == 1) return at::conv1d_symint(o.x, o.w, o.b, stride, padding, dilation, std::move(groups));
  if constexpr (N == 2) return at::conv2d_symint(o.x, o.w, o.b, stride, padding, dilation, std::move(groups));
  if constexpr (N == 3) return at::conv3d_symint(o.x, o.w, o.b, stride, padding, dilation, std::move(groups));
}

template <int N>
at::Tensor autocast_conv(const at::Tensor& input, const at::Tensor& weight,
                         const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                         c10::SymIntArrayRef padding, c10::SymIntArrayRef dilation, c10::SymInt groups) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const ConvOperands o = conv_operands(N, input, weight, bias);
  if (!o.fp32) return native_conv<N>(o, stride, padding, dilation, std::move(groups));
  ConvSpec spec{per_dim(stride, N),
                per_dim(padding, N),
                per_dim(dilation, N),
                std::vector<int64_t>(N, 0),
                false,
                groups.guard_int(__FILE__, __LINE__)};
  return conv_fp32(o, spec);
}

// conv{1,2,3}d with padding "valid" or "same" (stride 1), resolved as torch does: "same" pads
// dilation * (k - 1) in total per dimension, the odd one on the right (the input is padded first
// then). Anything else goes to torch's kernel, which reports the error.
template <int N>
at::Tensor autocast_conv_padding(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                                 c10::string_view padding, c10::SymIntArrayRef dilation, c10::SymInt groups) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  ConvOperands o = conv_operands(N, input, weight, bias);
  ConvSpec spec;
  if (o.fp32) {
    spec = ConvSpec{per_dim(stride, N),
                    std::vector<int64_t>(N, 0),
                    per_dim(dilation, N),
                    std::vector<int64_t>(N, 0),
                    false,
                    groups.guard_int(__FILE__, __LINE__)};
  }
  const bool valid = padding == "valid";
  const bool same = padding == "same" && o.fp32 &&
                    std::all_of(spec.stride.begin(), spec.stride.end(), [](int64_t s) { return s == 1; });
  if (!o.fp32 || (!valid && !same)) return native_conv<N>(o, stride, padding, dilation, std::move(groups));
  if (same) {
    std::vector<int64_t> pad_nd(2 * N, 0);  // constant_pad_nd order: last dimension first
    bool asymmetric = false;
    for (int64_t i = 0; i < N; ++i) {
      const int64_t total = spec.dilation[i] * (o.w.size(i + 2) - 1);
      spec.padding[i] = total / 2;
      if (total % 2 != 0) {
        asymmetric = true;
        pad_nd[2 * (N - 1 - i) + 1] = 1;
      }
    }
    if (asymmetric) o.x = at::constant_pad_nd(o.x, pad_nd, 0);
  }
  return conv_fp32(o, spec);
}

template <int N>
at::Tensor autocast_conv_transpose(const at::Tensor& input, const at::Tensor& weight,
                                   const std::optional<at::Tensor>& bias, c10::SymIntArrayRef stride,
                                   c10::SymIntArrayRef padding, c10::SymIntArrayRef output_padding,
                                   c10::SymInt groups, c10::SymIntArrayRef dilation) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const ConvOperands o = conv_operands(N, input, weight, bias);
  if (!o.fp32) {
    if constexpr (N == 1)
      return at::conv_transpose1d_symint(o.x, o.w, o.b, stride, padding, output_padding, std::move(groups),
                                         dilation);
    if constexpr (N == 2)
      return at::conv_transpose2d_symint(o.x, o.w, o.b, stride, padding, output_padding, std::move(groups),
                                         dilation);
    if constexpr (N == 3)
      return at::conv_transpose3d_symint(o.x, o.w, o.b, stride, padding, output_padding, std::move(groups),
                                         dilation);
  }
  ConvSpec spec{per_dim(stride, N),
                per_dim(padding, N),
                per_dim(dilation, N),
                per_dim(output_padding, N),
                true,
                groups.guard_int(__FILE__, __LINE__)};
  return conv_fp32(o, spec);
}

// Registering over torch's own autocast kernels makes the dispatcher warn once per op; that
// warning is expected here, so it is not passed on.
class QuietHandler : public c10::WarningHandler {
 public:
  void process(const c10::Warning&) override {}
};

void update_registration() {
  const bool want = g_fp32_bf16.load() || g_fp32_half.load();
  if (want && !g_library) {
    QuietHandler quiet;
    c10::WarningUtils::WarningHandlerGuard guard(&quiet);
    auto lib = std::make_unique<torch::Library>(torch::Library::IMPL, "aten", c10::DispatchKey::AutocastCPU,
                                                __FILE__, __LINE__);
    lib->impl("linear", TORCH_FN(autocast_linear));
    lib->impl("matmul", TORCH_FN(autocast_matmul));
    lib->impl("mm", TORCH_FN(autocast_mm));
    lib->impl("addmm", TORCH_FN(autocast_addmm));
    lib->impl("bmm", TORCH_FN(autocast_bmm));
    lib->impl("scaled_dot_product_attention", TORCH_FN(autocast_sdpa));
    lib->impl("conv1d", TORCH_FN(autocast_conv<1>));
    lib->impl("conv2d", TORCH_FN(autocast_conv<2>));
    lib->impl("conv3d", TORCH_FN(autocast_conv<3>));
    lib->impl("conv1d.padding", TORCH_FN(autocast_conv_padding<1>));
    lib->impl("conv2d.padding", TORCH_FN(autocast_conv_padding<2>));
    lib->impl("conv3d.padding", TORCH_FN(autocast_conv_padding<3>));
    lib->impl("conv_transpose1d", TORCH_FN(autocast_conv_transpose<1>));
    lib->impl("conv_transpose2d.input", TORCH_FN(autocast_conv_transpose<2>));
    lib->impl("conv_transpose3d.input", TORCH_FN(autocast_conv_transpose<3>));
    g_library = lib.release();
  } else if (!want && g_library) {
    delete g_library;  // deregisters: torch's autocast kernels are back
    g_library = nullptr;
  }
}

}  // namespace

std::optional<CpuAutocastCompute> parse_cpu_autocast_compute(const std::string& value) {
  if (value == "auto") return std::nullopt;
  if (value == "fp32") return CpuAutocastCompute::kFp32;
  if (value == "native") return CpuAutocastCompute::kNative;
  throw InputError(c10::str("ACCEL_CPU_AUTOCAST_COMPUTE='", value,
                            "' is not a mode; use auto (fp32 compute on CPUs without native bf16/fp16), "
                            "fp32 or native."));
}

CpuAutocastCompute resolve_cpu_autocast_compute(c10::ScalarType dtype,
                                                std::optional<CpuAutocastCompute> requested) {
  if (requested) return *requested;
  const bool native = dtype == at::kBFloat16 ? cpu_has_native_bf16()
                      : dtype == at::kHalf   ? cpu_has_native_fp16()
                                             : true;
  return native ? CpuAutocastCompute::kNative : CpuAutocastCompute::kFp32;
}

CpuAutocastCompute resolve_cpu_autocast_compute(c10::ScalarType dtype, const EnvMap& env) {
  auto it = env.find("ACCEL_CPU_AUTOCAST_COMPUTE");
  return resolve_cpu_autocast_compute(dtype,
                                      parse_cpu_autocast_compute(it == env.end() ? "auto" : it->second));
}

void set_cpu_autocast_compute(c10::ScalarType dtype, CpuAutocastCompute mode) {
  ACCEL_CHECK(dtype == at::kBFloat16 || dtype == at::kHalf,
              "set_cpu_autocast_compute: dtype must be bf16 or fp16, got ", dtype);
  std::lock_guard<std::mutex> g(g_mu);
  (dtype == at::kBFloat16 ? g_fp32_bf16 : g_fp32_half).store(mode == CpuAutocastCompute::kFp32);
  update_registration();
}

CpuAutocastCompute cpu_autocast_compute(c10::ScalarType dtype) {
  return fp32_compute_active(dtype) ? CpuAutocastCompute::kFp32 : CpuAutocastCompute::kNative;
}

int64_t cpu_autocast_fp32_compute_calls() {
  return g_calls.load();
}

namespace detail {

std::vector<c10::ScalarType> cpu_compute_saved_dtypes(const at::Tensor& output) {
  std::vector<c10::ScalarType> out;
  const auto node = output.grad_fn();
  torch::autograd::AutogradContext* ctx = nullptr;
  if (auto* a = dynamic_cast<torch::autograd::CppNode<AffineFp32Compute>*>(node.get())) ctx = &a->ctx_;
  if (auto* c = dynamic_cast<torch::autograd::CppNode<ConvFp32Compute>*>(node.get())) ctx = &c->ctx_;
  if (ctx == nullptr) return out;
  for (const auto& t : ctx->get_saved_variables()) out.push_back(t.scalar_type());
  return out;
}

}  // namespace detail

}  // namespace accel
