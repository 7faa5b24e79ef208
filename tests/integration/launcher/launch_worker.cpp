// A tiny worker for the launcher's real-process tests (plain C++, no torch). What it does is
// chosen by flags; the "action" flags apply only on the rank given by --on_rank (default: all):
//   --pid_dir D        write D/rank<RANK>.pid at start (tests find the workers' pids)
//   --print_env        print "ENV NAME=VALUE" for the launcher's variables
//   --lines N          print N lines "rank R line i" to stdout (and every 10th to stderr)
//   --no_newline TEXT  print TEXT to stdout with no newline at the end
//   --on_rank R        rank the later --lines/--no_newline/--exit/--segv/--fail_once apply to
//   --exit K           exit with code K (after --stderr_lines lines on stderr)
//   --segv             crash with SIGSEGV
//   --fail_once FILE   exit 1 if FILE does not exist (creating it), else carry on
//   --sleep S          sleep S seconds before exiting 0 (-1: forever)
//   --ignore_term      ignore SIGTERM (tests the SIGKILL escalation)
//   --stderr_lines N   lines written to stderr before --exit
//   --spawn_child      fork a child that sleeps forever in the same process group
//   --wait_pids D N    wait until D holds N pid files (all ranks past their earlier flags)
//   --print_fds        print "FDS n": the number of open file descriptors (leak check)
//   --print_env_prefix P  print "ENV NAME=VALUE" for every variable whose name starts with P, sorted
//   --progress N       draw a progress bar on stderr as tqdm does: N updates "\r<k>/N|###  |" with
//                      no newline (flushed, then a --wait_file handshake if given), then "\n"
//   --wait_file F      during --progress: after update 1, wait until F exists
//   --log_line TEXT    print "[rank R/W] TEXT" to stdout, as the library's logger does
//   --wait_text F T    wait until file F contains T (F: the launcher's output, in tests)
//   --touch F          create file F
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

void sleep_seconds(double s) {
  if (s < 0) {
    while (true) ::pause();
  }
  const long long ms = static_cast<long long>(s * 1000);
  for (long long i = 0; i < ms / 10; ++i) ::usleep(10000);
}

}  // namespace

int main(int argc, char** argv) {
  const int rank = env_int("RANK", 0);
  std::vector<std::string> a(argv + 1, argv + argc);
  int on_rank = -1;
  int exit_code = -1;
  bool segv = false;
  std::string fail_once;
  double sleep_s = 0;
  int stderr_lines = 0;
  bool spawn_child = false;
  std::string wait_file;
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string& f = a[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= a.size()) {
        std::fprintf(stderr, "launch_worker: %s needs a value\n", f.c_str());
        std::exit(64);
      }
      return a[++i];
    };
    const bool mine = on_rank < 0 || on_rank == rank;
    if (f == "--pid_dir") {
      const std::string path = next() + "/rank" + std::to_string(rank) + ".pid";
      const std::string tmp = path + ".tmp";
      std::ofstream(tmp) << ::getpid() << "\n";
      std::rename(tmp.c_str(), path.c_str());
    } else if (f == "--print_env") {
      static const char* const kNames[] = {"RANK",
                                           "LOCAL_RANK",
                                           "WORLD_SIZE",
                                           "LOCAL_WORLD_SIZE",
                                           "GROUP_RANK",
                                           "NODE_RANK",
                                           "ROLE_RANK",
                                           "ROLE_WORLD_SIZE",
                                           "GROUP_WORLD_SIZE",
                                           "MASTER_ADDR",
                                           "MASTER_PORT",
                                           "TORCHELASTIC_RESTART_COUNT",
                                           "TORCHELASTIC_MAX_RESTARTS",
                                           "TORCHELASTIC_RUN_ID",
                                           "ACCELERATE_MIXED_PRECISION",
                                           "ACCELERATE_GRADIENT_ACCUMULATION_STEPS",
                                           "ACCELERATE_USE_CPU",
                                           "ACCELERATE_DEBUG_MODE",
                                           "ACCELERATE_NUM_PROCESSES",
                                           "CUDA_VISIBLE_DEVICES",
                                           "OMP_NUM_THREADS",
                                           "ACCEL_LAUNCHED"};
      for (const char* n : kNames) {
        const char* v = std::getenv(n);
        std::printf("ENV %s=%s\n", n, v ? v : "<unset>");
      }
      std::fflush(stdout);
    } else if (f == "--lines") {
      const int n = std::atoi(next().c_str());
      if (!mine) continue;
      for (int k = 0; k < n; ++k) {
        std::printf("rank %d line %d\n", rank, k);
        if (k % 10 == 0) std::fprintf(stderr, "rank %d err %d\n", rank, k);
      }
      std::fflush(stdout);
    } else if (f == "--no_newline") {
      const std::string t = next();
      if (!mine) continue;
      std::fputs(t.c_str(), stdout);
      std::fflush(stdout);
    } else if (f == "--on_rank") {
      on_rank = std::atoi(next().c_str());
    } else if (f == "--exit") {
      const int k = std::atoi(next().c_str());
      if (mine) exit_code = k;
    } else if (f == "--segv") {
      if (mine) segv = true;
    } else if (f == "--fail_once") {
      const std::string p = next();
      if (mine) fail_once = p;
    } else if (f == "--sleep") {
      sleep_s = std::atof(next().c_str());
    } else if (f == "--ignore_term") {
      ::signal(SIGTERM, SIG_IGN);
    } else if (f == "--stderr_lines") {
      stderr_lines = std::atoi(next().c_str());
    } else if (f == "--wait_pids") {
      const std::string dir = next();
      const int n = std::atoi(next().c_str());
      for (int tries = 0; tries < 60000; ++tries) {
        int found = 0;
        for (int r = 0; r < n; ++r)
          if (::access((dir + "/rank" + std::to_string(r) + ".pid").c_str(), F_OK) == 0) ++found;
        if (found == n) break;
        ::usleep(1000);
      }
    } else if (f == "--print_fds") {
      int n = 0;
      if (DIR* d = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(d))
          if (e->d_name[0] != '.') ++n;
        ::closedir(d);
        --n;  // the directory's own fd
      }
      std::printf("FDS %d\n", n);
      std::fflush(stdout);
    } else if (f == "--print_env_prefix") {
      const std::string prefix = next();
      std::vector<std::string> found;
      for (char** e = environ; *e != nullptr; ++e)
        if (std::strncmp(*e, prefix.c_str(), prefix.size()) == 0) found.push_back(*e);
      std::sort(found.begin(), found.end());
      for (const auto& v : found) std::printf("ENV %s\n", v.c_str());
      std::fflush(stdout);
    } else if (f == "--wait_file") {
      wait_file = next();
    } else if (f == "--progress") {
      const int n = std::atoi(next().c_str());
      if (!mine) continue;
      for (int k = 1; k <= n; ++k) {
        std::fprintf(stderr, "\r%d/%d|%s%s|", k, n, std::string(static_cast<size_t>(k), '#').c_str(),
                     std::string(static_cast<size_t>(n - k), ' ').c_str());
        std::fflush(stderr);
        if (k == 1 && !wait_file.empty())
          for (int tries = 0; tries < 60000 && ::access(wait_file.c_str(), F_OK) != 0; ++tries)
            ::usleep(1000);
      }
      std::fputs("\n", stderr);
      std::fflush(stderr);
    } else if (f == "--log_line") {
      const std::string t = next();
      if (!mine) continue;
      std::printf("[rank %d/%d] %s\n", rank, env_int("WORLD_SIZE", 1), t.c_str());
      std::fflush(stdout);
    } else if (f == "--wait_text") {
      const std::string file = next();
      const std::string text = next();
      if (!mine) continue;
      for (int tries = 0; tries < 60000; ++tries) {
        std::ifstream in(file);
        const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (all.find(text) != std::string::npos) break;
        ::usleep(1000);
      }
    } else if (f == "--touch") {
      const std::string file = next();
      if (mine) std::ofstream(file) << "";
    } else if (f == "--spawn_child") {
      spawn_child = true;
    } else {
      std::fprintf(stderr, "launch_worker: unknown flag %s\n", f.c_str());
      return 64;
    }
  }
  if (spawn_child && ::fork() == 0) {
    while (true) ::pause();
  }
  if (!fail_once.empty()) {
    const int fd = ::open(fail_once.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) {
      ::close(fd);
      std::fprintf(stderr, "rank %d: first attempt fails on purpose\n", rank);
      return 1;
    }
  }
  if (exit_code >= 0 || segv) {
    for (int k = 0; k < stderr_lines; ++k) std::fprintf(stderr, "rank %d stderr %d\n", rank, k);
    std::fflush(stderr);
    if (segv) {
      ::signal(SIGSEGV, SIG_DFL);
      ::raise(SIGSEGV);
    }
    return exit_code;
  }
  sleep_seconds(sleep_s);
  return 0;
}
