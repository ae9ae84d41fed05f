// GPU test: the CUDA kernel must give exactly what the CPU gives for the same input.
// Without a CUDA device it reports the skip and exits 77, which CTest records as skipped.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "kernels/cuda/cuda_runtime_probe.h"
#include "kernels/cuda/match_words.h"

namespace {
struct SkipWithoutGpu {
  SkipWithoutGpu() {
    if (govmesh::kernels::cudaDeviceCount() == 0) {
      std::printf("SKIPPED: no CUDA device on this machine; gpu tests need one\n");
      std::exit(77);
    }
    std::printf("gpu tests on %s\n", govmesh::kernels::cudaDeviceDescription().c_str());
  }
} skipWithoutGpu;
}  // namespace

TEST_CASE("GPU matchWords equals the CPU for batch sizes around the block size") {
  std::mt19937_64 rng(11);
  const uint32_t words = 3, features = 4;
  for (uint32_t requests : {0u, 1u, 255u, 256u, 257u, 513u, 100000u}) {
    std::vector<uint64_t> f(uint64_t{requests} * features * words), permit(words), forbid(words);
    for (auto& w : f) w = rng() | rng();
    for (auto& w : permit) w = rng() & rng();
    for (auto& w : forbid) w = rng() & rng() & rng();
    std::vector<uint32_t> gpu;
    REQUIRE(govmesh::kernels::matchWordsOnGpu(f, requests, features, words, permit, forbid, gpu));
    REQUIRE(gpu.size() == requests);
    for (uint32_t r = 0; r < requests; ++r) {
      uint32_t cpu = govmesh::kernels::matchWords(f.data() + uint64_t{r} * features * words, features, words, permit.data(), forbid.data());
      if (gpu[r] != cpu) FAIL("mismatch at request " << r << " of batch " << requests << " (seed 11)");
    }
  }
}
