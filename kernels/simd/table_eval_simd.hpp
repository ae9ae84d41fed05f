// The SIMD table kernel, written once with xsimd and instantiated per instruction set by the
// thin table_eval_<isa>.cpp files (each compiled with its own ISA flags, on that file alone).
// Vectors run across a request's policy words: batch::size words per step, the leftover words
// through the shared scalar core, so every backend computes bit for bit the same thing.
#pragma once

#include <algorithm>
#include <xsimd/xsimd.hpp>

#include "kernels/simd/table_eval.h"

namespace govmesh::kernels {

template <class Arch>
void evalTableBatch(Arch, const TableView& t, const uint32_t* codes, size_t n, size_t begin, size_t end, uint8_t* flags,
                    uint64_t* out) {
  using V = xsimd::batch<uint64_t, Arch>;
  constexpr uint32_t W = static_cast<uint32_t>(V::size);
  const uint32_t words = t.words;
  const uint32_t vecWords = words / W * W;
  const V zero(uint64_t{0});
  // Most requests match no policy at all (flags 0, bits not needed): their bitsets go to a
  // stack buffer and are copied out only when some flag is set, which saves the stores.
  constexpr uint32_t kLocalWords = 64;
  alignas(64) uint64_t local[3 * kLocalWords];
  const bool useLocal = words <= kLocalWords;
  for (size_t i = begin; i < end; ++i) {
    uint64_t* dst = out + i * 3 * size_t{words};
    uint64_t* o = useLocal ? local : dst;
    V anyPermit = zero, anyForbid = zero, anyErr = zero, anyAmb = zero;
    for (uint32_t k = 0; k < vecWords; k += W) {
      V s = V::load_unaligned(t.validMask + k), tt = ~zero, anyE = zero, anyF = zero;
      for (uint32_t f = 0; f < t.featureCount; ++f) {
        const uint64_t* row = t.rows + t.featureOffset[f] + uint64_t{codes[f * n + i]} * 3 * words;
        V rt = V::load_unaligned(row + words + k);
        V re = V::load_unaligned(row + 2 * words + k);
        s &= V::load_unaligned(row + k);
        tt &= rt;
        anyE |= re;
        anyF |= ~(rt | re);
      }
      V sat = s & tt, err = s & anyE & ~anyF, amb = s & anyE & anyF;
      sat.store_unaligned(o + k);
      err.store_unaligned(o + words + k);
      amb.store_unaligned(o + 2 * words + k);
      anyPermit |= sat & V::load_unaligned(t.permitMask + k);
      anyForbid |= sat & V::load_unaligned(t.forbidMask + k);
      anyErr |= err;
      anyAmb |= amb;
    }
    uint8_t fl = evalRequestWords(t, codes, n, i, vecWords, words, o);
    if (xsimd::any(anyPermit != zero)) fl |= kFlagPermitSat;
    if (xsimd::any(anyForbid != zero)) fl |= kFlagForbidSat;
    if (xsimd::any(anyErr != zero)) fl |= kFlagError;
    if (xsimd::any(anyAmb != zero)) fl |= kFlagAmbiguous;
    flags[i] = fl;
    if (useLocal && fl) std::copy(local, local + 3 * size_t{words}, dst);
  }
}

}  // namespace govmesh::kernels
