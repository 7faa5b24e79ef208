// `accel estimate-memory MODEL`: BERT parameter counts by formula from config.json, the memory
// AdamW training needs in fp32 / bf16 / fp16 (total and per rank with sharded optimizer states),
// and Accelerate's own estimate for comparison.
#include "accel/launcher/estimate_memory.h"
#include "accel/core/fs.h"

#include "accel/core/error.h"
#include "accel/launcher/cli.h"
#include "accel/launcher/config_file.h"
#include "accel/launcher/questionnaire.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

namespace accel::launcher {
namespace {

const char* kEstimateHelp =
    "usage: accel estimate-memory MODEL [--num_processes N] [--num_machines M] [--offload_params]\n"
    "                             [--reduce_dtype fp32|bf16] [--dtypes fp32 bf16 fp16] [--num_labels K] "
    "[--json]\n"
    "\n"
    "Estimate the memory needed to fine-tune a BERT model with AdamW, from its config alone (no\n"
    "weights are read): parameter counts by formula, then weights, gradients and Adam states in\n"
    "fp32 and in bf16/fp16 mixed precision for one process, and with --num_processes the bytes per\n"
    "process of each data-parallel strategy (DDP, ZeRO-1, ZeRO-2 / SHARD_GRAD_OP, ZeRO-3 /\n"
    "FULL_SHARD, HYBRID_SHARD) beside the ZeRO paper's budget. Accelerate's own estimate\n"
    "(`accelerate estimate-memory`) is shown below for comparison. Activations are not included.\n"
    "\n"
    "MODEL:\n"
    "  bert-base-uncased | bert-large-uncased | all-MiniLM-L6-v2   built-in configs\n"
    "  PATH/config.json | PATH                                     a Hugging Face BERT config or folder\n"
    "\n"
    "options:\n"
    "  --num_processes N   also show the bytes per process of each strategy on N processes\n"
    "  --num_machines M    machines the N processes are on (HYBRID_SHARD shards within one; default 1)\n"
    "  --offload_params    sharded strategies keep the fp32 master shard and Adam states in CPU memory\n"
    "  --reduce_dtype D    dtype gradients are reduced in under bf16: fp32 (default) or bf16\n"
    "  --dtypes D [D ...]  training precisions to show: fp32, bf16, fp16 (also float32, bfloat16,\n"
    "                      float16; comma-separated works too). Default: all three\n"
    "  --num_labels K      classifier size for BertForSequenceClassification (default: from the\n"
    "                      config's num_labels / id2label, else 2)\n"
    "  --json              print the numbers (exact bytes) as JSON instead of tables\n"
    "  -h, --help          show this help\n";

struct Builtin {
  std::vector<std::string> names;
  BertShape shape;
};

const std::vector<Builtin>& builtins() {
  static const std::vector<Builtin> b = [] {
    BertShape base;  // BertConfig() defaults = bert-base-uncased
    BertShape large = base;
    large.hidden_size = 1024;
    large.num_hidden_layers = 24;
    large.num_attention_heads = 16;
    large.intermediate_size = 4096;
    BertShape minilm = base;  // sentence-transformers/all-MiniLM-L6-v2 config.json
    minilm.hidden_size = 384;
    minilm.num_hidden_layers = 6;
    minilm.num_attention_heads = 12;
    minilm.intermediate_size = 1536;
    return std::vector<Builtin>{
        {{"bert-base-uncased", "google-bert/bert-base-uncased"}, base},
        {{"bert-large-uncased", "google-bert/bert-large-uncased"}, large},
        {{"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}, minilm},
    };
  }();
  return b;
}

int64_t json_int(const nlohmann::json& j, const char* key, int64_t fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const auto& v = j[key];
  ACCEL_CHECK_INPUT(v.is_number_integer() && v.get<int64_t>() > 0, source, ": \"", key, "\" is ", v.dump(),
                    ", expected a positive integer. HINT: is this a BERT config.json from Hugging Face?");
  return v.get<int64_t>();
}

std::string python_round2(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", x);
  std::string s = buf;
  // Python prints round(x, 2) in its shortest form: 835.3, 4.0.
  while (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

std::string with_commas(int64_t v) {
  const std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// A plain-ASCII table (copy-paste safe).
std::string ascii_table(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(header.size());
  for (size_t i = 0; i < header.size(); ++i) w[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  std::ostringstream os;
  auto rule = [&] {
    os << "+";
    for (size_t x : w) os << std::string(x + 2, '-') << "+";
    os << "\n";
  };
  auto line = [&](const std::vector<std::string>& r) {
    os << "|";
    for (size_t i = 0; i < w.size(); ++i) {
      const std::string& cell = i < r.size() ? r[i] : "";
      if (i == 0) {
        os << " " << cell << std::string(w[i] - cell.size(), ' ') << " |";
      } else {
        os << " " << std::string(w[i] - cell.size(), ' ') << cell << " |";  // numbers right-aligned
      }
    }
    os << "\n";
  };
  rule();
  line(header);
  rule();
  for (const auto& r : rows) line(r);
  rule();
  return os.str();
}

std::string canonical_precision(const std::string& p) {
  if (p == "fp32" || p == "float32" || p == "no") return "fp32";
  if (p == "bf16" || p == "bfloat16") return "bf16";
  if (p == "fp16" || p == "float16") return "fp16";
  return "";
}

}  // namespace

std::vector<std::string> builtin_model_names() {
  std::vector<std::string> n;
  for (const auto& b : builtins()) n.push_back(b.names[0]);
  return n;
}

BertShape bert_shape_from_json(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(
        c10::str(source, ": not valid JSON (", e.what(), "). HINT: pass a Hugging Face config.json."));
  }
  ACCEL_CHECK_INPUT(j.is_object(), source,
                    ": expected a JSON object. HINT: pass a Hugging Face config.json.");
  if (j.contains("model_type")) {
    ACCEL_CHECK_INPUT(
        j["model_type"] == "bert", source, ": model_type is ", j["model_type"].dump(),
        ", accel estimate-memory knows BERT only. HINT: pass a BERT config (model_type \"bert\").");
  }
  if (j.contains("position_embedding_type") && j["position_embedding_type"].is_string()) {
    ACCEL_CHECK_INPUT(j["position_embedding_type"] == "absolute", source, ": position_embedding_type is ",
                      j["position_embedding_type"].dump(), "; only \"absolute\" is supported.");
  }
  BertShape s;
  s.name = source;
  s.vocab_size = json_int(j, "vocab_size", s.vocab_size, source);
  s.hidden_size = json_int(j, "hidden_size", s.hidden_size, source);
  s.num_hidden_layers = json_int(j, "num_hidden_layers", s.num_hidden_layers, source);
  s.num_attention_heads = json_int(j, "num_attention_heads", s.num_attention_heads, source);
  s.intermediate_size = json_int(j, "intermediate_size", s.intermediate_size, source);
  s.max_position_embeddings = json_int(j, "max_position_embeddings", s.max_position_embeddings, source);
  s.type_vocab_size = json_int(j, "type_vocab_size", s.type_vocab_size, source);
  if (j.contains("id2label") && j["id2label"].is_object() && !j["id2label"].empty()) {
    s.num_labels = static_cast<int64_t>(j["id2label"].size());
  }
  s.num_labels = json_int(j, "num_labels", s.num_labels, source);
  ACCEL_CHECK_INPUT(s.hidden_size % s.num_attention_heads == 0, source, ": hidden_size ", s.hidden_size,
                    " is not a multiple of num_attention_heads ", s.num_attention_heads, ".");
  return s;
}

BertShape resolve_bert_model(const std::string& model) {
  for (const auto& b : builtins()) {
    for (const auto& n : b.names) {
      if (n == model) {
        BertShape s = b.shape;
        s.name = b.names[0];
        return s;
      }
    }
  }
  std::string p = model;
  if (fs::is_directory(p)) p = fs::join(p, "config.json");
  if (fs::is_regular_file(p)) {
    BertShape s = bert_shape_from_json(fs::read_file(p, "model config"), p);
    s.name = model;
    return s;
  }
  std::vector<std::string> names;
  for (const auto& b : builtins()) names.insert(names.end(), b.names.begin(), b.names.end());
  std::string near = closest_match(model, names);
  throw InputError(
      c10::str("model '", model, "' is neither a built-in name nor a config.json / folder with one",
               (fs::is_directory(model) ? " (the folder has no config.json)" : ""), ". HINT: use one of ",
               builtin_model_names()[0], ", ", builtin_model_names()[1], ", ", builtin_model_names()[2],
               near.empty() ? "" : " (did you mean '" + near + "'?)",
               ", or a path to a Hugging Face BERT folder (no downloads are made)."));
}

BertParamCounts count_bert_parameters(const BertShape& s) {
  const int64_t H = s.hidden_size, I = s.intermediate_size;
  BertParamCounts c;
  c.embeddings = (s.vocab_size + s.max_position_embeddings + s.type_vocab_size) * H + 2 * H;
  const int64_t attention = 4 * (H * H + H) + 2 * H;      // q, k, v, output dense + LayerNorm
  const int64_t ffn = (H * I + I) + (I * H + H) + 2 * H;  // intermediate, output dense + LayerNorm
  c.layer = attention + ffn;
  c.encoder = s.num_hidden_layers * c.layer;
  c.pooler = H * H + H;
  c.bert_model = c.embeddings + c.encoder + c.pooler;
  c.classifier = H * s.num_labels + s.num_labels;
  c.sequence_classification = c.bert_model + c.classifier;
  c.buffer_bytes = 2 * s.max_position_embeddings * 8;
  return c;
}

TrainingMemory estimate_training_memory(int64_t parameters, const std::string& precision, int num_processes) {
  const std::string p = canonical_precision(precision);
  ACCEL_CHECK(!p.empty(), "precision is '", precision, "', expected one of fp32, bf16, fp16.");
  ACCEL_CHECK(num_processes >= 1, "num_processes is ", num_processes, ", expected >= 1.");
  TrainingMemory m;
  m.precision = p;
  m.parameters = parameters;
  m.num_processes = num_processes;
  m.weights = 4 * parameters;
  m.gradients = 4 * parameters;
  m.optimizer_states = 8 * parameters;
  m.autocast_cache = p == "fp32" ? 0 : 2 * parameters;
  m.total = m.weights + m.gradients + m.optimizer_states + m.autocast_cache;
  return m;
}

const std::vector<std::string>& sharding_strategies_for_estimate() {
  static const std::vector<std::string> s = {"NO_SHARD", "SHARD_OPTIMIZER", "SHARD_GRAD_OP", "FULL_SHARD",
                                             "HYBRID_SHARD"};
  return s;
}

ShardedMemory estimate_sharded_memory(int64_t parameters, int64_t largest_unit, const std::string& strategy,
                                      const std::string& precision, int num_processes, int num_machines,
                                      int reduce_bytes, bool offload) {
  const auto& names = sharding_strategies_for_estimate();
  const auto it = std::find(names.begin(), names.end(), strategy);
  ACCEL_CHECK(it != names.end(), "strategy is '", strategy, "', expected one of NO_SHARD, SHARD_OPTIMIZER, ",
              "SHARD_GRAD_OP, FULL_SHARD, HYBRID_SHARD.");
  const std::string p = canonical_precision(precision);
  ACCEL_CHECK(p == "fp32" || p == "bf16", "precision is '", precision, "', expected fp32 or bf16.");
  ACCEL_CHECK(parameters >= 0 && largest_unit >= 0 && largest_unit <= parameters, "parameters ", parameters,
              " and largest unit ", largest_unit, " must satisfy 0 <= unit <= parameters.");
  ACCEL_CHECK(num_processes >= 1 && num_machines >= 1 && num_processes % num_machines == 0, "num_processes ",
              num_processes, " must be >= 1 and a multiple of num_machines ", num_machines, ".");
  ACCEL_CHECK(reduce_bytes == 2 || reduce_bytes == 4, "reduce_bytes is ", reduce_bytes, ", expected 2 or 4.");
  const int64_t P = parameters;
  const int stage = static_cast<int>(std::min<ptrdiff_t>(it - names.begin(), 3));  // 0..3; hybrid is 3
  ShardedMemory m;
  m.strategy = strategy;
  m.precision = p;
  m.shard_group = stage == 0 ? 1 : strategy == "HYBRID_SHARD" ? num_processes / num_machines : num_processes;
  const int64_t n = m.shard_group;
  const int64_t S = (P + n - 1) / n;  // one shard, padded as the engine pads its flat buffers
  const bool bf16 = p == "bf16";
  const int64_t param_bytes = bf16 ? 2 : 4;
  if (stage == 0) {
    m.parameters = 4 * P;
    m.gradients = 4 * P;
    m.optimizer_states = 8 * P;
    m.autocast_cache = bf16 ? 2 * P : 0;
  } else {
    m.parameters = param_bytes * (stage == 3 ? S : P);
    m.gradients = (bf16 ? reduce_bytes : 4) * (stage >= 2 ? S : P);
    m.master_weights = bf16 ? 4 * S : 0;  // fp32: the parameters are the master copy
    m.optimizer_states = 8 * S;
    if (stage == 3) m.gathered_units = 2 * param_bytes * largest_unit;
    if (offload) {
      if (!bf16) {
        if (stage == 3) m.parameters = 0;  // the fp32 shard is the master: it lives on the CPU
        m.master_weights = 4 * S;          // the CPU optimizer's fp32 shard
      }
      m.cpu_bytes = m.master_weights + m.optimizer_states;
    }
  }
  m.device_bytes = m.parameters + m.gradients + m.master_weights + m.optimizer_states + m.autocast_cache +
                   m.gathered_units - m.cpu_bytes;
  m.zero_paper_bytes = stage == 0   ? 16 * P
                       : stage == 1 ? 4 * P + 12 * S
                       : stage == 2 ? 2 * P + 14 * S
                                    : 16 * S;
  return m;
}

std::vector<AccelerateRow> accelerate_estimate(const BertShape& shape) {
  const BertParamCounts c = count_bert_parameters(shape);
  // compute_module_sizes: every tensor at its own dtype (fp32 params, int64 buffers, all in embeddings).
  const double total = 4.0 * static_cast<double>(c.bert_model) + static_cast<double>(c.buffer_bytes);
  const double largest =
      std::max({4.0 * static_cast<double>(c.embeddings) + static_cast<double>(c.buffer_bytes),
                4.0 * static_cast<double>(c.layer), 4.0 * static_cast<double>(c.pooler)});
  const int64_t total_i = static_cast<int64_t>(total);
  std::vector<AccelerateRow> rows;
  for (const auto& [dtype, div] : std::vector<std::pair<std::string, double>>{
           {"float32", 1.0}, {"float16", 2.0}, {"int8", 4.0}, {"int4", 8.0}}) {
    AccelerateRow r;
    r.dtype = dtype;
    r.largest_layer = largest / div;
    r.total_size = total / div;
    if (dtype == "float32") r.training_adam = 4 * total_i;  // max(model, grads, optimizer 2x, step 4x)
    if (dtype == "float16") r.training_adam = 2 * total_i;  // max(1x, 1.5x, 2x, 2x) of the fp32 size
    rows.push_back(r);
  }
  return rows;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 5) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[64];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f %s", bytes, units[u]);
  }
  return buf;
}

std::string accelerate_convert_bytes(double size) {
  for (const char* unit : {"bytes", "KB", "MB", "GB", "TB"}) {
    if (size < 1024.0) return python_round2(size) + " " + unit;
    size /= 1024.0;
  }
  return python_round2(size) + " PB";
}

int estimate_memory_main(const std::vector<std::string>& args) {
  const std::string command = "accel estimate-memory";
  try {
    detail::ParsedArgs a = detail::parse_flags(args,
                                               {{"--num_processes", 1},
                                                {"--num_machines", 1},
                                                {"--offload_params", 0},
                                                {"--reduce_dtype", 1},
                                                {"--dtypes", -1},
                                                {"--num_labels", 1},
                                                {"--json", 0}},
                                               command);
    if (a.help) {
      std::cout << kEstimateHelp;
      return 0;
    }
    if (a.positional.size() != 1) {
      throw detail::UsageError(
          a.positional.empty()
              ? "MODEL is missing. HINT: `accel estimate-memory bert-base-uncased`; see --help."
              : c10::str("expected one MODEL, got ", a.positional.size(), " (", a.positional[0], ", ",
                         a.positional[1], "). HINT: see `accel estimate-memory --help`."));
    }
    auto positive_int = [&](const std::string& flag) -> std::optional<int> {
      if (!a.has(flag)) return std::nullopt;
      const std::string v = a.get(flag);
      int n = 0;
      size_t used = 0;
      try {
        n = std::stoi(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != v.size() || n < 1) {
        throw detail::UsageError(c10::str(flag, " is '", v, "', expected an integer >= 1."));
      }
      return n;
    };
    const std::optional<int> num_processes = positive_int("--num_processes");
    const std::optional<int> num_labels = positive_int("--num_labels");
    const int num_machines = positive_int("--num_machines").value_or(1);
    const bool offload = a.has("--offload_params");
    const std::string reduce_dtype = canonical_precision(a.get("--reduce_dtype", "fp32"));
    if (reduce_dtype != "fp32" && reduce_dtype != "bf16") {
      throw detail::UsageError(
          c10::str("--reduce_dtype is '", a.get("--reduce_dtype"), "', expected fp32 or bf16."));
    }
    if (!num_processes && (a.has("--num_machines") || offload || a.has("--reduce_dtype"))) {
      throw detail::UsageError(
          "--num_machines, --offload_params and --reduce_dtype describe sharding over processes. HINT: add "
          "--num_processes N.");
    }
    if (num_processes && *num_processes % num_machines != 0) {
      throw detail::UsageError(c10::str("--num_processes ", *num_processes,
                                        " is not a multiple of --num_machines ", num_machines, "."));
    }
    std::vector<std::string> dtypes;
    if (a.has("--dtypes")) {
      for (const auto& v : a.flags.at("--dtypes")) {
        std::stringstream ss(v);
        std::string item;
        while (std::getline(ss, item, ',')) {
          if (item.empty()) continue;
          const std::string c = canonical_precision(item);
          if (c.empty()) {
            throw detail::UsageError(c10::str("--dtypes: '", item,
                                              "' is not a training precision; expected fp32, ",
                                              "bf16 or fp16 (or float32, bfloat16, float16)."));
          }
          if (std::find(dtypes.begin(), dtypes.end(), c) == dtypes.end()) dtypes.push_back(c);
        }
      }
    } else {
      dtypes = {"fp32", "bf16", "fp16"};
    }

    BertShape shape = resolve_bert_model(a.positional[0]);
    if (num_labels) shape.num_labels = *num_labels;
    const BertParamCounts counts = count_bert_parameters(shape);
    const int n = num_processes.value_or(1);
    std::vector<TrainingMemory> mems;
    for (const auto& d : dtypes)
      mems.push_back(estimate_training_memory(counts.sequence_classification, d, n));
    const auto acc = accelerate_estimate(shape);
    // Sharded strategies: the largest unit is one encoder layer (the model wrapped by layer).
    std::vector<ShardedMemory> sharded;
    if (num_processes) {
      for (const auto& strategy : sharding_strategies_for_estimate()) {
        for (const char* p : {"fp32", "bf16"}) {
          sharded.push_back(estimate_sharded_memory(counts.sequence_classification, counts.layer, strategy, p,
                                                    n, num_machines, reduce_dtype == "bf16" ? 2 : 4,
                                                    offload));
        }
      }
    }

    if (a.has("--json")) {
      nlohmann::ordered_json j;
      j["model"] = shape.name;
      j["config"] = {{"vocab_size", shape.vocab_size},
                     {"hidden_size", shape.hidden_size},
                     {"num_hidden_layers", shape.num_hidden_layers},
                     {"num_attention_heads", shape.num_attention_heads},
                     {"intermediate_size", shape.intermediate_size},
                     {"max_position_embeddings", shape.max_position_embeddings},
                     {"type_vocab_size", shape.type_vocab_size},
                     {"num_labels", shape.num_labels}};
      j["parameters"] = {{"embeddings", counts.embeddings},
                         {"encoder_layer", counts.layer},
                         {"encoder", counts.encoder},
                         {"pooler", counts.pooler},
                         {"BertModel", counts.bert_model},
                         {"classifier", counts.classifier},
                         {"BertForSequenceClassification", counts.sequence_classification}};
      j["num_processes"] = n;
      j["training"] = nlohmann::ordered_json::array();
      for (const auto& m : mems) {
        nlohmann::ordered_json t = {{"precision", m.precision},
                                    {"weights_bytes", m.weights},
                                    {"gradients_bytes", m.gradients},
                                    {"optimizer_states_bytes", m.optimizer_states},
                                    {"autocast_cache_bytes", m.autocast_cache},
                                    {"total_bytes", m.total}};
        j["training"].push_back(t);
      }
      if (num_processes) {
        j["sharding"] = {{"num_processes", n},
                         {"num_machines", num_machines},
                         {"offload_params", offload},
                         {"reduce_dtype", reduce_dtype},
                         {"largest_unit_parameters", counts.layer},
                         {"strategies", nlohmann::ordered_json::array()}};
        for (const auto& m : sharded) {
          j["sharding"]["strategies"].push_back({{"strategy", m.strategy},
                                                 {"precision", m.precision},
                                                 {"shard_group", m.shard_group},
                                                 {"parameters_bytes", m.parameters},
                                                 {"gradients_bytes", m.gradients},
                                                 {"master_weights_bytes", m.master_weights},
                                                 {"optimizer_states_bytes", m.optimizer_states},
                                                 {"autocast_cache_bytes", m.autocast_cache},
                                                 {"gathered_units_bytes", m.gathered_units},
                                                 {"device_bytes", m.device_bytes},
                                                 {"cpu_bytes", m.cpu_bytes},
                                                 {"zero_paper_bytes", m.zero_paper_bytes}});
        }
      }
      j["accelerate_estimate"] = nlohmann::ordered_json::array();
      for (const auto& r : acc) {
        j["accelerate_estimate"].push_back(
            {{"dtype", r.dtype},
             {"largest_layer_bytes", r.largest_layer},
             {"total_size_bytes", r.total_size},
             {"training_using_adam_bytes", r.training_adam < 0 ? nlohmann::ordered_json(nullptr)
                                                               : nlohmann::ordered_json(r.training_adam)}});
      }
      std::cout << j.dump(2) << "\n";
      return 0;
    }

    std::ostringstream os;
    os << "Memory for training `" << shape.name
       << "` (BertForSequenceClassification, num_labels=" << shape.num_labels << ") with AdamW\n\n";
    os << "Parameters: BertModel " << with_commas(counts.bert_model) << " (embeddings "
       << with_commas(counts.embeddings) << ", " << shape.num_hidden_layers << " layers x "
       << with_commas(counts.layer) << ", pooler " << with_commas(counts.pooler) << ");\n"
       << "            BertForSequenceClassification " << with_commas(counts.sequence_classification)
       << " (+ classifier " << with_commas(counts.classifier) << ")\n\n";
    std::vector<std::string> header = {"model states (bytes)"};
    for (const auto& m : mems) header.push_back(m.precision == "fp32" ? "fp32" : m.precision + " (autocast)");
    std::vector<std::vector<std::string>> rows;
    auto row = [&](const std::string& label, auto field) {
      std::vector<std::string> r = {label};
      for (const auto& m : mems) r.push_back(format_bytes(static_cast<double>(field(m))));
      rows.push_back(r);
    };
    row("weights (fp32) [1]", [](const TrainingMemory& m) { return m.weights; });
    row("gradients (fp32) [2]", [](const TrainingMemory& m) { return m.gradients; });
    row("Adam states: 2 moments (fp32)", [](const TrainingMemory& m) { return m.optimizer_states; });
    row("autocast weight copies [3]", [](const TrainingMemory& m) { return m.autocast_cache; });
    row("total, 1 process", [](const TrainingMemory& m) { return m.total; });
    os << ascii_table(header, rows);
    os << "[1] Under mixed precision accel keeps the model's weights in fp32 (they are the master copy);\n"
          "    autocast runs matmuls in bf16/fp16. Sizes: fp32 4 bytes, bf16/fp16 2 bytes per parameter.\n"
          "[2] Gradients are fp32: they land on the fp32 parameters (accel keeps grads fp32 with autocast).\n"
          "    fp16 adds a loss scaler (a few bytes).\n"
          "[3] autocast caches a bf16/fp16 copy of each weight it casts during the forward pass (2 bytes "
          "per\n"
          "    parameter, freed when the forward's autocast region ends): a peak, counted in the total.\n";
    if (num_processes) {
      const int64_t P = counts.sequence_classification;
      os << "\nData parallel on " << n << " process" << (n == 1 ? "" : "es")
         << (num_machines > 1 ? c10::str(" (", num_machines, " machines)") : std::string())
         << ", bytes per process "
         << "(P = " << with_commas(P) << " parameters, S = ceil(P / N); gradients reduced in " << reduce_dtype
         << (offload ? "; --offload_params" : "") << "):\n";
      std::vector<std::string> sh = {"strategy"};
      for (const char* p : {"fp32", "bf16"}) {
        const std::string note = std::string(p) == "fp32" ? " [4]" : " [5]";
        if (offload) {
          sh.push_back(std::string(p) + " device" + note);
          sh.push_back(std::string(p) + " CPU");
        } else {
          sh.push_back(p + note);
        }
      }
      sh.push_back("ZeRO paper [6]");
      std::vector<std::vector<std::string>> srows;
      for (size_t i = 0; i < sharded.size(); i += 2) {
        const ShardedMemory& f = sharded[i];
        const ShardedMemory& b = sharded[i + 1];
        std::string label = f.strategy == "NO_SHARD"          ? "NO_SHARD (DDP)"
                            : f.strategy == "SHARD_OPTIMIZER" ? "SHARD_OPTIMIZER (ZeRO-1)"
                            : f.strategy == "SHARD_GRAD_OP"   ? "SHARD_GRAD_OP (ZeRO-2)"
                            : f.strategy == "FULL_SHARD"
                                ? "FULL_SHARD (ZeRO-3) [7]"
                                : c10::str("HYBRID_SHARD (", f.shard_group, " per machine) [7]");
        std::vector<std::string> r = {label};
        for (const ShardedMemory* m : {&f, &b}) {
          r.push_back(format_bytes(static_cast<double>(m->device_bytes)));
          if (offload) r.push_back(format_bytes(static_cast<double>(m->cpu_bytes)));
        }
        r.push_back(format_bytes(static_cast<double>(f.zero_paper_bytes)));
        srows.push_back(r);
      }
      os << ascii_table(sh, srows);
      os << "[4] fp32: DDP 4P weights + 4P gradients + 8P Adam; ZeRO-1 shards Adam (8S); ZeRO-2 also the\n"
            "    gradients (4S); ZeRO-3 also the weights (4S).\n"
            "[5] bf16 (sharded): 2P bf16 compute weights (2S under ZeRO-3), gradients in the reduce dtype, "
            "and an\n"
            "    fp32 master shard (4S) with its Adam states (8S); DDP keeps fp32 weights + 2P autocast "
            "copies.\n"
            "[6] The ZeRO paper's budget for 16-bit training with Adam: DDP 16P, ZeRO-1 4P + 12S, ZeRO-2\n"
            "    2P + 14S, ZeRO-3 16S bytes per process (bf16 above matches it with --reduce_dtype bf16).\n"
            "[7] Plus 2 gathered units in the parameter dtype (the layer running and the prefetched next), "
            "the\n"
            "    model wrapped by layer: a unit is one encoder layer of "
         << with_commas(counts.layer)
         << " parameters. The rest of the\n    model (embeddings, pooler, classifier: "
         << with_commas(P - shape.num_hidden_layers * counts.layer)
         << " parameters) is the root\n"
            "    unit; while it is gathered with the first layer, the peak is that much larger.\n";
      if (offload) {
        os << "    --offload_params: the sharded strategies keep the fp32 master shard and the Adam states "
              "in CPU\n"
              "    memory (fp32 ZeRO-3: the parameter shard itself); NO_SHARD (DDP) does not offload.\n";
      }
    }
    os << "Not included: activations (they grow with batch size x sequence length; mixed precision\n"
          "roughly halves them), the CUDA context / allocator overhead, and the data loader.\n\n";
    std::vector<std::vector<std::string>> arows;
    for (const auto& r : acc) {
      arows.push_back(
          {r.dtype, accelerate_convert_bytes(r.largest_layer), accelerate_convert_bytes(r.total_size),
           r.training_adam < 0 ? "N/A" : accelerate_convert_bytes(static_cast<double>(r.training_adam))});
    }
    os << "For comparison, Accelerate's estimate (`accelerate estimate-memory`, BertModel via AutoModel):\n";
    os << ascii_table({"dtype", "Largest Layer", "Total Size", "Training using Adam"}, arows);
    os << "Accelerate's \"Training using Adam\" is the largest single item, not a sum: fp32 = 4x the model\n"
          "(weights + grads + 2 moments), float16 = 2x (optimizer states), with 1 GB = 1024^3 bytes; its\n"
          "sizes include the two int64 position/token-type buffers. accel's table above sums all states.\n";
    std::cout << os.str() << std::flush;
    return 0;
  } catch (const detail::UsageError& e) {
    std::cerr << command << ": error: " << e.what_without_backtrace() << "\n";
    return 2;
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const c10::Error*>(&e);
    std::cerr << command << ": error: " << (ce ? ce->what_without_backtrace() : e.what()) << "\n";
    return 1;
  }
}

}  // namespace accel::launcher
