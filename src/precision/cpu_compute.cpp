#include "accel/precision/cpu_compute.h"

#include "accel/core/error.h"
#include "accel/core/state.h"
#include "accel/precision/attention.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <mutex>

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
    g_library = lib.release();
  } else if (!want && g_library) {
    delete g_library;  // deregisters: torch's autocast kernels are back
    g_library = nullptr;
  }
}

bool cpuinfo_has_any_flag(std::initializer_list<const char*> flags) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0) continue;
    line += ' ';
    for (const char* f : flags) {
      if (line.find(std::string(" ") + f + " ") != std::string::npos) return true;
    }
    return false;
  }
  return false;
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

bool cpu_has_native_fp16() {
  return cpuinfo_has_any_flag({"avx512_fp16", "amx_fp16", "asimdhp"});
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

}  // namespace accel
