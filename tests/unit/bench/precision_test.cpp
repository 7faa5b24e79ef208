// The precision benchmark with tiny settings: the report's structure, that every precision ran,
// the JSON (never timings).
#include "support/temp_dir.h"
#include "support/tiny_bert.h"

#include <accel/bench/memory.h>
#include <accel/bench/precision.h>
#include <accel/core/error.h>
#include <accel/precision/cpu_compute.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>

namespace {

using accel::bench::PrecisionBenchmarkOptions;

accel::models::BertConfig tiny_config() {
  return accel::testing::tiny_bench_bert_config();
}

PrecisionBenchmarkOptions tiny_options() {
  return PrecisionBenchmarkOptions()
      .custom_config(tiny_config())
      .seq_len(16)
      .batch_size(2)
      .steps(2)
      .warmup(0)
      .num_threads(1)
      .cpu(true)
      .gemm_sizes({32})
      .gemm_reps(2)
      .progress(false);
}

TEST(PrecisionBenchmark, EveryPrecisionRunsAndTheReportIsComplete) {
  const auto report = accel::bench::run_precision_benchmark(tiny_options());
  EXPECT_EQ(report.seq_len, 16);
  EXPECT_EQ(report.batch_size, 2);
  EXPECT_EQ(report.steps, 2);
  EXPECT_EQ(report.layers, 2);
  EXPECT_EQ(report.hidden, 128);
  EXPECT_EQ(report.device, "cpu");
  EXPECT_GT(report.parameters, report.non_embedding_parameters);
  EXPECT_GT(report.non_embedding_parameters, 0);
  EXPECT_DOUBLE_EQ(report.flops_per_step,
                   accel::bench::training_flops_per_step(report.non_embedding_parameters, 2, 128, 16, 2));
  ASSERT_EQ(report.results.size(), 3u);
  const std::vector<std::string> order = {"no", "bf16", "fp16"};
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& r = report.results[i];
    SCOPED_TRACE(r.precision);
    EXPECT_EQ(r.precision, order[i]);
    ASSERT_TRUE(r.ran) << r.skipped_reason;
    EXPECT_EQ(r.steps, 2);
    EXPECT_EQ(r.step_times_s.size(), 2u);
    EXPECT_LE(r.step_time_min_s, r.step_time_median_s);
    EXPECT_LE(r.step_time_median_s, r.step_time_max_s);
    EXPECT_LE(r.step_time_p25_s, r.step_time_p75_s);
    EXPECT_GT(r.samples_per_s, 0);
    EXPECT_DOUBLE_EQ(r.tokens_per_s, r.samples_per_s * 16);
    EXPECT_TRUE(r.loss_finite);
    EXPECT_TRUE(std::isfinite(r.loss_last));
    ASSERT_TRUE(r.peak_tensor_bytes.has_value());
    EXPECT_GT(*r.peak_tensor_bytes, 0);
    EXPECT_FALSE(r.peak_rss_bytes.has_value());  // in-process: VmHWM cannot be attributed
    EXPECT_FALSE(r.cuda_peak_allocated_bytes.has_value());
    ASSERT_TRUE(r.mfu.has_value());
    EXPECT_GT(*r.mfu, 0);
    EXPECT_GT(r.gemm_peak_tflops, 0);
  }
  EXPECT_NE(report.find("fp32"), nullptr);
  EXPECT_EQ(report.find("fp32"), report.find("no"));
  // GEMMs: one per dtype, layout and size through torch's kernels ("native"), and for bf16/fp16
  // on a CPU without native instructions also accel's fp32-compute path.
  size_t expected_rows = 9;
  for (auto dt : {at::kBFloat16, at::kHalf})
    if (accel::resolve_cpu_autocast_compute(dt, std::nullopt) == accel::CpuAutocastCompute::kFp32)
      expected_rows += 3;
  ASSERT_EQ(report.gemm.size(), expected_rows);
  size_t native_rows = 0;
  for (const auto& g : report.gemm) {
    EXPECT_TRUE(g.layout == "nn" || g.layout == "nt" || g.layout == "tn") << g.layout;
    EXPECT_TRUE(g.path == "native" || (g.path == "fp32" && g.dtype != "fp32")) << g.dtype << " " << g.path;
    native_rows += g.path == "native";
    EXPECT_TRUE(g.error.empty()) << g.dtype << ": " << g.error;
    EXPECT_EQ(g.size, 32);
    EXPECT_GE(g.reps, 1);
  }
  EXPECT_GT(report.gemm_peak("fp32"), 0);
  EXPECT_GT(report.gemm_peak("bf16"), 0);
  EXPECT_GT(report.gemm_peak("fp16"), 0);
  EXPECT_EQ(native_rows, 9u);

  // The table names every precision; the JSON is valid and carries the same numbers.
  const auto table = report.to_table();
  for (const char* p : {"fp32", "bf16", "fp16", "GEMM peak", "MFU"})
    EXPECT_NE(table.find(p), std::string::npos) << p;
  const auto j = nlohmann::json::parse(report.to_json());
  EXPECT_EQ(j.at("benchmark"), "precision");
  EXPECT_EQ(j.at("seq_len"), 16);
  EXPECT_EQ(j.at("flops_formula").get<std::string>(), report.flops_formula);
  ASSERT_EQ(j.at("results").size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto& r = j.at("results")[i];
    EXPECT_EQ(r.at("precision"), order[i]);
    EXPECT_TRUE(r.at("ran").get<bool>());
    EXPECT_EQ(r.at("step_times_s").size(), 2u);
    EXPECT_TRUE(r.at("peak_rss_bytes").is_null());
    EXPECT_GT(r.at("peak_tensor_bytes").get<int64_t>(), 0);
    EXPECT_DOUBLE_EQ(r.at("samples_per_s").get<double>(), report.results[i].samples_per_s);
  }
  EXPECT_EQ(j.at("gemm").size(), expected_rows);
  EXPECT_TRUE(j.at("results")[0].at("eval_accuracy").is_null());
}

// Through the real `accel` program (built by the accel_cli target; skipped when absent): each
// precision in its own child process, so each has its own peak RSS.
TEST(PrecisionBenchmark, IsolatedRunsUseChildProcesses) {
  const accel::test::Path accel = accel::test::Path(ACCEL_BINARY_DIR) / "bin" / "accel";
  if (!::accel::fs::exists(accel)) GTEST_SKIP() << accel << " not built (target accel_cli)";
  auto o =
      tiny_options().custom_config(std::nullopt).config("bert-tiny").precisions({"no", "bf16"}).gemm(false);
  o.isolate(true).child_command({accel.string(), "bench", "precision"});
  const auto report = accel::bench::run_precision_benchmark(o);
  ASSERT_EQ(report.results.size(), 2u);
  for (const auto& r : report.results) {
    SCOPED_TRACE(r.precision);
    ASSERT_TRUE(r.ran) << r.skipped_reason;
    EXPECT_TRUE(r.isolated);
    EXPECT_EQ(r.step_times_s.size(), 2u);
    ASSERT_TRUE(r.peak_rss_bytes.has_value());
    EXPECT_GT(*r.peak_rss_bytes, 0);
    ASSERT_TRUE(r.peak_tensor_bytes.has_value());
    EXPECT_GT(*r.peak_tensor_bytes, 0);
    EXPECT_TRUE(r.loss_finite);
  }
}

TEST(PrecisionBenchmark, ResultJsonRoundTrips) {
  accel::bench::PrecisionResult r;
  r.precision = "bf16";
  r.ran = true;
  r.steps = 3;
  r.step_times_s = {0.5, 0.25, 0.75};
  r.step_time_median_s = 0.5;
  r.samples_per_s = 32;
  r.loss_last = 0.69;
  r.loss_finite = true;
  r.peak_rss_bytes = int64_t{123} << 20;
  r.mfu = 0.125;
  const auto back = accel::bench::result_from_json(accel::bench::result_to_json(r));
  EXPECT_EQ(back.precision, "bf16");
  EXPECT_TRUE(back.ran);
  EXPECT_EQ(back.step_times_s, r.step_times_s);
  EXPECT_EQ(back.peak_rss_bytes, r.peak_rss_bytes);
  EXPECT_FALSE(back.peak_tensor_bytes.has_value());
  EXPECT_EQ(back.mfu, r.mfu);
  EXPECT_DOUBLE_EQ(back.loss_last, 0.69);
  EXPECT_THROW(accel::bench::result_from_json("{not json"), c10::Error);
}

TEST(PrecisionBenchmark, OnlyRequestedPrecisionsAndInvalidOptions) {
  auto o = tiny_options().precisions({"fp32"}).gemm(false);
  const auto report = accel::bench::run_precision_benchmark(o);
  ASSERT_EQ(report.results.size(), 1u);
  EXPECT_EQ(report.results[0].precision, "no");
  EXPECT_TRUE(report.results[0].ran);
  EXPECT_TRUE(report.gemm.empty());
  EXPECT_FALSE(report.results[0].mfu.has_value());
  EXPECT_THROW(accel::bench::run_precision_benchmark(tiny_options().precisions({"fp8"})), c10::Error);
  EXPECT_THROW(accel::bench::run_precision_benchmark(tiny_options().seq_len(64)),
               c10::Error);  // > max positions
  EXPECT_THROW(accel::bench::run_precision_benchmark(tiny_options().steps(0)), c10::Error);
  // Accuracy needs IMDb data: random batches teach nothing.
  try {
    accel::bench::run_precision_benchmark(tiny_options().eval_accuracy(8));
    ADD_FAILURE() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--data imdb"), std::string::npos) << e.what();
  }
}

// A short fine-tune on IMDb reviews, then accuracy on test reviews (../shared/data, the default
// model's vocabulary; skipped when either is missing). A small model: this checks the plumbing
// (counts, JSON, table), not the figure.
TEST(PrecisionBenchmark, EvalAccuracyAfterAShortFineTune) {
  auto cfg = tiny_config();
  cfg.vocab_size = 30522;  // the tokenizer's ids
  cfg.hidden_size = 32;
  cfg.num_attention_heads = 2;
  cfg.intermediate_size = 64;
  cfg.num_hidden_layers = 1;
  auto o =
      tiny_options().custom_config(cfg).precisions({"no", "bf16"}).gemm(false).data("imdb").eval_accuracy(10);
  accel::bench::PrecisionReport report;
  try {
    report = accel::bench::run_precision_benchmark(o);
  } catch (const accel::InputError& e) {
    GTEST_SKIP() << "IMDb data or the default model is not available: " << e.what();
  }
  ASSERT_EQ(report.results.size(), 2u);
  for (const auto& r : report.results) {
    SCOPED_TRACE(r.precision);
    ASSERT_TRUE(r.ran) << r.skipped_reason;
    ASSERT_TRUE(r.eval_accuracy.has_value());
    EXPECT_EQ(r.eval_samples, 10);
    EXPECT_GE(*r.eval_accuracy, 0.0);
    EXPECT_LE(*r.eval_accuracy, 1.0);
    // 10 reviews: the accuracy is a whole number of tenths.
    EXPECT_NEAR(*r.eval_accuracy * 10, std::round(*r.eval_accuracy * 10), 1e-9);
    const auto back = accel::bench::result_from_json(accel::bench::result_to_json(r));
    EXPECT_EQ(back.eval_accuracy, r.eval_accuracy);
    EXPECT_EQ(back.eval_samples, 10);
  }
  EXPECT_NE(report.to_table().find("eval accuracy"), std::string::npos);
  EXPECT_EQ(accel::bench::parse_precision_args({"--eval_accuracy", "200"}).eval_accuracy(), 200);
  auto named = o;
  named.custom_config(std::nullopt).config("bert-tiny");  // a custom config cannot go to a child
  EXPECT_EQ(accel::bench::parse_precision_args(accel::bench::to_precision_args(named)).eval_accuracy(), 10);
}

TEST(PrecisionBenchmark, ArgumentsRoundTrip) {
  const auto o = accel::bench::parse_precision_args({"--config", "bert-tiny", "--seq-len", "32",
                                                     "--batch_size=4", "--steps", "3", "--warmup", "1",
                                                     "--precisions", "fp32,bf16", "--num_threads", "2",
                                                     "--cpu", "--gemm_sizes", "64,128", "--no_progress"});
  EXPECT_EQ(o.config(), "bert-tiny");
  EXPECT_EQ(o.seq_len(), 32);
  EXPECT_EQ(o.batch_size(), 4);
  EXPECT_EQ(o.precisions(), (std::vector<std::string>{"no", "bf16"}));
  EXPECT_TRUE(o.cpu());
  EXPECT_FALSE(o.progress());
  const auto again = accel::bench::parse_precision_args(accel::bench::to_precision_args(o));
  EXPECT_EQ(again.config(), o.config());
  EXPECT_EQ(again.seq_len(), o.seq_len());
  EXPECT_EQ(again.steps(), o.steps());
  EXPECT_EQ(again.warmup(), o.warmup());
  EXPECT_EQ(again.precisions(), o.precisions());
  EXPECT_EQ(again.num_threads(), 2);
  EXPECT_EQ(again.gemm_sizes(), (std::vector<int64_t>{64, 128}));
  EXPECT_DOUBLE_EQ(again.lr(), o.lr());
  EXPECT_THROW(accel::bench::parse_precision_args({"--bogus", "1"}), c10::Error);
  EXPECT_THROW(accel::bench::parse_precision_args({"--steps", "ten"}), c10::Error);
}

TEST(PrecisionBenchmark, FlopsFormula) {
  // 6*N*B*T + 12*L*H*T^2*B
  EXPECT_DOUBLE_EQ(accel::bench::training_flops_per_step(1000, 2, 8, 4, 3),
                   6.0 * 1000 * 3 * 4 + 12.0 * 2 * 8 * 16 * 3);
  EXPECT_EQ(accel::bench::gemm_dtype_for("no"), "fp32");
  EXPECT_EQ(accel::bench::gemm_dtype_for("BF16"), "bf16");
  EXPECT_EQ(accel::bench::normalize_precision("fp32"), "no");
}

TEST(CountingCpuAllocator, CountsLiveTensorBytes) {
  ASSERT_TRUE(accel::bench::install_counting_cpu_allocator());
  accel::bench::reset_cpu_tensor_bytes_peak();
  const int64_t before = accel::bench::cpu_tensor_bytes_current();
  {
    auto t = torch::empty({1 << 20}, torch::kFloat);  // 4 MiB
    EXPECT_GE(accel::bench::cpu_tensor_bytes_current() - before, int64_t{4} << 20);
  }
  EXPECT_EQ(accel::bench::cpu_tensor_bytes_current(), before);
  EXPECT_GE(accel::bench::cpu_tensor_bytes_peak() - before, int64_t{4} << 20);
  EXPECT_TRUE(accel::bench::peak_rss_bytes().has_value());
  EXPECT_FALSE(accel::bench::cuda_memory_stats(0).has_value() && !torch::cuda::is_available());
}

}  // namespace
