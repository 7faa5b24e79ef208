// Implementation of tests/support/multiprocess.h (compiled into the unit test binary).
#include "support/multiprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace accel::testing {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::vector<RankResult> run_ranks(int world, const std::string& test_name,
                                  const std::map<std::string, std::string>& extra_env,
                                  double timeout_s, const std::vector<int>& skip_ranks) {
  const int port = free_port();
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  std::vector<RankResult> results(world);
  std::vector<pid_t> pids(world, -1);
  std::vector<std::string> logs(world);
  for (int r = 0; r < world; ++r) {
    results[r].rank = r;
    bool skip = false;
    for (int s : skip_ranks) skip = skip || s == r;
    if (skip) {
      results[r].exit_code = 0;
      continue;
    }
    char tmpl[] = "/tmp/accel_rank_XXXXXX";
    int fd = ::mkstemp(tmpl);
    logs[r] = tmpl;
    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv(*e);
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    env["RANK"] = std::to_string(r);
    env["LOCAL_RANK"] = std::to_string(r);
    env["WORLD_SIZE"] = std::to_string(world);
    env["LOCAL_WORLD_SIZE"] = std::to_string(world);
    env["MASTER_ADDR"] = "127.0.0.1";
    env["MASTER_PORT"] = std::to_string(port);
    env["OMP_NUM_THREADS"] = "1";
    env["ACCEL_TEST_WORKER"] = "1";
    for (const auto& [k, v] : extra_env) env[k] = v;
    std::vector<std::string> kvs;
    for (const auto& [k, v] : env) kvs.push_back(k + "=" + v);
    std::string filter = "--gtest_filter=" + test_name;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> envp;
      for (auto& s : kvs) envp.push_back(s.data());
      envp.push_back(nullptr);
      char* argv[] = {exe, filter.data(), const_cast<char*>("--gtest_also_run_disabled_tests"), nullptr};
      ::execve(exe, argv, envp.data());
      std::_Exit(127);
    }
    ::close(fd);
    pids[r] = pid;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int alive = 0;
  for (pid_t p : pids) alive += p > 0;
  while (alive > 0) {
    for (int r = 0; r < world; ++r) {
      if (pids[r] <= 0) continue;
      int status = 0;
      pid_t w = ::waitpid(pids[r], &status, WNOHANG);
      if (w == pids[r]) {
        results[r].exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pids[r] = -1;
        --alive;
      }
    }
    if (alive == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (int r = 0; r < world; ++r) {
        if (pids[r] <= 0) continue;
        ::kill(pids[r], SIGKILL);
        ::waitpid(pids[r], nullptr, 0);
        results[r].timed_out = true;
        results[r].exit_code = -1;
        pids[r] = -1;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int r = 0; r < world; ++r) {
    if (logs[r].empty()) continue;
    std::ifstream in(logs[r]);
    std::stringstream ss;
    ss << in.rdbuf();
    results[r].output = ss.str();
    std::remove(logs[r].c_str());
  }
  return results;
}

std::string describe(const std::vector<RankResult>& results) {
  std::ostringstream os;
  for (const auto& r : results) {
    os << "---- rank " << r.rank << " exit " << r.exit_code << (r.timed_out ? " (timed out)" : "")
       << " ----\n"
       << r.output << "\n";
  }
  return os.str();
}

}  // namespace accel::testing
