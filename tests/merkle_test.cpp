// RFC 9162 tree hashing (engine/merkle.h): the certificate-transparency reference roots, the
// tiled tree against the recursive definition at every size across tile boundaries, every
// inclusion and consistency proof verified by the RFC's iterative algorithms, and their
// corruptions rejected.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/merkle.h"
#include "engine/sha256_batch.h"

using namespace govmesh::lineage;

namespace {

std::string hex(const Hash& h) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : h) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

std::vector<Hash> randomLeaves(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Hash> out(n);
  for (auto& h : out) {
    std::string rec(rng() % 40, '\0');
    for (char& c : rec) c = static_cast<char>(rng());
    h = leafHash(rec);
  }
  return out;
}

// A tiled tree whose reader serves the leaves from a vector (as the log serves its side file).
MerkleTree tiledTree(const std::vector<Hash>& leaves, size_t appendChunk) {
  MerkleTree t([&leaves](uint64_t b, uint64_t e, Hash* out) {
    REQUIRE(e <= leaves.size());
    REQUIRE(e - b == kTileLeaves);  // the tree asks for whole tiles only
    std::copy(leaves.begin() + b, leaves.begin() + e, out);
    return true;
  });
  for (size_t i = 0; i < leaves.size(); i += appendChunk) {
    size_t n = std::min(appendChunk, leaves.size() - i);
    t.append(std::span<const Hash>(leaves).subspan(i, n));
  }
  return t;
}

}  // namespace

TEST_CASE("merkle: RFC 6962 reference roots (certificate-transparency test vectors)") {
  const std::vector<std::string> data = {"", std::string(1, '\0'), "\x10", "\x20\x21", "\x30\x31", "\x40\x41\x42\x43",
                                         "\x50\x51\x52\x53\x54\x55\x56\x57",
                                         "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};
  const char* roots[] = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  CHECK(hex(emptyRoot()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::vector<Hash> leaves;
  MerkleTree t;
  for (size_t i = 0; i < data.size(); ++i) {
    leaves.push_back(leafHash(data[i]));
    t.append(std::span<const Hash>(&leaves.back(), 1));
    CHECK(hex(rootFromLeaves(leaves)) == roots[i]);
    CHECK(hex(*t.root()) == roots[i]);
  }
}

TEST_CASE("merkle: batched leaf hashes equal single ones on every SHA-256 backend") {
  std::vector<std::string> recs;
  std::mt19937 rng(7);
  for (size_t i = 0; i < 37; ++i) {
    std::string r(rng() % 300, '\0');
    for (char& c : r) c = static_cast<char>(rng());
    recs.push_back(r);
  }
  for (const auto& backend : govmesh::crypto::sha256AvailableBackends()) {
    for (size_t n : {0, 1, 7, 8, 9, 16, 17, 37}) {
      std::vector<std::string_view> views(recs.begin(), recs.begin() + n);
      std::vector<Hash> out(n);
      REQUIRE(leafHashBatch(views, out, backend));
      for (size_t i = 0; i < n; ++i) CHECK_MESSAGE(out[i] == leafHash(recs[i]), "backend " << backend << " n " << n << " i " << i);
    }
  }
  std::vector<Hash> wrong(2);
  std::vector<std::string_view> one = {"x"};
  CHECK_FALSE(leafHashBatch(one, wrong));
}

TEST_CASE("merkle: tiled roots equal the recursive definition at every size") {
  auto leaves = randomLeaves(3 * kTileLeaves + 70, 11);
  for (size_t chunk : {1, 100, 1000}) {
    MerkleTree t = tiledTree(leaves, chunk);
    CHECK(t.size() == leaves.size());
    for (size_t n = 0; n <= leaves.size(); ++n) {
      auto r = t.root(n);
      REQUIRE(r);
      CHECK_MESSAGE(*r == rootFromLeaves(std::span<const Hash>(leaves).subspan(0, n)), "size " << n << " chunk " << chunk);
    }
    CHECK_FALSE(t.root(leaves.size() + 1));
    for (size_t i = 0; i < leaves.size(); i += 37) CHECK(*t.leaf(i) == leaves[i]);
  }
}

TEST_CASE("merkle: every inclusion proof verifies; corruptions do not") {
  auto leaves = randomLeaves(2 * kTileLeaves + 5, 12);
  MerkleTree t = tiledTree(leaves, 64);
  std::mt19937 rng(3);
  for (uint64_t size : {1ull, 2ull, 3ull, 7ull, 8ull, 255ull, 256ull, 257ull, 300ull, 512ull, 517ull}) {
    Hash root = *t.root(size);
    for (uint64_t i = 0; i < size; ++i) {
      auto p = t.inclusionProof(i, size);
      REQUIRE(p);
      REQUIRE_MESSAGE(verifyInclusion(i, size, leaves[i], *p, root), "index " << i << " size " << size);
      // Wrong leaf, wrong index, a flipped path bit, a truncated or extended path.
      CHECK_FALSE(verifyInclusion(i, size, leaves[(i + 1) % leaves.size()], *p, root));
      if (size > 1) CHECK_FALSE(verifyInclusion((i + 1) % size, size, leaves[i], *p, root));
      if (!p->empty()) {
        auto bad = *p;
        bad[rng() % bad.size()][rng() % 32] ^= 1;
        CHECK_FALSE(verifyInclusion(i, size, leaves[i], bad, root));
        bad = *p;
        bad.pop_back();
        CHECK_FALSE(verifyInclusion(i, size, leaves[i], bad, root));
      }
      auto longer = *p;
      longer.push_back(root);
      CHECK_FALSE(verifyInclusion(i, size, leaves[i], longer, root));
    }
  }
  CHECK_FALSE(t.inclusionProof(5, 5));
  CHECK_FALSE(t.inclusionProof(0, leaves.size() + 1));
}

TEST_CASE("merkle: every consistency proof verifies; corruptions do not") {
  auto leaves = randomLeaves(kTileLeaves + 80, 13);
  MerkleTree t = tiledTree(leaves, 50);
  std::mt19937 rng(5);
  auto check = [&](uint64_t m, uint64_t n) {
    auto p = t.consistencyProof(m, n);
    REQUIRE(p);
    Hash r1 = *t.root(m), r2 = *t.root(n);
    REQUIRE_MESSAGE(verifyConsistency(m, n, r1, r2, *p), "sizes " << m << " " << n);
    if (m > 0 && m < n) {
      auto bad = *p;
      bad[rng() % bad.size()][rng() % 32] ^= 0x80;
      CHECK_FALSE(verifyConsistency(m, n, r1, r2, bad));
      Hash wrong = r1;
      wrong[0] ^= 1;
      CHECK_FALSE(verifyConsistency(m, n, wrong, r2, *p));
      CHECK_FALSE(verifyConsistency(m, n, r1, wrong, *p));
      CHECK_FALSE(verifyConsistency(m, n, r1, r2, {}));
    }
  };
  for (uint64_t n = 0; n <= 70; ++n) {
    for (uint64_t m = 0; m <= n; ++m) check(m, n);
  }
  for (int i = 0; i < 300; ++i) {
    uint64_t n = rng() % (leaves.size() + 1), m = n ? rng() % (n + 1) : 0;
    check(m, n);
  }
  CHECK_FALSE(t.consistencyProof(5, 4));
  CHECK_FALSE(t.consistencyProof(1, leaves.size() + 1));
  Hash r = *t.root(3);
  CHECK(verifyConsistency(3, 3, r, r, {}));
  CHECK_FALSE(verifyConsistency(3, 3, r, *t.root(4), {}));
}
