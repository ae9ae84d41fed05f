// The admit and verify stages; the order of checks and why it is safe are at the top of
// admission.h.
#include "engine/admission.h"

#include <openssl/rand.h>

#include <algorithm>
#include <stdexcept>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "engine/ed25519_verify.h"
#include "engine/sha256_batch.h"
#include "engine/wall_clock.h"

namespace govmesh::engine {
namespace {

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer: every input bit reaches every output bit
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hashKey(uint64_t seed, std::string_view keyId, const Nonce& nonce) {
  uint64_t lo = 0, hi = 0;
  std::memcpy(&lo, nonce.data(), 8);
  std::memcpy(&hi, nonce.data() + 8, 8);
  uint64_t h = mix64(seed ^ std::hash<std::string_view>{}(keyId));
  h = mix64(h ^ lo);
  return mix64(h ^ hi);
}

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

// The marker of an unsigned request (AdmissionOptions::acceptUnsigned): no real signature is all
// zero (its S would be 0 and its R a point of small order).
bool isUnsigned(const crypto::Ed25519Signature& sig) {
  return std::all_of(sig.begin(), sig.end(), [](uint8_t b) { return b == 0; });
}

uint64_t elapsedNs(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

}  // namespace

// ---- NonceCache ----------------------------------------------------------------------------

struct NonceCache::Shard {
  struct Key {
    std::string keyId;
    Nonce nonce;
  };
  // A borrowed key, so that lookups allocate nothing (heterogeneous lookup, C++20).
  struct KeyView {
    std::string_view keyId;
    const Nonce& nonce;
  };
  struct Hash {
    using is_transparent = void;
    uint64_t seed;
    size_t operator()(const Key& k) const { return hashKey(seed, k.keyId, k.nonce); }
    size_t operator()(const KeyView& k) const { return hashKey(seed, k.keyId, k.nonce); }
  };
  struct Equal {
    using is_transparent = void;
    static bool eq(std::string_view a, const Nonce& an, std::string_view b, const Nonce& bn) { return an == bn && a == b; }
    bool operator()(const Key& a, const Key& b) const { return eq(a.keyId, a.nonce, b.keyId, b.nonce); }
    bool operator()(const KeyView& a, const Key& b) const { return eq(a.keyId, a.nonce, b.keyId, b.nonce); }
    bool operator()(const Key& a, const KeyView& b) const { return eq(a.keyId, a.nonce, b.keyId, b.nonce); }
  };

  explicit Shard(uint64_t seed) : map(16, Hash{seed}) {}

  // Drops expired entries. Caller holds `mu`.
  size_t purge(int64_t nowNs) {
    size_t dropped = 0;
    int64_t nextMin = std::numeric_limits<int64_t>::max();
    for (auto it = map.begin(); it != map.end();) {
      if (it->second < nowNs) {
        it = map.erase(it);
        ++dropped;
      } else {
        nextMin = std::min(nextMin, it->second);
        ++it;
      }
    }
    purgedBelowNs = std::max(purgedBelowNs, nowNs);
    minExpiryNs = nextMin;
    insertsSincePurge = 0;
    return dropped;
  }

  mutable std::mutex mu;
  std::unordered_map<Key, int64_t, Hash, Equal> map;  // value: expiry, Unix ns
  // Every entry that expired before this instant has been dropped (see checkAndRecord).
  int64_t purgedBelowNs = std::numeric_limits<int64_t>::min();
  // The earliest expiry in `map` (or later): before it, a purge would free nothing.
  int64_t minExpiryNs = std::numeric_limits<int64_t>::max();
  size_t insertsSincePurge = 0;
};

NonceCache::NonceCache(NonceCacheOptions options) {
  size_t shards = std::max<size_t>(options.shards, 1);
  size_t capacity = std::max<size_t>(options.capacity, 1);
  perShardCap_ = (capacity + shards - 1) / shards;
  // A per-process random seed keeps which shard and bucket a nonce lands in unpredictable, so
  // that a client choosing nonces cannot pile them into one shard. A failed RAND_bytes leaves a
  // fixed seed, which costs only that unpredictability.
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed_), sizeof seed_) != 1) seed_ = 0x9e3779b97f4a7c15ULL;
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>(seed_));
}

NonceCache::~NonceCache() = default;

NonceCache::Shard& NonceCache::shardFor(std::string_view keyId, const Nonce& nonce) const {
  // The high half picks the shard, the map buckets on the whole hash: the two stay independent.
  return *shards_[(hashKey(seed_, keyId, nonce) >> 32) % shards_.size()];
}

bool NonceCache::seen(std::string_view keyId, const Nonce& nonce, int64_t nowNs) const {
  Shard& s = shardFor(keyId, nonce);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(Shard::KeyView{keyId, nonce});
  return it != s.map.end() && it->second >= nowNs;
}

NonceOutcome NonceCache::checkAndRecord(std::string_view keyId, const Nonce& nonce, int64_t expiresAtNs, int64_t nowNs) {
  if (expiresAtNs < nowNs) return NonceOutcome::kReplayed;
  Shard& s = shardFor(keyId, nonce);
  std::lock_guard lock(s.mu);
  // A purge at a later "now" than ours may already have dropped this pair: we cannot tell a
  // replay from a first sighting any more, so refuse (fail closed).
  if (expiresAtNs < s.purgedBelowNs) return NonceOutcome::kReplayed;
  auto it = s.map.find(Shard::KeyView{keyId, nonce});
  if (it != s.map.end()) {
    if (it->second >= nowNs) return NonceOutcome::kReplayed;
    it->second = expiresAtNs;  // an expired leftover: the pair is free to be used again
    s.minExpiryNs = std::min(s.minExpiryNs, expiresAtNs);
    return NonceOutcome::kRecorded;
  }
  // Purge when full, or after as many inserts as half the map (amortized O(1) per insert), and
  // only when something has expired, so that a full shard of live nonces is not rescanned on
  // every request.
  bool due = s.map.size() >= perShardCap_ || s.insertsSincePurge >= std::max<size_t>(1024, s.map.size() / 2);
  if (due && nowNs > s.minExpiryNs) s.purge(nowNs);
  if (s.map.size() >= perShardCap_) return NonceOutcome::kFull;
  s.map.emplace(Shard::Key{std::string(keyId), nonce}, expiresAtNs);
  s.minExpiryNs = std::min(s.minExpiryNs, expiresAtNs);
  ++s.insertsSincePurge;
  return NonceOutcome::kRecorded;
}

size_t NonceCache::purgeExpired(int64_t nowNs) {
  size_t dropped = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s->mu);
    dropped += s->purge(nowNs);
  }
  return dropped;
}

size_t NonceCache::size() const {
  size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s->mu);
    n += s->map.size();
  }
  return n;
}

// ---- Admission -----------------------------------------------------------------------------

Admission::Admission(AdmissionOptions options) : options_(std::move(options)), nonces_(options_.nonces) {
  if (!options_.clock) options_.clock = wallClockNs;
  if (options_.ed25519Backend.empty()) options_.ed25519Backend = crypto::ed25519DefaultBackend();
  // A configuration error, refused loudly at start: admitting with a verifier of another
  // criterion (OpenSSL's accepts small-order keys) would allow what our criterion rejects.
  for (const std::string& name : {options_.ed25519Backend, options_.ed25519FallbackBackend}) {
    if (!crypto::ed25519BackendEnforcesCriterion(name)) {
      throw std::invalid_argument("Ed25519 backend '" + name +
                                  "' is for comparison only (its criterion differs); it cannot admit requests");
    }
  }
  if (options_.sha256Backend.empty()) {
    auto available = crypto::sha256AvailableBackends();
    options_.sha256Backend = available.empty() ? "scalar" : available.front();
  }
  options_.timestampWindowNs = std::max<int64_t>(options_.timestampWindowNs, 0);
}

bool Admission::admit(const std::shared_ptr<const Bundle>& bundle, std::span<const SignedRequest> requests,
                      std::span<DenyCode> codes, AdmissionTiming* timing) {
  if (codes.size() != requests.size()) return false;
  using Clock = std::chrono::steady_clock;
  AdmissionTiming t;
  const auto t0 = Clock::now();
  const size_t n = requests.size();
  const int64_t nowNs = options_.clock();
  const int64_t window = options_.timestampWindowNs;
  auto pending = [&](size_t i) { return codes[i] == DenyCode::kNone; };
  auto denyAllPending = [&](DenyCode c) {
    for (size_t i = 0; i < n; ++i)
      if (pending(i)) codes[i] = c;
  };
  auto finish = [&] {
    if (timing) *timing = t;
    return true;
  };

  // Steps 1-5: the whole batch's state, then per-request checks that need no crypto.
  if (!bundle) {
    denyAllPending(DenyCode::kNoBundle);
    t.checkNs = elapsedNs(t0, Clock::now());
    return finish();
  }
  // Floor division, so that a clock before 1970 (only in tests) still rounds toward the past.
  const int64_t nowMs = nowNs / 1'000'000 - (nowNs % 1'000'000 < 0 ? 1 : 0);
  if (!isFresh(*bundle, nowMs) || (options_.syncLease && !options_.syncLease->valid(nowMs))) {
    denyAllPending(DenyCode::kPolicyStale);
    t.checkNs = elapsedNs(t0, Clock::now());
    return finish();
  }
  const int64_t earliest = saturatingAdd(nowNs, -window), latest = saturatingAdd(nowNs, window);
  std::vector<const WorkloadKey*> keys(n, nullptr);
  for (size_t i = 0; i < n; ++i) {
    if (!pending(i)) continue;
    const SignedRequest& r = requests[i];
    if (options_.checkShape && !validateShape(r).ok()) {
      codes[i] = DenyCode::kMalformed;
      continue;
    }
    const WorkloadKey* key = findWorkloadKey(*bundle, r.keyId, nowMs);
    if (!key) {
      codes[i] = DenyCode::kUnknownKey;
    } else if (key->principal != r.principal) {
      codes[i] = DenyCode::kKeyNotPrincipal;
    } else if (r.timestampNs < earliest || r.timestampNs > latest) {
      codes[i] = DenyCode::kTimestampOutOfWindow;
    } else if (nonces_.seen(r.keyId, r.nonce, nowNs)) {
      codes[i] = DenyCode::kReplayedNonce;
    } else {
      keys[i] = key;
    }
  }
  const auto t1 = Clock::now();
  t.checkNs = elapsedNs(t0, t1);

  // Step 6: hash every carried payload in one batch. The signature covers the digest, so a
  // payload that does not match its signed digest is not the payload that was signed.
  std::vector<std::optional<crypto::Sha256Digest>> signedDigest(n);
  std::vector<size_t> hashIdx;
  std::vector<crypto::ByteView> msgs;
  for (size_t i = 0; i < n; ++i) {
    if (!pending(i)) continue;
    const SignedRequest& r = requests[i];
    if (r.payload) {
      hashIdx.push_back(i);
      msgs.push_back({reinterpret_cast<const uint8_t*>(r.payload->data()), r.payload->size()});
    } else {
      signedDigest[i] = r.payloadDigest;
    }
  }
  if (!msgs.empty()) {
    std::vector<crypto::Sha256Digest> digests(msgs.size());
    bool ok = crypto::sha256Batch(options_.sha256Backend, msgs, digests);
    if (!ok) {
      t.sha256FellBack = true;
      ok = crypto::sha256Batch(options_.sha256FallbackBackend, msgs, digests);
    }
    for (size_t j = 0; j < hashIdx.size(); ++j) {
      const size_t i = hashIdx[j];
      const SignedRequest& r = requests[i];
      if (!ok) {
        codes[i] = DenyCode::kBackendFault;
      } else if (r.payloadDigest && *r.payloadDigest != digests[j]) {
        codes[i] = DenyCode::kPayloadDigestMismatch;
      } else {
        signedDigest[i] = digests[j];
      }
    }
    t.hashed = msgs.size();
  }
  const auto t2 = Clock::now();
  t.hashNs = elapsedNs(t1, t2);

  // Step 7: one Ed25519 batch over the canonical bytes. The bytes of all requests go into one
  // buffer first and are viewed only once it stops growing (growth would move them).
  std::vector<size_t> sigIdx;
  std::vector<size_t> msgEnd;
  std::string signingBytes;
  for (size_t i = 0; i < n; ++i) {
    if (!pending(i)) continue;
    if (options_.acceptUnsigned && isUnsigned(requests[i].signature)) continue;
    sigIdx.push_back(i);
    appendCanonicalSigningBytes(requests[i], signedDigest[i], signingBytes);
    msgEnd.push_back(signingBytes.size());
  }
  if (!sigIdx.empty()) {
    std::vector<crypto::SigInput> in(sigIdx.size());
    const auto* base = reinterpret_cast<const uint8_t*>(signingBytes.data());
    for (size_t j = 0; j < sigIdx.size(); ++j) {
      const SignedRequest& r = requests[sigIdx[j]];
      const size_t begin = j == 0 ? 0 : msgEnd[j - 1];
      in[j].pk = {keys[sigIdx[j]]->publicKey.data(), keys[sigIdx[j]]->publicKey.size()};
      in[j].sig = {r.signature.data(), r.signature.size()};
      in[j].msg = {base + begin, msgEnd[j] - begin};
    }
    // Zero-filled: a backend that wrongly returned true without writing would deny, not allow.
    std::vector<uint8_t> valid(in.size(), 0);
    bool ok = crypto::ed25519Verify(options_.ed25519Backend, in, valid);
    if (!ok) {
      t.ed25519FellBack = true;
      std::fill(valid.begin(), valid.end(), 0);
      ok = crypto::ed25519Verify(options_.ed25519FallbackBackend, in, valid);
    }
    for (size_t j = 0; j < sigIdx.size(); ++j) {
      if (!ok) codes[sigIdx[j]] = DenyCode::kBackendFault;
      else if (valid[j] != 1) codes[sigIdx[j]] = DenyCode::kBadSignature;
    }
    t.verified = in.size();
  }
  const auto t3 = Clock::now();
  t.verifyNs = elapsedNs(t2, t3);

  // Step 8: record nonces, in batch order, only for requests whose signature verified. The
  // pair must be remembered as long as the request could pass the timestamp check again, i.e.
  // until its timestamp + window.
  for (size_t i = 0; i < n; ++i) {
    if (!pending(i)) continue;
    const SignedRequest& r = requests[i];
    switch (nonces_.checkAndRecord(r.keyId, r.nonce, saturatingAdd(r.timestampNs, window), nowNs)) {
      case NonceOutcome::kRecorded: break;
      case NonceOutcome::kReplayed: codes[i] = DenyCode::kReplayedNonce; break;
      case NonceOutcome::kFull: codes[i] = DenyCode::kOverloaded; break;
    }
  }
  t.recordNs = elapsedNs(t3, Clock::now());
  return finish();
}

}  // namespace govmesh::engine
