// save_state / load_state: exact resume after kill -9 (1 and 2 ranks; fp32, bf16, fp16), atomic
// writes under fault injection, total_limit, truncated/tampered checkpoints, other world sizes.
#include "accel/accelerator.h"
#include "accel/checkpoint/safetensors.h"
#include "accel/checkpoint/state_folder.h"
#include "accel/distributed/unit.h"

#include "support/compare.h"
#include "support/multiprocess.h"
#include "support/temp_dir.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>
#include <torch/optim/schedulers/step_lr.h>
#include <torch/utils.h>

#include <csignal>
#include <cstdlib>
#include <fstream>

namespace fs = accel::fs;
using accel::test::Path;
using namespace accel;
using accel::testing::describe;
using accel::testing::run_ranks;

namespace {

struct DropNetImpl : torch::nn::Module {
  DropNetImpl()
      : a(register_module("a", torch::nn::Linear(10, 32))),
        drop(register_module("drop", torch::nn::Dropout(0.2))),
        b(register_module("b", torch::nn::Linear(32, 4))) {}
  torch::Tensor forward(const torch::Tensor& x) { return b(drop(torch::relu(a(x)))); }
  torch::nn::Linear a;
  torch::nn::Dropout drop;
  torch::nn::Linear b;
};
TORCH_MODULE(DropNet);

// The same network with its first layer a unit of sharding (its forward runs through
// accel::unit_forward), so that FULL_SHARD gathers and frees it.
struct DropBlockImpl : torch::nn::Module {
  DropBlockImpl() : fc(register_module("fc", torch::nn::Linear(10, 32))), drop(register_module("drop", torch::nn::Dropout(0.2))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return unit_forward(*this, [this](const torch::Tensor& h) { return drop(torch::relu(fc(h))); }, x);
  }
  torch::nn::Linear fc;
  torch::nn::Dropout drop;
};
TORCH_MODULE(DropBlock);

struct UnitNetImpl : torch::nn::Module {
  UnitNetImpl() : a(register_module("a", DropBlock())), b(register_module("b", torch::nn::Linear(32, 4))) {}
  torch::Tensor forward(const torch::Tensor& x) { return b(a(x)); }
  DropBlock a;
  torch::nn::Linear b;
};
TORCH_MODULE(UnitNet);

// The user's own step counter, saved through register_for_checkpointing.
struct Counter {
  int64_t step = 0;
  std::map<std::string, at::Tensor> state_dict() const { return {{"step", at::full({1}, step, at::kLong)}}; }
  void load_state_dict(const std::map<std::string, at::Tensor>& s) { step = s.at("step").item<int64_t>(); }
};

std::string env_or(const char* k, const char* d) {
  const char* v = std::getenv(k);
  return v ? v : d;
}

Path fresh_dir(const std::string& name) {
  Path d = Path(fs::temp_directory()) / ("accel_ckpt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// One training run (SHARDING: a sharding strategy, with UnitNet). MODE=straight: 20 steps.
// MODE=first: saves after step 10, then is killed at step 13 (kill -9). MODE=resume: loads the
// checkpoint and trains to step 20. Losses go to $OUT.rank<r>.txt (one per line, %a for
// exactness), final weights to $OUT.rank<r>.safetensors.
template <typename Net>
void run_training(Accelerator& acc, Net net) {
  const std::string mode = env_or("MODE", "straight");
  const Path dir = env_or("DIR", "/tmp");
  const std::string out = env_or("OUT", "/tmp/out");
  const int kill_at = std::atoi(env_or("KILL_AT", "13").c_str());
  auto model = acc.prepare(net);
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(5e-3)));
  auto sched = acc.prepare_scheduler(std::make_shared<torch::optim::StepLR>(*opt, 4, 0.7));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  at::Tensor x = at::randn({100, 10}, gen), y = at::randint(0, 4, {100}, gen);
  auto loader = acc.prepare(data::make_tensor_loader({x, y}, data::DataLoaderOptions(8).shuffle(true)));
  auto counter = std::make_shared<Counter>();
  acc.register_for_checkpointing(counter);
  if (mode == "resume") acc.load_state((dir / "ckpt").string());
  std::ofstream losses(out + ".rank" + std::to_string(acc.process_index()) + ".txt",
                       mode == "resume" ? std::ios::app : std::ios::trunc);
  while (counter->step < 20) {
    for (auto& batch : *loader) {
      at::Tensor loss = torch::cross_entropy_loss(model(batch[0]), batch[1]);
      acc.backward(loss);
      opt->step();
      sched->step();
      opt->zero_grad();
      ++counter->step;
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%a\n", loss.item<double>());
      losses << buf << std::flush;
      if (mode == "first" && counter->step == 10) acc.save_state((dir / "ckpt").string());
      if (mode == "first" && counter->step == kill_at) std::raise(SIGKILL);
      if (counter->step == 20) break;
    }
  }
  checkpoint::TensorMap w;
  for (auto& [k, v] : acc.get_state_dict(model)) w[k] = v;
  checkpoint::save_file(w, out + ".rank" + std::to_string(acc.process_index()) + ".safetensors");
}

void training_run() {
  const std::string sharding = env_or("SHARDING", "");
  auto options = AcceleratorOptions().cpu(true).mixed_precision(env_or("PREC", "no")).seed(17);
  if (!sharding.empty()) {
    options.sharding(ShardingOptions().strategy(parse_sharding_strategy(sharding)).wrap_module_types({"DropBlock"}));
  }
  Accelerator acc(options);
  torch::manual_seed(3);
  if (sharding.empty()) {
    run_training(acc, DropNet());
  } else {
    run_training(acc, UnitNet());
  }
}

std::string slurp(const Path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void check_resume(int world, const std::string& prec, const std::string& sharding = "") {
  Path d = fresh_dir("resume_" + prec + std::to_string(world) + sharding);
  auto run = [&](const std::string& mode, const std::string& out) {
    return run_ranks(world, "DISABLED_CkptWorker.Train",
                     {{"MODE", mode},
                      {"DIR", d.string()},
                      {"OUT", (d / out).string()},
                      {"PREC", prec},
                      {"SHARDING", sharding}});
  };
  auto straight = run("straight", "straight");
  for (auto& r : straight) ASSERT_EQ(r.exit_code, 0) << describe(straight);
  auto first = run("first", "resumed");
  for (auto& r : first) ASSERT_EQ(r.exit_code, 128 + SIGKILL) << describe(first);
  // The killed run logged 13 losses; the resumed one continues after step 10: keep the first 10.
  for (int r = 0; r < world; ++r) {
    Path f = d / ("resumed.rank" + std::to_string(r) + ".txt");
    std::string text = slurp(f), kept;
    int lines = 0;
    for (char c : text) {
      if (lines < 10) kept += c;
      if (c == '\n') ++lines;
    }
    std::ofstream(f, std::ios::trunc) << kept;
  }
  auto resumed = run("resume", "resumed");
  for (auto& r : resumed) ASSERT_EQ(r.exit_code, 0) << describe(resumed);
  for (int r = 0; r < world; ++r) {
    const std::string rs = ".rank" + std::to_string(r);
    EXPECT_EQ(slurp(d / ("straight" + rs + ".txt")), slurp(d / ("resumed" + rs + ".txt")))
        << prec << " rank " << r << ": the 20 losses differ";
    auto a = checkpoint::load_file(d / ("straight" + rs + ".safetensors"));
    auto b = checkpoint::load_file(d / ("resumed" + rs + ".safetensors"));
    for (auto& [k, v] : a)
      EXPECT_TRUE(at::equal(v, b.at(k))) << prec << " weight " << k << " not bit-identical";
  }
  fs::remove_all(d);
}

}  // namespace

TEST(DISABLED_CkptWorker, Train) {
  training_run();
}

// fp32, bf16 and fp16 resume is bit-identical on CPU (same kernels, same thread count, restored
// RNG, optimizer, scheduler, scaler and data position): the tolerance is zero for all three.
TEST(Checkpoint, KillAndResumeIsBitIdentical1Rank) {
  for (const char* prec : {"no", "bf16", "fp16"}) check_resume(1, prec);
}

TEST(Checkpoint, KillAndResumeIsBitIdentical2Ranks) {
  for (const char* prec : {"no", "fp16"}) check_resume(2, prec);
}

// Sharded state folders (each rank's master shards and optimizer state) resume exactly too.
TEST(Checkpoint, KillAndResumeIsBitIdenticalSharded) {
  check_resume(2, "no", "SHARD_GRAD_OP");
  check_resume(2, "no", "FULL_SHARD");
  check_resume(2, "bf16", "FULL_SHARD");
}

namespace {

struct Fixture {
  std::unique_ptr<Accelerator> acc;
  PreparedModel<DropNet> model{DropNet(nullptr), nullptr};
  std::shared_ptr<AcceleratedOptimizer> opt;
  std::shared_ptr<data::DataLoader<std::vector<at::Tensor>>> loader;
  std::shared_ptr<Counter> counter = std::make_shared<Counter>();

  explicit Fixture(AcceleratorOptions o = AcceleratorOptions(), const EnvMap& env = EnvMap{}) {
    acc = std::make_unique<Accelerator>(o.cpu(true), env);
    torch::manual_seed(1);
    model = acc->prepare(DropNet());
    opt = acc->prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-2)));
    loader = acc->prepare(data::make_tensor_loader({at::randn({40, 10}), at::randint(0, 4, {40})},
                                                   data::DataLoaderOptions(8).shuffle(true)));
    acc->register_for_checkpointing(counter);
  }
  void train(int steps) {
    int done = 0;
    while (done < steps) {
      for (auto& b : *loader) {
        acc->backward(torch::cross_entropy_loss(model->forward(b[0]), b[1]));
        opt->step();
        opt->zero_grad();
        ++counter->step;
        if (++done == steps) break;
      }
    }
  }
  std::vector<at::Tensor> weights() {
    std::vector<at::Tensor> w;
    for (auto& p : model->parameters()) w.push_back(p.detach().clone());
    return w;
  }
};

}  // namespace

TEST(Checkpoint, RoundTripRestoresEverything) {
  Path d = fresh_dir("roundtrip");
  Fixture a;
  a.train(5);  // exactly one epoch (40 samples / batch 8)
  a.acc->save_state((d / "s").string());
  auto wa = a.weights();
  Fixture b;
  b.acc->load_state((d / "s").string());
  auto wb = b.weights();
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(at::equal(wa[i], wb[i]));
  EXPECT_EQ(b.counter->step, 5);
  EXPECT_EQ(b.loader->epoch(), 1);  // breaking right after the last batch still completes the epoch
  // Both continue identically (they share the process's generator: give each the same stream).
  auto rng = checkpoint::capture_rng_states();
  a.train(5);
  checkpoint::restore_rng_states(rng);
  b.train(5);
  wa = a.weights();
  wb = b.weights();
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(at::equal(wa[i], wb[i]));
  auto manifest = checkpoint::verify_state_folder(d / "s");
  EXPECT_EQ(manifest["world_size"], 1);
  EXPECT_EQ(manifest["format_version"], 1);
  fs::remove_all(d);
}

TEST(Checkpoint, TotalLimitKeepsTheLastTwoAndIterationSurvivesResume) {
  Path d = fresh_dir("limit");
  auto opts = AcceleratorOptions().project(
      ProjectOptions().project_dir(d.string()).automatic_checkpoint_naming(true).total_limit(2));
  {
    Fixture f(opts);
    for (int i = 0; i < 4; ++i) {
      f.train(1);
      f.acc->save_state();
    }
    auto all = checkpoint::list_checkpoints(d / "checkpoints");
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(fs::filename(all[0]), "checkpoint_2");
    EXPECT_EQ(fs::filename(all[1]), "checkpoint_3");
  }
  Fixture g(opts);
  g.acc->load_state();  // the latest
  EXPECT_EQ(g.counter->step, 4);
  EXPECT_EQ(g.acc->save_iteration(), 4);
  g.acc->save_state();  // checkpoint_4, not a clash with checkpoint_0 (Accelerate's bug)
  auto all = checkpoint::list_checkpoints(d / "checkpoints");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(fs::filename(all[1]), "checkpoint_4");
  fs::remove_all(d);
}

namespace {

void expect_load_error(Fixture& f, const Path& dir, const std::string& needle) {
  auto before = f.weights();
  try {
    f.acc->load_state(dir.string());
    FAIL() << "expected an error mentioning " << needle;
  } catch (const accel::InputError& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find(needle), std::string::npos)
        << e.what_without_backtrace();
  }
  auto after = f.weights();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(at::equal(before[i], after[i])) << "partial load";
}

}  // namespace

TEST(Checkpoint, TruncatedOrTamperedFilesAreNamedAndNothingLoads) {
  Path d = fresh_dir("tamper");
  Fixture a;
  a.train(3);
  a.acc->save_state((d / "s").string());
  Fixture b;
  // Truncated weights.
  accel::test::copy_tree(d / "s", d / "t");
  accel::test::truncate_file(d / "t" / "model.safetensors",
                             fs::file_size(d / "t" / "model.safetensors") - 10);
  expect_load_error(b, d / "t", "model.safetensors");
  // One flipped byte in the optimizer state.
  accel::test::copy_tree(d / "s", d / "u");
  {
    std::fstream f(d / "u" / "optimizer.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  expect_load_error(b, d / "u", "optimizer.safetensors");
  // A manifest naming a file outside the folder.
  accel::test::copy_tree(d / "s", d / "v");
  {
    auto m = nlohmann::json::parse(slurp(d / "v" / checkpoint::kManifestName));
    m["files"]["../escape"] = {{"size", 1}, {"checksum", "0"}};
    std::ofstream(d / "v" / checkpoint::kManifestName, std::ios::trunc) << m.dump();
  }
  expect_load_error(b, d / "v", "../escape");
  // A member replaced by a link to a file outside the folder (same bytes, so the checksum holds).
  accel::test::copy_tree(d / "s", d / "v2");
  fs::copy_file(d / "v2" / "model.safetensors", d / "outside.safetensors");
  fs::remove(d / "v2" / "model.safetensors");
  accel::test::make_symlink(d / "outside.safetensors", d / "v2" / "model.safetensors");
  expect_load_error(b, d / "v2", "symbolic link");
  // No manifest: an interrupted save.
  accel::test::copy_tree(d / "s", d / "w");
  fs::remove(d / "w" / checkpoint::kManifestName);
  expect_load_error(b, d / "w", "not a complete accel checkpoint");
  // The intact one still loads.
  b.acc->load_state((d / "s").string());
  EXPECT_EQ(b.counter->step, 3);
  fs::remove_all(d);
}

TEST(DISABLED_CkptWorker, SaveThenCrash) {
  const Path dir = env_or("DIR", "/tmp");
  Fixture f(AcceleratorOptions().mixed_precision(env_or("PREC", "no")));
  f.train(3);
  const char* fault = std::getenv("ACCEL_FAULT_SAVE");
  ::unsetenv("ACCEL_FAULT_SAVE");
  f.acc->save_state((dir / "ckpt").string());
  if (fault) ::setenv("ACCEL_FAULT_SAVE", fault, 1);
  f.train(2);
  f.acc->save_state((dir / "ckpt").string());  // killed inside, at the injected file
}

TEST(Checkpoint, KillDuringSaveLeavesThePreviousCheckpointLoadable) {
  const std::vector<std::string> files = {"model.safetensors",
                                          "optimizer.safetensors",
                                          "optimizer.json",
                                          "scheduler.json",
                                          "scaler.safetensors",
                                          "dataloader.json",
                                          "custom_checkpoint_0.safetensors",
                                          "random_states_0.safetensors",
                                          "accel_state.json"};
  for (const auto& file : files) {
    Path d = fresh_dir("fault");
    auto res = run_ranks(1, "DISABLED_CkptWorker.SaveThenCrash",
                         {{"DIR", d.string()}, {"PREC", "fp16"}, {"ACCEL_FAULT_SAVE", file}});
    ASSERT_EQ(res[0].exit_code, 128 + SIGKILL) << file << "\n" << describe(res);
    Fixture f(AcceleratorOptions().mixed_precision("fp16"));
    f.acc->load_state((d / "ckpt").string());
    EXPECT_EQ(f.counter->step, 3) << "after a kill at " << file << " the previous checkpoint must load";
    fs::remove_all(d);
  }
}

TEST(DISABLED_CkptWorker, SaveTwoRanks) {
  Fixture f(AcceleratorOptions(), current_environment());
  f.train(2);  // mid-epoch: 40 samples / (8 x 2 ranks) = 3 batches per epoch
  f.acc->save_state((Path(env_or("DIR", "/tmp")) / "ckpt").string());
}

TEST(Checkpoint, OtherWorldSizeLoadsWeightsAndReportsTheDataPosition) {
  Path d = fresh_dir("world");
  auto res = run_ranks(2, "DISABLED_CkptWorker.SaveTwoRanks", {{"DIR", d.string()}});
  for (auto& r : res) ASSERT_EQ(r.exit_code, 0) << describe(res);
  auto saved = checkpoint::load_file(d / "ckpt" / "model.safetensors");
  Fixture f;  // one process
  std::FILE* log = std::tmpfile();
  logger().set_stream(log);
  f.acc->load_state((d / "ckpt").string());
  logger().set_stream(stderr);
  std::rewind(log);
  char buf[4096] = {0};
  std::string text(buf, std::fread(buf, 1, sizeof(buf) - 1, log));
  std::fclose(log);
  EXPECT_NE(text.find("cannot be transferred"), std::string::npos) << text;
  for (auto& p : f.model->named_parameters()) EXPECT_TRUE(at::equal(p.value(), saved.at(p.key()))) << p.key();
  EXPECT_EQ(f.counter->step, 2);
  EXPECT_EQ(f.loader->epoch(), 0);
  EXPECT_EQ(f.loader->position(), 0);
  auto& st = static_cast<torch::optim::AdamWParamState&>(
      *f.opt->state().at(f.model->parameters()[0].unsafeGetTensorImpl()));
  EXPECT_EQ(st.step(), 2);
  fs::remove_all(d);
}
