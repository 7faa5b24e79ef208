// The precision benchmark behind `accel bench precision`: the same BERT training steps in fp32,
// bf16 and fp16 (each in a fresh Accelerator and model), with throughput, step-time spread, peak
// memory, the loss, a GEMM roofline per dtype and model FLOP utilisation (MFU); as a report that
// prints as a table, serialises to JSON and draws a PNG chart with gnuplot.
#pragma once

#include "accel/models/bert.h"

#include <torch/arg.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace accel::bench {

/// What to benchmark. Every field has a default (the IMDb fine-tuning workload: MiniLM, batch 16
/// of 256 tokens); chain the setters: PrecisionBenchmarkOptions().steps(5).precisions({"no"}).
struct PrecisionBenchmarkOptions {
  /// Architecture: a BertConfig::from_name name ("all-MiniLM-L6-v2", "bert-base-uncased",
  /// "bert-large-uncased", "bert-tiny") or a Hugging Face folder / config.json path.
  /// Default "all-MiniLM-L6-v2". Ignored when custom_config is set.
  TORCH_ARG(std::string, config) = "all-MiniLM-L6-v2";
  /// An explicit architecture (tests use tiny ones). Default unset.
  TORCH_ARG(std::optional<models::BertConfig>, custom_config) = std::nullopt;
  /// Load pretrained weights from models::default_model_dir() (only when `config` names
  /// all-MiniLM-L6-v2). Default false: random init, which is as fast.
  TORCH_ARG(bool, pretrained) = false;
  /// Tokens per sequence (every batch has exactly this shape). Default 256; must be in
  /// [2, max_position_embeddings].
  TORCH_ARG(int64_t, seq_len) = 256;
  /// Sequences per step and process. Default 16; must be >= 1.
  TORCH_ARG(int64_t, batch_size) = 16;
  /// Timed training steps per precision. Default 10; must be >= 1.
  TORCH_ARG(int64_t, steps) = 10;
  /// Untimed steps before them. Default 2; must be >= 0.
  TORCH_ARG(int64_t, warmup) = 2;
  /// Precisions to run, in order: "no" (fp32), "bf16", "fp16" ("fp32" means "no").
  /// Default {"no", "bf16", "fp16"}.
  TORCH_ARG(std::vector<std::string>, precisions) = std::vector<std::string>{"no", "bf16", "fp16"};
  /// AdamW learning rate (weight decay 0.01). Default 5e-5.
  TORCH_ARG(double, lr) = 5e-5;
  /// Intra-op threads for training and GEMMs (torch::set_num_threads). 0 (default) keeps torch's
  /// default.
  TORCH_ARG(int, num_threads) = 0;
  /// "random" (default): uniform token ids, random labels; "imdb": real reviews tokenized with
  /// the default model's vocabulary, truncated/padded to seq_len; "lengths": random ids in
  /// dynamically padded batches whose sequence lengths are read in order from lengths_file (each
  /// capped at seq_len; a batch is as long as its longest sequence), so the padding is that of
  /// real data (bench/gpu/prepare_carry.sh writes IMDb's).
  TORCH_ARG(std::string, data) = "random";
  /// For data "lengths": a text file of positive integers (token counts), one per line.
  TORCH_ARG(std::string, lengths_file) = "";
  /// Do not pass the attention mask of data "random" (every token is real there; transformers
  /// drops such an all-true mask itself, which lets SDPA pick FlashAttention). Default false.
  TORCH_ARG(bool, no_attention_mask) = false;
  /// GPU speed paths of the model (BertConfig's fields of the same names; CUDA only, off by
  /// default until measured). Default false each.
  TORCH_ARG(bool, unpadded_attention) = false;
  TORCH_ARG(bool, fused_bias_gelu) = false;
  TORCH_ARG(bool, fused_layer_norm) = false;
  /// Capture one whole training step (forward, backward, optimizer step) in a CUDA graph after the
  /// warm-up and replay it for the timed steps. Needs a CUDA build and device, fixed shapes (data
  /// "random", which then passes no attention mask), bf16 or fp32 (fp16's loss scaler reads the
  /// GPU every step), and warmup >= 1. The replayed AdamW step keeps the captured step's bias
  /// correction, so the figure is one of speed only. Default false.
  TORCH_ARG(bool, cuda_graph) = false;
  /// aclImdb folder for data == "imdb" (default: datasets::resolve_imdb_dir's search).
  TORCH_ARG(std::string, data_dir) = "";
  /// Use the CPU even when a GPU is present. Default false.
  TORCH_ARG(bool, cpu) = false;
  /// Seed for the weights and the batches (the same for every precision). Default 0.
  TORCH_ARG(uint64_t, seed) = 0;
  /// Run each precision in a child process (needed for a per-precision peak RSS on the CPU,
  /// which cannot be reset in-process). Default false: everything in this process.
  TORCH_ARG(bool, isolate) = false;
  /// Command of a child process when isolating; the benchmark appends its own arguments
  /// (`--single P --json-out FILE ...`). Default: {"/proc/self/exe", "bench", "precision"},
  /// right for the `accel` program.
  TORCH_ARG(std::vector<std::string>, child_command) = std::vector<std::string>{};
  /// Run the GEMM microbenchmark (the peak the MFU is measured against). Default true.
  /// After the timed steps, accuracy on this many IMDb test reviews (label-balanced, gathered over
  /// processes with gather_for_metrics); 0 (default) = off. Needs data "imdb"; the training steps
  /// then use distinct batches (a short fine-tune); with `pretrained` the figure is meaningful.
  TORCH_ARG(int64_t, eval_accuracy) = 0;
  TORCH_ARG(bool, gemm) = true;
  /// Square matrix sizes of the GEMM microbenchmark. Default {1024, 2048}.
  TORCH_ARG(std::vector<int64_t>, gemm_sizes) = std::vector<int64_t>{1024, 2048};
  /// Timed repetitions per GEMM size (after one untimed). Default 5; fewer when one GEMM takes
  /// longer than gemm_budget_s / reps.
  TORCH_ARG(int64_t, gemm_reps) = 5;
  /// Rough time budget per dtype, layout and size of the GEMM microbenchmark, seconds. Default 3.
  TORCH_ARG(double, gemm_budget_s) = 3.0;
  /// Show a progress bar per precision on stderr. Default true.
  TORCH_ARG(bool, progress) = true;
};

/// One GEMM microbenchmark measurement.
struct GemmResult {
  std::string dtype;  ///< "fp32" | "bf16" | "fp16"
  /// Operand layout: "nn" (a @ b), "nt" (a @ b.t(), nn::Linear's forward), "tn" (a.t() @ b, its
  /// weight gradient). CPU kernels for bf16/fp16 without native instructions differ by layout.
  std::string layout;
  /// "native": torch's kernel in `dtype`; "fp32": operands up-cast, fp32 GEMM, result rounded to
  /// `dtype` (how accel runs autocast matmuls on CPUs without native bf16/fp16, cpu_compute.h).
  std::string path = "native";
  int64_t size = 0;     ///< n of the n x n x n matmul
  int64_t reps = 0;     ///< timed repetitions
  double median_s = 0;  ///< median seconds per matmul
  double tflops = 0;    ///< 2 n^3 / median_s / 1e12
  std::string error;    ///< why it did not run (empty when it did; "skipped: ..." when too slow)
};

/// Everything measured for one precision.
struct PrecisionResult {
  std::string precision;             ///< "no" | "bf16" | "fp16"
  bool ran = false;                  ///< false: skipped, see skipped_reason
  std::string skipped_reason;        ///< why it was skipped (device cannot do it, error)
  std::string support_note;          ///< e.g. "emulated: the CPU has no AVX512-BF16/AMX"
  bool isolated = false;             ///< measured in its own child process
  int64_t world_size = 1;            ///< processes training together (launched runs)
  int64_t steps = 0;                 ///< timed steps
  std::vector<double> step_times_s;  ///< each timed step, seconds
  double step_time_median_s = 0;
  double step_time_min_s = 0;
  double step_time_max_s = 0;
  double step_time_p25_s = 0;  ///< first quartile
  double step_time_p75_s = 0;  ///< third quartile
  double samples_per_s = 0;    ///< batch_size * world_size / median step time
  double tokens_per_s = 0;     ///< samples_per_s * seq_len (padding included)
  /// Tokens that are not padding per second, all processes: real tokens of the timed steps over
  /// their total time (equals tokens_per_s for data "random").
  double real_tokens_per_s = 0;
  /// Mean tokens per timed step (padding included) and of them real, per process.
  double tokens_per_step = 0;
  double real_tokens_per_step = 0;
  double loss_first = 0;  ///< loss of the first timed step
  double loss_last = 0;   ///< loss of the last timed step ("loss after N steps")
  bool loss_finite = false;
  int64_t skipped_optimizer_steps = 0;  ///< fp16 steps skipped for inf/nan gradients
  /// Peak resident memory of the process (VmHWM), CPU runs in their own process only.
  std::optional<int64_t> peak_rss_bytes;
  /// Peak bytes held by CPU tensors (counting allocator), CPU runs only.
  std::optional<int64_t> peak_tensor_bytes;
  /// CUDA caching allocator: peak allocated and reserved bytes (CUDA runs only).
  std::optional<int64_t> cuda_peak_allocated_bytes;
  std::optional<int64_t> cuda_peak_reserved_bytes;
  double model_tflops = 0;      ///< flops_per_step / median step time / 1e12 (per process)
  std::optional<double> mfu;    ///< model_tflops / GEMM peak of the matching dtype
  double gemm_peak_tflops = 0;  ///< that peak (0 when not measured)
  /// Accuracy on `eval_samples` IMDb test reviews after the timed steps (eval_accuracy option).
  std::optional<double> eval_accuracy;
  int64_t eval_samples = 0;
};

/// The whole benchmark.
struct PrecisionReport {
  std::string model;                     ///< config name or path
  int64_t parameters = 0;                ///< all parameters
  int64_t non_embedding_parameters = 0;  ///< parameters outside the embeddings (the FLOPs' N)
  int64_t layers = 0;
  int64_t hidden = 0;
  int64_t seq_len = 0;
  int64_t batch_size = 0;
  int64_t steps = 0;
  int64_t warmup = 0;
  int num_threads = 0;      ///< torch::get_num_threads() during the run
  std::string device;       ///< "cpu" or "cuda:0"
  std::string device_name;  ///< CPU model or GPU name
  std::string data;         ///< "random" | "imdb" | "lengths"
  /// The speed options that were on ("unpadded_attention", "fused_bias_gelu", "fused_layer_norm",
  /// "cuda_graph", "no_attention_mask").
  std::vector<std::string> speed_options;
  std::string torch_version;
  double flops_per_step = 0;  ///< training FLOPs of one step on one process
  std::string flops_formula;  ///< how flops_per_step is computed
  std::vector<GemmResult> gemm;
  std::vector<PrecisionResult> results;
  std::vector<std::string> notes;  ///< caveats (what was skipped and why)

  /// The result for `precision` ("no"/"fp32", "bf16", "fp16"); nullptr when absent.
  const PrecisionResult* find(const std::string& precision) const;
  /// Best GEMM TFLOP/s measured for `dtype` ("fp32", "bf16", "fp16") over sizes and layouts; 0
  /// when none.
  double gemm_peak(const std::string& dtype) const;
  /// A terminal table with ratios to fp32 and the GEMM/MFU lines.
  std::string to_table() const;
  /// The report as pretty-printed JSON (every field above).
  std::string to_json() const;
};

/// Runs every requested precision (in child processes when options.isolate()) and the GEMM
/// microbenchmark; fills MFU. Throws accel::Error for invalid options; a precision that fails or
/// that the device cannot run is reported as skipped, not thrown.
PrecisionReport run_precision_benchmark(const PrecisionBenchmarkOptions& options);

/// One precision in this process (what a child process runs). `report_out` (optional) receives
/// the workload description (model, parameters, flops). Throws on failure.
PrecisionResult run_single_precision(const PrecisionBenchmarkOptions& options, const std::string& precision,
                                     PrecisionReport* report_out = nullptr);

/// Median time and TFLOP/s of square matmuls per dtype ("fp32", "bf16", "fp16"), layout (nn, nt,
/// tn) and size on `device`, with the current torch thread count. Sizes run in ascending order;
/// a size whose first call would take longer than `budget_s` (extrapolated as n^3 from the
/// previous size) is skipped and marked so.
std::vector<GemmResult> run_gemm_benchmark(const std::string& device, const std::vector<std::string>& dtypes,
                                           const std::vector<int64_t>& sizes, int64_t reps, double budget_s);

/// Training FLOPs of one step: 6 * N * B * T + 12 * L * H * T^2 * B, with N the non-embedding
/// parameters (forward 2 FLOPs per weight and token, backward 4; attention scores and
/// weighted sum as the second term).
double training_flops_per_step(int64_t non_embedding_parameters, int64_t layers, int64_t hidden,
                               int64_t seq_len, int64_t batch_size);

/// The matching GEMM dtype of a precision: "no" -> "fp32", "bf16" -> "bf16", "fp16" -> "fp16".
std::string gemm_dtype_for(const std::string& precision);
/// "no" | "bf16" | "fp16" for any accepted spelling; throws accel::Error listing them otherwise.
std::string normalize_precision(const std::string& precision);

/// PrecisionResult to and from JSON (the child -> parent protocol).
std::string result_to_json(const PrecisionResult& result);
PrecisionResult result_from_json(const std::string& text);

/// Draws the report as a PNG (samples/s and peak memory bars per precision) with gnuplot.
/// Returns an empty string on success, otherwise why no PNG was written (gnuplot missing,
/// nothing ran, gnuplot failed).
std::string write_chart_png(const PrecisionReport& report, const std::string& png);

/// Parses `accel bench precision`'s workload options (without --single/--json-out/--json/--png, which it
/// handles). Throws accel::Error naming an unknown option or a bad value.
PrecisionBenchmarkOptions parse_precision_args(const std::vector<std::string>& args);
/// The arguments that make parse_precision_args return `options` again (for child processes).
std::vector<std::string> to_precision_args(const PrecisionBenchmarkOptions& options);

}  // namespace accel::bench
