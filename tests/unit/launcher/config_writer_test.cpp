// save_config_file writes through the one durable atomic writer (accel::fs::AtomicFile), and a
// failed save is an InputError that names the file and leaves no temporary file behind.
#include "accel/launcher/config_file.h"

#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

namespace fs = accel::fs;

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::list_dir(dir)) out.push_back(e.name);
  return out;
}

accel::launcher::ClusterConfig small_config() {
  accel::launcher::ClusterConfig c;
  c.distributed_type = "NO";
  c.num_processes = 1;
  return c;
}

TEST(ConfigWriter, SavesThroughTheAtomicWriter) {
  accel::test::TempDir tmp("cfgw");
  const std::string path = tmp / "a/b/default_config.yaml";
  const uint64_t before = fs::atomic_commit_count();
  accel::launcher::save_config_file(small_config(), path);
  EXPECT_EQ(fs::atomic_commit_count(), before + 1);
  accel::launcher::save_config_file(small_config(), path);  // replace
  EXPECT_EQ(fs::atomic_commit_count(), before + 2);
  EXPECT_EQ(names(tmp / "a/b"), std::vector<std::string>{"default_config.yaml"});
  EXPECT_EQ(accel::launcher::load_config_file(path).num_processes, 1);
}

TEST(ConfigWriter, FailedSaveIsAnInputErrorAndLeavesNothing) {
  accel::test::TempDir tmp("cfgw");
  fs::create_directories(tmp / "cfg.yaml");  // a folder in the way
  try {
    accel::launcher::save_config_file(small_config(), tmp / "cfg.yaml");
    FAIL() << "expected InputError";
  } catch (const accel::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cfg.yaml"), std::string::npos) << msg;
    EXPECT_NE(msg.find("HINT"), std::string::npos) << msg;
  }
  EXPECT_EQ(names(tmp.path()), std::vector<std::string>{"cfg.yaml"});
}

}  // namespace
