// Ed25519 verification on CUDA device 0: one signature per thread, each thread running the
// GOVMESH_HD core of ed25519_core.h (hash, strict decoding, cofactored check) that the CPU tests
// exercise.
//
// Host side: signatures are packed into chunks, each chunk one contiguous pinned buffer
//   [keys 32·m | signatures 64·m | message offsets 4·(m+1) | message bytes]
// so that it crosses PCIe in one copy. Chunks go round-robin to a few streams, so the copy of
// one chunk overlaps the kernel of another and the host packs the next while both run. Inputs of
// the wrong length never reach the device: they are invalid by the criterion and decided here.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/ed25519_core.h"
#include "kernels/cuda/ed25519_cuda.h"

namespace govmesh::kernels {

namespace {

constexpr int kStreams = 4;
// Signatures per chunk: enough to fill an H100 (132 SMs × a few blocks of 128 threads, with
// latency hiding) several times over, small enough that a large batch forms several chunks to
// overlap.
constexpr size_t kChunkSigs = 32768;
// Message bytes per chunk (a chunk closes early when its messages reach this).
constexpr size_t kChunkMsgBytes = size_t{8} << 20;
// A message longer than this is verified on the host by the same core: on the device one thread
// would hash it alone, holding its whole chunk back.
constexpr size_t kDeviceMaxMsg = size_t{64} << 10;
// TODO(perf): for sm_90, ptxas (nvcc 13) reports 240 registers and a 2.3 KB stack frame per
// thread, so an SM holds 2 blocks of 128 (8 warps). Try __launch_bounds__(128, 4) (at most 128
// registers, some spills) and other block sizes on a real H100; keep whichever measures faster.
constexpr int kThreadsPerBlock = 128;

// Per-signature record layout inside a chunk buffer.
constexpr size_t kKeyBytes = 32;
constexpr size_t kSigBytes = 64;

__global__ void __launch_bounds__(kThreadsPerBlock)
    ed25519VerifyKernel(const uint8_t* chunk, uint32_t m, size_t msgBase, uint8_t* verdicts) {
  uint32_t j = blockIdx.x * uint32_t{kThreadsPerBlock} + threadIdx.x;
  if (j >= m) return;
  const uint8_t* keys = chunk;
  const uint8_t* sigs = keys + size_t{m} * kKeyBytes;
  const uint32_t* offsets = reinterpret_cast<const uint32_t*>(sigs + size_t{m} * kSigBytes);
  const uint8_t* msgs = chunk + msgBase;
  uint32_t begin = offsets[j], end = offsets[j + 1];
  verdicts[j] = ed25519VerifySingle(keys + size_t{j} * kKeyBytes, kKeyBytes, sigs + size_t{j} * kSigBytes, kSigBytes, msgs + begin, end - begin) ? 1 : 0;
}

// Bytes before the message area of a chunk of m signatures; rounded up so the offsets array
// (4-byte words) is aligned and the message area starts on a 16-byte boundary.
size_t headerBytes(size_t m) {
  size_t offsetsEnd = m * (kKeyBytes + kSigBytes) + (m + 1) * sizeof(uint32_t);
  return (offsetsEnd + 15) & ~size_t{15};
}

// One stream's buffers: a pinned staging area, its device twin, and verdicts both sides. The
// chunk last launched on this slot is remembered so its verdicts can be scattered once the
// stream finishes it.
struct Slot {
  cudaStream_t stream = nullptr;
  uint8_t* hostChunk = nullptr;  // pinned
  uint8_t* devChunk = nullptr;
  uint8_t* hostVerdicts = nullptr;  // pinned
  uint8_t* devVerdicts = nullptr;
  size_t chunkCapacity = 0;  // bytes in hostChunk / devChunk
  size_t verdictCapacity = 0;
  std::vector<size_t> pending;  // caller index of each signature of the chunk in flight

  bool reserve(size_t chunkBytes, size_t sigs) {
    if (chunkBytes > chunkCapacity) {
      // Freed before the larger allocation; a failing free means a broken context, reported.
      GOVMESH_CUDA_CHECK(cudaFreeHost(hostChunk));
      GOVMESH_CUDA_CHECK(cudaFree(devChunk));
      hostChunk = devChunk = nullptr;
      chunkCapacity = 0;
      size_t cap = std::max(chunkBytes, headerBytes(kChunkSigs) + kChunkMsgBytes / 4);
      GOVMESH_CUDA_CHECK(cudaHostAlloc(&hostChunk, cap, cudaHostAllocDefault));
      GOVMESH_CUDA_CHECK(cudaMalloc(&devChunk, cap));
      chunkCapacity = cap;
    }
    if (sigs > verdictCapacity) {
      GOVMESH_CUDA_CHECK(cudaFreeHost(hostVerdicts));
      GOVMESH_CUDA_CHECK(cudaFree(devVerdicts));
      hostVerdicts = devVerdicts = nullptr;
      verdictCapacity = 0;
      size_t cap = std::max(sigs, kChunkSigs);
      GOVMESH_CUDA_CHECK(cudaHostAlloc(&hostVerdicts, cap, cudaHostAllocDefault));
      GOVMESH_CUDA_CHECK(cudaMalloc(&devVerdicts, cap));
      verdictCapacity = cap;
    }
    return true;
  }
};

// Device state kept between calls: allocating pinned and device memory costs milliseconds, more
// than verifying a small batch.
struct Ed25519CudaContext {
  std::mutex mutex;  // one batch at a time uses the slots
  bool ready = false;
  Slot slots[kStreams];

  bool init() {
    // Per call: the device is a property of the calling thread, and batches come from many.
    GOVMESH_CUDA_CHECK(cudaSetDevice(0));
    if (ready) return true;
    for (Slot& s : slots)
      if (!s.stream) GOVMESH_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    ready = true;
    return true;
  }
};

Ed25519CudaContext& context() {
  // Never destroyed: freeing device memory from a static destructor races the CUDA runtime's own
  // teardown at exit, and the driver reclaims everything with the process anyway.
  static auto* ctx = new Ed25519CudaContext;
  return *ctx;
}

// Waits for the chunk in flight on `s` (if any) and copies its verdicts to the caller's `out`.
bool finishSlot(Slot& s, uint8_t* out) {
  if (s.pending.empty()) return true;
  GOVMESH_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  for (size_t j = 0; j < s.pending.size(); ++j) out[s.pending[j]] = s.hostVerdicts[j] & 1;
  s.pending.clear();
  return true;
}

// Packs the signatures in[idx[0..m)] into `s`'s pinned buffer and launches copy-in, kernel and
// copy-out on its stream. `s` must have nothing in flight.
bool launchChunk(Slot& s, const CudaSigInput* in, const std::vector<size_t>& idx, size_t msgBytes) {
  const size_t m = idx.size();
  const size_t base = headerBytes(m);
  const size_t total = base + msgBytes;
  if (!s.reserve(total, m)) return false;
  uint8_t* keys = s.hostChunk;
  uint8_t* sigs = keys + m * kKeyBytes;
  auto* offsets = reinterpret_cast<uint32_t*>(sigs + m * kSigBytes);
  uint8_t* msgs = s.hostChunk + base;
  uint32_t at = 0;
  for (size_t j = 0; j < m; ++j) {
    const CudaSigInput& x = in[idx[j]];
    std::memcpy(keys + j * kKeyBytes, x.pk, kKeyBytes);
    std::memcpy(sigs + j * kSigBytes, x.sig, kSigBytes);
    offsets[j] = at;
    if (x.msgLen != 0) std::memcpy(msgs + at, x.msg, x.msgLen);
    at += static_cast<uint32_t>(x.msgLen);
  }
  offsets[m] = at;
  GOVMESH_CUDA_CHECK(cudaMemcpyAsync(s.devChunk, s.hostChunk, total, cudaMemcpyHostToDevice, s.stream));
  unsigned blocks = static_cast<unsigned>((m + kThreadsPerBlock - 1) / kThreadsPerBlock);
  ed25519VerifyKernel<<<blocks, kThreadsPerBlock, 0, s.stream>>>(s.devChunk, static_cast<uint32_t>(m), base, s.devVerdicts);
  GOVMESH_CUDA_CHECK(cudaGetLastError());
  GOVMESH_CUDA_CHECK(cudaMemcpyAsync(s.hostVerdicts, s.devVerdicts, m, cudaMemcpyDeviceToHost, s.stream));
  s.pending = idx;
  return true;
}

bool verifyOnDevice(Ed25519CudaContext& ctx, const CudaSigInput* in, size_t n, uint8_t* out) {
  if (!ctx.init()) return false;
  std::vector<size_t> idx;
  idx.reserve(std::min(n, kChunkSigs));
  size_t msgBytes = 0;
  int next = 0;
  auto flush = [&]() -> bool {
    if (idx.empty()) return true;
    Slot& s = ctx.slots[next];
    next = (next + 1) % kStreams;
    // The slot's previous chunk must be done before its pinned buffer is refilled.
    if (!finishSlot(s, out) || !launchChunk(s, in, idx, msgBytes)) return false;
    idx.clear();
    msgBytes = 0;
    return true;
  };
  for (size_t i = 0; i < n; ++i) {
    const CudaSigInput& x = in[i];
    if (x.pkLen != kKeyBytes || x.sigLen != kSigBytes || !x.pk || !x.sig || (x.msgLen != 0 && !x.msg)) {
      out[i] = 0;  // criterion 1: only a 32-byte key and a 64-byte signature can be valid
      continue;
    }
    if (x.msgLen > kDeviceMaxMsg) {
      out[i] = ed25519VerifySingle(x.pk, x.pkLen, x.sig, x.sigLen, x.msg, x.msgLen) ? 1 : 0;
      continue;
    }
    if (idx.size() == kChunkSigs || msgBytes + x.msgLen > kChunkMsgBytes) {
      if (!flush()) return false;
    }
    idx.push_back(i);
    msgBytes += x.msgLen;
  }
  if (!flush()) return false;
  for (Slot& s : ctx.slots)
    if (!finishSlot(s, out)) return false;
  return true;
}

}  // namespace

bool ed25519VerifyCuda(const CudaSigInput* in, size_t n, uint8_t* out) {
  if (n == 0) return true;
  if (!in || !out) return false;
  Ed25519CudaContext& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  if (verifyOnDevice(ctx, in, n, out)) return true;
  // Leave no chunk in flight that could write into a pinned buffer the next call refills.
  for (Slot& s : ctx.slots) {
    if (s.stream) cudaStreamSynchronize(s.stream);
    s.pending.clear();
  }
  cudaGetLastError();
  return false;
}

}  // namespace govmesh::kernels
