// The decision service runtime (issue 6): the Cap'n Proto RPC front door (server/govmesh.capnp,
// interface Authorizer) over the batch pipeline (engine/pipeline.h), the verified bundle state
// (engine/bundle_manager.h) and the Prometheus/health endpoints (kj-http).
//
// Threads. start() runs one kj event loop on its own thread: it accepts RPC and HTTP
// connections, decodes requests and encodes decisions, and never does heavy work. authorize()
// decodes the request list, submits it to the Pipeline and returns a promise that the pipeline's
// callback (on a worker thread) fulfils across threads; the decisions are encoded back on the
// loop thread. Bundle loads (loadBundle RPC, requestReload) verify and compile on a separate
// control thread, because BundleManager::offer re-parses the content and Pipeline::setBundle
// builds the flat table; the loop only waits for the outcome. The web console (consoleListen,
// server/console_api.h) shares the loop for its HTTP and runs its views on a worker of its own.
//
// Fail closed (ARCHITECTURE.md decision 8): a service without a verified bundle answers every
// request NO_BUNDLE; a bundle past its deadline gives POLICY_STALE; a full queue OVERLOADED at
// once; a call that arrives while shutdown() drains SHUTTING_DOWN; after shutdown() the port is
// closed (connection refused). Every deny carries its code; nothing here can make an allow.
//
// Unsigned mode (ServiceOptions::allowUnsigned, for `govmesh loadgen --unsigned`): a request
// whose signature is empty (or 64 zero bytes) skips only the Ed25519 check; everything else
// still applies. Allowed only on a loopback listener. Off, such a request is BAD_SIGNATURE.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/bundle_manager.h"
#include "engine/crypto_types.h"
#include "engine/lineage.h"
#include "engine/pipeline.h"
#include "engine/sync_lease.h"

namespace govmesh::server {

/// Settings of a DecisionService.
struct ServiceOptions {
  /// RPC listen address "host:port" (kj syntax; port 0 picks a free one, see port()).
  std::string listen = "127.0.0.1:7878";
  /// HTTP address for /metrics, /healthz and /readyz; none: no HTTP endpoint.
  std::optional<std::string> metricsListen;
  /// Authority keys a bundle must be signed by (none: every bundle is refused).
  std::vector<crypto::Ed25519PublicKey> trusted;
  /// Bundle file loaded at construction and re-read by requestReload().
  std::optional<std::string> bundlePath;
  /// The pipeline (workers, B, T, queue, backend, admission clock and window, test hooks). Its
  /// admission clock, when set, is also the bundle manager's clock, so that freshness is judged
  /// by one clock. An `observer` given here is called after the service's own.
  engine::PipelineOptions pipeline;
  /// The node's name in status() and in every lineage record.
  std::string nodeId;
  /// Accept unsigned requests (see the top of this file). Loopback listeners only.
  bool allowUnsigned = false;
  /// Called on the control thread with the outcome of each requestReload() (the CLI logs it;
  /// library code never prints). Must not call back into the service's reload paths.
  std::function<void(const engine::LoadOutcome&)> onReload;

  // Lineage (issue 7, server/lineage_recorder.h). With lineageDir set, every decision of every
  // batch is recorded (one group commit with fdatasync per batch, before any reply) and carries
  // its lineageSeq; a batch that cannot be recorded is denied LINEAGE_UNAVAILABLE. A log that
  // cannot be opened does not stop the service: it then denies every request
  // LINEAGE_UNAVAILABLE and /readyz says why (lineageError()), as a refused bundle leaves it
  // answering NO_BUNDLE; `govmesh serve` refuses to start instead. shutdown() closes the log
  // after the pipeline drained: a final signed checkpoint covers every record.

  /// The lineage log directory; none: decisions are not recorded (lineageSeq stays 0).
  std::optional<std::string> lineageDir;
  /// PEM Ed25519 private key (`govmesh keygen`) that signs the log's checkpoints. Required with
  /// lineageDir; not an Ed25519 private key: the constructor throws std::invalid_argument.
  std::optional<std::string> nodeKeyPem;
  /// The checkpoint origin line, also the node key's name; empty: "govmesh/lineage/<nodeId>"
  /// ("node" when nodeId is empty or not a valid key name).
  std::string lineageOrigin;
  /// Sign a checkpoint every this many records...
  uint64_t checkpointEvery = 65536;
  /// ...or every this many ms (0: only every N records and at shutdown).
  uint64_t checkpointIntervalMs = 1000;
  /// fdatasync each batch. Off only to measure the rest: nothing survives a power loss then.
  bool lineageSync = true;
  /// Test only: replaces the log's pwrite/fdatasync (fault injection).
  lineage::LogIoHooks lineageIoHooks;

  // Console (issue 9, server/console_api.h, docs/console.md): a web console and its JSON API
  // (status, per-second series, lineage search, records with policy texts, inclusion proofs,
  // what-if evaluation, admin reload) on its own HTTP listener.

  /// The console's HTTP address "host:port" (port 0 picks a free one, see consolePort()); none:
  /// no console. A non-loopback address needs consoleToken: the constructor throws
  /// std::invalid_argument without one.
  std::optional<std::string> consoleListen;
  /// The console's bearer token (empty: none). Admin actions always need it (none configured:
  /// they are refused); on a non-loopback listener every API call needs it.
  std::string consoleToken;

  // Mesh (issue 8, server/mesh_node.h). The mesh node renews this lease whenever etcd confirms
  // that the active bundle is still the published one; while it is lapsed every request is
  // denied POLICY_STALE and /readyz says why. With a lease, the loadBundle RPC answers
  // UNAVAILABLE: a mesh node enforces only what etcd names. Null: a standalone node (bundle
  // deadline only).
  std::shared_ptr<engine::SyncLease> syncLease;
  /// Why the lease lapsed, for /readyz (called on the loop thread; may be empty).
  std::function<std::string()> syncStaleReason;
  /// The mesh sync's state as one JSON object's text, for the console's status (mesh_node.h
  /// meshStatusJson); empty: the console shows "mesh": null.
  std::function<std::string()> meshStatusJson;
};

/// The decision service (see the top of this file). Thread-safety: every public member may be
/// called from any thread; requestReload() also from a signal handler.
class DecisionService {
 public:
  /// Creates the pipeline (throws std::invalid_argument / std::runtime_error for a bad backend
  /// name, as Pipeline does; std::invalid_argument for allowUnsigned on a non-loopback listen
  /// address) and loads `bundlePath` if given. A refused bundle does not throw: the service then
  /// runs without one (every request NO_BUNDLE, /readyz not ready); initialLoad() says why.
  explicit DecisionService(ServiceOptions options);
  /// Calls shutdown().
  ~DecisionService();
  DecisionService(const DecisionService&) = delete;
  DecisionService& operator=(const DecisionService&) = delete;

  /// Starts the event loop thread, binds the listeners and returns once they accept
  /// connections. Throws std::runtime_error naming the address when one cannot be bound, or
  /// std::logic_error when called twice or after shutdown().
  void start();
  /// The bound RPC port (0 before start()).
  uint16_t port() const;
  /// The bound HTTP port (0 before start() or without metricsListen).
  uint16_t metricsPort() const;
  /// The bound console port (0 before start() or without consoleListen).
  uint16_t consolePort() const;

  /// Asks the control thread to re-read bundlePath (no-op without one). Returns at once; the
  /// outcome goes to ServiceOptions::onReload. Async-signal-safe (an atomic store and sem_post).
  void requestReload();
  /// Offers a bundle file, exactly as the loadBundle RPC does (verified, newer, unexpired; a
  /// refusal keeps the active bundle). Runs on the calling thread; never throws.
  engine::LoadOutcome offerBundle(std::string_view bytes);
  /// Offers a bundle that came from etcd: `source` names it, `etcdRevision` (the active
  /// pointer's revision) goes into every lineage record decided under it. Never throws.
  engine::LoadOutcome offerBundle(std::string_view bytes, std::string_view source, std::optional<uint64_t> etcdRevision);

  /// Stops accepting connections, answers everything queued or in flight (calls arriving on
  /// open connections meanwhile get SHUTTING_DOWN), stops the loop and joins the threads.
  /// Idempotent; must not be called from the loop thread or a pipeline callback.
  void shutdown();

  /// The outcome of loading bundlePath at construction (nullopt without one).
  const std::optional<engine::LoadOutcome>& initialLoad() const;
  /// The verified bundle state (active bundle, revision, freshness).
  const engine::BundleManager& bundles() const;
  /// The pipeline (counters, queue depth, backend name).
  const engine::Pipeline& pipeline() const;
  /// The Prometheus text of /metrics, gauges updated now.
  std::string metricsText();
  /// Why decisions cannot be recorded now (the log did not open, or the last batch's append
  /// failed); nullopt when they can or when lineage is off.
  std::optional<std::string> lineageError() const;
  /// Records in the lineage log (0 when lineage is off or the log did not open).
  uint64_t lineageSize() const;

  /// Implementation (server/service_impl.h); public only so that the RPC and HTTP parts in
  /// their own files can name it.
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// True when `listen` ("host:port") names a loopback host: 127.0.0.0/8, ::1 or localhost.
bool isLoopbackListenAddress(std::string_view listen);

}  // namespace govmesh::server
