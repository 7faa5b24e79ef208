// `accel test [--config_file F]`: runs the built-in `accel-check` program through the same launch
// library as `accel launch`, with the user's config, and says whether distributed training works.
#include "accel/launcher/cli.h"
#include "accel/launcher/launch.h"

#include <cstdio>
#include <unistd.h>
#include <cstdlib>

namespace accel::launcher {

int test_main(const std::vector<std::string>& args) {
  std::vector<std::string> launch_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::printf(
          "usage: accel test [--config_file FILE]\n\n"
          "Runs accel's check program (accel-check, next to the accel binary or on PATH) with\n"
          "`accel launch` and your launch configuration, and reports whether it passed.\n\n"
          "options:\n"
          "  --config_file FILE   config to use (default: the one `accel launch` would use)\n"
          "  -h, --help           show this help\n");
      return 0;
    }
    if (a == "--config_file" || a == "--config-file") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "accel test: error: --config_file needs a value (FILE)\n");
        return 2;
      }
      launch_args.push_back("--config_file=" + args[++i]);
    } else if (a.rfind("--config_file=", 0) == 0 || a.rfind("--config-file=", 0) == 0) {
      launch_args.push_back("--config_file=" + a.substr(a.find('=') + 1));
    } else {
      std::fprintf(stderr,
                   "accel test: error: unknown argument '%s'; did you mean '--config_file'? "
                   "(see `accel test --help`)\n",
                   a.c_str());
      return 2;
    }
  }
  const char* path_env = std::getenv("PATH");
  // ACCEL_CHECK_PROGRAM names the check program explicitly (tests, custom installs).
  const char* explicit_check = std::getenv("ACCEL_CHECK_PROGRAM");
  const std::string dir =
      explicit_check && *explicit_check ? std::string("(ACCEL_CHECK_PROGRAM)") : self_exe_dir();
  const std::string check =
      explicit_check && *explicit_check
          ? (::access(explicit_check, X_OK) == 0 ? std::string(explicit_check) : std::string())
          : find_check_program(dir, path_env ? path_env : "");
  if (check.empty()) {
    std::fprintf(stderr,
                 "accel test: error: the check program 'accel-check' was found neither next to "
                 "the accel binary (%s) nor on PATH. HINT: build and install the accel-check "
                 "target alongside accel\n",
                 dir.empty() ? "unknown directory" : dir.c_str());
    return 1;
  }
  launch_args.push_back(check);
  const int rc = launch_main(launch_args);
  if (rc == 0) {
    std::printf("accel test: all checks passed\n");
  } else {
    std::fprintf(stderr, "accel test: FAILED: %s exited with code %d (see the output above)\n", check.c_str(),
                 rc);
  }
  return rc;
}

}  // namespace accel::launcher
