// accel-check: the program `accel test` launches with the user's configuration. Each rank runs
// the checks below and rank 0 prints one PASS/FAIL line per item; the exit code is 0 only when
// every item passed on every rank.
//   accel test [--config_file F]            (or: accel launch --num_processes 2 build/bin/accel-check)
#include <accel/accel.h>
#include <torch/torch.h>

#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace {

struct Item {
  std::string name;
  std::function<void(accel::Accelerator&)> run;
};

void expect(bool ok, const std::string& what) {
  if (!ok) throw accel::Error(what);
}

struct NetImpl : torch::nn::Module {
  NetImpl() : a(register_module("a", torch::nn::Linear(4, 8))), b(register_module("b", torch::nn::Linear(8, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) { return b(torch::tanh(a(x))); }
  torch::nn::Linear a, b;
};
TORCH_MODULE(Net);

}  // namespace

int main() {
  std::unique_ptr<accel::Accelerator> acc;
  try {
    acc = std::make_unique<accel::Accelerator>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL  rendezvous / start-up: %s\n", e.what());
    return 1;
  }
  const int world = acc->num_processes();
  const int rank = acc->process_index();
  std::vector<Item> items = {
      {"rendezvous and process group", [](accel::Accelerator& a) { a.wait_for_everyone(); }},
      {"all-reduce (sum, mean, max)",
       [&](accel::Accelerator& a) {
         auto t = torch::full({3}, static_cast<float>(rank + 1));
         expect(a.reduce(t, "sum")[0].item<float>() == world * (world + 1) / 2.0f, "sum is wrong");
         expect(a.reduce(t, "max")[0].item<float>() == static_cast<float>(world), "max is wrong");
       }},
      {"gather and broadcast",
       [&](accel::Accelerator& a) {
         auto g = a.gather(torch::full({1}, rank, torch::kLong));
         for (int r = 0; r < world; ++r) expect(g[r].item<int64_t>() == r, "gather order is wrong");
         expect(torch::equal(a.broadcast(rank == 0 ? torch::arange(4) : torch::zeros({4}, torch::kLong)), torch::arange(4)),
                "broadcast is wrong");
       }},
      {"data sharding (disjoint, complete, same count per rank)",
       [&](accel::Accelerator& a) {
         auto loader = a.prepare(accel::data::make_loader<torch::Tensor>(
             64, [](const accel::data::Indices& i) { return torch::tensor(i); },
             accel::data::DataLoaderOptions(4).shuffle(true)));
         std::set<int64_t> seen;
         for (auto& b : *loader) {
           auto all = a.gather_for_metrics(b.to(torch::kCPU));
           for (int64_t i = 0; i < all.size(0); ++i) seen.insert(all[i].item<int64_t>());
         }
         expect(seen.size() == 64, "ranks did not see the whole dataset exactly once");
       }},
      {"training equivalence (N ranks x B == 1 process x N*B)",
       [&](accel::Accelerator& a) {
         torch::manual_seed(1);
         auto model = a.prepare(Net());
         auto opt = a.prepare(torch::optim::SGD(model->parameters(), 0.1));
         torch::manual_seed(2);
         auto x = torch::randn({world * 4, 4}), y = torch::randn({world * 4, 1});
         auto xd = x.to(a.device()), yd = y.to(a.device());
         a.backward(torch::mse_loss(model->forward(xd.narrow(0, rank * 4, 4)).to(torch::kFloat), yd.narrow(0, rank * 4, 4)));
         opt->step();
         torch::manual_seed(1);
         Net ref;
         torch::optim::SGD ref_opt(ref->parameters(), 0.1);
         torch::mse_loss(ref->forward(x), y).backward();
         ref_opt.step();
         auto p = model->parameters(), q = ref->parameters();
         const bool mp = a.mixed_precision() != accel::MixedPrecision::kNo;
         for (size_t i = 0; i < p.size(); ++i) {
           expect(torch::allclose(p[i].cpu(), q[i], mp ? 1e-2 : 1e-5, mp ? 1e-3 : 1e-6), "weights differ from the reference");
         }
       }},
      {"mixed precision (" + accel::to_string(acc->mixed_precision()) + ")",
       [&](accel::Accelerator& a) {
         auto g = a.autocast();
         auto out = torch::mm(torch::randn({4, 4}, a.device()), torch::randn({4, 4}, a.device()));
         auto want = a.autocast_dtype().value_or(torch::kFloat);
         expect(out.scalar_type() == want, "autocast produced the wrong dtype");
       }},
  };
  int failed = 0;
  for (auto& item : items) {
    std::string error;
    try {
      item.run(*acc);
    } catch (const std::exception& e) {
      error = e.what();
    }
    int bad = error.empty() ? 0 : 1;
    try {
      bad = acc->reduce(torch::full({1}, bad, torch::kInt), "sum").item<int>();
    } catch (const std::exception& e) {
      error += std::string(" (and the result could not be collected: ") + e.what() + ")";
      bad = 1;
    }
    if (!error.empty()) std::fprintf(stderr, "[rank %d] %s: %s\n", rank, item.name.c_str(), error.c_str());
    if (rank == 0) std::printf("%s  %s\n", bad ? "FAIL" : "PASS", item.name.c_str());
    failed += bad ? 1 : 0;
  }
  if (rank == 0) {
    std::printf("%d of %zu checks passed on %d process(es), device %s\n",
                static_cast<int>(items.size()) - failed, items.size(), world, acc->device().str().c_str());
  }
  std::fflush(stdout);
  return failed == 0 ? 0 : 1;
}
