// The precision benchmark's GPU options and real-length data: dynamically padded batches from a
// lengths file (exact token counts), the options' argument round trip and checks, and CUDA-graph
// capture (its CUDA part skipped without a GPU; a build without CUDA must say so clearly).
#include "support/temp_dir.h"
#include "support/tiny_bert.h"

#include <accel/bench/cuda_graph.h>
#include <accel/bench/precision.h>
#include <accel/core/error.h>
#include <accel/core/fs.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

namespace {

using accel::bench::PrecisionBenchmarkOptions;

accel::models::BertConfig tiny_config() {
  return accel::testing::tiny_bench_bert_config();
}

PrecisionBenchmarkOptions tiny_options() {
  return PrecisionBenchmarkOptions()
      .custom_config(tiny_config())
      .seq_len(16)
      .batch_size(3)
      .steps(2)
      .warmup(0)
      .num_threads(1)
      .cpu(true)
      .gemm(false)
      .progress(false);
}

TEST(PrecisionBenchGpuOptions, LengthsDataPadsEachBatchToItsLongest) {
  accel::test::TempDir dir("bench");
  const std::string file = dir / "lengths.txt";
  // Batch 0: 5, 40 (capped at 16), 2 -> 16 wide, 23 real; batch 1: 7, 3, 1 -> 7 wide, 11 real.
  accel::fs::write_file(file, "5\n40\n2\n\n7\n3\n1\n");
  auto o = tiny_options().data("lengths").lengths_file(file).precisions({"no"});
  auto r = accel::bench::run_single_precision(o, "no");
  ASSERT_TRUE(r.ran) << r.skipped_reason;
  EXPECT_EQ(r.steps, 2);
  EXPECT_DOUBLE_EQ(r.tokens_per_step, (3.0 * 16 + 3.0 * 7) / 2);
  EXPECT_DOUBLE_EQ(r.real_tokens_per_step, (23.0 + 11.0) / 2);
  EXPECT_GT(r.real_tokens_per_s, 0.0);
  EXPECT_LT(r.real_tokens_per_s, r.tokens_per_s);  // padding is not counted
  EXPECT_TRUE(r.loss_finite);
}

TEST(PrecisionBenchGpuOptions, BadLengthsFilesAreNamed) {
  accel::test::TempDir dir("bench");
  const std::string file = dir / "lengths.txt";
  accel::fs::write_file(file, "12\nabc\n");
  try {
    accel::bench::run_single_precision(tiny_options().data("lengths").lengths_file(file), "no");
    FAIL() << "expected an error";
  } catch (const accel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(accel::bench::run_single_precision(tiny_options().data("lengths"), "no"), accel::Error);
}

TEST(PrecisionBenchGpuOptions, ArgumentsRoundTripAndReport) {
  const auto o = accel::bench::parse_precision_args(
      {"--config", "bert-tiny", "--data", "lengths", "--lengths_file", "l.txt", "--unpadded_attention",
       "--fused-bias-gelu", "--fused_layer_norm", "--cuda_graph"});
  EXPECT_TRUE(o.unpadded_attention());
  EXPECT_TRUE(o.fused_bias_gelu());
  EXPECT_TRUE(o.fused_layer_norm());
  EXPECT_TRUE(o.cuda_graph());
  EXPECT_EQ(o.lengths_file(), "l.txt");
  const auto again = accel::bench::parse_precision_args(accel::bench::to_precision_args(o));
  EXPECT_TRUE(again.unpadded_attention() && again.fused_bias_gelu() && again.fused_layer_norm() &&
              again.cuda_graph());
  EXPECT_EQ(again.data(), "lengths");
  EXPECT_EQ(again.lengths_file(), "l.txt");
  EXPECT_FALSE(accel::bench::parse_precision_args({}).cuda_graph());  // everything off by default
  // On the CPU the model options change nothing and the report names them.
  auto rep = accel::bench::run_precision_benchmark(
      tiny_options().precisions({"no"}).unpadded_attention(true).fused_bias_gelu(true).no_attention_mask(
          true));
  ASSERT_TRUE(rep.results.at(0).ran) << rep.results.at(0).skipped_reason;
  EXPECT_EQ(rep.speed_options,
            (std::vector<std::string>{"unpadded_attention", "fused_bias_gelu", "no_attention_mask"}));
  EXPECT_NE(rep.to_json().find("\"speed_options\""), std::string::npos);
}

TEST(PrecisionBenchGpuOptions, CudaGraphNeedsFixedShapesAndCuda) {
  // Data with changing shapes: refused before anything runs.
  accel::test::TempDir dir("bench");
  const std::string file = dir / "lengths.txt";
  accel::fs::write_file(file, "4\n");
  EXPECT_THROW(accel::bench::run_single_precision(
                   tiny_options().data("lengths").lengths_file(file).cuda_graph(true).warmup(1), "no"),
               accel::Error);
  EXPECT_THROW(accel::bench::run_single_precision(tiny_options().cuda_graph(true).warmup(0), "no"),
               accel::Error);
  // On the CPU: a clear error, not a silent eager run.
  try {
    accel::bench::run_single_precision(tiny_options().cuda_graph(true).warmup(1), "no");
    FAIL() << "expected an error";
  } catch (const accel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA device"), std::string::npos) << e.what();
  }
}

TEST(CudaGraph, CapturesAndReplaysAStepOrSaysItCannot) {
  if (!accel::bench::cuda_graphs_available()) {
    try {
      accel::bench::CudaGraphStep step;
      FAIL() << "expected an error";
    } catch (const accel::Error& e) {
      EXPECT_NE(std::string(e.what()).find("HINT"), std::string::npos) << e.what();
    }
    return;
  }
  if (!torch::cuda::is_available()) GTEST_SKIP() << "a CUDA build without a GPU";
  auto x = torch::ones({1024}, torch::TensorOptions().device(torch::kCUDA));
  accel::bench::CudaGraphStep step;
  step.capture([&] { x.mul_(2).add_(1); });  // eager warm-up + captured run: two steps
  torch::cuda::synchronize();
  EXPECT_EQ(x[0].item<float>(), 7.0f);  // 1 -> 3 -> 7
  step.replay();
  step.replay();
  torch::cuda::synchronize();
  EXPECT_EQ(x[5].item<float>(), 31.0f);  // 7 -> 15 -> 31
}

}  // namespace
