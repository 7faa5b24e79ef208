// bench_gpu_collectives: checks accel's process group and DDP on the device a GPU machine gives
// (bench/gpu/run_all.sh runs it): every collective with closed-form expected values on CUDA (or
// CPU) tensors, then one DDP training step whose parameters must agree on every rank. Prints one
// PASS/FAIL line per check on rank 0, writes them as JSON and exits 0 only when all passed.
//
// Build: cmake --build build --target bench_gpu_collectives accel_cli   (the NCCL checks need a
// CUDA torch; a CPU build runs the Gloo checks on CPU tensors with --cpu). Run:
//   accel launch --num_processes 1 bench_gpu_collectives --backend nccl --json nccl_ws1.json
//   accel launch --num_processes 2 bench_gpu_collectives --backend gloo --json gloo_cuda_ws2.json
// Options: --backend auto|nccl|gloo (default auto), --cpu (CPU tensors), --json FILE,
//          --busbw_mib N (size of the timed all-reduce, default 64; 0 = none).
#include <accel/accel.h>
#include <accel/core/env.h>
#include <accel/distributed/process_group.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Check {
  std::string name;
  bool ok = false;
  std::string detail;
};

void expect_equal(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  const at::Tensor g = got.to(at::kCPU, at::kDouble), w = want.to(at::kCPU, at::kDouble);
  if (!g.sizes().equals(w.sizes()) || !at::allclose(g, w, 1e-3, 1e-3)) {
    std::ostringstream os;
    os << what << ": got " << g.flatten().slice(0, 0, 6) << " want " << w.flatten().slice(0, 0, 6);
    throw std::runtime_error(os.str());
  }
}

// A JSON string literal.
std::string quoted(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

struct NetImpl : torch::nn::Module {
  NetImpl()
      : fc1(register_module("fc1", torch::nn::Linear(8, 16))),
        fc2(register_module("fc2", torch::nn::Linear(16, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::tanh(fc1(x))); }
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Net);

}  // namespace

int main(int argc, char** argv) {
  std::string backend = "auto", json_path;
  bool cpu = false;
  int64_t busbw_mib = 64;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_gpu_collectives: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--backend") {
      backend = next();
    } else if (a == "--cpu") {
      cpu = true;
    } else if (a == "--json") {
      json_path = next();
    } else if (a == "--busbw_mib") {
      busbw_mib = std::stoll(next());
    } else {
      std::fprintf(stderr,
                   "bench_gpu_collectives: unknown option %s (see the comment at the top of "
                   "bench/gpu_collectives.cpp)\n",
                   a.c_str());
      return 2;
    }
  }
  accel::ProcessState state;
  try {
    state = accel::make_process_state(accel::read_process_env(accel::current_environment()), cpu,
                                      accel::cuda_device_count());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL  process state: %s\n", e.what());
    return 1;
  }
  const int rank = state.rank, world = state.world_size;
  const auto dev = state.device;
  std::vector<Check> checks;
  auto run = [&](const std::string& name, const std::function<std::string()>& fn) {
    Check c{name, false, ""};
    try {
      c.detail = fn();
      c.ok = true;
    } catch (const std::exception& e) {
      c.detail = e.what();
      if (auto nl = c.detail.find('\n'); nl != std::string::npos) c.detail = c.detail.substr(0, nl);
    }
    checks.push_back(c);
  };

  std::shared_ptr<accel::distributed::ProcessGroup> pg;
  double busbw = 0;
  run("process group (" + backend + ", world size " + std::to_string(world) + ", " + dev.str() + ")", [&] {
    accel::distributed::ProcessGroup::Options po;
    po.backend = backend;
    po.timeout = std::chrono::milliseconds(60000);
    pg = accel::distributed::ProcessGroup::create(state, po);
    return pg->backend_name();
  });
  if (pg) {
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(dev);
    const double w = world, tri = w * (w + 1) / 2;
    run("all_reduce sum", [&] {
      auto t = torch::full({5}, rank + 1.0, f32);
      pg->all_reduce(t, accel::distributed::ReduceOp::kSum);
      expect_equal(t, torch::full({5}, tri), "sum of rank + 1");
      return std::string("ok");
    });
    run("all_reduce max", [&] {
      auto t = torch::full({3}, rank * 2.0, f32);
      pg->all_reduce(t, accel::distributed::ReduceOp::kMax);
      expect_equal(t, torch::full({3}, 2.0 * (w - 1)), "max of 2 rank");
      return std::string("ok");
    });
    if (dev.is_cuda() && pg->backend_name() == "nccl") {
      run("all_reduce sum bf16", [&] {
        auto t = torch::full({7}, rank + 1.0, f32.dtype(torch::kBFloat16));
        pg->all_reduce(t, accel::distributed::ReduceOp::kSum);
        expect_equal(t, torch::full({7}, tri), "bf16 sum");
        return std::string("ok");
      });
    }
    run("broadcast from 0", [&] {
      auto t = torch::full({4}, rank * 10.0 + 7.0, f32);
      pg->broadcast(t, 0);
      expect_equal(t, torch::full({4}, 7.0), "rank 0's value");
      return std::string("ok");
    });
    run("all_gather", [&] {
      auto t = torch::arange(3, f32) + rank * 3.0;
      auto all = pg->all_gather(t);
      if (static_cast<int>(all.size()) != world) throw std::runtime_error("wrong number of tensors");
      for (int r = 0; r < world; ++r)
        expect_equal(all[r], torch::arange(3) + r * 3.0, "rank " + std::to_string(r));
      return std::string("ok");
    });
    run("all_gather_into / reduce_scatter", [&] {
      auto in = torch::full({2}, rank + 1.0, f32);
      auto out = torch::empty({2 * world}, f32);
      pg->all_gather_into_async(out, in)->wait();
      auto want = torch::arange(world).repeat_interleave(2).to(torch::kDouble) + 1.0;
      expect_equal(out, want, "all_gather_into");
      auto big = torch::full({2 * world}, rank + 1.0, f32);
      auto mine = torch::empty({2}, f32);
      pg->reduce_scatter_async(mine, big, accel::distributed::ReduceOp::kSum)->wait();
      expect_equal(mine, torch::full({2}, tri), "reduce_scatter");
      return std::string("ok");
    });
    if (busbw_mib > 0) {
      run("all_reduce " + std::to_string(busbw_mib) + " MiB (timed)", [&] {
        auto t = torch::ones({busbw_mib * 1024 * 1024 / 4}, f32);
        pg->all_reduce(t);  // warm-up (NCCL communicator set-up)
        if (dev.is_cuda()) torch::cuda::synchronize();
        const int reps = 5;
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < reps; ++i) pg->all_reduce(t);
        if (dev.is_cuda()) torch::cuda::synchronize();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
        // NCCL's bus bandwidth: bytes * 2 (n - 1) / n per second.
        busbw = world > 1 ? static_cast<double>(t.nbytes()) * 2.0 * (w - 1) / w / s / 1e9 : 0.0;
        char buf[96];
        std::snprintf(buf, sizeof buf, "%.3f ms per all-reduce, bus bandwidth %.2f GB/s", s * 1e3, busbw);
        return std::string(buf);
      });
    }
    pg->barrier();
  }
  // The Accelerator makes its own group on the same MASTER_PORT: release this one (and rank 0's
  // store, which listens on that port) first.
  const std::string pg_backend = pg ? pg->backend_name() : "";
  pg.reset();

  // One DDP step through the Accelerator with the same backend: parameters must agree afterwards.
  if (!pg_backend.empty() && world > 1) {
    run("DDP step (" + pg_backend + "): parameters equal on every rank", [&] {
      accel::Accelerator acc(accel::AcceleratorOptions().cpu(cpu).seed(0).process_group(
          accel::ProcessGroupOptions().backend(backend).timeout_s(60.0)));
      torch::manual_seed(0);
      Net net;
      auto model = acc.prepare(net);
      auto opt = acc.prepare(torch::optim::AdamW(model->parameters(), torch::optim::AdamWOptions(1e-2)));
      auto x = torch::randn({4, 8}).add(rank).to(acc.device());  // different data per rank
      auto loss = model(x).pow(2).mean();
      acc.backward(loss);
      opt->step();
      opt->zero_grad();
      auto flat =
          torch::cat({net->fc1->weight.flatten(), net->fc1->bias, net->fc2->weight.flatten(), net->fc2->bias})
              .detach();
      auto all = acc.gather(flat.unsqueeze(0));  // (world, n)
      for (int r = 1; r < world; ++r)
        expect_equal(all[r], all[0], "rank " + std::to_string(r) + " vs rank 0");
      return std::string("device ") + acc.device().str();
    });
  }

  bool all_ok = true;
  for (const auto& c : checks) all_ok = all_ok && c.ok;
  if (rank == 0) {
    for (const auto& c : checks)
      std::printf("%s  %s%s%s\n", c.ok ? "PASS" : "FAIL", c.name.c_str(), c.detail.empty() ? "" : ": ",
                  c.detail.c_str());
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      out << "{\"backend\": " << quoted(backend) << ", \"world_size\": " << world
          << ", \"device\": " << quoted(dev.str()) << ", \"ok\": " << (all_ok ? "true" : "false")
          << ", \"busbw_gbps\": " << busbw << ", \"checks\": [";
      for (size_t i = 0; i < checks.size(); ++i)
        out << (i ? ", " : "") << "{\"name\": " << quoted(checks[i].name)
            << ", \"ok\": " << (checks[i].ok ? "true" : "false")
            << ", \"detail\": " << quoted(checks[i].detail) << "}";
      out << "]}\n";
    }
    std::printf("%s: %zu checks, backend %s, world size %d, device %s\n", all_ok ? "PASS" : "FAIL",
                checks.size(), backend.c_str(), world, dev.str().c_str());
  }
  return all_ok ? 0 : 1;
}
