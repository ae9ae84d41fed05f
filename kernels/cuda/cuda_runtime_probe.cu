#include <cuda_runtime.h>

#include "kernels/cuda/cuda_runtime_probe.h"

namespace govmesh::kernels {


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

}  // namespace govmesh::kernels
