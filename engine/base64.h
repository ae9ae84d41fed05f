// Standard base64 (RFC 4648 section 4, padded), canonical only: what signed notes, proofs and
// etcd's JSON gateway carry. One implementation for the lineage checkpoints and the etcd
// client, in a library of its own (govmesh_base64) so that neither drags in the other.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace govmesh {

/// Standard base64 (RFC 4648 section 4, padded) of bytes.
std::string base64Encode(std::string_view bytes);
/// Decodes standard padded base64; nullopt when malformed (bad length, character or padding) or
/// not canonical (non-zero bits dropped by the padding), so each byte string has one encoding.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace govmesh
