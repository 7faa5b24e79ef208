// The basic example's loop with accel. Compare with train_plain.cpp:
//   diff examples/basic/train_plain.cpp examples/basic/train_accel.cpp
#include "common.h"

#include <accel/accel.h>
#include <torch/torch.h>

namespace basic {

Result train_accel(const Args& args) {
  accel::Accelerator acc;  // precision etc. from `accel launch` (ACCELERATE_* variables)
  torch::manual_seed(0);
  auto model = acc.prepare(toy::Net());
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(2e-3)));
  auto [x, y] = toy::make_data(args.samples, 1);
  auto data = acc.prepare(accel::data::make_tensor_loader(
      {x, y},
      accel::data::DataLoaderOptions(args.batch_size)));
  Result r;
  int64_t steps = 0, seen = 0;
  auto t0 = Clock::now();
  for (int epoch = 0; epoch < args.epochs; ++epoch) {
    double sum = 0;
    int n = 0;
    for (auto& batch : *data) {
      auto loss = torch::cross_entropy_loss(model->forward(batch[0]), batch[1]);
      acc.backward(loss);
      opt->step();
      opt->zero_grad();
      sum += loss.item<double>();
      ++n, ++steps, seen += batch[0].size(0);
    }
    r.final_loss = sum / n;
    if (!args.quiet) acc.print("[accel ", accel::to_string(acc.mixed_precision()), "] epoch ", epoch, " loss ", r.final_loss);
  }
  double s = seconds(t0, Clock::now());
  r.samples_per_s = seen / s;
  r.step_ms = 1000.0 * s / steps;
  return r;
}

}  // namespace basic
