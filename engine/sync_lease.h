// A freshness lease granted by the node's source of truth for policy (issue 8: the mesh's etcd
// sync, server/mesh_node.h). A bundle's own deadline says how long its authority vouches for it;
// the lease says how long the node may still believe that it holds the *current* bundle. The
// mesh node renews it each time etcd confirms, with a quorum, that the active pointer still
// names the bundle the node enforces, and lets it lapse otherwise. While it is not valid,
// admission denies every request POLICY_STALE and BundleManager::state() says kStale, so
// /readyz, status() and the decisions agree.
//
// Thread-safety: one atomic; renew/expire from the sync thread, valid() from any thread (the
// hot path reads one acquire load per batch).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

namespace govmesh::engine {

/// How long the node may still decide under its active bundle (see the top of this file).
class SyncLease {
 public:
  /// Valid until `untilMs` (Unix ms, exclusive). A renewal may also shorten the lease.
  void renew(int64_t untilMs) { untilMs_.store(untilMs, std::memory_order_release); }
  /// Not valid from now on, until the next renew().
  void expire() { untilMs_.store(std::numeric_limits<int64_t>::min(), std::memory_order_release); }
  /// True while `nowMs` is before the lease's end.
  bool valid(int64_t nowMs) const { return nowMs < untilMs_.load(std::memory_order_acquire); }
  /// The lease's end (Unix ms); INT64_MIN when never granted or expired.
  int64_t untilMs() const { return untilMs_.load(std::memory_order_acquire); }

 private:
  std::atomic<int64_t> untilMs_{std::numeric_limits<int64_t>::min()};
};

}  // namespace govmesh::engine
