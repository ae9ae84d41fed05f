// The CUDA backend against the scalar reference, bit for bit. Exits 77 (skipped) without a GPU.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>

#include "engine/evaluator.h"
#include "kernels/cuda/cuda_runtime_probe.h"
#include "tests/backend_support.h"

using namespace govmesh;

TEST_CASE("cuda backend equals scalar bit for bit") {
  if (kernels::cudaDeviceCount() == 0) {
    std::printf("SKIPPED: no CUDA device on this machine\n");
    std::exit(77);
  }
  MESSAGE("gpu tests on " << kernels::cudaDeviceDescription());
  auto cuda = engine::makeEvaluator("cuda");
  for (uint32_t policies : {1u, 64u, 65u, 1000u, 100000u}) {
    const uint32_t features = 5, rows = 9;
    table::DecisionTable t = testing::randomTable(policies, features, rows, policies + 17);
    engine::FlatTable ft(t);
    for (size_t n : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{33}, size_t{65}, size_t{4096}, size_t{100000}}) {
      if (policies >= 100000 && n > 4096) continue;
      std::vector<uint32_t> codes = testing::randomCodes(features, rows, n, n + policies);
      testing::requireSameAsScalar(*cuda, ft, codes, n,
                                   "cuda, policies " + std::to_string(policies) + ", batch " + std::to_string(n) + ", seed " +
                                       std::to_string(policies + 17));
    }
  }
}
