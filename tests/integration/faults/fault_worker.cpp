// A small data-parallel training program that fails on purpose, for the fault-injection suite
// (tests/integration/scripts/faults.sh). It trains the toy MLP with automatic checkpoints, resumes
// from the latest complete checkpoint when one exists, and injects one fault on the first attempt
// (TORCHELASTIC_RESTART_COUNT 0) so that `accel launch --max_restarts 1` can finish the run.
//
// Build:  cmake --build build --target accel_fault_worker
// Run:    build/bin/accel launch --num_processes 2 build/bin/accel_fault_worker --out /tmp/f
//             --steps 40 --save_every 5 --fault kill --fault_rank 1 --fault_step 12
//         build/bin/accel_fault_worker --check /tmp/f      (does the latest checkpoint load?)
//
// Faults (--fault): kill (SIGKILL), segv (a real invalid write), throw (uncaught exception),
// hang (sleeps before its backward, so the other ranks wait inside the gradient all-reduce),
// stop (the same with SIGSTOP: a frozen process),
// nojoin (never creates the Accelerator, so the rendezvous is incomplete), none.
// Each step rank r writes its step to OUT/progress.rank<r>; the finished run writes
// OUT/final.safetensors (rank 0's weights) and prints "finished <steps> steps".
#include <accel/accel.h>
#include <accel/checkpoint/safetensors.h>
#include <accel/checkpoint/state_folder.h>
#include <accel/core/fs.h>
#include <torch/torch.h>

#include "../../../examples/basic/toy_task.h"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace fs = accel::fs;

namespace {

struct Args {
  std::string out;
  std::string check;
  int64_t steps = 40;
  int64_t save_every = 5;
  std::string fault = "none";
  int64_t fault_rank = 1;
  int64_t fault_step = 12;
  bool fault_always = false;
  int64_t step_sleep_ms = 0;
  int64_t hidden = 256;
};

[[noreturn]] void usage(const std::string& what) {
  std::fprintf(stderr,
               "fault_worker: %s\nusage: fault_worker --out DIR [--steps N] [--save_every K] [--fault "
               "none|kill|segv|throw|hang|stop|nojoin] [--fault_rank R] [--fault_step S] [--fault_always] "
               "[--step_sleep_ms MS] [--hidden H]\n       fault_worker --check DIR [--hidden H]\n",
               what.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value for " + k);
      return argv[++i];
    };
    if (k == "--out")
      a.out = value();
    else if (k == "--check")
      a.check = value();
    else if (k == "--steps")
      a.steps = std::stoll(value());
    else if (k == "--save_every")
      a.save_every = std::stoll(value());
    else if (k == "--fault")
      a.fault = value();
    else if (k == "--fault_rank")
      a.fault_rank = std::stoll(value());
    else if (k == "--fault_step")
      a.fault_step = std::stoll(value());
    else if (k == "--fault_always")
      a.fault_always = true;
    else if (k == "--step_sleep_ms")
      a.step_sleep_ms = std::stoll(value());
    else if (k == "--hidden")
      a.hidden = std::stoll(value());
    else
      usage("unknown argument " + k);
  }
  if (a.out.empty() == a.check.empty()) usage("give exactly one of --out and --check");
  static const char* kFaults[] = {"none", "kill", "segv", "throw", "hang", "stop", "nojoin"};
  if (std::find(std::begin(kFaults), std::end(kFaults), a.fault) == std::end(kFaults))
    usage("unknown fault " + a.fault);
  return a;
}

// The user's step counter, saved with the checkpoint.
struct Counter {
  int64_t step = 0;
  std::map<std::string, at::Tensor> state_dict() const { return {{"step", at::full({1}, step, at::kLong)}}; }
  void load_state_dict(const std::map<std::string, at::Tensor>& s) { step = s.at("step").item<int64_t>(); }
};

void write_text_atomic(const std::string& p, const std::string& text) {
  fs::write_file_atomic(p, text);
}

[[noreturn]] void hang_forever() {
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

void inject(const Args& a, int64_t rank) {
  if (a.fault == "kill") {
    std::raise(SIGKILL);
  } else if (a.fault == "segv") {
    volatile uintptr_t address = 16;                // volatile: the compiler cannot see the bad address
    *reinterpret_cast<volatile int*>(address) = 1;  // a real invalid write, as a bug would make
  } else if (a.fault == "throw") {
    throw std::runtime_error("injected failure on rank " + std::to_string(rank) + " at step " +
                             std::to_string(a.fault_step));
  } else if (a.fault == "stop") {
    std::fprintf(stderr, "fault_worker: rank %lld stops itself (SIGSTOP) at step %lld\n",
                 static_cast<long long>(rank), static_cast<long long>(a.fault_step));
    std::raise(SIGSTOP);
  } else if (a.fault == "hang") {
    std::fprintf(stderr, "fault_worker: rank %lld hangs now (step %lld)\n", static_cast<long long>(rank),
                 static_cast<long long>(a.fault_step));
    hang_forever();
  }
}

int run(const Args& a) {
  const char* restart = std::getenv("TORCHELASTIC_RESTART_COUNT");
  const bool first_attempt = restart == nullptr || std::string(restart) == "0";
  const bool faulty = a.fault != "none" && (first_attempt || a.fault_always);
  const char* rank_env = std::getenv("RANK");
  const int64_t env_rank = rank_env ? std::atoll(rank_env) : 0;
  if (faulty && a.fault == "nojoin" && env_rank == a.fault_rank) {
    std::fprintf(stderr, "fault_worker: rank %lld will never join the rendezvous\n",
                 static_cast<long long>(env_rank));
    hang_forever();
  }

  const bool checking = !a.check.empty();
  const std::string root = checking ? a.check : a.out;
  if (!checking) fs::create_directories(root);
  accel::Accelerator acc(accel::AcceleratorOptions().cpu(true).seed(0).project(
      accel::ProjectOptions().project_dir(root).automatic_checkpoint_naming(true).total_limit(3)));
  torch::manual_seed(1);
  auto model = acc.prepare(toy::Net(64, a.hidden));
  auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-3)));
  auto [x, y] = toy::make_data(4096, 1);
  auto loader =
      acc.prepare(accel::data::make_tensor_loader({x, y}, accel::data::DataLoaderOptions(32).shuffle(true)));
  auto counter = std::make_shared<Counter>();
  acc.register_for_checkpointing(counter);

  const auto existing = accel::checkpoint::list_checkpoints(fs::join(root, "checkpoints"));
  if (checking) {
    if (existing.empty()) {
      std::fprintf(stderr, "fault_worker: no complete checkpoint under %s\n",
                   fs::join(root, "checkpoints").c_str());
      return 1;
    }
    acc.load_state();
    std::printf("checkpoint %s loads: step %lld\n", existing.back().c_str(),
                static_cast<long long>(counter->step));
    return 0;
  }
  if (!existing.empty()) {
    acc.load_state();
    acc.print("resumed from ", fs::filename(existing.back()), " at step ", counter->step);
  }
  const int64_t rank = acc.process_index();
  const std::string progress = fs::join(a.out, "progress.rank" + std::to_string(rank));
  while (counter->step < a.steps) {
    for (auto& batch : *loader) {
      const int64_t step = counter->step + 1;
      const bool fire = faulty && rank == a.fault_rank && step == a.fault_step;
      auto loss = torch::cross_entropy_loss(model->forward(batch[0]), batch[1]);
      if (fire) inject(a, rank);
      acc.backward(loss);
      opt->step();
      opt->zero_grad();
      counter->step = step;
      write_text_atomic(progress, std::to_string(step) + "\n");
      if (step % a.save_every == 0) acc.save_state();
      if (a.step_sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.step_sleep_ms));
      if (counter->step >= a.steps) break;
    }
  }
  acc.wait_for_everyone();
  if (acc.is_main_process()) {
    accel::checkpoint::TensorMap w;
    for (auto& p : model->named_parameters()) w[p.key()] = p.value().detach().clone();
    accel::checkpoint::save_file(w, fs::join(a.out, "final.safetensors"));
  }
  acc.print("finished ", counter->step, " steps");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.fault == "throw") return run(a);  // let the injected exception escape, as a user's would
  try {
    return run(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fault_worker: error: %s\n", e.what());
    return 1;
  }
}
