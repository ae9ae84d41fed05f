// The cuda Ed25519 backend against the `single` reference, verdict for verdict, on random honest
// signatures, their one-bit corruptions, wrong lengths, long messages (verified on the host side
// of the backend) and the speccheck edge cases. Exits 77 (skipped) without a GPU.
#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/ed25519_verify.h"
#include "kernels/cuda/cuda_runtime_probe.h"
#include "kernels/cuda/ed25519_cuda.h"
#include "tests/support/hex.h"

using namespace govmesh;

namespace {

constexpr uint64_t kSeed = 20261126;

struct Case {
  std::vector<uint8_t> pk, sig, msg;
  std::string origin;  // for the report of a mismatch
};

using govmesh::testing::fromHex;

std::string toHex(const std::vector<uint8_t>& b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) s += {digits[x >> 4], digits[x & 15]};
  return s;
}

void skipWithoutGpu() {
  if (kernels::cudaDeviceCount() == 0) {
    std::printf("SKIPPED: no CUDA device on this machine\n");
    std::exit(77);
  }
}

// Honest signatures from a few OpenSSL keys over random messages of 0 to 300 bytes, each
// followed by a copy with one bit flipped in the message, R, S or A.
void addRandomCases(std::vector<Case>& cases, size_t honest, std::mt19937_64& rng) {
  std::vector<EVP_PKEY*> keys;
  for (int i = 0; i < 8; ++i) {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    REQUIRE(k != nullptr);
    keys.push_back(k);
  }
  for (size_t i = 0; i < honest; ++i) {
    EVP_PKEY* key = keys[i % keys.size()];
    Case c;
    c.msg.resize(rng() % 301);
    for (uint8_t& b : c.msg) b = static_cast<uint8_t>(rng());
    c.pk.resize(32);
    c.sig.resize(64);
    size_t pkLen = 32, sigLen = 64;
    // A fresh context per signature: OpenSSL 3.0 re-initialising a used one keeps its first key.
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_PKEY_get_raw_public_key(key, c.pk.data(), &pkLen) == 1 &&
              EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
              EVP_DigestSign(ctx, c.sig.data(), &sigLen, c.msg.data(), c.msg.size()) == 1;
    EVP_MD_CTX_free(ctx);
    REQUIRE(ok);
    c.origin = "honest #" + std::to_string(i);
    Case bad = c;
    size_t where = rng() % 4;
    std::vector<uint8_t>& target = where == 0 ? bad.msg : where == 1 || where == 2 ? bad.sig : bad.pk;
    if (target.empty()) target.push_back(0);  // an empty message grows a byte instead
    size_t lo = where == 2 ? 32 : 0, hi = where == 1 ? 32 : target.size();
    size_t bit = lo * 8 + rng() % ((hi - lo) * 8);
    target[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    bad.origin = c.origin + " with bit " + std::to_string(bit) + " of " + (where == 0 ? "msg" : where == 3 ? "A" : "sig") + " flipped";
    cases.push_back(std::move(c));
    cases.push_back(std::move(bad));
  }
  for (EVP_PKEY* k : keys) EVP_PKEY_free(k);
}

// Lengths the device never sees (decided on the host) and messages long enough that the backend
// verifies them on the CPU side, around its threshold. `valid` is a copy: `cases` grows here.
void addLengthCases(std::vector<Case>& cases, Case valid, std::mt19937_64& rng) {
  auto add = [&](Case c, const std::string& what) {
    c.origin = what;
    cases.push_back(std::move(c));
  };
  Case c = valid;
  c.pk.pop_back();
  add(c, "31-byte key");
  c = valid;
  c.pk.push_back(0);
  add(c, "33-byte key");
  c = valid;
  c.sig.pop_back();
  add(c, "63-byte signature");
  c = valid;
  c.sig.push_back(0);
  add(c, "65-byte signature");
  c = valid;
  c.pk.clear();
  c.sig.clear();
  add(c, "empty key and signature");
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  REQUIRE(key != nullptr);
  for (size_t len : {size_t{65535}, size_t{65536}, size_t{65537}, size_t{200000}}) {
    Case l;
    l.msg.resize(len);
    for (uint8_t& b : l.msg) b = static_cast<uint8_t>(rng());
    l.pk.resize(32);
    l.sig.resize(64);
    size_t pkLen = 32, sigLen = 64;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_PKEY_get_raw_public_key(key, l.pk.data(), &pkLen) == 1 &&
              EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key) == 1 &&
              EVP_DigestSign(ctx, l.sig.data(), &sigLen, l.msg.data(), l.msg.size()) == 1;
    EVP_MD_CTX_free(ctx);
    REQUIRE(ok);
    add(l, "honest " + std::to_string(len) + "-byte message");
    l.msg[len / 2] ^= 1;
    add(l, "corrupted " + std::to_string(len) + "-byte message");
  }
  EVP_PKEY_free(key);
}

void addSpeccheckCases(std::vector<Case>& cases) {
  const char* path = "../shared/testdata/crypto/speccheck/cases.json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path << " (tests run from the project root)");
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json all = nlohmann::json::parse(text.str());
  for (size_t i = 0; i < all.size(); ++i) {
    Case c;
    c.pk = fromHex(all[i]["pub_key"].get<std::string>());
    c.sig = fromHex(all[i]["signature"].get<std::string>());
    c.msg = fromHex(all[i]["message"].get<std::string>());
    c.origin = "speccheck case " + std::to_string(i);
    cases.push_back(std::move(c));
  }
}

crypto::SigInput viewOf(const Case& c) {
  return {{c.pk.data(), c.pk.size()}, {c.sig.data(), c.sig.size()}, {c.msg.data(), c.msg.size()}};
}

}  // namespace

TEST_CASE("cuda Ed25519 backend equals single, verdict for verdict") {
  skipWithoutGpu();
  MESSAGE("gpu tests on " << kernels::cudaDeviceDescription());
  REQUIRE(crypto::ed25519BackendAvailable("cuda"));

  std::mt19937_64 rng(kSeed);
  std::vector<Case> pool;
  addRandomCases(pool, 1000, rng);
  addLengthCases(pool, pool.front(), rng);
  addSpeccheckCases(pool);

  // The reference verdict of every distinct input, computed once: batches draw from the pool,
  // so the 100,000-signature batch needs no 100,000 scalar verifications.
  std::vector<uint8_t> want(pool.size());
  for (size_t i = 0; i < pool.size(); ++i) want[i] = crypto::ed25519VerifyOne(viewOf(pool[i])) ? 1 : 0;
  size_t honestValid = 0;
  for (size_t i = 0; i < 2000; i += 2) honestValid += want[i];
  REQUIRE_MESSAGE(honestValid == 1000, "the reference rejects honest OpenSSL signatures; seed " << kSeed);

  // The whole pool in order, then seeded random draws from it at the sizes around a warp and
  // beyond one chunk of the backend.
  std::vector<std::vector<size_t>> batches;
  std::vector<size_t> everything(pool.size());
  for (size_t i = 0; i < pool.size(); ++i) everything[i] = i;
  batches.push_back(everything);
  for (size_t n : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{33}, size_t{1000}, size_t{100000}}) {
    std::vector<size_t> idx(n);
    for (size_t& x : idx) x = rng() % pool.size();
    batches.push_back(std::move(idx));
  }
  for (const std::vector<size_t>& idx : batches) {
    std::vector<crypto::SigInput> in(idx.size());
    for (size_t i = 0; i < idx.size(); ++i) in[i] = viewOf(pool[idx[i]]);
    std::vector<uint8_t> got(idx.size(), 2);
    REQUIRE_MESSAGE(crypto::ed25519Verify("cuda", in, got), "cuda backend fault on a batch of " << idx.size() << ", seed " << kSeed);
    size_t mismatches = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      if (got[i] == want[idx[i]]) continue;
      if (++mismatches <= 5) {
        const Case& c = pool[idx[i]];
        FAIL_CHECK("cuda says " << int(got[i]) << ", single says " << int(want[idx[i]]) << " for " << c.origin << " (batch "
                                << idx.size() << ", index " << i << ", seed " << kSeed << "): pk " << toHex(c.pk) << " sig "
                                << toHex(c.sig) << " msg bytes " << c.msg.size());
      }
    }
    CHECK_MESSAGE(mismatches == 0, mismatches << " mismatches in a batch of " << idx.size() << ", seed " << kSeed);
  }
}

TEST_CASE("cuda Ed25519 entry point: empty batch and null arguments") {
  skipWithoutGpu();
  uint8_t out = 7;
  CHECK(kernels::ed25519VerifyCuda(nullptr, 0, &out));
  CHECK(out == 7);  // nothing written for an empty batch
  CHECK_FALSE(kernels::ed25519VerifyCuda(nullptr, 1, &out));
}
