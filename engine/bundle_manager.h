// The node's policy-bundle state for the decision service: which verified bundle is active, and
// how a newer one replaces it (issue 6: hot reload on SIGHUP and through loadBundle(); fail
// closed with NO_BUNDLE / POLICY_STALE).
//
// An offered bundle goes through, in order:
//   envelope  readEnvelope(): bytes that are not a govmesh bundle file     -> kNotABundle
//   trust     verifyEnvelope() against the trusted authority keys          -> kBadDigest,
//             (digest, then signer, then signature)                           kUntrustedSigner,
//                                                                             kBadSignature
//   content   decodeBundleContent(): every size and index checked          -> kMalformedContent
//   deadline  already past its freshness deadline by the injected clock    -> kExpired
//   revision  not strictly newer than the active one (under the swap lock)  -> kNotNewer
// and only then replaces the active bundle. A refused offer never touches the active bundle.
//
// Re-offering the bundle that is already active (same revision AND same digest: what SIGHUP
// with an unchanged file does) is a success that changes nothing: accepted = true,
// swapped = false, no onChange. The same revision with a different digest is refused
// (kNotNewer): an authority must never issue two contents under one revision, and a node must
// not flip between them.
//
// Thread safety: every member function may be called from any thread at any time. Offers verify
// and decode outside any lock (they are slow: the content is re-parsed), then take a short
// swap lock to compare revisions and publish, so that revisions only ever grow however offers
// race. active()/current() are an atomic shared_ptr load: readers keep the bundle they got alive
// for as long as they hold the pointer, even across later swaps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/bundle.h"
#include "engine/crypto_types.h"
#include "engine/deny_code.h"
#include "engine/sync_lease.h"

namespace govmesh::engine {

/// Why an offered bundle was not made active. Each value names the first check that failed.
enum class LoadRefusal : uint8_t {
  kNone = 0,           ///< not refused (accepted)
  kNotABundle,         ///< not a govmesh bundle file: empty, random bytes, other format version
  kUnreadable,         ///< loadFile(): the file is missing or cannot be read
  kBadDigest,          ///< the content does not match its SHA-256 digest (altered or corrupt)
  kUntrustedSigner,    ///< unsigned, or signed by a key that is not a trusted authority key
  kBadSignature,       ///< signer trusted but the signature does not verify (or is malformed)
  kMalformedContent,   ///< signed and intact, but the content does not decode (faulty authority)
  kExpired,            ///< the bundle's freshness deadline has already passed
  kNotNewer,           ///< revision <= the active one (equal revision with another digest too)
};

/// Stable lower-case name of a refusal ("not_a_bundle", "bad_digest", ...) for logs and metrics.
const char* loadRefusalName(LoadRefusal r);

/// The result of offer() / loadFile(). Never an exception.
struct LoadOutcome {
  bool accepted = false;  ///< the offered bundle is the active one after the call
  bool swapped = false;   ///< it replaced the active one (false for a re-offer of the active bundle)
  uint64_t revision = 0;  ///< the offered bundle's revision when it got that far, else 0
  LoadRefusal reason = LoadRefusal::kNone;  ///< kNone when accepted
  std::string message;    ///< why, naming the source ("b.bundle: signature does not verify: ...")
};

/// The active bundle with what the node knows about it. Immutable once published.
struct ActiveBundle {
  Bundle bundle;
  std::string digest;                  ///< SHA-256 of the content, 32 raw bytes (as signed)
  std::string digestHex;               ///< the same in lower-case hex (status(), metrics, logs)
  crypto::Ed25519PublicKey signer{};   ///< the trusted authority key that signed it
  std::string source;                  ///< where it came from (a path, "rpc:loadBundle", ...)
  int64_t loadedAtMs = 0;              ///< clock time when it became active
  /// The etcd revision of the active pointer that named it, when it came through the mesh
  /// (issue 8); recorded in every lineage record decided under it.
  std::optional<uint64_t> etcdRevision;
};

/// Whether decisions may be made: the fail-closed view of the bundle state.
enum class BundleState : uint8_t {
  kNoBundle,  ///< nothing verified is active: deny with NO_BUNDLE
  kFresh,     ///< active and before its freshness deadline
  kStale,     ///< active but past its deadline: deny with POLICY_STALE
};

/// The deny code a request gets in `state`, or nullopt when the state allows evaluation.
std::optional<DenyCode> denyCodeFor(BundleState state);

/// Holds the active policy bundle and replaces it only with a verified, newer, unexpired one.
class BundleManager {
 public:
  /// Unix time in ms. Injectable so that tests can move time.
  using Clock = std::function<int64_t()>;
  /// Called after each swap with the bundle that became active.
  using ChangeCallback = std::function<void(const std::shared_ptr<const ActiveBundle>&)>;

  /// `trusted`: the authority keys a bundle must be signed by (none: every bundle is refused).
  /// `clock`: defaults to the system clock.
  explicit BundleManager(std::vector<crypto::Ed25519PublicKey> trusted, Clock clock = {});

  BundleManager(const BundleManager&) = delete;
  BundleManager& operator=(const BundleManager&) = delete;

  /// Verifies the bundle file `bytes` and makes it active if it passes every check (see the file
  /// comment). `source` names it in messages. Never throws.
  LoadOutcome offer(std::string_view bytes, std::string_view source);
  /// The same, for a bundle read from etcd: `etcdRevision` is kept in the ActiveBundle it
  /// becomes (a re-offer of the active bundle keeps the revision it was first activated with).
  LoadOutcome offer(std::string_view bytes, std::string_view source, std::optional<uint64_t> etcdRevision);
  /// Reads the file at `path` and offers it. A missing or unreadable file is a refusal
  /// (kUnreadable); the active bundle stays. Never throws.
  LoadOutcome loadFile(const std::string& path);

  /// The active bundle, or null. Safe to hold across swaps.
  std::shared_ptr<const Bundle> active() const;
  /// The active bundle with its digest, signer and source, or null; one consistent snapshot.
  std::shared_ptr<const ActiveBundle> current() const;

  /// Makes freshness also depend on `lease` (the mesh's etcd sync, engine/sync_lease.h): while
  /// it is not valid, an active bundle is kStale. Set once, before the first offer; null: none.
  void setSyncLease(std::shared_ptr<const SyncLease> lease);
  /// The lease set by setSyncLease (null when none).
  const std::shared_ptr<const SyncLease>& syncLease() const { return syncLease_; }

  /// The fail-closed state at `nowMs`.
  BundleState state(int64_t nowMs) const;
  /// The state now, by the manager's clock.
  BundleState state() const { return state(nowMs()); }
  /// Seconds from `nowMs` to the active bundle's deadline (negative once past); nullopt without
  /// a bundle.
  std::optional<double> secondsToDeadline(int64_t nowMs) const;
  /// The active revision, 0 without a bundle (revisions of real bundles start at 1 or above by
  /// convention; use current() to tell "none" apart from a revision-0 bundle).
  uint64_t revision() const;
  /// Hex SHA-256 of the active content, empty without a bundle.
  std::string digestHex() const;

  /// Registers the callback fired after every swap (replacing any earlier one). Callbacks run
  /// on the offering thread, one at a time, in increasing revision order; one may be skipped
  /// when a newer swap overtakes it. A callback must not call offer() or loadFile() (deadlock).
  void onChange(ChangeCallback callback);

  /// The manager's clock now (Unix ms).
  int64_t nowMs() const { return clock_(); }

 private:
  std::vector<crypto::Ed25519PublicKey> trusted_;
  Clock clock_;
  std::atomic<std::shared_ptr<const ActiveBundle>> active_;
  std::mutex swapMutex_;    // orders compare-and-publish of offers
  std::mutex notifyMutex_;  // serializes callbacks; guards callback_ and notifiedRevision_
  ChangeCallback callback_;
  std::optional<uint64_t> notifiedRevision_;
  std::shared_ptr<const SyncLease> syncLease_;

  LoadOutcome offerChecked(std::string_view bytes, const std::string& where, std::optional<uint64_t> etcdRevision);
  void notify();
};

}  // namespace govmesh::engine
