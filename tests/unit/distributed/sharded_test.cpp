// Sharded data parallel (ZeRO-1/2/3, FULL_SHARD, HYBRID_SHARD) on real Gloo processes: every
// strategy trains to the weights a single process reaches on the whole batch (fp32: rtol 1e-5,
// also with gradient accumulation and clipping; bf16 parameters: a stated tolerance); sharded
// checkpoints load on other process counts and without sharding; a rank that dies inside an
// all-gather or a reduce-scatter is named by the others.
#include "accel/accelerator.h"
#include "accel/checkpoint/safetensors.h"
#include "accel/core/strings.h"
#include "accel/distributed/sharded.h"
#include "accel/distributed/unit.h"
#include "accel/models/bert.h"

#include "support/compare.h"
#include "support/multiprocess.h"
#include "support/temp_dir.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs = accel::fs;
using accel::test::Path;
using namespace accel;
using accel::testing::describe;
using accel::testing::run_ranks;

namespace {

std::string env_or(const char* k, const char* d) {
  const char* v = std::getenv(k);
  return v ? v : d;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// A unit: Linear + tanh, its forward through accel::unit_forward.
struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t in, int64_t out) : fc(register_module("fc", torch::nn::Linear(in, out))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return unit_forward(
        *this, [this](const torch::Tensor& h) { return torch::tanh(fc(h)); }, x);
  }
  torch::nn::Linear fc;
};
TORCH_MODULE(Block);

// Parameter sizes 91, 13, 65, 5, 15, 3: none divides by 2 or 4 (padding is exercised).
struct MlpImpl : torch::nn::Module {
  MlpImpl()
      : b1(register_module("b1", Block(7, 13))),
        b2(register_module("b2", Block(13, 5))),
        head(register_module("head", torch::nn::Linear(5, 3))) {}
  torch::Tensor forward(const torch::Tensor& x) { return head(b2(b1(x))); }
  Block b1, b2;
  torch::nn::Linear head;
};
TORCH_MODULE(Mlp);

models::BertConfig tiny_bert() {
  models::BertConfig c;
  c.vocab_size = 37;
  c.hidden_size = 12;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 19;
  c.max_position_embeddings = 16;
  c.hidden_dropout_prob = 0.0;
  c.attention_probs_dropout_prob = 0.0;
  c.num_labels = 3;
  return c;
}

// One configuration of the equivalence check.
struct Config {
  std::string strategy;  // NO_SHARD, SHARD_OPTIMIZER, SHARD_GRAD_OP, FULL_SHARD, HYBRID_SHARD, ...
  std::string model;     // mlp | bert
  int accum = 1;
  double clip = 0;
  std::string param_dtype = "fp32";
  bool reshard = true;
  bool checkpointing = false;  // activation checkpointing of the units
  int shard_size = 0;          // HYBRID_*: processes per shard group
  std::string describe() const {
    return c10::str(strategy, " ", model, " accum=", accum, " clip=", clip, " param_dtype=", param_dtype,
                    reshard ? "" : " reshard_after_forward=false",
                    checkpointing ? " activation_checkpointing" : "",
                    shard_size ? c10::str(" shard_size=", shard_size) : "");
  }
};

// "STRATEGY:model:accum:clip:dtype[:noreshard][:ac][:sN]"
Config parse_config(const std::string& s) {
  auto f = split(s, ':');
  Config c;
  c.strategy = f.at(0);
  c.model = f.at(1);
  c.accum = std::stoi(f.at(2));
  c.clip = std::stod(f.at(3));
  c.param_dtype = f.at(4);
  for (size_t i = 5; i < f.size(); ++i) {
    if (f[i] == "noreshard") c.reshard = false;
    if (f[i] == "ac") c.checkpointing = true;
    if (f[i][0] == 's') c.shard_size = std::stoi(f[i].substr(1));
  }
  return c;
}

constexpr int kLocal = 2;  // samples per rank per micro-step
constexpr int kSteps = 5;

// The micro-batch (global, world * kLocal samples) of step s, micro-step m.
std::pair<at::Tensor, at::Tensor> mlp_batch(int world, int s, int m) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + 10 * s + m);
  return {at::randn({world * kLocal, 7}, gen), at::randn({world * kLocal, 3}, gen)};
}
std::pair<at::Tensor, at::Tensor> bert_batch(int world, int s, int m) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2000 + 10 * s + m);
  return {at::randint(1, 37, {world * kLocal, 6}, gen), at::randint(0, 3, {world * kLocal}, gen)};
}

template <typename Net, typename Loss>
std::map<std::string, at::Tensor> train(Accelerator* acc, Net net, const Config& c, int world, int rank,
                                        Loss loss_of) {
  // Rank 0's initial weights everywhere (prepare broadcasts them); the reference has them too.
  auto opts = torch::optim::AdamWOptions(1e-2).weight_decay(0.01);
  if (acc != nullptr) {
    auto model = acc->prepare(net);
    auto opt = acc->prepare(torch::optim::AdamW(model->parameters(), opts));
    for (int s = 0; s < kSteps; ++s) {
      for (int m = 0; m < c.accum; ++m) {
        auto sync = acc->accumulate(model);
        at::Tensor loss = loss_of(model, s, m, rank * kLocal, kLocal);
        acc->backward(loss);
        if (c.clip > 0 && acc->sync_gradients()) acc->clip_grad_norm_(model->parameters(), c.clip);
        opt->step();
        opt->zero_grad();
      }
    }
    return acc->get_state_dict(model);
  }
  // One process on the whole batch: the reference.
  torch::optim::AdamW opt(net->parameters(), opts);
  for (int s = 0; s < kSteps; ++s) {
    at::Tensor total;
    for (int m = 0; m < c.accum; ++m) {
      at::Tensor l = loss_of(net, s, m, 0, world * kLocal) / static_cast<double>(c.accum);
      total = total.defined() ? total + l : l;
    }
    total.backward();
    if (c.clip > 0) torch::nn::utils::clip_grad_norm_(net->parameters(), c.clip);
    opt.step();
    opt.zero_grad();
  }
  std::map<std::string, at::Tensor> out;
  for (auto& p : net->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

std::map<std::string, at::Tensor> run_config(Accelerator* acc, const Config& c, int world, int rank) {
  torch::manual_seed(acc != nullptr ? 100 + rank : 100);  // different on every rank but 0
  if (c.model == "mlp") {
    auto loss_of = [world](auto& model, int s, int m, int from, int n) {
      auto [x, y] = mlp_batch(world, s, m);
      return torch::mse_loss(model(x.narrow(0, from, n)), y.narrow(0, from, n));
    };
    return train(acc, Mlp(), c, world, rank, loss_of);
  }
  auto loss_of = [world](auto& model, int s, int m, int from, int n) {
    auto [ids, labels] = bert_batch(world, s, m);
    return model->forward(ids.narrow(0, from, n), at::Tensor(), at::Tensor(), labels.narrow(0, from, n)).loss;
  };
  return train(acc, models::BertForSequenceClassification(tiny_bert()), c, world, rank, loss_of);
}

AcceleratorOptions options_for(const Config& c) {
  auto sh = ShardingOptions()
                .strategy(parse_sharding_strategy(c.strategy))
                .wrap_module_types({"Block", "BertLayer", "BertEmbeddings"})
                .reshard_after_forward(c.reshard)
                .activation_checkpointing(c.checkpointing)
                .param_dtype(c.param_dtype);
  if (c.shard_size) sh.shard_group_size(c.shard_size);
  // A reduced parameter dtype comes with mixed precision (autocast), as Accelerate sets it up.
  return AcceleratorOptions().cpu(true).sharding(sh).gradient_accumulation_steps(c.accum).mixed_precision(
      c.param_dtype == "fp32" ? "no" : c.param_dtype);
}

void expect_all_ranks_pass(const std::vector<accel::testing::RankResult>& results) {
  for (const auto& r : results) {
    ASSERT_FALSE(r.timed_out) << describe(results);
    ASSERT_EQ(r.exit_code, 0) << describe(results);
    ASSERT_NE(r.output.find("[  PASSED  ] 1 test"), std::string::npos) << describe(results);
  }
}

// Free ports for `n` process groups, one after the other in one run.
std::string ports(int n) {
  std::vector<std::string> list;
  for (int i = 0; i < n; ++i) list.push_back(std::to_string(accel::testing::free_port()));
  return join(list, ",");
}

}  // namespace

// ---- workers -----------------------------------------------------------------------------------

// CONFIGS (';'-separated, see parse_config) run one after the other, each with its own process
// group on the next of PORTS.
TEST(DISABLED_ShardWorker, Equivalence) {
  const auto configs = split(env_or("CONFIGS", ""), ';');
  const auto port_list = split(env_or("PORTS", ""), ',');
  ASSERT_EQ(configs.size(), port_list.size());
  // DDP's weights per (model, accumulation, clipping): the sharded runs must reach them.
  std::map<std::string, std::map<std::string, at::Tensor>> ddp, bf16_first;
  for (size_t i = 0; i < configs.size(); ++i) {
    const Config c = parse_config(configs[i]);
    const std::string variant = c10::str(c.model, c.accum, c.clip);
    EnvMap env = current_environment();
    env["MASTER_PORT"] = port_list[i];
    std::map<std::string, at::Tensor> got;
    int world = 0, rank = 0;
    {
      Accelerator acc(options_for(c), env);
      world = acc.num_processes();
      rank = acc.process_index();
      got = run_config(&acc, c, world, rank);
      acc.wait_for_everyone();
    }
    if (c.strategy == "NO_SHARD") ddp[variant] = got;
    auto want = run_config(nullptr, c, world, rank);
    // Against one process on the whole batch: the same arithmetic up to the order of sums
    // (BERT's LayerNorm and softmax make that ~1e-6 absolute after 5 steps), or with bf16
    // parameters, weights rounded to 8 significant bits while the fp32 master copy carries the
    // update: after 5 AdamW steps of lr 1e-2 they stay within 2e-2 of the fp32 run.
    const bool fp32 = c.param_dtype == "fp32";
    if (!fp32 && !bf16_first.count(variant)) bf16_first[variant] = got;
    double worst = 0, worst_ddp = 0, diff2 = 0, norm2 = 0;
    for (const auto& [name, w] : want) {
      ASSERT_TRUE(got.count(name)) << c.describe() << ": no " << name;
      const at::Tensor g = got.at(name).to(at::kFloat);
      worst = std::max(worst, (g - w).abs().max().item<double>());
      diff2 += (g - w).pow(2).sum().item<double>();
      norm2 += w.pow(2).sum().item<double>();
      if (fp32) {
        EXPECT_TRUE(
            accel::testing::tensors_close(g, w, 1e-5, 5e-6, c.describe() + " vs one process: " + name));
      } else {
        // bf16 strategies compute with the same bf16 weights and reduce in fp32: they agree with
        // each other as the fp32 ones agree with DDP.
        EXPECT_TRUE(accel::testing::tensors_close(g, bf16_first.at(variant).at(name).to(at::kFloat), 1e-5,
                                                  1e-6,
                                                  c.describe() + " vs the first bf16 strategy: " + name));
      }
      // Against DDP on the same processes, rtol 1e-5 with the atol of accel's DDP equivalence test
      // (1e-6): a reduce-scatter adds the ranks' gradients in another order than an all-reduce,
      // and the clipping norm is summed over shards, so elements near zero differ by ~1e-7.
      if (fp32 && c.strategy != "NO_SHARD" && ddp.count(variant)) {
        const at::Tensor d = ddp.at(variant).at(name);
        EXPECT_TRUE(accel::testing::tensors_close(g, d, 1e-5, 1e-6, c.describe() + " vs DDP: " + name));
        worst_ddp = std::max(worst_ddp, (g - d).abs().max().item<double>());
      }
    }
    // bf16 parameters against fp32 on one process: the model computes with weights rounded to 8
    // significant bits and Adam moves each weight by about lr per step whatever the size of its
    // gradient, so single elements part by up to ~2 lr per step where a small gradient changes
    // sign; over the whole model the weights stay within 5 % (relative L2; measured 1.2-1.7 % for
    // BERT, 0.2 % for the MLP) of the fp32 run. A
    // wrong shard or a missing reduction is off by ~100 %.
    const double rel = std::sqrt(diff2 / std::max(norm2, 1e-30));
    if (!fp32) {
      EXPECT_LE(rel, 0.05) << c.describe();
      EXPECT_LE(worst, 2 * 1e-2 * kSteps) << c.describe();
    }
    std::printf("rank %d, %s: max |difference| %.3g vs one process (relative L2 %.3g), %.3g vs DDP\n", rank,
                c.describe().c_str(), worst, rel, worst_ddp);
  }
}

// ---- drivers -----------------------------------------------------------------------------------

TEST(Sharded, EveryStrategyMatchesDdpAndOneProcessOn2Ranks) {
  std::vector<std::string> cfg;
  for (const char* s : {"NO_SHARD", "SHARD_OPTIMIZER", "SHARD_GRAD_OP", "FULL_SHARD"}) {
    for (const char* m : {"mlp", "bert"}) {
      cfg.push_back(c10::str(s, ":", m, ":1:0:fp32"));
      cfg.push_back(c10::str(s, ":", m, ":2:1.0:fp32"));  // accumulation 2 and clipping
    }
  }
  cfg.push_back("FULL_SHARD:bert:1:0:fp32:noreshard");
  // Activation checkpointing recomputes each unit in backward: the same weights.
  cfg.push_back("FULL_SHARD:bert:1:0:fp32:ac");
  cfg.push_back("FULL_SHARD:mlp:2:1.0:fp32:ac");
  cfg.push_back("SHARD_GRAD_OP:bert:2:1.0:fp32:ac");
  cfg.push_back("NO_SHARD:bert:1:0:fp32:ac");
  std::string joined;
  for (const auto& c : cfg) joined += (joined.empty() ? "" : ";") + c;
  expect_all_ranks_pass(run_ranks(2, "DISABLED_ShardWorker.Equivalence",
                                  {{"CONFIGS", joined}, {"PORTS", ports(static_cast<int>(cfg.size()))}},
                                  300));
}

TEST(Sharded, EveryStrategyMatchesDdpAndOneProcessOn4Ranks) {
  std::vector<std::string> cfg = {"NO_SHARD:mlp:1:0:fp32", "NO_SHARD:bert:2:1.0:fp32",
                                  "NO_SHARD:mlp:2:1.0:fp32", "NO_SHARD:bert:1:0:fp32"};
  for (const char* s : {"SHARD_OPTIMIZER", "SHARD_GRAD_OP", "FULL_SHARD"}) {
    cfg.push_back(c10::str(s, ":mlp:1:0:fp32"));
    cfg.push_back(c10::str(s, ":bert:2:1.0:fp32"));
  }
  // Hybrid: shard groups of 2 processes, replicated twice.
  cfg.push_back("HYBRID_SHARD:mlp:2:1.0:fp32:s2");
  cfg.push_back("HYBRID_SHARD:bert:1:0:fp32:s2");
  cfg.push_back("HYBRID_SHARD_ZERO2:bert:1:0:fp32:s2");
  std::string joined;
  for (const auto& c : cfg) joined += (joined.empty() ? "" : ";") + c;
  expect_all_ranks_pass(run_ranks(4, "DISABLED_ShardWorker.Equivalence",
                                  {{"CONFIGS", joined}, {"PORTS", ports(static_cast<int>(cfg.size()))}},
                                  400));
}

TEST(Sharded, Bf16ParametersStayWithinTheStatedTolerance) {
  std::vector<std::string> cfg = {"SHARD_GRAD_OP:bert:1:0:bf16",   "FULL_SHARD:bert:1:0:bf16",
                                  "SHARD_OPTIMIZER:bert:1:0:bf16", "SHARD_GRAD_OP:bert:2:1.0:bf16",
                                  "FULL_SHARD:bert:2:1.0:bf16",    "SHARD_GRAD_OP:mlp:1:0:bf16",
                                  "FULL_SHARD:mlp:1:0:bf16"};
  std::string joined;
  for (const auto& c : cfg) joined += (joined.empty() ? "" : ";") + c;
  expect_all_ranks_pass(run_ranks(2, "DISABLED_ShardWorker.Equivalence",
                                  {{"CONFIGS", joined}, {"PORTS", ports(static_cast<int>(cfg.size()))}},
                                  300));
}

// ---- checkpoints on other process counts ---------------------------------------------------------

namespace {

// PHASE=save (4 ranks, FULL_SHARD): 2 steps, save_state(DIR/ckpt), the full weights to
// DIR/full.safetensors, one more step, its weights to DIR/next.safetensors.
// PHASE=load (any ranks, STRATEGY): load_state(DIR/ckpt), the full weights must equal full,
// and one more step on the same global batch must reach next (rtol 1e-5: other batch splits).
void reshard_phase() {
  const std::string phase = env_or("PHASE", "save");
  const Path dir = env_or("DIR", "/tmp");
  Config c;
  c.strategy = env_or("STRATEGY", "FULL_SHARD");
  c.model = "mlp";
  Accelerator acc(options_for(c));
  const int world = acc.num_processes(), rank = acc.process_index();
  torch::manual_seed(7 + rank);
  auto model = acc.prepare(Mlp());
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-2)));
  const int n = 4 * kLocal / world;  // the global batch of 4 ranks, split over these ranks
  auto step = [&](int s) {
    auto [x, y] = mlp_batch(4, s, 0);
    acc.backward(torch::mse_loss(model(x.narrow(0, rank * n, n)), y.narrow(0, rank * n, n)));
    opt->step();
    opt->zero_grad();
  };
  auto full = [&] {
    checkpoint::TensorMap m;
    for (auto& [k, v] : acc.get_state_dict(model)) m[k] = v;
    return m;
  };
  if (phase == "save") {
    step(0);
    step(1);
    acc.save_state((dir / "ckpt").string());
    auto f = full();
    step(2);
    auto next = full();
    if (acc.is_main_process()) {
      checkpoint::save_file(f, dir / "full.safetensors");
      checkpoint::save_file(next, dir / "next.safetensors");
    }
    acc.wait_for_everyone();
    return;
  }
  if (phase == "truncated") {
    auto before = full();
    try {
      acc.load_state((dir / "ckpt").string());
      FAIL() << "a truncated shard must not load";
    } catch (const accel::InputError& e) {
      std::printf("load_state said: %s\n", e.what_without_backtrace());
      EXPECT_NE(std::string(e.what_without_backtrace()).find("model_shard_1.safetensors"), std::string::npos);
    }
    auto after = full();
    for (auto& [k, v] : before)
      EXPECT_TRUE(at::equal(v, after.at(k))) << k << " changed although nothing loaded";
    return;
  }
  acc.load_state((dir / "ckpt").string());
  auto want = checkpoint::load_file(dir / "full.safetensors");
  for (auto& [k, v] : full())
    EXPECT_TRUE(at::equal(v, want.at(k))) << k << " differs after loading on " << world;
  step(2);
  auto next = checkpoint::load_file(dir / "next.safetensors");
  for (auto& [k, v] : full()) {
    EXPECT_TRUE(accel::testing::tensors_close(v, next.at(k), 1e-5, 1e-6, "after one more step: " + k));
  }
}

Path fresh_dir(const std::string& name) {
  Path d = Path(fs::temp_directory()) / ("accel_sharded_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(DISABLED_ShardWorker, Reshard) {
  reshard_phase();
}

TEST(Sharded, CheckpointSavedOn4LoadsOn2And1AndIntoDdp) {
  const Path d = fresh_dir("reshard");
  expect_all_ranks_pass(
      run_ranks(4, "DISABLED_ShardWorker.Reshard", {{"PHASE", "save"}, {"DIR", d.string()}}, 200));
  EXPECT_TRUE(fs::exists(d / "ckpt" / "model.shards.json"));
  EXPECT_TRUE(fs::exists(d / "ckpt" / "model_shard_3.safetensors"));
  expect_all_ranks_pass(run_ranks(2, "DISABLED_ShardWorker.Reshard",
                                  {{"PHASE", "load"}, {"DIR", d.string()}, {"STRATEGY", "FULL_SHARD"}}, 200));
  expect_all_ranks_pass(run_ranks(1, "DISABLED_ShardWorker.Reshard",
                                  {{"PHASE", "load"}, {"DIR", d.string()}, {"STRATEGY", "NO_SHARD"}}, 200));
  expect_all_ranks_pass(run_ranks(2, "DISABLED_ShardWorker.Reshard",
                                  {{"PHASE", "load"}, {"DIR", d.string()}, {"STRATEGY", "NO_SHARD"}}, 200));
  // A truncated shard: an error naming the file, and nothing changes.
  const Path shard = d / "ckpt" / "model_shard_1.safetensors";
  ASSERT_TRUE(accel::test::truncate_file(shard, fs::file_size(shard) - 7));
  expect_all_ranks_pass(
      run_ranks(1, "DISABLED_ShardWorker.Reshard", {{"PHASE", "truncated"}, {"DIR", d.string()}}, 200));
  fs::remove_all(d);
}

// ---- a rank that dies inside a collective ------------------------------------------------------------

// WHERE=gather: FULL_SHARD, rank 1 exits before the second forward (rank 0 waits in the unit's
// all-gather). WHERE=reduce_scatter: SHARD_GRAD_OP, rank 1 exits before the second backward (rank
// 0 waits for its reduce-scatters). Rank 0 must fail with a DistributedError naming rank 1.
TEST(DISABLED_ShardWorker, PeerDiesInCollective) {
  const std::string where = env_or("WHERE", "gather");
  Config c;
  c.strategy = where == "gather" ? "FULL_SHARD" : "SHARD_GRAD_OP";
  c.model = "mlp";
  Accelerator acc(options_for(c));
  auto model = acc.prepare(Mlp());
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-2)));
  auto [x, y] = mlp_batch(2, 0, 0);
  auto once = [&] {
    at::Tensor loss = torch::mse_loss(model(x), y);
    if (where == "reduce_scatter" && acc.process_index() == 1 && opt->state().size() > 0) std::_Exit(3);
    acc.backward(loss);
    opt->step();
    opt->zero_grad();
  };
  once();
  if (where == "gather" && acc.process_index() == 1) std::_Exit(3);
  try {
    for (int i = 0; i < 3; ++i) once();
    FAIL() << "expected a DistributedError";
  } catch (const accel::DistributedError& e) {
    const std::string what = e.what_without_backtrace();
    std::printf("rank 0 saw: %s\n", what.c_str());
    EXPECT_NE(what.find(where == "gather" ? "all_gather" : "reduce_scatter"), std::string::npos);
    EXPECT_NE(what.find("rank 1"), std::string::npos);
  }
}

TEST(Sharded, RankDyingInAllGatherOrReduceScatterIsNamed) {
  for (const char* where : {"gather", "reduce_scatter"}) {
    auto results = run_ranks(2, "DISABLED_ShardWorker.PeerDiesInCollective",
                             {{"ACCEL_TIMEOUT", "20"}, {"WHERE", where}}, 90);
    ASSERT_FALSE(results[0].timed_out) << describe(results);
    EXPECT_EQ(results[0].exit_code, 0) << where << "\n" << describe(results);
    EXPECT_NE(results[0].output.find("[  PASSED  ] 1 test"), std::string::npos) << where << "\n"
                                                                                << describe(results);
    EXPECT_EQ(results[1].exit_code, 3) << describe(results);
  }
}
