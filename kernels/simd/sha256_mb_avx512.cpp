// Multi-buffer SHA-256 with AVX-512: 16 messages per vector. Compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512dq on this file alone; callers check cpuHasAvx512() first.

// GCC 12's own avx512fintrin.h seeds "undefined" vectors with a self-initialised variable, and
// -Wmaybe-uninitialized reports every inlined intrinsic as a use of it: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/simd/sha256_mb.hpp"
#include "kernels/simd/sha256_simd.h"

namespace govmesh::simd {
namespace {

// The vector operations sha256_mb.hpp needs, on 16 lanes. AVX-512 rotates natively and folds
// each three-input boolean function (XOR of three rotations, Ch, Maj) into one vpternlogd.
struct Avx512Lanes {
  using Reg = __m512i;
  static constexpr size_t kLanes = 16;

  static Reg load(const uint32_t* p) { return _mm512_load_si512(p); }
  static void store(uint32_t* p, Reg v) { _mm512_store_si512(p, v); }
  static Reg add(Reg a, Reg b) { return _mm512_add_epi32(a, b); }
  static Reg broadcast(uint32_t k) { return _mm512_set1_epi32(static_cast<int>(k)); }
  // Truth tables over (x, y, z) = (0xF0, 0xCC, 0xAA): x^y^z = 0x96, Ch = 0xCA, Maj = 0xE8.
  static Reg xor3(Reg x, Reg y, Reg z) { return _mm512_ternarylogic_epi32(x, y, z, 0x96); }
  static Reg ch(Reg e, Reg f, Reg g) { return _mm512_ternarylogic_epi32(e, f, g, 0xCA); }
  static Reg maj(Reg a, Reg b, Reg c) { return _mm512_ternarylogic_epi32(a, b, c, 0xE8); }
  static Reg bigSigma0(Reg a) { return xor3(_mm512_ror_epi32(a, 2), _mm512_ror_epi32(a, 13), _mm512_ror_epi32(a, 22)); }
  static Reg bigSigma1(Reg e) { return xor3(_mm512_ror_epi32(e, 6), _mm512_ror_epi32(e, 11), _mm512_ror_epi32(e, 25)); }
  static Reg smallSigma0(Reg w) { return xor3(_mm512_ror_epi32(w, 7), _mm512_ror_epi32(w, 18), _mm512_srli_epi32(w, 3)); }
  static Reg smallSigma1(Reg w) { return xor3(_mm512_ror_epi32(w, 17), _mm512_ror_epi32(w, 19), _mm512_srli_epi32(w, 10)); }

  // w[t] = big-endian word t of every lane's block: a 16x16 transpose of 32-bit words, in four
  // stages (interleave words, then pairs, then 128-bit quarters twice).
  static void loadTransposed(const uint8_t* const* blocks, Reg w[16]) {
    const Reg bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    Reg r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_shuffle_epi8(_mm512_loadu_si512(blocks[i]), bswap);
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    // r[4g + c]: rows 4g..4g+3, word 4q + c in quarter q.
    for (int g = 0; g < 4; ++g) {
      r[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
      r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
      r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
      r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int c = 0; c < 4; ++c) {
      Reg v0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44);
      Reg v1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
      Reg v2 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44);
      Reg v3 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
      w[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
      w[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xDD);
      w[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
      w[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xDD);
    }
  }
};

}  // namespace

void sha256MultiAvx512(const uint8_t* const* data, const size_t* lens, size_t n, uint8_t* out) {
  sha256Multi<Avx512Lanes>(data, lens, n, out);
}

}  // namespace govmesh::simd
