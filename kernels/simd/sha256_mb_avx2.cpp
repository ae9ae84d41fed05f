// Multi-buffer SHA-256 with AVX2: 8 messages per vector. Compiled with -mavx2 on this file
// alone; callers check cpuHasAvx2() first.
#include <immintrin.h>

#include "kernels/simd/sha256_mb.hpp"
#include "kernels/simd/sha256_simd.h"

namespace govmesh::simd {
namespace {

// The vector operations sha256_mb.hpp needs, on 8 lanes. AVX2 has no rotate, so each rotation
// is two shifts and an OR.
struct Avx2Lanes {
  using Reg = __m256i;
  static constexpr size_t kLanes = 8;

  static Reg load(const uint32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(uint32_t* p, Reg v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
  static Reg add(Reg a, Reg b) { return _mm256_add_epi32(a, b); }
  static Reg broadcast(uint32_t k) { return _mm256_set1_epi32(static_cast<int>(k)); }
  template <int N>
  static Reg ror(Reg x) {
    return _mm256_or_si256(_mm256_srli_epi32(x, N), _mm256_slli_epi32(x, 32 - N));
  }
  static Reg xor3(Reg x, Reg y, Reg z) { return _mm256_xor_si256(_mm256_xor_si256(x, y), z); }
  static Reg ch(Reg e, Reg f, Reg g) { return _mm256_xor_si256(g, _mm256_and_si256(e, _mm256_xor_si256(f, g))); }
  // b ^ ((a ^ b) & (b ^ c)): a ^ b is the next round's b ^ c, which the compiler reuses.
  static Reg maj(Reg a, Reg b, Reg c) {
    return _mm256_xor_si256(b, _mm256_and_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(b, c)));
  }
  static Reg bigSigma0(Reg a) { return xor3(ror<2>(a), ror<13>(a), ror<22>(a)); }
  static Reg bigSigma1(Reg e) { return xor3(ror<6>(e), ror<11>(e), ror<25>(e)); }
  static Reg smallSigma0(Reg w) { return xor3(ror<7>(w), ror<18>(w), _mm256_srli_epi32(w, 3)); }
  static Reg smallSigma1(Reg w) { return xor3(ror<17>(w), ror<19>(w), _mm256_srli_epi32(w, 10)); }

  // Words h*8 .. h*8+7 of the eight rows, transposed (8x8 of 32-bit words) into w[h*8 ..].
  static void transposeHalf(const uint8_t* const* blocks, int half, Reg* w) {
    const Reg bswap = _mm256_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10,
                                      11, 4, 5, 6, 7, 0, 1, 2, 3);
    Reg r[8], t[8];
    for (int i = 0; i < 8; ++i)
      r[i] = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[i] + 32 * half)), bswap);
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    // r[4g + c]: rows 4g..4g+3, word 4q + c in 128-bit half q.
    for (int g = 0; g < 2; ++g) {
      r[4 * g + 0] = _mm256_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
      r[4 * g + 1] = _mm256_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
      r[4 * g + 2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
      r[4 * g + 3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int c = 0; c < 4; ++c) {
      w[c] = _mm256_permute2x128_si256(r[c], r[4 + c], 0x20);
      w[4 + c] = _mm256_permute2x128_si256(r[c], r[4 + c], 0x31);
    }
  }

  static void loadTransposed(const uint8_t* const* blocks, Reg w[16]) {
    transposeHalf(blocks, 0, w);
    transposeHalf(blocks, 1, w + 8);
  }
};

}  // namespace

void sha256MultiAvx2(const uint8_t* const* data, const size_t* lens, size_t n, uint8_t* out) {
  sha256Multi<Avx2Lanes>(data, lens, n, out);
}

}  // namespace govmesh::simd
