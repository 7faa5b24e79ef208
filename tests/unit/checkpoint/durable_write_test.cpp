// Every checkpoint writer (safetensors files, shard indexes, state-folder members and manifests)
// goes through the one durable atomic writer (accel::fs::AtomicFile: temporary file, fsync,
// rename, fsync of the folder); a failed write leaves the old file and no temporary.
#include "accel/checkpoint/safetensors.h"
#include "accel/checkpoint/state_folder.h"

#include "accel/core/error.h"
#include "accel/core/fs.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace {

namespace fs = accel::fs;
using namespace accel::checkpoint;

std::vector<std::string> names(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::list_dir(dir)) out.push_back(e.name);
  return out;
}

TEST(CheckpointWriters, UseTheAtomicWriter) {
  accel::test::TempDir tmp("ckw");
  uint64_t n = fs::atomic_commit_count();
  save_file({{"a", torch::ones({3})}}, tmp / "one.safetensors");
  EXPECT_EQ(fs::atomic_commit_count(), n += 1);

  TensorMap big = {{"w1", torch::ones({64})}, {"w2", torch::ones({64})}, {"w3", torch::ones({64})}};
  auto files = save_checkpoint(big, tmp / "sharded", SaveCheckpointOptions().max_shard_size(300));
  ASSERT_EQ(files.size(), 4u);  // 3 shards + the index
  EXPECT_EQ(fs::atomic_commit_count(), n += 4);

  StateFolderWriter w(tmp / "state");
  w.write("a.json", "{}");
  EXPECT_EQ(fs::atomic_commit_count(), n += 1);
  w.commit({{"creator", "test"}});  // the manifest
  EXPECT_EQ(fs::atomic_commit_count(), n += 1);
  EXPECT_EQ(names(tmp / "state"), (std::vector<std::string>{"a.json", kManifestName}));
  EXPECT_NO_THROW(verify_state_folder(tmp / "state"));
}

TEST(CheckpointWriters, FailedSaveKeepsTheOldFileAndLeavesNoTemporary) {
  accel::test::TempDir tmp("ckw");
  save_file({{"a", torch::ones({3})}}, tmp / "x.safetensors");
  // An unsupported dtype fails while writing; a folder as the target fails at the rename.
  EXPECT_THROW(save_file({{"c", torch::zeros({1}, torch::kComplexDouble)}}, tmp / "x.safetensors"),
               accel::Error);
  fs::create_directories(tmp / "folder.safetensors");
  EXPECT_THROW(save_file({{"a", torch::ones({3})}}, tmp / "folder.safetensors"), accel::Error);
  EXPECT_EQ(names(tmp.path()), (std::vector<std::string>{"folder.safetensors", "x.safetensors"}));
  EXPECT_EQ(load_file(tmp / "x.safetensors")["a"].numel(), 3);
}

}  // namespace
