// ProcessMesh: the processes of a run as a 2-D grid, replicate x shard. Ranks r = i * S + j with
// i the replica index (0..R-1) and j the position in the shard group (0..S-1): data parallel over
// all R*S ranks, parameters sharded over the S ranks of a shard group and replicated across the R
// groups (HYBRID_SHARD: S = the processes of one machine). Plain data parallel and full sharding
// are the R = 1 or S = 1 edges. The loader's data shard is the rank in the data-parallel
// dimension, which is the whole grid here.
#pragma once

#include "accel/distributed/process_group.h"

#include <memory>
#include <vector>

namespace accel::distributed {

class ProcessMesh {
 public:
  /// A mesh over `world` with shard groups of `shard_size` consecutive ranks (it must divide
  /// world->world_size()). Creates the shard and replicate subgroups this rank belongs to
  /// (collective over the world: every rank calls it). With shard_size == world size the shard
  /// group is the world group itself and there is no replicate group.
  ProcessMesh(std::shared_ptr<ProcessGroup> world, int shard_size);
  /// The world as one shard group (no subgroups made).
  explicit ProcessMesh(std::shared_ptr<ProcessGroup> world) : ProcessMesh(world, world->world_size()) {}

  const std::shared_ptr<ProcessGroup>& world() const { return world_; }
  /// The ranks this rank shares parameters with (S ranks).
  const std::shared_ptr<ProcessGroup>& shard_group() const { return shard_; }
  /// The ranks holding the same shard as this one (R ranks), or null when R == 1.
  const std::shared_ptr<ProcessGroup>& replicate_group() const { return replicate_; }
  int shard_size() const { return shard_size_; }
  int replicate_size() const { return replicate_size_; }
  int shard_rank() const { return world_->rank() % shard_size_; }
  int replicate_rank() const { return world_->rank() / shard_size_; }
  /// Ranks in the data-parallel dimension (all of them).
  int data_parallel_size() const { return world_->world_size(); }
  int data_parallel_rank() const { return world_->rank(); }

 private:
  std::shared_ptr<ProcessGroup> world_;
  std::shared_ptr<ProcessGroup> shard_;
  std::shared_ptr<ProcessGroup> replicate_;
  int shard_size_ = 1;
  int replicate_size_ = 1;
};

}  // namespace accel::distributed
