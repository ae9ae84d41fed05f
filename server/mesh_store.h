// Signed policy bundles in etcd (issue 8): the key layout the publisher writes and every mesh
// node reads, chunked so that a bundle larger than etcd's request limit still travels.
//
// Layout under a prefix P (default "/govmesh"):
//
//   P/active                      the active pointer, JSON:
//                                 {"revision": N, "digest": "<hex SHA-256 of the content>",
//                                  "size": <file bytes>, "chunks": K, "sha256": "<hex of the file>"}
//   P/bundles/<rev, 20 digits>/<file sha256, hex>/<i, 6 digits>
//                                 chunk i of the signed bundle file of that revision (raw bytes);
//                                 content-addressed, so that a publish that died after writing
//                                 chunks, or two publishers racing on one revision, can never
//                                 mix the chunks of two different files
//
// Publishing (publishBundle) writes the chunks first and then, in ONE transaction guarded by a
// compare on the pointer's mod revision, the pointer (and, for a bundle that fits in one request,
// its single chunk too). So a reader that sees a pointer finds every chunk it names, and two
// publishers racing cannot interleave: the loser's compare fails and it re-reads. The same
// transaction deletes the chunks of revisions older than `keepRevisions` behind the new one.
//
// Reading (fetchActive) is linearizable: the pointer first, then the chunks, reassembled in order
// and checked against the pointer's size and file SHA-256, and the envelope's content digest
// against the pointer's digest. Nothing here verifies the authority's signature: that is the
// bundle manager's job (engine/bundle_manager.h) and the only path to activation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "server/etcd_client.h"

namespace govmesh::mesh {

/// The active pointer (see the layout above).
struct ActivePointer {
  uint64_t revision = 0;    ///< the bundle's own revision (as signed)
  std::string digestHex;    ///< hex SHA-256 of the bundle content (the signed digest)
  uint64_t size = 0;        ///< bytes of the bundle file
  uint64_t chunks = 0;      ///< how many chunk keys hold it
  std::string fileSha256;   ///< hex SHA-256 of the whole file (checked after reassembly)
};

/// The pointer's JSON (the value stored at P/active).
std::string encodePointer(const ActivePointer& p);
/// Parses a pointer; throws std::invalid_argument naming the field that is missing or wrong.
ActivePointer decodePointer(std::string_view json);

/// The key of the active pointer under `prefix` ("/govmesh" -> "/govmesh/active").
std::string pointerKey(const std::string& prefix);
/// The key prefix of everything stored for a revision ("/govmesh/bundles/00000000000000000007/").
std::string revisionPrefix(const std::string& prefix, uint64_t revision);
/// The key prefix of the chunks of one file of `revision` (`fileSha256`: hex).
std::string chunkPrefix(const std::string& prefix, uint64_t revision, const std::string& fileSha256);
/// The key of chunk `index` of that file.
std::string chunkKey(const std::string& prefix, uint64_t revision, const std::string& fileSha256, uint64_t index);

/// How to publish.
struct PublishOptions {
  std::string prefix = "/govmesh";
  /// etcd's --max-request-bytes (its default, 1.5 MiB). A bundle that fits in one request with
  /// room for the pointer is written in one transaction; a larger one is chunked below it.
  uint64_t maxRequestBytes = 1572864;
  /// Chunks of older revisions kept (the rest are deleted in the pointer's transaction).
  uint64_t keepRevisions = 4;
  /// Refuse a revision that is not newer than the published one (off only to publish a bad
  /// bundle in tests).
  bool requireNewer = true;
};

/// What a publish did.
struct PublishResult {
  ActivePointer pointer;
  int64_t etcdRevision = 0;  ///< the revision of the pointer's transaction
  uint64_t chunks = 0;       ///< chunk keys written
  uint64_t requests = 0;     ///< etcd requests it took (chunks, then the transaction)
};

/// Publishes the signed bundle file `bytes` (its revision and digest are read from the file).
/// Throws std::invalid_argument for bytes that are not a bundle file or a revision that is not
/// newer than the published one, and etcd::Error when etcd cannot be reached or refuses.
PublishResult publishBundle(etcd::Client& client, std::string_view bytes, const PublishOptions& options);

/// Publishes `bytes` under an explicit pointer (revision and digest as given, not read from the
/// bytes): how tests publish a tampered bundle. Same errors as publishBundle.
PublishResult publishRaw(etcd::Client& client, std::string_view bytes, uint64_t revision, std::string digestHex,
                         const PublishOptions& options);

/// The active bundle as read from etcd.
struct FetchedBundle {
  ActivePointer pointer;
  int64_t pointerModRevision = 0;  ///< the etcd revision that wrote the pointer
  int64_t headerRevision = 0;      ///< the store's revision at the pointer read (watch from +1)
  std::string bytes;               ///< the reassembled bundle file
};

/// Reads the pointer linearizably and, when present, the bundle it names. nullopt when nothing
/// was published. Throws etcd::Error when etcd cannot answer, and std::invalid_argument when
/// the stored bundle does not match its pointer (missing chunk, wrong size or digest): both
/// leave the caller's active bundle as it is.
std::optional<FetchedBundle> fetchActive(etcd::Client& client, const std::string& prefix);

/// Reads only the pointer, linearizably (the mesh node's freshness probe). nullopt when absent;
/// `modRevision` and `headerRevision` receive the pointer's and the store's revisions.
std::optional<ActivePointer> readPointer(etcd::Client& client, const std::string& prefix, int64_t* modRevision,
                                         int64_t* headerRevision);

/// Fetches the chunks named by `pointer` and checks them (the second half of fetchActive).
std::string fetchChunks(etcd::Client& client, const std::string& prefix, const ActivePointer& pointer);

}  // namespace govmesh::mesh
