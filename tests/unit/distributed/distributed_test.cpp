// Several ranks on CPU with Gloo (tier 2): each test starts N processes of this binary running a
// DISABLED_Worker test, which asserts closed-form expectations on its rank.
#include "accel/accelerator.h"
#include "accel/distributed/strategy.h"

#include "support/compare.h"
#include "support/multiprocess.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <numeric>
#include <set>
#include <thread>

using namespace accel;
using accel::testing::describe;
using accel::testing::run_ranks;
using accel::testing::tensors_close;

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl()
      : a(register_module("a", torch::nn::Linear(6, 32))),
        b(register_module("b", torch::nn::Linear(32, 3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return b(torch::tanh(a(x))); }
  torch::nn::Linear a, b;
};
TORCH_MODULE(Net);

void expect_all_ranks_pass(const std::vector<accel::testing::RankResult>& results) {
  for (const auto& r : results) {
    ASSERT_FALSE(r.timed_out) << describe(results);
    ASSERT_EQ(r.exit_code, 0) << describe(results);
    ASSERT_NE(r.output.find("[  PASSED  ] 1 test"), std::string::npos) << describe(results);
  }
}

constexpr int64_t kB = 4;

std::pair<at::Tensor, at::Tensor> global_batch(int world) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(123);
  return {at::randn({world * kB, 6}, gen), at::randn({world * kB, 3}, gen)};
}

}  // namespace

// ---- workers -----------------------------------------------------------------------------------

// One step on N ranks x batch B == one process on the concatenated batch N*B (fp32, rtol 1e-5).
TEST(DISABLED_Worker, Equivalence) {
  const double bucket_mb = std::atof(std::getenv("BUCKET_MB") ? std::getenv("BUCKET_MB") : "25");
  const std::string hook = std::getenv("COMM_HOOK") ? std::getenv("COMM_HOOK") : "none";
  Accelerator acc(AcceleratorOptions().cpu(true).ddp(
      DDPOptions().bucket_cap_mb(bucket_mb).first_bucket_cap_mb(bucket_mb).comm_hook(hook)));
  // Compressed all-reduce rounds each gradient to 8 (bf16) or 11 (fp16) mantissa bits: after one
  // AdamW step (lr 1e-2, normalised update) weights differ by at most ~lr.
  const double rtol = hook == "none" ? 1e-5 : 0.0;
  const double atol = hook == "none" ? 1e-6 : 1e-2;
  const int world = acc.num_processes();
  const int rank = acc.process_index();
  torch::manual_seed(100 + rank);  // different init per rank: prepare must broadcast rank 0's
  auto model = acc.prepare(Net());
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-2)));
  auto [x, y] = global_batch(world);
  acc.backward(torch::mse_loss(model->forward(x.narrow(0, rank * kB, kB)), y.narrow(0, rank * kB, kB)));
  opt->step();

  torch::manual_seed(100);  // rank 0's init
  Net ref;
  torch::optim::AdamW ref_opt(ref->parameters(), torch::optim::AdamWOptions(1e-2));
  torch::mse_loss(ref->forward(x), y).backward();
  ref_opt.step();
  auto p = model->parameters();
  auto q = ref->parameters();
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_TRUE(tensors_close(p[i], q[i], rtol, atol, "param " + std::to_string(i)));
  }
  if (bucket_mb < 0.01) {
    EXPECT_EQ(model.strategy().comm_stats().bucket_sizes.size(), p.size());
  }
}

// Shadow model: inside no_sync the prepared model's gradients are the local ones (and differ
// across ranks); on the sync step they are the average of every rank's (and equal everywhere).
TEST(DISABLED_Worker, NoSyncShadow) {
  Accelerator acc(AcceleratorOptions().cpu(true).gradient_accumulation_steps(2));
  const int world = acc.num_processes();
  const int rank = acc.process_index();
  torch::manual_seed(5);
  auto model = acc.prepare(Net());
  torch::manual_seed(5);
  Net shadow;
  auto [x, y] = global_batch(world);
  at::Tensor xr = x.narrow(0, rank * kB, kB), yr = y.narrow(0, rank * kB, kB);
  for (int micro = 0; micro < 2; ++micro) {
    auto sync = acc.accumulate(model);
    acc.backward(torch::mse_loss(model->forward(xr), yr));
    torch::NoGradGuard ng;
    (void)ng;
    {
      torch::AutoGradMode on(true);
      (torch::mse_loss(shadow->forward(xr), yr) / 2.0).backward();
    }
    at::Tensor g = model->parameters()[0].grad().detach().clone();
    at::Tensor gs = shadow->parameters()[0].grad().detach().clone();
    at::Tensor all = acc.gather(g.unsqueeze(0));
    at::Tensor all_shadow = acc.gather(gs.unsqueeze(0));
    if (!acc.sync_gradients()) {
      EXPECT_TRUE(tensors_close(g, gs, 1e-6, 1e-7, "no_sync grad == local grad"));
      EXPECT_FALSE(at::allclose(all[0], all[1])) << "gradients should differ inside no_sync";
    } else {
      for (int r = 1; r < world; ++r) EXPECT_TRUE(at::equal(all[0], all[r])) << "rank " << r;
      EXPECT_TRUE(tensors_close(g, all_shadow.mean(0), 1e-5, 1e-7, "sync grad == mean of shadows"));
    }
  }
}

TEST(DISABLED_Worker, GatherForMetricsCountsEachExampleOnce) {
  Accelerator acc(AcceleratorOptions().cpu(true));
  auto loader = acc.prepare(data::make_loader<at::Tensor>(
      2001, [](const data::Indices& idx) { return at::tensor(idx); }, data::DataLoaderOptions(16)));
  std::vector<int64_t> seen;
  for (auto& batch : *loader) {
    at::Tensor all = acc.gather_for_metrics(batch);
    for (int64_t i = 0; i < all.size(0); ++i) seen.push_back(all[i].item<int64_t>());
  }
  EXPECT_EQ(seen.size(), 2001u);
  std::set<int64_t> uniq(seen.begin(), seen.end());
  EXPECT_EQ(uniq.size(), 2001u);
}

TEST(DISABLED_Worker, Collectives) {
  Accelerator acc(AcceleratorOptions().cpu(true));
  const int world = acc.num_processes();
  const int rank = acc.process_index();
  at::Tensor t = at::full({2}, static_cast<float>(rank + 1));
  EXPECT_FLOAT_EQ(acc.reduce(t, "sum")[0].item<float>(), world * (world + 1) / 2.0f);
  EXPECT_FLOAT_EQ(acc.reduce(t, "mean")[0].item<float>(), (world + 1) / 2.0f);
  EXPECT_FLOAT_EQ(acc.reduce(t, "max")[0].item<float>(), static_cast<float>(world));
  at::Tensor g = acc.gather(at::full({1, 3}, rank));
  ASSERT_EQ(g.size(0), world);
  for (int r = 0; r < world; ++r) EXPECT_EQ(g[r][0].item<int64_t>(), r);
  at::Tensor b = acc.broadcast(rank == 1 ? at::arange(5) : at::zeros({2}, at::kLong), 1);
  EXPECT_TRUE(at::equal(b, at::arange(5)));
  at::Tensor ragged = at::ones({rank + 1, 2});
  at::Tensor padded = acc.pad_across_processes(ragged, 0, -1);
  EXPECT_EQ(padded.size(0), world);
  EXPECT_EQ(padded.sum().item<float>(), 2.0f * (rank + 1) - 2.0f * (world - rank - 1));
  auto objs = acc.gather_object("rank" + std::to_string(rank));
  ASSERT_EQ(objs.size(), static_cast<size_t>(world));
  EXPECT_EQ(objs[world - 1], "rank" + std::to_string(world - 1));
  EXPECT_EQ(acc.broadcast_object(rank == 0 ? "hello" : ""), "hello");
  std::vector<int> items(7);
  std::iota(items.begin(), items.end(), 0);
  auto mine = acc.split_between_processes(items);
  auto counts = acc.gather(at::full({1}, static_cast<int64_t>(mine.size())));
  EXPECT_EQ(counts.sum().item<int64_t>(), 7);
  EXPECT_EQ(acc.split_between_processes(items, true).size(), (7 + world - 1) / static_cast<size_t>(world));
  if (rank == world - 1) acc.set_trigger();
  EXPECT_TRUE(acc.check_trigger());
  EXPECT_FALSE(acc.check_trigger());
  std::string order;
  acc.main_process_first([&] { order = "ran"; });
  EXPECT_EQ(order, "ran");
  acc.wait_for_everyone();
}

TEST(DISABLED_Worker, ShapeMismatchIsAnErrorNotAHang) {
  Accelerator acc(AcceleratorOptions().cpu(true));
  const int rank = acc.process_index();
  try {
    acc.gather(at::zeros({rank + 2, 3}));
    FAIL() << "expected a DistributedError";
  } catch (const accel::DistributedError& e) {
    std::string msg = e.what_without_backtrace();
    EXPECT_NE(msg.find("rank 0: [2, 3]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1: [3, 3]"), std::string::npos) << msg;
  }
}

TEST(DISABLED_Worker, MissingRankTimesOut) {
  auto start = std::chrono::steady_clock::now();
  try {
    Accelerator acc(AcceleratorOptions().cpu(true));
    FAIL() << "rendezvous should have failed";
  } catch (const accel::DistributedError& e) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("rendezvous failed after %.1f s: %s\n", s, e.what_without_backtrace());
    EXPECT_LT(s, 30.0);
    EXPECT_NE(std::string(e.what_without_backtrace()).find("127.0.0.1"), std::string::npos);
    EXPECT_NE(std::string(e.what_without_backtrace()).find("rank(s) 1 did not join"), std::string::npos);
  }
}

// Local addresses (hex, as /proc/net/tcp{,6} write them) of sockets listening on `port`.
std::vector<std::string> listening_addresses(int port) {
  std::vector<std::string> out;
  char want[8];
  std::snprintf(want, sizeof(want), "%04X", port);
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const auto colon = local.rfind(':');
      if (state == "0A" && colon != std::string::npos && local.substr(colon + 1) == want)
        out.push_back(local.substr(0, colon));
    }
  }
  return out;
}

// Security default: a one-machine run's rendezvous store is reachable from this machine only.
TEST(DISABLED_Worker, StoreListensOnLoopbackOnly) {
  Accelerator acc(AcceleratorOptions().cpu(true));
  if (acc.process_index() == 0) {
    const int port = std::atoi(std::getenv("MASTER_PORT"));
    auto addresses = listening_addresses(port);
    ASSERT_FALSE(addresses.empty()) << "nothing listens on port " << port;
    for (const auto& a : addresses)
      EXPECT_EQ(a, "0100007F") << "the store listens on " << a << ", not 127.0.0.1";
  }
  acc.wait_for_everyone();
}

// Rank 1 is alive but never reaches the barrier: rank 0's timeout names it as behind.
TEST(DISABLED_Worker, StuckRankIsNamed) {
  Accelerator acc(AcceleratorOptions().cpu(true));
  if (acc.process_index() == 1) {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    std::_Exit(0);
  }
  try {
    acc.wait_for_everyone();
    FAIL() << "expected a DistributedError";
  } catch (const accel::DistributedError& e) {
    const std::string msg = e.what_without_backtrace();
    std::printf("rank 0 saw: %s\n", msg.c_str());
    EXPECT_NE(msg.find("timed out after 2 s"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1 has not reached collective #"), std::string::npos) << msg;
  }
}

// Rank 1 dies after the first step; rank 0's next backward must fail with an error, not hang.
TEST(DISABLED_Worker, PeerDeathIsAnError) {
  Accelerator acc(AcceleratorOptions().cpu(true));
  auto model = acc.prepare(Net());
  auto [x, y] = global_batch(acc.num_processes());
  acc.backward(torch::mse_loss(model->forward(x), y));
  if (acc.process_index() == 1) std::_Exit(3);
  try {
    for (int i = 0; i < 3; ++i) acc.backward(torch::mse_loss(model->forward(x), y));
    FAIL() << "expected a DistributedError";
  } catch (const accel::DistributedError& e) {
    std::printf("rank 0 saw: %s\n", e.what_without_backtrace());
  }
}

// ---- drivers -----------------------------------------------------------------------------------

TEST(Distributed, OneStepEqualsConcatenatedBatchOn2And4Ranks) {
  for (int world : {2, 4}) {
    expect_all_ranks_pass(run_ranks(world, "DISABLED_Worker.Equivalence"));
  }
}

TEST(Distributed, OneBucketPerParameterStillEquivalent) {
  expect_all_ranks_pass(run_ranks(2, "DISABLED_Worker.Equivalence", {{"BUCKET_MB", "0.000001"}}));
}

TEST(Distributed, CompressedAllReduceBf16AndFp16) {
  expect_all_ranks_pass(run_ranks(2, "DISABLED_Worker.Equivalence", {{"COMM_HOOK", "bf16"}}));
  expect_all_ranks_pass(run_ranks(2, "DISABLED_Worker.Equivalence", {{"COMM_HOOK", "fp16"}}));
}

TEST(Distributed, NoSyncShadowModel) {
  expect_all_ranks_pass(run_ranks(2, "DISABLED_Worker.NoSyncShadow"));
}

TEST(Distributed, GatherForMetrics2001On2And3Ranks) {
  for (int world : {2, 3})
    expect_all_ranks_pass(run_ranks(world, "DISABLED_Worker.GatherForMetricsCountsEachExampleOnce"));
}

TEST(Distributed, Collectives) {
  expect_all_ranks_pass(run_ranks(3, "DISABLED_Worker.Collectives"));
}

TEST(Distributed, ShapeMismatch) {
  expect_all_ranks_pass(run_ranks(2, "DISABLED_Worker.ShapeMismatchIsAnErrorNotAHang"));
}

TEST(Distributed, RankThatNeverJoinsTimesOut) {
  auto results = run_ranks(2, "DISABLED_Worker.MissingRankTimesOut", {{"ACCEL_TIMEOUT", "3"}}, 60, {1});
  ASSERT_FALSE(results[0].timed_out) << describe(results);
  EXPECT_EQ(results[0].exit_code, 0) << describe(results);
}

TEST(Distributed, RendezvousStoreListensOnLoopbackOnly) {
  expect_all_ranks_pass(run_ranks(2, "DISABLED_Worker.StoreListensOnLoopbackOnly"));
}

TEST(Distributed, TimeoutNamesTheRankThatIsBehind) {
  auto results = run_ranks(2, "DISABLED_Worker.StuckRankIsNamed",
                           {{"ACCEL_TIMEOUT", "2"}, {"ACCEL_HEARTBEAT_S", "0.2"}}, 60);
  ASSERT_FALSE(results[0].timed_out) << describe(results);
  EXPECT_EQ(results[0].exit_code, 0) << describe(results);
}

TEST(Distributed, PeerDeathFailsTheOtherRank) {
  auto results = run_ranks(2, "DISABLED_Worker.PeerDeathIsAnError", {{"ACCEL_TIMEOUT", "20"}}, 60);
  ASSERT_FALSE(results[0].timed_out) << describe(results);
  EXPECT_EQ(results[0].exit_code, 0) << describe(results);
  EXPECT_EQ(results[1].exit_code, 3) << describe(results);
}
