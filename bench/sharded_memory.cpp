// Peak tensor memory per process of a BERT training step under a sharding strategy, measured
// with accel's counting CPU allocator (bench/memory.h): random-weight BERT (default
// bert-large-uncased), AdamW, batch `--batch` of `--seq` tokens, `--steps` steps. Rank 0 prints
// JSON: the peak over the training steps after the first (the steady state: until its first
// forward a FULL_SHARD unit is still whole, as the model was built whole) and the bytes held after
// a backward. bench/sharded_memory.sh compares FULL_SHARD on 4
// processes with DDP (whose bytes per process do not depend on the process count).
//
// Build: cmake --build build --target bench_sharded_memory
// Run:   bash bench/sharded_memory.sh    (or, by hand, with OMP_NUM_THREADS=1:
//        build/bin/accel launch --num_processes 4 build/bin/bench_sharded_memory --sharding FULL_SHARD
//        [--model bert-large-uncased --batch 2 --seq 64 --steps 3])
#include <accel/accel.h>
#include <accel/bench/memory.h>
#include <accel/models/bert.h>
#include <torch/torch.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  accel::bench::install_counting_cpu_allocator();  // before the first tensor
  std::string model_name = "bert-large-uncased", sharding;
  int64_t batch = 2, seq = 64, steps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--model")
      model_name = v;
    else if (a == "--sharding")
      sharding = v;
    else if (a == "--batch")
      batch = std::stoll(v);
    else if (a == "--seq")
      seq = std::stoll(v);
    else if (a == "--steps")
      steps = std::stoll(v);
  }
  try {
    accel::ShardingOptions sh;
    if (!sharding.empty()) {
      sh.strategy(accel::parse_sharding_strategy(sharding))
          .wrap_module_types({"BertLayer", "BertEmbeddings"});
    }
    accel::Accelerator acc(accel::AcceleratorOptions().sharding(sh));
    auto cfg = accel::models::BertConfig::from_name(model_name);
    cfg.num_labels = 2;
    torch::manual_seed(0);
    auto model = acc.prepare(accel::models::BertForSequenceClassification(cfg));
    auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-5)));
    accel::models::BertBatch b{torch::randint(1000, 20000, {batch, seq}),
                               torch::ones({batch, seq}, torch::kLong),
                               torch::zeros({batch, seq}, torch::kLong), torch::randint(0, 2, {batch})};
    int64_t after_backward = 0;
    for (int64_t s = 0; s < steps; ++s) {
      if (s == 1) accel::bench::reset_cpu_tensor_bytes_peak();
      auto out = model(b);
      acc.backward(out.loss);
      after_backward = accel::bench::cpu_tensor_bytes_current();
      opt->step();
      opt->zero_grad();
    }
    const int64_t steady_peak = accel::bench::cpu_tensor_bytes_peak();
    if (acc.is_main_process()) {
      std::printf(
          "{\"strategy\": \"%s\", \"processes\": %d, \"model\": \"%s\", \"batch\": %lld, \"seq\": %lld, "
          "\"steady_peak_bytes\": %lld, \"bytes_after_backward\": %lld}\n",
          model.strategy().name().c_str(), acc.num_processes(), model_name.c_str(),
          static_cast<long long>(batch), static_cast<long long>(seq), static_cast<long long>(steady_peak),
          static_cast<long long>(after_backward));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sharded_memory: error: %s\n", e.what());
    return 1;
  }
}
