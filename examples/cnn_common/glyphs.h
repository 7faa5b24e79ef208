// What the two CNN examples share: a small dataset of 28 x 28 glyph images in LibTorch's
// torch::data style (so the examples run without downloading MNIST), and the convolutional
// network of LibTorch's MNIST example. Plain LibTorch, nothing from accel.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace glyphs {

// 10 classes; image i of class i % 10 is that class's stroke pattern, shifted by up to 3 pixels
// and covered in noise, both drawn from a generator seeded by (seed, i): the same images on every
// run and every process.
class Glyphs : public torch::data::datasets::Dataset<Glyphs> {
 public:
  Glyphs(int64_t size, uint64_t seed) : size_(size), seed_(seed) {}

  torch::data::Example<> get(size_t index) override {
    const int64_t label = static_cast<int64_t>(index) % 10;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003 + index);
    auto image = torch::rand({1, 28, 28}, gen) * 0.4;  // (1, 28, 28) noise
    const int64_t dx = torch::randint(-3, 4, {1}, gen).item<int64_t>();
    const int64_t dy = torch::randint(-3, 4, {1}, gen).item<int64_t>();
    // Strokes: class bit b (of 4) draws bar b: top, bottom, left, right; classes 8 and 9 add a cross.
    auto bar = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
      image.slice(1, std::clamp<int64_t>(r0 + dy, 0, 28), std::clamp<int64_t>(r1 + dy, 0, 28))
          .slice(2, std::clamp<int64_t>(c0 + dx, 0, 28), std::clamp<int64_t>(c1 + dx, 0, 28))
          .fill_(1.0);
    };
    const int64_t code = label + 1;
    if (code & 1) bar(5, 8, 6, 22);
    if (code & 2) bar(20, 23, 6, 22);
    if (code & 4) bar(6, 22, 5, 8);
    if (code & 8) bar(6, 22, 20, 23);
    if (label >= 8) bar(13, 15, 6, 22);
    return {image, torch::tensor(label)};
  }

  torch::optional<size_t> size() const override { return static_cast<size_t>(size_); }

 private:
  int64_t size_;
  uint64_t seed_;
};

// LibTorch's MNIST example network: two convolutions, dropout, two fully connected layers.
struct Net : torch::nn::Module {
  Net()
      : conv1(torch::nn::Conv2dOptions(1, 10, /*kernel_size=*/5)),
        conv2(torch::nn::Conv2dOptions(10, 20, /*kernel_size=*/5)),
        fc1(320, 50),
        fc2(50, 10) {
    register_module("conv1", conv1);
    register_module("conv2", conv2);
    register_module("conv2_drop", conv2_drop);
    register_module("fc1", fc1);
    register_module("fc2", fc2);
  }

  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(torch::max_pool2d(conv1->forward(x), 2));                       // (B, 10, 12, 12)
    x = torch::relu(torch::max_pool2d(conv2_drop->forward(conv2->forward(x)), 2));  // (B, 20, 4, 4)
    x = x.view({-1, 320});                                                          // (B, 320)
    x = torch::relu(fc1->forward(x));                                               // (B, 50)
    x = torch::dropout(x, /*p=*/0.5, /*train=*/is_training());
    x = fc2->forward(x);                      // (B, 10)
    return torch::log_softmax(x, /*dim=*/1);  // (B, 10)
  }

  torch::nn::Conv2d conv1;
  torch::nn::Conv2d conv2;
  torch::nn::Dropout2d conv2_drop;
  torch::nn::Linear fc1;
  torch::nn::Linear fc2;
};

}  // namespace glyphs
