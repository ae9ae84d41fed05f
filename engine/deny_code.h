// Why a decision is a deny. Every fault the service can meet maps to one of these codes, and a
// code other than kNone is always a deny: the service fails closed (ARCHITECTURE.md, decision 8).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace govmesh::engine {

/// The reason code of a decision. Values are stable: they travel on the wire (govmesh.capnp) and
/// into the lineage log.
enum class DenyCode : uint8_t {
  kNone = 0,                  ///< not a fault: allowed, or denied by the policies themselves
  kMalformed = 1,             ///< the request could not be read (missing field, bad uid, bad context)
  kUnknownKey = 2,            ///< keyId is not in the active bundle's workload key registry (or expired)
  kKeyNotPrincipal = 3,       ///< the key is registered, but not for this principal
  kBadSignature = 4,          ///< the Ed25519 signature does not verify under our criterion
  kPayloadDigestMismatch = 5, ///< SHA-256(payload) differs from the payloadDigest that was signed
  kTimestampOutOfWindow = 6,  ///< the request's timestamp is outside now ± the freshness window
  kReplayedNonce = 7,         ///< this (keyId, nonce) was already seen within the window
  kNoBundle = 8,              ///< no verified policy bundle is active
  kPolicyStale = 9,           ///< the active bundle is past its freshness deadline
  kOverloaded = 10,           ///< the queue is full: answered at once, without waiting
  kBackendFault = 11,         ///< evaluation failed on every backend, the CPU fallback included
  kShuttingDown = 12,         ///< the node is draining and accepts no new work
  kLineageUnavailable = 13,   ///< the decision could not be recorded durably
};

/// The code's wire name, e.g. "BAD_SIGNATURE" ("NONE" for kNone).
constexpr std::string_view denyCodeName(DenyCode c) {
  switch (c) {
    case DenyCode::kNone: return "NONE";
    case DenyCode::kMalformed: return "MALFORMED";
    case DenyCode::kUnknownKey: return "UNKNOWN_KEY";
    case DenyCode::kKeyNotPrincipal: return "KEY_NOT_PRINCIPAL";
    case DenyCode::kBadSignature: return "BAD_SIGNATURE";
    case DenyCode::kPayloadDigestMismatch: return "PAYLOAD_DIGEST_MISMATCH";
    case DenyCode::kTimestampOutOfWindow: return "TIMESTAMP_OUT_OF_WINDOW";
    case DenyCode::kReplayedNonce: return "REPLAYED_NONCE";
    case DenyCode::kNoBundle: return "NO_BUNDLE";
    case DenyCode::kPolicyStale: return "POLICY_STALE";
    case DenyCode::kOverloaded: return "OVERLOADED";
    case DenyCode::kBackendFault: return "BACKEND_FAULT";
    case DenyCode::kShuttingDown: return "SHUTTING_DOWN";
    case DenyCode::kLineageUnavailable: return "LINEAGE_UNAVAILABLE";
  }
  return "UNKNOWN";
}

/// Every code, in value order (for metrics and tests).
constexpr DenyCode kAllDenyCodes[] = {
    DenyCode::kNone, DenyCode::kMalformed, DenyCode::kUnknownKey, DenyCode::kKeyNotPrincipal,
    DenyCode::kBadSignature, DenyCode::kPayloadDigestMismatch, DenyCode::kTimestampOutOfWindow,
    DenyCode::kReplayedNonce, DenyCode::kNoBundle, DenyCode::kPolicyStale, DenyCode::kOverloaded,
    DenyCode::kBackendFault, DenyCode::kShuttingDown, DenyCode::kLineageUnavailable};

/// The code named `name` (as denyCodeName prints it), if any.
constexpr std::optional<DenyCode> denyCodeFromName(std::string_view name) {
  for (DenyCode c : kAllDenyCodes) {
    if (denyCodeName(c) == name) return c;
  }
  return std::nullopt;
}

}  // namespace govmesh::engine
