// The service's record stage: decisions to lineage records, one group commit per batch, and the
// checkpoint timer (see lineage_recorder.h).
#include "server/lineage_recorder.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "engine/replay.h"
#include "engine/sha256_batch.h"

namespace govmesh::server {

namespace {

lineage::EntityRef ref(const cedar::EntityUid& u) { return {u.type, u.id}; }

lineage::Hash sha256Of(const std::string& bytes) {
  return crypto::sha256One(crypto::ByteView{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

}  // namespace

lineage::Record toRecord(const engine::SignedRequest& request, const engine::Decision& decision,
                         const engine::Bundle* bundle, const lineage::Hash& bundleDigest, const std::string& nodeId) {
  lineage::Record r;
  r.timestampNs = request.timestampNs;
  r.nodeId = nodeId;
  if (bundle) {
    r.bundleDigest = bundleDigest;
    r.bundleRevision = bundle->revision;
  }
  r.principal = ref(request.principal);
  r.action = ref(request.action);
  r.resource = ref(request.resource);
  // Reused per thread: the canonical bytes of one request are at most ~70 KB (shape limits).
  thread_local std::string scratch;
  scratch.clear();
  const std::optional<crypto::Sha256Digest> payload = engine::signedPayloadDigest(request);
  engine::appendCanonicalSigningBytes(request, payload, scratch);
  r.requestDigest = sha256Of(scratch);
  r.signature = request.signature;
  if (decision.code == engine::DenyCode::kMalformed) {
    // The request never decoded: what the decoder left is no evidence (replay accepts the code
    // as recorded); only the digests of what was there are kept.
    scratch.clear();
    engine::appendCanonicalValue(request.context, scratch);
    r.contextDigest = sha256Of(scratch);
  } else {
    // The fields the digests cannot give back, so that replay rebuilds the signing bytes and
    // re-verifies the signature (engine/replay.h).
    r.evidence = engine::requestEvidence(request, payload);
    r.contextDigest = sha256Of(r.evidence->context);
  }
  r.allow = decision.allow;
  r.reasons = decision.reasons;
  r.errors = decision.errors;
  r.denyCode = decision.code;
  return r;
}

LineageRecorder::LineageRecorder(LineageRecorderOptions options) : options_(std::move(options)) {
  std::optional<lineage::NoteSigner> signer = lineage::NoteSigner::fromPem(options_.origin, options_.nodeKeyPem);
  if (!signer)
    throw std::invalid_argument("lineage: the node key is not an Ed25519 private key PEM, or the origin '" +
                                options_.origin + "' is not a valid key name (no spaces, no '+')");
  verifier_ = signer->verifier();
  lineage::LogOptions lo;
  lo.origin = options_.origin;
  lo.signer = std::move(signer);
  lo.sync = options_.sync;
  lo.checkpointEvery = options_.checkpointEvery;
  lo.checkpointIntervalMs = options_.checkpointIntervalMs;
  lo.hooks = options_.hooks;
  lineage::LogStatus status = lineage::LogStatus::kOk;
  std::string error;
  log_ = lineage::Log::open(options_.dir, std::move(lo), &status, &error);
  if (!log_) {
    lastError_ = "cannot open lineage log " + options_.dir + " (" + std::string(lineage::logStatusName(status)) +
                 "): " + error;
    return;
  }
  healthy_ = true;
  if (options_.checkpointIntervalMs > 0) checkpointThread_ = std::thread([this] { runCheckpoints(); });
}

LineageRecorder::~LineageRecorder() { close(); }

void LineageRecorder::runCheckpoints() {
  const auto period = std::chrono::milliseconds(std::max<uint64_t>(1, options_.checkpointIntervalMs / 2));
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, period, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    // A failed checkpoint is not a failed decision: the records are durable, and the next
    // append or tick signs again. A log gone kFailed shows up through append().
    (void)log_->maybeCheckpoint();
    lock.lock();
  }
}

void LineageRecorder::noteBundle(const std::shared_ptr<const engine::ActiveBundle>& active) {
  if (!active) return;
  std::lock_guard lock(mu_);
  std::erase_if(bundles_, [](const std::weak_ptr<const engine::ActiveBundle>& w) { return w.expired(); });
  bundles_.push_back(active);
}

bool LineageRecorder::findDigest(const engine::Bundle* bundle, lineage::Hash& digest, std::optional<uint64_t>* etcdRevision) {
  std::lock_guard lock(mu_);
  for (auto it = bundles_.rbegin(); it != bundles_.rend(); ++it) {
    std::shared_ptr<const engine::ActiveBundle> a = it->lock();
    if (!a || &a->bundle != bundle) continue;
    if (a->digest.size() != digest.size()) return false;
    std::memcpy(digest.data(), a->digest.data(), digest.size());
    if (etcdRevision) *etcdRevision = a->etcdRevision;
    return true;
  }
  return false;
}

bool LineageRecorder::record(const engine::Bundle* bundle, std::span<const engine::SignedRequest> requests,
                             std::span<engine::Decision> decisions) {
  if (!log_ || requests.size() != decisions.size()) return false;
  lineage::Hash digest{};
  std::optional<uint64_t> etcdRevision;
  if (bundle && !findDigest(bundle, digest, &etcdRevision)) {
    std::lock_guard lock(mu_);
    lastError_ = "lineage: the batch's bundle (revision " + std::to_string(bundle->revision) + ") has no known digest";
    return false;
  }
  // TODO(perf): hash the canonical bytes and contexts of the batch with sha256Batch.
  std::vector<lineage::Record> records;
  records.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    records.push_back(toRecord(requests[i], decisions[i], bundle, digest, options_.nodeId));
    records.back().etcdRevision = etcdRevision;
  }
  uint64_t first = 0;
  const lineage::LogStatus st = log_->append(records, &first);
  std::lock_guard lock(mu_);
  if (st != lineage::LogStatus::kOk) {
    healthy_ = false;
    lastError_ = "lineage append failed (" + std::string(lineage::logStatusName(st)) + "): " + log_->lastError();
    return false;
  }
  healthy_ = true;
  for (size_t i = 0; i < decisions.size(); ++i) decisions[i].lineageSeq = first + i;
  return true;
}

lineage::LogStatus LineageRecorder::close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return lineage::LogStatus::kOk;
    closed_ = true;
    stop_ = true;
    healthy_ = false;
  }
  wake_.notify_all();
  if (checkpointThread_.joinable()) checkpointThread_.join();
  if (!log_) return lineage::LogStatus::kOk;
  return log_->close();
}

bool LineageRecorder::healthy() const {
  std::lock_guard lock(mu_);
  return healthy_;
}

std::string LineageRecorder::lastError() const {
  std::lock_guard lock(mu_);
  return lastError_;
}

uint64_t LineageRecorder::size() const { return log_ ? log_->size() : 0; }

}  // namespace govmesh::server
