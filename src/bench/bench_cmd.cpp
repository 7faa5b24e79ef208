// `accel bench`: dispatches to the benchmarks of accel::bench (src/bench/).
#include "accel/bench/cli.h"
#include "accel/launcher/cli.h"

#include <cstdio>
#include <string>

namespace accel::launcher {
namespace {

void bench_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: accel bench <benchmark> [<args>]\n\n"
               "benchmarks:\n"
               "  precision   the same BERT training steps in fp32, bf16 and fp16: throughput,\n"
               "              step time, peak memory, loss, GEMM peak and MFU (table, JSON, PNG)\n\n"
               "Run `accel bench <benchmark> --help` for its options.\n");
}

}  // namespace

int bench_main(const std::vector<std::string>& args) {
  if (args.empty()) {
    bench_usage(stderr);
    return 2;
  }
  const std::string& what = args.front();
  if (what == "-h" || what == "--help" || what == "help") {
    bench_usage(stdout);
    return 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (what == "precision") return accel::bench::precision_main(rest);
  std::fprintf(stderr,
               "accel bench: unknown benchmark '%s'. Benchmarks: precision (see `accel bench --help`).\n",
               what.c_str());
  return 2;
}

}  // namespace accel::launcher
