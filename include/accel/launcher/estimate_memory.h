// `accel estimate-memory`: the memory a BERT model needs for training with AdamW, computed from
// its config alone (parameter counts by formula, no weights loaded), next to the estimate
// Hugging Face Accelerate's `accelerate estimate-memory` prints for the same model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace accel::launcher {

/// The shape fields of a Hugging Face BertConfig (config.json) that decide the parameter count.
struct BertShape {
  std::string name;  // what the user gave ("bert-base-uncased", a path)
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  int64_t num_labels = 2;  // config "num_labels" or len(id2label); default 2
};

/// Reads a BertConfig from config.json text. Throws accel::InputError naming `source` when it is
/// not JSON, a field has the wrong type, or model_type is not "bert".
BertShape bert_shape_from_json(const std::string& json_text, const std::string& source);

/// MODEL as `accel estimate-memory` takes it: a built-in name (bert-base-uncased,
/// bert-large-uncased, all-MiniLM-L6-v2, also with their Hub prefixes), a config.json path, or a
/// folder holding config.json. Throws accel::InputError listing the accepted forms otherwise.
BertShape resolve_bert_model(const std::string& model);

/// The built-in model names.
std::vector<std::string> builtin_model_names();

/// Parameter counts of transformers' BERT classes (all trainable; buffers not counted).
struct BertParamCounts {
  int64_t embeddings = 0;               // word + position + token_type embeddings + LayerNorm
  int64_t layer = 0;                    // one encoder layer: q,k,v,o + LN + intermediate + output + LN
  int64_t encoder = 0;                  // num_hidden_layers * layer
  int64_t pooler = 0;                   // dense H x H + bias
  int64_t bert_model = 0;               // BertModel (with pooler): 109,482,240 for bert-base-uncased
  int64_t classifier = 0;               // H * num_labels + num_labels
  int64_t sequence_classification = 0;  // BertForSequenceClassification
  int64_t buffer_bytes = 0;             // position_ids + token_type_ids (int64), as Accelerate counts them
};
BertParamCounts count_bert_parameters(const BertShape& shape);

/// Bytes one training process holds for the model states with AdamW (activations excluded).
struct TrainingMemory {
  std::string precision;  // "fp32", "bf16" or "fp16"
  int64_t parameters = 0;
  int64_t weights = 0;    // fp32 always (under mixed precision the fp32 weights are the master copy)
  int64_t gradients = 0;  // fp32 always (autocast computes in low precision, grads land on fp32 params)
  int64_t optimizer_states = 0;  // AdamW exp_avg + exp_avg_sq, fp32
  int64_t autocast_cache = 0;    // bf16/fp16 weight copies autocast caches during the forward pass
  int64_t total = 0;             // sum of the above, one process (or each DDP rank)
  int num_processes = 1;
};

/// Estimates training memory for `parameters` in `precision` (fp32|bf16|fp16; float32,
/// bfloat16, float16 accepted) on `num_processes` ranks. Throws accel::Error for another precision.
TrainingMemory estimate_training_memory(int64_t parameters, const std::string& precision, int num_processes);

/// The data-parallel strategies of the sharded engine, in table order: NO_SHARD (DDP),
/// SHARD_OPTIMIZER (ZeRO-1), SHARD_GRAD_OP (ZeRO-2), FULL_SHARD (ZeRO-3), HYBRID_SHARD.
const std::vector<std::string>& sharding_strategies_for_estimate();

/// Bytes one process holds for the model states under one strategy with AdamW, in the engine's
/// model (P parameters, S = ceil(P / N) per shard over N processes; bf16 = bf16 compute
/// parameters and fp32 master shards; r = bytes of the gradient-reduction dtype):
///   NO_SHARD       fp32 4P + 4P + 8P;            bf16 4P + 4P + 8P + 2P autocast cache
///   ZeRO-1         fp32 4P + 4P + 8S;            bf16 2P + rP + 4S master + 8S Adam
///   SHARD_GRAD_OP  fp32 4P + 4S + 8S;            bf16 2P + rS + 12S
///   FULL_SHARD     fp32 4S + 4S + 8S + gathered; bf16 2S + rS + 12S + gathered
///   HYBRID_SHARD   FULL_SHARD with N = processes per machine
/// gathered = 2 x the largest unit (the one running and the prefetched next) in the parameter
/// dtype. offload (sharded strategies only): the fp32 master shard (for fp32 ZeRO-3, the
/// parameter shard itself; for fp32 ZeRO-1/2 a CPU copy) and the Adam states live in CPU memory.
struct ShardedMemory {
  std::string strategy;    // one of sharding_strategies_for_estimate()
  std::string precision;   // "fp32" or "bf16"
  int shard_group = 1;     // N: processes the states are sharded over
  int64_t parameters = 0;  // compute parameters on the device
  int64_t gradients = 0;
  int64_t master_weights = 0;    // fp32 master shard (bf16), or fp32's CPU copy with offload
  int64_t optimizer_states = 0;  // AdamW exp_avg + exp_avg_sq (fp32)
  int64_t autocast_cache = 0;    // NO_SHARD bf16: autocast's weight copies
  int64_t gathered_units = 0;    // FULL_SHARD / HYBRID_SHARD
  int64_t device_bytes = 0;      // everything not in CPU memory
  int64_t cpu_bytes = 0;         // offload: master + Adam
  int64_t zero_paper_bytes = 0;  // the ZeRO paper's mixed-precision budget: DDP 16P, ZeRO-1 4P + 12S,
                                 // ZeRO-2 2P + 14S, ZeRO-3 / hybrid 16S (bytes per process)
};

/// The row of one strategy. `largest_unit`: parameters of the biggest wrapped unit (one encoder
/// layer for BERT wrapped by layer). `num_machines` divides `num_processes` (HYBRID_SHARD shards
/// within a machine). `reduce_bytes`: 4 (fp32 reduction, the default) or 2 (bf16). Throws
/// accel::Error for an unknown strategy or precision, or bad counts.
ShardedMemory estimate_sharded_memory(int64_t parameters, int64_t largest_unit, const std::string& strategy,
                                      const std::string& precision, int num_processes, int num_machines = 1,
                                      int reduce_bytes = 4, bool offload = false);

/// One row of `accelerate estimate-memory`'s table for a BertModel (AutoModel), reproduced with
/// Accelerate 1.15's formulas: sizes include buffers, fp16/int8/int4 divide the fp32 size by
/// 2/4/8, "Training using Adam" is max(model, gradients, optimizer, step) from its
/// estimate_training_usage (fp32: 4x the model; float16: 2x; int8/int4: none, -1).
struct AccelerateRow {
  std::string dtype;           // float32 | float16 | int8 | int4
  double largest_layer = 0;    // bytes
  double total_size = 0;       // bytes
  int64_t training_adam = -1;  // bytes, -1 = N/A
};
std::vector<AccelerateRow> accelerate_estimate(const BertShape& shape);

/// Binary units with two decimals: "417.64 MiB", "1.63 GiB", "512 B".
std::string format_bytes(double bytes);

/// Accelerate's convert_bytes: 1024-based, labelled "MB", Python's round(x, 2) ("835.3 MB").
std::string accelerate_convert_bytes(double bytes);

}  // namespace accel::launcher
