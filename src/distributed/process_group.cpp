#include "accel/distributed/process_group.h"

#include "accel/core/error.h"
#include "accel/core/logging.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef ACCEL_HAS_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef ACCEL_HAS_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace accel::distributed {

namespace {

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return c10d::ReduceOp::SUM;
    case ReduceOp::kMax:
      return c10d::ReduceOp::MAX;
    case ReduceOp::kMin:
      return c10d::ReduceOp::MIN;
    case ReduceOp::kProduct:
      return c10d::ReduceOp::PRODUCT;
  }
  return c10d::ReduceOp::SUM;
}

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const c10::Error& err) {
    return err.what_without_backtrace();
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}

// The local address on the route to `host` (no packet is sent: a UDP connect only picks the
// route). Empty when it cannot be determined.
std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr)
    return "";
  std::string out;
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      char buf[INET_ADDRSTRLEN];
      if (::inet_ntop(AF_INET, &local.sin_addr, buf, sizeof(buf))) out = buf;
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(res);
  return out;
}

class C10dWork : public Work {
 public:
  C10dWork(c10::intrusive_ptr<c10d::Work> work, std::string op, int rank, std::chrono::milliseconds timeout)
      : work_(std::move(work)), op_(std::move(op)), rank_(rank), timeout_(timeout) {}

  void wait() override {
    try {
      work_->wait(timeout_);
    } catch (const std::exception&) {
      throw DistributedError(
          c10::str("[rank ", rank_, "] collective '", op_, "' failed: ", what_of(std::current_exception()),
                   "\nHINT: another rank probably exited or stopped responding (timeout ",
                   timeout_.count() / 1000.0, " s); look at the other ranks' output for the first error."));
    }
  }
  bool completed() override { return work_->isCompleted(); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string op_;
  int rank_;
  std::chrono::milliseconds timeout_;
};

class C10dProcessGroup : public ProcessGroup {
 public:
  C10dProcessGroup(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::Backend> backend,
                   std::string name, int rank, int world, std::chrono::milliseconds timeout)
      : store_(std::move(store)),
        backend_(std::move(backend)),
        name_(std::move(name)),
        rank_(rank),
        world_(world),
        timeout_(timeout) {}

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend_name() const override { return name_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  std::shared_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) override {
    std::vector<at::Tensor> ts{tensor};
    c10d::AllreduceOptions o;
    o.reduceOp = to_c10d(op);
    o.timeout = timeout_;
    return run("all_reduce", [&] { return backend_->allreduce(ts, o); });
  }

  std::vector<at::Tensor> all_gather(const at::Tensor& tensor) override {
    at::Tensor input = tensor.contiguous();
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < world_; ++r) out[0].push_back(at::empty_like(input));
    std::vector<at::Tensor> in{input};
    c10d::AllgatherOptions o;
    o.timeout = timeout_;
    run("all_gather", [&] { return backend_->allgather(out, in, o); })->wait();
    return out[0];
  }

  void broadcast(at::Tensor& tensor, int root) override {
    ACCEL_CHECK(root >= 0 && root < world_, "broadcast: root ", root, " is not a rank in [0, ", world_, ").");
    std::vector<at::Tensor> ts{tensor};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = timeout_;
    run("broadcast", [&] { return backend_->broadcast(ts, o); })->wait();
  }

  void barrier() override {
    // A tiny all-reduce is a barrier with the group's timeout on every backend.
    at::Tensor t = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device()));
    all_reduce(t);
  }

 private:
  c10::Device device() const {
    return name_ == "nccl" ? c10::Device(c10::kCUDA, c10::DeviceIndex(-1)) : c10::Device(c10::kCPU);
  }

  template <typename F>
  std::shared_ptr<Work> run(const char* op, F&& launch) {
    try {
      return std::make_shared<C10dWork>(launch(), op, rank_, timeout_);
    } catch (const std::exception&) {
      throw DistributedError(c10::str("[rank ", rank_, "] collective '", op,
                                      "' could not start: ", what_of(std::current_exception())));
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::string name_;
  int rank_;
  int world_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

void ProcessGroup::all_reduce(at::Tensor& tensor, ReduceOp op) {
  all_reduce_async(tensor, op)->wait();
}

std::vector<std::string> ProcessGroup::all_gather_bytes(const std::string& bytes) {
  at::Tensor len = at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong);
  auto lens = all_gather(len);
  int64_t max_len = 0;
  for (auto& l : lens) max_len = std::max(max_len, l.item<int64_t>());
  at::Tensor buf = at::zeros({std::max<int64_t>(max_len, 1)}, at::kByte);
  std::memcpy(buf.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  auto all = all_gather(buf);
  std::vector<std::string> out;
  for (size_t r = 0; r < all.size(); ++r) {
    const int64_t n = lens[r].item<int64_t>();
    out.emplace_back(reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>()), static_cast<size_t>(n));
  }
  return out;
}

std::string ProcessGroup::broadcast_bytes(const std::string& bytes, int root) {
  at::Tensor len = at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong);
  broadcast(len, root);
  const int64_t n = len.item<int64_t>();
  at::Tensor buf = at::zeros({std::max<int64_t>(n, 1)}, at::kByte);
  if (rank() == root) std::memcpy(buf.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  broadcast(buf, root);
  return std::string(reinterpret_cast<const char*>(buf.data_ptr<uint8_t>()), static_cast<size_t>(n));
}

std::shared_ptr<ProcessGroup> ProcessGroup::create(const ProcessState& state, const Options& options) {
  const int rank = state.rank;
  const int world = state.world_size;
  std::string backend = options.backend;
  if (backend == "auto") backend = state.device.is_cuda() ? "nccl" : "gloo";

  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(state.master_port);
  so.isServer = rank == 0;
  so.numWorkers = world;
  so.waitWorkers = true;
  so.timeout = options.timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(state.master_addr, so);
  } catch (const std::exception&) {
    const std::string cause = what_of(std::current_exception());
    if (rank == 0) {
      throw DistributedError(
          c10::str("[rank 0] rendezvous on ", state.master_addr, ":", state.master_port, " failed: ", cause,
                   "\nHINT: either the port is in use (choose another --main_process_port, or 0 for a free "
                   "one) or not every one of the ",
                   world, " ranks joined within ", options.timeout.count() / 1000.0, " s."));
    }
    throw DistributedError(
        c10::str("[rank ", rank, "] cannot reach the master at ", state.master_addr, ":", state.master_port,
                 " within ", options.timeout.count() / 1000.0, " s: ", cause,
                 "\nHINT: check --main_process_ip / --main_process_port (MASTER_ADDR / MASTER_PORT), that "
                 "rank 0 is running, and that the port is open between the machines."));
  }
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("accel/default_pg", store);

  c10::intrusive_ptr<c10d::Backend> pg;
  try {
    if (backend == "gloo") {
#ifdef ACCEL_HAS_GLOO
      auto o = c10d::ProcessGroupGloo::Options::create();
      o->timeout = options.timeout;
      // Single machine: loopback; several: the address that routes to the master.
      if (state.num_nodes == 1) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (std::string local = local_address_towards(state.master_addr, state.master_port);
                 !local.empty()) {
        // The interface that reaches the master reaches the other machines too.
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      o->threads = 2;
      pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world, o);
#else
      ACCEL_CHECK(false,
                  "this build of accel has no Gloo (libgloo-dev headers were missing at "
                  "build time). HINT: install libgloo-dev and rebuild.");
#endif
    } else if (backend == "nccl") {
#ifdef ACCEL_HAS_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = options.timeout;
      pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, world, o);
#else
      ACCEL_CHECK(false,
                  "backend 'nccl' requested but this build of accel has no CUDA/NCCL. "
                  "HINT: use backend 'gloo' or build against a CUDA libtorch.");
#endif
    } else {
      ACCEL_CHECK(false, "unknown process group backend '", backend, "'; accepted: auto, gloo, nccl.");
    }
  } catch (const accel::Error&) {
    throw;
  } catch (const std::exception&) {
    throw DistributedError(c10::str("[rank ", rank, "] connecting the ", backend,
                                    " process group failed: ", what_of(std::current_exception()),
                                    "\nHINT: a rank may have died during start-up."));
  }
  return std::make_shared<C10dProcessGroup>(store, pg, backend, rank, world, options.timeout);
}

}  // namespace accel::distributed
