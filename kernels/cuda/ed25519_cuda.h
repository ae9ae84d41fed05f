// Ed25519 verification on an NVIDIA GPU: one signature per thread, the per-signature math being
// the __host__ __device__ code of ed25519_core.h that the CPU tests exercise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace govmesh::kernels {

/// One signature to check, by caller-owned pointers (lengths checked by the kernel's host side).
struct CudaSigInput {
  const uint8_t* pk;
  size_t pkLen;
  const uint8_t* sig;
  size_t sigLen;
  const uint8_t* msg;
  size_t msgLen;
};

/// Verifies `n` signatures on CUDA device 0, out[i] = 1 valid / 0 invalid. Returns false (out
/// unspecified) on any CUDA error, so that callers fall back to the CPU or deny.
bool ed25519VerifyCuda(const CudaSigInput* in, size_t n, uint8_t* out);

}  // namespace govmesh::kernels
