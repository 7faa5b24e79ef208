// A training loop against the installed accel: a linear model learns y = sum(x) in 30 SGD steps on
// the CPU. Prints the first and last loss; exit code 0 when the loss went down.
#include <accel/accel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

#include <cstdio>

static_assert(__cplusplus >= 202002L, "accel::accel should have raised the C++ standard to 20");

int main() {
  accel::Accelerator acc(accel::AcceleratorOptions().cpu(true));
  torch::manual_seed(0);
  auto model = acc.prepare(torch::nn::Linear(4, 1));
  auto opt = acc.prepare(torch::optim::SGD(model->parameters(), 0.05));
  const auto x = torch::randn({16, 4});
  const auto y = x.sum(1, true);
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    auto loss = torch::nn::functional::mse_loss(model->forward(x), y);
    acc.backward(loss);
    opt->step();
    opt->zero_grad();
    (step == 0 ? first : last) = loss.item<double>();
  }
  std::printf("consumer: loss %.4f -> %.4f\n", first, last);
  return last < first ? 0 : 1;
}
