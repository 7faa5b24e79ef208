#include "accel/precision/attention.h"

#include "accel/core/error.h"
#include "accel/core/hash.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace accel {
namespace {

std::atomic<int64_t> g_calls{0};

// Starts from ACCEL_CPU_ATTENTION in the process environment (read through current_environment()).
std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> on{resolve_cpu_memory_efficient_attention(current_environment())};
  return on;
}

// Elements of one (heads, T, S) block of scores: a thread holds two or three of them in fp32
// (4 MiB each), whatever the batch. bench/attention_bench.cpp, MiniLM shapes, 2 threads: 2^20
// and 2^22 alike, 2^16 (one head per block, L2-sized) 15 % slower (more, smaller GEMM calls).
constexpr int64_t kBlockElements = int64_t{1} << 20;

struct Geometry {
  int64_t B, N, T, S;
  int64_t heads_per_block;
  double scale;
  bool dropout;             // dropout_p > 0
  double keep_scale;        // 1 / (1 - dropout_p)
  uint32_t keep_threshold;  // see keep_threshold()
};

// ---- dropout keep-mask: a counter-based hash of (seed, head, element), so the forward and the
// backward regenerate the same bits and nothing is stored (torch's bernoulli_ also runs one
// element at a time on one thread; this is a vectorisable loop).

// The 32-bit key of head (b, n): every head gets its own stream.
uint32_t head_key(uint64_t seed, const Geometry& g, int64_t b, int64_t n) {
  constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
  return static_cast<uint32_t>(mix64(kGolden + (seed ^ mix64(kGolden + static_cast<uint64_t>(b * g.N + n)))));
}

// Keep element j of a head when hash(key, j) < threshold: P(keep) = threshold / 2^32.
uint32_t keep_threshold(double dropout_p) {
  return static_cast<uint32_t>(std::min(4294967295.0, std::floor((1.0 - dropout_p) * 4294967296.0)));
}

// dst[j] = keep(j) ? src[j] : 0 for the n = T·S elements of one head (dst may be src).
void apply_keep(float* dst, const float* src, int64_t n, uint32_t key, uint32_t threshold) {
  for (int64_t j = 0; j < n; ++j)
    dst[j] = mix32((static_cast<uint32_t>(j) * 0x9E3779B9u) ^ key) < threshold ? src[j] : 0.0f;
}

// apply_keep on every head of a contiguous (nc, T, S) fp32 block of heads [n0, n0 + nc) of row b.
void apply_keep_block(at::Tensor& dst, const at::Tensor& src, uint64_t seed, const Geometry& g, int64_t b,
                      int64_t n0, int64_t nc) {
  const int64_t n = g.T * g.S;
  for (int64_t h = 0; h < nc; ++h)
    apply_keep(dst.data_ptr<float>() + h * n, src.data_ptr<float>() + h * n, n, head_key(seed, g, b, n0 + h),
               g.keep_threshold);
}

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

// Runs fn(b, n0, nc) for every block of heads [n0, n0 + nc) of every batch row, the blocks spread
// over torch's intra-op threads; each block's ops run on one thread, so its (nc, T, S) temporaries
// stay in that core's cache. Worker threads get the caller's no-grad / no-autocast state.
template <typename F>
void for_each_block(const Geometry& g, F&& fn) {
  const int64_t per_row = (g.N + g.heads_per_block - 1) / g.heads_per_block;
  at::parallel_for(0, g.B * per_row, 1, [&](int64_t begin, int64_t end) {
    c10::AutoGradMode no_grad(false);
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / per_row, n0 = (i % per_row) * g.heads_per_block;
      fn(b, n0, std::min(g.heads_per_block, g.N - n0));
    }
  });
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
    const uint64_t seed = g.dropout ? draw_seed() : 0;
    for_each_block(g, [&](int64_t b, int64_t n0, int64_t nc) {
      at::Tensor p = block_probs(q, k, bias, safe, g, b, n0, nc);
      // 1 / (1 - p) goes on v (nc·S·Dv products) rather than on the probabilities (nc·T·S).
      at::Tensor vc = v[b].narrow(0, n0, nc).to(at::kFloat);
      if (g.dropout) {
        apply_keep_block(p, p, seed, g, b, n0, nc);
        vc = vc * g.keep_scale;
      }
      out[b].narrow(0, n0, nc).copy_(at::bmm(p, vc));
    });
    ctx->save_for_backward({q, k, v, bias});
    ctx->saved_data["seed"] = static_cast<int64_t>(seed);
    ctx->saved_data["safe"] = safe;
    ctx->saved_data["dropout_p"] = dropout_p;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &bias = saved[3];
    const uint64_t seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    const bool safe = ctx->saved_data["safe"].toBool();
    const double dropout_p = ctx->saved_data["dropout_p"].toDouble();
    const Geometry g = geometry(q, k, dropout_p, ctx->saved_data["scale"].toDouble());
    const at::Tensor& go = grads[0];
    at::Tensor dq = heads_last_empty(g.B, g.N, g.T, q.size(-1), q.options());
    at::Tensor dk = heads_last_empty(g.B, g.N, g.S, k.size(-1), k.options());
    at::Tensor dv = heads_last_empty(g.B, g.N, g.S, v.size(-1), v.options());
    for_each_block(g, [&](int64_t b, int64_t n0, int64_t nc) {
      at::Tensor p = block_probs(q, k, bias, safe, g, b, n0, nc);  // the forward's probabilities
      at::Tensor gc = go[b].narrow(0, n0, nc).to(at::kFloat);      // (nc, T, Dv)
      if (g.dropout) gc = gc * g.keep_scale;
      at::Tensor vc = v[b].narrow(0, n0, nc).to(at::kFloat);
      at::Tensor kept = p;  // what multiplied v
      if (g.dropout) {
        kept = at::empty_like(p);
        apply_keep_block(kept, p, seed, g, b, n0, nc);
      }
      dv[b].narrow(0, n0, nc).copy_(at::bmm(kept.transpose(1, 2), gc));
      kept.reset();
      at::Tensor dp = at::bmm(gc, vc.transpose(1, 2));  // d(probabilities), (nc, T, S)
      if (g.dropout) apply_keep_block(dp, dp, seed, g, b, n0, nc);
      at::Tensor ds = at::_softmax_backward_data(dp, p, -1, at::kFloat);  // d(scores)
      at::Tensor qs = q[b].narrow(0, n0, nc).to(at::kFloat) * g.scale;
      at::Tensor ks = k[b].narrow(0, n0, nc).to(at::kFloat) * g.scale;
      dq[b].narrow(0, n0, nc).copy_(at::bmm(ds, ks));
      dk[b].narrow(0, n0, nc).copy_(at::bmm(ds.transpose(1, 2), qs));
    });
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }

 private:
  // One draw from the default CPU generator (seeded runs and checkpoints reproduce it).
  static uint64_t draw_seed() {
    auto* gen = at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
    std::lock_guard<std::mutex> lock(gen->mutex_);
    return gen->random64();
  }
  static Geometry geometry(const at::Tensor& q, const at::Tensor& k, double dropout_p, double scale) {
    Geometry g{q.size(0),
               q.size(1),
               q.size(2),
               k.size(2),
               1,
               scale,
               dropout_p > 0,
               1.0 / (1.0 - dropout_p),
               keep_threshold(dropout_p)};
    // At most kBlockElements per block, and at least four blocks per thread when the batch allows.
    const int64_t by_size = kBlockElements / std::max<int64_t>(1, g.T * g.S);
    const int64_t by_threads = (g.B * g.N) / (4 * static_cast<int64_t>(at::get_num_threads()));
    g.heads_per_block = std::clamp<int64_t>(std::min(by_size, by_threads), 1, g.N);
    return g;
  }
};

}  // namespace

namespace detail {
bool cpu_attention_eligible(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::optional<at::Tensor>& mask, double dropout_p, bool is_causal) {
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

bool resolve_cpu_memory_efficient_attention(const EnvMap& env) {
  const auto it = env.find("ACCEL_CPU_ATTENTION");
  if (it == env.end() || it->second.empty() || it->second == "accel") return true;
  if (it->second == "torch") return false;
  throw InputError(c10::str("ACCEL_CPU_ATTENTION='", it->second,
                            "' is not a choice; use accel (accel's memory-efficient CPU attention for "
                            "training, the default) or torch (torch's kernel)."));
}

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
at::Tensor cpu_attention_keep_mask(uint64_t seed, int64_t B, int64_t N, int64_t T, int64_t S,
                                   double dropout_p) {
  const Geometry g{B, N, T, S, N, 1.0, true, 1.0 / (1.0 - dropout_p), keep_threshold(dropout_p)};
  at::Tensor kept = at::ones({B, N, T, S}, at::kFloat);
  for (int64_t b = 0; b < B; ++b) {
    at::Tensor row = kept[b];
    apply_keep_block(row, row, seed, g, b, 0, N);
  }
  return kept.ne(0);
}

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
  // Equal head counts are required below, which makes enable_gqa a no-op for accel's kernel.
  auto torchs = [&] {
    return at::scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale,
                                            enable_gqa);
  };
  if (!detail::cpu_attention_eligible(query, key, value, attn_mask, dropout_p, is_causal)) return torchs();
  at::Tensor q = query, k = key, v = value;
  std::optional<at::Tensor> mask = attn_mask;
  if (at::autocast::is_autocast_enabled(at::kCPU)) {  // autocast's policy for SDPA: lower precision
    const auto dt = at::autocast::get_autocast_dtype(at::kCPU);
    q = at::autocast::cached_cast(dt, q, c10::DeviceType::CPU);
    k = at::autocast::cached_cast(dt, k, c10::DeviceType::CPU);
    v = at::autocast::cached_cast(dt, v, c10::DeviceType::CPU);
    mask = at::autocast::cached_cast(dt, mask, c10::DeviceType::CPU);
  }
  if (k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type()) return torchs();
  return detail::cpu_attention_kernel(q, k, v, mask, dropout_p, is_causal, scale);
}

}  // namespace accel
