// Data-parallel scaling of a MiniLM-sized BERT training step (6 layers, hidden 384, random
// weights), fp32 on CPU, under any strategy (`--sharding NO_SHARD|SHARD_OPTIMIZER|SHARD_GRAD_OP|
// FULL_SHARD`, units BertLayer and BertEmbeddings; default: DDP or what `accel launch` says). Each
// process trains `--steps` steps on batch `--batch` of length `--seq` and rank 0 prints JSON with
// samples/s, the communication the step waited for (exposed) and the communication's total
// (DDP: first bucket launch to done; sharded: the step's collectives timed alone).
// bench/ddp_scaling.sh runs 1 process x 1 thread and 2 processes x 1 thread alternately and prints
// the scaling efficiency; bench/sharded_speed.sh compares the strategies on 2 processes.
//
// Build: bash scripts/setup.sh   (target bench_ddp_step)
// Run:   bash bench/ddp_scaling.sh            or, by hand:
//        OMP_NUM_THREADS=1 build/bin/accel launch --num_processes 2 build/bin/bench_ddp_step --steps 20
#include <accel/accel.h>
#include <accel/distributed/sharded.h>
#include <accel/distributed/strategy.h>
#include <accel/models/bert.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  int64_t steps = 20, batch = 8, seq = 128, warmup = 3;
  std::string sharding;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--sharding") {
      sharding = argv[i + 1];
      continue;
    }
    int64_t v = std::atoll(argv[i + 1]);
    if (a == "--steps")
      steps = v;
    else if (a == "--batch")
      batch = v;
    else if (a == "--seq")
      seq = v;
    else if (a == "--warmup")
      warmup = v;
  }
  accel::ShardingOptions sh;
  if (!sharding.empty()) {
    sh.strategy(accel::parse_sharding_strategy(sharding)).wrap_module_types({"BertLayer", "BertEmbeddings"});
  }
  accel::Accelerator acc(accel::AcceleratorOptions().sharding(sh));
  accel::models::BertConfig cfg;
  cfg.vocab_size = 30522;
  cfg.hidden_size = 384;
  cfg.num_hidden_layers = 6;
  cfg.num_attention_heads = 12;
  cfg.intermediate_size = 1536;
  cfg.num_labels = 2;
  torch::manual_seed(0);
  auto model = acc.prepare(accel::models::BertForSequenceClassification(cfg));
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-5)));
  torch::manual_seed(1 + acc.process_index());
  accel::models::BertBatch b{torch::randint(1000, 20000, {batch, seq}),
                             torch::ones({batch, seq}, torch::kLong),
                             torch::zeros({batch, seq}, torch::kLong), torch::randint(0, 2, {batch})};
  using Clock = std::chrono::steady_clock;
  std::vector<double> times, exposed, comm;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    acc.wait_for_everyone();
    if (auto* engine = dynamic_cast<accel::distributed::ShardedEngine*>(&model.strategy()))
      engine->reset_stats();
    auto t0 = Clock::now();
    auto out = model->forward(b);
    acc.backward(out.loss);
    opt->step();
    opt->zero_grad();
    double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s >= warmup) {
      times.push_back(dt);
      if (auto* engine = dynamic_cast<accel::distributed::ShardedEngine*>(&model.strategy())) {
        const auto st = engine->stats();
        exposed.push_back(st.gather_wait_s + st.reduce_scatter_wait_s + st.step_gather_s);
      } else if (acc.num_processes() > 1) {
        const auto stats = model.strategy().comm_stats();
        exposed.push_back(stats.exposed_wait_s);
        comm.push_back(stats.total_s);
      }
    }
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  // Sharded: the communication of one step alone, to see how much of it the step hid.
  if (auto* engine = dynamic_cast<accel::distributed::ShardedEngine*>(&model.strategy())) {
    const double alone = engine->time_step_communication(5);
    comm.assign(exposed.size(), alone);
  }
  double med_exposed = 0, med_comm = 0;
  if (!exposed.empty()) {
    std::sort(exposed.begin(), exposed.end());
    std::sort(comm.begin(), comm.end());
    med_exposed = exposed[exposed.size() / 2];
    med_comm = comm[comm.size() / 2];
  }
  if (acc.is_main_process()) {
    std::printf(
        "{\"strategy\": \"%s\", \"processes\": %d, \"threads\": %d, \"batch\": %lld, \"seq\": %lld, "
        "\"step_s\": %.4f, \"samples_per_s\": %.3f, \"comm_exposed_s\": %.4f, \"comm_total_s\": %.4f}\n",
        model.strategy().name().c_str(), acc.num_processes(), torch::get_num_threads(),
        static_cast<long long>(batch), static_cast<long long>(seq), med, acc.num_processes() * batch / med,
        med_exposed, med_comm);
  }
  return 0;
}
