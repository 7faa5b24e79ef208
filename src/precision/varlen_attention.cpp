// Unpadded self-attention (accel/precision/varlen_attention.h): packing, the flash varlen autograd
// function and the padded reference.
#include "accel/precision/varlen_attention.h"

#include "accel/core/error.h"
#include "accel/core/logging.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/autograd.h>

#include <atomic>
#include <cmath>

namespace accel {
namespace {

std::atomic<int64_t> g_flash_calls{0};
std::atomic<bool> g_flash_failed{false};

class FlashVarlen : public torch::autograd::Function<FlashVarlen> {
 public:
  // q, k, v (total, N, D) contiguous; cu_seqlens (B + 1) int32.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& cu_seqlens, int64_t max_seqlen,
                            double dropout_p, double scale) {
    auto [out, lse, rng_state, unused, debug] =
        at::_flash_attention_forward(q, k, v, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, dropout_p,
                                     /*is_causal=*/false, /*return_debug_mask=*/false, scale);
    (void)debug;
    ctx->save_for_backward({q, k, v, out, lse, cu_seqlens, rng_state, unused});
    ctx->saved_data["max_seqlen"] = max_seqlen;
    ctx->saved_data["dropout_p"] = dropout_p;
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto s = ctx->get_saved_variables();
    const int64_t max_seqlen = ctx->saved_data["max_seqlen"].toInt();
    auto [dq, dk, dv] =
        at::_flash_attention_backward(grads[0].contiguous(), s[0], s[1], s[2], s[3], s[4], s[5], s[5],
                                      max_seqlen, max_seqlen, ctx->saved_data["dropout_p"].toDouble(),
                                      /*is_causal=*/false, s[6], s[7], ctx->saved_data["scale"].toDouble());
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void check_packed(const at::Tensor& t, const char* name, const VarlenPacking& p) {
  ACCEL_CHECK(t.defined() && t.dim() == 3 && t.size(0) == p.total, "varlen_attention: ", name,
              " must be (total tokens = ", p.total, ", heads, head_dim), got ",
              t.defined() ? c10::str(t.sizes()) : std::string("undefined"),
              ". HINT: pack (B, T, ...) tensors with pack_tokens() and the same packing.");
}

}  // namespace

VarlenPacking make_varlen_packing(const at::Tensor& padding_mask) {
  ACCEL_CHECK(padding_mask.defined() && padding_mask.dim() == 2,
              "make_varlen_packing: the padding mask must be ", "(batch, tokens), got ",
              padding_mask.defined() ? c10::str(padding_mask.sizes()) : "undefined", ".");
  const at::Tensor m = padding_mask.scalar_type() == at::kBool ? padding_mask : padding_mask.ne(0);  // (B, T)
  VarlenPacking p;
  p.batch = m.size(0);
  p.seq_len = m.size(1);
  const at::Tensor lengths = m.sum(1, /*keepdim=*/false, at::kInt);  // (B,)
  p.cu_seqlens = at::zeros({p.batch + 1}, lengths.options());
  if (p.batch > 0) p.cu_seqlens.narrow(0, 1, p.batch).copy_(lengths.cumsum(0, at::kInt));
  const at::Tensor host = lengths.cpu();  // the one synchronisation
  p.total = host.sum().item<int64_t>();
  p.max_seqlen = p.batch > 0 ? host.max().item<int64_t>() : 0;
  p.indices = p.dense() ? at::arange(p.total, m.options().dtype(at::kLong))
                        : at::nonzero(m.reshape({-1})).reshape({-1});  // (total,)
  return p;
}

at::Tensor pack_tokens(const at::Tensor& x, const VarlenPacking& p) {
  ACCEL_CHECK(x.dim() >= 2 && x.size(0) == p.batch && x.size(1) == p.seq_len, "pack_tokens: expected (",
              p.batch, ", ", p.seq_len, ", ...), got ", x.sizes(), ".");
  std::vector<int64_t> flat{p.batch * p.seq_len};
  flat.insert(flat.end(), x.sizes().begin() + 2, x.sizes().end());
  const at::Tensor rows = x.reshape(flat);  // (B * T, ...)
  return p.dense() ? rows : rows.index_select(0, p.indices);
}

at::Tensor unpack_tokens(const at::Tensor& packed, const VarlenPacking& p) {
  ACCEL_CHECK(packed.dim() >= 1 && packed.size(0) == p.total, "unpack_tokens: expected (", p.total,
              ", ...), got ", packed.sizes(), ".");
  std::vector<int64_t> shape{p.batch, p.seq_len};
  shape.insert(shape.end(), packed.sizes().begin() + 1, packed.sizes().end());
  if (p.dense()) return packed.reshape(shape);
  std::vector<int64_t> flat{p.batch * p.seq_len};
  flat.insert(flat.end(), packed.sizes().begin() + 1, packed.sizes().end());
  return at::zeros(flat, packed.options()).index_copy(0, p.indices, packed).view(shape);
}

bool varlen_flash_eligible(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (g_flash_failed.load()) return false;
  for (const at::Tensor* t : {&q, &k, &v}) {
    if (!t->defined() || !t->is_cuda() || t->dim() != 3 || t->scalar_type() != q.scalar_type()) return false;
  }
  if (q.scalar_type() != at::kBFloat16 && q.scalar_type() != at::kHalf) return false;
  const int64_t d = q.size(-1);
  return d % 8 == 0 && d <= 256 && k.size(-1) == d && v.size(-1) == d;
}

namespace detail {

int64_t varlen_flash_calls() {
  return g_flash_calls.load();
}

at::Tensor varlen_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const VarlenPacking& p, double dropout_p, std::optional<double> scale) {
  // (total, N, D) -> (B, N, T, D); mask (B, 1, 1, T) from the packing.
  auto heads = [&](const at::Tensor& x) { return unpack_tokens(x, p).transpose(1, 2); };
  std::optional<at::Tensor> mask;  // none when every token is real
  if (!p.dense()) {
    at::Tensor flat_mask = at::zeros({p.batch * p.seq_len}, q.options().dtype(at::kBool));
    flat_mask.index_fill_(0, p.indices, true);
    mask = flat_mask.view({p.batch, 1, 1, p.seq_len});
  }
  at::Tensor out = at::scaled_dot_product_attention(heads(q), heads(k), heads(v), mask, dropout_p,
                                                    /*is_causal=*/false, scale);  // (B, N, T, D)
  return pack_tokens(out.transpose(1, 2), p);                                     // (total, N, D)
}

}  // namespace detail

at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const VarlenPacking& p, double dropout_p, std::optional<double> scale) {
  check_packed(q, "q", p);
  check_packed(k, "k", p);
  check_packed(v, "v", p);
  ACCEL_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "varlen_attention: dropout_p=", dropout_p,
              " must be in [0, 1).");
  if (p.total == 0) return at::zeros_like(q);
  const double sc = scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  if (varlen_flash_eligible(q, k, v)) {
    try {
      at::Tensor out = FlashVarlen::apply(q.contiguous(), k.contiguous(), v.contiguous(), p.cu_seqlens,
                                          p.max_seqlen, dropout_p, sc);
      ++g_flash_calls;
      return out;
    } catch (const c10::Error& e) {
      if (!g_flash_failed.exchange(true)) {
        std::string what = e.what_without_backtrace();
        if (auto nl = what.find('\n'); nl != std::string::npos) what = what.substr(0, nl);
        logger().warning(
            "unpadded attention: FlashAttention's variable-length kernel is not available here (", what,
            "); using padded scaled_dot_product_attention from now on.");
      }
    }
  }
  return detail::varlen_attention_reference(q, k, v, p, dropout_p, sc);
}

}  // namespace accel
