// `accel launch` (launch_main) and `accel --version`: the thin command over the launch library.
#include "accel/core/strings.h"
#include "accel/launcher/cli.h"
#include "accel/launcher/config_file.h"
#include "accel/launcher/launch.h"
#include "accel/launcher/process.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#ifndef ACCEL_VERSION
#define ACCEL_VERSION "0.0.0-unknown"
#endif

namespace accel::launcher {

std::string version() {
  return ACCEL_VERSION;
}

int launch_main(const std::vector<std::string>& args) {
  try {
    LaunchArgs a = parse_launch_args(args);
    if (a.help) {
      std::fputs(launch_help().c_str(), stdout);
      return 0;
    }
    std::optional<ClusterConfig> file;
    std::string path = a.config_file.value_or("");
    if (!path.empty()) {
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0)
        throw UsageError("config file '" + path +
                         "' does not exist. HINT: run `accel config` to write one, or fix the path");
    } else {
      path = find_default_config();
    }
    if (!path.empty()) {
      try {
        file = load_config_file(path);
      } catch (const std::exception& e) {
        throw UsageError(e.what());
      }
      a.config_file = path;
    }
    LaunchConfig config = resolve_launch_config(a, file, detect_visible_gpus());
    if (!config.quiet) {
      // Settings that change nothing here are listed only at debug level, as the library does.
      const char* level = std::getenv("ACCEL_LOG_LEVEL");
      if (level == nullptr || *level == '\0') level = std::getenv("ACCELERATE_LOG_LEVEL");
      if (level != nullptr && lower(level) == "debug")
        for (const auto& n : config.debug_notes) std::fprintf(stderr, "accel launch: debug: %s\n", n.c_str());
      for (const auto& n : config.notes) std::fprintf(stderr, "accel launch: %s\n", n.c_str());
      for (const auto& w : config.warnings) std::fprintf(stderr, "accel launch: warning: %s\n", w.c_str());
    }
    const PortChoice port = choose_port(config);
    config.main_process_port = port.port;
    if (!port.note.empty() && !config.quiet) std::fprintf(stderr, "accel launch: %s\n", port.note.c_str());
    std::fflush(stdout);
    std::fflush(stderr);
    return run_workers(config).exit_code;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "accel launch: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "accel launch: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace accel::launcher
