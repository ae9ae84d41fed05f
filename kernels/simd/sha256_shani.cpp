// SHA-256 with the x86 SHA extensions, one message at a time, and the CPU checks of every
// SHA-256 SIMD path. Compiled with -msha -msse4.1 -mssse3 on this file alone; callers check
// cpuHasShaNi() first.
#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

#include "kernels/cuda/sha256_constants.h"
#include "kernels/simd/sha256_simd.h"

namespace govmesh::simd {

// CPUID directly: clang's __builtin_cpu_supports does not know "sha".
bool cpuHasShaNi() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool sse41 = (ecx >> 19) & 1;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool sha = (ebx >> 29) & 1;
  return sse41 && sha;
}

bool cpuHasAvx2() { return __builtin_cpu_supports("avx2"); }

bool cpuHasAvx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq");
}

namespace {

alignas(16) constexpr uint32_t kRoundK[64] = GOVMESH_SHA256_ROUND_CONSTANTS;

// The SHA instructions keep the state as two registers, ABEF and CDGH (A in the top lane), not
// as the FIPS word order; blocks are folded in that layout and converted only at the ends.
struct ShaNiState {
  __m128i abef;
  __m128i cdgh;
};

inline ShaNiState initialState() {
  // ABEF = {F, E, B, A} and CDGH = {H, G, D, C} from lane 0 up.
  return {_mm_set_epi32(0x6a09e667, static_cast<int>(0xbb67ae85u), 0x510e527f, static_cast<int>(0x9b05688cu)),
          _mm_set_epi32(0x3c6ef372, static_cast<int>(0xa54ff53au), 0x1f83d9ab, 0x5be0cd19)};
}

// Four rounds t..t+3 with message words w (already in lane order W[t]..W[t+3]).
inline void fourRounds(ShaNiState& s, __m128i w, int t) {
  __m128i kw = _mm_add_epi32(w, _mm_load_si128(reinterpret_cast<const __m128i*>(kRoundK + t)));
  // sha256rnds2 does two rounds with the low two words; the high two go in a second call.
  s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, kw);
  s.abef = _mm_sha256rnds2_epu32(s.abef, s.cdgh, _mm_shuffle_epi32(kw, 0x0E));
}

// Next four schedule words from the previous sixteen (w0 oldest): W[t] = σ1(W[t-2]) + W[t-7] +
// σ0(W[t-15]) + W[t-16]. msg1 adds σ0 terms, alignr supplies W[t-7..t-4], msg2 adds σ1.
inline __m128i nextWords(__m128i w0, __m128i w1, __m128i w2, __m128i w3) {
  __m128i x = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4));
  return _mm_sha256msg2_epu32(x, w3);
}

inline void compressBlocks(ShaNiState& st, const uint8_t* p, size_t blocks) {
  // Message bytes are big-endian words; pshufb swaps each 32-bit word.
  const __m128i bswap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
  for (; blocks != 0; --blocks, p += 64) {
    ShaNiState s = st;
    __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), bswap);
    __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)), bswap);
    __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)), bswap);
    __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48)), bswap);
    fourRounds(s, w0, 0);
    fourRounds(s, w1, 4);
    fourRounds(s, w2, 8);
    fourRounds(s, w3, 12);
    for (int t = 16; t < 64; t += 16) {
      w0 = nextWords(w0, w1, w2, w3);
      fourRounds(s, w0, t);
      w1 = nextWords(w1, w2, w3, w0);
      fourRounds(s, w1, t + 4);
      w2 = nextWords(w2, w3, w0, w1);
      fourRounds(s, w2, t + 8);
      w3 = nextWords(w3, w0, w1, w2);
      fourRounds(s, w3, t + 12);
    }
    st.abef = _mm_add_epi32(st.abef, s.abef);
    st.cdgh = _mm_add_epi32(st.cdgh, s.cdgh);
  }
}

}  // namespace

void sha256ShaNi(const uint8_t* data, size_t len, uint8_t* out) {
  ShaNiState st = initialState();
  size_t full = len / 64;
  compressBlocks(st, data, full);
  // The last one or two blocks: the leftover bytes, 0x80, zeros, the 64-bit big-endian bit length.
  alignas(16) uint8_t tail[128] = {};
  size_t rest = len - full * 64;
  if (rest != 0) std::memcpy(tail, data + full * 64, rest);
  tail[rest] = 0x80;
  size_t tailBlocks = rest < 56 ? 1 : 2;
  uint64_t bits = static_cast<uint64_t>(len) << 3;
  for (int i = 0; i < 8; ++i) tail[tailBlocks * 64 - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  compressBlocks(st, tail, tailBlocks);
  // Back to FIPS order A..H, then big-endian bytes: abef lanes are {F,E,B,A}, cdgh {H,G,D,C}.
  alignas(16) uint32_t abef[4], cdgh[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(abef), st.abef);
  _mm_store_si128(reinterpret_cast<__m128i*>(cdgh), st.cdgh);
  const uint32_t words[8] = {abef[3], abef[2], cdgh[3], cdgh[2], abef[1], abef[0], cdgh[1], cdgh[0]};
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<uint8_t>(words[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(words[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(words[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(words[i]);
  }
}

}  // namespace govmesh::simd
