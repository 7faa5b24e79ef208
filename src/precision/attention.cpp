#include "accel/precision/attention.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

namespace accel {
namespace {

std::atomic<int64_t> g_calls{0};

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("ACCEL_CPU_ATTENTION");
    return !(v && std::string(v) == "torch");
  }()};
  return on;
}

// Elements of one (heads, T, S) block of scores; each step of the kernel holds two or three of
// them in fp32 (8 MiB each at this size), whatever the batch. Measured with
// bench/attention_bench.cpp (MiniLM shapes, 2 threads): 2^18 to 2^23 within noise, 2^16 slower.
constexpr int64_t kBlockElements = int64_t{1} << 21;

struct Geometry {
  int64_t B, N, T, S;
  int64_t heads_per_block;
  double scale;
  double keep_scale;  // 1 / (1 - dropout_p)
};

// True when `mask` broadcasts to `target` (right-aligned, size 1 or equal).
bool broadcasts_to(const at::Tensor& mask, at::IntArrayRef target) {
  if (mask.dim() > static_cast<int64_t>(target.size())) return false;
  for (int64_t i = 1; i <= mask.dim(); ++i) {
    const int64_t m = mask.size(-i), t = target[target.size() - i];
    if (m != 1 && m != t) return false;
  }
  return true;
}

// The probabilities of heads [n0, n0 + nc) of batch row b: softmax(scale · q kᵀ + bias) in fp32,
// (nc, T, S). `bias` is the additive mask expanded to (B, N, T, S) or undefined; `safe` when some
// row may have every key masked (those rows give 0, as torch's math path). Forward and backward
// call this with the same arguments and get the same bits.
at::Tensor block_probs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& bias, bool safe,
                       const Geometry& g, int64_t b, int64_t n0, int64_t nc) {
  at::Tensor qc = q[b].narrow(0, n0, nc).to(at::kFloat);                  // (nc, T, D)
  at::Tensor kt = k[b].narrow(0, n0, nc).to(at::kFloat).transpose(1, 2);  // (nc, D, S)
  at::Tensor s = bias.defined() ? at::baddbmm(bias[b].narrow(0, n0, nc), qc, kt, 1.0, g.scale)
                                : at::bmm(qc, kt).mul_(g.scale);
  return safe ? at::_safe_softmax(s, -1) : at::_softmax(s, -1, false);
}

// Output laid out as (B, T, N, Dv) and viewed as (B, N, T, Dv): the usual transpose back to
// (B, T, N·Dv) after attention is then free. Same for the input gradients.
at::Tensor heads_last_empty(int64_t B, int64_t N, int64_t T, int64_t D, const at::TensorOptions& o) {
  return at::empty({B, T, N, D}, o).transpose(1, 2);
}

class CpuAttention : public torch::autograd::Function<CpuAttention> {
 public:
  // q (B, N, T, D), k (B, N, S, D), v (B, N, S, Dv); bias: additive fp32 mask expanded to
  // (B, N, T, S), or absent; safe: some query row may have every key masked.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const std::optional<at::Tensor>& bias_opt, bool safe,
                            double dropout_p, double scale) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const at::Tensor bias = bias_opt.value_or(at::Tensor());
    const Geometry g = geometry(q, k, dropout_p, scale);
    at::Tensor out = heads_last_empty(g.B, g.N, g.T, v.size(-1), q.options());
    at::Tensor keep;
    if (dropout_p > 0) keep = at::empty({g.B, g.N, g.T, g.S}, q.options().dtype(at::kBool));
    for (int64_t b = 0; b < g.B; ++b) {
      for (int64_t n0 = 0; n0 < g.N; n0 += g.heads_per_block) {
        const int64_t nc = std::min(g.heads_per_block, g.N - n0);
        at::Tensor p = block_probs(q, k, bias, safe, g, b, n0, nc);
        // 1 / (1 - p) goes on v (nc·S·Dv products) rather than on the probabilities (nc·T·S).
        at::Tensor vc = v[b].narrow(0, n0, nc).to(at::kFloat);
        if (keep.defined()) {
          at::Tensor kc = keep[b].narrow(0, n0, nc);
          kc.bernoulli_(1.0 - dropout_p);
          p.mul_(kc);
          vc = vc * g.keep_scale;
        }
        out[b].narrow(0, n0, nc).copy_(at::bmm(p, vc));
      }
    }
    ctx->save_for_backward({q, k, v, bias, keep});
    ctx->saved_data["safe"] = safe;
    ctx->saved_data["dropout_p"] = dropout_p;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &bias = saved[3], &keep = saved[4];
    const bool safe = ctx->saved_data["safe"].toBool();
    const double dropout_p = ctx->saved_data["dropout_p"].toDouble();
    const Geometry g = geometry(q, k, dropout_p, ctx->saved_data["scale"].toDouble());
    const at::Tensor& go = grads[0];
    at::Tensor dq = heads_last_empty(g.B, g.N, g.T, q.size(-1), q.options());
    at::Tensor dk = heads_last_empty(g.B, g.N, g.S, k.size(-1), k.options());
    at::Tensor dv = heads_last_empty(g.B, g.N, g.S, v.size(-1), v.options());
    for (int64_t b = 0; b < g.B; ++b) {
      for (int64_t n0 = 0; n0 < g.N; n0 += g.heads_per_block) {
        const int64_t nc = std::min(g.heads_per_block, g.N - n0);
        at::Tensor p = block_probs(q, k, bias, safe, g, b, n0, nc);  // the forward's probabilities
        at::Tensor kc;
        if (keep.defined()) kc = keep[b].narrow(0, n0, nc);
        at::Tensor gc = go[b].narrow(0, n0, nc).to(at::kFloat);  // (nc, T, Dv)
        if (kc.defined()) gc = gc * g.keep_scale;
        at::Tensor vc = v[b].narrow(0, n0, nc).to(at::kFloat);
        dv[b].narrow(0, n0, nc).copy_(at::bmm((kc.defined() ? p * kc : p).transpose(1, 2), gc));
        at::Tensor dp = at::bmm(gc, vc.transpose(1, 2));  // d(probabilities), (nc, T, S)
        if (kc.defined()) dp.mul_(kc);
        at::Tensor ds = at::_softmax_backward_data(dp, p, -1, at::kFloat);  // d(scores)
        at::Tensor qs = q[b].narrow(0, n0, nc).to(at::kFloat) * g.scale;
        at::Tensor ks = k[b].narrow(0, n0, nc).to(at::kFloat) * g.scale;
        dq[b].narrow(0, n0, nc).copy_(at::bmm(ds, ks));
        dk[b].narrow(0, n0, nc).copy_(at::bmm(ds.transpose(1, 2), qs));
      }
    }
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }

 private:
  static Geometry geometry(const at::Tensor& q, const at::Tensor& k, double dropout_p, double scale) {
    Geometry g{q.size(0), q.size(1), q.size(2), k.size(2), 1, scale, 1.0 / (1.0 - dropout_p)};
    g.heads_per_block = std::clamp<int64_t>(kBlockElements / std::max<int64_t>(1, g.T * g.S), 1, g.N);
    return g;
  }
};

}  // namespace

namespace detail {
bool cpu_attention_eligible(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::optional<at::Tensor>& mask, double dropout_p, bool is_causal,
                            bool enable_gqa) {
  if (!enabled_flag().load() || !(dropout_p > 0.0 && dropout_p < 1.0) || !c10::GradMode::is_enabled())
    return false;
  if (!(q.requires_grad() || k.requires_grad() || v.requires_grad())) return false;
  for (const at::Tensor* t : {&q, &k, &v}) {
    if (!t->defined() || !t->device().is_cpu() || t->layout() != at::kStrided || t->is_nested() ||
        !t->is_floating_point() || (t->dim() != 3 && t->dim() != 4))
      return false;
  }
  if (k.dim() != q.dim() || v.dim() != q.dim()) return false;
  for (int64_t i = 0; i < q.dim() - 2; ++i)
    if (k.size(i) != q.size(i) || v.size(i) != q.size(i)) return false;
  if (k.size(-1) != q.size(-1) || v.size(-2) != k.size(-2) || q.size(-2) == 0 || k.size(-2) == 0)
    return false;
  (void)enable_gqa;  // equal head counts (checked above) make GQA a no-op
  if (mask && mask->defined()) {
    if (is_causal || mask->requires_grad() || !mask->device().is_cpu() || mask->layout() != at::kStrided ||
        !(mask->scalar_type() == at::kBool || mask->is_floating_point()))
      return false;
    std::vector<int64_t> target(q.sizes().begin(), q.sizes().end() - 1);
    target.push_back(k.size(-2));
    if (!broadcasts_to(*mask, target)) return false;
  }
  return true;
}
}  // namespace detail

bool cpu_memory_efficient_attention() {
  return enabled_flag().load();
}
void set_cpu_memory_efficient_attention(bool on) {
  enabled_flag().store(on);
}
int64_t cpu_memory_efficient_attention_calls() {
  return g_calls.load();
}

namespace detail {
at::Tensor cpu_attention_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const std::optional<at::Tensor>& attn_mask, double dropout_p, bool is_causal,
                                std::optional<double> scale) {
  const bool three = q.dim() == 3;
  at::Tensor q4 = three ? q.unsqueeze(0) : q, k4 = three ? k.unsqueeze(0) : k,
             v4 = three ? v.unsqueeze(0) : v;
  const int64_t B = q4.size(0), N = q4.size(1), T = q4.size(2), S = k4.size(2);
  // One additive fp32 mask at the mask's own (broadcast) shape: bool true = attend, 0 / -inf.
  const float ninf = -std::numeric_limits<float>::infinity();
  at::Tensor bias;
  bool safe = false;
  if (attn_mask && attn_mask->defined()) {
    const at::Tensor& m = *attn_mask;
    bias = m.scalar_type() == at::kBool
               ? at::zeros(m.sizes(), m.options().dtype(at::kFloat)).masked_fill_(m.logical_not(), ninf)
               : m.to(at::kFloat);
    safe = bias.isneginf().all(-1).any().item<bool>();
  } else if (is_causal) {
    bias = at::zeros({T, S}, q.options().dtype(at::kFloat))
               .masked_fill_(at::ones({T, S}, q.options().dtype(at::kBool)).triu(1), ninf);
  }
  std::optional<at::Tensor> expanded;
  if (bias.defined()) expanded = bias.expand({B, N, T, S});
  const double sc = scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  ++g_calls;
  at::Tensor out = CpuAttention::apply(q4, k4, v4, expanded, safe, dropout_p, sc);
  return three ? out.squeeze(0) : out;
}
}  // namespace detail

at::Tensor scaled_dot_product_attention(const at::Tensor& query, const at::Tensor& key,
                                        const at::Tensor& value, const std::optional<at::Tensor>& attn_mask,
                                        double dropout_p, bool is_causal, std::optional<double> scale,
                                        bool enable_gqa) {
  if (!detail::cpu_attention_eligible(query, key, value, attn_mask, dropout_p, is_causal, enable_gqa))
    return at::scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale,
                                            enable_gqa);
  at::Tensor q = query, k = key, v = value;
  std::optional<at::Tensor> mask = attn_mask;
  if (at::autocast::is_autocast_enabled(at::kCPU)) {  // autocast's policy for SDPA: lower precision
    const auto dt = at::autocast::get_autocast_dtype(at::kCPU);
    q = at::autocast::cached_cast(dt, q, c10::DeviceType::CPU);
    k = at::autocast::cached_cast(dt, k, c10::DeviceType::CPU);
    v = at::autocast::cached_cast(dt, v, c10::DeviceType::CPU);
    mask = at::autocast::cached_cast(dt, mask, c10::DeviceType::CPU);
  }
  if (k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type())
    return at::scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale,
                                            enable_gqa);
  return detail::cpu_attention_kernel(q, k, v, mask, dropout_p, is_causal, scale);
}

}  // namespace accel
