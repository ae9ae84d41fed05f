// The innermost step of decision-table evaluation, shared by the CPU and GPU paths: AND a
// request's feature bitsets over policies and test the result against the permit and forbid
// masks. Plain arrays only (kernels never see engine types). Written once as
// __host__ __device__ so that CPU tests exercise the very code the GPU runs.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GOVMESH_HD __host__ __device__
#else
#define GOVMESH_HD
#endif

namespace govmesh::kernels {

/// Result bits of matchWords.
enum MatchBits : uint32_t { kAnyPermit = 1u, kAnyForbid = 2u };

/// ANDs `featureCount` bitsets of `words` 64-bit words each (feature f's bitset starts at
/// features[f * words]) and reports whether the match set meets the permit and forbid masks.
GOVMESH_HD inline uint32_t matchWords(const uint64_t* features, uint32_t featureCount, uint32_t words, const uint64_t* permit,
                                      const uint64_t* forbid) {
  uint32_t bits = 0;
  for (uint32_t w = 0; w < words; ++w) {
    uint64_t m = ~uint64_t{0};
    for (uint32_t f = 0; f < featureCount; ++f) m &= features[uint64_t{f} * words + w];
    if (m & permit[w]) bits |= kAnyPermit;
    if (m & forbid[w]) bits |= kAnyForbid;
  }
  return bits;
}

}  // namespace govmesh::kernels
