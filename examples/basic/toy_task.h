// The basic example's task, shared with the tests: classify 64-dimensional Gaussian points by a
// fixed random linear teacher (8 classes) with a 3-layer MLP.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>

namespace toy {

struct NetImpl : torch::nn::Module {
  NetImpl(int64_t in = 64, int64_t hidden = 256, int64_t classes = 8)
      : fc1(register_module("fc1", torch::nn::Linear(in, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, hidden))),
        fc3(register_module("fc3", torch::nn::Linear(hidden, classes))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::nn::functional::gelu(fc1(x));  // (B, H)
    h = torch::nn::functional::gelu(fc2(h));       // (B, H)
    return fc3(h);                                 // (B, C)
  }

  torch::nn::Linear fc1, fc2, fc3;
};
TORCH_MODULE(Net);

/// n points and their labels, deterministic in `seed`.
inline std::pair<torch::Tensor, torch::Tensor> make_data(int64_t n, uint64_t seed, int64_t in = 64,
                                                         int64_t classes = 8) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto teacher_gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  torch::Tensor teacher = at::randn({in, classes}, teacher_gen);
  torch::Tensor x = at::randn({n, in}, gen);
  torch::Tensor y = x.matmul(teacher).argmax(1);
  return {x, y};
}

}  // namespace toy
