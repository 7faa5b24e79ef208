// ProcessGroup: the collectives accel needs, over c10d (TCPStore rendezvous; ProcessGroupGloo
// for CPU tensors, ProcessGroupNCCL for CUDA tensors when LibTorch has CUDA). Every operation
// has a timeout; a failure or timeout throws accel::DistributedError on the calling rank naming
// the operation, the rank and the cause, so no rank hangs when another fails.
#pragma once

#include "accel/core/state.h"

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace accel::distributed {

enum class ReduceOp { kSum, kMax, kMin, kProduct };

/// An asynchronous collective in flight.
class Work {
 public:
  virtual ~Work() = default;
  /// Blocks until done; throws accel::DistributedError on failure or after the group's timeout.
  virtual void wait() = 0;
  virtual bool completed() = 0;
};

class ProcessGroup {
 public:
  struct Options {
    std::string backend = "auto";  // auto | gloo | nccl
    std::chrono::milliseconds timeout{300000};
    /// Period of the liveness/progress heartbeats in the store (0: none); see ProcessGroupOptions.
    std::chrono::milliseconds heartbeat{1000};
    /// Network interface Gloo uses on several machines (GLOO_SOCKET_IFNAME); empty: the one that
    /// routes to the master.
    std::string gloo_socket_ifname;
  };

  /// Rendezvous at state.master_addr:state.master_port (rank 0 hosts the TCPStore) and connect
  /// all ranks. Throws accel::DistributedError naming the address and port when the master cannot
  /// be reached, or the ranks that did not join, within the timeout. On one machine with a
  /// loopback master address the store listens on 127.0.0.1 only (and Gloo connects over
  /// loopback); several machines make it listen on every interface.
  static std::shared_ptr<ProcessGroup> create(const ProcessState& state, const Options& options);

  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend_name() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;

  /// In-place all-reduce of one tensor (asynchronous).
  virtual std::shared_ptr<Work> all_reduce_async(at::Tensor& tensor, ReduceOp op) = 0;
  /// In-place all-reduce, waiting for the result.
  void all_reduce(at::Tensor& tensor, ReduceOp op = ReduceOp::kSum);
  /// Every rank's `tensor` (which must have the same shape and dtype everywhere), in rank order.
  virtual std::vector<at::Tensor> all_gather(const at::Tensor& tensor) = 0;
  /// In-place broadcast from `root`.
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  /// All-gather into one tensor (c10d's _allgather_base): `output` (world * n elements,
  /// contiguous) receives every rank's `input` (n elements) in rank order. Asynchronous; both
  /// tensors must stay alive until the work is waited for.
  virtual std::shared_ptr<Work> all_gather_into_async(at::Tensor& output, const at::Tensor& input) = 0;
  /// Reduce-scatter from one tensor (c10d's _reduce_scatter_base): `input` (world * n elements)
  /// is reduced across ranks and rank r receives elements [r*n, (r+1)*n) in `output`.
  virtual std::shared_ptr<Work> reduce_scatter_async(at::Tensor& output, const at::Tensor& input,
                                                     ReduceOp op) = 0;
  /// Waits until every rank arrives (or the timeout).
  virtual void barrier() = 0;

  /// A group of some of this group's ranks (`ranks`, ascending, containing this rank), sharing
  /// the rendezvous store, timeout and heartbeats. Only the members call it, each with the same
  /// `ranks` and `name`; `name` must be unique among the groups created from this one. Errors
  /// name the members by their rank in this group.
  virtual std::shared_ptr<ProcessGroup> new_subgroup(const std::vector<int>& ranks,
                                                     const std::string& name) = 0;
  /// This group's rank `r` as a rank of the world group (for messages).
  virtual int global_rank(int r) const = 0;

  /// Byte-string collectives (for plain objects, shapes, metadata).
  std::vector<std::string> all_gather_bytes(const std::string& bytes);
  std::string broadcast_bytes(const std::string& bytes, int root);
};

}  // namespace accel::distributed
