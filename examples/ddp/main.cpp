// Multi-process training with accel: the basic PyTorch-style loop made data-parallel. Every
// process trains on its own shard of the data; gradients are averaged across processes during
// backward; evaluation counts every example once with gather_for_metrics.
//
// Build:  bash scripts/setup.sh                     (builds build/bin/ddp)
// Run:    build/bin/accel launch --num_processes 2 build/bin/ddp
//         build/bin/accel launch --num_processes 2 --mixed_precision bf16 --gradient_accumulation_steps 2
//         build/bin/ddp build/bin/ddp                             (one process: the same program, unchanged)
#include <accel/accel.h>
#include <torch/torch.h>

#include "../basic/toy_task.h"

int main() {
  try {
    accel::Accelerator acc(
        accel::AcceleratorOptions().seed(0));  // rank, world size, precision: from `accel launch`
    auto model = acc.prepare(toy::Net());      // same weights on every rank; DDP hooks
    auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(2e-3)));
    auto [x, y] = toy::make_data(8192, 1);
    auto [vx, vy] = toy::make_data(2001, 2);
    auto train = acc.prepare(
        accel::data::make_tensor_loader({x, y}, accel::data::DataLoaderOptions(64).shuffle(true)));
    auto eval = acc.prepare(accel::data::make_tensor_loader({vx, vy}, accel::data::DataLoaderOptions(128)));
    for (int epoch = 0; epoch < 3; ++epoch) {
      model->train();
      double sum = 0;
      int n = 0;
      for (auto& batch : *train) {
        auto sync = acc.accumulate(model);  // gradients are exchanged on the last micro-step only
        auto loss = torch::cross_entropy_loss(model->forward(batch[0]), batch[1]);
        acc.backward(loss);
        opt->step();
        opt->zero_grad();
        sum += loss.item<double>();
        ++n;
      }
      // Mean training loss over all processes.
      double mean = acc.reduce(torch::full({1}, sum / n), "mean").item<double>();
      model->eval();
      torch::NoGradGuard no_grad;
      int64_t correct = 0, seen = 0;
      for (auto& batch : *eval) {
        auto pred = acc.gather_for_metrics(model->forward(batch[0]).argmax(1));
        auto label = acc.gather_for_metrics(batch[1]);
        correct += pred.eq(label).sum().item<int64_t>();
        seen += pred.size(0);
      }
      acc.print("epoch ", epoch, ": train loss ", mean, ", eval accuracy ", 100.0 * correct / seen, "% on ",
                seen, " examples (", acc.num_processes(), " process(es))");
    }
    acc.wait_for_everyone();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddp: error: %s\n", e.what());
    return 1;
  }
}
