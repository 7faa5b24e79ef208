// The precision benchmark (see accel/bench/precision.h): training steps per precision, GEMM
// microbenchmark, MFU, child-process isolation and the JSON form of the results.
#include "accel/bench/precision.h"
#include "accel/core/fs.h"

#include "accel/accelerator.h"
#include "accel/bench/cuda_graph.h"
#include "accel/bench/memory.h"
#include "accel/core/env.h"
#include "accel/core/error.h"
#include "accel/core/strings.h"
#include "accel/core/state.h"
#include "accel/datasets/imdb.h"
#include "accel/precision/cpu_compute.h"
#include "accel/text/tokenizer.h"
#include "accel/tracking/progress.h"

#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

extern char** environ;

namespace accel::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Linear-interpolated quantile q in [0, 1] of `v` (copied and sorted).
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

bool is_cuda_device(const std::string& device) {
  return device.rfind("cuda", 0) == 0;
}

void synchronize(const std::string& device) {
  if (is_cuda_device(device)) torch::cuda::synchronize();
}

// Whether the CPU has instructions for `precision` (informative: torch emulates otherwise).
std::string cpu_support_note(const std::string& precision) {
  const auto& flags = cpu_info().flags;
  if (precision == "bf16") {
    if (flags.count("amx_bf16")) return "native (AMX-BF16)";
    if (flags.count("avx512_bf16")) return "native (AVX512-BF16)";
    if (cpu_has_native_bf16()) return "native (BF16)";
    return "emulated: this CPU has no AVX512-BF16/AMX-BF16; torch's bf16 matmuls and convolutions run on "
           "slower fallback kernels";
  }
  if (precision == "fp16") {
    if (flags.count("amx_fp16")) return "native (AMX-FP16)";
    if (flags.count("avx512_fp16")) return "native (AVX512-FP16)";
    if (cpu_has_native_fp16()) return "native (FP16)";
    return "emulated: this CPU has no AVX512-FP16/AMX-FP16; torch's fp16 matmuls and convolutions run on "
           "slower fallback kernels";
  }
  return "";
}

std::string resolve_device(const PrecisionBenchmarkOptions& o) {
  return (!o.cpu() && torch::cuda::is_available()) ? "cuda:0" : "cpu";
}

models::BertConfig resolve_config(const PrecisionBenchmarkOptions& o) {
  models::BertConfig c;
  const std::string& p = o.config();
  if (o.custom_config()) {
    c = *o.custom_config();
  } else if (fs::exists(p)) {
    c = fs::is_directory(p) ? models::BertConfig::from_pretrained(p) : models::BertConfig::from_json_file(p);
  } else {
    c = models::BertConfig::from_name(o.config());
  }
  c.unpadded_attention = c.unpadded_attention || o.unpadded_attention();
  c.fused_bias_gelu = c.fused_bias_gelu || o.fused_bias_gelu();
  c.fused_layer_norm = c.fused_layer_norm || o.fused_layer_norm();
  return c;
}

// The speed options that are on, by name.
std::vector<std::string> speed_option_names(const PrecisionBenchmarkOptions& o) {
  std::vector<std::string> on;
  if (o.unpadded_attention()) on.push_back("unpadded_attention");
  if (o.fused_bias_gelu()) on.push_back("fused_bias_gelu");
  if (o.fused_layer_norm()) on.push_back("fused_layer_norm");
  if (o.cuda_graph()) on.push_back("cuda_graph");
  if (o.no_attention_mask() || o.cuda_graph()) on.push_back("no_attention_mask");
  return on;
}

// The token counts of a lengths file (one positive integer per line; blank lines skipped).
std::vector<int64_t> read_lengths(const std::string& path) {
  ACCEL_CHECK_INPUT(
      !path.empty(), "bench precision: --data lengths needs --lengths_file FILE (one token count ",
      "per line). HINT: bench/gpu/prepare_carry.sh writes IMDb's as .gpu-carry/imdb_lengths.txt.");
  std::istringstream in(fs::read_file(path, "lengths file"));
  std::vector<int64_t> out;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.empty()) continue;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(t, &used);
    } catch (...) {
      used = 0;
    }
    ACCEL_CHECK_INPUT(used == t.size() && v >= 1, "bench precision: ", path, " line ", n, ": '", t,
                      "' is not a positive integer. HINT: one token count per line.");
    out.push_back(v);
  }
  ACCEL_CHECK_INPUT(!out.empty(), "bench precision: ", path, " holds no lengths (one token count per line).");
  return out;
}

std::string model_label(const PrecisionBenchmarkOptions& o) {
  if (!o.custom_config()) return o.config();
  const auto& c = *o.custom_config();
  return "custom (" + std::to_string(c.num_hidden_layers) + " x " + std::to_string(c.hidden_size) + ")";
}

void validate(const PrecisionBenchmarkOptions& o) {
  const auto cfg = resolve_config(o);
  ACCEL_CHECK(o.seq_len() >= 2 && o.seq_len() <= cfg.max_position_embeddings,
              "bench precision: seq_len=", o.seq_len(), " must be in [2, ", cfg.max_position_embeddings,
              "] (the model's max_position_embeddings).");
  ACCEL_CHECK(o.batch_size() >= 1, "bench precision: batch_size=", o.batch_size(), " must be >= 1.");
  ACCEL_CHECK(o.steps() >= 1, "bench precision: steps=", o.steps(), " must be >= 1.");
  ACCEL_CHECK(o.warmup() >= 0, "bench precision: warmup=", o.warmup(), " must be >= 0.");
  ACCEL_CHECK(!o.precisions().empty(),
              "bench precision: no precision given; accepted: no (fp32), bf16, fp16.");
  for (const auto& p : o.precisions()) normalize_precision(p);
  ACCEL_CHECK(o.data() == "random" || o.data() == "imdb" || o.data() == "lengths", "bench precision: data='",
              o.data(), "' is not known; accepted: random, imdb, lengths.");
  if (o.data() == "lengths") read_lengths(o.lengths_file());
  ACCEL_CHECK(
      !o.no_attention_mask() || o.data() == "random",
      "bench precision: --no_attention_mask applies to --data random only (the other data has padding).");
  if (o.cuda_graph()) {
    ACCEL_CHECK(o.data() == "random",
                "bench precision: --cuda_graph needs fixed shapes, i.e. --data random (", "data '", o.data(),
                "' changes the batch shape or reads lengths on the host).");
    ACCEL_CHECK(o.warmup() >= 1,
                "bench precision: --cuda_graph needs --warmup >= 1 (an eager step before capture).");
    ACCEL_CHECK(o.eval_accuracy() == 0,
                "bench precision: --cuda_graph cannot be combined with --eval_accuracy.");
  }
  ACCEL_CHECK(o.eval_accuracy() >= 0, "bench precision: eval_accuracy=", o.eval_accuracy(), " must be >= 0.");
  ACCEL_CHECK(o.eval_accuracy() == 0 || o.data() == "imdb",
              "bench precision: --eval_accuracy measures accuracy on IMDb test reviews and needs --data imdb "
              "(random batches teach the model nothing).");
  ACCEL_CHECK(o.num_threads() >= 0, "bench precision: num_threads=", o.num_threads(), " must be >= 0.");
  ACCEL_CHECK(o.gemm_reps() >= 1, "bench precision: gemm_reps=", o.gemm_reps(), " must be >= 1.");
  for (auto n : o.gemm_sizes()) ACCEL_CHECK(n >= 1, "bench precision: GEMM size ", n, " must be >= 1.");
}

// (total, encoder) parameter counts of the classifier.
std::pair<int64_t, int64_t> count_parameters(const models::BertForSequenceClassificationImpl& m) {
  int64_t total = 0, encoder = 0;
  for (const auto& kv : m.named_parameters()) {
    total += kv.value().numel();
    if (kv.key().rfind("bert.encoder.", 0) == 0) encoder += kv.value().numel();
  }
  return {total, encoder};
}

struct ImdbTensors {
  at::Tensor ids, mask, labels;  // [n, seq_len], [n, seq_len], [n]
};

// The first `count` reviews of an IMDb split (label-balanced), tokenized with the default model's
// vocabulary, truncated and padded to seq_len.
ImdbTensors load_imdb_tensors(const PrecisionBenchmarkOptions& o, const std::string& split, int64_t count) {
  const int64_t t = o.seq_len();
  const auto where = datasets::resolve_imdb_dir(datasets::ImdbLocationOptions().data_dir(o.data_dir()));
  auto ds = datasets::load_imdb(where.dir, datasets::ImdbOptions().split(split).max_samples(count));
  ACCEL_CHECK_INPUT(ds.size() > 0, "bench precision: no IMDb ", split, " reviews in ", where.dir,
                    ". HINT: pass --data_dir to an aclImdb folder, or use --data random.");
  const auto tok = text::WordPieceTokenizer::from_file(models::default_model_dir());
  auto enc = tok.encode_batch(
      ds.texts, text::EncodeOptions().max_length(t).truncation(true).padding(text::Padding::kMaxLength));
  return {torch::tensor(enc.input_ids, torch::kLong).view({enc.batch_size, t}),
          torch::tensor(enc.attention_mask, torch::kLong).view({enc.batch_size, t}),
          torch::tensor(ds.labels, torch::kLong)};
}

// Accuracy of `model` on o.eval_accuracy() IMDb test reviews: each process takes every
// world-th batch, the correct counts are summed over processes.
template <typename Model>
double evaluate_imdb_accuracy(Accelerator& acc, Model& model, const PrecisionBenchmarkOptions& o,
                              int64_t* samples) {
  auto data = load_imdb_tensors(o, "test", o.eval_accuracy());
  const int64_t n = data.labels.size(0), b = o.batch_size();
  model->eval();
  torch::NoGradGuard no_grad;
  int64_t correct = 0, seen = 0;
  for (int64_t start = acc.process_index() * b; start < n; start += b * acc.num_processes()) {
    const int64_t len = std::min(b, n - start);
    models::BertBatch batch{data.ids.narrow(0, start, len), data.mask.narrow(0, start, len),
                            torch::zeros({len, o.seq_len()}, torch::kLong), at::Tensor()};
    auto out = model(batch.to(acc.device()));
    auto pred = out.logits.argmax(-1).cpu();
    correct += pred.eq(data.labels.narrow(0, start, len)).sum().template item<int64_t>();
    seen += len;
  }
  auto counts = torch::tensor({correct, seen}, torch::kLong).to(acc.device());
  if (acc.num_processes() > 1) counts = acc.reduce(counts, "sum");
  counts = counts.cpu();
  model->train();
  *samples = counts[1].template item<int64_t>();
  return *samples > 0
             ? static_cast<double>(counts[0].template item<int64_t>()) / static_cast<double>(*samples)
             : 0.0;
}

// The batches of one run: the same for every precision (seeded), made on the CPU.
std::vector<models::BertBatch> make_batches(const PrecisionBenchmarkOptions& o, const models::BertConfig& cfg,
                                            int64_t count, int64_t rank) {
  const int64_t b = o.batch_size(), t = o.seq_len();
  std::vector<models::BertBatch> out;
  if (o.data() == "imdb") {
    auto data = load_imdb_tensors(o, "train", b * count);
    const int64_t n = data.labels.size(0);
    for (int64_t i = 0; i < count; ++i) {
      // Reviews cycle when there are fewer than needed; rank r takes a shifted window.
      auto idx = (torch::arange(i * b, (i + 1) * b, torch::kLong) + rank * b) % n;
      out.push_back({data.ids.index_select(0, idx), data.mask.index_select(0, idx),
                     torch::zeros({b, t}, torch::kLong), data.labels.index_select(0, idx)});
    }
    return out;
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed() * 1000003 + static_cast<uint64_t>(rank) + 1);
  const int64_t low = std::min<int64_t>(1000, cfg.vocab_size - 1);  // past BERT's special tokens
  if (o.data() == "lengths") {
    // Dynamic padding, as a collate function pads: each batch as long as its longest sequence.
    const auto lengths = read_lengths(o.lengths_file());
    const int64_t n = static_cast<int64_t>(lengths.size());
    for (int64_t i = 0; i < count; ++i) {
      std::vector<int64_t> len(static_cast<size_t>(b));
      int64_t longest = 1;
      for (int64_t j = 0; j < b; ++j) {
        len[static_cast<size_t>(j)] =
            std::min(t, lengths[static_cast<size_t>(((i + rank * count) * b + j) % n)]);
        longest = std::max(longest, len[static_cast<size_t>(j)]);
      }
      auto positions = torch::arange(longest, torch::kLong).unsqueeze(0);                        // (1, T)
      auto mask = positions.lt(torch::tensor(len, torch::kLong).unsqueeze(1)).to(torch::kLong);  // (B, T)
      auto ids = torch::randint(low, cfg.vocab_size, {b, longest}, gen, torch::kLong) * mask;    // pad id 0
      auto labels = torch::randint(0, cfg.num_labels, {b}, gen, torch::kLong);
      out.push_back({ids, mask, torch::zeros({b, longest}, torch::kLong), labels});
    }
    return out;
  }
  for (int64_t i = 0; i < count; ++i) {
    auto ids = torch::randint(low, cfg.vocab_size, {b, t}, gen, torch::kLong);
    auto labels = torch::randint(0, cfg.num_labels, {b}, gen, torch::kLong);
    // Every token is real; with no_attention_mask the batch says so by having no mask at all.
    at::Tensor mask =
        (o.no_attention_mask() || o.cuda_graph()) ? at::Tensor() : torch::ones({b, t}, torch::kLong);
    out.push_back({ids, mask, torch::zeros({b, t}, torch::kLong), labels});
  }
  return out;
}

// Runs a tiny autocast forward/backward to find out whether the device can do `precision`.
std::string probe_precision(const std::string& device, const std::string& precision) {
  if (precision == "no") return "";
  const auto dtype = precision == "bf16" ? torch::kBFloat16 : torch::kHalf;
  try {
    auto dev = torch::Device(device);
    auto w = torch::randn({8, 8}, torch::TensorOptions().device(dev)).requires_grad_(true);
    auto x = torch::randn({4, 8}, torch::TensorOptions().device(dev));
    at::Tensor y;
    {
      AutocastGuard guard(dev.type(), dtype);
      y = torch::matmul(x, w);
    }
    ACCEL_CHECK(y.scalar_type() == dtype, "autocast produced ", y.scalar_type(), " instead of ", dtype);
    y.to(torch::kFloat).sum().backward();
    synchronize(device);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
    return "the device cannot run " + precision + ": " + msg;
  }
  return "";
}

// Spawns `argv` with the current environment; returns its exit code (128 + signal when killed).
int run_child(const std::vector<std::string>& argv) {
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = 0;
  std::fflush(stdout);
  std::fflush(stderr);
  const int rc = ::posix_spawn(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ);
  ACCEL_CHECK(rc == 0, "bench precision: cannot start '", argv[0], "' (error ", rc, ").");
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 127;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

template <typename T>
json opt_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
template <typename T>
std::optional<T> json_opt(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<T>();
}

json result_json(const PrecisionResult& r) {
  return json{{"precision", r.precision},
              {"ran", r.ran},
              {"skipped_reason", r.skipped_reason},
              {"support_note", r.support_note},
              {"isolated", r.isolated},
              {"world_size", r.world_size},
              {"steps", r.steps},
              {"step_times_s", r.step_times_s},
              {"step_time_median_s", r.step_time_median_s},
              {"step_time_min_s", r.step_time_min_s},
              {"step_time_max_s", r.step_time_max_s},
              {"step_time_p25_s", r.step_time_p25_s},
              {"step_time_p75_s", r.step_time_p75_s},
              {"samples_per_s", r.samples_per_s},
              {"tokens_per_s", r.tokens_per_s},
              {"real_tokens_per_s", r.real_tokens_per_s},
              {"tokens_per_step", r.tokens_per_step},
              {"real_tokens_per_step", r.real_tokens_per_step},
              {"loss_first", r.loss_first},
              {"loss_last", r.loss_last},
              {"loss_finite", r.loss_finite},
              {"skipped_optimizer_steps", r.skipped_optimizer_steps},
              {"peak_rss_bytes", opt_json(r.peak_rss_bytes)},
              {"peak_tensor_bytes", opt_json(r.peak_tensor_bytes)},
              {"cuda_peak_allocated_bytes", opt_json(r.cuda_peak_allocated_bytes)},
              {"cuda_peak_reserved_bytes", opt_json(r.cuda_peak_reserved_bytes)},
              {"model_tflops", r.model_tflops},
              {"mfu", opt_json(r.mfu)},
              {"gemm_peak_tflops", r.gemm_peak_tflops},
              {"eval_accuracy", opt_json(r.eval_accuracy)},
              {"eval_samples", r.eval_samples}};
}

std::string mib(std::optional<int64_t> bytes) {
  if (!bytes) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", static_cast<double>(*bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string display_name(const std::string& precision) {
  return precision == "no" ? "fp32" : precision;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::string normalize_precision(const std::string& precision) {
  std::string p = precision;
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
  if (p == "no" || p == "fp32" || p == "float32") return "no";
  if (p == "bf16" || p == "bfloat16") return "bf16";
  if (p == "fp16" || p == "float16" || p == "half") return "fp16";
  ACCEL_CHECK(false, "bench precision: precision '", precision,
              "' is not known; accepted: no (or fp32), bf16, fp16.");
  return "";
}

std::string gemm_dtype_for(const std::string& precision) {
  const auto p = normalize_precision(precision);
  return p == "no" ? "fp32" : p;
}

double training_flops_per_step(int64_t non_embedding_parameters, int64_t layers, int64_t hidden,
                               int64_t seq_len, int64_t batch_size) {
  const double n = static_cast<double>(non_embedding_parameters), l = static_cast<double>(layers),
               h = static_cast<double>(hidden), t = static_cast<double>(seq_len),
               b = static_cast<double>(batch_size);
  return 6.0 * n * b * t + 12.0 * l * h * t * t * b;
}

std::vector<GemmResult> run_gemm_benchmark(const std::string& device, const std::vector<std::string>& dtypes,
                                           const std::vector<int64_t>& sizes_in, int64_t reps,
                                           double budget_s) {
  std::vector<GemmResult> out;
  torch::NoGradGuard no_grad;
  const auto env = current_environment();
  auto sizes = sizes_in;
  std::sort(sizes.begin(), sizes.end());
  for (const auto& name : dtypes) {
    const auto dtype = name == "fp32" ? torch::kFloat : name == "bf16" ? torch::kBFloat16 : torch::kHalf;
    // The native kernels always; on a CPU where accel computes autocast bf16/fp16 matmuls in fp32
    // (precision/cpu_compute.h), that path too: up-cast, fp32 GEMM, rounded result, casts timed.
    std::vector<std::string> paths{"native"};
    if (!is_cuda_device(device) && dtype != torch::kFloat &&
        resolve_cpu_autocast_compute(dtype, env) == CpuAutocastCompute::kFp32)
      paths.push_back("fp32");
    for (const auto& path : paths)
      for (const std::string layout : {"nn", "nt", "tn"}) {
        double prev_first = 0;
        int64_t prev_n = 0;
        for (auto n : sizes) {
          GemmResult g;
          g.dtype = name;
          g.layout = layout;
          g.path = path;
          g.size = n;
          const double predicted =
              prev_n > 0 ? prev_first * std::pow(static_cast<double>(n) / prev_n, 3) : 0.0;
          if (predicted > budget_s) {
            char buf[160];
            std::snprintf(buf, sizeof buf,
                          "skipped: about %.1f s per call (from n=%lld) exceeds the %.1f s budget", predicted,
                          static_cast<long long>(prev_n), budget_s);
            g.error = buf;
            out.push_back(g);
            continue;
          }
          try {
            auto opts = torch::TensorOptions().dtype(dtype).device(torch::Device(device));
            auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
            if (layout == "nt") b = b.t();  // a @ b.t(), as nn::Linear computes x W^T
            if (layout == "tn") a = a.t();  // a.t() @ b, as the weight gradient
            auto c = torch::empty({n, n}, opts);
            auto call = [&] {
              if (path == "fp32") {
                c.copy_(torch::mm(a.to(torch::kFloat), b.to(torch::kFloat)));
              } else {
                torch::mm_out(c, a, b);
              }
            };
            synchronize(device);
            auto t0 = Clock::now();
            call();  // first call: setup, untimed unless it is all the budget allows
            synchronize(device);
            const double first = seconds_since(t0);
            prev_first = first;
            prev_n = n;
            std::vector<double> times;
            int64_t want = reps;
            if (first * static_cast<double>(reps) > budget_s) want = static_cast<int64_t>(budget_s / first);
            if (is_cuda_device(device)) want = std::max<int64_t>(want, 20);
            if (want < 1) times.push_back(first);  // one call is all the budget allows
            for (int64_t i = 0; i < want; ++i) {
              auto t = Clock::now();
              call();
              synchronize(device);
              times.push_back(seconds_since(t));
            }
            g.reps = static_cast<int64_t>(times.size());
            g.median_s = quantile(times, 0.5);
            g.tflops = g.median_s > 0 ? 2.0 * std::pow(static_cast<double>(n), 3) / g.median_s / 1e12 : 0.0;
          } catch (const std::exception& e) {
            g.error = e.what();
            if (auto nl = g.error.find('\n'); nl != std::string::npos) g.error = g.error.substr(0, nl);
          }
          out.push_back(g);
        }
      }
  }
  return out;
}

PrecisionResult run_single_precision(const PrecisionBenchmarkOptions& o, const std::string& precision_in,
                                     PrecisionReport* report_out) {
  validate(o);
  if (o.num_threads() > 0) torch::set_num_threads(o.num_threads());
  const std::string precision = normalize_precision(precision_in);
  const std::string device = resolve_device(o);
  PrecisionResult r;
  r.precision = precision;
  r.support_note = is_cuda_device(device) ? "" : cpu_support_note(precision);
  if (auto why = probe_precision(device, precision); !why.empty()) {
    r.skipped_reason = why;
    return r;
  }
  auto cfg = resolve_config(o);
  cfg.num_labels = 2;

  reset_cuda_peak_memory(0);
  reset_cpu_tensor_bytes_peak();
  {
    Accelerator acc(AcceleratorOptions().mixed_precision(precision).cpu(o.cpu()));
    if (!is_cuda_device(device) && precision != "no" &&
        cpu_autocast_compute(precision == "bf16" ? torch::kBFloat16 : torch::kHalf) ==
            CpuAutocastCompute::kFp32) {
      r.support_note +=
          "; accel runs autocast linear, attention and convolutions with fp32 compute "
          "(ACCEL_CPU_AUTOCAST_COMPUTE=native for torch's kernels)";
    }
    torch::manual_seed(o.seed());
    models::BertForSequenceClassification net{nullptr};
    if (o.pretrained() && !o.custom_config() &&
        (o.config() == "all-MiniLM-L6-v2" || o.config() == "sentence-transformers/all-MiniLM-L6-v2")) {
      net = models::bert_for_sequence_classification_from_pretrained(models::default_model_dir(), 2);
    } else {
      net = models::BertForSequenceClassification(cfg);
    }
    if (report_out) {
      auto [total, encoder] = count_parameters(*net);
      report_out->parameters = total;
      report_out->non_embedding_parameters = encoder;
    }
    auto model = acc.prepare(net);
    auto opt = acc.prepare(
        torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(o.lr()).weight_decay(0.01)));
    const int64_t total_steps = o.warmup() + o.steps();
    // A short fine-tune (eval_accuracy) and dynamically padded lengths see distinct batches; a
    // fixed-shape speed run cycles 8 (a captured CUDA graph replays one).
    const int64_t distinct = (o.eval_accuracy() > 0 || o.data() == "lengths") ? total_steps
                             : o.cuda_graph()                                 ? 1
                                              : std::min<int64_t>(total_steps, 8);
    auto batches = make_batches(o, cfg, distinct, acc.process_index());
    for (auto& b : batches) b = b.to(acc.device());
    r.world_size = acc.num_processes();
    model->train();

    std::unique_ptr<CudaGraphStep> graph;
    if (o.cuda_graph()) {
      ACCEL_CHECK(is_cuda_device(device), "bench precision: --cuda_graph needs a CUDA device (this run uses ",
                  device, ").");
      ACCEL_CHECK(precision != "fp16",
                  "bench precision: --cuda_graph cannot capture fp16 steps: the loss scaler ",
                  "reads the GPU on every step. HINT: use --precisions bf16 or no.");
      graph = std::make_unique<CudaGraphStep>();  // throws when the build has no CUDA graphs
    }

    tracking::ProgressBar bar(
        total_steps, "bench " + display_name(precision),
        tracking::ProgressBarOptions().enabled(o.progress() && acc.is_main_process()).unit("step"));
    std::vector<at::Tensor> losses;
    double tokens = 0, real_tokens = 0;
    at::Tensor graph_loss;  // the captured step's loss (its storage is rewritten by every replay)
    for (int64_t s = 0; s < total_steps; ++s) {
      const auto& batch = batches[static_cast<size_t>(s) % batches.size()];
      synchronize(device);
      auto t0 = Clock::now();
      at::Tensor loss;
      if (graph && s == o.warmup()) {
        // The first timed step captures (and runs) the step; its time is not counted.
        graph->capture([&] {
          auto out = model(batch);
          acc.backward(out.loss);
          opt->step();
          opt->zero_grad();
          graph_loss = out.loss.detach();
        });
        bar.set_postfix("captured");
        bar.update();
        continue;
      }
      if (graph && s > o.warmup()) {
        graph->replay();
        loss = graph_loss;
      } else {
        auto out = model(batch);
        acc.backward(out.loss);
        opt->step();
        opt->zero_grad();
        loss = out.loss;
      }
      synchronize(device);
      const double dt = seconds_since(t0);
      if (opt->step_was_skipped()) ++r.skipped_optimizer_steps;
      if (s >= o.warmup()) {
        r.step_times_s.push_back(dt);
        losses.push_back(loss.detach().clone());
        tokens += static_cast<double>(batch.input_ids.numel());
        real_tokens += batch.attention_mask.defined() ? batch.attention_mask.sum().item<double>()
                                                      : static_cast<double>(batch.input_ids.numel());
      }
      bar.set_postfix("loss=" + std::to_string(loss.item<double>()).substr(0, 6));
      bar.update();
    }
    bar.close();
    const double timed = static_cast<double>(r.step_times_s.size());
    ACCEL_CHECK(timed > 0,
                "bench precision: no timed step (with --cuda_graph the first timed step captures; ",
                "use --steps >= 2).");
    double total_time = 0;
    for (double t : r.step_times_s) total_time += t;
    r.tokens_per_step = tokens / timed;
    r.real_tokens_per_step = real_tokens / timed;
    r.real_tokens_per_s = total_time > 0 ? real_tokens * static_cast<double>(r.world_size) / total_time : 0.0;
    r.steps = static_cast<int64_t>(timed);
    r.loss_first = losses.front().item<double>();
    r.loss_last = losses.back().item<double>();
    r.loss_finite = std::isfinite(r.loss_first) && std::isfinite(r.loss_last);
    if (o.eval_accuracy() > 0) {
      bar.close();
      r.eval_accuracy = evaluate_imdb_accuracy(acc, model, o, &r.eval_samples);
    }
  }
  r.ran = true;
  r.step_time_median_s = quantile(r.step_times_s, 0.5);
  r.step_time_min_s = quantile(r.step_times_s, 0.0);
  r.step_time_max_s = quantile(r.step_times_s, 1.0);
  r.step_time_p25_s = quantile(r.step_times_s, 0.25);
  r.step_time_p75_s = quantile(r.step_times_s, 0.75);
  if (r.step_time_median_s > 0) {
    r.samples_per_s = static_cast<double>(o.batch_size() * r.world_size) / r.step_time_median_s;
    r.tokens_per_s = r.tokens_per_step * static_cast<double>(r.world_size) / r.step_time_median_s;
  }
  if (auto cuda = cuda_memory_stats(0); cuda && is_cuda_device(device)) {
    r.cuda_peak_allocated_bytes = cuda->peak_allocated_bytes;
    r.cuda_peak_reserved_bytes = cuda->peak_reserved_bytes;
  } else {
    if (counting_cpu_allocator_installed()) r.peak_tensor_bytes = cpu_tensor_bytes_peak();
    r.peak_rss_bytes = peak_rss_bytes();
  }
  return r;
}

PrecisionReport run_precision_benchmark(const PrecisionBenchmarkOptions& o) {
  validate(o);
  if (o.num_threads() > 0) torch::set_num_threads(o.num_threads());
  install_counting_cpu_allocator();  // counts from here on (in-process runs)
  const std::string device = resolve_device(o);
  const auto cfg = resolve_config(o);

  PrecisionReport rep;
  rep.model = model_label(o);
  rep.layers = cfg.num_hidden_layers;
  rep.hidden = cfg.hidden_size;
  rep.seq_len = o.seq_len();
  rep.batch_size = o.batch_size();
  rep.steps = o.steps();
  rep.warmup = o.warmup();
  rep.num_threads = torch::get_num_threads();
  rep.device = device;
  rep.device_name = is_cuda_device(device) ? "CUDA GPU" : cpu_info().model_name;
  if (rep.device_name.empty()) rep.device_name = "cpu";
  rep.data = o.data();
  rep.speed_options = speed_option_names(o);
  rep.torch_version = TORCH_VERSION;
  {
    auto c = cfg;
    c.num_labels = 2;
    torch::NoGradGuard ng;
    models::BertForSequenceClassification m(c);
    auto [total, encoder] = count_parameters(*m);
    rep.parameters = total;
    rep.non_embedding_parameters = encoder;
  }
  rep.flops_per_step = training_flops_per_step(rep.non_embedding_parameters, rep.layers, rep.hidden,
                                               rep.seq_len, rep.batch_size);
  rep.flops_formula =
      "6*N*B*T + 12*L*H*T^2*B per step and process; N = encoder parameters (embeddings, pooler and "
      "classifier not counted), B batch, T sequence length, L layers, H hidden size";

  // The hardware limit first, with the same thread count as the training.
  if (o.gemm()) {
    std::vector<std::string> dtypes;
    for (const auto& p : o.precisions()) {
      auto d = gemm_dtype_for(p);
      if (std::find(dtypes.begin(), dtypes.end(), d) == dtypes.end()) dtypes.push_back(d);
    }
    if (o.progress()) std::fprintf(stderr, "GEMM microbenchmark (%s) ...\n", join(dtypes, ", ").c_str());
    rep.gemm = run_gemm_benchmark(device, dtypes, o.gemm_sizes(), o.gemm_reps(), o.gemm_budget_s());
  } else {
    rep.notes.push_back("GEMM microbenchmark not run (--no_gemm): no MFU.");
  }

  for (const auto& p_in : o.precisions()) {
    const auto p = normalize_precision(p_in);
    PrecisionResult r;
    r.precision = p;
    if (o.isolate()) {
      auto cmd = o.child_command();
      if (cmd.empty()) {
        cmd = {fs::read_symlink("/proc/self/exe").value_or("/proc/self/exe"), "bench", "precision"};
      }
      auto child_opts = o;
      child_opts.isolate(false).gemm(false);
      for (auto& a : to_precision_args(child_opts)) cmd.push_back(a);
      const fs::TempDir scratch("accel-bench-");
      const std::string out = scratch / (p + ".json");
      cmd.insert(cmd.end(), {"--single", p, "--json-out", out});
      const int rc = run_child(cmd);
      if (rc == 0 && fs::exists(out)) {
        r = result_from_json(fs::read_file(out, "benchmark result"));
      } else {
        r.skipped_reason = "its child process failed (exit code " + std::to_string(rc) + "; output above)";
      }
    } else {
      try {
        r = run_single_precision(o, p);
      } catch (const std::exception& e) {
        r = PrecisionResult{};
        r.precision = p;
        r.skipped_reason = std::string("failed: ") + e.what();
      }
      r.isolated = false;
      r.peak_rss_bytes.reset();  // VmHWM is process-wide and cannot be reset: meaningless here
    }
    if (!r.ran && o.progress())
      std::fprintf(stderr, "%s skipped: %s\n", display_name(p).c_str(), r.skipped_reason.c_str());
    if (!r.ran) rep.notes.push_back(display_name(p) + " skipped: " + r.skipped_reason);
    rep.results.push_back(std::move(r));
  }

  if (o.data() == "lengths")
    rep.notes.push_back(
        "data 'lengths': batches are padded to their longest sequence, so the FLOPs formula (full seq_len) "
        "does not apply: no model TFLOP/s or MFU; compare real_tokens_per_s.");
  if (o.cuda_graph())
    rep.notes.push_back(
        "cuda_graph: the first timed step captures the step (not timed; timed steps = steps - 1); replays "
        "keep "
        "AdamW's bias correction of the captured step (a speed figure only).");
  for (auto& r : rep.results) {
    if (!r.ran || r.step_time_median_s <= 0 || o.data() == "lengths") continue;
    r.model_tflops = rep.flops_per_step / r.step_time_median_s / 1e12;
    r.gemm_peak_tflops = rep.gemm_peak(gemm_dtype_for(r.precision));
    if (r.gemm_peak_tflops > 0) r.mfu = r.model_tflops / r.gemm_peak_tflops;
  }
  if (!o.isolate() && !is_cuda_device(device))
    rep.notes.push_back(
        "peak RSS not reported: runs shared one process (VmHWM cannot be reset); "
        "`accel bench precision` isolates each precision in its own process.");
  if (o.eval_accuracy() > 0 && !o.pretrained())
    rep.notes.push_back(
        "eval accuracy after a few steps from random weights is near chance; add --pretrained.");
  return rep;
}

// ---------------------------------------------------------------------------------------------

const PrecisionResult* PrecisionReport::find(const std::string& precision) const {
  const auto p = normalize_precision(precision);
  for (const auto& r : results)
    if (r.precision == p) return &r;
  return nullptr;
}

double PrecisionReport::gemm_peak(const std::string& dtype) const {
  double best = 0;
  for (const auto& g : gemm)
    if (g.dtype == dtype && g.error.empty()) best = std::max(best, g.tflops);
  return best;
}

std::string PrecisionReport::to_table() const {
  std::ostringstream os;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "accel bench precision: %s (%.1fM parameters, %lld layers, H=%lld), batch %lld x seq %lld, "
                "%lld steps after %lld warm-up, %s (%s), %d threads, data %s\n",
                model.c_str(), static_cast<double>(parameters) / 1e6, static_cast<long long>(layers),
                static_cast<long long>(hidden), static_cast<long long>(batch_size),
                static_cast<long long>(seq_len), static_cast<long long>(steps),
                static_cast<long long>(warmup), device.c_str(), device_name.c_str(), num_threads,
                data.c_str());
  os << buf;
  const bool cuda = is_cuda_device(device);
  std::snprintf(buf, sizeof buf, "%-6s %10s %10s %24s %10s %10s %9s %8s %6s\n", "prec", "samples/s",
                "tokens/s", "step ms median [min,max]", cuda ? "alloc MiB" : "RSS MiB",
                cuda ? "resv MiB" : "tensor MiB", "loss", "TFLOP/s", "MFU");
  os << buf;
  for (const auto& r : results) {
    if (!r.ran) {
      std::snprintf(buf, sizeof buf, "%-6s skipped: %s\n", display_name(r.precision).c_str(),
                    r.skipped_reason.c_str());
      os << buf;
      continue;
    }
    char step[64], mfu_s[16];
    std::snprintf(step, sizeof step, "%.1f [%.1f,%.1f]", r.step_time_median_s * 1e3, r.step_time_min_s * 1e3,
                  r.step_time_max_s * 1e3);
    if (r.mfu)
      std::snprintf(mfu_s, sizeof mfu_s, "%.1f%%", *r.mfu * 100);
    else
      std::snprintf(mfu_s, sizeof mfu_s, "-");
    std::snprintf(buf, sizeof buf, "%-6s %10.2f %10.0f %24s %10s %10s %9.4f %8.3f %6s\n",
                  display_name(r.precision).c_str(), r.samples_per_s, r.tokens_per_s, step,
                  mib(cuda ? r.cuda_peak_allocated_bytes : r.peak_rss_bytes).c_str(),
                  mib(cuda ? r.cuda_peak_reserved_bytes : r.peak_tensor_bytes).c_str(), r.loss_last,
                  r.model_tflops, mfu_s);
    os << buf;
  }
  for (const auto& r : results) {
    if (!r.ran || !r.eval_accuracy) continue;
    std::snprintf(buf, sizeof buf, "%s: eval accuracy %.2f%% on %lld IMDb test reviews after %lld steps\n",
                  display_name(r.precision).c_str(), *r.eval_accuracy * 100,
                  static_cast<long long>(r.eval_samples), static_cast<long long>(warmup + steps));
    os << buf;
  }
  const PrecisionResult* base = find("no");
  if (base && base->ran) {
    for (const auto& r : results) {
      if (!r.ran || r.precision == "no") continue;
      std::string line = display_name(r.precision) + " vs fp32: speed x" +
                         c10::str(std::round(r.samples_per_s / base->samples_per_s * 100) / 100);
      auto ratio = [](std::optional<int64_t> a, std::optional<int64_t> b) -> std::string {
        if (!a || !b || *b == 0) return "-";
        return "x" + c10::str(std::round(static_cast<double>(*a) / static_cast<double>(*b) * 100) / 100);
      };
      if (cuda) {
        line += ", peak allocated " + ratio(r.cuda_peak_allocated_bytes, base->cuda_peak_allocated_bytes);
      } else {
        line += ", peak RSS " + ratio(r.peak_rss_bytes, base->peak_rss_bytes) + ", peak tensor bytes " +
                ratio(r.peak_tensor_bytes, base->peak_tensor_bytes);
      }
      if (!r.support_note.empty()) line += "  (" + r.support_note + ")";
      os << line << "\n";
    }
  }
  if (!gemm.empty()) {
    os << "GEMM peak (median per call, best of sizes and layouts nn/nt/tn):";
    for (const std::string d : {"fp32", "bf16", "fp16"}) {
      double best = 0;
      int64_t at = 0;
      std::string err, layout;
      bool any = false;
      for (const auto& g : gemm) {
        if (g.dtype != d) continue;
        any = true;
        if (!g.error.empty()) err = g.error;
        if (g.error.empty() && g.tflops > best)
          best = g.tflops, at = g.size, layout = g.path == "native" ? g.layout : g.layout + ", fp32 compute";
      }
      if (!any) continue;
      if (best > 0) {
        std::snprintf(buf, sizeof buf, " %s %.3f TFLOP/s (n=%lld, %s);", d.c_str(), best,
                      static_cast<long long>(at), layout.c_str());
      } else {
        std::snprintf(buf, sizeof buf, " %s failed (%s);", d.c_str(), err.c_str());
      }
      os << buf;
    }
    os << "\n";
  }
  std::snprintf(buf, sizeof buf, "model FLOPs/step = %.4g (%s)\n", flops_per_step, flops_formula.c_str());
  os << buf;
  os << "MFU = (FLOPs/step / median step time) / GEMM peak of the precision's dtype (fp32 for 'no').\n";
  for (const auto& n : notes) os << "note: " << n << "\n";
  return os.str();
}

std::string PrecisionReport::to_json() const {
  json g = json::array();
  for (const auto& x : gemm)
    g.push_back({{"dtype", x.dtype},
                 {"layout", x.layout},
                 {"path", x.path},
                 {"size", x.size},
                 {"reps", x.reps},
                 {"median_s", x.median_s},
                 {"tflops", x.tflops},
                 {"error", x.error}});
  json rs = json::array();
  for (const auto& r : results) rs.push_back(result_json(r));
  json j{{"benchmark", "precision"},
         {"model", model},
         {"parameters", parameters},
         {"non_embedding_parameters", non_embedding_parameters},
         {"layers", layers},
         {"hidden", hidden},
         {"seq_len", seq_len},
         {"batch_size", batch_size},
         {"steps", steps},
         {"warmup", warmup},
         {"num_threads", num_threads},
         {"device", device},
         {"device_name", device_name},
         {"data", data},
         {"speed_options", speed_options},
         {"torch_version", torch_version},
         {"flops_per_step", flops_per_step},
         {"flops_formula", flops_formula},
         {"gemm", g},
         {"gemm_peak_tflops",
          {{"fp32", gemm_peak("fp32")}, {"bf16", gemm_peak("bf16")}, {"fp16", gemm_peak("fp16")}}},
         {"results", rs},
         {"notes", notes}};
  return j.dump(2);
}

std::string result_to_json(const PrecisionResult& result) {
  return result_json(result).dump();
}

PrecisionResult result_from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    ACCEL_CHECK(false, "bench precision: a child's result is not valid JSON (", e.what(), ").");
  }
  PrecisionResult r;
  r.precision = j.at("precision").get<std::string>();
  r.ran = j.at("ran").get<bool>();
  r.skipped_reason = j.value("skipped_reason", "");
  r.support_note = j.value("support_note", "");
  r.isolated = j.value("isolated", false);
  r.world_size = j.value("world_size", int64_t{1});
  r.steps = j.value("steps", int64_t{0});
  r.step_times_s = j.value("step_times_s", std::vector<double>{});
  r.step_time_median_s = j.value("step_time_median_s", 0.0);
  r.step_time_min_s = j.value("step_time_min_s", 0.0);
  r.step_time_max_s = j.value("step_time_max_s", 0.0);
  r.step_time_p25_s = j.value("step_time_p25_s", 0.0);
  r.step_time_p75_s = j.value("step_time_p75_s", 0.0);
  r.samples_per_s = j.value("samples_per_s", 0.0);
  r.tokens_per_s = j.value("tokens_per_s", 0.0);
  r.real_tokens_per_s = j.value("real_tokens_per_s", 0.0);
  r.tokens_per_step = j.value("tokens_per_step", 0.0);
  r.real_tokens_per_step = j.value("real_tokens_per_step", 0.0);
  r.loss_first = j.value("loss_first", 0.0);
  r.loss_last = j.value("loss_last", 0.0);
  r.loss_finite = j.value("loss_finite", false);
  r.skipped_optimizer_steps = j.value("skipped_optimizer_steps", int64_t{0});
  r.peak_rss_bytes = json_opt<int64_t>(j, "peak_rss_bytes");
  r.peak_tensor_bytes = json_opt<int64_t>(j, "peak_tensor_bytes");
  r.cuda_peak_allocated_bytes = json_opt<int64_t>(j, "cuda_peak_allocated_bytes");
  r.cuda_peak_reserved_bytes = json_opt<int64_t>(j, "cuda_peak_reserved_bytes");
  r.model_tflops = j.value("model_tflops", 0.0);
  r.mfu = json_opt<double>(j, "mfu");
  r.gemm_peak_tflops = j.value("gemm_peak_tflops", 0.0);
  r.eval_accuracy = json_opt<double>(j, "eval_accuracy");
  r.eval_samples = j.value("eval_samples", int64_t{0});
  return r;
}

}  // namespace accel::bench
