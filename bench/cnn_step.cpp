// One training step of a small MNIST-style CNN on the CPU, fp32 against bf16 under the
// Accelerator's autocast: conv 1->32 3x3, conv 32->64 3x3, max-pool 2, dropout 0.25,
// fc 9216->128, fc 128->10, batch 64 of 1x28x28 images, SGD. The variants run in alternating blocks
// in one process on identical pre-made batches; the program prints the median step time of each
// and its ratio to fp32. bf16 variants: `auto` (what the Accelerator picks for this CPU, see
// precision/cpu_compute.h), `fp32-compute` (convolutions and linears computed in fp32 on bf16
// inputs and outputs) and `native` (torch's bf16 kernels).
//
// Build: cmake --build build --target bench_cnn_step
// Run:   build/bin/bench_cnn_step [--steps 10] [--rounds 7] [--batch 64] [--threads 0]
//                                  [--skip_native 1]   (leave out the `native` variant)
// A CPU without bf16 instructions can be imitated on one that has them (then `auto` still picks
// native, so read the fp32-compute line):
//        ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 build/bin/bench_cnn_step
#include <accel/accel.h>
#include <accel/precision/cpu_compute.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct NetImpl : torch::nn::Module {
  NetImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3)))),
        dropout(register_module("dropout", torch::nn::Dropout(0.25))),
        fc1(register_module("fc1", torch::nn::Linear(9216, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(conv1(x));    // (B, 32, 26, 26)
    x = torch::relu(conv2(x));    // (B, 64, 24, 24)
    x = torch::max_pool2d(x, 2);  // (B, 64, 12, 12)
    x = dropout(x);
    x = torch::flatten(x, 1);  // (B, 9216)
    x = torch::relu(fc1(x));   // (B, 128)
    return fc2(x);             // (B, 10)
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Dropout dropout;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Net);

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

const char* mode_name(accel::CpuAutocastCompute m) {
  return m == accel::CpuAutocastCompute::kFp32 ? "fp32-compute" : "native";
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 10, rounds = 7, batch = 64, threads = 0, skip_native = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: bench_cnn_step [--steps N] [--rounds R] [--batch B] [--threads T] [--skip_native 0|1]\n");
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_cnn_step: %s needs a value (see --help)\n", a.c_str());
      return 2;
    }
    const int64_t v = std::atoll(argv[++i]);
    if (a == "--steps")
      steps = v;
    else if (a == "--rounds")
      rounds = v;
    else if (a == "--batch")
      batch = v;
    else if (a == "--threads")
      threads = v;
    else if (a == "--skip_native")
      skip_native = v;
    else {
      std::fprintf(stderr, "bench_cnn_step: unknown option %s (see --help)\n", a.c_str());
      return 2;
    }
  }
  if (steps < 1 || rounds < 1 || batch < 1 || threads < 0) {
    std::fprintf(stderr, "bench_cnn_step: --steps, --rounds and --batch must be >= 1, --threads >= 0\n");
    return 2;
  }
  try {
    if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
    torch::manual_seed(0);
    std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
    for (int i = 0; i < 8; ++i)
      batches.emplace_back(torch::randn({batch, 1, 28, 28}), torch::randint(0, 10, {batch}));

    accel::Accelerator fp32_acc(accel::AcceleratorOptions().cpu(true));
    accel::Accelerator bf16_acc(accel::AcceleratorOptions().cpu(true).mixed_precision("bf16"));
    const auto auto_mode = accel::cpu_autocast_compute(torch::kBFloat16);
    torch::manual_seed(1);
    auto fp32_model = fp32_acc.prepare(Net());
    auto fp32_opt = fp32_acc.prepare(torch::optim::SGD(fp32_model->parameters(), 0.01));
    torch::manual_seed(1);
    auto bf16_model = bf16_acc.prepare(Net());
    auto bf16_opt = bf16_acc.prepare(torch::optim::SGD(bf16_model->parameters(), 0.01));

    struct Variant {
      std::string name;
      bool bf16;
      accel::CpuAutocastCompute mode;
      std::vector<double> ms;
    };
    std::vector<Variant> variants{
        {"fp32", false, auto_mode, {}},
        {std::string("bf16 auto (") + mode_name(auto_mode) + ")", true, auto_mode, {}},
        {"bf16 fp32-compute", true, accel::CpuAutocastCompute::kFp32, {}},
    };
    if (skip_native == 0) variants.push_back({"bf16 native", true, accel::CpuAutocastCompute::kNative, {}});
    // Mean step time of `n` steps of variant `v`, in ms.
    auto block = [&](const Variant& v, int64_t n) {
      accel::set_cpu_autocast_compute(torch::kBFloat16, v.mode);
      auto& acc = v.bf16 ? bf16_acc : fp32_acc;
      auto& model = v.bf16 ? bf16_model : fp32_model;
      auto& opt = v.bf16 ? bf16_opt : fp32_opt;
      model->train();
      const auto t0 = Clock::now();
      for (int64_t s = 0; s < n; ++s) {
        const auto& [x, y] = batches[s % batches.size()];
        auto loss = torch::cross_entropy_loss(model->forward(x).to(torch::kFloat), y);
        acc.backward(loss);
        opt->step();
        opt->zero_grad();
      }
      return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / static_cast<double>(n);
    };
    for (const auto& v : variants) block(v, 3);  // warm-up: kernels, allocator, weight casts
    for (int64_t r = 0; r < rounds; ++r) {
      // Rotate the order each round so no variant always runs after the same one.
      for (size_t k = 0; k < variants.size(); ++k) {
        auto& v = variants[(k + static_cast<size_t>(r)) % variants.size()];
        v.ms.push_back(block(v, steps));
      }
    }
    accel::set_cpu_autocast_compute(torch::kBFloat16, auto_mode);

    const auto& cpu = accel::cpu_info();
    std::printf("CPU: %s, native bf16: %s, %d threads; batch %lld, %lld rounds x %lld steps\n",
                cpu.model_name.empty() ? "unknown" : cpu.model_name.c_str(),
                accel::cpu_has_native_bf16() ? "yes" : "no", torch::get_num_threads(),
                static_cast<long long>(batch), static_cast<long long>(rounds), static_cast<long long>(steps));
    const double base = median(variants[0].ms);
    std::printf("%-28s %12s %14s\n", "variant", "median ms", "ratio to fp32");
    for (const auto& v : variants) {
      const double m = median(v.ms);
      std::printf("%-28s %12.2f %14.2f\n", v.name.c_str(), m, m / base);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cnn_step: error: %s\n", e.what());
    return 1;
  }
}
