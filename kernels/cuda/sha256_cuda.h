// SHA-256 of many messages on an NVIDIA GPU: one message per thread, the compression function
// being the __host__ __device__ code of sha256_core.h that the CPU tests exercise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace govmesh::kernels {

/// Hashes `n` messages (data[i], lens[i]) on CUDA device 0 into out + 32*i. Returns false (out
/// unspecified) on any CUDA error, so that callers fall back to the CPU.
bool sha256Cuda(const uint8_t* const* data, const size_t* lens, size_t n, uint8_t* out);

}  // namespace govmesh::kernels
