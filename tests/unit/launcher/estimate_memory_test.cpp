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
    EXPECT_NE(std::string(e.what_without_backtrace())
                  .find("\"hidden_size\" is \"big\", expected a positive integer"),
              std::string::npos);
  }
  try {
    resolve_bert_model("bert-base-uncase");
    ADD_FAILURE();
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("did you mean 'bert-base-uncased'"),
              std::string::npos);
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
  TrainingMemory b = estimate_training_memory(P, "bfloat16", 4);
  EXPECT_EQ(b.precision, "bf16");
  EXPECT_EQ(b.weights, 4 * P);
  EXPECT_EQ(b.gradients, 4 * P);
  EXPECT_EQ(b.autocast_cache, 2 * P);
  EXPECT_EQ(b.total, 18 * P);
  EXPECT_THROW(estimate_training_memory(P, "int8", 1), accel::Error);
}

// bert-base-uncased (BertForSequenceClassification, P = 109,483,778; one BertLayer 7,087,872) on 4
// processes: S = ceil(P / 4) = 27,370,945. Every number written out, computed by hand from the model.
TEST(EstimateMemory, ShardedStrategiesBertBaseOnFourProcesses) {
  const int64_t P = 109483778, L = 7087872;
  auto device = [&](const char* strategy, const char* precision, int reduce = 4, bool offload = false) {
    return estimate_sharded_memory(P, L, strategy, precision, 4, 1, reduce, offload);
  };
  // fp32: DDP 16P; ZeRO-1 8P + 8S; ZeRO-2 4P + 12S; ZeRO-3 16S + 2 layers x 4 bytes.
  EXPECT_EQ(device("NO_SHARD", "fp32").device_bytes, 1751740448);
  EXPECT_EQ(device("SHARD_OPTIMIZER", "fp32").device_bytes, 1094837784);
  EXPECT_EQ(device("SHARD_GRAD_OP", "fp32").device_bytes, 766386452);
  EXPECT_EQ(device("FULL_SHARD", "fp32").device_bytes, 494638096);
  EXPECT_EQ(device("FULL_SHARD", "fp32").gathered_units, 56702976);
  EXPECT_EQ(device("HYBRID_SHARD", "fp32").device_bytes, 494638096);  // one machine: as FULL_SHARD
  // bf16, fp32 reduction: DDP 18P; ZeRO-1 2P + 4P + 12S; ZeRO-2 2P + 4S + 12S; ZeRO-3 18S + 2 layers x 2.
  EXPECT_EQ(device("NO_SHARD", "bf16").device_bytes, 1970708004);
  EXPECT_EQ(device("SHARD_OPTIMIZER", "bf16").device_bytes, 985354008);
  EXPECT_EQ(device("SHARD_GRAD_OP", "bf16").device_bytes, 656902676);
  EXPECT_EQ(device("FULL_SHARD", "bf16").device_bytes, 521028498);
  const ShardedMemory z1 = device("SHARD_OPTIMIZER", "bf16");
  EXPECT_EQ(z1.parameters, 2 * P);
  EXPECT_EQ(z1.gradients, 4 * P);
  EXPECT_EQ(z1.master_weights, 4 * 27370945LL);
  EXPECT_EQ(z1.optimizer_states, 8 * 27370945LL);
  // The ZeRO paper: DDP 16P, ZeRO-1 4P + 12S, ZeRO-2 2P + 14S, ZeRO-3 16S; bf16 with a bf16
  // reduction equals it (plus the gathered units for ZeRO-3).
  EXPECT_EQ(device("NO_SHARD", "bf16").zero_paper_bytes, 1751740448);
  EXPECT_EQ(device("SHARD_OPTIMIZER", "bf16").zero_paper_bytes, 766386452);
  EXPECT_EQ(device("SHARD_GRAD_OP", "bf16").zero_paper_bytes, 602160786);
  EXPECT_EQ(device("FULL_SHARD", "bf16").zero_paper_bytes, 437935120);
  EXPECT_EQ(device("SHARD_OPTIMIZER", "bf16", 2).device_bytes, 766386452);
  EXPECT_EQ(device("SHARD_GRAD_OP", "bf16", 2).device_bytes, 602160786);
  EXPECT_EQ(device("FULL_SHARD", "bf16", 2).device_bytes, 437935120 + 28351488);
  // Offload: master shard + Adam states (12S) in CPU memory.
  const ShardedMemory off32 = device("FULL_SHARD", "fp32", 4, true);
  EXPECT_EQ(off32.device_bytes, 166186756);  // 4S gradients + gathered layers
  EXPECT_EQ(off32.cpu_bytes, 328451340);
  EXPECT_EQ(device("SHARD_OPTIMIZER", "fp32", 4, true).device_bytes, 875870224);  // 4P + 4P
  EXPECT_EQ(device("SHARD_GRAD_OP", "bf16", 4, true).device_bytes, 328451336);    // 2P + 4S
  EXPECT_EQ(device("FULL_SHARD", "bf16", 4, true).device_bytes, 192577158);       // 2S + 4S + gathered
  EXPECT_EQ(device("FULL_SHARD", "bf16", 4, true).cpu_bytes, 328451340);
  EXPECT_EQ(device("NO_SHARD", "bf16", 4, true).cpu_bytes, 0);  // DDP does not offload
  // HYBRID_SHARD on 2 machines x 2: sharded over the 2 processes of a machine.
  const ShardedMemory hybrid = estimate_sharded_memory(P, L, "HYBRID_SHARD", "fp32", 4, 2);
  EXPECT_EQ(hybrid.shard_group, 2);
  EXPECT_EQ(hybrid.device_bytes, 16 * 54741889LL + 8 * L);
  EXPECT_THROW(estimate_sharded_memory(P, L, "ZERO4", "fp32", 4), accel::Error);
  EXPECT_THROW(estimate_sharded_memory(P, L, "FULL_SHARD", "fp32", 3, 2), accel::Error);
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
  for (const char* s :
       {"BertModel 109,482,240", "BertForSequenceClassification 109,483,778",
        "       fp32 | bf16 (autocast) | fp16 (autocast) |", "417.65 MiB", "835.29 MiB", "1.63 GiB",
        "1.84 GiB", "Data parallel on 4 processes, bytes per process (P = 109,483,778 parameters",
        "| strategy                         |   fp32 [4] |   bf16 [5] | ZeRO paper [6] |",
        "| NO_SHARD (DDP)                   |   1.63 GiB |   1.84 GiB |       1.63 GiB |",
        "| SHARD_OPTIMIZER (ZeRO-1)         |   1.02 GiB | 939.71 MiB |     730.88 MiB |",
        "| SHARD_GRAD_OP (ZeRO-2)           | 730.88 MiB | 626.47 MiB |     574.27 MiB |",
        "| FULL_SHARD (ZeRO-3) [7]          | 471.72 MiB | 496.89 MiB |     417.65 MiB |",
        "| HYBRID_SHARD (4 per machine) [7] | 471.72 MiB | 496.89 MiB |     417.65 MiB |",
        "a unit is one encoder layer of 7,087,872 parameters", "[1] Under mixed precision",
        "Accelerate's estimate", "| float32 |      90.94 MB |  417.65 MB |             1.63 GB |", "N/A"}) {
    EXPECT_NE(out.find(s), std::string::npos) << "missing '" << s << "' in:\n" << out;
  }
  ASSERT_EQ(run({"all-MiniLM-L6-v2", "--json", "--dtypes", "fp32,bf16", "--num_processes=2"}, &out, &err), 0)
      << err;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["parameters"]["BertModel"], 22713216);
  EXPECT_EQ(j["parameters"]["BertForSequenceClassification"], 22713986);
  ASSERT_EQ(j["training"].size(), 2u);
  EXPECT_EQ(j["training"][0]["total_bytes"], 16LL * 22713986);
  EXPECT_EQ(j["training"][1]["precision"], "bf16");
  const auto& sh = j["sharding"];
  EXPECT_EQ(sh["num_processes"], 2);
  EXPECT_EQ(sh["largest_unit_parameters"], 1774464);
  ASSERT_EQ(sh["strategies"].size(), 10u);  // 5 strategies x fp32, bf16
  EXPECT_EQ(sh["strategies"][3]["strategy"], "SHARD_OPTIMIZER");
  EXPECT_EQ(sh["strategies"][3]["precision"], "bf16");
  EXPECT_EQ(sh["strategies"][3]["device_bytes"], 6LL * 22713986 + 12LL * 11356993);
  // With offload: device and CPU columns.
  ASSERT_EQ(run({"bert-base-uncased", "--num_processes", "4", "--offload_params"}, &out, &err), 0) << err;
  EXPECT_NE(out.find("| strategy                         | fp32 device [4] |   fp32 CPU | bf16 device [5] |  "
                     " bf16 CPU |"),
            std::string::npos)
      << out;
  EXPECT_EQ(j["accelerate_estimate"][0]["total_size_bytes"], 90861056.0);
  EXPECT_TRUE(j["accelerate_estimate"][3]["training_using_adam_bytes"].is_null());
  ASSERT_EQ(run({"bert-base-uncased", "--num_labels", "5", "--json"}, &out, &err), 0);
  EXPECT_EQ(nlohmann::json::parse(out)["parameters"]["BertForSequenceClassification"],
            109482240 + 768 * 5 + 5);
}

TEST(EstimateMemory, HelpAndUsageErrors) {
  std::string out, err;
  EXPECT_EQ(run({"--help"}, &out, &err), 0);
  EXPECT_NE(out.find("usage: accel estimate-memory MODEL"), std::string::npos);
  EXPECT_EQ(run({"bert-base-uncased", "--num_process", "2"}, &out, &err), 2);
  EXPECT_NE(err.find("unknown flag '--num_process'; did you mean '--num_processes'?"), std::string::npos)
      << err;
  EXPECT_EQ(run({}, &out, &err), 2);
  EXPECT_NE(err.find("MODEL is missing"), std::string::npos);
  EXPECT_EQ(run({"bert-base-uncased", "--num_processes", "two"}, &out, &err), 2);
  EXPECT_NE(err.find("--num_processes is 'two', expected an integer >= 1"), std::string::npos) << err;
  EXPECT_EQ(run({"bert-base-uncased", "--dtypes", "int8"}, &out, &err), 2);
  EXPECT_EQ(run({"bert-base-uncased", "--offload_params"}, &out, &err), 2);
  EXPECT_NE(err.find("HINT: add --num_processes N"), std::string::npos) << err;
  EXPECT_EQ(run({"bert-base-uncased", "--num_processes", "3", "--num_machines", "2"}, &out, &err), 2);
  EXPECT_NE(err.find("--num_processes 3 is not a multiple of --num_machines 2"), std::string::npos) << err;
  EXPECT_EQ(run({"bert-base-uncased", "--num_processes", "2", "--reduce_dtype", "fp8"}, &out, &err), 2);
  EXPECT_EQ(run({"no-such-model"}, &out, &err), 1);
  EXPECT_NE(err.find("accel estimate-memory: error: model 'no-such-model'"), std::string::npos) << err;
}
