// The in-process batch pipeline of the decision service (ARCHITECTURE.md: admit -> verify ->
// featurize -> evaluate -> record -> reply), without RPC: callers submit batches of decoded
// requests and get their decisions back through a callback.
//
// Flow. submit() appends a Submission to one bounded queue (bounded in requests, not
// submissions, because a request is the unit of work) and returns at once. Worker threads gather
// micro-batches across submissions: a worker takes whole submissions from the front of the queue
// once at least `maxBatch` requests wait, or `maxWait` after the oldest waiting submission was
// queued, whichever comes first — or at once when no worker is busy (`flushWhenIdle`). A submission is never split, so a submission larger than
// maxBatch forms a batch on its own. Per batch, the worker:
//   1. fixes the active bundle (one bundle for the whole batch, even if setBundle() runs meanwhile);
//   2. admits and verifies (Admission::admit: NO_BUNDLE, POLICY_STALE, keys, clock, nonces, ...);
//   3. featurizes the admitted requests and evaluates them on the configured backend with the
//      bundle's FlatTable; a backend that throws or reports failure is retried on the fallback
//      (the scalar reference); if that fails too, the admitted requests are denied BACKEND_FAULT;
//   4. calls the `record` hook; when it fails, every decision of the batch becomes
//      LINEAGE_UNAVAILABLE (a decision that cannot be recorded must not be acted upon);
//   5. calls each submission's callback with its own decisions (in its requests' order), the
//      submissions of a batch in the order they were submitted.
//
// Fail closed (decision 8): every path that is not a successful evaluation is a deny with a code.
// A full queue answers OVERLOADED and a draining pipeline SHUTTING_DOWN, both at once on the
// submitting thread, never waiting.
//
// Thread-safety: submit(), setBundle(), bundle(), queueDepth(), counters() and shutdown() may be
// called concurrently from any thread. Callbacks run on a worker thread (or on the submitting
// thread for OVERLOADED / SHUTTING_DOWN answers); batches on different workers run in parallel,
// so callbacks of different batches may interleave. Callbacks must not block for long: they hold
// up their worker.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/admission.h"
#include "engine/bundle.h"
#include "engine/deny_code.h"
#include "engine/evaluator.h"
#include "engine/request.h"

namespace govmesh::engine {

/// Receives one submission's decisions, decisions[i] answering the submission's requests[i].
using DecisionCallback = std::function<void(std::vector<Decision> decisions)>;

/// The record stage: given the batch's bundle (null when none), requests and decisions, records
/// them durably (lineage, issue 7) and may set each Decision::lineageSeq. Returns false when the
/// batch could not be recorded; every decision of the batch then becomes LINEAGE_UNAVAILABLE.
/// Called from worker threads, concurrently when there are several workers. A hook that throws
/// counts as one that returned false.
using RecordHook = std::function<bool(const Bundle* bundle, std::span<const SignedRequest> requests,
                                      std::span<Decision> decisions)>;

/// Creates an evaluation backend (one per worker: backends need not be thread-safe).
using EvaluatorFactory = std::function<std::unique_ptr<Evaluator>()>;

/// What happened to one batch, for metrics. Times are wall time on the worker, in ns; the stage
/// names follow server/metrics.h Stage.
struct BatchStats {
  size_t size = 0;                ///< requests in the batch
  size_t submissions = 0;         ///< submissions gathered into it
  uint64_t bundleRevision = 0;    ///< revision of the bundle it used (0: none)
  uint64_t admitNs = 0;           ///< admission checks (AdmissionTiming::checkNs)
  uint64_t verifyNs = 0;          ///< payload hashes, signatures and nonce recording
  uint64_t featurizeNs = 0;       ///< toCedarRequest + table::featurize of the admitted requests
  uint64_t evaluateNs = 0;        ///< the backend(s) and finishResponses
  uint64_t recordNs = 0;          ///< the record hook
  uint64_t replyNs = 0;           ///< the callbacks
  bool sha256FellBack = false;    ///< admission's SHA-256 backend faulted; its fallback ran
  bool ed25519FellBack = false;   ///< admission's Ed25519 backend faulted; its fallback ran
  bool evaluateFellBack = false;  ///< the evaluation backend faulted; the fallback ran
  uint64_t allowed = 0;           ///< allow decisions
  /// Deny decisions by code (index: the DenyCode value; [0] counts denies by the policies).
  std::array<uint64_t, std::size(kAllDenyCodes)> denied{};
};

/// Hooks for metrics. The server implements this on top of ServiceMetrics (server/metrics.h,
/// which engine/ cannot depend on). Methods are called from worker threads (onBatch) and from
/// submitting threads (onRejected), concurrently; they must be cheap and must not throw.
class PipelineObserver {
 public:
  virtual ~PipelineObserver() = default;
  /// A batch was answered. Called after its callbacks returned (so that replyNs is known):
  /// a submitter may have its decisions before the observer has seen the batch.
  virtual void onBatch(const BatchStats& stats) { (void)stats; }
  /// `n` requests were answered `code` (OVERLOADED or SHUTTING_DOWN) at submission, without
  /// entering a batch.
  virtual void onRejected(DenyCode code, size_t n) { (void)code, (void)n; }
};

/// Settings of a Pipeline.
struct PipelineOptions {
  /// Worker threads (0 is raised to 1).
  size_t workers = 1;
  /// Flush a batch once this many requests wait (B; 0 is raised to 1).
  size_t maxBatch = 1024;
  /// Flush a batch this long after its oldest submission was queued, even under maxBatch (T).
  std::chrono::microseconds maxWait{200};
  /// When no worker is running a batch, flush what is queued at once instead of waiting for B or
  /// T: a lone request then pays no batching delay, while under load requests still gather into
  /// batches during the time a busy worker takes (natural batching). Off: strictly B or T.
  bool flushWhenIdle = true;
  /// The most requests waiting in the queue; a submission that would exceed it is answered
  /// OVERLOADED at once. (A submission larger than this is therefore always refused.)
  size_t queueCapacity = size_t{1} << 16;
  /// Evaluation backend by name (makeEvaluator); empty: bestEvaluator(allowGpu).
  std::string backend;
  /// Whether an empty `backend` may pick the GPU.
  bool allowGpu = true;
  /// Overrides `backend` when set (tests inject faulty backends here).
  EvaluatorFactory makePrimary;
  /// The backend a faulting batch is retried on; empty: makeEvaluator("scalar").
  EvaluatorFactory makeFallback;
  /// The admit and verify stages (clock, window, crypto backends, nonce cache).
  AdmissionOptions admission;
  /// The record stage; empty: nothing is recorded and it always succeeds.
  RecordHook record;
  /// Metrics hooks; null: none. Must outlive the Pipeline.
  PipelineObserver* observer = nullptr;
  /// Test hook: called by a worker with each batch's size after the batch and its bundle are
  /// fixed, before admission. Blocking in it holds the worker (tests fill the queue that way).
  std::function<void(size_t batchSize)> beforeBatch;
};

/// Running totals, for status(). A batch is counted before its callbacks are called.
struct PipelineCounters {
  uint64_t submitted = 0;       ///< requests accepted into the queue
  uint64_t batches = 0;         ///< batches answered
  uint64_t allowed = 0;         ///< allow decisions
  uint64_t denied = 0;          ///< deny decisions, rejections included
  uint64_t overloaded = 0;      ///< requests answered OVERLOADED at submission
  uint64_t shuttingDown = 0;    ///< requests answered SHUTTING_DOWN at submission
  uint64_t evaluateFallbacks = 0;  ///< batches whose evaluation fell back to the fallback backend
  uint64_t backendFaults = 0;   ///< batches whose evaluation failed on both backends
  uint64_t recordFailures = 0;  ///< batches the record hook failed
};

/// The batch pipeline (see the top of this file). Workers start at construction and stop in
/// shutdown() (or the destructor).
class Pipeline {
 public:
  /// Starts `options.workers` workers with no active bundle. Creates every worker's backends
  /// here, so a bad backend name throws now (std::invalid_argument for an unknown name,
  /// std::runtime_error for one this machine cannot run), not on the first batch.
  explicit Pipeline(PipelineOptions options);
  /// Calls shutdown().
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Queues `requests` for evaluation; `done` is called once with their decisions. Returns at
  /// once: when the queue cannot take them all, `done` is called before submit() returns with
  /// OVERLOADED for each (SHUTTING_DOWN once shutdown() has begun). An empty submission is
  /// answered at once with no decisions. Returns the code the submission was refused with, or
  /// kNone when it was queued.
  DenyCode submit(std::vector<SignedRequest> requests, DecisionCallback done);

  /// As submit(requests, done), with codes already decided by the caller (the wire decoder's
  /// MALFORMED): presetCodes[i] != kNone denies requests[i] with that code without evaluating
  /// it. A size mismatch is a caller bug: every request is denied MALFORMED, at once.
  DenyCode submit(std::vector<SignedRequest> requests, std::vector<DenyCode> presetCodes, DecisionCallback done);

  /// Makes `bundle` the active bundle for batches that start from now on (null: none, so
  /// requests are denied NO_BUNDLE). Builds its FlatTable on the calling thread, so the
  /// workers never do. Verifying the bundle is the caller's job (loadBundle).
  void setBundle(std::shared_ptr<const Bundle> bundle);
  /// The active bundle (null when none).
  std::shared_ptr<const Bundle> bundle() const;

  /// Stops accepting (new submissions get SHUTTING_DOWN), lets the workers answer everything
  /// queued or in flight, and joins them. Idempotent; must not be called from a callback.
  void shutdown();
  /// False once shutdown() has begun.
  bool accepting() const;

  /// Requests waiting for a worker.
  size_t queueDepth() const;
  /// A snapshot of the running totals.
  PipelineCounters counters() const;
  /// The evaluation backend's name (the first worker's).
  std::string backendName() const;
  /// The admit and verify stages, shared by every worker (for the nonce cache's metrics).
  Admission& admission() { return admission_; }

 private:
  // The active bundle and the table kernels read, built once per bundle; swapped as a whole.
  struct Active {
    std::shared_ptr<const Bundle> bundle;
    std::unique_ptr<FlatTable> flat;
  };
  struct Submission {
    std::vector<SignedRequest> requests;
    std::vector<DenyCode> codes;
    DecisionCallback done;
    std::chrono::steady_clock::time_point queuedAt;
  };
  struct Worker {
    std::unique_ptr<Evaluator> primary, fallback;
    std::thread thread;
  };
  struct Counters {
    std::atomic<uint64_t> submitted{0}, batches{0}, allowed{0}, denied{0}, overloaded{0}, shuttingDown{0},
        evaluateFallbacks{0}, backendFaults{0}, recordFailures{0};
  };

  DenyCode reject(DenyCode code, size_t n, const DecisionCallback& done);
  bool takeBatch(std::vector<Submission>& out);
  void runWorker(Worker& w);
  void runBatch(Worker& w, std::vector<Submission>& batch);
  void evaluateAdmitted(Worker& w, const Active& active, std::span<const SignedRequest> requests,
                        std::span<const DenyCode> codes, std::span<Decision> decisions, BatchStats& stats);

  PipelineOptions options_;
  Admission admission_;
  Counters counters_;

  mutable std::mutex activeMu_;  // guards active_ (a pointer swap; never held while evaluating)
  std::shared_ptr<const Active> active_;

  mutable std::mutex queueMu_;  // guards the queue, queued_, busyWorkers_ and stopping_
  std::condition_variable queueCv_;
  std::deque<Submission> queue_;
  size_t queued_ = 0;  // requests in queue_
  size_t busyWorkers_ = 0;  // workers between taking a batch and finishing it
  bool stopping_ = false;

  std::mutex shutdownMu_;  // serializes shutdown() callers
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace govmesh::engine
