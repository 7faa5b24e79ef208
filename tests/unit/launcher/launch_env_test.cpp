// The environment `accel launch` gives each worker, for every rank of 2 machines x 2 processes
// (tier 1: no processes, exact values), and the rendezvous port choice.
#include <accel/launcher/launch.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace accel::launcher {
namespace {

using Env = std::map<std::string, std::string>;

LaunchConfig two_by_two(int machine_rank) {
  LaunchConfig c;
  c.num_processes = 4;
  c.num_machines = 2;
  c.machine_rank = machine_rank;
  c.main_process_ip = "10.0.0.7";
  c.main_process_port = 29555;
  c.mixed_precision = "bf16";
  c.gradient_accumulation_steps = 4;
  c.max_restarts = 3;
  c.run_id = "run42";
  return c;
}

TEST(LaunchEnv, EveryRankOfTwoMachinesTimesTwoProcesses) {
  for (int node = 0; node < 2; ++node) {
    for (int local = 0; local < 2; ++local) {
      const Env e = worker_env(two_by_two(node), local, /*restart_count=*/1, /*cpu_count=*/8, Env{});
      const std::string rank = std::to_string(node * 2 + local);
      const Env expected = {
          {"RANK", rank},
          {"LOCAL_RANK", std::to_string(local)},
          {"WORLD_SIZE", "4"},
          {"LOCAL_WORLD_SIZE", "2"},
          {"GROUP_RANK", std::to_string(node)},
          {"NODE_RANK", std::to_string(node)},
          {"GROUP_WORLD_SIZE", "2"},
          {"ROLE_RANK", rank},
          {"ROLE_WORLD_SIZE", "4"},
          {"ROLE_NAME", "default"},
          {"MASTER_ADDR", "10.0.0.7"},
          {"MASTER_PORT", "29555"},
          {"TORCHELASTIC_RESTART_COUNT", "1"},
          {"TORCHELASTIC_MAX_RESTARTS", "3"},
          {"TORCHELASTIC_RUN_ID", "run42"},
          {"ACCELERATE_MIXED_PRECISION", "bf16"},
          {"ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4"},
          {"ACCELERATE_USE_CPU", "False"},
          {"ACCELERATE_DEBUG_MODE", "false"},
          {"ACCELERATE_NUM_PROCESSES", "4"},
          {"OMP_NUM_THREADS", "4"},
          {"ACCEL_LAUNCHED", "1"},
      };
      EXPECT_EQ(e, expected) << "node " << node << " local " << local;
    }
  }
}

TEST(LaunchEnv, SingleMachineUsesLoopback) {
  LaunchConfig c;
  c.num_processes = 2;
  c.main_process_ip = "10.9.9.9";  // ignored on one machine
  c.use_cpu = true;
  c.debug = true;
  const Env e = worker_env(c, 1, 0, 2, Env{});
  EXPECT_EQ(e.at("MASTER_ADDR"), "127.0.0.1");
  EXPECT_EQ(e.at("MASTER_PORT"), "29500");
  EXPECT_EQ(e.at("RANK"), "1");
  EXPECT_EQ(e.at("ACCELERATE_USE_CPU"), "True");
  EXPECT_EQ(e.at("ACCELERATE_DEBUG_MODE"), "true");
  EXPECT_EQ(e.at("TORCHELASTIC_RUN_ID"), "none");
  EXPECT_EQ(e.at("OMP_NUM_THREADS"), "1");
  EXPECT_EQ(e.count("CUDA_VISIBLE_DEVICES"), 0u);
}

TEST(LaunchEnv, OmpNumThreadsRule) {
  LaunchConfig c;
  c.num_processes = 3;
  EXPECT_EQ(worker_env(c, 0, 0, 16, Env{}).at("OMP_NUM_THREADS"), "5");
  EXPECT_EQ(worker_env(c, 0, 0, 2, Env{}).at("OMP_NUM_THREADS"), "1");  // at least 1
  // The user's OMP_NUM_THREADS is inherited, not overwritten.
  EXPECT_EQ(worker_env(c, 0, 0, 16, Env{{"OMP_NUM_THREADS", "6"}}).count("OMP_NUM_THREADS"), 0u);
  // --num_cpu_threads_per_process wins over both.
  c.num_cpu_threads_per_process = 3;
  EXPECT_EQ(worker_env(c, 0, 0, 16, Env{{"OMP_NUM_THREADS", "6"}}).at("OMP_NUM_THREADS"), "3");
}

TEST(LaunchEnv, GpuIdsSetCudaVisibleDevices) {
  LaunchConfig c;
  c.gpu_ids = "1,3";
  EXPECT_EQ(worker_env(c, 0, 0, 1, Env{}).at("CUDA_VISIBLE_DEVICES"), "1,3");
}

TEST(LaunchEnv, MergeEnvOverlays) {
  const auto v = merge_env({{"PATH", "/bin"}, {"RANK", "9"}}, {{"RANK", "0"}, {"A", "b"}});
  EXPECT_EQ(v, (std::vector<std::string>{"A=b", "PATH=/bin", "RANK=0"}));
}

// Binds and listens on a free port; closes it at the end of the scope.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd, 1), 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd); }
};

TEST(LaunchPort, FreePortIsFree) {
  const int p = find_free_port();
  EXPECT_GT(p, 0);
  EXPECT_LT(p, 65536);
  EXPECT_TRUE(port_is_free(p));
}

TEST(LaunchPort, BusyPortDetected) {
  Listener l;
  EXPECT_FALSE(port_is_free(l.port));
}

TEST(LaunchPort, SingleMachinePicksAnotherWhenBusyOrZero) {
  Listener l;
  LaunchConfig c;
  c.num_processes = 2;
  c.main_process_port = l.port;
  const PortChoice busy = choose_port(c);
  EXPECT_NE(busy.port, l.port);
  EXPECT_GT(busy.port, 0);
  EXPECT_NE(busy.note.find("port " + std::to_string(l.port) + " is busy; using free port " +
                           std::to_string(busy.port)),
            std::string::npos)
      << busy.note;
  c.main_process_port = 0;
  const PortChoice zero = choose_port(c);
  EXPECT_GT(zero.port, 0);
  EXPECT_NE(zero.note.find("using free port"), std::string::npos);
  c.main_process_port = find_free_port();
  const PortChoice same = choose_port(c);
  EXPECT_EQ(same.port, c.main_process_port);
  EXPECT_TRUE(same.note.empty());
}

TEST(LaunchPort, MultiMachineBusyPortIsAnErrorOnlyOnMachineZero) {
  Listener l;
  LaunchConfig c = two_by_two(0);
  c.main_process_port = l.port;
  try {
    choose_port(c);
    ADD_FAILURE() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("is busy on this machine (machine_rank 0)"), std::string::npos);
  }
  c.machine_rank = 1;
  EXPECT_EQ(choose_port(c).port, l.port);
  c.main_process_port = 0;
  EXPECT_THROW(choose_port(c), UsageError);
}

}  // namespace
}  // namespace accel::launcher
