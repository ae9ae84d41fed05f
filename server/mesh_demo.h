// The mesh scenario of `govmesh mesh-demo` and of the multi-node tests (issue 8): a real etcd
// cluster (server/etcd_cluster.h, three members on loopback) and N decision nodes in this
// process, each a DecisionService with its own lineage log and its MeshNode (server/mesh_node.h);
// the last node reaches etcd only through cuttable TCP proxies (server/tcp_proxy.h), so that it
// can be partitioned alone. Each node is driven by a thread that sends one signed request (which
// the policies allow) every few milliseconds over RPC and keeps every answer with its time.
//
// The phases, in order, each judged from what the clients were answered and, at the end, from
// every node's lineage log:
//   publish     `publishes` new revisions, one after another; for each, the time from the start
//               of the publish until each node has it active (publish_to_enforce_ms). The bundle
//               is padded past etcd's request limit (set low for the demo), so it is chunked.
//   tamper      a bundle whose content was altered after signing is published under a valid
//               pointer: every node must refuse it and keep serving the previous revision.
//   partition   the last node's proxies are cut: it must deny POLICY_STALE once its sync
//               timeout has passed (no allow after cut + timeout), while the others keep
//               serving and take a revision published meanwhile; healed, it catches up.
//   leader kill the etcd leader is killed: every node keeps serving (no stale deny), and a
//               revision published after the new election reaches all of them.
//   quorum loss a second member is killed: with no quorum, every node denies POLICY_STALE once
//               its timeout has passed; with the members back, every node serves again.
//   audit       every allow in every node's lineage log names a (revision, digest, etcd
//               revision) that was published and verified; anything else is counted in
//               allows_under_unverified_revision, which must be 0.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace govmesh::server {

/// Settings of the scenario.
struct MeshDemoOptions {
  size_t nodes = 3;                 ///< decision nodes (the last one is the one partitioned)
  size_t publishes = 20;            ///< revisions published to time publish-to-enforce
  int64_t syncTimeoutMs = 3000;     ///< every node's sync timeout
  std::string etcdBinary = "etcd";  ///< the etcd executable
  uint64_t maxRequestBytes = 262144;  ///< the cluster's --max-request-bytes (bundles are chunked below it)
  size_t bundlePadBytes = 600000;   ///< policy text padding, so that the bundle spans several chunks
  int64_t requestIntervalMs = 5;    ///< each node's client sends one request this often
};

/// What the scenario measured (see the top of this file).
struct MeshDemoReport {
  size_t nodes = 0, etcdMembers = 0;
  uint64_t bundleBytes = 0, chunks = 0;
  std::vector<double> enforceMs;    ///< one per (publish, node)
  double enforceP50 = 0, enforceP99 = 0, enforceMax = 0;
  bool tamperedRefused = false;
  bool partitionedNodeDenied = false;
  bool othersServedDuringPartition = false;
  bool partitionedNodeRecovered = false;
  bool leaderKillSurvived = false;
  bool quorumLossDenied = false;
  bool quorumLossRecovered = false;
  uint64_t allowsUnderUnverified = 0;  ///< allows (answered or recorded) under no verified revision
  uint64_t recordsAudited = 0, allowsAudited = 0;
  uint64_t requests = 0, allowed = 0, staleDenied = 0, callErrors = 0;
  double seconds = 0;
  std::vector<std::string> failures;   ///< each check that failed, in words
  /// Every check passed.
  bool passed() const { return failures.empty(); }
};

/// Runs the scenario (it takes about half a minute); `log`, when given, gets a line per phase.
/// Never throws for a failed check (it is in `failures`); throws std::runtime_error when the
/// cluster or a node cannot be started at all.
MeshDemoReport runMeshDemo(const MeshDemoOptions& options, std::ostream* log = nullptr);

/// The report as the one JSON object `govmesh mesh-demo --json` prints.
nlohmann::json meshDemoJson(const MeshDemoReport& r);

}  // namespace govmesh::server
