// Differential test of our Ed25519 verifiers against OpenSSL: seeded random honest signatures
// (OpenSSL signs; a few keys that repeat, as workload keys do, and many distinct ones; messages of
// 0 to 300 bytes) and, for each, a copy with one bit flipped in the message, R, S or A (rotating).
// Every available backend, fed in batches of varying size (1 to 1,024, good and bad members
// mixed, so the batch and AVX-512 paths must pinpoint their bad signatures), must give OpenSSL's
// EVP_DigestVerify verdict; where they differ, the difference must be one that our criterion
// documents (tests/support/crypto_vectors.h, explainOpensslDifference), else the test fails with
// the seed and index that reproduce it. All our backends must also agree with each other exactly,
// and the "openssl" backend with OpenSSL called directly.
//
// Environment (CI's sanitizer build sets a smaller count):
//   GOVMESH_CRYPTO_DIFF_COUNT  honest signatures (default 100000; twice as many verdicts)
//   GOVMESH_CRYPTO_DIFF_SEED   master seed (default 20261126)
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/ed25519_verify.h"
#include "tests/support/crypto_vectors.h"

using govmesh::crypto::SigInput;
using namespace govmesh::testing;

namespace {

uint64_t envNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoull(v, nullptr, 10);
}

/// Where a corrupted copy has its flipped bit.
enum class Spot : uint8_t { Message, R, S, A };

const char* spotName(Spot s) {
  switch (s) {
    case Spot::Message: return "message";
    case Spot::R: return "R";
    case Spot::S: return "S";
    case Spot::A: return "A";
  }
  return "?";
}

/// One verification input; honest ones come in pairs with their corruption right after.
struct Item {
  std::array<uint8_t, 32> pk{};
  std::array<uint8_t, 64> sig{};
  std::vector<uint8_t> msg;
  Spot spot = Spot::Message;  // for a corrupted item: where its bit was flipped
  uint16_t bit = 0;           // and which bit (within that field)
  bool corrupted = false;
  uint8_t openssl = 0;  // EVP_DigestVerify's verdict

  SigInput input() const { return {{pk.data(), 32}, {sig.data(), 64}, {msg.data(), msg.size()}}; }
};

/// What a pair is made from, drawn sequentially from the seed so that threads can sign in any order.
struct Plan {
  int poolKey = -1;                // index into the repeated keys, or -1 for a fresh key
  std::array<uint8_t, 32> seed{};  // the fresh key's seed
  std::vector<uint8_t> msg;
  Spot spot = Spot::Message;
  uint16_t bit = 0;
};

/// Runs f(begin, end) over [0, n) on up to `threads` threads.
template <class F>
void parallelFor(size_t n, unsigned threads, F f) {
  threads = std::max(1u, std::min<unsigned>(threads, static_cast<unsigned>(std::max<size_t>(1, n / 256))));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) pool.emplace_back([&, t] { f(n * t / threads, n * (t + 1) / threads); });
  for (std::thread& th : pool) th.join();
}

std::string describe(const Item& it, size_t index, uint64_t seed) {
  std::string s = "seed " + std::to_string(seed) + ", item " + std::to_string(index) + " (pair " + std::to_string(index / 2) + ", " +
                  (it.corrupted ? std::string("bit ") + std::to_string(it.bit) + " of " + spotName(it.spot) + " flipped" : "honest") +
                  "): pk=" + toHex(it.pk.data(), 32) + " sig=" + toHex(it.sig.data(), 64) + " msg=" + toHex(it.msg.data(), it.msg.size());
  return s;
}

}  // namespace

TEST_CASE("Ed25519 differential: every backend against OpenSSL on honest signatures and one-bit corruptions") {
  const uint64_t seed = envNumber("GOVMESH_CRYPTO_DIFF_SEED", 20261126);
  const size_t pairs = envNumber("GOVMESH_CRYPTO_DIFF_COUNT", 100000);
  const unsigned threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  INFO("GOVMESH_CRYPTO_DIFF_SEED=" << seed << " GOVMESH_CRYPTO_DIFF_COUNT=" << pairs);
  auto start = std::chrono::steady_clock::now();

  // Plans, sequentially from the seed.
  std::mt19937_64 rng(seed);
  constexpr int kPoolKeys = 16;
  std::vector<std::unique_ptr<OpensslSigner>> pool;
  for (int k = 0; k < kPoolKeys; ++k) {
    std::array<uint8_t, 32> s{};
    for (uint8_t& b : s) b = static_cast<uint8_t>(rng());
    pool.push_back(std::make_unique<OpensslSigner>(s));
  }
  std::vector<Plan> plans(pairs);
  for (size_t i = 0; i < pairs; ++i) {
    Plan& p = plans[i];
    if (rng() % 2 == 0) {
      p.poolKey = static_cast<int>(rng() % kPoolKeys);
    } else {
      for (uint8_t& b : p.seed) b = static_cast<uint8_t>(rng());
    }
    p.msg.resize(rng() % 301);
    for (uint8_t& b : p.msg) b = static_cast<uint8_t>(rng());
    p.spot = static_cast<Spot>(i % 4);
    if (p.spot == Spot::Message && p.msg.empty()) p.spot = Spot::R;  // no bit to flip in an empty message
    const size_t bits = p.spot == Spot::Message ? 8 * p.msg.size() : 256;
    p.bit = static_cast<uint16_t>(rng() % bits);
  }

  // Sign, corrupt and ask OpenSSL, in parallel (all deterministic given the plans).
  std::vector<Item> items(2 * pairs);
  parallelFor(pairs, threads, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const Plan& p = plans[i];
      std::unique_ptr<OpensslSigner> fresh;
      const OpensslSigner* signer = p.poolKey >= 0 ? pool[p.poolKey].get() : (fresh = std::make_unique<OpensslSigner>(p.seed)).get();
      Item& good = items[2 * i];
      good.pk = signer->publicKey();
      good.msg = p.msg;
      good.sig = signer->sign(good.msg.data(), good.msg.size());
      good.openssl = opensslVerify(good.input());
      Item& bad = items[2 * i + 1];
      bad = good;
      bad.corrupted = true;
      bad.spot = p.spot;
      bad.bit = p.bit;
      const uint8_t mask = static_cast<uint8_t>(1u << (p.bit % 8));
      switch (p.spot) {
        case Spot::Message: bad.msg[p.bit / 8] ^= mask; break;
        case Spot::R: bad.sig[p.bit / 8] ^= mask; break;
        case Spot::S: bad.sig[32 + p.bit / 8] ^= mask; break;
        case Spot::A: bad.pk[p.bit / 8] ^= mask; break;
      }
      bad.openssl = opensslVerify(bad.input());
    }
  });
  plans.clear();
  plans.shrink_to_fit();
  for (size_t i = 0; i < items.size(); i += 2) REQUIRE_MESSAGE(items[i].openssl == 1, "OpenSSL rejects its own signature: " << describe(items[i], i, seed));
  auto signedAt = std::chrono::steady_clock::now();

  std::vector<SigInput> in(items.size());
  for (size_t i = 0; i < items.size(); ++i) in[i] = items[i].input();

  for (const std::string& name : govmesh::crypto::ed25519Backends())
    if (!govmesh::crypto::ed25519BackendAvailable(name)) MESSAGE("SKIPPED backend " << name << " (not runnable here)");

  std::optional<std::vector<uint8_t>> reference;  // the first of our backends' verdicts
  std::string referenceName;
  for (const std::string& backend : govmesh::crypto::ed25519AvailableBackends()) {
    const bool isOpenssl = backend == "openssl";
    // The openssl backend is only a wrapper of the oracle: a prefix checks the wrapper and keeps
    // the run inside its time budget (OpenSSL is the slowest verifier here).
    const size_t count = isOpenssl ? std::min<size_t>(in.size(), 20000) : in.size();
    auto t0 = std::chrono::steady_clock::now();
    // Batch sizes 1..1,024 from their own seeded stream, the same for every backend.
    std::mt19937_64 sizes(seed ^ 0x9e3779b97f4a7c15ull);
    std::vector<uint8_t> verdicts(count, 0xAA);
    size_t batches = 0;
    for (size_t at = 0; at < count; ++batches) {
      const size_t n = std::min<size_t>(count - at, 1 + sizes() % 1024);
      const bool ok = govmesh::crypto::ed25519Verify(backend, std::span<const SigInput>(in.data() + at, n), std::span<uint8_t>(verdicts.data() + at, n));
      REQUIRE_MESSAGE(ok, "backend " << backend << " refused a batch of " << n << " at item " << at << " (seed " << seed << ")");
      at += n;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    size_t explained = 0, unexplained = 0, honestRejected = 0, corruptAccepted = 0;
    for (size_t i = 0; i < count; ++i) {
      const uint8_t ours = verdicts[i];
      REQUIRE_MESSAGE((ours == 0 || ours == 1), "backend " << backend << " wrote " << int(ours) << " for " << describe(items[i], i, seed));
      honestRejected += !items[i].corrupted && !ours;
      corruptAccepted += items[i].corrupted && ours;
      if (ours == items[i].openssl) continue;
      // The openssl backend is OpenSSL: no criterion difference excuses it.
      std::optional<std::string> why = isOpenssl ? std::nullopt : explainOpensslDifference(in[i], ours, items[i].openssl);
      if (why) {
        ++explained;
        if (explained <= 5) MESSAGE("backend " << backend << " differs from OpenSSL as documented (" << *why << "): " << describe(items[i], i, seed));
        continue;
      }
      if (++unexplained <= 10)
        FAIL_CHECK("backend " << backend << " says " << int(ours) << ", OpenSSL says " << int(items[i].openssl)
                              << ", and no documented criterion difference explains it: " << describe(items[i], i, seed));
    }
    CHECK_MESSAGE(unexplained == 0, "backend " << backend << ": " << unexplained << " unexplained differences from OpenSSL (seed " << seed << ")");
    if (!isOpenssl) {
      if (!reference) {
        reference = verdicts;
        referenceName = backend;
      } else {
        size_t differ = 0;
        for (size_t i = 0; i < in.size(); ++i)
          if (verdicts[i] != (*reference)[i] && ++differ <= 10)
            FAIL_CHECK("backend " << backend << " says " << int(verdicts[i]) << ", backend " << referenceName << " says "
                                  << int((*reference)[i]) << ": " << describe(items[i], i, seed));
        CHECK_MESSAGE(differ == 0, "backends " << backend << " and " << referenceName << " disagree on " << differ << " inputs");
      }
    }
    MESSAGE("backend " << backend << ": " << count << " verdicts in " << batches << " batches, " << seconds << " s ("
                       << (seconds > 0 ? count / seconds : 0) << "/s); honest rejected " << honestRejected << ", corrupt accepted "
                       << corruptAccepted << "; differences from OpenSSL: " << explained << " documented, " << unexplained << " unexplained");
  }
  MESSAGE("signing and OpenSSL verdicts took " << std::chrono::duration<double>(signedAt - start).count() << " s on " << threads
                                               << " threads; total " << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s");
}
