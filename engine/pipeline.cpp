// The batch pipeline: a bounded queue, workers that gather micro-batches, and the stages run on
// each batch. See pipeline.h for the contract.
#include "engine/pipeline.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "compiler/decision_table.h"

namespace govmesh::engine {

namespace {

using SteadyClock = std::chrono::steady_clock;

uint64_t nsSince(SteadyClock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - start).count());
}

// Runs one backend, treating a throw, a reported failure or output of the wrong size alike: the
// batch must then go to the next backend or be denied, never trusted.
bool tryEvaluate(Evaluator* ev, const FlatTable& flat, const std::vector<uint32_t>& features, size_t n,
                 BatchResult& out) {
  if (ev == nullptr) return false;
  try {
    BatchResult r;
    if (!ev->evaluate(flat, features.data(), n, r)) return false;
    if (r.flags.size() != n || r.bits.size() < n * 3 * size_t{flat.table.words}) return false;
    out = std::move(r);
    return true;
  } catch (...) {
    return false;
  }
}

Decision fromResponse(cedar::Response&& r) {
  Decision d;
  d.allow = r.decision == cedar::Decision::Allow;
  d.reasons = std::move(r.reasons);
  d.errors.reserve(r.errors.size());
  for (cedar::PolicyError& e : r.errors) d.errors.push_back(e.policyId + ": " + e.message);
  return d;
}

}  // namespace

Pipeline::Pipeline(PipelineOptions options) : options_(std::move(options)), admission_(options_.admission) {
  options_.workers = std::max<size_t>(options_.workers, 1);
  options_.maxBatch = std::max<size_t>(options_.maxBatch, 1);
  // Every backend is created before any thread starts, so a bad backend name throws from here
  // with nothing to clean up.
  for (size_t i = 0; i < options_.workers; ++i) {
    auto w = std::make_unique<Worker>();
    if (options_.makePrimary) {
      w->primary = options_.makePrimary();
    } else {
      w->primary = options_.backend.empty() ? bestEvaluator(options_.allowGpu) : makeEvaluator(options_.backend);
    }
    w->fallback = options_.makeFallback ? options_.makeFallback() : makeEvaluator("scalar");
    workers_.push_back(std::move(w));
  }
  for (auto& w : workers_) w->thread = std::thread([this, worker = w.get()] { runWorker(*worker); });
}

Pipeline::~Pipeline() { shutdown(); }

DenyCode Pipeline::reject(DenyCode code, size_t n, const DecisionCallback& done) {
  (code == DenyCode::kOverloaded ? counters_.overloaded : counters_.shuttingDown).fetch_add(n, std::memory_order_relaxed);
  counters_.denied.fetch_add(n, std::memory_order_relaxed);
  if (options_.observer != nullptr) options_.observer->onRejected(code, n);
  if (done) {
    try {
      done(std::vector<Decision>(n, denyDecision(code)));
    } catch (...) {
      // A callback's failure is its caller's business; the answer was given.
    }
  }
  return code;
}

DenyCode Pipeline::submit(std::vector<SignedRequest> requests, DecisionCallback done) {
  std::vector<DenyCode> codes(requests.size(), DenyCode::kNone);
  return submit(std::move(requests), std::move(codes), std::move(done));
}

DenyCode Pipeline::submit(std::vector<SignedRequest> requests, std::vector<DenyCode> presetCodes, DecisionCallback done) {
  const size_t n = requests.size();
  if (presetCodes.size() != n) return reject(DenyCode::kMalformed, n, done);
  if (n == 0) {
    if (done) {
      try {
        done({});
      } catch (...) {
      }
    }
    return DenyCode::kNone;
  }
  DenyCode refused = DenyCode::kNone;
  {
    std::lock_guard<std::mutex> lock(queueMu_);
    if (stopping_) {
      refused = DenyCode::kShuttingDown;
    } else if (queued_ + n > options_.queueCapacity) {
      refused = DenyCode::kOverloaded;
    } else {
      const bool wasEmpty = queue_.empty();
      queue_.push_back(Submission{std::move(requests), std::move(presetCodes), std::move(done), SteadyClock::now()});
      queued_ += n;
      // One worker suffices: the one waiting for a first submission (to start its T timer) or
      // the one that can now flush a full batch. A worker already timing the front needs no call.
      if (wasEmpty || queued_ >= options_.maxBatch) queueCv_.notify_one();
    }
  }
  // Refusals are answered outside the lock: the callback may be slow or even submit again.
  if (refused != DenyCode::kNone) return reject(refused, n, done);
  counters_.submitted.fetch_add(n, std::memory_order_relaxed);
  return DenyCode::kNone;
}

bool Pipeline::takeBatch(std::vector<Submission>& out) {
  std::unique_lock<std::mutex> lock(queueMu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return false;
      queueCv_.wait(lock);
      continue;
    }
    // Draining flushes at once: nobody will add to the batch any more.
    if (queued_ >= options_.maxBatch || stopping_) break;
    if (options_.flushWhenIdle && busyWorkers_ == 0) break;
    const auto deadline = queue_.front().queuedAt + options_.maxWait;
    if (SteadyClock::now() >= deadline) break;
    queueCv_.wait_until(lock, deadline);
  }
  size_t taken = 0;
  do {
    taken += queue_.front().codes.size();
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  } while (!queue_.empty() && taken + queue_.front().codes.size() <= options_.maxBatch);
  queued_ -= taken;
  ++busyWorkers_;
  // What is left may already be a batch (or be due): hand it to another worker.
  if (!queue_.empty()) queueCv_.notify_one();
  return true;
}

void Pipeline::runWorker(Worker& w) {
  std::vector<Submission> batch;
  while (takeBatch(batch)) {
    try {
      runBatch(w, batch);
    } catch (...) {
      // Only an allocation failure can get here. Whoever was not answered yet is answered now,
      // with a deny: no request leaves the pipeline without a decision.
      for (Submission& s : batch) {
        if (!s.done) continue;
        DecisionCallback done = std::move(s.done);
        s.done = nullptr;
        try {
          done(std::vector<Decision>(s.codes.size(), denyDecision(DenyCode::kBackendFault)));
        } catch (...) {
        }
      }
    }
    batch.clear();
    std::lock_guard<std::mutex> lock(queueMu_);
    --busyWorkers_;
    // Idle now: a worker timing a partial batch may flush it (flushWhenIdle).
    if (options_.flushWhenIdle && busyWorkers_ == 0 && !queue_.empty()) queueCv_.notify_one();
  }
}

void Pipeline::runBatch(Worker& w, std::vector<Submission>& batch) {
  // 1. One bundle for the whole batch, fixed before anything else.
  std::shared_ptr<const Active> active;
  {
    std::lock_guard<std::mutex> lock(activeMu_);
    active = active_;
  }
  BatchStats stats;
  stats.submissions = batch.size();
  stats.bundleRevision = active && active->bundle ? active->bundle->revision : 0;

  // Admission and the kernels want the batch contiguous; moving the requests is cheap.
  size_t n = 0;
  for (const Submission& s : batch) n += s.codes.size();
  std::vector<SignedRequest> requests;
  std::vector<DenyCode> codes;
  requests.reserve(n);
  codes.reserve(n);
  for (Submission& s : batch) {
    std::move(s.requests.begin(), s.requests.end(), std::back_inserter(requests));
    codes.insert(codes.end(), s.codes.begin(), s.codes.end());
  }
  stats.size = n;
  if (options_.beforeBatch) options_.beforeBatch(n);

  // 2. Admit and verify. A failure of admission itself denies whatever it had not decided.
  AdmissionTiming timing;
  bool admitted = false;
  try {
    admitted = admission_.admit(active ? active->bundle : nullptr, requests, codes, &timing);
  } catch (...) {
    admitted = false;
  }
  if (!admitted) {
    for (DenyCode& c : codes) {
      if (c == DenyCode::kNone) c = DenyCode::kBackendFault;
    }
  }
  stats.admitNs = timing.checkNs;
  stats.verifyNs = timing.hashNs + timing.verifyNs + timing.recordNs;
  stats.sha256FellBack = timing.sha256FellBack;
  stats.ed25519FellBack = timing.ed25519FellBack;

  // 3. Featurize and evaluate what was admitted; everything else is already a deny.
  std::vector<Decision> decisions(n);
  for (size_t i = 0; i < n; ++i) {
    if (codes[i] != DenyCode::kNone) decisions[i] = denyDecision(codes[i]);
  }
  if (active && active->flat) {
    evaluateAdmitted(w, *active, requests, codes, decisions, stats);
  } else {
    // Admission denies NO_BUNDLE without a bundle; this only guards against it ever not doing so.
    for (size_t i = 0; i < n; ++i) {
      if (codes[i] == DenyCode::kNone) decisions[i] = denyDecision(DenyCode::kNoBundle);
    }
  }

  // 4. Record. The hook may set lineageSeq; it cannot turn a deny into an allow.
  if (options_.record) {
    const auto start = SteadyClock::now();
    std::vector<uint8_t> allowedBefore(n);
    for (size_t i = 0; i < n; ++i) allowedBefore[i] = decisions[i].allow;
    bool recorded = false;
    try {
      recorded = options_.record(active ? active->bundle.get() : nullptr, requests, decisions);
    } catch (...) {
      recorded = false;
    }
    if (recorded) {
      for (size_t i = 0; i < n; ++i) {
        decisions[i].allow = allowedBefore[i] != 0 && decisions[i].code == DenyCode::kNone;
      }
    } else {
      counters_.recordFailures.fetch_add(1, std::memory_order_relaxed);
      for (Decision& d : decisions) d = denyDecision(DenyCode::kLineageUnavailable);
    }
    stats.recordNs = nsSince(start);
  }

  for (const Decision& d : decisions) {
    if (d.allow) {
      ++stats.allowed;
    } else {
      ++stats.denied[std::min<size_t>(static_cast<size_t>(d.code), stats.denied.size() - 1)];
    }
  }

  // Counted before replying, so that a caller who has its answer sees it in counters().
  counters_.batches.fetch_add(1, std::memory_order_relaxed);
  counters_.allowed.fetch_add(stats.allowed, std::memory_order_relaxed);
  counters_.denied.fetch_add(n - stats.allowed, std::memory_order_relaxed);

  // 5. Reply, each submission with its own slice, in submission order.
  const auto replyStart = SteadyClock::now();
  size_t offset = 0;
  for (Submission& s : batch) {
    const size_t count = s.codes.size();
    std::vector<Decision> mine(std::make_move_iterator(decisions.begin() + static_cast<ptrdiff_t>(offset)),
                               std::make_move_iterator(decisions.begin() + static_cast<ptrdiff_t>(offset + count)));
    offset += count;
    DecisionCallback done = std::move(s.done);
    s.done = nullptr;
    if (!done) continue;
    try {
      done(std::move(mine));
    } catch (...) {
      // As in reject(): the decision was delivered; the callback's failure is not ours.
    }
  }
  stats.replyNs = nsSince(replyStart);

  if (options_.observer != nullptr) {
    try {
      options_.observer->onBatch(stats);
    } catch (...) {
    }
  }
}

void Pipeline::evaluateAdmitted(Worker& w, const Active& active, std::span<const SignedRequest> requests,
                                std::span<const DenyCode> codes, std::span<Decision> decisions, BatchStats& stats) {
  std::vector<size_t> index;
  for (size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] == DenyCode::kNone) index.push_back(i);
  }
  if (index.empty()) return;
  auto denyAdmitted = [&](DenyCode code) {
    for (size_t i : index) decisions[i] = denyDecision(code);
  };
  const FlatTable& flat = *active.flat;

  auto start = SteadyClock::now();
  std::vector<cedar::Request> cedarRequests;
  std::vector<uint32_t> features;
  try {
    cedarRequests.reserve(index.size());
    for (size_t i : index) cedarRequests.push_back(toCedarRequest(requests[i]));
    table::featurize(flat.table, cedarRequests, features);
  } catch (...) {
    counters_.backendFaults.fetch_add(1, std::memory_order_relaxed);
    denyAdmitted(DenyCode::kBackendFault);
    return;
  }
  stats.featurizeNs = nsSince(start);

  start = SteadyClock::now();
  BatchResult result;
  bool ok = tryEvaluate(w.primary.get(), flat, features, index.size(), result);
  if (!ok) {
    stats.evaluateFellBack = true;
    counters_.evaluateFallbacks.fetch_add(1, std::memory_order_relaxed);
    ok = tryEvaluate(w.fallback.get(), flat, features, index.size(), result);
  }
  std::vector<cedar::Response> responses;
  if (ok) {
    try {
      finishResponses(flat.table, cedarRequests, result, responses);
      ok = responses.size() == index.size();
    } catch (...) {
      ok = false;
    }
  }
  stats.evaluateNs = nsSince(start);
  if (!ok) {
    counters_.backendFaults.fetch_add(1, std::memory_order_relaxed);
    denyAdmitted(DenyCode::kBackendFault);
    return;
  }
  for (size_t k = 0; k < index.size(); ++k) decisions[index[k]] = fromResponse(std::move(responses[k]));
}

void Pipeline::setBundle(std::shared_ptr<const Bundle> bundle) {
  std::shared_ptr<const Active> next;
  if (bundle) {
    auto a = std::make_shared<Active>();
    a->flat = std::make_unique<FlatTable>(bundle->table);
    a->bundle = std::move(bundle);
    next = std::move(a);
  }
  {
    std::lock_guard<std::mutex> lock(activeMu_);
    active_.swap(next);
  }
  // `next` now holds the previous bundle; it is freed here, outside the lock, unless a batch
  // still uses it (then the batch frees it when done).
}

std::shared_ptr<const Bundle> Pipeline::bundle() const {
  std::lock_guard<std::mutex> lock(activeMu_);
  return active_ ? active_->bundle : nullptr;
}

void Pipeline::shutdown() {
  std::lock_guard<std::mutex> serial(shutdownMu_);
  {
    std::lock_guard<std::mutex> lock(queueMu_);
    stopping_ = true;
  }
  queueCv_.notify_all();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

bool Pipeline::accepting() const {
  std::lock_guard<std::mutex> lock(queueMu_);
  return !stopping_;
}

size_t Pipeline::queueDepth() const {
  std::lock_guard<std::mutex> lock(queueMu_);
  return queued_;
}

PipelineCounters Pipeline::counters() const {
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  PipelineCounters c;
  c.submitted = get(counters_.submitted);
  c.batches = get(counters_.batches);
  c.allowed = get(counters_.allowed);
  c.denied = get(counters_.denied);
  c.overloaded = get(counters_.overloaded);
  c.shuttingDown = get(counters_.shuttingDown);
  c.evaluateFallbacks = get(counters_.evaluateFallbacks);
  c.backendFaults = get(counters_.backendFaults);
  c.recordFailures = get(counters_.recordFailures);
  return c;
}

std::string Pipeline::backendName() const {
  const Evaluator* ev = workers_.front()->primary.get();
  return ev != nullptr ? std::string(ev->name()) : std::string("none");
}

}  // namespace govmesh::engine
