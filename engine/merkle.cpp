#include "engine/merkle.h"

#include <bit>
#include <cstring>

#include "engine/sha256_batch.h"

namespace govmesh::lineage {

namespace {

uint64_t largestPowerOfTwoBelow(uint64_t n) {  // n >= 2
  return std::bit_floor(n - 1);
}

size_t tileLevelOffset(unsigned h) { return 2 * kTileLeaves - (2 * kTileLeaves >> h); }

const std::string& defaultSha256Backend() {
  // The list is in priority order for short messages; resolve once, the CPU does not change.
  static const std::string name = [] {
    auto avail = crypto::sha256AvailableBackends();
    return avail.empty() ? std::string("scalar") : avail.front();
  }();
  return name;
}

}  // namespace

Hash leafHash(std::string_view record) {
  std::string buf;
  buf.reserve(record.size() + 1);
  buf.push_back('\0');
  buf.append(record);
  return crypto::sha256One({reinterpret_cast<const uint8_t*>(buf.data()), buf.size()});
}

Hash nodeHash(const Hash& left, const Hash& right) {
  uint8_t buf[65];
  buf[0] = 0x01;
  std::memcpy(buf + 1, left.data(), 32);
  std::memcpy(buf + 33, right.data(), 32);
  return crypto::sha256One({buf, sizeof buf});
}

Hash emptyRoot() { return crypto::sha256One({nullptr, 0}); }

bool leafHashBatch(std::span<const std::string_view> records, std::span<Hash> out, std::string_view backend) {
  if (out.size() != records.size()) return false;
  if (records.empty()) return true;
  // The 0x00 domain byte must precede each record in one contiguous message, so the records are
  // copied once into an arena; a memcpy costs far less than the SHA-256 it feeds.
  size_t total = 0;
  for (auto r : records) total += r.size() + 1;
  thread_local std::vector<uint8_t> arena;
  thread_local std::vector<crypto::ByteView> views;
  arena.resize(total);
  views.resize(records.size());
  size_t at = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    arena[at] = 0x00;
    if (!records[i].empty()) std::memcpy(arena.data() + at + 1, records[i].data(), records[i].size());
    views[i] = {arena.data() + at, records[i].size() + 1};
    at += records[i].size() + 1;
  }
  std::string_view b = backend.empty() ? std::string_view(defaultSha256Backend()) : backend;
  return crypto::sha256Batch(b, views, out);
}

Hash rootFromLeaves(std::span<const Hash> leaves) {
  if (leaves.empty()) return emptyRoot();
  if (leaves.size() == 1) return leaves[0];
  uint64_t k = largestPowerOfTwoBelow(leaves.size());
  return nodeHash(rootFromLeaves(leaves.subspan(0, k)), rootFromLeaves(leaves.subspan(k)));
}

MerkleTree::MerkleTree(LeafReader reader) : reader_(std::move(reader)) {}

MerkleTree::MerkleTree() : inMemory_(true) {}

void MerkleTree::append(std::span<const Hash> leaves) {
  if (inMemory_) allLeaves_.insert(allLeaves_.end(), leaves.begin(), leaves.end());
  for (const Hash& leaf : leaves) {
    partial_.push_back(leaf);
    ++size_;
    if (partial_.size() < kTileLeaves) continue;
    // A tile completed: keep its hash and fold every subtree it completes above it, so that
    // upper_[h] always holds exactly the complete aligned subtrees of 2^(8+h) leaves.
    Hash t = rootFromLeaves(partial_);
    partial_.clear();
    size_t h = 0;
    for (;;) {
      if (upper_.size() <= h) upper_.emplace_back();
      upper_[h].push_back(t);
      if (upper_[h].size() % 2 != 0) break;
      t = nodeHash(upper_[h][upper_[h].size() - 2], upper_[h].back());
      ++h;
    }
  }
}

bool MerkleTree::loadTile(uint64_t tile) const {
  if (cachedTile_ == tile) return true;
  cachedNodes_.resize(2 * kTileLeaves - 1);
  uint64_t begin = tile * kTileLeaves;
  if (inMemory_) {
    std::memcpy(cachedNodes_.data(), allLeaves_.data() + begin, kTileLeaves * sizeof(Hash));
  } else if (!reader_ || !reader_(begin, begin + kTileLeaves, cachedNodes_.data())) {
    cachedTile_ = UINT64_MAX;
    return false;
  }
  for (unsigned h = 1; h <= kTileHeight; ++h) {
    size_t below = tileLevelOffset(h - 1), here = tileLevelOffset(h);
    for (size_t i = 0; i < (kTileLeaves >> h); ++i) {
      cachedNodes_[here + i] = nodeHash(cachedNodes_[below + 2 * i], cachedNodes_[below + 2 * i + 1]);
    }
  }
  cachedTile_ = tile;
  return true;
}

bool MerkleTree::perfectHash(unsigned height, uint64_t index, Hash& out) const {
  if (height >= kTileHeight) {
    size_t h = height - kTileHeight;
    if (h >= upper_.size() || index >= upper_[h].size()) return false;  // not a complete subtree
    out = upper_[h][index];
    return true;
  }
  uint64_t begin = index << height;
  uint64_t tile = begin / kTileLeaves;
  if (tile < size_ / kTileLeaves) {
    if (!loadTile(tile)) return false;
    out = cachedNodes_[tileLevelOffset(height) + (index - (tile << (kTileHeight - height)))];
    return true;
  }
  // Inside the partial tile, whose leaves are in memory.
  uint64_t off = begin - tile * kTileLeaves;
  uint64_t n = uint64_t{1} << height;
  if (off + n > partial_.size()) return false;
  out = rootFromLeaves(std::span<const Hash>(partial_).subspan(off, n));
  return true;
}

bool MerkleTree::rangeHash(uint64_t begin, uint64_t end, Hash& out) const {
  uint64_t n = end - begin;
  if (n == 0) {
    out = emptyRoot();
    return true;
  }
  // RFC 9162's split keeps every left subtree perfect and aligned, so the recursion bottoms out
  // in O(log n) stored subtrees.
  if (std::has_single_bit(n) && begin % n == 0) return perfectHash(std::countr_zero(n), begin / n, out);
  uint64_t k = largestPowerOfTwoBelow(n);
  Hash l, r;
  if (!rangeHash(begin, begin + k, l) || !rangeHash(begin + k, end, r)) return false;
  out = nodeHash(l, r);
  return true;
}

std::optional<Hash> MerkleTree::root(uint64_t size) const {
  if (size > size_) return std::nullopt;
  Hash h;
  if (!rangeHash(0, size, h)) return std::nullopt;
  return h;
}

std::optional<Hash> MerkleTree::leaf(uint64_t index) const {
  if (index >= size_) return std::nullopt;
  Hash h;
  if (!perfectHash(0, index, h)) return std::nullopt;
  return h;
}

bool MerkleTree::path(uint64_t m, uint64_t begin, uint64_t end, std::vector<Hash>& out) const {
  uint64_t n = end - begin;
  if (n == 1) return true;
  uint64_t k = largestPowerOfTwoBelow(n);
  Hash sibling;
  if (m < k) {
    if (!path(m, begin, begin + k, out) || !rangeHash(begin + k, end, sibling)) return false;
  } else {
    if (!path(m - k, begin + k, end, out) || !rangeHash(begin, begin + k, sibling)) return false;
  }
  out.push_back(sibling);
  return true;
}

bool MerkleTree::subproof(uint64_t m, uint64_t begin, uint64_t end, bool whole, std::vector<Hash>& out) const {
  uint64_t n = end - begin;
  if (m == n) {
    if (whole) return true;
    Hash h;
    if (!rangeHash(begin, end, h)) return false;
    out.push_back(h);
    return true;
  }
  uint64_t k = largestPowerOfTwoBelow(n);
  Hash h;
  if (m <= k) {
    if (!subproof(m, begin, begin + k, whole, out) || !rangeHash(begin + k, end, h)) return false;
  } else {
    if (!subproof(m - k, begin + k, end, false, out) || !rangeHash(begin, begin + k, h)) return false;
  }
  out.push_back(h);
  return true;
}

std::optional<std::vector<Hash>> MerkleTree::inclusionProof(uint64_t index, uint64_t size) const {
  if (index >= size || size > size_) return std::nullopt;
  std::vector<Hash> out;
  if (!path(index, 0, size, out)) return std::nullopt;
  return out;
}

std::optional<std::vector<Hash>> MerkleTree::consistencyProof(uint64_t size1, uint64_t size2) const {
  if (size1 > size2 || size2 > size_) return std::nullopt;
  std::vector<Hash> out;
  if (size1 == 0 || size1 == size2) return out;
  if (!subproof(size1, 0, size2, true, out)) return std::nullopt;
  return out;
}

bool verifyInclusion(uint64_t index, uint64_t size, const Hash& leaf, std::span<const Hash> path, const Hash& root) {
  // RFC 9162 §2.1.3.2, step by step.
  if (index >= size) return false;
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      r = nodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

bool verifyConsistency(uint64_t size1, uint64_t size2, const Hash& root1, const Hash& root2, std::span<const Hash> path) {
  if (size1 > size2) return false;
  if (size1 == size2) return path.empty() && root1 == root2;
  if (size1 == 0) return path.empty();
  // RFC 9162 §2.1.4.2, step by step.
  if (path.empty()) return false;
  std::vector<Hash> p;
  p.reserve(path.size() + 1);
  if (std::has_single_bit(size1)) p.push_back(root1);
  p.insert(p.end(), path.begin(), path.end());
  uint64_t fn = size1 - 1, sn = size2 - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = p[0], sr = p[0];
  for (size_t i = 1; i < p.size(); ++i) {
    const Hash& c = p[i];
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return fr == root1 && sr == root2 && sn == 0;
}

}  // namespace govmesh::lineage
