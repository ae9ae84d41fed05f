// The request model of the decision service: what a workload asks and signs, what it is told,
// and the canonical bytes its Ed25519 signature covers.
//
// A SignedRequest is the engine's view of one request after the wire (server/govmesh.capnp) has
// been decoded: entity references resolved to uids, the context a cedar::Value record. The
// signature covers canonicalSigningBytes(), a binary encoding of every field but the signature,
// defined below byte for byte so that clients in any language can produce it.
//
// Canonical signing bytes, version 1 (all integers little-endian, two's complement):
//
//   "govmesh/request/v1\0"            19 bytes of domain separation: these bytes can never be
//                                     mistaken for anything else a key signs (bundles use
//                                     "govmesh policy bundle\0")
//   uid(principal) uid(action) uid(resource)
//   value(context)                    always a record
//   str(keyId)
//   i64 timestampNs
//   nonce                             16 bytes
//   payload                           u8 0 (no payload), or u8 1 followed by the 32-byte SHA-256
//                                     digest: payloadDigest when present, else SHA-256(payload).
//                                     So a request carrying its payload and one carrying only the
//                                     digest sign the same bytes.
//
//   str(s)   = u32 byte length, then the bytes (any bytes, NUL included)
//   uid(u)   = str(u.type) str(u.id)
//   value(v) = u8 kind tag, then by kind:
//     0x01 bool      u8 0 or 1
//     0x02 long      i64
//     0x03 string    str
//     0x04 entity    uid
//     0x05 set       u32 count, then each element's value(), in cedar::compareValues order
//                    (cedar::Value keeps sets sorted and deduplicated)
//     0x06 record    u32 count, then str(key) value(v) per field, keys in byte order, unique
//     0x07 decimal   i64 scaled by 10^4
//     0x08 ipaddr    u8 (1 for IPv6, 0 for IPv4), u8 prefix length, 16 address bytes
//                    (IPv4 in the first 4, the rest zero)
//     0x09 datetime  i64 ms since the Unix epoch
//     0x0a duration  i64 ms
//
// Every element is self-delimiting (a length, a count or a fixed size precedes its contents),
// so the encoding is prefix-free and injective: two requests that differ in any signed field
// (or split the same characters differently between fields) encode differently. Extension
// values are encoded by their numeric form, not their text, so "10.0.0.1" and "10.0.0.1/32"
// (the same ipaddr) sign the same bytes. The bytes are defined only for requests that pass
// validateShape(): its limits keep every length far below 2^32.
//
// Thread-safety: every function here is pure (no shared state) and may be called concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/evaluator.h"
#include "compiler/value.h"
#include "engine/crypto_types.h"
#include "engine/deny_code.h"

namespace govmesh::engine {

/// The domain-separation prefix of the canonical signing bytes (the NUL included).
inline constexpr std::string_view kRequestSigningPrefix{"govmesh/request/v1\0", 19};

/// Nonce length in bytes: 128 random bits, so that honest clients never collide.
inline constexpr size_t kNonceBytes = 16;

// Shape limits, checked by validateShape() and by the wire decoder before any work is spent on a
// request. They bound the cost of one request (hashing, featurizing, recording), not what Cedar
// could express; a request past them is MALFORMED.

/// The largest payload carried inline (larger ones travel as a payloadDigest).
inline constexpr size_t kMaxPayloadBytes = size_t{1} << 20;
/// The largest canonical encoding of the context (value(context) above).
inline constexpr size_t kMaxContextBytes = size_t{64} << 10;
/// The deepest context nesting: the context record is depth 1, each set or record inside adds 1.
inline constexpr int kMaxContextDepth = 32;
/// The longest entity type, entity id or keyId, in bytes.
inline constexpr size_t kMaxNameBytes = 1024;

/// One request as the engine sees it once decoded: who asks to do what to which resource, in
/// which context, with which key, when, and the signature over canonicalSigningBytes().
struct SignedRequest {
  cedar::EntityUid principal;
  cedar::EntityUid action;
  cedar::EntityUid resource;
  cedar::Value context = cedar::Value::record({});  ///< must be a record
  std::string keyId;                                 ///< names a WorkloadKey of the active bundle
  int64_t timestampNs = 0;                           ///< Unix ns, set by the client when it signs
  std::array<uint8_t, kNonceBytes> nonce{};          ///< unique per (keyId, request)
  /// The payload itself, when carried. Its SHA-256 is what the signature covers.
  std::optional<std::string> payload;
  /// The payload's SHA-256, when carried. With a payload too, the two must match: the verify
  /// stage checks SHA-256(payload) == payloadDigest (PAYLOAD_DIGEST_MISMATCH), because the
  /// signature covers the digest, not the payload.
  std::optional<crypto::Sha256Digest> payloadDigest;
  crypto::Ed25519Signature signature{};
};

/// What the service answers for one request.
struct Decision {
  bool allow = false;                ///< true only when `code` is kNone and the policies allow
  std::vector<std::string> reasons;  ///< ids of the determining policies (permits or forbids)
  std::vector<std::string> errors;   ///< policy evaluation errors, "policyId: message"
  DenyCode code = DenyCode::kNone;   ///< why the request was denied without evaluation, if so
  uint64_t lineageSeq = 0;           ///< the decision's lineage record (0 until lineage lands)
};

/// A deny decision for a fault, with no reasons: the shape of every fail-closed answer.
Decision denyDecision(DenyCode code);

/// The outcome of validateShape(): `code` is kNone, or kMalformed with a `reason` naming the
/// field and the limit.
struct ShapeCheck {
  DenyCode code = DenyCode::kNone;
  std::string reason;
  /// True when the request is well-formed.
  bool ok() const { return code == DenyCode::kNone; }
};

/// Checks what can be checked of a request without a bundle or a clock: entity types are Cedar
/// names (identifiers joined by "::"), names within kMaxNameBytes, keyId not empty, every text
/// valid UTF-8, the context a record within kMaxContextDepth and kMaxContextBytes, the payload
/// within kMaxPayloadBytes, datetimes within the years 0000-9999 (the only ones the wire's text
/// form can carry). Cost is linear in the request's size.
ShapeCheck validateShape(const SignedRequest& r);

/// The digest the signature covers: payloadDigest when present, else SHA-256(payload) when a
/// payload is carried, else nullopt (a request without payload).
std::optional<crypto::Sha256Digest> signedPayloadDigest(const SignedRequest& r);

/// Appends the canonical signing bytes of `r` to `out`, taking the payload's digest from
/// `digest` (pass signedPayloadDigest(r), or a digest computed in a SHA-256 batch) so that the
/// hot path hashes each payload once. `out` is reused across calls to avoid allocation.
void appendCanonicalSigningBytes(const SignedRequest& r, const std::optional<crypto::Sha256Digest>& digest,
                                 std::string& out);

/// Appends value(v) (format at the top of this file): the canonical context encoding that the
/// lineage log keeps and hashes (contextDigest).
void appendCanonicalValue(const cedar::Value& v, std::string& out);

/// Decodes exactly one value() (the inverse of appendCanonicalValue); nullopt when the bytes are
/// not one well-formed value (bad tag, truncated, trailing bytes, nesting past
/// kMaxContextDepth, an unsorted set or record). Replay rebuilds contexts from the log with it.
std::optional<cedar::Value> decodeCanonicalValue(std::string_view bytes);

/// The canonical signing bytes of `r` (format at the top of this file).
std::string canonicalSigningBytes(const SignedRequest& r);

/// Signs `r` in place: fills r.signature with the Ed25519 signature, by the key in `privatePem`,
/// of canonicalSigningBytes(r). For clients. Throws cedar::InputError when the PEM is not an
/// Ed25519 private key.
void signRequest(SignedRequest& r, std::string_view privatePem);

/// Checks r.signature against `key` with the reference verifier (ed25519VerifyOne). For tests
/// and single requests; the service verifies in batches.
bool verifyRequestSignature(const SignedRequest& r, const crypto::Ed25519PublicKey& key);

/// The Cedar request the policies are evaluated on (payload, key and signature play no part).
cedar::Request toCedarRequest(const SignedRequest& r);

}  // namespace govmesh::engine
