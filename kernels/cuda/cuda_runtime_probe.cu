#include <cuda_runtime.h>

#include "kernels/cuda/cuda_runtime_probe.h"
#include "kernels/cuda/match_words.h"

namespace govmesh::kernels {

namespace {

// Every CUDA call is checked; the first failure makes the whole operation report false.
#define GOVMESH_CUDA_TRY(call)            \
  do {                                    \
    if ((call) != cudaSuccess) return false; \
  } while (0)

__global__ void matchWordsKernel(const uint64_t* features, uint32_t requests, uint32_t featureCount, uint32_t words,
                                 const uint64_t* permit, const uint64_t* forbid, uint32_t* out) {
  uint32_t r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= requests) return;
  out[r] = matchWords(features + uint64_t{r} * featureCount * words, featureCount, words, permit, forbid);
}

}  // namespace

int cudaDeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return n;
}

std::string cudaDeviceDescription() {
  cudaDeviceProp p{};
  if (cudaDeviceCount() == 0 || cudaGetDeviceProperties(&p, 0) != cudaSuccess) return "no CUDA device";
  return std::string(p.name) + ", sm_" + std::to_string(p.major) + std::to_string(p.minor);
}

bool matchWordsOnGpu(const std::vector<uint64_t>& features, uint32_t requests, uint32_t featureCount, uint32_t words,
                     const std::vector<uint64_t>& permit, const std::vector<uint64_t>& forbid, std::vector<uint32_t>& out) {
  if (features.size() != uint64_t{requests} * featureCount * words || permit.size() != words || forbid.size() != words) return false;
  if (requests == 0) {
    out.clear();
    return true;
  }
  uint64_t *dFeatures = nullptr, *dPermit = nullptr, *dForbid = nullptr;
  uint32_t* dOut = nullptr;
  auto release = [&] {
    cudaFree(dFeatures);
    cudaFree(dPermit);
    cudaFree(dForbid);
    cudaFree(dOut);
  };
  bool ok = [&]() -> bool {
    GOVMESH_CUDA_TRY(cudaMalloc(&dFeatures, features.size() * sizeof(uint64_t)));
    GOVMESH_CUDA_TRY(cudaMalloc(&dPermit, words * sizeof(uint64_t)));
    GOVMESH_CUDA_TRY(cudaMalloc(&dForbid, words * sizeof(uint64_t)));
    GOVMESH_CUDA_TRY(cudaMalloc(&dOut, requests * sizeof(uint32_t)));
    GOVMESH_CUDA_TRY(cudaMemcpy(dFeatures, features.data(), features.size() * sizeof(uint64_t), cudaMemcpyHostToDevice));
    GOVMESH_CUDA_TRY(cudaMemcpy(dPermit, permit.data(), words * sizeof(uint64_t), cudaMemcpyHostToDevice));
    GOVMESH_CUDA_TRY(cudaMemcpy(dForbid, forbid.data(), words * sizeof(uint64_t), cudaMemcpyHostToDevice));
    uint32_t threads = 256, blocks = (requests + threads - 1) / threads;
    matchWordsKernel<<<blocks, threads>>>(dFeatures, requests, featureCount, words, dPermit, dForbid, dOut);
    GOVMESH_CUDA_TRY(cudaGetLastError());
    std::vector<uint32_t> host(requests);
    GOVMESH_CUDA_TRY(cudaMemcpy(host.data(), dOut, requests * sizeof(uint32_t), cudaMemcpyDeviceToHost));
    out = std::move(host);
    return true;
  }();
  release();
  return ok;
}

}  // namespace govmesh::kernels
