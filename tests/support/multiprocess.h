// Runs one GoogleTest test of the current binary as N ranks (separate processes) with the
// environment `accel launch` would give them, on a free loopback port, with a deadline.
// Worker tests are named DISABLED_*, so they only run when invoked this way.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace accel::testing {

struct RankResult {
  int rank = 0;
  int exit_code = -1;  // 128+signal when killed; -1 when it timed out
  bool timed_out = false;
  std::string output;  // stdout + stderr
};

/// A free TCP port on 127.0.0.1.
int free_port();

/// Starts `world` processes of this test binary running only `test_name` (e.g.
/// "DISABLED_Worker.Equivalence") with RANK/WORLD_SIZE/... set; `skip_ranks` are not started
/// (to simulate a rank that never joins). Kills everything after `timeout_s`.
std::vector<RankResult> run_ranks(int world, const std::string& test_name,
                                  const std::map<std::string, std::string>& extra_env = {},
                                  double timeout_s = 120, const std::vector<int>& skip_ranks = {});

/// Joined outputs, for failure messages.
std::string describe(const std::vector<RankResult>& results);

}  // namespace accel::testing
