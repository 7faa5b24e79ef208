// accel-check: the program `accel test` launches with the user's configuration. Each rank runs
// the checks below and rank 0 prints one PASS/FAIL line per item; the exit code is 0 only when
// every item passed on every rank.
//   accel test [--config_file F]            (or: accel launch --num_processes 2 build/bin/accel-check)
#include <accel/accel.h>
#include <accel/distributed/strategy.h>
#include <accel/distributed/unit.h>
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

// A unit of sharding (its forward runs through accel::unit_forward).
struct CheckLayerImpl : torch::nn::Module {
  CheckLayerImpl(int64_t in, int64_t out) : fc(register_module("fc", torch::nn::Linear(in, out))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    return accel::unit_forward(*this, [this](const torch::Tensor& h) { return fc(h); }, x);
  }
  torch::nn::Linear fc;
};
TORCH_MODULE(CheckLayer);

struct NetImpl : torch::nn::Module {
  NetImpl() : a(register_module("a", CheckLayer(4, 9))), b(register_module("b", CheckLayer(9, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) { return b(torch::tanh(a(x))); }
  CheckLayer a, b;
};
TORCH_MODULE(Net);

}  // namespace

int main() {
  std::unique_ptr<accel::Accelerator> acc;
  try {
    // The configuration's strategy, with this program's own layer as the unit to wrap.
    acc = std::make_unique<accel::Accelerator>(
        accel::AcceleratorOptions().sharding(accel::ShardingOptions().wrap_module_types({"CheckLayer"})));
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
         a.backward(torch::mse_loss(model(xd.narrow(0, rank * 4, 4)), yd.narrow(0, rank * 4, 4)));
         opt->step();
         torch::manual_seed(1);
         Net ref;
         torch::optim::SGD ref_opt(ref->parameters(), 0.1);
         torch::mse_loss(ref->forward(x), y).backward();
         ref_opt.step();
         // The full weights (gathered from the shards when sharded).
         auto got = a.get_state_dict(model);
         const bool mp = a.mixed_precision() != accel::MixedPrecision::kNo;
         for (auto& q : ref->named_parameters()) {
           expect(torch::allclose(got.at(q.key()).to(torch::kFloat), q.value(), mp ? 1e-2 : 1e-5, mp ? 1e-3 : 1e-6),
                  "weight " + q.key() + " differs from the reference");
         }
       }},
      {"parallel strategy (" + std::string(world > 1 ? accel::to_string(acc->sharding().strategy) : "one process") + ")",
       [&](accel::Accelerator& a) {
         torch::manual_seed(3);
         auto model = a.prepare(Net());
         auto opt = a.prepare(torch::optim::SGD(model->parameters(), 0.1));
         int64_t total = 0, mine = 0;
         for (const auto& t : model.strategy().full_layout()) {
           int64_t n = 1;
           for (auto d : t.shape) n *= d;
           total += n;
         }
         for (auto& p : opt->parameters()) mine += p.numel();
         const int64_t all = a.reduce(torch::full({1}, mine, torch::kLong), "sum").item<int64_t>();
         if (model.strategy().sharded()) {
           // Each rank steps on a share; together they cover every element (once per replica).
           expect(mine < total, "each rank should step on a share of the parameters, not all of them");
           expect(all >= total && all % total == 0, "the ranks' shares do not cover the parameters exactly");
         } else {
           expect(mine == total, "every rank should step on all parameters");
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
