// BertConfig: built-in architectures and Hugging Face config.json reading/writing.
#include "accel/checkpoint/safetensors.h"
#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "accel/models/bert.h"

#include <nlohmann/json.hpp>

#include <sstream>

namespace accel::models {
using nlohmann::json;

namespace {

const char* kActivations[] = {"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish"};

int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  ACCEL_CHECK_INPUT(v.is_number_integer() || v.is_number_unsigned(), src, ": \"", key,
                    "\" must be an integer, got ", v.dump(),
                    ". HINT: fix config.json or rebuild it with save_pretrained.");
  return v.get<int64_t>();
}

double get_double(const json& j, const char* key, double fallback, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  ACCEL_CHECK_INPUT(v.is_number(), src, ": \"", key, "\" must be a number, got ", v.dump(),
                    ". HINT: fix config.json or rebuild it with save_pretrained.");
  return v.get<double>();
}

std::string get_string(const json& j, const char* key, const std::string& fallback,
                       const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  const json& v = j[key];
  ACCEL_CHECK_INPUT(v.is_string(), src, ": \"", key, "\" must be a string, got ", v.dump(),
                    ". HINT: fix config.json or rebuild it with save_pretrained.");
  return v.get<std::string>();
}

}  // namespace

BertConfig BertConfig::from_name(const std::string& name) {
  BertConfig c;  // bert-base-uncased
  if (name == "bert-base-uncased" || name == "google-bert/bert-base-uncased") return c;
  if (name == "bert-large-uncased" || name == "google-bert/bert-large-uncased") {
    c.hidden_size = 1024;
    c.num_hidden_layers = 24;
    c.num_attention_heads = 16;
    c.intermediate_size = 4096;
    return c;
  }
  if (name == "all-MiniLM-L6-v2" || name == "sentence-transformers/all-MiniLM-L6-v2") {
    c.hidden_size = 384;
    c.num_hidden_layers = 6;
    c.num_attention_heads = 12;
    c.intermediate_size = 1536;
    return c;
  }
  if (name == "bert-tiny" || name == "prajjwal1/bert-tiny") {
    c.hidden_size = 128;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.intermediate_size = 512;
    return c;
  }
  ACCEL_CHECK(false, "unknown BERT architecture '", name,
              "'; built-in names: bert-base-uncased, bert-large-uncased, all-MiniLM-L6-v2, bert-tiny. "
              "HINT: for any other model, read its config.json with BertConfig::from_pretrained(folder).");
  return c;
}

void BertConfig::validate() const {
  ACCEL_CHECK(vocab_size > 0 && hidden_size > 0 && num_hidden_layers >= 0 && num_attention_heads > 0 &&
                  intermediate_size > 0 && max_position_embeddings > 0 && type_vocab_size > 0,
              "BertConfig: sizes must be positive (vocab_size=", vocab_size, ", hidden_size=", hidden_size,
              ", num_hidden_layers=", num_hidden_layers, ", num_attention_heads=", num_attention_heads,
              ", intermediate_size=", intermediate_size, ", max_position_embeddings=",
              max_position_embeddings, ", type_vocab_size=", type_vocab_size, ")");
  ACCEL_CHECK(hidden_size % num_attention_heads == 0, "BertConfig: hidden_size (", hidden_size,
              ") is not a multiple of num_attention_heads (", num_attention_heads, ")");
  ACCEL_CHECK(num_labels > 0, "BertConfig: num_labels must be >= 1, got ", num_labels);
  ACCEL_CHECK(id2label.empty() || static_cast<int64_t>(id2label.size()) == num_labels,
              "BertConfig: id2label has ", id2label.size(), " entries but num_labels is ", num_labels);
  for (double p : {hidden_dropout_prob, attention_probs_dropout_prob, classifier_dropout.value_or(0.0)}) {
    ACCEL_CHECK(p >= 0.0 && p < 1.0, "BertConfig: dropout probabilities must be in [0, 1), got ", p);
  }
  ACCEL_CHECK(layer_norm_eps > 0, "BertConfig: layer_norm_eps must be > 0, got ", layer_norm_eps);
  ACCEL_CHECK(pad_token_id >= 0 && pad_token_id < vocab_size, "BertConfig: pad_token_id ", pad_token_id,
              " is outside the vocabulary [0, ", vocab_size, ")");
  bool act_ok = false;
  for (const char* a : kActivations) act_ok = act_ok || hidden_act == a;
  ACCEL_CHECK(act_ok, "BertConfig: unknown hidden_act '", hidden_act,
              "'; accepted: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish");
  ACCEL_CHECK(problem_type.empty() || problem_type == "regression" ||
                  problem_type == "single_label_classification" ||
                  problem_type == "multi_label_classification",
              "BertConfig: unknown problem_type '", problem_type,
              "'; accepted: regression, single_label_classification, multi_label_classification "
              "(or empty to infer it from the labels)");
}

std::map<int64_t, std::string> BertConfig::labels() const {
  if (!id2label.empty()) return id2label;
  std::map<int64_t, std::string> m;
  for (int64_t i = 0; i < num_labels; ++i) m[i] = "LABEL_" + std::to_string(i);
  return m;
}

BertConfig BertConfig::from_json_string(const std::string& text, const std::string& source) {
  const char* kHint = " HINT: pass the config.json of a Hugging Face BERT model (model_type \"bert\").";
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    ACCEL_CHECK_INPUT(false, source, " is not valid JSON (", e.what(), ").", kHint);
  }
  ACCEL_CHECK_INPUT(j.is_object(), source, " is not a JSON object.", kHint);
  const std::string model_type = get_string(j, "model_type", "bert", source);
  ACCEL_CHECK_INPUT(model_type == "bert", source, " describes a '", model_type,
                    "' model, not BERT (model_type must be \"bert\").", kHint);
  const std::string pos = get_string(j, "position_embedding_type", "absolute", source);
  ACCEL_CHECK_INPUT(pos == "absolute", source, ": position_embedding_type '", pos,
                    "' is not supported (only \"absolute\").", kHint);
  ACCEL_CHECK_INPUT(!j.value("is_decoder", false) && !j.value("add_cross_attention", false), source,
                    ": decoder / cross-attention BERT is not supported (encoder only).", kHint);

  BertConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, source);
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size, source);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", c.num_hidden_layers, source);
  c.num_attention_heads = get_int(j, "num_attention_heads", c.num_attention_heads, source);
  c.intermediate_size = get_int(j, "intermediate_size", c.intermediate_size, source);
  c.hidden_act = get_string(j, "hidden_act", c.hidden_act, source);
  c.hidden_dropout_prob = get_double(j, "hidden_dropout_prob", c.hidden_dropout_prob, source);
  c.attention_probs_dropout_prob =
      get_double(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, source);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, source);
  c.type_vocab_size = get_int(j, "type_vocab_size", c.type_vocab_size, source);
  c.initializer_range = get_double(j, "initializer_range", c.initializer_range, source);
  c.layer_norm_eps = get_double(j, "layer_norm_eps", c.layer_norm_eps, source);
  c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, source);
  if (j.contains("classifier_dropout") && !j["classifier_dropout"].is_null()) {
    c.classifier_dropout = get_double(j, "classifier_dropout", 0.0, source);
  }
  c.problem_type = get_string(j, "problem_type", "", source);
  c.output_hidden_states = j.contains("output_hidden_states") && j["output_hidden_states"].is_boolean() &&
                           j["output_hidden_states"].get<bool>();
  if (j.contains("id2label") && !j["id2label"].is_null()) {
    ACCEL_CHECK_INPUT(j["id2label"].is_object(), source, ": \"id2label\" must be an object.", kHint);
    for (auto it = j["id2label"].begin(); it != j["id2label"].end(); ++it) {
      int64_t id = 0;
      try {
        size_t used = 0;
        id = std::stoll(it.key(), &used);
        ACCEL_CHECK_INPUT(used == it.key().size(), "");
      } catch (const std::exception&) {
        ACCEL_CHECK_INPUT(false, source, ": id2label key '", it.key(), "' is not an integer.", kHint);
      }
      ACCEL_CHECK_INPUT(it.value().is_string(), source, ": id2label[", it.key(), "] is not a string.",
                        kHint);
      c.id2label[id] = it.value().get<std::string>();
    }
    c.num_labels = static_cast<int64_t>(c.id2label.size());
    for (int64_t i = 0; i < c.num_labels; ++i) {
      ACCEL_CHECK_INPUT(c.id2label.count(i), source, ": id2label must have keys 0..",
                        c.num_labels - 1, " (", i, " is missing).", kHint);
    }
  } else {
    c.num_labels = get_int(j, "num_labels", c.num_labels, source);
  }
  try {
    c.validate();
  } catch (const accel::Error& e) {
    ACCEL_CHECK_INPUT(false, source, ": ", e.what(), ".", kHint);
  }
  return c;
}

BertConfig BertConfig::from_json_file(const std::string& path) {
  ACCEL_CHECK_INPUT(fs::is_regular_file(path), "cannot open BERT config '", path,
                    "'. HINT: a Hugging Face model folder holds config.json next to model.safetensors.");
  return from_json_string(fs::read_file(path, "BERT config"), c10::str("BERT config '", path, "'"));
}

BertConfig BertConfig::from_pretrained(const std::string& folder_or_file) {
  std::string p = folder_or_file;
  if (fs::is_directory(p)) {
    p = fs::join(p, "config.json");
  } else if (fs::filename(p) != "config.json") {
    p = fs::join(fs::parent(p), "config.json");
  }
  return from_json_file(p);
}

std::string BertConfig::to_json_string(const std::vector<std::string>& architectures) const {
  json j;
  if (!architectures.empty()) j["architectures"] = architectures;
  j["model_type"] = "bert";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["intermediate_size"] = intermediate_size;
  j["hidden_act"] = hidden_act;
  j["hidden_dropout_prob"] = hidden_dropout_prob;
  j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
  j["max_position_embeddings"] = max_position_embeddings;
  j["type_vocab_size"] = type_vocab_size;
  j["initializer_range"] = initializer_range;
  j["layer_norm_eps"] = layer_norm_eps;
  j["pad_token_id"] = pad_token_id;
  j["position_embedding_type"] = "absolute";
  j["classifier_dropout"] = classifier_dropout ? json(*classifier_dropout) : json(nullptr);
  j["problem_type"] = problem_type.empty() ? json(nullptr) : json(problem_type);
  json id2 = json::object(), l2id = json::object();
  for (const auto& [id, label] : labels()) {
    id2[std::to_string(id)] = label;
    l2id[label] = id;
  }
  j["id2label"] = id2;
  j["label2id"] = l2id;
  return j.dump(2) + "\n";
}

void BertConfig::save(const std::string& path, const std::vector<std::string>& architectures) const {
  fs::write_file_atomic(path, to_json_string(architectures));
}

}  // namespace accel::models
