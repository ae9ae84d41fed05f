#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/table_eval_cuda.h"

namespace govmesh::kernels {

namespace {

constexpr int kStreams = 4;

// One thread per request, running the same core as the CPU backends. Most requests match no
// policy (flags 0) and need no bitsets, so only flagged requests take a slot in a compact
// output (index + sat/err/amb), which is all that crosses PCIe besides the flags. A flagged
// request runs the core a second time to write its bitsets into its slot, so unflagged
// requests cost no stores beyond their flag byte.
__global__ void tableEvalKernel(TableView t, const uint32_t* codes, size_t n, size_t begin, size_t end, uint8_t* flags,
                                unsigned int* counter, uint32_t* slots, uint64_t* compact) {
  size_t i = begin + blockIdx.x * size_t{blockDim.x} + threadIdx.x;
  if (i >= end) return;
  uint8_t fl = evalRequestWords(t, codes, n, i, 0, t.words, nullptr);
  flags[i] = fl;
  if (fl == 0) return;
  unsigned int slot = atomicAdd(counter, 1u);
  slots[slot] = static_cast<uint32_t>(i);
  evalRequestWords(t, codes, n, i, 0, t.words, compact + size_t{slot} * 3 * t.words);
}

}  // namespace

struct CudaTableRunner::State {
  TableView host{};
  TableView dev{};
  uint64_t* dRows = nullptr;
  uint64_t* dMeta = nullptr;  // featureOffset, permit, forbid, valid
  size_t capacity = 0;        // requests the buffers below hold
  uint32_t* dCodes = nullptr;
  uint8_t* dFlags = nullptr;
  uint64_t* dCompact = nullptr;  // bitsets of flagged requests, by slot
  uint32_t* dSlots = nullptr;    // request index of each slot
  unsigned int* dCounter = nullptr;
  uint32_t* hSlots = nullptr;    // pinned
  uint32_t* hCodes = nullptr;  // pinned
  uint8_t* hFlags = nullptr;   // pinned
  uint64_t* hBits = nullptr;   // pinned
  cudaStream_t streams[kStreams]{};
  cudaEvent_t start = nullptr, stop = nullptr;
  float kernelMs = 0;
  bool ready = false;

  void freeBatch() {
    cudaFree(dCodes);
    cudaFree(dFlags);
    cudaFree(dCompact);
    cudaFree(dSlots);
    cudaFree(dCounter);
    cudaFreeHost(hSlots);
    dCompact = nullptr;
    dSlots = nullptr;
    dCounter = nullptr;
    hSlots = nullptr;
    cudaFreeHost(hCodes);
    cudaFreeHost(hFlags);
    cudaFreeHost(hBits);
    dCodes = nullptr;
    dFlags = nullptr;
    hCodes = nullptr;
    hFlags = nullptr;
    hBits = nullptr;
    capacity = 0;
  }
  bool reserve(size_t n) {
    if (n <= capacity) return true;
    freeBatch();
    size_t cap = std::max<size_t>(n, 4096);
    size_t codesBytes = cap * std::max<uint32_t>(1, host.featureCount) * sizeof(uint32_t);
    size_t bitsBytes = cap * 3 * size_t{std::max<uint32_t>(1, host.words)} * sizeof(uint64_t);
    GOVMESH_CUDA_CHECK(cudaMalloc(&dCodes, codesBytes));
    GOVMESH_CUDA_CHECK(cudaMalloc(&dFlags, cap));
    GOVMESH_CUDA_CHECK(cudaMalloc(&dCompact, bitsBytes));
    GOVMESH_CUDA_CHECK(cudaMalloc(&dSlots, cap * sizeof(uint32_t)));
    GOVMESH_CUDA_CHECK(cudaMalloc(&dCounter, sizeof(unsigned int)));
    GOVMESH_CUDA_CHECK(cudaHostAlloc(&hSlots, cap * sizeof(uint32_t), cudaHostAllocDefault));
    GOVMESH_CUDA_CHECK(cudaHostAlloc(&hCodes, codesBytes, cudaHostAllocDefault));
    GOVMESH_CUDA_CHECK(cudaHostAlloc(&hFlags, cap, cudaHostAllocDefault));
    GOVMESH_CUDA_CHECK(cudaHostAlloc(&hBits, bitsBytes, cudaHostAllocDefault));
    capacity = cap;
    return true;
  }
};

CudaTableRunner::CudaTableRunner() : s_(std::make_unique<State>()) {}

CudaTableRunner::~CudaTableRunner() {
  if (!s_) return;
  s_->freeBatch();
  cudaFree(s_->dRows);
  cudaFree(s_->dMeta);
  for (cudaStream_t st : s_->streams)
    if (st) cudaStreamDestroy(st);
  if (s_->start) cudaEventDestroy(s_->start);
  if (s_->stop) cudaEventDestroy(s_->stop);
}

bool CudaTableRunner::upload(const TableView& host, size_t rowsWords) {
  State& s = *s_;
  s.ready = false;
  if (!s.streams[0]) {
    for (cudaStream_t& st : s.streams) GOVMESH_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    GOVMESH_CUDA_CHECK(cudaEventCreate(&s.start));
    GOVMESH_CUDA_CHECK(cudaEventCreate(&s.stop));
  }
  cudaFree(s.dRows);
  cudaFree(s.dMeta);
  s.dRows = nullptr;
  s.dMeta = nullptr;
  s.freeBatch();  // batch buffers are sized by the table's words and features
  s.host = host;
  const size_t f = host.featureCount, w = host.words;
  GOVMESH_CUDA_CHECK(cudaMalloc(&s.dRows, std::max<size_t>(1, rowsWords) * sizeof(uint64_t)));
  GOVMESH_CUDA_CHECK(cudaMalloc(&s.dMeta, std::max<size_t>(1, f + 3 * w) * sizeof(uint64_t)));
  if (rowsWords) GOVMESH_CUDA_CHECK(cudaMemcpy(s.dRows, host.rows, rowsWords * sizeof(uint64_t), cudaMemcpyHostToDevice));
  if (f) GOVMESH_CUDA_CHECK(cudaMemcpy(s.dMeta, host.featureOffset, f * sizeof(uint64_t), cudaMemcpyHostToDevice));
  if (w) {
    GOVMESH_CUDA_CHECK(cudaMemcpy(s.dMeta + f, host.permitMask, w * sizeof(uint64_t), cudaMemcpyHostToDevice));
    GOVMESH_CUDA_CHECK(cudaMemcpy(s.dMeta + f + w, host.forbidMask, w * sizeof(uint64_t), cudaMemcpyHostToDevice));
    GOVMESH_CUDA_CHECK(cudaMemcpy(s.dMeta + f + 2 * w, host.validMask, w * sizeof(uint64_t), cudaMemcpyHostToDevice));
  }
  s.dev = host;
  s.dev.rows = s.dRows;
  s.dev.featureOffset = s.dMeta;
  s.dev.permitMask = s.dMeta + f;
  s.dev.forbidMask = s.dMeta + f + w;
  s.dev.validMask = s.dMeta + f + 2 * w;
  s.ready = true;
  return true;
}

bool CudaTableRunner::run(const uint32_t* codes, size_t n, uint8_t* flags, uint64_t* bits) {
  State& s = *s_;
  if (!s.ready) return false;
  if (n == 0) return true;
  if (!s.reserve(n)) return false;
  const size_t f = s.host.featureCount, w = s.host.words;
  std::memcpy(s.hCodes, codes, f * n * sizeof(uint32_t));
  // Chunks of the batch on separate streams: the copy-in of chunk c+1 overlaps the kernel of
  // chunk c. Codes are feature-major, so each chunk copies one segment per feature.
  const size_t chunk = (n + kStreams - 1) / kStreams;
  GOVMESH_CUDA_CHECK(cudaMemset(s.dCounter, 0, sizeof(unsigned int)));
  GOVMESH_CUDA_CHECK(cudaEventRecord(s.start, s.streams[0]));
  for (int c = 0; c < kStreams; ++c) {
    size_t b = c * chunk, e = std::min(n, b + chunk);
    if (b >= e) break;
    cudaStream_t st = s.streams[c];
    for (size_t k = 0; k < f; ++k)
      GOVMESH_CUDA_CHECK(cudaMemcpyAsync(s.dCodes + k * n + b, s.hCodes + k * n + b, (e - b) * sizeof(uint32_t), cudaMemcpyHostToDevice, st));
    unsigned threads = 128, blocks = static_cast<unsigned>((e - b + threads - 1) / threads);
    tableEvalKernel<<<blocks, threads, 0, st>>>(s.dev, s.dCodes, n, b, e, s.dFlags, s.dCounter, s.dSlots, s.dCompact);
    GOVMESH_CUDA_CHECK(cudaGetLastError());
    GOVMESH_CUDA_CHECK(cudaMemcpyAsync(s.hFlags + b, s.dFlags + b, e - b, cudaMemcpyDeviceToHost, st));
  }
  for (cudaStream_t st : s.streams) GOVMESH_CUDA_CHECK(cudaStreamSynchronize(st));
  // Only the flagged requests' bitsets come back.
  unsigned int flagged = 0;
  GOVMESH_CUDA_CHECK(cudaMemcpy(&flagged, s.dCounter, sizeof flagged, cudaMemcpyDeviceToHost));
  if (flagged > n) return false;
  if (flagged) {
    GOVMESH_CUDA_CHECK(cudaMemcpyAsync(s.hSlots, s.dSlots, flagged * sizeof(uint32_t), cudaMemcpyDeviceToHost, s.streams[0]));
    GOVMESH_CUDA_CHECK(cudaMemcpyAsync(s.hBits, s.dCompact, size_t{flagged} * 3 * w * sizeof(uint64_t), cudaMemcpyDeviceToHost, s.streams[0]));
  }
  GOVMESH_CUDA_CHECK(cudaEventRecord(s.stop, s.streams[0]));
  GOVMESH_CUDA_CHECK(cudaEventSynchronize(s.stop));
  GOVMESH_CUDA_CHECK(cudaEventElapsedTime(&s.kernelMs, s.start, s.stop));
  std::memcpy(flags, s.hFlags, n);
  for (unsigned int k = 0; k < flagged; ++k) {
    uint32_t i = s.hSlots[k];
    if (i >= n) return false;
    std::memcpy(bits + size_t{i} * 3 * w, s.hBits + size_t{k} * 3 * w, 3 * w * sizeof(uint64_t));
  }
  return true;
}

float CudaTableRunner::lastRunMs() const { return s_->kernelMs; }

float CudaTableRunner::kernelOnlyMs(size_t n, int reps) {
  State& s = *s_;
  if (!s.ready || n == 0 || n > s.capacity || reps <= 0) return -1;
  unsigned threads = 128, blocks = static_cast<unsigned>((n + threads - 1) / threads);
  if (cudaEventRecord(s.start, s.streams[0]) != cudaSuccess) return -1;
  for (int r = 0; r < reps; ++r) {
    if (cudaMemsetAsync(s.dCounter, 0, sizeof(unsigned int), s.streams[0]) != cudaSuccess) return -1;
    tableEvalKernel<<<blocks, threads, 0, s.streams[0]>>>(s.dev, s.dCodes, n, 0, n, s.dFlags, s.dCounter, s.dSlots, s.dCompact);
  }
  if (cudaGetLastError() != cudaSuccess || cudaEventRecord(s.stop, s.streams[0]) != cudaSuccess ||
      cudaEventSynchronize(s.stop) != cudaSuccess)
    return -1;
  float ms = 0;
  if (cudaEventElapsedTime(&ms, s.start, s.stop) != cudaSuccess) return -1;
  return ms / static_cast<float>(reps);
}

}  // namespace govmesh::kernels
