// `accel estimate-memory`: parameter counts equal transformers' (checked with transformers 5.23 on
// the meta device), the training-memory arithmetic, Accelerate's own table reproduced exactly
// (accelerate 1.15's estimate_training_usage / calculate_maximum_sizes on the same configs).
#include "accel/launcher/estimate_memory.h"

#include "accel/core/error.h"
#include "accel/launcher/cli.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace fs = accel::fs;
using accel::test::Path;
using namespace accel::launcher;

namespace {

int run(const std::vector<std::string>& args, std::string* out, std::string* err) {
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  int rc = estimate_memory_main(args);
  *out = testing::internal::GetCapturedStdout();
  *err = testing::internal::GetCapturedStderr();
  return rc;
}

}  // namespace

TEST(EstimateMemory, ParameterCountsMatchTransformers) {
  // sum(p.numel() for p in BertModel(cfg).parameters()) and BertForSequenceClassification (num_labels=2).
  BertParamCounts base = count_bert_parameters(resolve_bert_model("bert-base-uncased"));
  EXPECT_EQ(base.bert_model, 109482240);
  EXPECT_EQ(base.sequence_classification, 109483778);
  EXPECT_EQ(base.bert_model - base.pooler, 108891648);  // add_pooling_layer=False
  BertParamCounts large = count_bert_parameters(resolve_bert_model("google-bert/bert-large-uncased"));
  EXPECT_EQ(large.bert_model, 335141888);
  EXPECT_EQ(large.sequence_classification, 335143938);
  BertParamCounts mini = count_bert_parameters(resolve_bert_model("all-MiniLM-L6-v2"));
  EXPECT_EQ(mini.bert_model, 22713216);
  EXPECT_EQ(mini.sequence_classification, 22713986);
  EXPECT_EQ(mini.embeddings, 11918592);
  EXPECT_EQ(mini.buffer_bytes, 8192);
}

TEST(EstimateMemory, ReadsConfigJsonFileAndFolder) {
  const std::string dir = (Path(fs::temp_directory()) / "accel_estimate_test").string();
  fs::create_directories(dir);
  std::ofstream(dir + "/config.json")
      << R"({"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 384, "intermediate_size": 1536,
             "num_attention_heads": 12, "num_hidden_layers": 6, "vocab_size": 30522, "max_position_embeddings": 512,
             "type_vocab_size": 2, "id2label": {"0": "a", "1": "b", "2": "c"}})";
  BertShape s = resolve_bert_model(dir);
  EXPECT_EQ(s.num_labels, 3);
  EXPECT_EQ(count_bert_parameters(s).bert_model, 22713216);
  EXPECT_EQ(count_bert_parameters(resolve_bert_model(dir + "/config.json")).sequence_classification,
            22713216 + 384 * 3 + 3);
  std::ofstream(dir + "/bad.json") << R"({"model_type": "gpt2"})";
  EXPECT_THROW(resolve_bert_model(dir + "/bad.json"), accel::InputError);
  std::ofstream(dir + "/bad2.json") << R"({"hidden_size": "big"})";
  try {
    resolve_bert_model(dir + "/bad2.json");
    ADD_FAILURE();
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("\"hidden_size\" is \"big\", expected a positive integer"),
              std::string::npos);
  }
  try {
    resolve_bert_model("bert-base-uncase");
    ADD_FAILURE();
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("did you mean 'bert-base-uncased'"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(EstimateMemory, TrainingMemoryArithmetic) {
  const int64_t P = 109483778;
  TrainingMemory f = estimate_training_memory(P, "fp32", 1);
  EXPECT_EQ(f.weights, 4 * P);
  EXPECT_EQ(f.gradients, 4 * P);
  EXPECT_EQ(f.optimizer_states, 8 * P);
  EXPECT_EQ(f.autocast_cache, 0);
  EXPECT_EQ(f.total, 16 * P);
  EXPECT_EQ(f.per_rank_sharded, 16 * P);
  TrainingMemory b = estimate_training_memory(P, "bfloat16", 4);
  EXPECT_EQ(b.precision, "bf16");
  EXPECT_EQ(b.weights, 4 * P);
  EXPECT_EQ(b.gradients, 4 * P);
  EXPECT_EQ(b.autocast_cache, 2 * P);
  EXPECT_EQ(b.total, 18 * P);
  EXPECT_EQ(b.per_rank_sharded, 4 * P + 4 * P + 2 * P + (8 * P + 3) / 4);
  EXPECT_EQ(estimate_training_memory(3, "fp16", 2).per_rank_sharded, 12 + 12 + 6 + 12);
  EXPECT_THROW(estimate_training_memory(P, "int8", 1), accel::Error);
}

TEST(EstimateMemory, AccelerateTableReproduced) {
  // accelerate 1.15: calculate_maximum_sizes(BertModel on meta) and estimate_training_usage.
  auto rows = accelerate_estimate(resolve_bert_model("bert-base-uncased"));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].dtype, "float32");
  EXPECT_EQ(rows[0].total_size, 437937152.0);
  EXPECT_EQ(rows[0].largest_layer, 95356928.0);
  EXPECT_EQ(rows[0].training_adam, 1751748608);
  EXPECT_EQ(rows[1].training_adam, 875874304);
  EXPECT_EQ(rows[2].training_adam, -1);
  EXPECT_EQ(accelerate_convert_bytes(rows[0].total_size), "417.65 MB");
  EXPECT_EQ(accelerate_convert_bytes(rows[0].largest_layer), "90.94 MB");
  EXPECT_EQ(accelerate_convert_bytes(1751748608), "1.63 GB");
  EXPECT_EQ(accelerate_convert_bytes(875874304), "835.3 MB");
  auto mini = accelerate_estimate(resolve_bert_model("all-MiniLM-L6-v2"));
  EXPECT_EQ(mini[0].total_size, 90861056.0);
  EXPECT_EQ(mini[0].largest_layer, 47682560.0);
  EXPECT_EQ(accelerate_convert_bytes(mini[0].training_adam), "346.61 MB");
  EXPECT_EQ(accelerate_convert_bytes(mini[1].training_adam), "173.3 MB");
}

TEST(EstimateMemory, FormatBytes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(16.0 * 109483778), "1.63 GiB");
  EXPECT_EQ(format_bytes(4.0 * 109483778), "417.65 MiB");
  EXPECT_EQ(accelerate_convert_bytes(4096), "4.0 KB");
}

TEST(EstimateMemory, CommandTableAndJson) {
  std::string out, err;
  ASSERT_EQ(run({"bert-base-uncased", "--num_processes", "4"}, &out, &err), 0) << err;
  for (const char* s : {"BertModel 109,482,240", "BertForSequenceClassification 109,483,778", "       fp32 | bf16 (autocast) | fp16 (autocast) |", "417.65 MiB", "835.29 MiB", "1.63 GiB", "1.84 GiB",
                        "per rank, 4 processes (ZeRO-1)", "[1] Under mixed precision", "Accelerate's estimate",
                        "| float32 |      90.94 MB |  417.65 MB |             1.63 GB |", "N/A"}) {
    EXPECT_NE(out.find(s), std::string::npos) << "missing '" << s << "' in:\n" << out;
  }
  ASSERT_EQ(run({"all-MiniLM-L6-v2", "--json", "--dtypes", "fp32,bf16", "--num_processes=2"}, &out, &err), 0) << err;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["parameters"]["BertModel"], 22713216);
  EXPECT_EQ(j["parameters"]["BertForSequenceClassification"], 22713986);
  ASSERT_EQ(j["training"].size(), 2u);
  EXPECT_EQ(j["training"][0]["total_bytes"], 16LL * 22713986);
  EXPECT_EQ(j["training"][1]["precision"], "bf16");
  EXPECT_EQ(j["training"][1]["per_rank_zero1_bytes"], 10LL * 22713986 + 4LL * 22713986);
  EXPECT_EQ(j["accelerate_estimate"][0]["total_size_bytes"], 90861056.0);
  EXPECT_TRUE(j["accelerate_estimate"][3]["training_using_adam_bytes"].is_null());
  ASSERT_EQ(run({"bert-base-uncased", "--num_labels", "5", "--json"}, &out, &err), 0);
  EXPECT_EQ(nlohmann::json::parse(out)["parameters"]["BertForSequenceClassification"], 109482240 + 768 * 5 + 5);
}

TEST(EstimateMemory, HelpAndUsageErrors) {
  std::string out, err;
  EXPECT_EQ(run({"--help"}, &out, &err), 0);
  EXPECT_NE(out.find("usage: accel estimate-memory MODEL"), std::string::npos);
  EXPECT_EQ(run({"bert-base-uncased", "--num_process", "2"}, &out, &err), 2);
  EXPECT_NE(err.find("unknown flag '--num_process'; did you mean '--num_processes'?"), std::string::npos) << err;
  EXPECT_EQ(run({}, &out, &err), 2);
  EXPECT_NE(err.find("MODEL is missing"), std::string::npos);
  EXPECT_EQ(run({"bert-base-uncased", "--num_processes", "two"}, &out, &err), 2);
  EXPECT_NE(err.find("--num_processes is 'two', expected an integer >= 1"), std::string::npos) << err;
  EXPECT_EQ(run({"bert-base-uncased", "--dtypes", "int8"}, &out, &err), 2);
  EXPECT_EQ(run({"no-such-model"}, &out, &err), 1);
  EXPECT_NE(err.find("accel estimate-memory: error: model 'no-such-model'"), std::string::npos) << err;
}
