// The CUDA SHA-256 backend against the scalar reference, bit for bit, on seeded random batches
// and NIST CAVP's ShortMsg/LongMsg. Exits 77 (skipped) without a GPU.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "engine/sha256_batch.h"
#include "kernels/cuda/cuda_runtime_probe.h"
#include "kernels/cuda/sha256_core.h"

using namespace govmesh;
using crypto::ByteView;
using crypto::Sha256Digest;

namespace {

void requireGpu() {
  if (kernels::cudaDeviceCount() == 0) {
    std::printf("SKIPPED: no CUDA device on this machine\n");
    std::exit(77);
  }
}

// Hashes msgs on the GPU and requires every digest to equal the scalar reference's.
void requireCudaEqualsScalar(const std::vector<std::vector<uint8_t>>& msgs, const std::string& config) {
  std::vector<ByteView> views;
  for (const auto& m : msgs) views.push_back({m.data(), m.size()});
  std::vector<Sha256Digest> out(msgs.size());
  REQUIRE_MESSAGE(crypto::sha256Batch("cuda", views, out), "cuda backend failed; " << config);
  for (size_t i = 0; i < msgs.size(); ++i) {
    Sha256Digest ref;
    kernels::sha256(msgs[i].data(), msgs[i].size(), ref.data());
    INFO("cuda, " << config << ", message " << i << " of length " << msgs[i].size());
    REQUIRE(out[i] == ref);
  }
}

}  // namespace

TEST_CASE("cuda SHA-256 equals scalar on random mixed-length batches") {
  requireGpu();
  MESSAGE("gpu SHA-256 tests on " << kernels::cudaDeviceDescription());
  REQUIRE(crypto::sha256BackendAvailable("cuda"));
  for (size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{128}, size_t{129}, size_t{1000}, size_t{20000}}) {
    const uint64_t seed = 900 + n;
    std::mt19937_64 rng(seed);
    std::vector<std::vector<uint8_t>> msgs(n);
    for (auto& m : msgs) {
      m.resize(rng() % 8 == 0 ? rng() % 5000 : rng() % 300);
      for (auto& b : m) b = static_cast<uint8_t>(rng());
    }
    requireCudaEqualsScalar(msgs, "batch " + std::to_string(n) + ", seed " + std::to_string(seed));
  }
  // Every length 0..300 in one batch, and a few long messages beside short ones.
  std::mt19937_64 rng(31);
  std::vector<std::vector<uint8_t>> msgs;
  for (size_t len = 0; len <= 300; ++len) msgs.emplace_back(len, static_cast<uint8_t>(rng()));
  for (size_t len : {1 << 20, 3, 100003}) msgs.emplace_back(len, static_cast<uint8_t>(rng()));
  requireCudaEqualsScalar(msgs, "lengths 0..300 and long, seed 31");
}

TEST_CASE("cuda SHA-256 on NIST CAVP ShortMsg and LongMsg") {
  requireGpu();
  for (const char* file : {"SHA256ShortMsg.rsp", "SHA256LongMsg.rsp"}) {
    std::ifstream in(std::string("../shared/testdata/crypto/nist_cavp_sha2/") + file);
    REQUIRE_MESSAGE(in.good(), "cannot open " << file << " (tests run from the project root)");
    std::vector<std::vector<uint8_t>> msgs;
    std::vector<std::string> mds;
    std::string line;
    size_t bits = 0;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.rfind("Len = ", 0) == 0) bits = std::stoul(line.substr(6));
      if (line.rfind("Msg = ", 0) == 0) {
        std::vector<uint8_t> m(bits / 8);
        for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<uint8_t>(std::stoul(line.substr(6 + 2 * i, 2), nullptr, 16));
        msgs.push_back(std::move(m));
      }
      if (line.rfind("MD = ", 0) == 0) mds.push_back(line.substr(5));
    }
    REQUIRE(msgs.size() == mds.size());
    REQUIRE(msgs.size() >= 64);
    requireCudaEqualsScalar(msgs, file);
    std::vector<ByteView> views;
    for (const auto& m : msgs) views.push_back({m.data(), m.size()});
    std::vector<Sha256Digest> out(msgs.size());
    REQUIRE(crypto::sha256Batch("cuda", views, out));
    for (size_t i = 0; i < out.size(); ++i) {
      char hex[65];
      for (int k = 0; k < 32; ++k) std::snprintf(hex + 2 * k, 3, "%02x", out[i][k]);
      INFO(file << " vector " << i);
      CHECK(std::string(hex) == mds[i]);
    }
  }
}

TEST_CASE("cuda SHA-256 throughput on 64-byte messages (informational)") {
  requireGpu();
  const size_t n = 1 << 20;
  std::vector<uint8_t> data(64 * n, 0x5a);
  std::vector<ByteView> views(n);
  for (size_t i = 0; i < n; ++i) views[i] = {data.data() + 64 * i, 64};
  std::vector<Sha256Digest> out(n);
  REQUIRE(crypto::sha256Batch("cuda", views, out));  // warm-up: buffers and context
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(crypto::sha256Batch("cuda", views, out));
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("cuda sha256: " << n << " x 64-byte messages in " << s * 1e3 << " ms = " << n / s / 1e6
                          << " M messages/s (including PCIe copies)");
}
