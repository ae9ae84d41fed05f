// The `batch` backend against the `single` reference: every verdict equal, over batch sizes
// around the MSM and bisection boundaries, with no, one, several and only bad signatures (bad
// in each way the criterion rejects), with one repeated key and with distinct keys, on both
// Straus and Pippenger. Also the MSM itself against a naive sum.
#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/ed25519_batch.h"
#include "engine/ed25519_msm.h"
#include "engine/ed25519_verify.h"
#include "kernels/cuda/ed25519_core.h"

using namespace govmesh::crypto;
using namespace govmesh::kernels;

namespace {

struct Owned {
  std::vector<uint8_t> pk, sig, msg;
};

/// Signs n random messages with `keys` keys (signature i by key i % keys).
std::vector<Owned> honest(size_t n, size_t keys, std::mt19937_64& rng) {
  std::vector<EVP_PKEY*> pkeys(keys);
  for (auto& k : pkeys) {
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
    EVP_PKEY_keygen_init(ctx);
    EVP_PKEY_keygen(ctx, &k);
    EVP_PKEY_CTX_free(ctx);
  }
  std::vector<Owned> out(n);
  for (size_t i = 0; i < n; ++i) {
    Owned& o = out[i];
    o.pk.resize(32);
    size_t len = 32;
    EVP_PKEY_get_raw_public_key(pkeys[i % keys], o.pk.data(), &len);
    o.msg.resize(rng() % 100);
    for (auto& b : o.msg) b = static_cast<uint8_t>(rng());
    o.sig.resize(64);
    size_t sigLen = 64;
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, nullptr, nullptr, nullptr, pkeys[i % keys]);
    EVP_DigestSign(md, o.sig.data(), &sigLen, o.msg.data(), o.msg.size());
    EVP_MD_CTX_free(md);
  }
  for (auto* k : pkeys) EVP_PKEY_free(k);
  return out;
}

const uint8_t kL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                        0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};
// An order-8 point: as a key it must be rejected.
const uint8_t kOrder8[32] = {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
                             0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05};

/// Makes o invalid in the way numbered `kind`.
void corrupt(Owned& o, int kind, std::mt19937_64& rng) {
  const int bit = static_cast<int>(rng() % 256);
  switch (kind % 8) {
    case 0:  // message bit (or an appended byte for an empty message)
      if (o.msg.empty()) {
        o.msg.push_back(1);
      } else {
        o.msg[rng() % o.msg.size()] ^= static_cast<uint8_t>(1 << (rng() % 8));
      }
      break;
    case 1:  // R bit
      o.sig[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
      break;
    case 2:  // S bit, low 248 bits so S mostly stays < L
      o.sig[32 + (bit % 248) / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
      break;
    case 3:  // A bit
      o.pk[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
      break;
    case 4: {  // S + L: the equation still holds, S is not canonical
      unsigned carry = 0;
      for (int i = 0; i < 32; ++i) {
        const unsigned s = o.sig[32 + i] + kL[i] + carry;
        o.sig[32 + i] = static_cast<uint8_t>(s);
        carry = s >> 8;
      }
      break;
    }
    case 5:  // R with y >= p
      std::memset(o.sig.data(), 0xff, 32);
      o.sig[0] = 0xee;
      o.sig[31] = 0x7f;
      break;
    case 6:  // small-order A with R small order and S = 0: the equation holds, A is rejected
      o.pk.assign(kOrder8, kOrder8 + 32);
      std::fill(o.sig.begin(), o.sig.end(), 0);
      o.sig[0] = 1;
      break;
    default:  // wrong length
      o.sig.pop_back();
  }
}

std::vector<SigInput> views(const std::vector<Owned>& v) {
  std::vector<SigInput> in(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    in[i] = SigInput{{v[i].pk.data(), v[i].pk.size()}, {v[i].sig.data(), v[i].sig.size()}, {v[i].msg.data(), v[i].msg.size()}};
  }
  return in;
}

}  // namespace

TEST_CASE("batch verdicts equal single's") {
  std::mt19937_64 rng(42);
  const size_t sizes[] = {0, 1, 2, 3, 7, 8, 9, 16, 17, 64, 256, 1024};
  for (size_t keys : {size_t{1}, size_t{1024}}) {
    const std::vector<Owned> pool = honest(1024, keys, rng);
    for (size_t n : sizes) {
      for (int badMode = 0; badMode < 4; ++badMode) {
        if (n >= 256 && badMode == 3 && keys == 1) continue;  // all-bad big batches: once is enough
        std::vector<Owned> batch(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(n));
        size_t bad = badMode == 0 ? 0 : badMode == 1 ? 1 : badMode == 2 ? n / 8 + 2 : n;
        bad = std::min(bad, n);
        for (size_t j = 0; j < bad; ++j) corrupt(batch[(j * 7919 + rng()) % n], static_cast<int>(j + rng() % 8), rng);
        const std::vector<SigInput> in = views(batch);
        std::vector<uint8_t> want(n);
        REQUIRE(ed25519Verify("single", in, want));
        for (MsmMethod method : {MsmMethod::kAuto, MsmMethod::kStraus, MsmMethod::kPippenger}) {
          if (n > 256 && method == MsmMethod::kStraus && badMode != 1) continue;  // slow, covered by smaller n
          std::vector<uint8_t> got(n, 7);
          ed25519VerifyBatch(in, got, method);
          CAPTURE(keys);
          CAPTURE(n);
          CAPTURE(badMode);
          CAPTURE(static_cast<int>(method));
          CHECK(got == want);
          const Ed25519BatchStats stats = ed25519LastBatchStats();
          if (badMode == 0 && n >= 3) {
            CHECK(stats.msms == 1);
            CHECK(stats.singles == 0);
          }
          if (badMode == 1 && n >= 64) CHECK(stats.singles < 8);  // bisection, not n singles
        }
        if (badMode == 0) {
          for (uint8_t v : want) CHECK(v == 1);
        }
      }
    }
  }
}

TEST_CASE("batch through the public API, and a repeat with a warm key cache") {
  std::mt19937_64 rng(7);
  std::vector<Owned> v = honest(40, 3, rng);
  corrupt(v[5], 0, rng);
  corrupt(v[17], 6, rng);
  const std::vector<SigInput> in = views(v);
  std::vector<uint8_t> want(in.size()), got(in.size());
  REQUIRE(ed25519Verify("single", in, want));
  ed25519ClearKeyCache();
  REQUIRE(ed25519Verify("batch", in, got));
  CHECK(got == want);
  REQUIRE(ed25519Verify("batch", in, got));
  CHECK(got == want);
  CHECK(want[5] == 0);
  CHECK(want[17] == 0);
  CHECK(want[6] == 1);
}

TEST_CASE("MSM: Straus and Pippenger equal a naive sum") {
  std::mt19937_64 rng(13);
  const GeP3 b = ed25519BasePoint();
  for (size_t n : {size_t{1}, size_t{2}, size_t{5}, size_t{33}, size_t{300}}) {
    std::vector<Scalar128> scalars(n);
    std::vector<MsmPoint> points(n);
    GeP3 naive = geIdentity();
    for (size_t i = 0; i < n; ++i) {
      // Points [m_i]B, scalars random 128-bit (a few extremes): sum = [sum s_i m_i]B mod L.
      const Scalar m{{rng(), rng(), rng(), rng() >> 4}};
      const GeP3 p = geDoubleScalarMulBase(Scalar{{0, 0, 0, 0}}, b, m);
      points[i] = msmPoint(p);
      scalars[i] = Scalar128{rng(), rng()};
      if (i == 0) scalars[i] = Scalar128{~uint64_t{0}, ~uint64_t{0}};
      if (i == 1) scalars[i] = Scalar128{0, 0};
      naive = geToP3(geAdd(naive, geToCached(geDoubleScalarMulBase(Scalar{{0, 0, 0, 0}}, b,
                                                                   scalarMul(Scalar{{scalars[i].lo, scalars[i].hi, 0, 0}}, m)))));
    }
    uint8_t want[32], straus[32], pippenger[32];
    geEncode(want, naive);
    geEncode(straus, msm128(scalars, points, MsmMethod::kStraus));
    geEncode(pippenger, msm128(scalars, points, MsmMethod::kPippenger));
    CAPTURE(n);
    CHECK(std::memcmp(want, straus, 32) == 0);
    CHECK(std::memcmp(want, pippenger, 32) == 0);
  }
  CHECK(pippengerWindowBits(256) >= 5);
  CHECK(pippengerWindowBits(4096) > pippengerWindowBits(64));
}

TEST_CASE("backend registry: priority order, GOVMESH_ED25519_BACKEND forces the default, unknown names refused") {
  const std::vector<std::string>& all = ed25519Backends();
  REQUIRE(!all.empty());
  CHECK(all.back() == "openssl");
  const std::vector<std::string> available = ed25519AvailableBackends();
  CHECK(std::find(available.begin(), available.end(), "single") != available.end());
  CHECK(std::find(available.begin(), available.end(), "batch") != available.end());
  unsetenv("GOVMESH_ED25519_BACKEND");
  CHECK(ed25519DefaultBackend() == available.front());

  // An empty batch separates "ran" (true) from "refused" (false).
  std::vector<uint8_t> out;
  setenv("GOVMESH_ED25519_BACKEND", "single", 1);
  CHECK(ed25519DefaultBackend() == "single");
  CHECK(ed25519Verify(ed25519DefaultBackend(), {}, out));
  setenv("GOVMESH_ED25519_BACKEND", "avx9000", 1);
  CHECK(ed25519DefaultBackend() == "avx9000");
  CHECK_FALSE(ed25519Verify(ed25519DefaultBackend(), {}, out));
  CHECK_FALSE(ed25519BackendAvailable("avx9000"));
  unsetenv("GOVMESH_ED25519_BACKEND");
  // Only OpenSSL, kept for comparison, has another criterion.
  for (const std::string& name : all) CHECK(ed25519BackendEnforcesCriterion(name) == (name != "openssl"));
  for (const std::string& name : all) {
    const bool listed = std::find(available.begin(), available.end(), name) != available.end();
    CHECK(ed25519BackendAvailable(name) == listed);
  }
}
