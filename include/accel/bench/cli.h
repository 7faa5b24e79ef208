// Entry points of `accel bench`'s subcommands, kept free of torch headers so the launcher's
// dispatcher stays cheap to compile. Each takes the arguments after the subcommand name and
// returns the process exit code.
#pragma once

#include <string>
#include <vector>

namespace accel::bench {

/// `accel bench precision [options]` (see `accel bench precision --help`): prints the table,
/// writes --json FILE and --png FILE. The hidden `--single P --json-out FILE` mode measures one
/// precision in this process and writes its result (what the isolated runs execute).
int precision_main(const std::vector<std::string>& args);

}  // namespace accel::bench
