// The basic example's loop in plain LibTorch. Compare with train_accel.cpp:
//   diff examples/basic/train_plain.cpp examples/basic/train_accel.cpp
#include "common.h"

#include <torch/torch.h>

namespace basic {

Result train_plain(const Args& args) {
  torch::manual_seed(0);
  auto model = toy::Net();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(2e-3));
  auto [x, y] = toy::make_data(args.samples, 1);
  std::vector<std::vector<torch::Tensor>> data;  // batches of (x, y)
  for (int64_t i = 0; i < args.samples; i += args.batch_size)
    data.push_back({x.narrow(0, i, std::min(args.batch_size, args.samples - i)),
                    y.narrow(0, i, std::min(args.batch_size, args.samples - i))});
  Result r;
  int64_t steps = 0, seen = 0;
  auto t0 = Clock::now();
  for (int epoch = 0; epoch < args.epochs; ++epoch) {
    double sum = 0;
    int n = 0;
    for (auto& batch : data) {
      auto loss = torch::cross_entropy_loss(model->forward(batch[0]), batch[1]);
      loss.backward();
      opt.step();
      opt.zero_grad();
      sum += loss.item<double>();
      ++n, ++steps, seen += batch[0].size(0);
    }
    r.final_loss = sum / n;
    if (!args.quiet) std::printf("[plain] epoch %d loss %.4f\n", epoch, r.final_loss);
  }
  double s = seconds(t0, Clock::now());
  r.samples_per_s = seen / s;
  r.step_ms = 1000.0 * s / steps;
  return r;
}

}  // namespace basic
