// SHA-256 of a batch of messages on the GPU, one message per thread, running the same
// __host__ __device__ code (sha256_core.h) as the CPU's scalar backend.
//
// The messages are packed end to end into one pinned host buffer with a table of offsets, so the
// whole batch crosses PCIe in two copies and the digests come back in one. The device and pinned
// buffers are kept between calls (grow-only, one set per process, guarded by a mutex), since
// allocating them costs more than hashing a typical batch.
#include <cuda_runtime.h>

#include <cstring>
#include <mutex>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/sha256_core.h"
#include "kernels/cuda/sha256_cuda.h"

namespace govmesh::kernels {

namespace {

constexpr int kThreadsPerBlock = 128;

// Thread i hashes bytes [offsets[i], offsets[i+1]) of `data` into out + 32*i.
__global__ void sha256BatchKernel(const uint8_t* data, const uint64_t* offsets, size_t n, uint8_t* out) {
  size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x;
  if (i >= n) return;
  uint64_t begin = offsets[i];
  uint8_t digest[32];
  sha256(data + begin, static_cast<size_t>(offsets[i + 1] - begin), digest);
  for (int k = 0; k < 32; ++k) out[32 * i + k] = digest[k];
}

// A grow-only buffer, on the device or pinned on the host.
struct Buffer {
  void* ptr = nullptr;
  size_t capacity = 0;
  bool pinned = false;

  bool reserve(size_t bytes) {
    if (bytes <= capacity) return true;
    release();
    size_t want = bytes < 4096 ? 4096 : bytes + bytes / 2;
    cudaError_t err = pinned ? cudaMallocHost(&ptr, want) : cudaMalloc(&ptr, want);
    if (err != cudaSuccess) {
      cudaGetLastError();
      ptr = nullptr;
      return false;
    }
    capacity = want;
    return true;
  }
  void release() {
    if (ptr != nullptr) {
      // A failed free leaves nothing to recover; the buffer is forgotten either way.
      if ((pinned ? cudaFreeHost(ptr) : cudaFree(ptr)) != cudaSuccess) cudaGetLastError();
    }
    ptr = nullptr;
    capacity = 0;
  }
};

struct BatchBuffers {
  std::mutex mutex;
  Buffer hostData{nullptr, 0, true}, hostOffsets{nullptr, 0, true}, hostOut{nullptr, 0, true};
  Buffer devData, devOffsets, devOut;
};

BatchBuffers& batchBuffers() {
  // Never destroyed: freeing CUDA memory from a static destructor can run after the driver
  // has shut down.
  static BatchBuffers* buffers = new BatchBuffers;
  return *buffers;
}

}  // namespace

bool sha256Cuda(const uint8_t* const* data, const size_t* lens, size_t n, uint8_t* out) {
  if (n == 0) return true;
  GOVMESH_CUDA_CHECK(cudaSetDevice(0));
  BatchBuffers& b = batchBuffers();
  std::lock_guard<std::mutex> lock(b.mutex);
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += lens[i];
  size_t dataBytes = total == 0 ? 1 : total, offsetBytes = (n + 1) * sizeof(uint64_t), outBytes = 32 * n;
  if (!b.hostData.reserve(dataBytes) || !b.hostOffsets.reserve(offsetBytes) || !b.hostOut.reserve(outBytes) ||
      !b.devData.reserve(dataBytes) || !b.devOffsets.reserve(offsetBytes) || !b.devOut.reserve(outBytes))
    return false;
  auto* hostData = static_cast<uint8_t*>(b.hostData.ptr);
  auto* hostOffsets = static_cast<uint64_t*>(b.hostOffsets.ptr);
  uint64_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    hostOffsets[i] = at;
    if (lens[i] != 0) std::memcpy(hostData + at, data[i], lens[i]);
    at += lens[i];
  }
  hostOffsets[n] = at;
  GOVMESH_CUDA_CHECK(cudaMemcpy(b.devData.ptr, hostData, dataBytes, cudaMemcpyHostToDevice));
  GOVMESH_CUDA_CHECK(cudaMemcpy(b.devOffsets.ptr, hostOffsets, offsetBytes, cudaMemcpyHostToDevice));
  size_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  sha256BatchKernel<<<static_cast<unsigned>(blocks), kThreadsPerBlock>>>(
      static_cast<const uint8_t*>(b.devData.ptr), static_cast<const uint64_t*>(b.devOffsets.ptr), n,
      static_cast<uint8_t*>(b.devOut.ptr));
  GOVMESH_CUDA_CHECK(cudaGetLastError());
  GOVMESH_CUDA_CHECK(cudaMemcpy(b.hostOut.ptr, b.devOut.ptr, outBytes, cudaMemcpyDeviceToHost));
  std::memcpy(out, b.hostOut.ptr, outBytes);
  return true;
}

}  // namespace govmesh::kernels
