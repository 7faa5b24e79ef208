// BERT modules. Names of registered submodules and parameters are Hugging Face's, so that
// named_parameters() equals transformers' state_dict keys. B = batch, T = tokens, H = hidden,
// N = heads, D = head_dim, I = intermediate size, L = labels.
#include "accel/core/error.h"
#include "accel/core/logging.h"
#include "accel/distributed/unit.h"
#include "accel/models/bert.h"
#include "accel/models/fused_ops.h"
#include "accel/precision/attention.h"
#include "accel/precision/varlen_attention.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <atomic>
#include <mutex>

namespace accel::models {
namespace nn = torch::nn;

namespace {

nn::LayerNorm make_layer_norm(const BertConfig& c) {
  return nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

// transformers' _init_weights for one module tree.
void init_bert_weights(nn::Module& root, const BertConfig& c) {
  torch::NoGradGuard no_grad;
  for (auto& m : root.modules(/*include_self=*/false)) {  // the root is never a leaf
    if (auto* lin = m->as<nn::Linear>()) {
      lin->weight.normal_(0.0, c.initializer_range);
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* emb = m->as<nn::Embedding>()) {
      emb->weight.normal_(0.0, c.initializer_range);
      if (emb->options.padding_idx().has_value()) emb->weight[*emb->options.padding_idx()].zero_();
    } else if (auto* ln = m->as<nn::LayerNorm>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    }
  }
}

// Says once per process and path that a GPU speed path was asked for but the layers compute the
// usual way here (the one-line notice of a silent downgrade).
void note_fast_path_unused(std::atomic<bool>& said, const char* option, const std::string& why) {
  if (!said.exchange(true))
    logger().info("BertConfig.", option, " is on but ", why, "; the layers use the standard ops here.");
}

std::atomic<bool> g_said_unpadded{false}, g_said_gelu{false}, g_said_layer_norm{false};

// Whether the fused kernels run for a layer input on `t`'s device.
bool fused_kernels_here(const torch::Tensor& t, std::atomic<bool>& said, const char* option) {
  if (t.is_cuda() && fused_ops_cuda_available()) return true;
  note_fast_path_unused(said, option,
                        t.is_cuda() ? std::string("this build has no CUDA kernels (built without nvcc)")
                                    : std::string("it runs only on CUDA devices"));
  return false;
}

}  // namespace

namespace detail {
struct BertVarlenCache {
  std::mutex mu;
  torch::Tensor mask;  // the (B, 1, 1, T) mask the packing was made from (kept alive to compare)
  int64_t version = -1;
  VarlenPacking packing;
};
}  // namespace detail

// ---------------------------------------------------------------------------------------------

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& c) {
  word_embeddings = register_module(
      "word_embeddings",
      nn::Embedding(nn::EmbeddingOptions(c.vocab_size, c.hidden_size).padding_idx(c.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings", nn::Embedding(nn::EmbeddingOptions(c.max_position_embeddings, c.hidden_size)));
  token_type_embeddings = register_module(
      "token_type_embeddings", nn::Embedding(nn::EmbeddingOptions(c.type_vocab_size, c.hidden_size)));
  LayerNorm = register_module("LayerNorm", make_layer_norm(c));
  dropout = register_module("dropout", nn::Dropout(c.hidden_dropout_prob));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                          const torch::Tensor& position_ids) {
  // A unit of sharding and activation checkpointing (accel/distributed/unit.h).
  return accel::unit_forward(
      *this,
      [this](const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& positions) {
        return embed(ids, types, positions);
      },
      input_ids, token_type_ids, position_ids);
}

torch::Tensor BertEmbeddingsImpl::embed(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                        const torch::Tensor& position_ids) {
  ACCEL_CHECK(input_ids.dim() == 2, "BERT input_ids must be (batch, tokens), got ", input_ids.sizes());
  const int64_t T = input_ids.size(1);
  const int64_t max_pos = position_embeddings->weight.size(0);
  ACCEL_CHECK(position_ids.defined() || T <= max_pos, "BERT input has ", T, " tokens but the model has only ",
              max_pos, " positions (max_position_embeddings); truncate the input");
  torch::Tensor x = word_embeddings(input_ids);  // (B, T, H)
  if (token_type_ids.defined()) {
    x = x + token_type_embeddings(token_type_ids);  // (B, T, H)
  } else {
    x = x + token_type_embeddings->weight[0];  // (B, T, H) + (H): all tokens of type 0
  }
  torch::Tensor pos = position_ids.defined()
                          ? position_ids
                          : torch::arange(T, input_ids.options().dtype(torch::kLong)).unsqueeze(0);  // (1, T)
  x = x + position_embeddings(pos);  // (B, T, H) + (1, T, H)
  x = LayerNorm(x);                  // (B, T, H)
  return dropout(x);                 // (B, T, H)
}

// ---------------------------------------------------------------------------------------------

BertSelfAttentionImpl::BertSelfAttentionImpl(const BertConfig& c)
    : num_heads_(c.num_attention_heads),
      head_dim_(c.head_dim()),
      dropout_p_(c.attention_probs_dropout_prob),
      unpadded_(c.unpadded_attention) {
  query = register_module("query", nn::Linear(c.hidden_size, c.hidden_size));
  key = register_module("key", nn::Linear(c.hidden_size, c.hidden_size));
  value = register_module("value", nn::Linear(c.hidden_size, c.hidden_size));
  if (unpadded_) varlen_cache_ = std::make_shared<detail::BertVarlenCache>();
}

torch::Tensor BertSelfAttentionImpl::forward_unpadded(const torch::Tensor& hidden,
                                                      const torch::Tensor& mask) {
  const int64_t B = hidden.size(0), T = hidden.size(1);
  if (!hidden.is_cuda()) {
    note_fast_path_unused(g_said_unpadded, "unpadded_attention", "it runs only on CUDA devices");
    return {};
  }
  // FlashAttention takes bf16/fp16: the autocast dtype, or the model's own.
  const auto dtype = at::autocast::is_autocast_enabled(at::kCUDA)
                         ? at::autocast::get_autocast_dtype(at::kCUDA)
                         : hidden.scalar_type();
  if (dtype != torch::kBFloat16 && dtype != torch::kHalf) {
    note_fast_path_unused(g_said_unpadded, "unpadded_attention",
                          "FlashAttention needs bf16 or fp16 (this is fp32)");
    return {};
  }
  if (head_dim_ % 8 != 0 || head_dim_ > 256) {
    note_fast_path_unused(g_said_unpadded, "unpadded_attention",
                          "FlashAttention needs a head dim that is a multiple of 8, at most 256");
    return {};
  }
  if (mask.defined() && !(mask.dim() == 4 && mask.size(0) == B && mask.size(1) == 1 && mask.size(2) == 1 &&
                          mask.size(3) == T && mask.scalar_type() == torch::kBool)) {
    note_fast_path_unused(g_said_unpadded, "unpadded_attention",
                          "the mask is not a (B, 1, 1, T) padding mask");
    return {};
  }
  VarlenPacking packing;
  if (!mask.defined()) {  // every token real: no synchronisation needed
    packing.batch = B;
    packing.seq_len = T;
    packing.total = B * T;
    packing.max_seqlen = T;
    packing.cu_seqlens = torch::arange(0, (B + 1) * T, T, hidden.options().dtype(torch::kInt));
  } else {
    auto& cache = *varlen_cache_;
    std::lock_guard<std::mutex> lock(cache.mu);
    if (!cache.mask.defined() || !cache.mask.is_same(mask) || cache.version != mask._version()) {
      cache.packing = make_varlen_packing(mask.view({B, T}));
      cache.mask = mask;
      cache.version = mask._version();
    }
    packing = cache.packing;
  }
  const int64_t N = num_heads_, D = head_dim_, total = packing.total;
  const torch::Tensor x = pack_tokens(hidden, packing);  // (total, H)
  torch::Tensor q = query(x).view({total, N, D});        // (total, N, D)
  torch::Tensor k = key(x).view({total, N, D});          // (total, N, D)
  torch::Tensor v = value(x).view({total, N, D});        // (total, N, D)
  const double p = is_training() ? dropout_p_ : 0.0;
  torch::Tensor ctx =
      varlen_attention(q, k, v, packing, p, 1.0 / std::sqrt(static_cast<double>(D)));  // (total, N, D)
  return unpack_tokens(ctx.reshape({total, N * D}), packing);                          // (B, T, H)
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask) {
  if (unpadded_) {
    torch::Tensor out = forward_unpadded(hidden, mask);
    if (out.defined()) return out;
  }
  const int64_t B = hidden.size(0), T = hidden.size(1);
  auto heads = [&](const torch::Tensor& x) {
    return x.view({B, T, num_heads_, head_dim_}).transpose(1, 2);  // (B, T, H) -> (B, N, T, D)
  };
  torch::Tensor q = heads(query(hidden));  // (B, N, T, D)
  torch::Tensor k = heads(key(hidden));    // (B, N, T, D)
  torch::Tensor v = heads(value(hidden));  // (B, N, T, D)
  std::optional<torch::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask;  // (B, 1, 1, T) bool, broadcast over N and queries
  const double p = is_training() ? dropout_p_ : 0.0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  // accel's SDPA: torch's kernels, except in CPU training with dropout, where it keeps O(T) per
  // query row for backward instead of torch's three (B, N, T, T) fp32 tensors.
  torch::Tensor ctx = accel::scaled_dot_product_attention(q, k, v, attn_mask, p, /*is_causal=*/false,
                                                          scale);      // (B, N, T, D)
  return ctx.transpose(1, 2).reshape({B, T, num_heads_ * head_dim_});  // (B, T, H)
}

BertSelfOutputImpl::BertSelfOutputImpl(const BertConfig& c) : fused_(c.fused_layer_norm) {
  dense = register_module("dense", nn::Linear(c.hidden_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", make_layer_norm(c));
  dropout = register_module("dropout", nn::Dropout(c.hidden_dropout_prob));
}

namespace {
// dense without its bias, then one kernel: LayerNorm(dropout(x + bias) + input).
torch::Tensor fused_output(const nn::Linear& dense, const nn::LayerNorm& norm, const nn::Dropout& dropout,
                           const torch::Tensor& hidden, const torch::Tensor& input) {
  torch::Tensor x = torch::nn::functional::linear(hidden, dense->weight);  // (B, T, H)
  return bias_dropout_residual_layer_norm(x, dense->bias, input, norm->weight, norm->bias,
                                          dropout->options.p(), dropout->is_training(),
                                          norm->options.eps());  // (B, T, H)
}
}  // namespace

torch::Tensor BertSelfOutputImpl::forward(const torch::Tensor& hidden, const torch::Tensor& input) {
  if (fused_ && fused_kernels_here(hidden, g_said_layer_norm, "fused_layer_norm"))
    return fused_output(dense, LayerNorm, dropout, hidden, input);
  torch::Tensor x = dropout(dense(hidden));  // (B, T, H)
  return LayerNorm(x + input);               // (B, T, H)
}

BertAttentionImpl::BertAttentionImpl(const BertConfig& c) {
  self = register_module("self", BertSelfAttention(c));
  output = register_module("output", BertSelfOutput(c));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask) {
  torch::Tensor ctx = self(hidden, mask);  // (B, T, H)
  return output(ctx, hidden);              // (B, T, H)
}

BertIntermediateImpl::BertIntermediateImpl(const BertConfig& c)
    : act_(c.hidden_act), fused_(c.fused_bias_gelu) {
  dense = register_module("dense", nn::Linear(c.hidden_size, c.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& hidden) {
  if (fused_) {
    const bool exact = act_ == "gelu";
    const bool tanh = act_ == "gelu_new" || act_ == "gelu_pytorch_tanh" || act_ == "gelu_fast";
    if (!exact && !tanh) {
      note_fast_path_unused(g_said_gelu, "fused_bias_gelu", "the activation is " + act_ + ", not GELU");
    } else if (fused_kernels_here(hidden, g_said_gelu, "fused_bias_gelu")) {
      torch::Tensor x = torch::nn::functional::linear(hidden, dense->weight);  // (B, T, I), no bias
      return bias_gelu(x, dense->bias, tanh);                                  // (B, T, I)
    }
  }
  torch::Tensor x = dense(hidden);            // (B, T, I)
  if (act_ == "gelu") return torch::gelu(x);  // exact (erf), transformers' "gelu"
  if (act_ == "gelu_new" || act_ == "gelu_pytorch_tanh" || act_ == "gelu_fast") return torch::gelu(x, "tanh");
  if (act_ == "relu") return torch::relu(x);
  return torch::silu(x);  // silu / swish (validated in BertConfig)
}

BertOutputImpl::BertOutputImpl(const BertConfig& c) : fused_(c.fused_layer_norm) {
  dense = register_module("dense", nn::Linear(c.intermediate_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", make_layer_norm(c));
  dropout = register_module("dropout", nn::Dropout(c.hidden_dropout_prob));
}

torch::Tensor BertOutputImpl::forward(const torch::Tensor& hidden, const torch::Tensor& input) {
  if (fused_ && fused_kernels_here(hidden, g_said_layer_norm, "fused_layer_norm"))
    return fused_output(dense, LayerNorm, dropout, hidden, input);
  torch::Tensor x = dropout(dense(hidden));  // (B, T, I) -> (B, T, H)
  return LayerNorm(x + input);               // (B, T, H)
}

BertLayerImpl::BertLayerImpl(const BertConfig& c) {
  attention = register_module("attention", BertAttention(c));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module("output", BertOutput(c));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask) {
  // A unit of sharding and activation checkpointing (accel/distributed/unit.h).
  return accel::unit_forward(
      *this,
      [this](const torch::Tensor& h, const torch::Tensor& m) {
        torch::Tensor a = attention(h, m);  // (B, T, H)
        torch::Tensor i = intermediate(a);  // (B, T, I)
        return output(i, a);                // (B, T, H)
      },
      hidden, mask);
}

BertEncoderImpl::BertEncoderImpl(const BertConfig& c) {
  layer = register_module("layer", nn::ModuleList());
  std::shared_ptr<detail::BertVarlenCache> cache;
  if (c.unpadded_attention) cache = std::make_shared<detail::BertVarlenCache>();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    BertLayer l(c);
    if (cache) l->attention->self->set_varlen_cache(cache);  // one packing per forward, not per layer
    layer->push_back(l);
  }
}

torch::Tensor BertEncoderImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask,
                                       std::vector<torch::Tensor>* all_hidden) {
  torch::Tensor x = hidden;  // (B, T, H)
  for (const auto& m : *layer) {
    x = m->as<BertLayer>()->forward(x, mask);  // (B, T, H)
    if (all_hidden != nullptr) all_hidden->push_back(x);
  }
  return x;
}

BertPoolerImpl::BertPoolerImpl(const BertConfig& c) {
  dense = register_module("dense", nn::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& hidden) {
  torch::Tensor first = hidden.select(1, 0);  // (B, H): the [CLS] token
  return torch::tanh(dense(first));           // (B, H)
}

// ---------------------------------------------------------------------------------------------

torch::Tensor make_attention_mask(const torch::Tensor& attention_mask) {
  if (!attention_mask.defined()) return {};
  ACCEL_CHECK(attention_mask.dim() == 2, "attention_mask must be (batch, tokens), got ",
              attention_mask.sizes());
  torch::Tensor m =
      attention_mask.scalar_type() == torch::kBool ? attention_mask : attention_mask.ne(0);  // (B, T)
  return m.view({m.size(0), 1, 1, m.size(1)});                                               // (B, 1, 1, T)
}

namespace {
torch::Tensor fp32(const torch::Tensor& t) {
  return t.defined() && (t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kHalf)
             ? t.to(torch::kFloat)
             : t;
}
}  // namespace

BertModelOutput BertModelOutput::to_fp32() const {
  BertModelOutput o{fp32(last_hidden_state), fp32(pooler_output), {}};
  for (const auto& h : hidden_states) o.hidden_states.push_back(fp32(h));
  return o;
}

SequenceClassifierOutput SequenceClassifierOutput::to_fp32() const {
  SequenceClassifierOutput o{fp32(loss), fp32(logits), fp32(last_hidden_state), fp32(pooler_output), {}};
  for (const auto& h : hidden_states) o.hidden_states.push_back(fp32(h));
  return o;
}

BertBatch BertBatch::to(torch::Device device, bool non_blocking) const {
  auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(device, non_blocking) : t; };
  return BertBatch{move(input_ids), move(attention_mask), move(token_type_ids), move(labels)};
}

int64_t BertBatch::size() const {
  return input_ids.defined() ? input_ids.size(0) : 0;
}

BertModelImpl::BertModelImpl(const BertConfig& config) : config_(config) {
  config_.validate();
  embeddings = register_module("embeddings", BertEmbeddings(config_));
  encoder = register_module("encoder", BertEncoder(config_));
  if (config_.add_pooling_layer) pooler = register_module("pooler", BertPooler(config_));
  init_weights();
}

void BertModelImpl::init_weights() {
  init_bert_weights(*this, config_);
}

BertModelOutput BertModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                       const torch::Tensor& token_type_ids,
                                       const torch::Tensor& position_ids) {
  ACCEL_CHECK(!attention_mask.defined() || attention_mask.sizes() == input_ids.sizes(), "attention_mask ",
              attention_mask.sizes(), " must have input_ids' shape ", input_ids.sizes());
  ACCEL_CHECK(!token_type_ids.defined() || token_type_ids.sizes() == input_ids.sizes(), "token_type_ids ",
              token_type_ids.sizes(), " must have input_ids' shape ", input_ids.sizes());
  BertModelOutput out;
  torch::Tensor mask = make_attention_mask(attention_mask);               // (B, 1, 1, T) bool
  torch::Tensor x = embeddings(input_ids, token_type_ids, position_ids);  // (B, T, H)
  std::vector<torch::Tensor>* all = nullptr;
  if (config_.output_hidden_states) {
    out.hidden_states.push_back(x);
    all = &out.hidden_states;
  }
  out.last_hidden_state = encoder(x, mask, all);                  // (B, T, H)
  if (pooler) out.pooler_output = pooler(out.last_hidden_state);  // (B, H)
  return out;
}

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(const BertConfig& config)
    : config_(config) {
  config_.add_pooling_layer = true;
  config_.validate();
  bert = register_module("bert", BertModel(config_));
  dropout = register_module("dropout",
                            nn::Dropout(config_.classifier_dropout.value_or(config_.hidden_dropout_prob)));
  classifier = register_module("classifier", nn::Linear(config_.hidden_size, config_.num_labels));
  init_weights();
}

void BertForSequenceClassificationImpl::init_weights() {
  init_bert_weights(*this, config_);
}

torch::Tensor BertForSequenceClassificationImpl::compute_loss(const torch::Tensor& logits,
                                                              const torch::Tensor& labels) const {
  const int64_t L = config_.num_labels;
  std::string type = config_.problem_type;
  if (type.empty()) {
    const bool integral = labels.scalar_type() == torch::kLong || labels.scalar_type() == torch::kInt;
    type = L == 1 ? "regression" : integral ? "single_label_classification" : "multi_label_classification";
  }
  // Reduced-precision logits (autocast) get an fp32 loss.
  torch::Tensor z =
      at::isReducedFloatingType(logits.scalar_type()) ? logits.to(torch::kFloat) : logits;  // (B, L)
  if (type == "single_label_classification") {
    return torch::nn::functional::cross_entropy(z.view({-1, L}), labels.view({-1}).to(torch::kLong));  // ()
  }
  torch::Tensor y = labels.to(z.scalar_type());
  if (type == "regression") {
    return L == 1 ? torch::mse_loss(z.squeeze(), y.squeeze()) : torch::mse_loss(z, y);  // ()
  }
  return torch::binary_cross_entropy_with_logits(z, y);  // ()
}

SequenceClassifierOutput BertForSequenceClassificationImpl::forward(const torch::Tensor& input_ids,
                                                                    const torch::Tensor& attention_mask,
                                                                    const torch::Tensor& token_type_ids,
                                                                    const torch::Tensor& labels) {
  BertModelOutput base = bert(input_ids, attention_mask, token_type_ids);
  SequenceClassifierOutput out;
  out.logits = classifier(dropout(base.pooler_output));               // (B, H) -> (B, L)
  if (labels.defined()) out.loss = compute_loss(out.logits, labels);  // ()
  out.last_hidden_state = std::move(base.last_hidden_state);
  out.pooler_output = std::move(base.pooler_output);
  out.hidden_states = std::move(base.hidden_states);
  return out;
}

SequenceClassifierOutput BertForSequenceClassificationImpl::forward(const BertBatch& batch) {
  return forward(batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.labels);
}

}  // namespace accel::models
