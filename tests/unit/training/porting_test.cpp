// What a LibTorch program ported to accel relies on: a torch::data dataset (with .map()
// transforms) prepared as a sharded loader; autocast on every call path of the model (a plain
// Net&, the unwrapped module) for the span of the training step; the prepared optimizer used
// through torch::optim::Optimizer& with its accumulation and fp16-skip semantics; one warning
// when a backward saw no autocast under mixed precision; prepare() rejecting other types at
// compile time.
#include "accel/accelerator.h"

#include "support/compare.h"

#include <gtest/gtest.h>
#include <torch/data/datasets/base.h>
#include <torch/data/datasets/map.h>
#include <torch/data/samplers/sequential.h>
#include <torch/data/transforms/lambda.h>
#include <torch/data/transforms/stack.h>
#include <torch/data/transforms/tensor.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/schedulers/step_lr.h>
#include <torch/optim/sgd.h>

#include <cstdio>
#include <limits>

using namespace accel;

namespace {

// A torch::data dataset: sample i is (i * ones(4), i % 3).
class Numbers : public torch::data::datasets::Dataset<Numbers> {
 public:
  explicit Numbers(int64_t n) : n_(n) {}
  torch::data::Example<> get(size_t i) override {
    return {torch::full({4}, static_cast<float>(i)), torch::tensor(static_cast<int64_t>(i % 3))};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(n_); }

 private:
  int64_t n_;
};

struct NetImpl : torch::nn::Module {
  NetImpl() : fc(register_module("fc", torch::nn::Linear(4, 3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc(x); }
  torch::nn::Linear fc;
};
TORCH_MODULE(Net);

// The user's own code: knows nothing about accel.
at::Tensor plain_forward(NetImpl& net, const at::Tensor& x) {
  return net.forward(x);
}

// The user's own training step, written against LibTorch's Optimizer interface.
void plain_step(torch::optim::Optimizer& opt, Accelerator& acc, const at::Tensor& loss) {
  opt.zero_grad();  // through the base class: also on accumulation micro-steps
  acc.backward(loss);
  opt.step();
}

}  // namespace

static_assert(accel::detail::Preparable<Net>);
static_assert(accel::detail::Preparable<std::shared_ptr<NetImpl>>);
static_assert(accel::detail::Preparable<torch::optim::SGD>);
static_assert(accel::detail::Preparable<std::shared_ptr<data::DataLoader<int>>>);
static_assert(!accel::detail::Preparable<int>, "prepare(int) must be a compile-time error");
static_assert(!accel::detail::Preparable<std::vector<at::Tensor>>);

TEST(Porting, TorchDataDatasetWithTransformsBecomesAnAccelLoader) {
  Accelerator acc(AcceleratorOptions().cpu(true), EnvMap{});
  auto dataset =
      Numbers(10)
          .map(torch::data::transforms::Lambda<torch::data::Example<>>([](torch::data::Example<> e) {
            return torch::data::Example<>{e.data * 2, e.target};
          }))
          .map(torch::data::transforms::Stack<>());
  auto loader = acc.prepare<torch::data::samplers::SequentialSampler>(std::move(dataset), 4);
  std::vector<int64_t> sizes;
  std::vector<float> firsts;
  for (auto& batch : *loader) {
    sizes.push_back(batch.data.size(0));
    EXPECT_EQ(batch.data.size(1), 4);
    firsts.push_back(batch.data[0][0].item<float>());
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
  EXPECT_EQ(firsts, (std::vector<float>{0.0f, 8.0f, 16.0f}));  // in order, transformed (x2)
  // RandomSampler (make_data_loader's default) shuffles, the same way for the same seed.
  auto shuffled =
      acc.prepare(Numbers(10).map(torch::data::transforms::Stack<>()), torch::data::DataLoaderOptions(10));
  at::Tensor order;
  for (auto& b : *shuffled) order = b.target;
  EXPECT_EQ(order.numel(), 10);
  EXPECT_FALSE(at::equal(order, at::arange(10) % 3)) << "RandomSampler should shuffle";
}

TEST(Porting, MakeLoaderDeducesTheBatchTypeFromALambda) {
  auto loader = data::make_loader(
      5, [](const data::Indices& idx) { return static_cast<int64_t>(idx.size()); },
      data::DataLoaderOptions(2));
  int64_t total = 0;
  for (int64_t n : *loader) total += n;
  EXPECT_EQ(total, 5);
}

TEST(Porting, PlainNetReferenceComputesInBf16DuringTheStep) {
  Accelerator acc(AcceleratorOptions().cpu(true).mixed_precision("bf16"), EnvMap{});
  auto model = acc.prepare(Net());
  auto loader =
      acc.prepare(Numbers(6).map(torch::data::transforms::Stack<>()), torch::data::DataLoaderOptions(3));
  int batches = 0;
  for (auto& batch : *loader) {
    // The loop hands out a batch: the step's autocast is on for any call path.
    NetImpl& net = *model;
    EXPECT_EQ(plain_forward(net, batch.data).scalar_type(), at::kBFloat16) << "the Net& path ran in fp32";
    EXPECT_EQ(model.module()->forward(batch.data).scalar_type(), at::kBFloat16);
    EXPECT_EQ(model(batch.data).scalar_type(), at::kFloat) << "a prepared model's call returns fp32";
    acc.backward(model(batch.data).sum());
    EXPECT_EQ(at::mm(batch.data, batch.data.t()).scalar_type(), at::kFloat)
        << "autocast must end at backward";
    ++batches;
  }
  EXPECT_EQ(batches, 2);
  // After the loop, nothing runs under autocast.
  EXPECT_EQ(plain_forward(*model, at::ones({1, 4})).scalar_type(), at::kFloat);
}

TEST(Porting, OptimizerThroughTheBaseClassKeepsAccumulationSemantics) {
  // The user's loop (zero_grad before each backward, through Optimizer&) with accumulation 2
  // reaches the same weights as accel's own loop.
  auto run = [](bool plain) {
    Accelerator acc(AcceleratorOptions().cpu(true).gradient_accumulation_steps(2), EnvMap{});
    torch::manual_seed(4);
    auto model = acc.prepare(Net());
    auto opt =
        acc.prepare(torch::optim::SGD(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9)));
    auto loader = acc.prepare(Numbers(8).map(torch::data::transforms::Stack<>()),
                              data::DataLoaderOptions(2));  // 4 micro-steps, 2 optimizer steps
    for (auto& batch : *loader) {
      auto sync = acc.accumulate(model);
      auto loss = torch::cross_entropy_loss(model(batch.data / 8.0), batch.target);
      if (plain) {
        plain_step(*opt, acc, loss);
      } else {
        acc.backward(loss);
        opt->step();
        opt->zero_grad();
      }
    }
    return acc.get_state_dict(model);
  };
  auto a = run(true), b = run(false);
  for (auto& [k, v] : b) EXPECT_TRUE(accel::testing::tensors_close(a.at(k), v, 1e-6, 1e-7, k));
  // And the schedulers LibTorch builds on an Optimizer& work on the prepared one.
  Accelerator acc(AcceleratorOptions().cpu(true), EnvMap{});
  auto model = acc.prepare(Net());
  auto opt = acc.prepare(torch::optim::SGD(model->parameters(), 0.5));
  torch::optim::StepLR sched(*opt, 1, 0.1);
  sched.step();  // LibTorch's StepLR decays from its second step on
  sched.step();
  EXPECT_NEAR(opt->param_groups()[0].options().get_lr(), 0.05, 1e-12);
}

TEST(Porting, Fp16SkipHoldsThroughTheBaseClass) {
  Accelerator acc(AcceleratorOptions().cpu(true).mixed_precision("fp16"), EnvMap{});
  auto model = acc.prepare(Net());
  auto opt = acc.prepare(torch::optim::SGD(model->parameters(), 0.1));
  auto before = acc.get_state_dict(model);
  torch::optim::Optimizer& base = *opt;
  acc.backward(model(at::full({1, 4}, std::numeric_limits<float>::infinity())).sum());
  base.step();
  EXPECT_TRUE(opt->step_was_skipped());
  for (auto& [k, v] : acc.get_state_dict(model)) EXPECT_TRUE(at::equal(v, before.at(k))) << k << " changed";
}

TEST(Porting, BackwardWithoutAutocastWarnsOnce) {
  std::FILE* log = std::tmpfile();
  logger().set_stream(log);
  {
    Accelerator acc(AcceleratorOptions().cpu(true).mixed_precision("bf16"), EnvMap{});
    auto model = acc.prepare(Net());
    // A raw module call outside any step: nothing turned autocast on.
    for (int i = 0; i < 2; ++i) acc.backward(model.module()->forward(at::ones({2, 4})).sum());
  }
  logger().set_stream(stderr);
  std::rewind(log);
  std::string text;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), log)) text += buf;
  std::fclose(log);
  size_t count = 0;
  for (size_t p = text.find("ran without autocast"); p != std::string::npos;
       p = text.find("ran without autocast", p + 1))
    ++count;
  EXPECT_EQ(count, 1u) << text;
}
