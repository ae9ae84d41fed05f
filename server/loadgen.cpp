// The load generator (design at the top of server/loadgen.h).
#include "server/loadgen.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "compiler/errors.h"
#include "compiler/evaluator.h"
#include "engine/wall_clock.h"
#include "server/client.h"

namespace govmesh::server {
namespace {

using Clock = std::chrono::steady_clock;

// Slots signed longer ago than this are re-signed before they are sent: the node's window is
// ±30 s, and a margin covers the time a call spends queued.
constexpr int64_t kMaxSignedAgeNs = int64_t{20} * 1'000'000'000;
// A stale-timestamp tamper is this far in the past: far outside any window a node would use.
constexpr int64_t kStaleByNs = int64_t{600} * 1'000'000'000;
// Signed-request throughput assumed when sizing the pool for --max (above the 50 k/s target).
constexpr double kMaxModeRateGuess = 80'000;
constexpr size_t kReplayRing = 64;
// The longest pre-signing may take before timing starts.
constexpr int kMaxPrefillSeconds = 8;
constexpr size_t kMismatchExamples = 5;

}  // namespace

// ---- latency ----

LatencySummary summarizeLatency(std::vector<LatencySample>& samples) {
  LatencySummary s;
  uint64_t total = 0;
  long double sum = 0;
  for (const LatencySample& x : samples) {
    total += x.count;
    sum += static_cast<long double>(x.ns) * x.count;
  }
  if (total == 0) return s;
  std::sort(samples.begin(), samples.end(), [](const LatencySample& a, const LatencySample& b) { return a.ns < b.ns; });
  // Nearest rank: the smallest value with at least ceil(q * total) requests at or below it.
  auto at = [&](double q) {
    uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total))));
    uint64_t seen = 0;
    for (const LatencySample& x : samples) {
      seen += x.count;
      if (seen >= rank) return x.ns / 1000.0;
    }
    return samples.back().ns / 1000.0;
  };
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.max = samples.back().ns / 1000.0;
  s.mean = static_cast<double>(sum / total) / 1000.0;
  return s;
}

std::string_view tamperKindName(TamperKind k) {
  switch (k) {
    case TamperKind::kNone: return "none";
    case TamperKind::kFlipSignatureBit: return "flip_signature_bit";
    case TamperKind::kChangeResource: return "change_resource";
    case TamperKind::kStaleTimestamp: return "stale_timestamp";
    case TamperKind::kReplay: return "replay";
    case TamperKind::kWrongKey: return "wrong_key";
  }
  return "unknown";
}

// ---- request factory ----

struct RequestFactory::Impl {
  const WorkloadSet& set;
  bool signing;
  std::mt19937_64 rng;
  std::vector<EVP_PKEY*> keys;
  std::vector<EVP_MD_CTX*> ctxs;  // per key
  std::vector<bool> ready;        // ctxs[i] initialized for keys[i]
  std::vector<std::discrete_distribution<uint32_t>> mix;  // per workload, over its templates
  std::array<uint8_t, 8> noncePrefix{};
  uint64_t nonceCounter = 0;
  std::string scratch;
  std::map<std::tuple<uint32_t, uint32_t, int64_t>, cedar::Value> contexts;

  Impl(const WorkloadSet& s, uint64_t seed, bool sign) : set(s), signing(sign), rng(seed) {
    if (set.workloads.empty()) throw std::invalid_argument("no workloads");
    // Random per factory, so that factories on several threads never share a nonce.
    if (RAND_bytes(noncePrefix.data(), static_cast<int>(noncePrefix.size())) != 1) {
      throw std::runtime_error("the system random generator failed");
    }
    for (const WorkloadSpec& w : set.workloads) {
      std::vector<double> weights;
      for (const RequestTemplate& t : w.requests) weights.push_back(t.weight);
      mix.emplace_back(weights.begin(), weights.end());
      if (signing) {
        // Parsed once: parsing the PEM per signature would cost as much as the signature.
        BIO* bio = BIO_new_mem_buf(w.privatePem.data(), static_cast<int>(w.privatePem.size()));
        EVP_PKEY* k = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
        BIO_free(bio);
        if (k == nullptr || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
          EVP_PKEY_free(k);
          free();
          throw cedar::InputError(w.keyPath, {}, "not an Ed25519 private key");
        }
        keys.push_back(k);
        ctxs.push_back(EVP_MD_CTX_new());
        ready.push_back(false);
        if (ctxs.back() == nullptr) {
          free();
          throw std::bad_alloc();
        }
      }
    }
  }
  void free() {
    for (EVP_PKEY* k : keys) EVP_PKEY_free(k);
    for (EVP_MD_CTX* c : ctxs) EVP_MD_CTX_free(c);
    keys.clear();
    ctxs.clear();
  }
  ~Impl() { free(); }

  void freshNonce(engine::SignedRequest& r) {
    std::copy(noncePrefix.begin(), noncePrefix.end(), r.nonce.begin());
    uint64_t c = nonceCounter++;
    for (int i = 0; i < 8; ++i) r.nonce[8 + i] = static_cast<uint8_t>(c >> (8 * i));
  }

  void sign(uint32_t w, engine::SignedRequest& r) {
    if (!signing) return;
    scratch.clear();
    engine::appendCanonicalSigningBytes(r, engine::signedPayloadDigest(r), scratch);
    // One initialized context per key, reused: OpenSSL 3 signs one-shot Ed25519 again on the same
    // context, and a fresh EVP_DigestSignInit per signature (a provider fetch) costs about 10 %.
    // Should a reuse be refused, the context is initialized afresh and the signature retried.
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!ready[w]) {
        EVP_MD_CTX_reset(ctxs[w]);
        if (EVP_DigestSignInit(ctxs[w], nullptr, nullptr, nullptr, keys[w]) != 1) break;
        ready[w] = true;
      }
      size_t len = r.signature.size();
      if (EVP_DigestSign(ctxs[w], r.signature.data(), &len, reinterpret_cast<const unsigned char*>(scratch.data()),
                         scratch.size()) == 1 &&
          len == r.signature.size()) {
        return;
      }
      ready[w] = false;
    }
    throw std::runtime_error("Ed25519 signing failed (OpenSSL)");
  }
};

RequestFactory::RequestFactory(const WorkloadSet& set, uint64_t seed, bool sign)
    : impl_(std::make_unique<Impl>(set, seed, sign)) {}
RequestFactory::~RequestFactory() = default;
RequestFactory::RequestFactory(RequestFactory&&) noexcept = default;

const WorkloadSet& RequestFactory::workloads() const { return impl_->set; }

RequestFactory::Origin RequestFactory::draw(int64_t nowNs) {
  Origin o;
  std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(impl_->set.workloads.size() - 1));
  o.workload = pick(impl_->rng);
  o.templ = impl_->mix[o.workload](impl_->rng);
  const RequestTemplate& t = impl_->set.workloads[o.workload].requests[o.templ];
  o.contextSecond = t.fixedContext ? 0 : nowNs / 1'000'000'000;
  return o;
}

const cedar::Value& RequestFactory::context(const Origin& o) {
  const RequestTemplate& t = impl_->set.workloads[o.workload].requests[o.templ];
  if (t.fixedContext) return *t.fixedContext;
  auto key = std::make_tuple(o.workload, o.templ, o.contextSecond);
  auto it = impl_->contexts.find(key);
  if (it == impl_->contexts.end()) {
    const cedar::Schema* schema = impl_->set.bundle ? impl_->set.bundle->schema.get() : nullptr;
    it = impl_->contexts.emplace(key, materializeContext(t, schema, o.contextSecond * 1000)).first;
  }
  return it->second;
}

void RequestFactory::makeHonest(const Origin& o, int64_t nowNs, engine::SignedRequest& r) {
  const WorkloadSpec& w = impl_->set.workloads[o.workload];
  const RequestTemplate& t = w.requests[o.templ];
  r.principal = w.principal;
  r.action = t.action;
  r.resource = t.resource;
  r.context = context(o);
  r.keyId = w.keyId;
  r.timestampNs = nowNs;
  r.payload.reset();
  r.payloadDigest.reset();
  r.signature.fill(0);
  impl_->freshNonce(r);
  impl_->sign(o.workload, r);
}

void RequestFactory::refresh(const Origin& o, int64_t nowNs, engine::SignedRequest& r) {
  r.timestampNs = nowNs;
  impl_->freshNonce(r);
  impl_->sign(o.workload, r);
}

void RequestFactory::sign(uint32_t workload, engine::SignedRequest& r) { impl_->sign(workload, r); }

void RequestFactory::tamper(TamperKind kind, const Origin& o, int64_t nowNs, engine::SignedRequest& r,
                            const engine::SignedRequest* replaySource) {
  auto& rng = impl_->rng;
  switch (kind) {
    case TamperKind::kNone:
      return;
    case TamperKind::kFlipSignatureBit:
      r.signature[rng() % r.signature.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
      return;
    case TamperKind::kChangeResource:
      r.resource.id += "~tampered";
      return;
    case TamperKind::kStaleTimestamp:
      r.timestampNs = nowNs - kStaleByNs;
      impl_->freshNonce(r);
      impl_->sign(o.workload, r);
      return;
    case TamperKind::kReplay:
      if (replaySource == nullptr) throw std::invalid_argument("a replay needs a request to replay");
      r = *replaySource;
      return;
    case TamperKind::kWrongKey: {
      size_t n = impl_->set.workloads.size();
      if (n > 1) {
        // Another workload's key, correctly signed: the key exists but may not act as this
        // principal (KEY_NOT_PRINCIPAL).
        auto other = static_cast<uint32_t>((o.workload + 1 + rng() % (n - 1)) % n);
        r.keyId = impl_->set.workloads[other].keyId;
        impl_->freshNonce(r);
        impl_->sign(other, r);
      } else {
        r.keyId = "loadgen-unknown-key";
        impl_->freshNonce(r);
        impl_->sign(o.workload, r);
      }
      return;
    }
  }
}

// ---- report ----

nlohmann::json LoadReport::toJson() const {
  using nlohmann::json;
  json j;
  j["connect"] = connect;
  j["requests"] = requests;
  j["sent"] = sent;
  j["seconds"] = seconds;
  j["target_seconds"] = targetSeconds;
  j["decisions_per_second"] = decisionsPerSecond;
  j["latency_us"] = {{"p50", latencyUs.p50}, {"p90", latencyUs.p90}, {"p99", latencyUs.p99},
                     {"p999", latencyUs.p999}, {"max", latencyUs.max}, {"mean", latencyUs.mean}};
  j["allowed"] = allowed;
  j["denied_by_policy"] = deniedByPolicy;
  j["denied_by_code"] = json::object();
  for (const auto& [code, n] : deniedByCode) j["denied_by_code"][code] = n;
  j["tampered_sent"] = tamperedSent;
  j["tampered_allowed"] = tamperedAllowed;
  json kinds = json::object();
  for (const auto& [kind, t] : tamperedByKind) {
    json codes = json::object();
    for (const auto& [code, n] : t.deniedByCode) codes[code] = n;
    kinds[kind] = {{"sent", t.sent}, {"allowed", t.allowed}, {"denied_by_code", codes}};
  }
  j["tampered_by_kind"] = kinds;
  j["check"] = check;
  j["checked"] = checked;
  j["mismatches_vs_offline"] = mismatchesVsOffline;
  j["honest_overloaded"] = honestOverloaded;
  j["mismatch_examples"] = mismatchExamples;
  j["batch"] = batch;
  j["in_flight"] = inFlight;
  j["rate_target"] = rateTarget ? json(*rateTarget) : json(nullptr);
  j["max"] = max;
  j["signed"] = signedRequests;
  j["presigned"] = presigned;
  j["resigned_during_run"] = resignedDuringRun;
  j["failed_calls"] = failedCalls;
  if (!firstError.empty()) j["error"] = firstError;
  j["server_bundle_revision"] = serverBundleRevision ? json(*serverBundleRevision) : json(nullptr);
  j["offline_bundle_revision"] = offlineBundleRevision ? json(*offlineBundleRevision) : json(nullptr);
  return j;
}

// ---- the run ----

namespace {

struct SlotMeta {
  RequestFactory::Origin origin;
  TamperKind kind = TamperKind::kNone;
  int64_t signedAtNs = 0;
};

struct Expected {
  bool allow = false;
  std::vector<std::string> reasons;  // sorted
};

// The state of one run, driven on the caller's thread.
class Run {
 public:
  Run(const LoadOptions& o, WorkloadSet set) : opts_(o), set_(std::move(set)) {}

  LoadReport go();

 private:
  void prefill(size_t poolSize, uint64_t seed);
  void prepareSlot(size_t i, bool wrapped, int64_t nowNs);
  void onReply(size_t first, size_t count, Clock::time_point sent, CallResult&& r);
  const Expected& expected(const RequestFactory::Origin& o);
  void progress(Clock::time_point now, bool force);

  const LoadOptions& opts_;
  WorkloadSet set_;
  std::vector<TamperKind> kinds_;
  std::vector<engine::SignedRequest> pool_;
  std::vector<SlotMeta> meta_;
  std::optional<RequestFactory> factory_;  // the driver's (re-signing, replays, offline contexts)
  std::vector<std::pair<engine::SignedRequest, RequestFactory::Origin>> replayRing_;
  size_t replayNext_ = 0;
  std::map<std::tuple<uint32_t, uint32_t, int64_t>, Expected> expected_;
  std::vector<LatencySample> latency_;
  LoadReport rep_;
  bool stop_ = false;
  DecisionClient* client_ = nullptr;
  Clock::time_point start_, lastReply_, lastProgress_;
  uint64_t requestsAtLastProgress_ = 0;
};

void Run::prefill(size_t poolSize, uint64_t seed) {
  pool_.resize(poolSize);
  meta_.resize(poolSize);
  // Which slots are tampered, and how, is decided up front from the seed; replays are filled
  // in when sent (they need a request already answered).
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  size_t nextKind = 0;
  for (size_t i = 0; i < poolSize; ++i) {
    if (!kinds_.empty() && u(rng) < opts_.badFraction) meta_[i].kind = kinds_[nextKind++ % kinds_.size()];
  }
  const bool sign = !opts_.unsignedRequests;
  size_t threads = sign ? std::max<size_t>(1, std::thread::hardware_concurrency()) : 1;
  threads = std::min(threads, std::max<size_t>(1, poolSize / 1024));
  // Threads take slots in turn (slot i from thread i % threads), so slots are signed in about
  // the order they are sent and the oldest signature is the first one used. Signing stops at
  // kMaxPrefillSeconds (a loaded machine signs slowly, and a pool signed over too long would be
  // stale before it is sent); the pool is then the prefix every thread reached.
  const auto deadline = Clock::now() + std::chrono::seconds(kMaxPrefillSeconds);
  const size_t minSlots = 2 * opts_.inFlight * opts_.batch;
  std::vector<size_t> filled(threads, 0);
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(threads);
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      try {
        RequestFactory f(set_, seed + 1 + t, sign);
        for (size_t i = t; i < poolSize; i += threads) {
          if (i >= minSlots && (filled[t] & 255) == 0 && Clock::now() > deadline) break;
          int64_t now = engine::wallClockNs();
          meta_[i].origin = f.draw(now);
          meta_[i].signedAtNs = now;
          f.makeHonest(meta_[i].origin, now, pool_[i]);
          if (meta_[i].kind != TamperKind::kReplay) f.tamper(meta_[i].kind, meta_[i].origin, now, pool_[i], nullptr);
          ++filled[t];
        }
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  size_t complete = *std::min_element(filled.begin(), filled.end()) * threads;
  complete = std::max(complete, std::min(poolSize, minSlots));
  complete = complete / opts_.batch * opts_.batch;
  if (complete < poolSize) {
    pool_.resize(complete);
    meta_.resize(complete);
  }
  rep_.presigned = sign ? pool_.size() : 0;
}

// Makes slot i ready to send: fresh nonce and signature when it comes round again or has aged
// past kMaxSignedAgeNs, and the replayed request for a replay slot.
void Run::prepareSlot(size_t i, bool wrapped, int64_t nowNs) {
  SlotMeta& m = meta_[i];
  engine::SignedRequest& r = pool_[i];
  bool sign = !opts_.unsignedRequests;
  if (m.kind == TamperKind::kReplay) {
    if (!replayRing_.empty()) {
      const auto& src = replayRing_[(replayNext_++) % replayRing_.size()];
      factory_->tamper(TamperKind::kReplay, m.origin, nowNs, r, &src.first);
      m.origin = src.second;
    } else {
      // Nothing answered yet to replay: send another kind of tamper in its place.
      factory_->makeHonest(m.origin, nowNs, r);
      TamperKind k = sign ? TamperKind::kFlipSignatureBit : TamperKind::kStaleTimestamp;
      factory_->tamper(k, m.origin, nowNs, r, nullptr);
      if (sign) ++rep_.resignedDuringRun;
    }
    return;
  }
  if (!wrapped && nowNs - m.signedAtNs < kMaxSignedAgeNs) return;
  m.signedAtNs = nowNs;
  if (sign) ++rep_.resignedDuringRun;
  if (m.kind == TamperKind::kNone) {
    // Only the fields that must change: the rest of the request is as drawn.
    factory_->refresh(m.origin, nowNs, r);
  } else {
    factory_->makeHonest(m.origin, nowNs, r);
    factory_->tamper(m.kind, m.origin, nowNs, r, nullptr);
  }
}

const Expected& Run::expected(const RequestFactory::Origin& o) {
  auto key = std::make_tuple(o.workload, o.templ, o.contextSecond);
  auto it = expected_.find(key);
  if (it != expected_.end()) return it->second;
  const engine::Bundle& b = *set_.bundle;
  const WorkloadSpec& w = set_.workloads[o.workload];
  const RequestTemplate& t = w.requests[o.templ];
  cedar::Request req{w.principal, t.action, t.resource, factory_->context(o)};
  cedar::Response resp = cedar::authorize(b.table.policies, req, *b.store);
  Expected e;
  e.allow = resp.decision == cedar::Decision::Allow;
  e.reasons = std::move(resp.reasons);
  std::sort(e.reasons.begin(), e.reasons.end());
  return expected_.emplace(key, std::move(e)).first->second;
}

void Run::onReply(size_t first, size_t count, Clock::time_point sent, CallResult&& r) {
  Clock::time_point now = Clock::now();
  lastReply_ = now;
  if (!r.ok()) {
    ++rep_.failedCalls;
    if (rep_.firstError.empty()) rep_.firstError = r.error;
    stop_ = true;
    return;
  }
  latency_.push_back({static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - sent).count()),
                      static_cast<uint32_t>(count)});
  rep_.requests += count;
  bool ringed = false;
  for (size_t k = 0; k < count; ++k) {
    const SlotMeta& m = meta_[first + k];
    const engine::Decision& d = r.decisions[k];
    std::string_view codeName = engine::denyCodeName(d.code);
    if (d.allow) {
      ++rep_.allowed;
    } else if (d.code == engine::DenyCode::kNone) {
      ++rep_.deniedByPolicy;
    } else {
      ++rep_.deniedByCode[std::string(codeName)];
    }
    if (m.kind != TamperKind::kNone) {
      TamperTally& t = rep_.tamperedByKind[std::string(tamperKindName(m.kind))];
      if (d.allow) {
        ++t.allowed;
        ++rep_.tamperedAllowed;
      } else {
        ++t.deniedByCode[std::string(codeName)];
      }
      continue;
    }
    // An honest request the node accepted: a candidate to replay later.
    if (!ringed && d.code == engine::DenyCode::kNone && !kinds_.empty()) {
      ringed = true;
      if (replayRing_.size() < kReplayRing) {
        replayRing_.emplace_back(pool_[first + k], m.origin);
      } else {
        replayRing_[replayNext_ % kReplayRing] = {pool_[first + k], m.origin};
      }
    }
    if (!opts_.check) continue;
    if (d.code == engine::DenyCode::kOverloaded) {
      ++rep_.honestOverloaded;
      continue;
    }
    ++rep_.checked;
    std::string why;
    if (d.code != engine::DenyCode::kNone) {
      why = "denied " + std::string(codeName);
    } else {
      const Expected& e = expected(m.origin);
      std::vector<std::string> reasons = d.reasons;
      std::sort(reasons.begin(), reasons.end());
      if (d.allow != e.allow || reasons != e.reasons) {
        why = std::string(d.allow ? "allowed" : "denied") + " (reasons " + std::to_string(reasons.size()) +
              "), offline " + (e.allow ? "allowed" : "denied") + " (reasons " + std::to_string(e.reasons.size()) + ")";
      }
    }
    if (!why.empty()) {
      ++rep_.mismatchesVsOffline;
      if (rep_.mismatchExamples.size() < kMismatchExamples) {
        const engine::SignedRequest& q = pool_[first + k];
        rep_.mismatchExamples.push_back(cedar::toString(q.principal) + " " + cedar::toString(q.action) + " " +
                                        cedar::toString(q.resource) + ": " + why);
      }
    }
  }
}

void Run::progress(Clock::time_point now, bool force) {
  if (!opts_.onProgress) return;
  double since = std::chrono::duration<double>(now - lastProgress_).count();
  if (!force && since < 1.0) return;
  LoadProgress p;
  p.elapsedSeconds = std::chrono::duration<double>(now - start_).count();
  p.requests = rep_.requests;
  p.decisionsPerSecond = since > 0 ? (rep_.requests - requestsAtLastProgress_) / since : 0;
  p.allowed = rep_.allowed;
  p.denied = rep_.requests - rep_.allowed;
  p.tamperedSent = rep_.tamperedSent;
  p.tamperedAllowed = rep_.tamperedAllowed;
  p.mismatches = rep_.mismatchesVsOffline;
  p.inFlight = client_ ? client_->inFlight() : 0;
  lastProgress_ = now;
  requestsAtLastProgress_ = rep_.requests;
  opts_.onProgress(p);
}

LoadReport Run::go() {
  const LoadOptions& o = opts_;
  rep_.connect = o.connect;
  rep_.targetSeconds = o.seconds;
  rep_.batch = o.batch;
  rep_.inFlight = o.inFlight;
  rep_.rateTarget = o.rate;
  rep_.max = o.max;
  rep_.signedRequests = !o.unsignedRequests;
  rep_.check = o.check;
  if (set_.bundle) rep_.offlineBundleRevision = set_.bundle->revision;
  if (o.badFraction > 0) {
    if (!o.unsignedRequests) kinds_ = {TamperKind::kFlipSignatureBit, TamperKind::kChangeResource};
    kinds_.insert(kinds_.end(), {TamperKind::kStaleTimestamp, TamperKind::kReplay, TamperKind::kWrongKey});
  }

  // Connect first: a node that is not there is reported before seconds of signing.
  auto client = DecisionClient::connect(o.connect, EncodeOptions{o.unsignedRequests});
  client_ = client.get();
  try {
    ServiceStatus st = client->status();
    if (st.hasBundle) rep_.serverBundleRevision = st.bundleRevision;
  } catch (const ClientError&) {
    // status() is informative only; authorize calls report a broken connection.
  }

  uint64_t seed = o.seed;
  if (seed == 0) seed = std::random_device{}() * uint64_t{0x9e3779b97f4a7c15} ^ static_cast<uint64_t>(engine::wallClockNs());
  // Pool size: the whole run at a rate (up to poolLimit), an estimate with --max; unsigned
  // requests are cheap to refresh, so a small ring suffices. At least two windows of calls, so
  // that a slot is never rewritten while its call is in flight.
  double want = o.rate ? *o.rate * o.seconds : kMaxModeRateGuess * o.seconds;
  size_t poolSize = o.unsignedRequests ? size_t{1} << 16 : static_cast<size_t>(std::min<double>(want, o.poolLimit));
  poolSize = std::max(poolSize, 2 * o.inFlight * o.batch);
  poolSize = (poolSize + o.batch - 1) / o.batch * o.batch;
  prefill(poolSize, seed);
  factory_.emplace(set_, seed ^ 0x5bd1e995, !o.unsignedRequests);

  const size_t callsPerPool = pool_.size() / o.batch;
  uint64_t callSeq = 0;
  start_ = lastProgress_ = lastReply_ = Clock::now();
  const auto end = start_ + std::chrono::nanoseconds(static_cast<int64_t>(o.seconds * 1e9));
  while (!stop_) {
    Clock::time_point now = Clock::now();
    if (now >= end) break;
    progress(now, false);
    if (client->inFlight() >= o.inFlight) {
      client->waitAnyFor(end - now);
      continue;
    }
    if (o.rate) {
      auto due = start_ + std::chrono::nanoseconds(static_cast<int64_t>(callSeq * o.batch / *o.rate * 1e9));
      if (now < due) {
        auto wait = std::min(due, end) - now;
        if (client->inFlight() > 0) {
          client->waitAnyFor(wait);
        } else {
          std::this_thread::sleep_for(wait);
        }
        continue;
      }
    }
    size_t first = (callSeq % callsPerPool) * o.batch;
    bool wrapped = callSeq >= callsPerPool;
    int64_t unixNow = engine::wallClockNs();
    for (size_t i = first; i < first + o.batch; ++i) {
      prepareSlot(i, wrapped, unixNow);
      if (meta_[i].kind != TamperKind::kNone) {
        ++rep_.tamperedSent;
        ++rep_.tamperedByKind[std::string(tamperKindName(meta_[i].kind))].sent;
      }
    }
    Clock::time_point sent = Clock::now();
    size_t count = o.batch;
    client->authorizeAsync(&pool_[first], count,
                           [this, first, count, sent](CallResult&& r) { onReply(first, count, sent, std::move(r)); });
    rep_.sent += count;
    ++callSeq;
  }
  // Replies to calls already sent still count; a node that stops answering is given 10 s.
  auto drainUntil = Clock::now() + std::chrono::seconds(10);
  while (client->inFlight() > 0 && Clock::now() < drainUntil) client->waitAnyFor(drainUntil - Clock::now());
  if (client->inFlight() > 0) {
    rep_.failedCalls += client->inFlight();
    if (rep_.firstError.empty()) rep_.firstError = "calls unanswered 10 s after the run ended";
  }
  progress(Clock::now(), true);
  rep_.seconds = std::chrono::duration<double>(lastReply_ - start_).count();
  rep_.decisionsPerSecond = rep_.seconds > 0 ? rep_.requests / rep_.seconds : 0;
  rep_.latencyUs = summarizeLatency(latency_);
  return rep_;
}

}  // namespace

LoadReport runLoad(const LoadOptions& options) {
  if (options.rate.has_value() == options.max) throw std::invalid_argument("give exactly one of a rate and max");
  if (options.rate && !(*options.rate > 0)) throw std::invalid_argument("the rate must be > 0");
  if (options.batch == 0) throw std::invalid_argument("the batch must be at least 1");
  if (options.inFlight == 0) throw std::invalid_argument("in-flight must be at least 1");
  if (!(options.seconds > 0)) throw std::invalid_argument("seconds must be > 0");
  if (!(options.badFraction >= 0 && options.badFraction <= 1)) {
    throw std::invalid_argument("the bad fraction must be within [0, 1]");
  }
  WorkloadSet set = loadWorkloads(options.keysDir);
  if (options.check && !set.bundle) {
    throw std::invalid_argument("--check needs the bundle: add \"bundle\" to " + set.file);
  }
  Run run(options, std::move(set));
  return run.go();
}

}  // namespace govmesh::server
