#include "accel/distributed/mesh.h"

#include "accel/core/error.h"

namespace accel::distributed {

ProcessMesh::ProcessMesh(std::shared_ptr<ProcessGroup> world, int shard_size) : world_(std::move(world)) {
  ACCEL_CHECK(world_, "ProcessMesh needs a process group.");
  const int n = world_->world_size();
  ACCEL_CHECK(shard_size >= 1 && n % shard_size == 0, "a shard group of ", shard_size,
              " processes does not divide the ", n,
              " processes evenly. HINT: for HYBRID_SHARD every machine must run the same number of processes "
              "(or set ShardingOptions::shard_group_size to a divisor of the world size).");
  shard_size_ = shard_size;
  replicate_size_ = n / shard_size;
  if (replicate_size_ == 1) {
    shard_ = world_;
    return;
  }
  const int me = world_->rank();
  const int i = me / shard_size, j = me % shard_size;
  std::vector<int> shard_ranks, replicate_ranks;
  for (int k = 0; k < shard_size; ++k) shard_ranks.push_back(i * shard_size + k);
  for (int k = 0; k < replicate_size_; ++k) replicate_ranks.push_back(k * shard_size + j);
  if (shard_size > 1) {
    shard_ = world_->new_subgroup(shard_ranks, "shard" + std::to_string(i));
  } else {
    shard_ = world_->new_subgroup(shard_ranks, "self" + std::to_string(me));
  }
  replicate_ = world_->new_subgroup(replicate_ranks, "replicate" + std::to_string(j));
}

}  // namespace accel::distributed
