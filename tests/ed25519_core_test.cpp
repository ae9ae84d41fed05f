// Unit tests of the portable Ed25519 core (kernels/cuda/ed25519_*.h, the code the CPU `single`
// backend and the CUDA threads run): field and scalar arithmetic, strict decoding, small-order
// points, RFC 8032 vectors, and agreement with OpenSSL on honest signatures and their corruptions.
#include <doctest/doctest.h>
#include <openssl/bn.h>
#include <openssl/evp.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/ed25519_verify.h"
#include "kernels/cuda/ed25519_core.h"
#include "tests/support/hex.h"

using namespace govmesh::kernels;

namespace {

using govmesh::testing::fromHex;

std::vector<uint8_t> feBytes(const Fe& f) {
  std::vector<uint8_t> out(32);
  feToBytes(out.data(), f);
  return out;
}

Fe randomFe(std::mt19937_64& rng) {
  uint8_t b[32];
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  b[31] &= 0x7f;
  return feFromBytes(b);
}

// p - 1 as bytes: 0xec, 0xff * 30, 0x7f.
std::vector<uint8_t> pMinus(int k) {
  std::vector<uint8_t> b(32, 0xff);
  b[0] = static_cast<uint8_t>(0xed - k);
  b[31] = 0x7f;
  return b;
}

/// BIGNUM from little-endian bytes.
BIGNUM* bnFromLe(const uint8_t* b, int len) { return BN_lebin2bn(b, len, nullptr); }

std::vector<uint8_t> bnToLe32(const BIGNUM* bn) {
  std::vector<uint8_t> out(32);
  BN_bn2lebinpad(bn, out.data(), 32);
  return out;
}

const uint8_t kLBytes[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                             0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};

}  // namespace

TEST_CASE("field: canonical encodings, p - 1 + 1 = 0, inverse") {
  const auto pm1 = pMinus(1);
  const Fe a = feFromBytes(pm1.data());
  CHECK(feIsZero(feAdd(a, feOne())));
  CHECK(feBytes(feAdd(a, feOne())) == std::vector<uint8_t>(32, 0));
  CHECK(feBytesCanonical(pm1.data()));
  auto p = pMinus(0);
  CHECK_FALSE(feBytesCanonical(p.data()));
  // p + 3 loads as 3 (mod p) but is not canonical.
  auto p3 = pMinus(-3);
  CHECK_FALSE(feBytesCanonical(p3.data()));
  CHECK(feBytes(feFromBytes(p3.data()))[0] == 3);
  auto allOnes = std::vector<uint8_t>(32, 0xff);
  CHECK_FALSE(feBytesCanonical(allOnes.data()));
  // 0 - 1 = p - 1.
  CHECK(feBytes(feSub(feZero(), feOne())) == pm1);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    const Fe x = randomFe(rng), y = randomFe(rng);
    if (feIsZero(x)) continue;
    CHECK(feEqual(feMul(x, feInvert(x)), feOne()));
    CHECK(feEqual(feSq(x), feMul(x, x)));
    CHECK(feEqual(feMul(feAdd(x, y), feSub(x, y)), feSub(feSq(x), feSq(y))));
    // Square roots as decoding takes them: r = u^((p+3)/8) = u u^((p-5)/8) has r^2 = +-u.
    const Fe xx = feSq(x);
    Fe r = feMul(xx, fePow22523(xx));
    if (!feEqual(feSq(r), xx)) r = feMul(r, feSqrtM1());
    CHECK(feEqual(feSq(r), xx));
  }
  CHECK(feEqual(feSq(feSqrtM1()), feNeg(feOne())));
}

TEST_CASE("scalar: reduction and products mod L against OpenSSL BIGNUM") {
  BN_CTX* ctx = BN_CTX_new();
  BIGNUM* l = bnFromLe(kLBytes, 32);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 500; ++i) {
    uint8_t wide[64];
    for (auto& b : wide) b = static_cast<uint8_t>(rng());
    if (i == 0) std::memset(wide, 0xff, 64);
    if (i == 1) std::memset(wide, 0, 64);
    BIGNUM* w = bnFromLe(wide, 64);
    BIGNUM* expect = BN_new();
    BN_nnmod(expect, w, l, ctx);
    uint8_t got[32];
    scalarToBytes(got, scalarReduce512(wide));
    CHECK(std::vector<uint8_t>(got, got + 32) == bnToLe32(expect));
    // a b mod L and a + b mod L for a, b < L.
    uint8_t aBytes[32], bBytes[32];
    scalarToBytes(aBytes, scalarReduce512(wide));
    for (auto& b : wide) b = static_cast<uint8_t>(rng());
    scalarToBytes(bBytes, scalarReduce512(wide));
    BIGNUM* a = bnFromLe(aBytes, 32);
    BIGNUM* b = bnFromLe(bBytes, 32);
    BN_mod_mul(expect, a, b, l, ctx);
    scalarToBytes(got, scalarMul(scalarFromBytes(aBytes), scalarFromBytes(bBytes)));
    CHECK(std::vector<uint8_t>(got, got + 32) == bnToLe32(expect));
    BN_mod_add(expect, a, b, l, ctx);
    scalarToBytes(got, scalarAdd(scalarFromBytes(aBytes), scalarFromBytes(bBytes)));
    CHECK(std::vector<uint8_t>(got, got + 32) == bnToLe32(expect));
    BN_free(a);
    BN_free(b);
    BN_free(w);
    BN_free(expect);
  }
  BN_free(l);
  BN_CTX_free(ctx);
}

TEST_CASE("scalar: S < L boundary") {
  uint8_t s[32];
  std::memcpy(s, kLBytes, 32);
  CHECK_FALSE(scalarBytesCanonical(s));  // L
  s[0] -= 1;
  CHECK(scalarBytesCanonical(s));  // L - 1
  s[0] += 2;
  CHECK_FALSE(scalarBytesCanonical(s));  // L + 1
  std::memset(s, 0xff, 32);
  CHECK_FALSE(scalarBytesCanonical(s));
  std::memset(s, 0, 32);
  CHECK(scalarBytesCanonical(s));
}

TEST_CASE("points: strict decoding and small order") {
  GeP3 p;
  // The base point decodes and re-encodes to itself, and is not of small order.
  const auto b = fromHex("5866666666666666666666666666666666666666666666666666666666666666");
  REQUIRE(geDecode(p, b.data()));
  uint8_t enc[32];
  geEncode(enc, p);
  CHECK(std::vector<uint8_t>(enc, enc + 32) == b);
  CHECK_FALSE(geIsSmallOrder(p));
  geEncode(enc, ed25519BasePoint());
  CHECK(std::vector<uint8_t>(enc, enc + 32) == b);
  // y >= p is rejected, even where y - p would decode (y = p + 1 is 1, the identity).
  auto pPlus1 = pMinus(-1);
  CHECK_FALSE(geDecode(p, pPlus1.data()));
  // x = 0 with the sign bit set: y = 1 (identity) and y = -1 (order 2).
  auto id = fromHex("0100000000000000000000000000000000000000000000000000000000000000");
  REQUIRE(geDecode(p, id.data()));
  CHECK(geIsIdentity(p));
  id[31] |= 0x80;
  CHECK_FALSE(geDecode(p, id.data()));
  auto minus1 = pMinus(1);
  REQUIRE(geDecode(p, minus1.data()));
  CHECK(geIsSmallOrder(p));
  minus1[31] |= 0x80;
  CHECK_FALSE(geDecode(p, minus1.data()));
  // The eight small-order points (orders 1, 2, 4, 8) all decode and are small order.
  for (const char* hex : {"0100000000000000000000000000000000000000000000000000000000000000",
                          "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                          "0000000000000000000000000000000000000000000000000000000000000000",
                          "0000000000000000000000000000000000000000000000000000000000000080",
                          "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
                          "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
                          "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
                          "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"}) {
    CAPTURE(hex);
    const auto bytes = fromHex(hex);
    REQUIRE(geDecode(p, bytes.data()));
    CHECK(geIsSmallOrder(p));
  }
  // y = 2 has no x (2^2 - 1 over 4d + 1 is not a square).
  auto two = fromHex("0200000000000000000000000000000000000000000000000000000000000000");
  CHECK_FALSE(geDecode(p, two.data()));
  // Random canonical encodings that decode re-encode to themselves.
  std::mt19937_64 rng(3);
  int decoded = 0;
  for (int i = 0; i < 200; ++i) {
    uint8_t e[32];
    for (auto& x : e) x = static_cast<uint8_t>(rng());
    if (!geDecode(p, e)) continue;
    ++decoded;
    geEncode(enc, p);
    CHECK(std::memcmp(enc, e, 32) == 0);
  }
  CHECK(decoded > 60);  // about half of the random y have a root
}

TEST_CASE("points: double-scalar multiplication against repeated addition") {
  std::mt19937_64 rng(5);
  const GeP3 b = ed25519BasePoint();
  for (int i = 0; i < 20; ++i) {
    const uint64_t a = rng() % 5000, s = rng() % 5000;
    // [a](3B) + [s]B == [3a + s]B, the right side by repeated addition.
    const GeP3 threeB = geToP3(geAdd(geToP3(geDouble(b)), geToCached(b)));
    const GeP3 got = geDoubleScalarMulBase(Scalar{{a, 0, 0, 0}}, threeB, Scalar{{s, 0, 0, 0}});
    GeP3 want = geIdentity();
    const GeCached bc = geToCached(b);
    for (uint64_t j = 0; j < 3 * a + s; ++j) want = geToP3(geAdd(want, bc));
    uint8_t x[32], y[32];
    geEncode(x, got);
    geEncode(y, want);
    CHECK(std::memcmp(x, y, 32) == 0);
  }
  // [L]B is the identity.
  const GeP3 lb = geDoubleScalarMulBase(Scalar{{0, 0, 0, 0}}, b, scalarFromBytes(kLBytes));
  CHECK(geIsIdentity(lb));
}

TEST_CASE("w-NAF recoding reconstructs the scalar") {
  std::mt19937_64 rng(9);
  for (int w = 2; w <= 8; ++w) {
    for (int i = 0; i < 50; ++i) {
      const uint64_t s[4] = {rng(), rng(), rng(), rng() >> 3};
      int8_t naf[256];
      scalarToWnaf(naf, s, w);
      // Rebuild sum naf[i] 2^i word by word, carrying signed 128-bit sums.
      uint64_t r[4] = {0, 0, 0, 0};
      __int128 carry = 0;
      for (int word = 0; word < 4; ++word) {
        __int128 sum = carry;
        for (int bit = 0; bit < 64; ++bit) sum += static_cast<__int128>(naf[64 * word + bit]) * (static_cast<__int128>(1) << bit);
        r[word] = static_cast<uint64_t>(sum);
        carry = sum >> 64;
      }
      CHECK(carry == 0);
      CHECK((r[0] == s[0] && r[1] == s[1] && r[2] == s[2] && r[3] == s[3]));
      for (int j = 0; j < 256; ++j) {
        if (naf[j] == 0) continue;
        CHECK((naf[j] & 1) != 0);
        CHECK(std::abs(naf[j]) < (1 << (w - 1)));
      }
    }
  }
}

TEST_CASE("RFC 8032 test vectors 1-3") {
  struct Vector {
    const char* pk;
    const char* msg;
    const char* sig;
  };
  const Vector vectors[] = {
      {"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
      {"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
      {"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
       "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
  };
  for (const Vector& v : vectors) {
    CAPTURE(v.pk);
    const auto pk = fromHex(v.pk), msg = fromHex(v.msg), sig = fromHex(v.sig);
    CHECK(ed25519VerifySingle(pk.data(), pk.size(), sig.data(), sig.size(), msg.data(), msg.size()));
    // Lengths: a signature or key one byte short or long is invalid.
    CHECK_FALSE(ed25519VerifySingle(pk.data(), 31, sig.data(), sig.size(), msg.data(), msg.size()));
    CHECK_FALSE(ed25519VerifySingle(pk.data(), pk.size(), sig.data(), 63, msg.data(), msg.size()));
    CHECK_FALSE(ed25519VerifySingle(nullptr, 0, nullptr, 0, msg.data(), msg.size()));
    // S + L: the same equation, but S not canonical.
    auto big = sig;
    unsigned carry = 0;
    for (int i = 0; i < 32; ++i) {
      const unsigned s = big[32 + i] + kLBytes[i] + carry;
      big[32 + i] = static_cast<uint8_t>(s);
      carry = s >> 8;
    }
    CHECK_FALSE(ed25519VerifySingle(pk.data(), pk.size(), big.data(), big.size(), msg.data(), msg.size()));
  }
}

TEST_CASE("a small-order key is rejected even when the equation holds") {
  // A and R of small order, S = 0: [8](0 B - R - k A) = 0 for every k, yet A is rejected.
  const auto a = fromHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05");
  auto sig = fromHex("0100000000000000000000000000000000000000000000000000000000000000");
  sig.resize(64, 0);
  const uint8_t msg[1] = {0x42};
  CHECK_FALSE(ed25519VerifySingle(a.data(), 32, sig.data(), 64, msg, 1));
  Ed25519Prepared p;
  REQUIRE(ed25519Prepare(a.data(), 32, sig.data(), 64, msg, 1, p));
  CHECK_FALSE(ed25519VerifyPrepared(p));
}

TEST_CASE("our verdicts equal OpenSSL's on honest signatures and their one-bit corruptions") {
  std::mt19937_64 rng(2024);
  int checked = 0;
  for (int k = 0; k < 40; ++k) {
    EVP_PKEY* key = nullptr;
    EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
    REQUIRE(EVP_PKEY_keygen_init(kctx) == 1);
    REQUIRE(EVP_PKEY_keygen(kctx, &key) == 1);
    EVP_PKEY_CTX_free(kctx);
    uint8_t pk[32];
    size_t pkLen = 32;
    REQUIRE(EVP_PKEY_get_raw_public_key(key, pk, &pkLen) == 1);
    for (int m = 0; m < 5; ++m) {
      std::vector<uint8_t> msg(rng() % 200);
      for (auto& x : msg) x = static_cast<uint8_t>(rng());
      uint8_t sig[64];
      size_t sigLen = 64;
      EVP_MD_CTX* sctx = EVP_MD_CTX_new();
      REQUIRE(EVP_DigestSignInit(sctx, nullptr, nullptr, nullptr, key) == 1);
      REQUIRE(EVP_DigestSign(sctx, sig, &sigLen, msg.data(), msg.size()) == 1);
      EVP_MD_CTX_free(sctx);
      auto check = [&](const uint8_t* p, const uint8_t* s, const std::vector<uint8_t>& mm, const char* what) {
        govmesh::crypto::SigInput in{{p, 32}, {s, 64}, {mm.data(), mm.size()}};
        uint8_t theirs = 0;
        REQUIRE(govmesh::crypto::ed25519Verify("openssl", std::span(&in, 1), std::span(&theirs, 1)));
        CAPTURE(what);
        CHECK(govmesh::crypto::ed25519VerifyOne(in) == (theirs == 1));
        ++checked;
      };
      check(pk, sig, msg, "honest");
      for (int flip = 0; flip < 6; ++flip) {
        uint8_t s2[64], p2[32];
        std::memcpy(s2, sig, 64);
        std::memcpy(p2, pk, 32);
        auto m2 = msg;
        const int bit = static_cast<int>(rng() % 256);
        switch (flip % 4) {
          case 0:
            if (m2.empty()) continue;
            m2[rng() % m2.size()] ^= static_cast<uint8_t>(1 << (rng() % 8));
            check(pk, sig, m2, "msg bit");
            break;
          case 1:
            s2[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
            check(pk, s2, msg, "R bit");
            break;
          case 2:
            s2[32 + bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
            check(pk, s2, msg, "S bit");
            break;
          default:
            p2[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
            check(p2, sig, msg, "A bit");
        }
      }
    }
    EVP_PKEY_free(key);
  }
  CHECK(checked > 1000);
}
