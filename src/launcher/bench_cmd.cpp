// `accel bench`: placeholder until the precision benchmark lands (see issue "Mixed precision, measured").
#include "accel/launcher/cli.h"

#include <cstdio>

namespace accel::launcher {

int bench_main(const std::vector<std::string>& args) {
  std::fprintf(stderr, "accel bench: not built yet in this version of accel.\n");
  return 2;
}

}  // namespace accel::launcher
