// Entry points of the `accel` command's subcommands. tools/accel/main.cpp only dispatches to
// these; tests call them directly. Each takes the arguments after the subcommand name and
// returns the process exit code (0 on success); errors are printed as one clean line.
#pragma once

#include <string>
#include <vector>

namespace accel::launcher {

int launch_main(const std::vector<std::string>& args);           // accel launch
int config_main(const std::vector<std::string>& args);           // accel config [default|update]
int env_main(const std::vector<std::string>& args);              // accel env
int test_main(const std::vector<std::string>& args);             // accel test
int estimate_memory_main(const std::vector<std::string>& args);  // accel estimate-memory
int bench_main(const std::vector<std::string>& args);            // accel bench

/// The accel version string ("0.1.0").
std::string version();

}  // namespace accel::launcher
