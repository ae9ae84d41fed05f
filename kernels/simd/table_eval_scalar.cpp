// The scalar table kernel: the reference every other backend is compared with. Built always.
#include <xsimd/xsimd.hpp>

#include "kernels/simd/table_eval.h"

namespace govmesh::kernels {

void evalTableScalar(const TableView& t, const uint32_t* codes, size_t n, size_t begin, size_t end, uint8_t* flags, uint64_t* out) {
  for (size_t i = begin; i < end; ++i) flags[i] = evalRequestWords(t, codes, n, i, 0, t.words, out + i * 3 * size_t{t.words});
}

// xsimd reads CPUID; both features must also have been compiled in (they always are on x86-64).
bool cpuHasAvx2() { return xsimd::available_architectures().avx2; }
bool cpuHasAvx512() {
  auto a = xsimd::available_architectures();
  return a.avx512f && a.avx512cd && a.avx512dq && a.avx512bw;
}

}  // namespace govmesh::kernels
