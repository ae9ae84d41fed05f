// Shared by the bundle sources (engine/bundle*.cpp); not part of the engine's API.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include <string>
#include <string_view>

#include "compiler/entities.h"

namespace govmesh::engine {

/// The entity store as Cedar entities JSON (sorted by uid, explicit escapes), which
/// parseEntitiesJson without a schema reads back to an equal store. Throws InputError for
/// values that would not read back equal.
std::string entitiesToJson(const cedar::EntityStore& store);

/// A word-aligned copy of a Cap'n Proto message (FlatArrayMessageReader needs alignment; the
/// bytes of a file or of a Data field give no such promise). Throws InputError naming `where`
/// when the size is zero, not a whole number of words, or over kMaxBundleBytes.
kj::Array<capnp::word> alignedWords(std::string_view bytes, const std::string& where);

/// Reader limits for a message of `words` words: traversal bounded by a small multiple of
/// its size, so that no pointer trick can make reading cost more than the bytes justify.
capnp::ReaderOptions readerOptions(size_t words);

/// Throws InputError unless `version` is kBundleFormatVersion, naming both versions.
void checkFormatVersion(uint64_t version, const std::string& where);

}  // namespace govmesh::engine
