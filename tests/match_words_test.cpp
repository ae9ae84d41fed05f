// matchWords is the per-request core that the CUDA kernel runs; here it runs on the CPU
// against a bit-by-bit restatement of its contract.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "kernels/cuda/match_words.h"

using govmesh::kernels::kAnyForbid;
using govmesh::kernels::kAnyPermit;
using govmesh::kernels::matchWords;

TEST_CASE("matchWords agrees with a per-bit evaluation") {
  std::mt19937_64 rng(7);
  for (uint32_t words : {1u, 2u, 5u}) {
    for (uint32_t features : {0u, 1u, 3u, 8u}) {
      for (int trial = 0; trial < 200; ++trial) {
        std::vector<uint64_t> f(features * words), permit(words), forbid(words);
        // Dense bitsets so that ANDs of several features still leave bits set sometimes.
        for (auto& w : f) w = rng() | rng() | rng();
        for (auto& w : permit) w = rng() & rng();
        for (auto& w : forbid) w = rng() & rng() & rng();
        bool anyPermit = false, anyForbid = false;
        for (uint32_t bit = 0; bit < words * 64; ++bit) {
          bool match = true;
          for (uint32_t k = 0; k < features; ++k) match = match && ((f[k * words + bit / 64] >> (bit % 64)) & 1);
          anyPermit = anyPermit || (match && ((permit[bit / 64] >> (bit % 64)) & 1));
          anyForbid = anyForbid || (match && ((forbid[bit / 64] >> (bit % 64)) & 1));
        }
        uint32_t got = matchWords(f.data(), features, words, permit.data(), forbid.data());
        CHECK(((got & kAnyPermit) != 0) == anyPermit);
        CHECK(((got & kAnyForbid) != 0) == anyForbid);
      }
    }
  }
}
