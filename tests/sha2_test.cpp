// SHA-256 on every backend and the SHA-512 core: each backend against the scalar reference and
// OpenSSL on seeded random messages of every short length, in batches around each backend's
// lane count with mixed lengths; and all of them on NIST CAVP's ShortMsg, LongMsg and Monte
// vectors (../shared/testdata/crypto/nist_cavp_sha2, read from the project root).
#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/sha256_batch.h"
#include "kernels/cuda/sha256_core.h"
#include "kernels/cuda/sha512_core.h"
#include "kernels/simd/sha256_simd.h"
#include "tests/support/hex.h"

using namespace govmesh;
using crypto::ByteView;
using crypto::Sha256Digest;

namespace {

const char* const kCavpDir = "../shared/testdata/crypto/nist_cavp_sha2/";

using Bytes = std::vector<uint8_t>;

std::string toHex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

using govmesh::testing::fromHex;

// The "Key = value" lines of a CAVP .rsp file, in order (CRLF and comments dropped).
std::vector<std::pair<std::string, std::string>> readRsp(const std::string& name) {
  std::ifstream in(kCavpDir + name);
  REQUIRE_MESSAGE(in.good(), "cannot open " << kCavpDir << name << " (tests run from the project root)");
  std::vector<std::pair<std::string, std::string>> out;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#' || line[0] == '[') continue;
    size_t eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    out.emplace_back(line.substr(0, eq), line.substr(eq + 3));
  }
  return out;
}

struct MsgVector {
  Bytes msg;
  Bytes md;
};

// ShortMsg / LongMsg: (Len in bits, Msg, MD) triples; Len = 0 comes with a placeholder Msg "00".
std::vector<MsgVector> readMsgVectors(const std::string& name) {
  std::vector<MsgVector> out;
  size_t bits = 0;
  Bytes msg;
  for (const auto& [key, value] : readRsp(name)) {
    if (key == "Len") {
      bits = std::stoul(value);
    } else if (key == "Msg") {
      msg = fromHex(value);
      REQUIRE(msg.size() >= bits / 8);
      msg.resize(bits / 8);
    } else if (key == "MD") {
      out.push_back({msg, fromHex(value)});
    }
  }
  return out;
}

struct MonteVectors {
  Bytes seed;
  std::vector<Bytes> checkpoints;
};

MonteVectors readMonte(const std::string& name) {
  MonteVectors m;
  for (const auto& [key, value] : readRsp(name)) {
    if (key == "Seed") m.seed = fromHex(value);
    if (key == "MD") m.checkpoints.push_back(fromHex(value));
  }
  return m;
}

// The SHAVS Monte Carlo test (SHAVS §6.4): from MD0 = MD1 = MD2 = Seed, 1,000 steps of
// MDi = H(MDi-3 ‖ MDi-2 ‖ MDi-1); the last one is checkpoint j and the next seed; 100 checkpoints.
// `hash` maps a message to its digest (digestSize bytes).
template <class Hash>
void runMonte(const MonteVectors& m, size_t digestSize, Hash hash, const std::string& what) {
  REQUIRE(m.seed.size() == digestSize);
  REQUIRE(m.checkpoints.size() == 100);
  Bytes seed = m.seed;
  for (size_t j = 0; j < m.checkpoints.size(); ++j) {
    Bytes md[3] = {seed, seed, seed};
    Bytes msg(3 * digestSize);
    for (int i = 3; i < 1003; ++i) {
      for (int k = 0; k < 3; ++k) std::memcpy(msg.data() + k * digestSize, md[k].data(), digestSize);
      Bytes next = hash(msg);
      md[0] = std::move(md[1]);
      md[1] = std::move(md[2]);
      md[2] = std::move(next);
    }
    seed = md[2];
    INFO(what << " Monte checkpoint " << j);
    REQUIRE(toHex(seed.data(), seed.size()) == toHex(m.checkpoints[j].data(), m.checkpoints[j].size()));
  }
}

Sha256Digest opensslSha256(const uint8_t* data, size_t len) {
  Sha256Digest d;
  unsigned int n = 0;
  REQUIRE(EVP_Digest(data, len, d.data(), &n, EVP_sha256(), nullptr) == 1);
  return d;
}

Sha256Digest scalarSha256(const uint8_t* data, size_t len) {
  Sha256Digest d;
  kernels::sha256(data, len, d.data());
  return d;
}

size_t lanesOf(const std::string& backend) { return backend == "avx512" ? 16 : backend == "avx2" ? 8 : 1; }

// Every backend this host runs except the GPU (tests/gpu_sha256_test.cpp covers it); the others
// are skipped with a message.
std::vector<std::string> cpuBackends() {
  std::vector<std::string> out;
  for (const std::string& name : crypto::sha256Backends()) {
    if (name == "cuda") continue;
    if (crypto::sha256BackendAvailable(name))
      out.push_back(name);
    else
      MESSAGE("SHA-256 backend " << name << " skipped: this CPU lacks it");
  }
  return out;
}

// Hashes `msgs` with `backend` and checks each digest against the scalar reference and OpenSSL.
void checkBatch(const std::string& backend, const std::vector<Bytes>& msgs, const std::string& config) {
  std::vector<ByteView> views(msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) views[i] = {msgs[i].data(), msgs[i].size()};
  std::vector<Sha256Digest> out(msgs.size());
  REQUIRE_MESSAGE(crypto::sha256Batch(backend, views, out), "backend " << backend << " failed; " << config);
  for (size_t i = 0; i < msgs.size(); ++i) {
    Sha256Digest ref = scalarSha256(msgs[i].data(), msgs[i].size());
    INFO("backend " << backend << ", " << config << ", message " << i << " of length " << msgs[i].size());
    REQUIRE(ref == opensslSha256(msgs[i].data(), msgs[i].size()));
    REQUIRE(toHex(out[i].data(), 32) == toHex(ref.data(), 32));
  }
}

Bytes randomBytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

}  // namespace

TEST_CASE("scalar SHA-256 equals OpenSSL, one-shot and streamed in random pieces") {
  const uint64_t seed = 20260501;
  std::mt19937_64 rng(seed);
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 300; ++n) lengths.push_back(n);
  for (size_t n : {447, 448, 511, 512, 513, 1000, 4096, 65536 + 3, 1000003}) lengths.push_back(n);
  for (size_t len : lengths) {
    Bytes m = randomBytes(rng, len);
    INFO("seed " << seed << ", length " << len);
    Sha256Digest ref = opensslSha256(m.data(), m.size());
    REQUIRE(scalarSha256(m.data(), m.size()) == ref);
    kernels::Sha256 h;
    h.init();
    for (size_t at = 0; at < len;) {
      size_t take = std::min<size_t>(len - at, rng() % 150);
      h.update(m.data() + at, take);
      at += take;
    }
    Sha256Digest streamed;
    h.final(streamed.data());
    REQUIRE(streamed == ref);
    REQUIRE(crypto::sha256One({m.data(), m.size()}) == ref);
  }
}

TEST_CASE("SHA-256 of the empty message and of \"abc\" (FIPS 180-4 examples)") {
  CHECK(toHex(scalarSha256(nullptr, 0).data(), 32) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const uint8_t abc[] = {'a', 'b', 'c'};
  CHECK(toHex(scalarSha256(abc, 3).data(), 32) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("backend registry: names, availability and refusals") {
  const auto& all = crypto::sha256Backends();
  CHECK(all == std::vector<std::string>{"avx512", "shani", "avx2", "scalar", "cuda", "openssl"});
  CHECK(crypto::sha256BackendAvailable("scalar"));
  CHECK(crypto::sha256BackendAvailable("openssl"));
  CHECK_FALSE(crypto::sha256BackendAvailable("sse9"));
  CHECK(crypto::sha256BackendAvailable("avx512") == simd::cpuHasAvx512());
  CHECK(crypto::sha256BackendAvailable("shani") == simd::cpuHasShaNi());
  CHECK(crypto::sha256BackendAvailable("avx2") == simd::cpuHasAvx2());
  auto avail = crypto::sha256AvailableBackends();
  for (const std::string& name : avail) CHECK(crypto::sha256BackendAvailable(name));
  REQUIRE_FALSE(avail.empty());

  const uint8_t msg[] = {1, 2, 3};
  ByteView views[1] = {{msg, 3}};
  Sha256Digest out[2];
  out[0].fill(0xAA);
  CHECK_FALSE(crypto::sha256Batch("sse9", views, std::span<Sha256Digest>(out, 1)));
  CHECK_FALSE(crypto::sha256Batch("scalar", views, std::span<Sha256Digest>(out, 2)));
  CHECK(out[0][0] == 0xAA);  // refused calls write nothing
  for (const std::string& name : avail) {
    CHECK(crypto::sha256Batch(name, std::span<const ByteView>(), std::span<Sha256Digest>()));
    CHECK_FALSE(crypto::sha256Batch(name, views, std::span<Sha256Digest>(out, 2)));
  }
}

TEST_CASE("every CPU backend equals scalar and OpenSSL on every length 0..300 and long messages") {
  const uint64_t seed = 77;
  for (const std::string& backend : cpuBackends()) {
    std::mt19937_64 rng(seed);
    // One batch holding every length in order (neighbouring lanes differ by one byte), then
    // the same lengths shuffled, then long messages mixed with short ones.
    std::vector<Bytes> msgs;
    for (size_t len = 0; len <= 300; ++len) msgs.push_back(randomBytes(rng, len));
    checkBatch(backend, msgs, "lengths 0..300 in order, seed " + std::to_string(seed));
    std::shuffle(msgs.begin(), msgs.end(), rng);
    checkBatch(backend, msgs, "lengths 0..300 shuffled, seed " + std::to_string(seed));
    std::vector<Bytes> mixed;
    for (size_t len : {100000, 3, 5000, 55, 56, 64, 119, 120, 8191, 0, 1 << 20, 63})
      mixed.push_back(randomBytes(rng, len));
    checkBatch(backend, mixed, "long and short mixed, seed " + std::to_string(seed));
    // A message at an odd address: the SIMD loads must not assume alignment.
    Bytes big = randomBytes(rng, 1001);
    std::vector<ByteView> odd = {{big.data() + 1, 1000}, {big.data() + 3, 129}};
    std::vector<Sha256Digest> out(2);
    REQUIRE(crypto::sha256Batch(backend, odd, out));
    CHECK(out[0] == opensslSha256(big.data() + 1, 1000));
    CHECK(out[1] == opensslSha256(big.data() + 3, 129));
  }
}

TEST_CASE("every CPU backend equals scalar on batches of 0, 1, W-1, W, W+1, 2W+1 mixed-length messages") {
  for (const std::string& backend : cpuBackends()) {
    const size_t w = lanesOf(backend);
    // Both this backend's width and the widest one, so single-buffer paths see the same batches.
    for (size_t width : {w, size_t{16}}) {
      for (size_t n : {size_t{0}, size_t{1}, width - 1, width, width + 1, 2 * width + 1}) {
        for (uint64_t seed : {1u, 2u, 3u}) {
          std::mt19937_64 rng(seed * 1000 + n);
          std::vector<Bytes> msgs;
          // Lengths around the one-block and two-block padding edges, and occasionally longer.
          for (size_t i = 0; i < n; ++i) {
            size_t len = rng() % 4 == 0 ? rng() % 2000 : rng() % 130;
            msgs.push_back(randomBytes(rng, len));
          }
          checkBatch(backend, msgs, "batch " + std::to_string(n) + ", seed " + std::to_string(seed * 1000 + n));
        }
      }
    }
  }
}

TEST_CASE("every CPU backend equals scalar on batches of equal-length messages") {
  // Equal lengths put every lane on the same padding-only block at once, which the multi-buffer
  // kernels hash with one shared schedule; lengths around 0, 56 and 64 mod 64 reach both kinds
  // of padding-only block (with and without the 0x80 byte). A batch where one message is one
  // byte longer must not take the shared path for that lane.
  for (const std::string& backend : cpuBackends()) {
    const size_t w = lanesOf(backend);
    for (size_t len : {0, 1, 55, 56, 60, 63, 64, 65, 119, 120, 127, 128, 184, 192, 256}) {
      for (size_t n : {w, 2 * w + 1, size_t{100}}) {
        const uint64_t seed = len * 1000 + n;
        std::mt19937_64 rng(seed);
        std::vector<Bytes> msgs;
        for (size_t i = 0; i < n; ++i) msgs.push_back(randomBytes(rng, len));
        checkBatch(backend, msgs, "equal length " + std::to_string(len) + ", batch " + std::to_string(n));
        msgs[n / 2].push_back(0x61);
        checkBatch(backend, msgs, "equal length " + std::to_string(len) + " but one longer, batch " + std::to_string(n));
        // Two lengths alternating: both padding-only at once, but different blocks.
        for (size_t i = 0; i < n; i += 2) msgs[i] = randomBytes(rng, len + 64);
        checkBatch(backend, msgs, "lengths " + std::to_string(len) + " and +64 alternating, batch " + std::to_string(n));
        // Two cohorts one after the other: the lanes share one padding block, then another.
        std::vector<Bytes> cohorts;
        for (size_t i = 0; i < 2 * w; ++i) cohorts.push_back(randomBytes(rng, len));
        for (size_t i = 0; i < 2 * w; ++i) cohorts.push_back(randomBytes(rng, len + 64));
        for (size_t i = 0; i < 2 * w; ++i) cohorts.push_back(randomBytes(rng, len));
        checkBatch(backend, cohorts, "cohorts of lengths " + std::to_string(len) + ", +64, " + std::to_string(len));
      }
    }
  }
}

TEST_CASE("SIMD kernels write exactly n digests") {
  // Guards the out-of-bounds side of lane handling: idle lanes must not write anywhere.
  std::mt19937_64 rng(5);
  std::vector<Bytes> msgs;
  for (int i = 0; i < 21; ++i) msgs.push_back(randomBytes(rng, rng() % 200));
  std::vector<const uint8_t*> data;
  std::vector<size_t> lens;
  for (const Bytes& m : msgs) {
    data.push_back(m.data());
    lens.push_back(m.size());
  }
  for (size_t n : {size_t{0}, size_t{1}, size_t{5}, size_t{17}, size_t{21}}) {
    if (simd::cpuHasAvx512()) {
      Bytes out(32 * 21 + 32, 0xEE);
      simd::sha256MultiAvx512(data.data(), lens.data(), n, out.data());
      for (size_t i = 32 * n; i < out.size(); ++i) REQUIRE(out[i] == 0xEE);
    }
    if (simd::cpuHasAvx2()) {
      Bytes out(32 * 21 + 32, 0xEE);
      simd::sha256MultiAvx2(data.data(), lens.data(), n, out.data());
      for (size_t i = 32 * n; i < out.size(); ++i) REQUIRE(out[i] == 0xEE);
    }
  }
}

TEST_CASE("NIST CAVP SHA-256 ShortMsg and LongMsg on scalar and every CPU backend") {
  for (const char* file : {"SHA256ShortMsg.rsp", "SHA256LongMsg.rsp"}) {
    std::vector<MsgVector> vectors = readMsgVectors(file);
    REQUIRE(vectors.size() >= 64);
    std::vector<ByteView> views;
    for (const MsgVector& v : vectors) {
      REQUIRE(v.md.size() == 32);
      views.push_back({v.msg.data(), v.msg.size()});
      INFO(file << " length " << v.msg.size());
      CHECK(toHex(scalarSha256(v.msg.data(), v.msg.size()).data(), 32) == toHex(v.md.data(), 32));
    }
    // Each backend hashes the whole file as one batch (mixed lengths), then one at a time.
    for (const std::string& backend : cpuBackends()) {
      std::vector<Sha256Digest> out(views.size());
      REQUIRE(crypto::sha256Batch(backend, views, out));
      for (size_t i = 0; i < views.size(); ++i) {
        INFO(file << " vector " << i << " (length " << views[i].size << "), backend " << backend << ", as a batch");
        CHECK(toHex(out[i].data(), 32) == toHex(vectors[i].md.data(), 32));
        Sha256Digest one;
        REQUIRE(crypto::sha256Batch(backend, std::span<const ByteView>(&views[i], 1), std::span<Sha256Digest>(&one, 1)));
        CHECK(one == out[i]);
      }
    }
  }
}

TEST_CASE("NIST CAVP SHA-256 Monte on scalar and every CPU backend") {
  MonteVectors m = readMonte("SHA256Monte.rsp");
  runMonte(m, 32, [](const Bytes& msg) {
    Sha256Digest d = scalarSha256(msg.data(), msg.size());
    return Bytes(d.begin(), d.end());
  }, "scalar");
  for (const std::string& backend : cpuBackends()) {
    runMonte(m, 32, [&](const Bytes& msg) {
      ByteView v{msg.data(), msg.size()};
      Sha256Digest d;
      REQUIRE(crypto::sha256Batch(backend, std::span<const ByteView>(&v, 1), std::span<Sha256Digest>(&d, 1)));
      return Bytes(d.begin(), d.end());
    }, backend);
  }
}

TEST_CASE("NIST CAVP SHA-512 ShortMsg and LongMsg on the SHA-512 core, one-shot and streamed") {
  for (const char* file : {"SHA512ShortMsg.rsp", "SHA512LongMsg.rsp"}) {
    std::vector<MsgVector> vectors = readMsgVectors(file);
    REQUIRE(vectors.size() >= 128);
    for (const MsgVector& v : vectors) {
      REQUIRE(v.md.size() == 64);
      INFO(file << " length " << v.msg.size());
      uint8_t out[64];
      kernels::sha512(v.msg.data(), v.msg.size(), out);
      CHECK(toHex(out, 64) == toHex(v.md.data(), 64));
      // Streamed in two uneven pieces, across the block boundary when there is one.
      kernels::Sha512 h;
      h.init();
      size_t cut = v.msg.size() * 3 / 7;
      h.update(v.msg.data(), cut);
      h.update(v.msg.data() + cut, v.msg.size() - cut);
      uint8_t streamed[64];
      h.final(streamed);
      CHECK(toHex(streamed, 64) == toHex(v.md.data(), 64));
    }
  }
}

TEST_CASE("NIST CAVP SHA-512 Monte on the SHA-512 core") {
  runMonte(readMonte("SHA512Monte.rsp"), 64, [](const Bytes& msg) {
    Bytes d(64);
    kernels::sha512(msg.data(), msg.size(), d.data());
    return d;
  }, "sha512");
}
