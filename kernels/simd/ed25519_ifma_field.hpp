// Arithmetic mod p = 2^255 - 19 on eight independent 64-bit lanes with AVX-512 IFMA.
// Private to ed25519_ifma.cpp (included only by files compiled with -mavx512ifma).
//
// Representation: radix 2^52, five limbs per lane, one __m512i per limb (lane j of every limb
// belongs to signature j). vpmadd52{lo,hi}uq read only the low 52 bits of each factor, so a
// limb at or above 2^52 would be silently truncated: every Fe handed to a function here must be
// NORMALIZED, and every function returns a normalized Fe:
//
//   limbs 0..3 < 2^52, limb 4 < 2^47 + 2^6, hence value < 2^255 + 2^214 < 2p.
//
// The top limb holds only 47 bits (2^255 is where the modulus wraps, 2^255 ≡ 19), which leaves
// room for a carry into it without breaking the 52-bit rule. Sums and differences are not lazy:
// feAdd/feSub carry at once (about 15 cheap ops), because an unreduced limb cannot be fed to IFMA.
#pragma once

#include <immintrin.h>

#include <cstdint>

#define GOVMESH_IFMA_INLINE inline __attribute__((always_inline))
// Limb loops must be fully unrolled: a rolled loop keeps the limb arrays in memory (measured
// 2x slower). GCC does not always unroll them at -O2.
#define GOVMESH_IFMA_UNROLL _Pragma("GCC unroll 32")

namespace govmesh::simd::ifma {

/// One field element per lane: limb i of all eight lanes in v[i].
struct Fe {
  __m512i v[5];
};

inline constexpr uint64_t kMask52 = (uint64_t{1} << 52) - 1;
inline constexpr uint64_t kMask47 = (uint64_t{1} << 47) - 1;

/// Radix-2^52 limbs of the curve constants (computed with Python's big integers).
inline constexpr uint64_t kLimbsD[5] = {0xb4dca135978a3, 0x4d4141d8ab75e, 0x779e89800700a, 0xfe738cc740797,
                                        0x52036cee2b6f};
inline constexpr uint64_t kLimbs2D[5] = {0x69b9426b2f159, 0x9a8283b156ebd, 0xef3d13000e014, 0xfce7198e80f2e,
                                         0x2406d9dc56df};
inline constexpr uint64_t kLimbsSqrtM1[5] = {0xe1b274a0ea0b0, 0x6ad2fe478c4e, 0xdfbd7a72f4318, 0xdf0b2b4d00993,
                                             0x2b8324804fc1};
/// 2p limb by limb: each limb exceeds the matching limb of any normalized Fe, so a + 2p - b never
/// goes negative in any limb.
inline constexpr uint64_t kLimbs2P[5] = {(uint64_t{1} << 53) - 38, (uint64_t{1} << 53) - 2,
                                         (uint64_t{1} << 53) - 2, (uint64_t{1} << 53) - 2,
                                         (uint64_t{1} << 48) - 2};

/// x in every lane.
GOVMESH_IFMA_INLINE __m512i bcast(uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }

/// A constant given by its limbs, in every lane.
GOVMESH_IFMA_INLINE Fe feConst(const uint64_t (&l)[5]) {
  Fe r;
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) r.v[i] = bcast(l[i]);
  return r;
}

/// A small constant (< 2^52) in every lane.
GOVMESH_IFMA_INLINE Fe feSmall(uint64_t x) {
  Fe r;
  r.v[0] = bcast(x);
  GOVMESH_IFMA_UNROLL
  for (int i = 1; i < 5; ++i) r.v[i] = _mm512_setzero_si512();
  return r;
}

/// Carries limbs below 2^57 into normalized form. The top limb is cut at bit 47 first (its
/// overflow re-enters limb 0 times 19), then one pass 0→4 leaves limbs 0..3 exact and limb 4
/// below 2^47 plus a carry of at most 2^5.
GOVMESH_IFMA_INLINE void feCarry(Fe& r) {
  const __m512i m52 = bcast(kMask52);
  const __m512i c = _mm512_srli_epi64(r.v[4], 47);
  r.v[4] = _mm512_and_si512(r.v[4], bcast(kMask47));
  r.v[0] = _mm512_madd52lo_epu64(r.v[0], c, bcast(19));  // c < 2^10, so 19c fits 52 bits
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 4; ++i) {
    r.v[i + 1] = _mm512_add_epi64(r.v[i + 1], _mm512_srli_epi64(r.v[i], 52));
    r.v[i] = _mm512_and_si512(r.v[i], m52);
  }
}

/// a + b (limbs below 2^53 before the carry).
GOVMESH_IFMA_INLINE Fe feAdd(const Fe& a, const Fe& b) {
  Fe r;
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) r.v[i] = _mm512_add_epi64(a.v[i], b.v[i]);
  feCarry(r);
  return r;
}

/// a - b as a + 2p - b, so that no limb goes negative (limbs below 2^54 before the carry).
GOVMESH_IFMA_INLINE Fe feSub(const Fe& a, const Fe& b) {
  Fe r;
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) r.v[i] = _mm512_sub_epi64(_mm512_add_epi64(a.v[i], bcast(kLimbs2P[i])), b.v[i]);
  feCarry(r);
  return r;
}

/// -a as 2p - a.
GOVMESH_IFMA_INLINE Fe feNeg(const Fe& a) {
  Fe r;
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) r.v[i] = _mm512_sub_epi64(bcast(kLimbs2P[i]), a.v[i]);
  feCarry(r);
  return r;
}

/// Folds the ten product columns z[0..9] (each < 2^56) of a product of two normalized values
/// into a normalized Fe. Column 5+k has weight 2^260·2^(52k) and 2^260 ≡ 32·19 = 608 (mod p).
/// IFMA sees only 52 bits of a factor, so the high columns are first carried among themselves
/// (5→9) to 52 bits each; the product is below (2^255 + 2^214)^2 < 2^510.1, so column 9 then
/// stays below 2^42.1 and 608·z9 < 2^52 needs no high half. Each other high column adds
/// 608·z[k+5] into columns k (low half) and k+1 (high half, < 2^10).
GOVMESH_IFMA_INLINE Fe feFold(__m512i (&z)[10]) {
  const __m512i m52 = bcast(kMask52);
  const __m512i k608 = bcast(608);
  GOVMESH_IFMA_UNROLL
  for (int k = 5; k < 9; ++k) {
    z[k + 1] = _mm512_add_epi64(z[k + 1], _mm512_srli_epi64(z[k], 52));
    z[k] = _mm512_and_si512(z[k], m52);
  }
  GOVMESH_IFMA_UNROLL
  for (int k = 0; k < 4; ++k) {
    z[k] = _mm512_madd52lo_epu64(z[k], z[k + 5], k608);
    z[k + 1] = _mm512_madd52hi_epu64(z[k + 1], z[k + 5], k608);
  }
  z[4] = _mm512_madd52lo_epu64(z[4], z[9], k608);
  // Each low column is now below 2^56 + 2^52 + 2^10 < 2^57, as feCarry requires.
  Fe r;
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) r.v[i] = z[i];
  feCarry(r);
  return r;
}

/// Schoolbook product: column i+j gets the low half of a_i·b_j, column i+j+1 the high half.
/// Each column sums at most nine terms below 2^52, so it stays below 2^56.
GOVMESH_IFMA_INLINE Fe feMul(const Fe& a, const Fe& b) {
  __m512i z[10];
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 10; ++i) z[i] = _mm512_setzero_si512();
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) {
    GOVMESH_IFMA_UNROLL
    for (int j = 0; j < 5; ++j) {
      z[i + j] = _mm512_madd52lo_epu64(z[i + j], a.v[i], b.v[j]);
      z[i + j + 1] = _mm512_madd52hi_epu64(z[i + j + 1], a.v[i], b.v[j]);
    }
  }
  return feFold(z);
}

/// Square: the ten cross products are summed once and doubled (the doubled columns are below
/// 2^55, plus at most two diagonal halves), the five diagonal products added after.
GOVMESH_IFMA_INLINE Fe feSq(const Fe& a) {
  __m512i z[10];
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 10; ++i) z[i] = _mm512_setzero_si512();
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) {
    GOVMESH_IFMA_UNROLL
    for (int j = i + 1; j < 5; ++j) {
      z[i + j] = _mm512_madd52lo_epu64(z[i + j], a.v[i], a.v[j]);
      z[i + j + 1] = _mm512_madd52hi_epu64(z[i + j + 1], a.v[i], a.v[j]);
    }
  }
  GOVMESH_IFMA_UNROLL
  for (int i = 1; i < 10; ++i) z[i] = _mm512_add_epi64(z[i], z[i]);
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) {
    z[2 * i] = _mm512_madd52lo_epu64(z[2 * i], a.v[i], a.v[i]);
    z[2 * i + 1] = _mm512_madd52hi_epu64(z[2 * i + 1], a.v[i], a.v[i]);
  }
  return feFold(z);
}

/// n successive squarings.
GOVMESH_IFMA_INLINE Fe feSqN(Fe a, int n) {
  for (int i = 0; i < n; ++i) a = feSq(a);
  return a;
}

/// The canonical representative (< p). A normalized value is below 2p, so at most one p is
/// subtracted: v ≥ p exactly when v + 19 reaches 2^255, and then v - p = v + 19 - 2^255.
GOVMESH_IFMA_INLINE Fe feFreeze(const Fe& a) {
  const __m512i m52 = bcast(kMask52);
  __m512i t[5];
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) t[i] = a.v[i];
  t[0] = _mm512_add_epi64(t[0], bcast(19));
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 4; ++i) {
    t[i + 1] = _mm512_add_epi64(t[i + 1], _mm512_srli_epi64(t[i], 52));
    t[i] = _mm512_and_si512(t[i], m52);
  }
  const __m512i q = _mm512_srli_epi64(t[4], 47);  // 0 or 1
  Fe r = a;
  r.v[0] = _mm512_add_epi64(r.v[0], _mm512_mullo_epi64(q, bcast(19)));
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 4; ++i) {
    r.v[i + 1] = _mm512_add_epi64(r.v[i + 1], _mm512_srli_epi64(r.v[i], 52));
    r.v[i] = _mm512_and_si512(r.v[i], m52);
  }
  r.v[4] = _mm512_and_si512(r.v[4], bcast(kMask47));
  return r;
}

/// Lanes whose value is 0 mod p.
GOVMESH_IFMA_INLINE __mmask8 feIsZero(const Fe& a) {
  const Fe f = feFreeze(a);
  const __m512i o01 = _mm512_or_si512(f.v[0], f.v[1]);
  const __m512i o23 = _mm512_or_si512(f.v[2], f.v[3]);
  const __m512i o = _mm512_or_si512(_mm512_or_si512(o01, o23), f.v[4]);
  return _mm512_cmpeq_epi64_mask(o, _mm512_setzero_si512());
}

/// Lanes where a ≡ b (mod p).
GOVMESH_IFMA_INLINE __mmask8 feEq(const Fe& a, const Fe& b) { return feIsZero(feSub(a, b)); }

/// Lanes whose canonical value is odd (the "negative" x of RFC 8032).
GOVMESH_IFMA_INLINE __mmask8 feIsOdd(const Fe& a) {
  return _mm512_test_epi64_mask(feFreeze(a).v[0], bcast(1));
}

/// Lanes where the stored limbs already are the canonical representative.
GOVMESH_IFMA_INLINE __mmask8 feIsCanonical(const Fe& a) {
  const Fe f = feFreeze(a);
  __mmask8 m = 0xff;
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) m &= _mm512_cmpeq_epi64_mask(f.v[i], a.v[i]);
  return m;
}

/// b in lanes of `mask`, a elsewhere.
GOVMESH_IFMA_INLINE Fe feSelect(__mmask8 mask, const Fe& a, const Fe& b) {
  Fe r;
  GOVMESH_IFMA_UNROLL
  for (int i = 0; i < 5; ++i) r.v[i] = _mm512_mask_blend_epi64(mask, a.v[i], b.v[i]);
  return r;
}

/// Bits 0..254 of the little-endian 256-bit words w[0..3] (one per lane); bit 255 is the
/// caller's (the sign of x). The result is normalized but may be ≥ p (checked by the caller).
GOVMESH_IFMA_INLINE Fe feFromWords(const __m512i (&w)[4]) {
  const __m512i m52 = bcast(kMask52);
  Fe r;
  r.v[0] = _mm512_and_si512(w[0], m52);
  r.v[1] = _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(w[0], 52), _mm512_slli_epi64(w[1], 12)), m52);
  r.v[2] = _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(w[1], 40), _mm512_slli_epi64(w[2], 24)), m52);
  r.v[3] = _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(w[2], 28), _mm512_slli_epi64(w[3], 36)), m52);
  r.v[4] = _mm512_and_si512(_mm512_srli_epi64(w[3], 16), bcast(kMask47));
  return r;
}

}  // namespace govmesh::simd::ifma
