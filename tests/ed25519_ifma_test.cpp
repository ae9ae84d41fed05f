// The AVX-512 IFMA Ed25519 backend (kernels/simd/ed25519_ifma.cpp) against the scalar reference
// (ed25519VerifyPrepared) lane by lane, and against OpenSSL's verdicts where the two criteria
// agree (honest signatures and their one-bit corruptions). Skipped on a CPU without IFMA.
#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cuda/ed25519_core.h"
#include "kernels/simd/ed25519_ifma.h"
#include "tests/support/hex.h"

namespace {

using govmesh::kernels::Ed25519Prepared;

const char* const kTestData = "../shared/testdata/crypto";

using govmesh::testing::fromHex;

/// One signature as received, with the verdict we expect where the test knows it.
struct Case {
  std::vector<uint8_t> pk, sig, msg;
  std::string label;
};

/// The IFMA verdict of every case (0 when preparation already rejects it, as in every backend),
/// computed as one batch so that cases of all kinds share vectors.
std::vector<uint8_t> ifmaVerdicts(const std::vector<Case>& cases) {
  std::vector<Ed25519Prepared> prepared;
  std::vector<size_t> where;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    Ed25519Prepared p;
    if (govmesh::kernels::ed25519Prepare(c.pk.data(), c.pk.size(), c.sig.data(), c.sig.size(), c.msg.data(),
                                         c.msg.size(), p)) {
      prepared.push_back(p);
      where.push_back(i);
    }
  }
  std::vector<uint8_t> lanes(prepared.size(), 0xee);
  govmesh::simd::ed25519VerifyPreparedIfma(prepared.data(), prepared.size(), lanes.data());
  std::vector<uint8_t> out(cases.size(), 0);
  for (size_t j = 0; j < where.size(); ++j) out[where[j]] = lanes[j];
  return out;
}

bool referenceVerdict(const Case& c) {
  return govmesh::kernels::ed25519VerifySingle(c.pk.data(), c.pk.size(), c.sig.data(), c.sig.size(), c.msg.data(),
                                                c.msg.size());
}

bool opensslVerdict(const Case& c) {
  EVP_PKEY* key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, c.pk.data(), c.pk.size());
  if (key == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
                  EVP_DigestVerify(ctx, c.sig.data(), c.sig.size(), c.msg.data(), c.msg.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok;
}

/// Honest signatures from seeded keys, every fifth one left intact and the others with one bit
/// flipped in the message, R, S or A.
std::vector<Case> honestAndCorrupted(uint64_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<Case> cases;
  for (size_t i = 0; i < n; ++i) {
    uint8_t sk[32];
    for (auto& b : sk) b = static_cast<uint8_t>(rng());
    EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, sk, sizeof sk);
    REQUIRE(key != nullptr);
    Case c;
    c.pk.resize(32);
    size_t len = 32;
    REQUIRE(EVP_PKEY_get_raw_public_key(key, c.pk.data(), &len) == 1);
    c.msg.resize(1 + rng() % 200);
    for (auto& b : c.msg) b = static_cast<uint8_t>(rng());
    c.sig.resize(64);
    len = 64;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    REQUIRE(EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) == 1);
    REQUIRE(EVP_DigestSign(ctx, c.sig.data(), &len, c.msg.data(), c.msg.size()) == 1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    const unsigned bit = static_cast<unsigned>(rng() % 256);
    const uint8_t flip = static_cast<uint8_t>(1u << (bit % 8));
    switch (i % 5) {
      case 0: c.label = "honest"; break;
      case 1: c.label = "msg bit"; c.msg[rng() % c.msg.size()] ^= flip; break;
      case 2: c.label = "R bit " + std::to_string(bit); c.sig[bit / 8] ^= flip; break;
      case 3: c.label = "S bit " + std::to_string(bit); c.sig[32 + bit / 8] ^= flip; break;
      default: c.label = "A bit " + std::to_string(bit); c.pk[bit / 8] ^= flip; break;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

/// A 32-byte encoding from hex.
std::vector<uint8_t> enc(const char* hex) { return fromHex(hex); }

/// Cases built on prepared inputs directly: s and k are chosen (not hashed) so that the
/// cofactored equation holds and only the decoding or small-order rules can reject.
struct PreparedCase {
  Ed25519Prepared p;
  bool expected;
  std::string label;
};

Ed25519Prepared preparedOf(const std::vector<uint8_t>& a, const std::vector<uint8_t>& r) {
  Ed25519Prepared p{};
  std::copy(a.begin(), a.end(), p.a);
  std::copy(r.begin(), r.end(), p.r);
  return p;  // s = k = 0: [8](0·B - R - 0·A) = [8](-R)
}

// The eight points of small order (y = 1, y = -1, y = 0 twice, four of order 8), canonical.
const char* const kSmallOrder[] = {
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
};

std::vector<PreparedCase> edgeCases() {
  // An honest public key (RFC 8032 test 1) as the A that is not of small order.
  const auto honestA = enc("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const auto identity = enc(kSmallOrder[0]);
  std::vector<PreparedCase> out;
  for (const char* s : kSmallOrder) {
    // Small-order A is rejected although the equation holds.
    out.push_back({preparedOf(enc(s), identity), false, std::string("small-order A ") + s});
    // Small-order R is allowed: [8](-R) is the identity.
    out.push_back({preparedOf(honestA, enc(s)), true, std::string("small-order R ") + s});
  }
  // Non-canonical y (y >= p): y = p + 1 would decode to the identity if reduced, y = p to (0, 0).
  const char* const nonCanonical[] = {
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p + 1
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p
      "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // 2^255 - 1
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  // p + 1, sign set
  };
  for (const char* s : nonCanonical) {
    out.push_back({preparedOf(honestA, enc(s)), false, std::string("non-canonical R ") + s});
    out.push_back({preparedOf(enc(s), identity), false, std::string("non-canonical A ") + s});
  }
  // x = 0 with the sign bit set (the identity and (0, -1) with a "negative" zero).
  const char* const negativeZero[] = {
      "0100000000000000000000000000000000000000000000000000000000000080",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  };
  for (const char* s : negativeZero) {
    out.push_back({preparedOf(honestA, enc(s)), false, std::string("x = 0, sign set, R ") + s});
    out.push_back({preparedOf(enc(s), identity), false, std::string("x = 0, sign set, A ") + s});
  }
  // y = 2 has no x on the curve ((y^2 - 1)/(d·y^2 + 1) is not a square).
  const auto noRoot = enc("0200000000000000000000000000000000000000000000000000000000000000");
  out.push_back({preparedOf(honestA, noRoot), false, "R without square root"});
  out.push_back({preparedOf(noRoot, identity), false, "A without square root"});
  // The trivially valid one: s = k = 0 and R the identity.
  out.push_back({preparedOf(honestA, identity), true, "s = k = 0, R = identity"});
  return out;
}

std::vector<Case> speccheckCases() {
  std::ifstream in(std::string(kTestData) + "/speccheck/cases.txt");
  std::vector<Case> cases;
  std::string line;
  std::getline(in, line);  // the count
  Case c;
  while (std::getline(in, line)) {
    if (line.rfind("msg=", 0) == 0) c.msg = fromHex(line.substr(4));
    if (line.rfind("pbk=", 0) == 0) c.pk = fromHex(line.substr(4));
    if (line.rfind("sig=", 0) == 0) {
      c.sig = fromHex(line.substr(4));
      c.label = "speccheck " + std::to_string(cases.size());
      cases.push_back(c);
    }
  }
  return cases;
}

/// ZIP 215's 196 cases: small-order A (canonical or not) and R with S = 0, message "Zcash".
std::vector<Case> zip215Cases() {
  std::ifstream in(std::string(kTestData) + "/zip215/zip215.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<Case> cases;
  const std::string msg = "Zcash";
  size_t pos = 0;
  auto field = [&](const char* key) {
    pos = text.find(key, pos);
    if (pos == std::string::npos) return std::string();
    const size_t open = text.find('"', text.find(':', pos)) + 1;
    pos = text.find('"', open);
    return text.substr(open, pos - open);
  };
  while (true) {
    const std::string vk = field("\"vk_bytes\"");
    const std::string sig = field("\"sig_bytes\"");
    if (vk.empty() || sig.empty()) break;
    cases.push_back({fromHex(vk), fromHex(sig), std::vector<uint8_t>(msg.begin(), msg.end()),
                     "zip215 " + std::to_string(cases.size())});
  }
  return cases;
}

/// djb's sign.input: sk:pk:msg:sig‖msg per line, all valid.
std::vector<Case> djbCases(size_t limit) {
  std::ifstream in(std::string(kTestData) + "/djb_sign_input/sign.input.txt");
  std::vector<Case> cases;
  std::string line;
  while (cases.size() < limit && std::getline(in, line)) {
    std::vector<std::string> parts;
    std::stringstream ls(line);
    std::string part;
    while (std::getline(ls, part, ':')) parts.push_back(part);
    if (parts.size() < 4) continue;
    Case c;
    c.pk = fromHex(parts[1]);
    c.msg = fromHex(parts[2]);
    c.sig = fromHex(parts[3].substr(0, 128));
    c.label = "djb " + std::to_string(cases.size());
    cases.push_back(std::move(c));
  }
  return cases;
}

}  // namespace

TEST_CASE("ed25519 ifma: honest and corrupted signatures, every batch size") {
  if (!govmesh::simd::cpuHasIfma()) {
    MESSAGE("SKIPPED: this CPU has no AVX-512 IFMA");
    return;
  }
  const uint64_t seed = 20261126;
  const std::vector<Case> all = honestAndCorrupted(seed, 1000);
  for (const size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{17}, size_t{1000}}) {
    const std::vector<Case> cases(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
    const std::vector<uint8_t> got = ifmaVerdicts(cases);
    size_t accepted = 0;
    for (size_t i = 0; i < n; ++i) {
      INFO("seed " << seed << ", batch " << n << ", case " << i << " (" << cases[i].label << ")");
      REQUIRE(got[i] <= 1);
      CHECK(static_cast<bool>(got[i]) == referenceVerdict(cases[i]));
      CHECK(static_cast<bool>(got[i]) == opensslVerdict(cases[i]));
      accepted += got[i];
    }
    if (n >= 5) CHECK(accepted >= n / 5);  // the honest fifth at least
  }
}

TEST_CASE("ed25519 ifma: decoding and small-order edge cases, mixed into shared vectors") {
  if (!govmesh::simd::cpuHasIfma()) {
    MESSAGE("SKIPPED: this CPU has no AVX-512 IFMA");
    return;
  }
  std::vector<PreparedCase> cases = edgeCases();
  // Shuffle among honest-looking lanes so that each edge case shares a vector with others.
  const uint64_t seed = 7;
  std::mt19937_64 rng(seed);
  std::shuffle(cases.begin(), cases.end(), rng);
  std::vector<Ed25519Prepared> in;
  for (const auto& c : cases) in.push_back(c.p);
  std::vector<uint8_t> out(in.size(), 0xee);
  govmesh::simd::ed25519VerifyPreparedIfma(in.data(), in.size(), out.data());
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("shuffle seed " << seed << ", lane " << i << ": " << cases[i].label);
    CHECK(out[i] == (cases[i].expected ? 1 : 0));
    CHECK(static_cast<bool>(out[i]) == govmesh::kernels::ed25519VerifyPrepared(cases[i].p));
  }
}

TEST_CASE("ed25519 ifma: scalars outside the contract are denied, never read past the tables") {
  if (!govmesh::simd::cpuHasIfma()) {
    MESSAGE("SKIPPED: this CPU has no AVX-512 IFMA");
    return;
  }
  const std::vector<Case> djb = djbCases(3);
  REQUIRE(djb.size() == 3);
  std::vector<Ed25519Prepared> in(3);
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE(govmesh::kernels::ed25519Prepare(djb[i].pk.data(), 32, djb[i].sig.data(), 64, djb[i].msg.data(),
                                             djb[i].msg.size(), in[i]));
  }
  const uint8_t order[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                             0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                             0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};  // L
  // k + L (still below 2^253 when k < 2^253 - L) must give k's verdict: [8] kills the torsion.
  Ed25519Prepared shifted = in[0];
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    const unsigned sum = shifted.k[i] + order[i] + carry;
    shifted.k[i] = static_cast<uint8_t>(sum);
    carry = sum >> 8;
  }
  Ed25519Prepared sIsL = in[1];
  std::copy(order, order + 32, sIsL.s);
  Ed25519Prepared kTooBig = in[2];
  kTooBig.k[31] |= 0xe0;
  std::vector<Ed25519Prepared> batch = {in[0], in[1], in[2], sIsL, kTooBig};
  const bool shiftFits = carry == 0 && shifted.k[31] < 0x20;
  if (shiftFits) batch.push_back(shifted);
  std::vector<uint8_t> out(batch.size(), 0xee);
  govmesh::simd::ed25519VerifyPreparedIfma(batch.data(), batch.size(), out.data());
  CHECK(out[0] == 1);
  CHECK(out[1] == 1);
  CHECK(out[2] == 1);
  CHECK(out[3] == 0);  // s = L
  CHECK(out[4] == 0);  // k >= 2^253
  if (shiftFits) CHECK(out[5] == 1);
}

TEST_CASE("ed25519 ifma: speccheck, ZIP 215 and djb vectors") {
  if (!govmesh::simd::cpuHasIfma()) {
    MESSAGE("SKIPPED: this CPU has no AVX-512 IFMA");
    return;
  }
  const std::vector<Case> spec = speccheckCases();
  REQUIRE(spec.size() == 12);
  // Our criterion (cofactored, strict decoding, small-order A rejected): cases 0 and 1 have a
  // small-order A, 6 and 7 have S >= L, 8..11 encode x = 0 with the sign bit set.
  const uint8_t expected[12] = {0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  const std::vector<uint8_t> got = ifmaVerdicts(spec);
  for (size_t i = 0; i < spec.size(); ++i) {
    INFO(spec[i].label);
    CHECK(got[i] == expected[i]);
    CHECK(static_cast<bool>(got[i]) == referenceVerdict(spec[i]));
  }

  const std::vector<Case> zip = zip215Cases();
  REQUIRE(zip.size() == 196);
  const std::vector<uint8_t> zipGot = ifmaVerdicts(zip);
  for (size_t i = 0; i < zip.size(); ++i) {
    INFO(zip[i].label);
    CHECK(zipGot[i] == 0);  // every A there is of small order
    CHECK(static_cast<bool>(zipGot[i]) == referenceVerdict(zip[i]));
  }

  const std::vector<Case> djb = djbCases(256);
  REQUIRE(djb.size() == 256);
  const std::vector<uint8_t> djbGot = ifmaVerdicts(djb);
  for (size_t i = 0; i < djb.size(); ++i) {
    INFO(djb[i].label);
    CHECK(djbGot[i] == 1);
  }
}

TEST_CASE("ed25519 ifma: mixed-order A and R, and random encodings, against the reference") {
  if (!govmesh::simd::cpuHasIfma()) {
    MESSAGE("SKIPPED: this CPU has no AVX-512 IFMA");
    return;
  }
  namespace k = govmesh::kernels;
  std::vector<k::GeP3> torsion;
  for (const char* s : kSmallOrder) {
    k::GeP3 t;
    REQUIRE(k::geDecode(t, enc(s).data()));
    torsion.push_back(t);
  }
  const uint64_t seed = 99;
  std::mt19937_64 rng(seed);
  const std::vector<Case> djb = djbCases(64);
  REQUIRE(djb.size() == 64);
  std::vector<PreparedCase> cases;
  auto addTo = [](const uint8_t* enc32, const k::GeP3& t, uint8_t* out) {
    k::GeP3 p;
    REQUIRE(k::geDecode(p, enc32));
    k::geEncode(out, k::geToP3(k::geAdd(p, k::geToCached(t))));
  };
  for (size_t i = 0; i < djb.size(); ++i) {
    Ed25519Prepared p;
    REQUIRE(k::ed25519Prepare(djb[i].pk.data(), 32, djb[i].sig.data(), 64, djb[i].msg.data(), djb[i].msg.size(), p));
    // s and k kept: [8](sB - (R + T) - k(A + T')) = [8](sB - R - kA) for torsion T, T'.
    Ed25519Prepared mixed = p;
    addTo(p.a, torsion[rng() % 8], mixed.a);
    addTo(p.r, torsion[rng() % 8], mixed.r);
    // A + T' keeps A's large-order part, so it is not of small order: accepted.
    cases.push_back({mixed, true, "djb " + std::to_string(i) + " plus torsion"});
    // Control: R moved by a point of large order must fail.
    Ed25519Prepared moved = p;
    k::GeP3 a;
    REQUIRE(k::geDecode(a, p.a));
    addTo(p.r, a, moved.r);
    cases.push_back({moved, false, "djb " + std::to_string(i) + " with R + A"});
  }
  // Random encodings: about half decode, almost none verify; lanes of every kind share vectors.
  for (int i = 0; i < 400; ++i) {
    Ed25519Prepared p;
    for (auto& b : p.a) b = static_cast<uint8_t>(rng());
    for (auto& b : p.r) b = static_cast<uint8_t>(rng());
    for (auto& b : p.s) b = static_cast<uint8_t>(rng());
    for (auto& b : p.k) b = static_cast<uint8_t>(rng());
    p.s[31] &= 0x0f;  // below 2^252 < L
    p.k[31] &= 0x0f;
    if (i % 4 == 0) {  // small-order R: decodes, and [8]R vanishes
      const auto r = enc(kSmallOrder[rng() % 8]);
      std::copy(r.begin(), r.end(), p.r);
    }
    cases.push_back({p, false, "random " + std::to_string(i)});
  }
  std::shuffle(cases.begin(), cases.end(), rng);
  std::vector<Ed25519Prepared> in;
  for (const auto& c : cases) in.push_back(c.p);
  std::vector<uint8_t> out(in.size(), 0xee);
  govmesh::simd::ed25519VerifyPreparedIfma(in.data(), in.size(), out.data());
  size_t accepted = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("seed " << seed << ", lane " << i << ": " << cases[i].label);
    CHECK(static_cast<bool>(out[i]) == k::ed25519VerifyPrepared(cases[i].p));
    if (cases[i].label.find("random") == std::string::npos) CHECK(out[i] == (cases[i].expected ? 1 : 0));
    accepted += out[i];
  }
  CHECK(accepted >= 64);  // every mixed-order case
}
