// Wrapper overhead of accel on a single process: the same training step (MLP, AdamW, CPU, fp32)
// run as a plain LibTorch loop and through accel (prepared model/optimizer, acc.backward,
// accumulate guard), on identical pre-made batches, alternating blocks; prints the median step
// time of each and the ratio accel/plain. Target: <= 1.02.
//
// Build: bash scripts/setup.sh   (target bench_accel_overhead)
// Run:   build/bin/bench_accel_overhead [--hidden 256] [--batch 64] [--steps 200] [--rounds 7]
//        [--fused 0|1]   (1: accel may use the fused AdamW kernel; 0: the same torch AdamW as plain)
#include <accel/accel.h>
#include <torch/torch.h>

#include "../examples/basic/toy_task.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t hidden = 256, batch = 64, steps = 200, rounds = 7;
  bool fused = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int64_t v = std::atoll(argv[i + 1]);
    if (a == "--hidden") hidden = v;
    else if (a == "--batch") batch = v;
    else if (a == "--steps") steps = v;
    else if (a == "--rounds") rounds = v;
    else if (a == "--fused") fused = v != 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  auto [x, y] = toy::make_data(batch * 16, 1);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
  for (int64_t i = 0; i < 16; ++i) batches.emplace_back(x.narrow(0, i * batch, batch), y.narrow(0, i * batch, batch));

  torch::manual_seed(0);
  toy::Net plain_model(64, hidden, 8);
  torch::optim::AdamW plain_opt(plain_model->parameters(), torch::optim::AdamWOptions(1e-3));

  accel::Accelerator acc(accel::AcceleratorOptions().fused_optimizer(fused));
  torch::manual_seed(0);
  auto model = acc.prepare(toy::Net(64, hidden, 8));
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-3)));

  auto plain_block = [&] {
    auto t0 = Clock::now();
    for (int64_t s = 0; s < steps; ++s) {
      auto& [bx, by] = batches[s % batches.size()];
      auto loss = torch::cross_entropy_loss(plain_model->forward(bx), by);
      loss.backward();
      plain_opt.step();
      plain_opt.zero_grad();
    }
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / steps;
  };
  auto accel_block = [&] {
    auto t0 = Clock::now();
    for (int64_t s = 0; s < steps; ++s) {
      auto& [bx, by] = batches[s % batches.size()];
      auto sync = acc.accumulate(model);
      auto loss = torch::cross_entropy_loss(model->forward(bx), by);
      acc.backward(loss);
      opt->step();
      opt->zero_grad();
    }
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / steps;
  };
  plain_block();  // warm-up
  accel_block();
  std::vector<double> p, a, ratios;
  for (int64_t r = 0; r < rounds; ++r) {
    double tp = plain_block();
    double ta = accel_block();
    p.push_back(tp);
    a.push_back(ta);
    ratios.push_back(ta / tp);
  }
  std::printf("threads %d, MLP 64-%ld-%ld-8, batch %ld, %ld steps x %ld rounds, fused AdamW: %s\n",
              torch::get_num_threads(), static_cast<long>(hidden), static_cast<long>(hidden),
              static_cast<long>(batch), static_cast<long>(steps), static_cast<long>(rounds),
              opt->fused() ? "yes" : "no");
  std::printf("plain LibTorch step: median %.4f ms\n", median(p));
  std::printf("accel step:          median %.4f ms\n", median(a));
  std::printf("accel / plain: median of per-round ratios %.4f (min %.4f, max %.4f)\n", median(ratios),
              *std::min_element(ratios.begin(), ratios.end()), *std::max_element(ratios.begin(), ratios.end()));
  return 0;
}
