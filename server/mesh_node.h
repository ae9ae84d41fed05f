// A decision node's link to the mesh (issue 8): it keeps the node's DecisionService on the
// bundle published in etcd (server/mesh_store.h), learns of a new one within a watch round trip,
// and lets the node's sync lease (engine/sync_lease.h) lapse, so that the node denies
// POLICY_STALE on its own, once it can no longer be sure that its bundle is the current one.
//
// The sync thread:
//   1. Read: the pointer and its chunks, linearizably (a quorum read through whichever endpoint
//      answers). The bundle goes to DecisionService::offerBundle, which verifies the authority's
//      signature and the digest before activating anything; a refused bundle (tampered, expired,
//      older) leaves the active one in place and is counted.
//   2. Watch the pointer key from the revision of that read + 1. A put of the pointer fetches and
//      offers the bundle it names at once (this is the publish-to-enforce path). A compacted
//      watch revision, a broken stream or a failed fetch sends the thread back to step 1: a gap
//      is always closed by a fresh linearizable read, never skipped.
//   3. Every probeMs, a linearizable read of the pointer: if it names what the node enforces,
//      the lease is renewed to (time the probe was sent + syncTimeoutMs); if it names something
//      newer, the node fetches it (a watch that silently stalled cannot keep the node behind).
//
// What renews the lease: only a successful linearizable read (a probe, or step 1) whose pointer
// names the bundle the node enforces, or a bundle the node refused while keeping its verified
// one. Watch events and progress notifications are "heard from etcd" (lastHeardMs) and trigger
// reads, but do not renew by themselves: a member cut off from its quorum can still stream
// progress notifications from its own stale store; only a quorum read proves currency. So a node
// that cannot reach a quorum for syncTimeoutMs denies, whatever its member tells it.
//
// Once the lease has lapsed, the node serves again only after step 1 re-read and re-verified
// the bundle (a probe alone does not revive it).
//
// Thread-safety: start/stop from one owner thread; status() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/sync_lease.h"
#include "server/etcd_client.h"
#include "server/mesh_store.h"

namespace govmesh::server {
class DecisionService;
}

namespace govmesh::mesh {

/// Settings of a MeshNode.
struct MeshNodeOptions {
  /// etcd client URLs ("http://127.0.0.1:2379"), tried in order.
  std::vector<std::string> endpoints;
  /// The key prefix the publisher used.
  std::string prefix = "/govmesh";
  /// The node denies POLICY_STALE once it has had no quorum confirmation for this long.
  int64_t syncTimeoutMs = 3000;
  /// Interval of the linearizable freshness probe (0: syncTimeoutMs / 4).
  int64_t probeMs = 0;
  /// etcd request timeouts (0: derived from syncTimeoutMs).
  int connectTimeoutMs = 0, requestTimeoutMs = 0;
  /// Unix ms; defaults to the system clock. Must be the service's admission clock.
  std::function<int64_t()> clock;
  /// Called on the sync thread after a bundle became active through the mesh (revision, the
  /// pointer's etcd revision, the clock time of activation). Tests and mesh-demo time with it.
  std::function<void(uint64_t revision, int64_t etcdRevision, int64_t atMs)> onActivated;
  /// Test only: start the first watch this many revisions before the revision read, so that a test
  /// can make it start on a compacted revision (the node must then re-read, never skip).
  int64_t watchLagForTest = 0;
  /// Called on the sync thread when a published bundle was refused (why).
  std::function<void(uint64_t revision, const std::string& why)> onRefused;
};

/// What the node knows about its sync (console, /readyz, tests).
struct MeshStatus {
  bool running = false;
  uint64_t activeRevision = 0;        ///< the revision the node enforces (0: none yet)
  int64_t activeEtcdRevision = 0;     ///< the etcd revision of the pointer that named it
  uint64_t publishedRevision = 0;     ///< what the pointer named at the last read
  int64_t pointerEtcdRevision = 0;    ///< the etcd revision of that pointer
  int64_t lastConfirmedMs = 0;        ///< last quorum read that renewed the lease
  int64_t lastHeardMs = 0;            ///< last anything from etcd (read, event, progress)
  int64_t leaseUntilMs = 0;           ///< the lease's end (0: never granted / lapsed)
  uint64_t reads = 0, probes = 0, watchEvents = 0, progressNotifications = 0;
  uint64_t refusals = 0;              ///< published bundles refused (tampered, expired, ...)
  uint64_t rereads = 0;               ///< full re-reads after a gap (compaction, broken watch, lapse)
  std::string lastError;              ///< the last etcd or fetch failure ("" when none)
  std::string lastRefusal;            ///< why the last refused bundle was refused
};

/// `s` as one JSON object's text (the console's "mesh" status; docs/console.md).
std::string meshStatusJson(const MeshStatus& s, int64_t syncTimeoutMs);

/// Keeps one DecisionService on the mesh's published bundle (see the top of this file).
class MeshNode {
 public:
  /// `service` must outlive the node and have been created with `lease` as its
  /// ServiceOptions::syncLease. Nothing runs before start().
  MeshNode(MeshNodeOptions options, server::DecisionService& service, std::shared_ptr<engine::SyncLease> lease);
  /// Calls stop().
  ~MeshNode();
  MeshNode(const MeshNode&) = delete;
  MeshNode& operator=(const MeshNode&) = delete;

  /// Starts the sync thread (it reads at once).
  void start();
  /// Stops the watch and the sync thread (promptly). The lease is left to lapse by itself.
  void stop();
  /// A snapshot of the sync state.
  MeshStatus status() const;
  /// The sync timeout in force.
  int64_t syncTimeoutMs() const { return options_.syncTimeoutMs; }
  /// Why the lease lapsed, in one line (for /readyz).
  std::string staleReason() const;
  /// Blocks until the node enforces `revision` or `timeoutMs` passes; returns whether it does.
  bool waitForRevision(uint64_t revision, int64_t timeoutMs) const;

 private:
  enum class EventKind { kPointer, kPointerDeleted, kProgress, kBroken };
  struct Event {
    EventKind kind;
    int64_t revision = 0;
    std::string value;
    std::string why;
  };

  void run();
  bool readAll(bool gap, bool restartWatch);    // step 1; false on failure (retry)
  void startWatch(int64_t fromRevision);
  void probe();                                 // step 3
  void apply(const ActivePointer& pointer, int64_t modRevision, const std::string& bytes, int64_t sentMs);
  void refuse(const ActivePointer& pointer, int64_t modRevision, const std::string& why, int64_t sentMs);
  void renew(int64_t sentMs);
  void push(Event e);
  int64_t now() const { return options_.clock(); }
  void setError(const std::string& why);

  MeshNodeOptions options_;
  server::DecisionService& service_;
  std::shared_ptr<engine::SyncLease> lease_;
  std::unique_ptr<etcd::Client> client_;
  std::unique_ptr<etcd::Watch> watch_;
  bool needRead_ = false;  // set by probe() when its re-read failed (sync thread only)

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Event> events_;
  bool stop_ = false;
  MeshStatus status_;
  std::thread thread_;
};

}  // namespace govmesh::mesh
