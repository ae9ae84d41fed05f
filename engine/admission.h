// The admit and verify stages of the decision pipeline (ARCHITECTURE.md, stages 1 and 2): given the
// active bundle and a batch of decoded SignedRequests, decide for each request whether it may go on
// to evaluation (DenyCode::kNone) or is denied now, and why. Every fault is a deny with its own
// code; nothing here can turn a doubt into an allow (decision 8, "fail closed").
//
// Order of checks, per batch (cheap before expensive; a request stops at its first failure):
//   0. codes already set by the caller (kMalformed from the wire decoder, kOverloaded, ...) stay;
//   1. no bundle -> kNoBundle; bundle past its deadline, or the mesh's sync lease
//      (engine/sync_lease.h) lapsed -> kPolicyStale (whole batch);
//   2. shape (validateShape, optional) -> kMalformed;
//   3. keyId unknown or expired -> kUnknownKey; key registered for another principal ->
//      kKeyNotPrincipal;
//   4. timestamp outside now ± window -> kTimestampOutOfWindow;
//   5. nonce pre-check, read only: already recorded -> kReplayedNonce. This spares the Ed25519
//      work for replay floods; it records nothing, so it cannot be abused to burn a nonce;
//   6. SHA-256 of every carried payload (one sha256Batch); payloadDigest present and different
//      -> kPayloadDigestMismatch;
//   7. Ed25519 over canonicalSigningBytes (one ed25519Verify batch) -> kBadSignature. If the
//      backend reports a fault, the batch is retried on "single"; if that fails too, every
//      request still pending is denied kBackendFault (step 6 does the same with "scalar");
//   8. nonce check-and-record, in batch order -> kReplayedNonce (a duplicate within the batch or
//      one recorded concurrently by another batch), or kOverloaded when the cache is full.
// The nonce is recorded only at step 8, after the signature verified: a forged request that copies
// a victim's (keyId, nonce) is denied kBadSignature and leaves the victim's nonce unused.
//
// Thread-safety: Admission::admit() may be called concurrently from several threads (the batch
// pipeline runs on a worker pool); its only shared state is the NonceCache, which locks per shard.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/bundle.h"
#include "engine/deny_code.h"
#include "engine/request.h"
#include "engine/sync_lease.h"

namespace govmesh::engine {

/// A request nonce (see SignedRequest::nonce).
using Nonce = std::array<uint8_t, kNonceBytes>;

/// Sizing of a NonceCache.
struct NonceCacheOptions {
  /// Hard cap on remembered (keyId, nonce) pairs, over all shards. At ~100 bytes an entry the
  /// default (4 Mi entries) bounds the cache near 400 MiB and holds 60 s (2 × the default window)
  /// of nonces at ~70 k signed requests per second.
  size_t capacity = size_t{1} << 22;
  /// Independently locked shards; concurrent batches rarely contend on one lock.
  size_t shards = 16;
};

/// What NonceCache::checkAndRecord() found.
enum class NonceOutcome : uint8_t {
  kRecorded,  ///< not seen before: now remembered until its expiry
  kReplayed,  ///< already remembered and not expired (or too old to be tracked: see checkAndRecord)
  kFull,      ///< the shard is at its cap even after dropping expired entries: nothing recorded
};

/// Remembers each (keyId, nonce) until an expiry instant, in bounded memory.
///
/// Fail closed at the cap: a nonce is never forgotten before its expiry to make room, since
/// forgetting a live nonce would let its request be replayed. When a shard is full and purging
/// expired entries frees nothing, checkAndRecord() returns kFull and the caller denies the new
/// request (Admission answers kOverloaded: the node is out of capacity; the client did nothing
/// wrong and may retry later with a new nonce, whereas kReplayedNonce would accuse it).
///
/// Time is passed in by the caller (Unix ns), never read here, so tests control it. Entries whose
/// expiry is before `nowNs` count as absent. Thread-safety: every method may be called
/// concurrently; each locks one shard (size() and purgeExpired() lock each in turn).
class NonceCache {
 public:
  /// An empty cache sized by `options` (zero capacity or shards are raised to 1).
  explicit NonceCache(NonceCacheOptions options = {});
  NonceCache(const NonceCache&) = delete;
  NonceCache& operator=(const NonceCache&) = delete;
  ~NonceCache();

  /// True when (keyId, nonce) is remembered with an expiry not before `nowNs`. Records nothing.
  bool seen(std::string_view keyId, const Nonce& nonce, int64_t nowNs) const;

  /// Records (keyId, nonce) until `expiresAtNs` unless it is already remembered (kReplayed) or
  /// the shard is full (kFull). A pair whose `expiresAtNs` is before `nowNs` or before an
  /// earlier purge of its shard is refused as kReplayed: it may have been forgotten already, so
  /// it can no longer be proven fresh. (This closes the race where a batch that read the clock
  /// earlier records after a later batch purged.)
  [[nodiscard]] NonceOutcome checkAndRecord(std::string_view keyId, const Nonce& nonce, int64_t expiresAtNs,
                                            int64_t nowNs);

  /// Drops every entry that expired before `nowNs`; returns how many.
  size_t purgeExpired(int64_t nowNs);

  /// Entries remembered now (expired ones not yet purged included).
  size_t size() const;

  /// The cap given at construction (after rounding up to a multiple of the shard count).
  size_t capacity() const { return perShardCap_ * shards_.size(); }

 private:
  struct Shard;
  Shard& shardFor(std::string_view keyId, const Nonce& nonce) const;
  std::vector<std::unique_ptr<Shard>> shards_;
  size_t perShardCap_ = 0;
  uint64_t seed_ = 0;  // mixed into the shard choice so that shard load cannot be aimed at
};

/// Unix time in ns; admission reads it once per batch.
using ClockNs = std::function<int64_t()>;

/// The wall clock (std::chrono::system_clock) in Unix ns.
int64_t systemClockNs();

/// Settings of the admit and verify stages.
struct AdmissionOptions {
  /// A request's timestamp must lie within now ± this (inclusive).
  int64_t timestampWindowNs = int64_t{30} * 1'000'000'000;
  /// Where "now" comes from; empty means systemClockNs.
  ClockNs clock;
  /// Ed25519 backend for the batch; empty means ed25519DefaultBackend() at construction. A
  /// backend that does not enforce our criterion ("openssl") is refused: the constructor throws
  /// std::invalid_argument.
  std::string ed25519Backend;
  /// SHA-256 backend for payloads; empty means the first of sha256AvailableBackends().
  std::string sha256Backend;
  /// Where a faulting Ed25519 batch is retried: the portable reference. (Configurable so that
  /// tests can make both fail and see kBackendFault.)
  std::string ed25519FallbackBackend = "single";
  /// Where a faulting SHA-256 batch is retried: the portable reference.
  std::string sha256FallbackBackend = "scalar";
  /// Run validateShape() on each request (kMalformed). The wire decoder already does; callers
  /// that feed requests from elsewhere (tests, the CLI) should keep it on.
  bool checkShape = true;
  /// Sizing of the nonce cache.
  NonceCacheOptions nonces;
  /// Benchmarking only (`govmesh serve --allow-unsigned`, loopback listeners): a request whose
  /// signature is all zero bytes (what the server's wire decoder makes of an empty signature)
  /// skips step 7; every other check still applies, its nonce included. Off (the default), such
  /// a request fails step 7 like any bad signature (kBadSignature).
  bool acceptUnsigned = false;
  /// The mesh's freshness lease (engine/sync_lease.h): while it is not valid every request is
  /// denied POLICY_STALE, as past the bundle's own deadline. Null: no lease (a standalone node).
  std::shared_ptr<const SyncLease> syncLease;
};

/// Where one admit() call spent its time, for the per-stage latency metrics. The stages follow
/// the order at the top of this file; each is wall time on the calling thread.
struct AdmissionTiming {
  uint64_t checkNs = 0;   ///< steps 1-5: bundle, shape, key, principal, timestamp, nonce pre-check
  uint64_t hashNs = 0;    ///< step 6: payload SHA-256 batch and digest comparison
  uint64_t verifyNs = 0;  ///< step 7: canonical bytes and the Ed25519 batch
  uint64_t recordNs = 0;  ///< step 8: nonce check-and-record
  size_t hashed = 0;      ///< payloads hashed
  size_t verified = 0;    ///< signatures verified
  bool sha256FellBack = false;   ///< the SHA-256 backend faulted and the fallback ran instead
  bool ed25519FellBack = false;  ///< the Ed25519 backend faulted and the fallback ran instead
};

/// The admit and verify stages (see the top of this file), holding the nonce cache that must
/// outlive bundle reloads: nonces are keyed by keyId, not by bundle.
class Admission {
 public:
  /// Stages configured by `options`; the nonce cache starts empty.
  explicit Admission(AdmissionOptions options = {});

  /// Admits a batch: for each requests[i] with codes[i] == kNone on entry, writes the first
  /// failing check's code into codes[i], or leaves kNone when the request may be evaluated;
  /// entries already non-kNone are kept and their requests skipped (not hashed, not verified,
  /// nonce not recorded). `bundle` may be null (every request denied kNoBundle). Returns false,
  /// writing nothing, when codes.size() != requests.size(): the caller must then deny the whole
  /// batch. Thread-safe.
  [[nodiscard]] bool admit(const std::shared_ptr<const Bundle>& bundle, std::span<const SignedRequest> requests,
                           std::span<DenyCode> codes, AdmissionTiming* timing = nullptr);

  /// The nonce cache (for metrics, and so that a maintenance task can purge it).
  NonceCache& nonces() { return nonces_; }
  /// The settings in force (backends resolved).
  const AdmissionOptions& options() const { return options_; }

 private:
  AdmissionOptions options_;
  NonceCache nonces_;
};

}  // namespace govmesh::engine
