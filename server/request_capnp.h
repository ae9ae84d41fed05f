// Conversion between the wire (server/govmesh.capnp) and the engine's request model
// (engine/request.h): the node decodes Requests and encodes Decisions; the client does the
// reverse.
//
// Decoding is where untrusted bytes meet the engine, so it never throws: a request that cannot
// be read (a missing or unset field, a wrong length, a union member newer than this schema, a
// context nested too deep or too large, a pointer that Cap'n Proto refuses) comes back as
// MALFORMED with a reason naming the field, and its neighbours in the batch are unaffected.
// A request that decodes also passes engine::validateShape().
//
// Thread-safety: the functions are pure; a Bundle passed as the intern table is only read, so
// it may be shared by concurrent decoders while it stays alive.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "engine/bundle.h"
#include "engine/deny_code.h"
#include "engine/request.h"
#include "server/govmesh.capnp.h"

namespace govmesh::server {

/// Cap'n Proto's pointer-nesting limit that readers of this protocol need. A context of
/// kMaxContextDepth nested records costs two pointers per level (Value -> List(Field) ->
/// Field.value), above the RPC framing (message, call, params, list, request) and an entity
/// leaf; Cap'n Proto's default of 64 would refuse legal contexts, so the server and the client
/// set this in their ReaderOptions. The decoder bounds the depth itself before it is reached.
inline constexpr int kWireNestingLimit = 2 * engine::kMaxContextDepth + 40;

/// ReaderOptions for messages of this protocol: kWireNestingLimit, Cap'n Proto's default
/// traversal limit (8 Mi words per message, the bound on what one call may make us read).
capnp::ReaderOptions wireReaderOptions();

/// One decoded request: `request` is meaningful when ok(); otherwise `code` is kMalformed and
/// `reason` says what was wrong ("nonce is 15 bytes, expected 16").
struct DecodedRequest {
  engine::SignedRequest request;
  engine::DenyCode code = engine::DenyCode::kNone;
  std::string reason;
  /// True when the request was read and is well-formed.
  bool ok() const { return code == engine::DenyCode::kNone; }
};

/// Reads one request. Interned entity references resolve through `internTable`'s entity table
/// (Bundle::table.entities); with no table, or an index past its end, they are MALFORMED.
/// `emptySignatureAsZero`: an absent or empty signature decodes as 64 zero bytes (the server
/// does this so that an unsigned request is judged by admission: BAD_SIGNATURE, or accepted
/// under AdmissionOptions::acceptUnsigned) instead of MALFORMED. Never throws.
DecodedRequest decodeRequest(wire::Request::Reader r, const engine::Bundle* internTable,
                             bool emptySignatureAsZero = false) noexcept;

/// Reads a batch: out[i] is requests[i] decoded (out is resized to the list's size). A list
/// that cannot be read at all yields no entries; callers answer by the wire list's size.
/// Never throws.
void decodeRequests(capnp::List<wire::Request>::Reader requests, const engine::Bundle* internTable,
                    std::vector<DecodedRequest>& out, bool emptySignatureAsZero = false) noexcept;

/// Writes `r` into `b` (for clients). With `internTable`, entity references found in its entity
/// table are sent interned (the signature is unaffected: it covers the uid text). Returns
/// kMalformed with a reason, leaving `b` partly written, when `r` holds something the wire
/// cannot carry: a context that is not a record, a datetime outside the years 0000-9999.
engine::ShapeCheck encodeRequest(const engine::SignedRequest& r, wire::Request::Builder b,
                                 const engine::Bundle* internTable = nullptr);

/// Writes a Cedar value (kinds as in govmesh.capnp Value). Same refusals as encodeRequest.
engine::ShapeCheck encodeValue(const cedar::Value& v, wire::Value::Builder b, const engine::Bundle* internTable = nullptr);

/// Writes a decision (denyName is set for every nonzero code).
void encodeDecision(const engine::Decision& d, wire::Decision::Builder b);

/// Writes a batch of decisions into a list of the same size (a size mismatch is a bug: it
/// writes min(sizes) and returns false).
[[nodiscard]] bool encodeDecisions(std::span<const engine::Decision> ds, capnp::List<wire::Decision>::Builder b);

/// Reads a decision, failing closed: allow holds only when the wire says allow and denyCode is 0;
/// a code newer than this build is kept as its number (still a deny); a decision that cannot be
/// read is a MALFORMED deny whose errors say why. Never throws.
engine::Decision decodeDecision(wire::Decision::Reader d) noexcept;

}  // namespace govmesh::server
