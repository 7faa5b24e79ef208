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

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

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

// Liveness and progress of every rank through the rendezvous store. A detached thread publishes
// "<collectives launched> <wall-clock ms>" under accel/heartbeat/<rank> every period; when a
// collective times out, the waiting rank reads the others' entries to name the ranks that never
// reached that collective, or that went silent. (Detached, so that a store call stuck on a cut
// network never delays this process's exit.)
class Heartbeat {
 public:
  // `prefix` keeps the keys of different groups apart; `global_ranks[r]` names group rank r.
  Heartbeat(c10::intrusive_ptr<c10d::Store> store, int rank, int world, std::chrono::milliseconds period,
            std::string prefix, std::vector<int> global_ranks)
      : shared_(std::make_shared<Shared>()),
        store_(std::move(store)),
        rank_(rank),
        world_(world),
        period_(period),
        prefix_(std::move(prefix)),
        global_ranks_(std::move(global_ranks)) {
    if (period_.count() <= 0) return;
    std::thread([s = shared_, store = store_, key = key_of(rank), period] {
      loop(s, store, key, period);
    }).detach();
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(shared_->m);
      shared_->stop = true;
    }
    shared_->cv.notify_all();
  }

  /// Counts a collective being launched; returns its number (1, 2, ...), the same on every rank.
  int64_t launch() { return ++shared_->launched; }

  /// diagnose(seq), but never waits longer than `limit`: on a cut network a store call can block
  /// for many minutes (it is then left to finish in a detached thread).
  static std::string diagnose_within(const std::shared_ptr<const Heartbeat>& self, int64_t seq,
                                     std::chrono::milliseconds limit) {
    auto result = std::make_shared<std::promise<std::string>>();
    auto answer = result->get_future();
    std::thread([self, seq, result] {
      try {
        result->set_value(self->diagnose(seq));
      } catch (...) {
        result->set_value("");
      }
    }).detach();
    if (answer.wait_for(limit) == std::future_status::ready) return answer.get();
    return c10::str("\nthe rendezvous store on rank 0 did not answer within ", limit.count() / 1000.0,
                    " s (its machine may be unreachable), so the ranks that are behind cannot be named.");
  }

  /// Lines naming the ranks that have not launched collective `seq`, or that are silent.
  std::string diagnose(int64_t seq) const {
    if (period_.count() <= 0 || world_ <= 1) return "";
    const int64_t now = now_ms();
    std::string out;
    int named = 0;
    try {
      for (int r = 0; r < world_ && named < 8; ++r) {
        if (r == rank_) continue;
        const std::string key = key_of(r);
        const int g = global_ranks_.empty() ? r : global_ranks_[r];
        if (!store_->check({key})) {
          out += c10::str("\nrank ", g, " never sent a heartbeat (it may not have started).");
          ++named;
          continue;
        }
        const auto bytes = store_->get(key);
        int64_t their_seq = 0, their_ms = 0;
        std::sscanf(std::string(bytes.begin(), bytes.end()).c_str(), "%lld %lld",
                    reinterpret_cast<long long*>(&their_seq), reinterpret_cast<long long*>(&their_ms));
        char age[32];
        std::snprintf(age, sizeof(age), "%.1f", (now - their_ms) / 1000.0);
        const bool silent = now - their_ms > 3 * period_.count() + 1000;
        if (silent) {
          out += c10::str("\nrank ", g, " is silent: its last heartbeat was ", age, " s ago, at collective #",
                          their_seq, " (exited, killed, frozen or cut off).");
          ++named;
        } else if (their_seq < seq) {
          out +=
              c10::str("\nrank ", g, " has not reached collective #", seq, ": it is alive (heartbeat ", age,
                       " s ago) but still at #", their_seq, ", so it is busy or stuck outside collectives.");
          ++named;
        }
      }
    } catch (const std::exception& e) {
      out += "\nthe rendezvous store on rank 0 cannot be reached (rank 0 has probably exited or is cut off).";
    }
    return out;
  }

 private:
  struct Shared {
    std::mutex m;
    std::condition_variable cv;
    bool stop = false;
    std::atomic<int64_t> launched{0};
  };

  std::string key_of(int rank) const { return "accel/heartbeat/" + prefix_ + std::to_string(rank); }
  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static void loop(std::shared_ptr<Shared> s, c10::intrusive_ptr<c10d::Store> store, std::string key,
                   std::chrono::milliseconds period) {
    std::unique_lock<std::mutex> lock(s->m);
    while (!s->stop) {
      const std::string v = std::to_string(s->launched.load()) + " " + std::to_string(now_ms());
      lock.unlock();
      try {
        store->set(key, std::vector<uint8_t>(v.begin(), v.end()));
      } catch (const std::exception&) {
        return;  // the store is gone: rank 0 exited; the collectives will report it
      }
      lock.lock();
      s->cv.wait_for(lock, period, [&] { return s->stop; });
    }
  }

  std::shared_ptr<Shared> shared_;
  c10::intrusive_ptr<c10d::Store> store_;
  int rank_;
  int world_;
  std::chrono::milliseconds period_;
  std::string prefix_;
  std::vector<int> global_ranks_;
};

class C10dWork : public Work {
 public:
  C10dWork(c10::intrusive_ptr<c10d::Work> work, std::string op, int rank, std::chrono::milliseconds timeout,
           std::shared_ptr<const Heartbeat> heartbeat, int64_t seq, std::string group)
      : work_(std::move(work)),
        op_(std::move(op)),
        rank_(rank),
        timeout_(timeout),
        heartbeat_(std::move(heartbeat)),
        seq_(seq),
        group_(std::move(group)) {}

  void wait() override {
    try {
      work_->wait(timeout_);
    } catch (const std::exception&) {
      const std::string cause = what_of(std::current_exception());
      // Gloo words a timeout several ways ("Operation timed out!", "Timed out waiting 10000ms for
      // recv ..."); say it one way.
      const bool timed_out = cause.find("imed out") != std::string::npos;
      throw DistributedError(c10::str(
          "[rank ", rank_, "] collective '", op_, "' (#", seq_, group_.empty() ? "" : " in group " + group_,
          ") ",
          timed_out ? c10::str("timed out after ", timeout_.count() / 1000.0, " s") : std::string("failed"),
          ": ", cause,
          heartbeat_ ? Heartbeat::diagnose_within(heartbeat_, seq_, std::chrono::seconds(3)) : std::string(),
          "\nHINT: another rank probably exited or stopped responding (timeout ", timeout_.count() / 1000.0,
          " s); look at the other ranks' output for the first error."));
    }
  }
  bool completed() override { return work_->isCompleted(); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::string op_;
  int rank_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<const Heartbeat> heartbeat_;
  int64_t seq_;
  std::string group_;
};

// Makes the backend of a (sub)group over a (prefixed) store.
using BackendFactory =
    std::function<c10::intrusive_ptr<c10d::Backend>(c10::intrusive_ptr<c10d::Store>, int rank, int size)>;

class C10dProcessGroup : public ProcessGroup {
 public:
  // `group` names a subgroup ("" for the world); `global_ranks[r]` is group rank r's world rank.
  C10dProcessGroup(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<c10d::Backend> backend,
                   std::string name, int rank, int world, std::chrono::milliseconds timeout,
                   std::chrono::milliseconds heartbeat_period, BackendFactory factory, std::string group,
                   std::vector<int> global_ranks)
      : store_(std::move(store)),
        backend_(std::move(backend)),
        name_(std::move(name)),
        rank_(rank),
        world_(world),
        timeout_(timeout),
        heartbeat_period_(heartbeat_period),
        factory_(std::move(factory)),
        group_(std::move(group)),
        global_ranks_(std::move(global_ranks)),
        heartbeat_(std::make_shared<Heartbeat>(store_, rank, world, heartbeat_period,
                                               group_.empty() ? "" : group_ + "/", global_ranks_)) {}

  int rank() const override { return rank_; }
  int global_rank(int r) const override { return global_ranks_.empty() ? r : global_ranks_.at(r); }
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

  std::shared_ptr<Work> all_gather_into_async(at::Tensor& output, const at::Tensor& input) override {
    ACCEL_CHECK(output.is_contiguous() && input.is_contiguous() && output.numel() == input.numel() * world_,
                "all_gather_into: output must be contiguous with world_size x input elements (",
                output.numel(), " vs ", world_, " x ", input.numel(), ").");
    at::Tensor in = input;
    c10d::AllgatherOptions o;
    o.timeout = timeout_;
    return run("all_gather_into", [&] { return backend_->_allgather_base(output, in, o); });
  }

  std::shared_ptr<Work> reduce_scatter_async(at::Tensor& output, const at::Tensor& input,
                                             ReduceOp op) override {
    ACCEL_CHECK(output.is_contiguous() && input.is_contiguous() && input.numel() == output.numel() * world_,
                "reduce_scatter: input must be contiguous with world_size x output elements (", input.numel(),
                " vs ", world_, " x ", output.numel(), ").");
    at::Tensor in = input;
    c10d::ReduceScatterOptions o;
    o.reduceOp = to_c10d(op);
    o.timeout = timeout_;
    return run("reduce_scatter", [&] { return backend_->_reduce_scatter_base(output, in, o); });
  }

  std::shared_ptr<ProcessGroup> new_subgroup(const std::vector<int>& ranks,
                                             const std::string& name) override {
    ACCEL_CHECK(!ranks.empty() && std::is_sorted(ranks.begin(), ranks.end()) &&
                    std::adjacent_find(ranks.begin(), ranks.end()) == ranks.end() && ranks.front() >= 0 &&
                    ranks.back() < world_,
                "new_subgroup '", name, "': ranks must be distinct, ascending and in [0, ", world_, ").");
    auto me = std::find(ranks.begin(), ranks.end(), rank_);
    ACCEL_CHECK(me != ranks.end(), "new_subgroup '", name, "': rank ", rank_, " is not a member.");
    const int sub_rank = static_cast<int>(me - ranks.begin());
    const int sub_size = static_cast<int>(ranks.size());
    const std::string full = group_.empty() ? name : group_ + "." + name;
    std::vector<int> globals;
    for (int r : ranks) globals.push_back(global_rank(r));
    c10::intrusive_ptr<c10d::Backend> backend;
    try {
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>("accel/group/" + full, store_);
      backend = factory_(prefixed, sub_rank, sub_size);
    } catch (const accel::Error&) {
      throw;
    } catch (const std::exception&) {
      throw DistributedError(c10::str("[rank ", global_rank(rank_), "] connecting process group '", full,
                                      "' failed: ", what_of(std::current_exception()),
                                      "\nHINT: a member rank may have died or not reached the same step."));
    }
    return std::make_shared<C10dProcessGroup>(store_, backend, name_, sub_rank, sub_size, timeout_,
                                              heartbeat_period_, factory_, full, std::move(globals));
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
      const int64_t seq = heartbeat_->launch();
      return std::make_shared<C10dWork>(launch(), op, global_rank(rank_), timeout_, heartbeat_, seq, group_);
    } catch (const std::exception&) {
      throw DistributedError(c10::str("[rank ", global_rank(rank_), "] collective '", op,
                                      "' could not start: ", what_of(std::current_exception())));
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::string name_;
  int rank_;
  int world_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds heartbeat_period_;
  BackendFactory factory_;
  std::string group_;
  std::vector<int> global_ranks_;
  std::shared_ptr<Heartbeat> heartbeat_;
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

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// The rendezvous store's listening socket on 127.0.0.1 only (TCPStore alone binds every
// interface). Used when the whole run is on this machine, so nothing else can reach the store.
int listen_on_loopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ACCEL_CHECK(fd >= 0, "[rank 0] rendezvous: socket() failed: ", std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    const int err = errno;
    ::close(fd);
    throw DistributedError(c10::str("[rank 0] rendezvous: cannot listen on 127.0.0.1:", port, ": ",
                                    std::strerror(err),
                                    "\nHINT: the port is probably in use; choose another --main_process_port "
                                    "(or 0 for a free one)."));
  }
  return fd;
}

// Every rank announces itself in the store; rank 0 waits until all have, and otherwise names the
// ones that never came.
void wait_for_all_ranks(c10d::Store& store, const ProcessState& state, std::chrono::milliseconds timeout) {
  const int rank = state.rank;
  const int world = state.world_size;
  auto key = [](int r) { return "accel/joined/" + std::to_string(r); };
  try {
    store.set(key(rank), std::vector<uint8_t>{1});
  } catch (const std::exception&) {
    throw DistributedError(c10::str(
        "[rank ", rank, "] rendezvous: cannot register with the master: ", what_of(std::current_exception()),
        "\nHINT: rank 0 probably exited; look at its output for the first error."));
  }
  if (rank != 0) return;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> all;
  for (int r = 0; r < world; ++r) all.push_back(key(r));
  while (!store.check(all)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string missing;
      int count = 0;
      for (int r = 0; r < world; ++r) {
        if (store.check({key(r)})) continue;
        ++count;
        if (count <= 16) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      }
      if (count > 16) missing += ", ... (" + std::to_string(count) + " in all)";
      throw DistributedError(c10::str(
          "[rank 0] rendezvous on ", state.master_addr, ":", state.master_port, ": rank(s) ", missing,
          " did not join within ", timeout.count() / 1000.0, " s (", world - count, " of ", world,
          " joined).\nHINT: check that every machine launched its processes with "
          "the same --main_process_ip/--main_process_port and --num_processes, and look at the missing "
          "ranks' output; ACCEL_TIMEOUT sets the timeout."));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::shared_ptr<ProcessGroup> ProcessGroup::create(const ProcessState& state, const Options& options) {
  const int rank = state.rank;
  const int world = state.world_size;
  std::string backend = options.backend;
  if (backend == "auto") backend = state.device.is_cuda() ? "nccl" : "gloo";

  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(state.master_port);
  so.isServer = rank == 0;
  so.numWorkers = world;
  // Joining is tracked per rank below (not by the store's worker count) so that an incomplete
  // rendezvous names the ranks that are missing.
  so.waitWorkers = false;
  so.timeout = options.timeout;
  // Security default: a one-machine run's store listens on loopback only. Several machines need
  // the store reachable from the others, so it listens on every interface (as torchrun's does).
  if (rank == 0 && state.num_nodes == 1 && is_loopback(state.master_addr)) {
    so.masterListenFd = listen_on_loopback(state.master_port);
  }
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(state.master_addr, so);
  } catch (const std::exception&) {
    const std::string cause = what_of(std::current_exception());
    if (rank == 0) {
      throw DistributedError(
          c10::str("[rank 0] rendezvous on ", state.master_addr, ":", state.master_port, " failed: ", cause,
                   "\nHINT: the port is probably in use; choose another --main_process_port (or 0 for a "
                   "free one)."));
    }
    throw DistributedError(
        c10::str("[rank ", rank, "] cannot reach the master at ", state.master_addr, ":", state.master_port,
                 " within ", options.timeout.count() / 1000.0, " s: ", cause,
                 "\nHINT: check --main_process_ip / --main_process_port (MASTER_ADDR / MASTER_PORT), that "
                 "rank 0 is running, and that the port is open between the machines."));
  }
  wait_for_all_ranks(*store, state, options.timeout);
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("accel/default_pg", store);

  BackendFactory factory;
  if (backend == "gloo") {
#ifdef ACCEL_HAS_GLOO
    auto o = c10d::ProcessGroupGloo::Options::create();
    o->timeout = options.timeout;
    // Single machine: loopback; several: the address that routes to the master.
    if (state.num_nodes == 1) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else if (!options.gloo_socket_ifname.empty()) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(options.gloo_socket_ifname));
    } else if (std::string local = local_address_towards(state.master_addr, state.master_port);
               !local.empty()) {
      // The interface that reaches the master reaches the other machines too.
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));
    } else {
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    o->threads = 2;
    factory = [o](c10::intrusive_ptr<c10d::Store> st, int r, int n) -> c10::intrusive_ptr<c10d::Backend> {
      return c10::make_intrusive<c10d::ProcessGroupGloo>(st, r, n, o);
    };
#else
    ACCEL_CHECK(false,
                "this build of accel has no Gloo (libgloo-dev headers were missing at "
                "build time). HINT: install libgloo-dev and rebuild.");
#endif
  } else if (backend == "nccl") {
#ifdef ACCEL_HAS_NCCL
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = options.timeout;
    factory = [o](c10::intrusive_ptr<c10d::Store> st, int r, int n) -> c10::intrusive_ptr<c10d::Backend> {
      return c10::make_intrusive<c10d::ProcessGroupNCCL>(st, r, n, o);
    };
#else
    ACCEL_CHECK(false,
                "backend 'nccl' requested but this build of accel has no CUDA/NCCL. "
                "HINT: use backend 'gloo' or build against a CUDA libtorch.");
#endif
  } else {
    ACCEL_CHECK(false, "unknown process group backend '", backend, "'; accepted: auto, gloo, nccl.");
  }
  c10::intrusive_ptr<c10d::Backend> pg;
  try {
    pg = factory(prefixed, rank, world);
  } catch (const accel::Error&) {
    throw;
  } catch (const std::exception&) {
    throw DistributedError(c10::str("[rank ", rank, "] connecting the ", backend,
                                    " process group failed: ", what_of(std::current_exception()),
                                    "\nHINT: a rank may have died during start-up."));
  }
  return std::make_shared<C10dProcessGroup>(store, pg, backend, rank, world, options.timeout,
                                            options.heartbeat, std::move(factory), "", std::vector<int>{});
}

}  // namespace accel::distributed
