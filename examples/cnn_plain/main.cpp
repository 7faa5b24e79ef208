// LibTorch's MNIST-style CNN trainer (a torch::data dataset with Normalize and Stack transforms,
// make_data_loader, train() and test() taking the model as Net& and the optimizer as
// torch::optim::Optimizer&), on glyph images. examples/cnn_plain is the plain LibTorch program,
// examples/cnn_accel the same program with accel; the difference is the whole port:
//   diff examples/cnn_plain/main.cpp examples/cnn_accel/main.cpp   (README, "Porting a LibTorch program")
//
// Build: cmake --build build --target cnn_plain cnn_accel   (bash scripts/setup.sh builds both)
// Run:   build/bin/cnn_plain [epochs=2] [training images=6000]
//        build/bin/accel launch --num_processes 2 --mixed_precision bf16 build/bin/cnn_accel [epochs]
//        [images]
#include "../cnn_common/glyphs.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

const int64_t kTrainBatchSize = 64;
const int64_t kTestBatchSize = 1000;
const int64_t kLogInterval = 10;

template <typename DataLoader>
void train(size_t epoch, glyphs::Net& model, torch::Device device, DataLoader& data_loader,
           torch::optim::Optimizer& optimizer, size_t dataset_size) {
  model.train();
  size_t batch_idx = 0;
  for (auto& batch : data_loader) {
    auto data = batch.data.to(device), targets = batch.target.to(device);
    optimizer.zero_grad();
    auto output = model.forward(data);
    auto loss = torch::nll_loss(output, targets);
    AT_ASSERT(!std::isnan(loss.template item<float>()));
    loss.backward();
    optimizer.step();
    if (batch_idx++ % kLogInterval == 0) {
      std::printf("\rTrain Epoch: %zu [%5zu/%5zu] Loss: %.4f", epoch, batch_idx * batch.data.size(0),
                  dataset_size, loss.template item<float>());
      std::fflush(stdout);
    }
  }
}

template <typename DataLoader>
void test(glyphs::Net& model, torch::Device device, DataLoader& data_loader, size_t dataset_size) {
  torch::NoGradGuard no_grad;
  model.eval();
  double test_loss = 0;
  int64_t correct = 0;
  for (const auto& batch : data_loader) {
    auto data = batch.data.to(device), targets = batch.target.to(device);
    auto output = model.forward(data);
    test_loss += torch::nll_loss(output, targets, {}, torch::Reduction::Sum).template item<float>();
    correct += output.argmax(1).eq(targets).sum().template item<int64_t>();
  }
  std::printf("\nTest set: Average loss: %.4f | Accuracy: %.3f\n", test_loss / dataset_size,
              static_cast<double>(correct) / dataset_size);
}

int main(int argc, char** argv) {
  const size_t epochs = argc > 1 ? std::atoi(argv[1]) : 2;
  const int64_t train_images = argc > 2 ? std::atoll(argv[2]) : 6000;
  torch::manual_seed(1);
  torch::Device device(torch::cuda::is_available() ? torch::kCUDA : torch::kCPU);
  auto model = std::make_shared<glyphs::Net>();
  model->to(device);

  auto train_dataset = glyphs::Glyphs(train_images, /*seed=*/1)
                           .map(torch::data::transforms::Normalize<>(0.25, 0.35))
                           .map(torch::data::transforms::Stack<>());
  const size_t train_dataset_size = train_dataset.size().value();
  auto train_loader = torch::data::make_data_loader<torch::data::samplers::RandomSampler>(
      std::move(train_dataset), kTrainBatchSize);
  auto test_dataset = glyphs::Glyphs(1000, /*seed=*/2)
                          .map(torch::data::transforms::Normalize<>(0.25, 0.35))
                          .map(torch::data::transforms::Stack<>());
  const size_t test_dataset_size = test_dataset.size().value();
  auto test_loader = torch::data::make_data_loader(std::move(test_dataset), kTestBatchSize);

  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.5));
  for (size_t epoch = 1; epoch <= epochs; ++epoch) {
    train(epoch, *model, device, *train_loader, *optimizer, train_dataset_size);
    test(*model, device, *test_loader, test_dataset_size);
  }
}
