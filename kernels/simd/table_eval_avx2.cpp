// AVX2 instantiation of the SIMD table kernel; this file alone is compiled with -mavx2.
#include "kernels/simd/table_eval_simd.hpp"

namespace govmesh::kernels {

void evalTableAvx2(const TableView& t, const uint32_t* codes, size_t n, size_t begin, size_t end, uint8_t* flags, uint64_t* out) {
  evalTableBatch(xsimd::avx2{}, t, codes, n, begin, end, flags, out);
}

}  // namespace govmesh::kernels
