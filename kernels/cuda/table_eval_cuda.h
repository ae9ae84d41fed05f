// The CUDA table-evaluation backend's device side: the table stays resident on the GPU;
// request codes stream in through pinned host memory in chunks on several CUDA streams, so
// copies of one chunk overlap the kernel of another. Plain arrays only. Every CUDA call is
// checked; any failure makes run() return false (callers fall back to the CPU or deny).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "kernels/cuda/cuda_runtime_probe.h"
#include "kernels/cuda/table_eval_core.h"

namespace govmesh::kernels {

class CudaTableRunner {
 public:
  CudaTableRunner();
  ~CudaTableRunner();
  CudaTableRunner(const CudaTableRunner&) = delete;
  CudaTableRunner& operator=(const CudaTableRunner&) = delete;

  /// Copies the table to the device (rowsWords words of rows, features, masks); replaces any
  /// table uploaded before.
  [[nodiscard]] bool upload(const TableView& host, size_t rowsWords);
  /// Evaluates n requests (codes feature-major, featureCount * n) into flags (n) and bits
  /// (n * 3 * words), as the CPU kernels do.
  [[nodiscard]] bool run(const uint32_t* codes, size_t n, uint8_t* flags, uint64_t* bits);
  /// Device time of the last run() in milliseconds (CUDA events): copies in, kernels and
  /// copies out of all chunks.
  float lastRunMs() const;
  /// Re-runs only the kernel over the n requests of the last run() (codes already on the
  /// device), `reps` times; returns milliseconds per run, or a negative value on error.
  float kernelOnlyMs(size_t n, int reps);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace govmesh::kernels
