// CPU table-evaluation kernels, one per instruction set. Each evaluates requests [begin, end)
// of a featurized batch: flags[i] and out[i * 3 * words ...] (sat, err, amb) per request. The
// bitsets of a request whose flags are 0 are not needed (no policy satisfied, errored or
// ambiguous) and may be left unwritten.
// Kernels see plain arrays only (kernels/cuda/table_eval_core.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/table_eval_core.h"

namespace govmesh::kernels {

/// The reference: evalRequestWords word by word.
void evalTableScalar(const TableView& t, const uint32_t* codes, size_t n, size_t begin, size_t end, uint8_t* flags, uint64_t* out);
/// AVX2 (4 words per step). Call only when the CPU has AVX2.
void evalTableAvx2(const TableView& t, const uint32_t* codes, size_t n, size_t begin, size_t end, uint8_t* flags, uint64_t* out);
/// AVX-512 (8 words per step). Call only when the CPU has AVX-512 F/CD/DQ/BW.
void evalTableAvx512(const TableView& t, const uint32_t* codes, size_t n, size_t begin, size_t end, uint8_t* flags, uint64_t* out);

/// Whether this CPU can run the AVX2 / AVX-512 kernels (and whether they were compiled in).
bool cpuHasAvx2();
bool cpuHasAvx512();

}  // namespace govmesh::kernels
