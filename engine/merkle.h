// RFC 9162 Merkle tree hashing for the lineage log (ARCHITECTURE.md, decision 7).
//
//   leaf hash  = SHA-256(0x00 ‖ record)
//   node hash  = SHA-256(0x01 ‖ left ‖ right)
//   MTH({})    = SHA-256("")
//   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
//
// Proof generation follows RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (PROOF/SUBPROOF); verification
// follows the iterative algorithms of §2.1.3.2 and §2.1.4.2 step by step, so that a proof made
// here verifies with any RFC 9162 (or RFC 6962) verifier and vice versa.
//
// Storage model. MerkleTree never holds every leaf hash: it keeps the hashes of complete
// 256-leaf tiles and of every complete aligned subtree above them (n/128 hashes in all, about
// 1/4 byte per leaf), plus the leaves of the current partial tile. Hashes below tile level are
// recomputed on demand from leaf hashes that a LeafReader fetches from storage (the log's
// leaf-hash side file), so the root of any prefix and any proof cost O(log n) hashes plus at
// most a couple of 8 KiB tile reads, never a rehash of the log.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/crypto_types.h"

namespace govmesh::lineage {

/// A tree hash (leaf, node or root).
using Hash = crypto::Sha256Digest;

/// log2 of the leaves per tile: subtrees of 2^kTileHeight leaves are the unit kept in memory.
inline constexpr unsigned kTileHeight = 8;
/// Leaves per tile (256, as in C2SP tlog-tiles).
inline constexpr uint64_t kTileLeaves = uint64_t{1} << kTileHeight;

/// SHA-256(0x00 ‖ record): the leaf hash of one record.
Hash leafHash(std::string_view record);
/// SHA-256(0x01 ‖ left ‖ right): an interior node.
Hash nodeHash(const Hash& left, const Hash& right);
/// MTH of the empty tree: SHA-256 of no bytes.
Hash emptyRoot();

/// Leaf hashes of many records at once with multi-buffer SHA-256 (`backend` as sha256Batch takes
/// it; empty picks the first available). Writes out[i] = leafHash(records[i]). Returns false,
/// writing nothing meaningful, when out.size() != records.size() or the backend fails.
[[nodiscard]] bool leafHashBatch(std::span<const std::string_view> records, std::span<Hash> out,
                                 std::string_view backend = {});

/// The reference MTH over leaf hashes held in memory (recursive RFC 9162 definition); for tests
/// and small trees.
Hash rootFromLeaves(std::span<const Hash> leaves);

/// Reads leaf hashes [begin, end) into out (end - begin entries). Returns false on an I/O error.
using LeafReader = std::function<bool(uint64_t begin, uint64_t end, Hash* out)>;

/// An append-only Merkle tree over leaf hashes stored elsewhere (see the storage model above).
/// Not thread-safe: callers serialize appends and queries (the lineage log holds a mutex).
class MerkleTree {
 public:
  /// A tree whose complete tiles are read back through `reader`. The reader is asked only for
  /// leaves that were appended before, and only for ranges inside one complete tile.
  explicit MerkleTree(LeafReader reader);
  /// A tree that keeps every leaf hash in memory (replay, tests, small logs).
  MerkleTree();

  /// Appends leaf hashes; the tree grows by leaves.size().
  void append(std::span<const Hash> leaves);
  /// Number of leaves.
  uint64_t size() const { return size_; }

  /// MTH of the first `size` leaves; nullopt when size > size() or the reader fails.
  std::optional<Hash> root(uint64_t size) const;
  /// Root of the whole tree (MTH of all leaves).
  std::optional<Hash> root() const { return root(size_); }
  /// The leaf hash at `index`; nullopt when out of range or the reader fails.
  std::optional<Hash> leaf(uint64_t index) const;
  /// RFC 9162 inclusion proof PATH(index, D[size]); nullopt when index >= size, size > size(),
  /// or the reader fails.
  std::optional<std::vector<Hash>> inclusionProof(uint64_t index, uint64_t size) const;
  /// RFC 9162 consistency proof PROOF(size1, D[size2]); empty when size1 == size2 or size1 == 0.
  /// nullopt when size1 > size2 or size2 > size().
  std::optional<std::vector<Hash>> consistencyProof(uint64_t size1, uint64_t size2) const;

 private:
  bool perfectHash(unsigned height, uint64_t index, Hash& out) const;
  bool rangeHash(uint64_t begin, uint64_t end, Hash& out) const;
  bool path(uint64_t m, uint64_t begin, uint64_t end, std::vector<Hash>& out) const;
  bool subproof(uint64_t m, uint64_t begin, uint64_t end, bool whole, std::vector<Hash>& out) const;
  bool loadTile(uint64_t tile) const;

  LeafReader reader_;
  bool inMemory_ = false;
  std::vector<Hash> allLeaves_;           // in-memory mode only
  uint64_t size_ = 0;
  std::vector<Hash> partial_;             // leaves of the current, incomplete tile
  std::vector<std::vector<Hash>> upper_;  // upper_[h][k]: subtree of 2^(kTileHeight+h) leaves
  // One-tile cache: every node of the last complete tile read (proofs touch one tile at most
  // twice, and replayed proofs of neighbouring records hit the same tile).
  mutable uint64_t cachedTile_ = UINT64_MAX;
  mutable std::vector<Hash> cachedNodes_;  // heap layout: level h at offset (512 - (512 >> h))
};

/// RFC 9162 §2.1.3.2: true when `path` proves that `leaf` is at `index` in the tree of `size`
/// leaves whose root is `root`.
bool verifyInclusion(uint64_t index, uint64_t size, const Hash& leaf, std::span<const Hash> path, const Hash& root);

/// RFC 9162 §2.1.4.2: true when `path` proves that the tree of size1 leaves (root1) is a prefix
/// of the tree of size2 leaves (root2). The RFC algorithm covers 0 < size1 < size2; at the edges
/// (as Go's tlog does) size1 == size2 needs an empty path and root1 == root2, and size1 == 0 an
/// empty path (every tree extends the empty one).
bool verifyConsistency(uint64_t size1, uint64_t size2, const Hash& root1, const Hash& root2, std::span<const Hash> path);

}  // namespace govmesh::lineage
