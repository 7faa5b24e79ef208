// BertConfig::save writes config.json through the one durable atomic writer (accel::fs::AtomicFile)
// and reads back equal.
#include "accel/core/fs.h"
#include "accel/models/bert.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

namespace {

TEST(BertConfigSave, UsesTheAtomicWriterAndRoundTrips) {
  accel::test::TempDir tmp("bertcfg");
  auto cfg = accel::models::BertConfig::from_name("bert-tiny");
  const uint64_t before = accel::fs::atomic_commit_count();
  cfg.save(tmp / "config.json", {"BertModel"});
  EXPECT_EQ(accel::fs::atomic_commit_count(), before + 1);
  const auto back = accel::models::BertConfig::from_json_file(tmp / "config.json");
  EXPECT_EQ(back.hidden_size, cfg.hidden_size);
  EXPECT_EQ(back.num_hidden_layers, cfg.num_hidden_layers);
  EXPECT_EQ(accel::fs::list_dir(tmp.path()).size(), 1u);  // no temporary left
}

}  // namespace
