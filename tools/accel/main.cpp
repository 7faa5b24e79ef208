// The `accel` command: dispatches to accel::launcher's subcommands.
//   accel launch|config|env|test|estimate-memory|bench [args...]
//   accel --help | --version
#include <accel/launcher/cli.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: accel <command> [<args>]\n\n"
               "Accelerate-style training for LibTorch programs.\n\n"
               "commands:\n"
               "  launch           run a program on N processes / machines\n"
               "  config           create or update the launch configuration file\n"
               "  env              print the environment, for bug reports\n"
               "  test             check that distributed training works with your config\n"
               "  estimate-memory  memory needed to train a model\n"
               "  bench            speed and memory benchmarks (precision comparison)\n\n"
               "options:\n"
               "  -h, --help       show this help\n"
               "  --version        show the version\n\n"
               "Run `accel <command> --help` for a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(stderr);
    return 2;
  }
  const std::string cmd = args.front();
  std::vector<std::string> rest(args.begin() + 1, args.end());
  try {
    if (cmd == "-h" || cmd == "--help" || cmd == "help") {
      print_usage(stdout);
      return 0;
    }
    if (cmd == "--version" || cmd == "-V") {
      std::printf("accel %s\n", accel::launcher::version().c_str());
      return 0;
    }
    if (cmd == "launch") return accel::launcher::launch_main(rest);
    if (cmd == "config") return accel::launcher::config_main(rest);
    if (cmd == "env") return accel::launcher::env_main(rest);
    if (cmd == "test") return accel::launcher::test_main(rest);
    if (cmd == "estimate-memory" || cmd == "estimate_memory")
      return accel::launcher::estimate_memory_main(rest);
    if (cmd == "bench") return accel::launcher::bench_main(rest);
    std::fprintf(stderr,
                 "accel: unknown command '%s'. Commands: launch, config, env, test, "
                 "estimate-memory, bench (see `accel --help`).\n",
                 cmd.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "accel %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
