// The decision service's record stage (issue 7 item 5): every decision the pipeline makes becomes a
// record of the node's lineage log (engine/lineage.h), durable before any decision of its batch
// is answered, and each Decision carries its record's lineageSeq.
//
// One batch, one group commit: the pipeline calls record() once per micro-batch, before the
// callbacks; record() builds the batch's records and appends them with one Log::append (writes,
// then fdatasync). When the append fails (disk full, I/O error, log closed or never opened),
// record() returns false and the pipeline turns every decision of the batch into
// LINEAGE_UNAVAILABLE: a decision that cannot be recorded is never acted upon. A write error
// rolls the batch back and the next batch tries again; a failed fdatasync leaves the log kFailed,
// and every later batch is then denied until the node is restarted (reopening recovers the log).
//
// Bundle digests. The pipeline's hook receives the batch's `const Bundle*`; the digest lives in
// the BundleManager's ActiveBundle that holds that Bundle (the service hands the pipeline an
// aliasing pointer to ActiveBundle::bundle). noteBundle() registers each ActiveBundle as it
// becomes active (a weak reference: the registry keeps nothing alive) and record() finds the
// batch's one by address. The pipeline holds the batch's bundle for the whole batch, so the
// ActiveBundle is alive and its address cannot have been reused. A Bundle the registry does not
// know (never expected) fails the batch: a record must name its deciding bundle.
//
// Checkpoints. The log signs one every N records (on append) and every T ms: a small thread
// calls Log::maybeCheckpoint() every T/2 ms. close() stops it and closes the log, which signs a
// final checkpoint covering every record.
//
// Thread-safety: record() may be called concurrently from several workers (the log serializes
// appends); noteBundle() from any thread; close() once, after the pipeline has drained.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/bundle.h"
#include "engine/bundle_manager.h"
#include "engine/lineage.h"
#include "engine/request.h"

namespace govmesh::server {

/// The lineage record of one decision: every field of lineage::Record but seq (which the log
/// assigns), from the request, its decision and the bundle that decided (null: none was active;
/// digest and revision stay zero). `bundleDigest` is the bundle's 32-byte SHA-256 as signed.
/// Every decoded request's record carries its RequestEvidence (keyId, nonce, payload digest,
/// canonical context) so that replay can rebuild its signing bytes; a MALFORMED one has none.
/// This is the one place that maps a decision to its record; replay re-derives the same fields.
lineage::Record toRecord(const engine::SignedRequest& request, const engine::Decision& decision,
                         const engine::Bundle* bundle, const lineage::Hash& bundleDigest, const std::string& nodeId);

/// How a LineageRecorder opens the log.
struct LineageRecorderOptions {
  std::string dir;                  ///< the log directory (created when absent)
  std::string nodeId;               ///< written into every record
  std::string origin;               ///< the checkpoint origin line and the node key's name
  std::string nodeKeyPem;           ///< PEM Ed25519 private key that signs checkpoints
  uint64_t checkpointEvery = 65536; ///< sign a checkpoint every N records...
  uint64_t checkpointIntervalMs = 1000;  ///< ...or every T ms
  bool sync = true;                 ///< fdatasync every batch (off: benchmarks only)
  lineage::LogIoHooks hooks;        ///< fault injection (tests only)
};

/// Records decisions into the lineage log (see the top of this file).
class LineageRecorder {
 public:
  /// Opens the log. Throws std::invalid_argument when the key is not an Ed25519 private key PEM
  /// or the origin is not a valid key name (configuration errors). A log that cannot be opened
  /// (locked, corrupt, unreadable) does not throw: the recorder then fails every batch and
  /// openError() says why.
  explicit LineageRecorder(LineageRecorderOptions options);
  /// Calls close().
  ~LineageRecorder();
  LineageRecorder(const LineageRecorder&) = delete;
  LineageRecorder& operator=(const LineageRecorder&) = delete;

  /// The pipeline's record hook (engine/pipeline.h RecordHook): appends the batch as one group
  /// commit and sets each decision's lineageSeq; false when it could not.
  bool record(const engine::Bundle* bundle, std::span<const engine::SignedRequest> requests,
              std::span<engine::Decision> decisions);
  /// Registers a bundle that became active, so that record() can name its digest.
  void noteBundle(const std::shared_ptr<const engine::ActiveBundle>& active);
  /// Stops the checkpoint thread and closes the log (final signed checkpoint). Idempotent.
  lineage::LogStatus close();

  /// True while batches can be recorded: the log is open and its last append did not fail.
  bool healthy() const;
  /// Why the log could not be opened, or the last append's failure; empty when none.
  std::string lastError() const;
  /// The log's public key as a C2SP verifier (the checkpoint signer).
  const lineage::NoteVerifier& verifier() const { return verifier_; }
  /// Records in the log (0 when it did not open).
  uint64_t size() const;
  /// The log itself, for read-only views and on-demand checkpoints (the console: searches,
  /// records, proofs); null when it did not open. Not to be used after close().
  lineage::Log* log() const { return log_.get(); }

 private:
  bool findDigest(const engine::Bundle* bundle, lineage::Hash& digest, std::optional<uint64_t>* etcdRevision = nullptr);
  void runCheckpoints();

  LineageRecorderOptions options_;
  lineage::NoteVerifier verifier_;
  std::unique_ptr<lineage::Log> log_;

  mutable std::mutex mu_;  // guards bundles_, lastError_, healthy_, stop_
  std::vector<std::weak_ptr<const engine::ActiveBundle>> bundles_;
  std::string lastError_;
  bool healthy_ = false;
  bool stop_ = false;
  bool closed_ = false;
  std::condition_variable wake_;
  std::thread checkpointThread_;
};

}  // namespace govmesh::server
