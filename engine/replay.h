// Batch replay of a lineage log (issue 7 item 4; ARCHITECTURE.md decision 7): an independent
// re-check of everything a node wrote, from the files alone.
//
// Replay does not trust Log::open (which refuses a tampered log outright); it reads the segment,
// leaf-hash and checkpoint files itself (layout in engine/lineage.h) so that it can say WHERE a
// log was tampered with. In order:
//
//   1. Records. Frames are read in log order; a frame whose CRC fails, whose seq is not its
//      position, that does not decode, or a segment that starts at the wrong seq, marks that
//      position as tampered. Leaf hashes are recomputed in batches (leafHashBatch) into an
//      in-memory Merkle tree and compared with leaves.hash.
//   2. Checkpoints. Every stored checkpoint's signature is checked with the node key (when given)
//      and the recomputed tree's root of its size must equal its signed root. The first position
//      not covered by a checkpoint that matches is tampered when a later checkpoint mismatches.
//   3. Signatures (unless verifySignatures is off: `govmesh replay --no-verify-signatures`). A
//      record carrying RequestEvidence has its canonical signing bytes rebuilt (engine/request.h);
//      SHA-256 of them must equal requestDigest and SHA-256 of the context contextDigest (one
//      multi-buffer batch); its signature is re-verified in batches (ed25519Verify, default
//      backend) against the WorkloadKey its keyId names in the bundle the record names. Without
//      signature checks the digests are not recomputed either: the leaf hash, checked against the
//      signed checkpoints, already covers evidence and digests.
//   4. Decisions. Records are re-evaluated in batches (authorizeBatch on the chosen backend)
//      against the bundle whose digest they name; decision, reasons and errors must match.
//
// Re-derivation rules by the recorded denyCode:
//   NONE              the key must be registered for the principal (not expired at the request's
//                     timestamp), the signature must verify, and the evaluation must match.
//   BAD_SIGNATURE     the signature must NOT verify under the registered key.
//   UNKNOWN_KEY       the keyId must not be registered without expiry in the bundle.
//   KEY_NOT_PRINCIPAL the key must be registered for another principal.
//   anything else     (MALFORMED, PAYLOAD_DIGEST_MISMATCH, TIMESTAMP_OUT_OF_WINDOW,
//                     REPLAYED_NONCE, NO_BUNDLE, POLICY_STALE, OVERLOADED, BACKEND_FAULT,
//                     SHUTTING_DOWN, LINEAGE_UNAVAILABLE) depends on node state that the log does
//                     not hold (clock, nonce cache, queue): accepted as recorded.
//   Every fail-closed record must be a deny with no reasons; one that allows is a divergence.
//   A record without evidence cannot be re-derived: it is counted (notRederivable) and only its
//   fail-closed shape is checked. Records whose fault code means no bundle decided (NO_BUNDLE,
//   MALFORMED, OVERLOADED, SHUTTING_DOWN, LINEAGE_UNAVAILABLE) need no bundle file.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/lineage.h"
#include "engine/request.h"

namespace govmesh::engine {

/// What replay() checks and with which keys.
struct ReplayOptions {
  std::string logDir;      ///< the lineage directory
  std::string bundlesDir;  ///< every regular file in it is read as a bundle (indexed by digest)
  /// The node key as a C2SP verifier key; or see nodePublicKey.
  std::optional<lineage::NoteVerifier> nodeVerifier;
  /// The node key as a raw Ed25519 key (a PEM file): its key name is taken from each note's
  /// signature lines. Without either key, checkpoint signatures are not checked (reported).
  std::optional<crypto::Ed25519PublicKey> nodePublicKey;
  /// Authority keys bundles must be signed by. Empty: bundles are only checked against their own
  /// digest (reported as unauthenticated).
  std::vector<crypto::Ed25519PublicKey> trusted;
  std::string backend;           ///< evaluation backend (evaluator.h names); empty: best CPU one
  bool verifySignatures = true;  ///< step 3 above
  bool reevaluate = true;        ///< step 4 above
  size_t batchSize = 8192;       ///< records per batch
  /// Called after each batch with (records done, records in the log).
  std::function<void(uint64_t done, uint64_t total)> progress;
};

/// A record whose recorded outcome replay could not re-derive.
struct Divergence {
  uint64_t seq = 0;
  std::string what;  ///< e.g. "recorded ALLOW [p0], re-evaluated DENY []"
};

/// A bundle digest that records name and --bundles does not hold.
struct MissingBundle {
  std::string digestHex;
  uint64_t records = 0;        ///< how many records need it
  std::vector<uint64_t> seqs;  ///< the first 100 of them
};

/// What replay found. ok() is false on any divergence, tampering, missing bundle or fatal error.
struct ReplayReport {
  std::string fatal;                   ///< a reason replay could not run at all (unreadable dir)
  uint64_t records = 0;                ///< records read (intact or not)
  uint64_t checkpoints = 0;            ///< checkpoints stored
  uint64_t checkpointsVerified = 0;    ///< signature (when a key was given) and root both match
  bool checkpointSignaturesChecked = false;
  uint64_t coveredRecords = 0;         ///< records under the largest checkpoint that matched (the
                                       ///< rest were appended after it: consistent, but unsigned)
  uint64_t signaturesVerified = 0;     ///< request signatures re-verified (valid or not)
  uint64_t decisionsReevaluated = 0;   ///< decisions re-evaluated against their bundle
  uint64_t acceptedAsRecorded = 0;     ///< fail-closed records accepted by the rules above
  uint64_t notRederivable = 0;         ///< records without RequestEvidence
  uint64_t divergenceCount = 0;
  std::vector<Divergence> divergences;  ///< the first 1000
  std::vector<MissingBundle> missingBundles;
  std::vector<std::string> bundleProblems;  ///< bundle files refused (tampered, untrusted, unreadable)
  bool bundlesAuthenticated = false;        ///< trusted keys were given
  std::optional<uint64_t> firstTamperedSeq;  ///< the first position found tampered with
  std::string tamperReason;                  ///< why (for firstTamperedSeq)
  std::vector<std::string> tamperFindings;   ///< every tamper finding (the first 100)
  std::string ed25519Backend, evalBackend;
  double seconds = 0;
  bool ok() const {
    return fatal.empty() && divergenceCount == 0 && missingBundles.empty() && !firstTamperedSeq && tamperFindings.empty();
  }
};

/// Replays the log in options.logDir (see the top of this file). Never throws for bad input:
/// problems are reported.
ReplayReport replay(const ReplayOptions& options);

/// The RequestEvidence of a decoded request, for the service to put in its record
/// (`payloadDigest` as admission computed it: signedPayloadDigest(r)).
lineage::RequestEvidence requestEvidence(const SignedRequest& r, const std::optional<crypto::Sha256Digest>& payloadDigest);

/// Rebuilds the canonical signing bytes of a recorded request into `out` (cleared first);
/// false when the record has no evidence.
bool rebuildSigningBytes(const lineage::Record& r, std::string& out);

}  // namespace govmesh::engine
