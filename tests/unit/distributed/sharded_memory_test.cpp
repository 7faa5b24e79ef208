// Memory of sharded data parallel against the ZeRO paper's budget (arXiv 1910.02054, AdamW, mixed
// precision: 2-byte parameters and gradients, 12 bytes of fp32 master copy and optimizer state per
// parameter): DDP 16, ZeRO-1 4 + 12/N, ZeRO-2 2 + 14/N, ZeRO-3 16/N bytes per parameter on N
// processes. Measured with accel's counting CPU allocator on 4 Gloo processes: the bytes CPU
// tensors hold after a backward (parameters, gradients, optimizer state; activations are freed by
// then) must be within 5 % of the budget.
#include "accel/accelerator.h"
#include "accel/bench/memory.h"
#include "accel/distributed/unit.h"

#include "support/multiprocess.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cstdlib>
#include <thread>

using namespace accel;
using accel::testing::describe;
using accel::testing::run_ranks;

namespace {

struct WideBlockImpl : torch::nn::Module {
  explicit WideBlockImpl(int64_t n) : fc(register_module("fc", torch::nn::Linear(n, n - 3))), n_(n) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return unit_forward(
        *this, [this](const torch::Tensor& h) { return torch::constant_pad_nd(torch::tanh(fc(h)), {0, 3}); }, x);
  }
  torch::nn::Linear fc;
  int64_t n_;
};
TORCH_MODULE(WideBlock);

// Four units of 512 x 509 + 509 parameters each (1,044,468 in all; no parameter outside a unit).
struct StackImpl : torch::nn::Module {
  StackImpl() {
    for (const char* name : {"b0", "b1", "b2", "b3"}) blocks.push_back(register_module(name, WideBlock(512)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& b : blocks) x = b(x);
    return x;
  }
  std::vector<WideBlock> blocks;
};
TORCH_MODULE(Stack);

}  // namespace

TEST(DISABLED_ShardMemory, Measure) {
  ASSERT_TRUE(bench::install_counting_cpu_allocator());
  const std::string strategy = std::getenv("STRATEGY") ? std::getenv("STRATEGY") : "NO_SHARD";
  const bool ddp = strategy == "NO_SHARD";
  const int64_t base = bench::cpu_tensor_bytes_current();
  {
    // The budget's setting: bf16 parameters and gradients with fp32 master weights (DDP: fp32).
    auto sh = ShardingOptions().strategy(parse_sharding_strategy(strategy)).wrap_module_types({"WideBlock"});
    if (!ddp) sh.reduce_dtype("bf16");
    Accelerator acc(AcceleratorOptions().cpu(true).mixed_precision(ddp ? "no" : "bf16").sharding(sh));
    const double n = acc.num_processes();
    torch::manual_seed(0);
    auto model = acc.prepare(Stack());
    auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-3)));
    const int64_t params = 4 * (512 * 509 + 509);
    at::Tensor x = at::randn({2, 512});
    int64_t input_bytes = x.numel() * 4;
    int64_t measured = 0;
    for (int step = 0; step < 3; ++step) {
      acc.backward(model(x).pow(2).mean());
      if (step == 2) {
        // Gloo's worker thread lets go of a collective's temporary buffers a moment after wait()
        // returns; the steady state is the lowest reading over the next 200 ms.
        measured = bench::cpu_tensor_bytes_current();
        for (int i = 0; i < 40; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          measured = std::min(measured, bench::cpu_tensor_bytes_current());
        }
        measured -= base + input_bytes;
      }
      opt->step();
      opt->zero_grad();
    }
    const double per_param = ddp                           ? 16.0
                             : strategy == "SHARD_OPTIMIZER" ? 4.0 + 12.0 / n
                             : strategy == "SHARD_GRAD_OP"   ? 2.0 + 14.0 / n
                                                             : 16.0 / n;
    const double budget = per_param * static_cast<double>(params);
    const double ratio = static_cast<double>(measured) / budget;
    std::printf("MEMORY %s on %d processes: %lld bytes held after backward, budget %.0f (%.2f bytes/param), ratio %.4f\n",
                strategy.c_str(), static_cast<int>(n), static_cast<long long>(measured), budget, per_param, ratio);
    EXPECT_NEAR(ratio, 1.0, 0.05) << strategy;
  }
}

TEST(ShardedMemory, PerProcessBytesFollowTheZeroBudget) {
  for (const char* s : {"NO_SHARD", "SHARD_OPTIMIZER", "SHARD_GRAD_OP", "FULL_SHARD"}) {
    auto results = run_ranks(4, "DISABLED_ShardMemory.Measure", {{"STRATEGY", s}}, 200);
    for (const auto& r : results) {
      ASSERT_FALSE(r.timed_out) << describe(results);
      ASSERT_EQ(r.exit_code, 0) << s << "\n" << describe(results);
      ASSERT_NE(r.output.find("[  PASSED  ] 1 test"), std::string::npos) << describe(results);
    }
    const auto& out = results[0].output;
    const auto at = out.find("MEMORY");
    if (at != std::string::npos) std::printf("%s", out.substr(at, out.find('\n', at) - at + 1).c_str());
  }
}
