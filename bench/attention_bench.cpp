// Training attention on the CPU: accel's kernel (precision/attention.h) against torch's
// at::scaled_dot_product_attention, forward + backward with dropout, fp32 and bf16 (autocast).
// Reports the median time of forward + backward and the bytes kept alive for backward (tensor
// bytes held after the forward minus before, counted by accel's counting allocator).
//
// Build:  cmake --build build --target bench_attention_bench
// Run:    OMP_NUM_THREADS=2 build/bin/bench_attention_bench [--batch 16] [--heads 12] [--seq 256]
//             [--head_dim 32] [--dropout 0.1] [--reps 7] [--threads 2]
#include <accel/bench/memory.h>
#include <accel/precision/attention.h>
#include <accel/precision/autocast.h>
#include <accel/precision/cpu_compute.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Args {
  int64_t batch = 16, heads = 12, seq = 256, head_dim = 32, reps = 7, threads = 0;
  double dropout = 0.1;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::printf(
          "usage: bench_attention_bench [--batch B] [--heads N] [--seq T] [--head_dim D] "
          "[--dropout P] [--reps R] [--threads K]\n");
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_attention_bench: %s needs a value (see --help)\n", k.c_str());
      std::exit(2);
    }
    std::string v = argv[++i];
    if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--heads")
      a.heads = std::stoll(v);
    else if (k == "--seq")
      a.seq = std::stoll(v);
    else if (k == "--head_dim")
      a.head_dim = std::stoll(v);
    else if (k == "--dropout")
      a.dropout = std::stod(v);
    else if (k == "--reps")
      a.reps = std::stoll(v);
    else if (k == "--threads")
      a.threads = std::stoll(v);
    else {
      std::fprintf(stderr, "bench_attention_bench: unknown option %s (see --help)\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

struct Measured {
  double median_ms;
  double saved_mib;
};

Measured measure(const Args& a, bool ours, bool bf16) {
  accel::set_cpu_memory_efficient_attention(ours);
  // BERT's layout: (B, T, N·D) projections viewed as (B, N, T, D); a key-padding mask.
  auto proj = [&] { return torch::randn({a.batch, a.seq, a.heads * a.head_dim}).requires_grad_(true); };
  auto xq = proj(), xk = proj(), xv = proj();
  auto mask = torch::ones({a.batch, 1, 1, a.seq}, torch::kBool);
  mask.index_put_({torch::indexing::Slice(0, a.batch / 2), 0, 0, torch::indexing::Slice(a.seq * 3 / 4)},
                  false);
  auto heads = [&](const torch::Tensor& x) {
    return x.view({a.batch, a.seq, a.heads, a.head_dim}).transpose(1, 2);
  };
  std::vector<double> ms;
  double saved = 0;
  for (int64_t r = 0; r < a.reps + 1; ++r) {
    const int64_t before = accel::bench::cpu_tensor_bytes_current();
    const auto t0 = std::chrono::steady_clock::now();
    torch::Tensor out;
    {
      std::optional<accel::AutocastGuard> guard;
      if (bf16) guard.emplace(c10::kCPU, at::kBFloat16);
      torch::Tensor q = heads(xq), k = heads(xk), v = heads(xv);
      if (bf16) q = q.to(at::kBFloat16), k = k.to(at::kBFloat16), v = v.to(at::kBFloat16);
      out = accel::scaled_dot_product_attention(q, k, v, mask, a.dropout);
    }
    saved = static_cast<double>(accel::bench::cpu_tensor_bytes_current() - before) / (1 << 20);
    out.to(torch::kFloat).sum().backward();
    const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) ms.push_back(t);  // the first is warm-up
    xq.mutable_grad().reset(), xk.mutable_grad().reset(), xv.mutable_grad().reset();
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], saved};
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  accel::bench::install_counting_cpu_allocator();
  if (a.threads > 0) torch::set_num_threads(static_cast<int>(a.threads));
  torch::manual_seed(0);
  // bf16 as the Accelerator runs it on this CPU (fp32 compute where bf16 instructions are missing).
  accel::set_cpu_autocast_compute(at::kBFloat16,
                                  accel::resolve_cpu_autocast_compute(at::kBFloat16, std::nullopt));
  std::printf(
      "attention fwd+bwd, batch %lld, heads %lld, seq %lld, head_dim %lld, dropout %.2f, %d threads, "
      "median of %lld\n",
      static_cast<long long>(a.batch), static_cast<long long>(a.heads), static_cast<long long>(a.seq),
      static_cast<long long>(a.head_dim), a.dropout, torch::get_num_threads(),
      static_cast<long long>(a.reps));
  std::printf("%-6s %-6s %10s %12s\n", "dtype", "kernel", "ms", "saved MiB");
  for (bool bf16 : {false, true}) {
    Measured t = measure(a, false, bf16), o = measure(a, true, bf16);
    std::printf("%-6s %-6s %10.1f %12.1f\n", bf16 ? "bf16" : "fp32", "torch", t.median_ms, t.saved_mib);
    std::printf("%-6s %-6s %10.1f %12.1f   (time x%.2f, saved memory x%.3f)\n", bf16 ? "bf16" : "fp32",
                "accel", o.median_ms, o.saved_mib, o.median_ms / t.median_ms, o.saved_mib / t.saved_mib);
  }
  return 0;
}
