// The GPU side of govmesh as far as it exists so far: device discovery and a batched run of
// matchWords on the GPU, used by the gpu-labelled tests. Built only when GOVMESH_WITH_CUDA.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace govmesh::kernels {

/// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int cudaDeviceCount();

/// Name and compute capability of device 0, for reports ("NVIDIA H100 80GB HBM3, sm_90").
std::string cudaDeviceDescription();

/// Runs matchWords for `requests` requests on device 0. `features` holds, per request,
/// featureCount * words words. Returns false (and leaves `out` untouched) on any CUDA error:
/// callers fall back to the CPU path, never to an allow.
bool matchWordsOnGpu(const std::vector<uint64_t>& features, uint32_t requests, uint32_t featureCount, uint32_t words,
                     const std::vector<uint64_t>& permit, const std::vector<uint64_t>& forbid, std::vector<uint32_t>& out);

}  // namespace govmesh::kernels
