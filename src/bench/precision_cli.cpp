// `accel bench precision`: argument parsing, the hidden child mode and the output files.
#include "accel/bench/cli.h"
#include "accel/bench/memory.h"
#include "accel/bench/precision.h"
#include "accel/core/error.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace accel::bench {
namespace {

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: accel bench precision [options]\n\n"
      "The same BERT training steps (AdamW, fixed-shape batches) in each precision, each in a fresh\n"
      "Accelerator and model in its own process: samples/s, tokens/s, step time median [min, max],\n"
      "peak memory (CPU: peak RSS and peak bytes held by tensors; CUDA: caching allocator peaks),\n"
      "loss after the timed steps, a GEMM microbenchmark per dtype and MFU.\n\n"
      "workload:\n"
      "  --config NAME|DIR        all-MiniLM-L6-v2 (default), bert-base-uncased, bert-large-uncased,\n"
      "                           bert-tiny, or a Hugging Face folder / config.json\n"
      "  --pretrained             load the default MiniLM weights (default: random init, same speed)\n"
      "  --seq_len T              tokens per sequence (default 256)\n"
      "  --batch_size B           sequences per step (default 16)\n"
      "  --steps N                timed steps (default 10)\n"
      "  --warmup N               untimed steps first (default 2)\n"
      "  --precisions LIST        comma-separated: no (fp32), bf16, fp16 (default no,bf16,fp16)\n"
      "  --lr X                   AdamW learning rate (default 5e-5)\n"
      "  --num_threads N          torch threads for training and GEMMs (default: torch's)\n"
      "  --data random|imdb|lengths  random token ids (default), IMDb reviews, or random ids in\n"
      "                           dynamically padded batches of the lengths in --lengths_file\n"
      "  --data_dir DIR           aclImdb folder for --data imdb\n"
      "  --lengths_file FILE      token counts, one per line, for --data lengths\n"
      "  --no_attention_mask      --data random: pass no attention mask (every token is real)\n"
      "GPU speed options (CUDA only; off by default until measured):\n"
      "  --unpadded_attention     attention over the real tokens only (FlashAttention varlen)\n"
      "  --fused_bias_gelu        fused bias + GELU kernel in the feed-forward block\n"
      "  --fused_layer_norm       fused bias + dropout + residual + LayerNorm kernels\n"
      "  --cuda_graph             capture the whole step in a CUDA graph and replay it (fixed shapes,\n"
      "                           bf16/fp32; no attention mask; a speed figure only)\n"
      "  --cpu                    use the CPU even when a GPU is present\n"
      "  --seed S                 weights and batches (default 0)\n"
      "  --eval_accuracy N        after the timed steps, accuracy on N IMDb test reviews (needs\n"
      "                           --data imdb; distinct training batches; use with --pretrained)\n"
      "  --gemm_sizes LIST        GEMM sizes (default 1024,2048)\n"
      "  --gemm_reps N            timed GEMMs per size and layout (default 5)\n"
      "  --gemm_budget_s S        rough seconds per dtype, layout and size (default 3)\n"
      "  --no_gemm                skip the GEMM microbenchmark (no MFU)\n"
      "  --in_process             run every precision in this process (no per-precision peak RSS)\n"
      "  --no_progress            no progress bars\n\n"
      "output:\n"
      "  --json FILE              write the report as JSON\n"
      "  --png FILE               write a chart (samples/s and peak memory) with gnuplot\n\n"
      "Example: accel bench precision --num_threads 2 --json prec.json --png prec.png\n");
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

int64_t to_int(const std::string& key, const std::string& v) {
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (...) {
  }
  ACCEL_CHECK(false, "bench precision: ", key, " expects an integer, got '", v, "'.");
  return 0;
}

double to_double(const std::string& key, const std::string& v) {
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (...) {
  }
  ACCEL_CHECK(false, "bench precision: ", key, " expects a number, got '", v, "'.");
  return 0;
}

// Options of the command itself (not of the workload).
struct CommandArgs {
  PrecisionBenchmarkOptions options;
  std::string single;    // hidden: measure this precision only, in this process
  std::string json_out;  // hidden: where --single writes its result
  std::string json;
  std::string png;
  bool in_process = false;
  bool help = false;
};

// Splits `--key=value` / `--key value`, accepting '-' for '_' in keys.
template <typename Fn>
void for_each_option(const std::vector<std::string>& args, Fn&& fn) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string k = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = k.find('='); eq != std::string::npos && k.rfind("--", 0) == 0) {
      inline_value = k.substr(eq + 1);
      k = k.substr(0, eq);
    }
    for (size_t c = 2; c < k.size(); ++c)
      if (k[c] == '-') k[c] = '_';
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      ACCEL_CHECK(i + 1 < args.size(), "bench precision: ", k, " needs a value (see --help).");
      return args[++i];
    };
    fn(k, value);
  }
}

CommandArgs parse_command(const std::vector<std::string>& args) {
  CommandArgs c;
  std::vector<std::string> workload;
  for_each_option(args, [&](const std::string& k, auto&& value) {
    if (k == "--help" || k == "-h")
      c.help = true;
    else if (k == "--single")
      c.single = value();
    else if (k == "--json_out")
      c.json_out = value();
    else if (k == "--json")
      c.json = value();
    else if (k == "--png")
      c.png = value();
    else if (k == "--in_process")
      c.in_process = true;
    else {
      workload.push_back(k);
      if (k != "--pretrained" && k != "--cpu" && k != "--no_gemm" && k != "--no_progress" &&
          k != "--no_attention_mask" && k != "--unpadded_attention" && k != "--fused_bias_gelu" &&
          k != "--fused_layer_norm" && k != "--cuda_graph")
        workload.push_back(value());
    }
  });
  if (!c.help) c.options = parse_precision_args(workload);
  return c;
}

}  // namespace

PrecisionBenchmarkOptions parse_precision_args(const std::vector<std::string>& args) {
  PrecisionBenchmarkOptions o;
  for_each_option(args, [&](const std::string& k, auto&& value) {
    if (k == "--config")
      o.config(value());
    else if (k == "--pretrained")
      o.pretrained(true);
    else if (k == "--seq_len" || k == "--max_length")
      o.seq_len(to_int(k, value()));
    else if (k == "--batch_size")
      o.batch_size(to_int(k, value()));
    else if (k == "--steps")
      o.steps(to_int(k, value()));
    else if (k == "--warmup")
      o.warmup(to_int(k, value()));
    else if (k == "--precisions" || k == "--precision") {
      std::vector<std::string> ps;
      for (const auto& p : split_list(value())) ps.push_back(normalize_precision(p));
      o.precisions(ps);
    } else if (k == "--lr")
      o.lr(to_double(k, value()));
    else if (k == "--num_threads")
      o.num_threads(static_cast<int>(to_int(k, value())));
    else if (k == "--data")
      o.data(value());
    else if (k == "--data_dir")
      o.data_dir(value());
    else if (k == "--lengths_file")
      o.lengths_file(value());
    else if (k == "--no_attention_mask")
      o.no_attention_mask(true);
    else if (k == "--unpadded_attention")
      o.unpadded_attention(true);
    else if (k == "--fused_bias_gelu")
      o.fused_bias_gelu(true);
    else if (k == "--fused_layer_norm")
      o.fused_layer_norm(true);
    else if (k == "--cuda_graph")
      o.cuda_graph(true);
    else if (k == "--cpu")
      o.cpu(true);
    else if (k == "--seed")
      o.seed(static_cast<uint64_t>(to_int(k, value())));
    else if (k == "--gemm_sizes") {
      std::vector<int64_t> sizes;
      for (const auto& s : split_list(value())) sizes.push_back(to_int(k, s));
      o.gemm_sizes(sizes);
    } else if (k == "--gemm_reps")
      o.gemm_reps(to_int(k, value()));
    else if (k == "--gemm_budget_s")
      o.gemm_budget_s(to_double(k, value()));
    else if (k == "--eval_accuracy")
      o.eval_accuracy(to_int(k, value()));
    else if (k == "--no_gemm")
      o.gemm(false);
    else if (k == "--no_progress")
      o.progress(false);
    else {
      ACCEL_CHECK(
          false, "bench precision: unknown option '", k,
          "'. Options: --config, --pretrained, --seq_len, --batch_size, --steps, --warmup, --precisions, "
          "--lr, --num_threads, --data, --data_dir, --lengths_file, --no_attention_mask, "
          "--unpadded_attention, "
          "--fused_bias_gelu, --fused_layer_norm, --cuda_graph, --cpu, --seed, --eval_accuracy, "
          "--gemm_sizes, "
          "--gemm_reps, "
          "--gemm_budget_s, --no_gemm, "
          "--in_process, --no_progress, --json, --png (see --help).");
    }
  });
  return o;
}

std::vector<std::string> to_precision_args(const PrecisionBenchmarkOptions& o) {
  ACCEL_CHECK(!o.custom_config(),
              "bench precision: a custom_config cannot be passed to a child process; "
              "write it to a config.json and set config to its path.");
  std::vector<std::string> a = {"--config",     o.config(),
                                "--seq_len",    std::to_string(o.seq_len()),
                                "--batch_size", std::to_string(o.batch_size()),
                                "--steps",      std::to_string(o.steps()),
                                "--warmup",     std::to_string(o.warmup())};
  std::string ps;
  for (const auto& p : o.precisions()) {
    if (!ps.empty()) ps += ',';
    ps += p;
  }
  char lr[64];
  std::snprintf(lr, sizeof lr, "%.17g", o.lr());
  a.insert(a.end(), {"--precisions", ps, "--lr", lr, "--num_threads", std::to_string(o.num_threads()),
                     "--data", o.data(), "--seed", std::to_string(o.seed())});
  if (!o.data_dir().empty()) a.insert(a.end(), {"--data_dir", o.data_dir()});
  if (!o.lengths_file().empty()) a.insert(a.end(), {"--lengths_file", o.lengths_file()});
  if (o.no_attention_mask()) a.push_back("--no_attention_mask");
  if (o.unpadded_attention()) a.push_back("--unpadded_attention");
  if (o.fused_bias_gelu()) a.push_back("--fused_bias_gelu");
  if (o.fused_layer_norm()) a.push_back("--fused_layer_norm");
  if (o.cuda_graph()) a.push_back("--cuda_graph");
  if (o.pretrained()) a.push_back("--pretrained");
  if (o.eval_accuracy() > 0) a.insert(a.end(), {"--eval_accuracy", std::to_string(o.eval_accuracy())});
  if (o.cpu()) a.push_back("--cpu");
  std::string sizes;
  for (auto n : o.gemm_sizes()) {
    if (!sizes.empty()) sizes += ',';
    sizes += std::to_string(n);
  }
  a.insert(a.end(), {"--gemm_sizes", sizes, "--gemm_reps", std::to_string(o.gemm_reps())});
  if (!o.gemm()) a.push_back("--no_gemm");
  if (!o.progress()) a.push_back("--no_progress");
  return a;
}

int precision_main(const std::vector<std::string>& args) {
  CommandArgs c;
  try {
    c = parse_command(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "accel bench precision: error: %s\n", e.what());
    return 2;
  }
  if (c.help) {
    usage(stdout);
    return 0;
  }
  try {
    if (!c.single.empty()) {
      // Child mode: count tensor bytes from the first tensor of this process on.
      install_counting_cpu_allocator();
      ACCEL_CHECK(!c.json_out.empty(), "bench precision: --single needs --json-out FILE.");
      auto r = run_single_precision(c.options, c.single);
      r.isolated = true;
      // Launched with several processes: rank 0 writes FILE, the others FILE.rank<i>.
      std::string path = c.json_out;
      if (const char* rank = std::getenv("RANK"); rank && std::string(rank) != "0") {
        path += ".rank";
        path += rank;
      }
      std::ofstream out(path);
      out << result_to_json(r) << "\n";
      ACCEL_CHECK(out.good(), "bench precision: cannot write ", path, ".");
      return 0;
    }
    auto opts = c.options;
    opts.isolate(!c.in_process);
    auto report = run_precision_benchmark(opts);
    std::printf("%s", report.to_table().c_str());
    if (!c.json.empty()) {
      std::ofstream out(c.json);
      out << report.to_json() << "\n";
      ACCEL_CHECK(out.good(), "bench precision: cannot write --json ", c.json, ".");
      std::printf("JSON: %s\n", c.json.c_str());
    }
    if (!c.png.empty()) {
      const auto why = write_chart_png(report, c.png);
      if (why.empty())
        std::printf("chart: %s\n", c.png.c_str());
      else
        std::fprintf(stderr, "accel bench precision: no chart: %s\n", why.c_str());
    }
    bool any = false;
    for (const auto& r : report.results) any = any || r.ran;
    return any ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "accel bench precision: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace accel::bench
