// The single-process Accelerator: accumulation equivalence, loss scaling and skipped steps,
// scheduler stepping, clipping, autocast through a prepared model, fused AdamW.
#include "accel/accelerator.h"

#include "../../../examples/basic/toy_task.h"
#include "support/compare.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <limits>

using namespace accel;
using accel::testing::tensors_close;

namespace {

struct SmallImpl : torch::nn::Module {
  SmallImpl() : a(register_module("a", torch::nn::Linear(8, 16))), b(register_module("b", torch::nn::Linear(16, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) { return b(torch::tanh(a(x))); }
  torch::nn::Linear a, b;
};
TORCH_MODULE(Small);

Small make_small(uint64_t seed) {
  torch::manual_seed(seed);
  return Small();
}

std::vector<at::Tensor> grads_of(torch::nn::Module& m) {
  std::vector<at::Tensor> g;
  for (auto& p : m.parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  return g;
}

AcceleratorOptions opts() { return AcceleratorOptions().cpu(true); }

// A scheduler that counts its steps.
struct CountingScheduler {
  int* calls;
  void step() { ++*calls; }
};

}  // namespace

TEST(Accelerator, SingleProcessDefaults) {
  Accelerator acc(opts(), EnvMap{});
  EXPECT_EQ(acc.num_processes(), 1);
  EXPECT_TRUE(acc.is_main_process());
  EXPECT_TRUE(acc.device().is_cpu());
  EXPECT_EQ(acc.mixed_precision(), MixedPrecision::kNo);
  EXPECT_EQ(acc.scaler(), nullptr);
  EXPECT_TRUE(acc.sync_gradients());
}

TEST(Accelerator, EnvironmentConfiguresIt) {
  Accelerator acc(opts(), EnvMap{{"ACCELERATE_MIXED_PRECISION", "fp16"},
                                 {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4"}});
  EXPECT_EQ(acc.mixed_precision(), MixedPrecision::kFP16);
  EXPECT_EQ(acc.gradient_accumulation_steps(), 4);
  ASSERT_NE(acc.scaler(), nullptr);  // fp16 scales on CPU too
  EXPECT_THROW(Accelerator(opts(), EnvMap{{"ACCELERATE_MIXED_PRECISION", "fp8x"}}), accel::Error);
}

// k micro-steps of batch B == one step of batch k*B (gradients and weights, fp32, rtol 1e-5), and
// the optimizer and scheduler step exactly once per k.
class Accumulation : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(Accumulation, MicroStepsEqualOneLargeStep) {
  const auto [k, fused] = GetParam();
  const int64_t B = 4;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  at::Tensor x = at::randn({k * B, 8}, gen);
  at::Tensor y = at::randn({k * B, 1}, gen);

  // Reference: one step on the whole batch.
  Small ref = make_small(1);
  torch::optim::AdamW ref_opt(ref->parameters(), torch::optim::AdamWOptions(1e-2));
  torch::mse_loss(ref->forward(x), y).backward();
  auto ref_grads = grads_of(*ref);
  ref_opt.step();

  // accel: k micro-steps.
  Accelerator acc(opts().gradient_accumulation_steps(k).fused_optimizer(fused), EnvMap{});
  auto model = acc.prepare(make_small(1));
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-2)));
  EXPECT_EQ(opt->fused(), fused);
  int sched_calls = 0;
  auto sched = acc.prepare_scheduler(std::make_shared<CountingScheduler>(CountingScheduler{&sched_calls}));
  std::vector<at::Tensor> acc_grads;
  for (int i = 0; i < k; ++i) {
    auto sync = acc.accumulate(model);
    EXPECT_EQ(acc.sync_gradients(), i == k - 1);
    at::Tensor loss = torch::mse_loss(model->forward(x.narrow(0, i * B, B)), y.narrow(0, i * B, B));
    acc.backward(loss);
    if (acc.sync_gradients()) acc_grads = grads_of(*model);
    opt->step();
    sched->step();
    opt->zero_grad();
  }
  EXPECT_EQ(sched_calls, 1);
  auto ref_params = ref->parameters();
  auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(tensors_close(acc_grads[i], ref_grads[i], 1e-5, 1e-7, "grad " + std::to_string(i)));
    EXPECT_TRUE(tensors_close(params[i], ref_params[i], 1e-5, 1e-7, "weight " + std::to_string(i)));
    // Exactly one AdamW step happened.
    auto& st = static_cast<torch::optim::AdamWParamState&>(
        *opt->state().at(params[i].unsafeGetTensorImpl()));
    EXPECT_EQ(st.step(), 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Steps, Accumulation,
                         ::testing::Combine(::testing::Values(1, 2, 4), ::testing::Bool()));

TEST(Accelerator, LastBatchOfTheLoaderAlwaysSyncs) {
  Accelerator acc(opts().gradient_accumulation_steps(2), EnvMap{});
  auto model = acc.prepare(make_small(2));
  auto loader = acc.prepare(data::make_tensor_loader({at::randn({10, 8}), at::randn({10, 1})},
                                                     data::DataLoaderOptions(2)));
  std::vector<bool> syncs;
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (auto& batch : *loader) {
      auto sync = acc.accumulate(model);
      syncs.push_back(acc.sync_gradients());
      acc.backward(torch::mse_loss(model->forward(batch[0]), batch[1]));
    }
  }
  // 5 batches per epoch, k=2: micro-steps 2, 4 and the last (5th) sync; the counter restarts.
  EXPECT_EQ(syncs, (std::vector<bool>{false, true, false, true, true, false, true, false, true, true}));
}

TEST(Accelerator, Fp16InfSkipsStepHalvesScaleAndHoldsScheduler) {
  Accelerator acc(opts().mixed_precision("fp16"), EnvMap{});
  auto model = acc.prepare(make_small(3));
  auto opt = acc.prepare(torch::optim::SGD(model->parameters(), torch::optim::SGDOptions(0.1)));
  int sched_calls = 0;
  auto sched = acc.prepare_scheduler(std::make_shared<CountingScheduler>(CountingScheduler{&sched_calls}));
  at::Tensor x = at::randn({4, 8});
  at::Tensor y = at::randn({4, 1});
  std::vector<at::Tensor> before;
  for (auto& p : model->parameters()) before.push_back(p.detach().clone());

  acc.backward(torch::mse_loss(model->forward(x).to(at::kFloat), y));
  model->parameters()[0].mutable_grad()[0][0] = std::numeric_limits<float>::infinity();
  opt->step();
  sched->step();
  opt->zero_grad();
  EXPECT_TRUE(opt->step_was_skipped());
  EXPECT_TRUE(acc.optimizer_step_was_skipped());
  EXPECT_DOUBLE_EQ(acc.scaler()->get_scale(), 32768.0);
  EXPECT_EQ(sched_calls, 0);
  auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(at::equal(params[i], before[i]));

  acc.backward(torch::mse_loss(model->forward(x).to(at::kFloat), y));
  opt->step();
  sched->step();
  EXPECT_FALSE(acc.optimizer_step_was_skipped());
  EXPECT_EQ(sched_calls, 1);
  EXPECT_FALSE(at::equal(model->parameters()[0], before[0]));
}

TEST(Accelerator, ClipGradNormUnscalesFirst) {
  struct WImpl : torch::nn::Module {
    WImpl() { w = register_parameter("w", at::ones({3})); }
    torch::Tensor forward(const torch::Tensor& x) { return (w * x).sum(); }
    torch::Tensor w;
  };
  Accelerator acc(opts().mixed_precision("fp16"), EnvMap{});
  auto model = acc.prepare(std::make_shared<WImpl>());
  auto opt = acc.prepare(torch::optim::SGD(model->parameters(), torch::optim::SGDOptions(1.0)));
  at::Tensor x = at::tensor({3.0f, 4.0f, 0.0f});
  acc.backward(model->forward(x));
  EXPECT_FLOAT_EQ(model->w.grad()[0].item<float>(), 3.0f * 65536.0f);
  double norm = acc.clip_grad_norm_(model->parameters(), 1.0);
  EXPECT_NEAR(norm, 5.0, 1e-5);  // the true (unscaled) norm
  EXPECT_NEAR(model->w.grad().norm().item<float>(), 1.0, 1e-4);
  opt->step();  // must not unscale twice
  EXPECT_FALSE(opt->step_was_skipped());
  EXPECT_TRUE(tensors_close(model->w.detach(), at::tensor({1.0f - 0.6f, 1.0f - 0.8f, 1.0f}), 1e-5, 1e-5, "w"));
}

TEST(Accelerator, ClipGradValue) {
  Accelerator acc(opts(), EnvMap{});
  auto model = acc.prepare(make_small(4));
  acc.backward(model->forward(at::randn({4, 8}) * 100).sum());
  acc.clip_grad_value_(model->parameters(), 0.01);
  for (auto& p : model->parameters()) EXPECT_LE(p.grad().abs().max().item<float>(), 0.01f + 1e-7f);
}

TEST(Accelerator, PreparedForwardRunsUnderAutocast) {
  Accelerator acc(opts().mixed_precision("bf16"), EnvMap{});
  auto model = acc.prepare(make_small(5));
  at::Tensor x = at::randn({2, 8});
  EXPECT_EQ(at::mm(x, x.t()).scalar_type(), c10::kFloat);        // no step has started
  EXPECT_EQ(model->forward(x).scalar_type(), c10::kBFloat16);    // the module's own output
  EXPECT_EQ(model(x).scalar_type(), c10::kFloat);                // a call returns fp32, as Accelerate
  EXPECT_EQ(model.forward(x).scalar_type(), c10::kFloat);
  // The step's autocast covers every call path until the backward: the unwrapped module too.
  EXPECT_EQ(model.module()->forward(x).scalar_type(), c10::kBFloat16);
  acc.backward(model(x).sum());
  EXPECT_EQ(at::mm(x, x.t()).scalar_type(), c10::kFloat);  // off after the backward
  for (auto& p : model.module()->parameters()) EXPECT_EQ(p.scalar_type(), c10::kFloat);  // fp32 masters
  {
    auto g = acc.autocast();
    EXPECT_EQ(at::mm(x, x.t()).scalar_type(), c10::kBFloat16);
  }
  EXPECT_EQ(at::mm(x, x.t()).scalar_type(), c10::kFloat);
}

TEST(Accelerator, OutputConversionCanBeTurnedOff) {
  Accelerator acc(opts().mixed_precision("bf16").convert_outputs_to_fp32(false), EnvMap{});
  auto model = acc.prepare(make_small(5));
  EXPECT_EQ(model(at::randn({2, 8})).scalar_type(), c10::kBFloat16);
}

TEST(Accelerator, FusedAdamWMatchesTorchAdamW) {
  auto run = [](bool fused, bool amsgrad) {
    Accelerator acc(opts().fused_optimizer(fused), EnvMap{});
    auto model = acc.prepare(make_small(6));
    auto opt = acc.prepare(torch::optim::AdamW(
        model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.05).amsgrad(amsgrad)));
    EXPECT_EQ(opt->fused(), fused);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    for (int s = 0; s < 6; ++s) {
      at::Tensor x = at::randn({8, 8}, gen);
      acc.backward(model->forward(x).pow(2).mean());
      opt->step();
      opt->zero_grad();
    }
    std::vector<at::Tensor> out;
    for (auto& p : model->parameters()) out.push_back(p.detach().clone());
    return out;
  };
  for (bool amsgrad : {false, true}) {
    auto a = run(true, amsgrad);
    auto b = run(false, amsgrad);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(tensors_close(a[i], b[i], 1e-5, 1e-6, "param"));
  }
}

TEST(Accelerator, SingleProcessCollectivesPassThrough) {
  Accelerator acc(opts(), EnvMap{});
  at::Tensor t = at::arange(6).reshape({3, 2});
  EXPECT_TRUE(at::equal(acc.gather(t), t));
  EXPECT_EQ(acc.gather(at::scalar_tensor(3)).sizes(), (std::vector<int64_t>{1}));
  EXPECT_TRUE(at::equal(acc.reduce(t, "mean"), t));
  EXPECT_THROW(acc.reduce(t, "none"), accel::Error);
  acc.wait_for_everyone();
  std::vector<int> items{1, 2, 3, 4, 5};
  EXPECT_EQ(acc.split_between_processes(items), items);
  acc.set_trigger();
  EXPECT_TRUE(acc.check_trigger());
  EXPECT_FALSE(acc.check_trigger());
}

// The acceptance check for mixed precision: bf16 training of the basic example reaches the fp32
// loss. Tolerance: final training loss within 0.05 absolute or 10% relative of fp32's (bf16 has an
// 8-bit mantissa; over 300 steps the two runs drift but converge to the same plateau).
TEST(Accelerator, Bf16TrainingReachesFp32Loss) {
  auto train = [](const char* precision) {
    Accelerator acc(opts().mixed_precision(precision).seed(0), EnvMap{});
    torch::manual_seed(0);
    auto model = acc.prepare(toy::Net());
    auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(2e-3)));
    auto [x, y] = toy::make_data(2048, 1);
    auto loader = acc.prepare(data::make_tensor_loader({x, y}, data::DataLoaderOptions(64).shuffle(true)));
    double last = 0;
    int n = 0;
    for (int epoch = 0; epoch < 5; ++epoch) {
      double sum = 0;
      n = 0;
      for (auto& batch : *loader) {
        at::Tensor loss = torch::cross_entropy_loss(model->forward(batch[0]).to(at::kFloat), batch[1]);
        acc.backward(loss);
        opt->step();
        opt->zero_grad();
        sum += loss.item<double>();
        ++n;
      }
      last = sum / n;
    }
    return last;
  };
  const double fp32 = train("no");
  const double bf16 = train("bf16");
  const double fp16 = train("fp16");
  EXPECT_LT(fp32, 0.5) << "the fp32 run did not learn the task";
  EXPECT_LT(std::abs(bf16 - fp32), std::max(0.05, 0.1 * fp32)) << "fp32 " << fp32 << " bf16 " << bf16;
  EXPECT_LT(std::abs(fp16 - fp32), std::max(0.05, 0.1 * fp32)) << "fp32 " << fp32 << " fp16 " << fp16;
}
