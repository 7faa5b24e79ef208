// The trackers' rewritten files (config.json, the CSV rewrite that adds a column) go through the
// one durable atomic writer (accel::fs::AtomicFile: temporary file, fsync, rename, fsync of the
// folder), and a failed write leaves neither a temporary file nor a half-written target.
#include "accel/tracking/tracker.h"

#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "unit/tracking/test_util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace accel::tracking {
namespace {

namespace fs = accel::fs;

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::list_dir(dir)) out.push_back(e.name);
  return out;
}

TEST(TrackerFiles, ConfigAndCsvRewriteUseTheAtomicWriter) {
  test::TempDir tmp;
  const uint64_t before = fs::atomic_commit_count();
  JsonlTracker j(tmp.str());
  j.start("jsonl_run", {{"lr", 0.001}});
  EXPECT_EQ(fs::atomic_commit_count(), before + 1);  // config.json
  j.finish();

  CsvTracker c(tmp.str());
  c.start("csv_run", {{"lr", 0.001}});
  EXPECT_EQ(fs::atomic_commit_count(), before + 2);  // config.json
  c.log({{"loss", 0.5}}, 1);
  c.log({{"loss", 0.4}, {"acc", 0.9}}, 2);  // a new column: the file is rewritten
  EXPECT_EQ(fs::atomic_commit_count(), before + 3);
  c.finish();
  EXPECT_EQ(names(tmp / "csv_run"), (std::vector<std::string>{"config.json", "metrics.csv"}));
  EXPECT_EQ(names(tmp / "jsonl_run"), (std::vector<std::string>{"config.json", "metrics.jsonl"}));
}

TEST(TrackerFiles, FailedConfigWriteNamesTheFileAndLeavesNothing) {
  test::TempDir tmp;
  fs::create_directories(tmp / "run/config.json");  // a folder where the file should go
  JsonlTracker j(tmp.str());
  try {
    j.start("run", {{"lr", 0.001}});
    FAIL() << "expected accel::Error";
  } catch (const accel::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("jsonl tracker"), std::string::npos) << msg;
    EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  }
  EXPECT_EQ(names(tmp / "run"), std::vector<std::string>{"config.json"});  // no temporary left
}

}  // namespace
}  // namespace accel::tracking
