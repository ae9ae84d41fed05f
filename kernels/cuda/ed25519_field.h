// Arithmetic in GF(2^255 - 19) for Ed25519, host and device: five 51-bit limbs, products in
// unsigned __int128 (one 64x64->128 multiply per limb pair, which x86-64 does with mul/mulx and
// nvcc with mul.lo/mul.hi).
//
// Limb bounds, which every function below keeps and relies on:
//   - "reduced": each limb < 2^51 + 2^18 (what feMul, feSq, feSub and feCarry return);
//   - feAdd of two reduced values gives limbs < 2^52.1, of such sums < 2^53.1;
//   - feMul/feSq accept limbs < 2^54 (their 128-bit accumulators then cannot overflow);
//   - feSub accepts a subtrahend with limbs < 2^54 - 152 and carries its result.
// Values are kept mod p only loosely (not canonical) until feToBytes.
#pragma once

#include <cstdint>

#include "kernels/cuda/ed25519_constants.h"
#include "kernels/cuda/host_device.h"

namespace govmesh::kernels {

/// A field element, value = sum v[i] * 2^(51 i) (mod p), not necessarily canonical.
struct Fe {
  uint64_t v[5];
};

namespace field_detail {
constexpr uint64_t kMask51 = (uint64_t{1} << 51) - 1;
using U128 = unsigned __int128;
}  // namespace field_detail

GOVMESH_HD inline Fe feZero() { return Fe{{0, 0, 0, 0, 0}}; }
GOVMESH_HD inline Fe feOne() { return Fe{{1, 0, 0, 0, 0}}; }

/// Carries each limb into the next (the top one times 19 into the bottom): limbs < 2^51 + 2^18
/// for input limbs < 2^63 (every caller stays below 2^56).
GOVMESH_HD inline Fe feCarry(Fe f) {
  using field_detail::kMask51;
  uint64_t c;
  c = f.v[0] >> 51; f.v[0] &= kMask51; f.v[1] += c;
  c = f.v[1] >> 51; f.v[1] &= kMask51; f.v[2] += c;
  c = f.v[2] >> 51; f.v[2] &= kMask51; f.v[3] += c;
  c = f.v[3] >> 51; f.v[3] &= kMask51; f.v[4] += c;
  c = f.v[4] >> 51; f.v[4] &= kMask51; f.v[0] += c * 19;
  return f;
}

/// f + g without carrying (see the bounds in the file comment).
GOVMESH_HD inline Fe feAdd(const Fe& f, const Fe& g) {
  return Fe{{f.v[0] + g.v[0], f.v[1] + g.v[1], f.v[2] + g.v[2], f.v[3] + g.v[3], f.v[4] + g.v[4]}};
}

/// f - g, computed as f + 8p - g (so no limb goes negative for g limbs < 2^54 - 152), carried.
GOVMESH_HD inline Fe feSub(const Fe& f, const Fe& g) {
  // 8p in limbs: 8 (2^51 - 19), then 8 (2^51 - 1) four times.
  constexpr uint64_t k8p0 = 0x3FFFFFFFFFFF68ULL, k8pi = 0x3FFFFFFFFFFFF8ULL;
  return feCarry(Fe{{f.v[0] + k8p0 - g.v[0], f.v[1] + k8pi - g.v[1], f.v[2] + k8pi - g.v[2],
                     f.v[3] + k8pi - g.v[3], f.v[4] + k8pi - g.v[4]}});
}

/// -f.
GOVMESH_HD inline Fe feNeg(const Fe& f) { return feSub(feZero(), f); }

namespace field_detail {
/// Carries five 128-bit column sums into a reduced element. The bound on the inputs (limbs
/// < 2^54) keeps the top carry below 2^59.4, so carry * 19 fits in 64 bits.
GOVMESH_HD inline Fe carryWide(U128 r0, U128 r1, U128 r2, U128 r3, U128 r4) {
  r1 += static_cast<uint64_t>(r0 >> 51);
  r2 += static_cast<uint64_t>(r1 >> 51);
  r3 += static_cast<uint64_t>(r2 >> 51);
  r4 += static_cast<uint64_t>(r3 >> 51);
  const uint64_t c4 = static_cast<uint64_t>(r4 >> 51);
  Fe h{{(static_cast<uint64_t>(r0) & kMask51) + c4 * 19, static_cast<uint64_t>(r1) & kMask51,
        static_cast<uint64_t>(r2) & kMask51, static_cast<uint64_t>(r3) & kMask51,
        static_cast<uint64_t>(r4) & kMask51}};
  h.v[1] += h.v[0] >> 51;
  h.v[0] &= kMask51;
  return h;
}
}  // namespace field_detail

/// f * g (limbs < 2^54 in, reduced out). 2^255 = 19 mod p folds the high columns down by 19.
GOVMESH_HD inline Fe feMul(const Fe& f, const Fe& g) {
  using field_detail::U128;
  const uint64_t f0 = f.v[0], f1 = f.v[1], f2 = f.v[2], f3 = f.v[3], f4 = f.v[4];
  const uint64_t g0 = g.v[0], g1 = g.v[1], g2 = g.v[2], g3 = g.v[3], g4 = g.v[4];
  const uint64_t g1x19 = g1 * 19, g2x19 = g2 * 19, g3x19 = g3 * 19, g4x19 = g4 * 19;
  const U128 r0 = U128(f0) * g0 + U128(f1) * g4x19 + U128(f2) * g3x19 + U128(f3) * g2x19 + U128(f4) * g1x19;
  const U128 r1 = U128(f0) * g1 + U128(f1) * g0 + U128(f2) * g4x19 + U128(f3) * g3x19 + U128(f4) * g2x19;
  const U128 r2 = U128(f0) * g2 + U128(f1) * g1 + U128(f2) * g0 + U128(f3) * g4x19 + U128(f4) * g3x19;
  const U128 r3 = U128(f0) * g3 + U128(f1) * g2 + U128(f2) * g1 + U128(f3) * g0 + U128(f4) * g4x19;
  const U128 r4 = U128(f0) * g4 + U128(f1) * g3 + U128(f2) * g2 + U128(f3) * g1 + U128(f4) * g0;
  return field_detail::carryWide(r0, r1, r2, r3, r4);
}

/// f^2 (limbs < 2^54 in): 15 products instead of 25, by doubling the symmetric ones.
GOVMESH_HD inline Fe feSq(const Fe& f) {
  using field_detail::U128;
  const uint64_t f0 = f.v[0], f1 = f.v[1], f2 = f.v[2], f3 = f.v[3], f4 = f.v[4];
  const uint64_t f0x2 = f0 * 2, f1x2 = f1 * 2, f3x19 = f3 * 19, f4x19 = f4 * 19;
  const U128 r0 = U128(f0) * f0 + U128(f1x2) * f4x19 + U128(f2 * 2) * f3x19;
  const U128 r1 = U128(f0x2) * f1 + U128(f2 * 2) * f4x19 + U128(f3) * f3x19;
  const U128 r2 = U128(f0x2) * f2 + U128(f1) * f1 + U128(f3 * 2) * f4x19;
  const U128 r3 = U128(f0x2) * f3 + U128(f1x2) * f2 + U128(f4) * f4x19;
  const U128 r4 = U128(f0x2) * f4 + U128(f1x2) * f3 + U128(f2) * f2;
  return field_detail::carryWide(r0, r1, r2, r3, r4);
}

/// f^(2^n), n >= 1.
GOVMESH_HD inline Fe feSqN(Fe f, int n) {
  for (int i = 0; i < n; ++i) f = feSq(f);
  return f;
}

namespace field_detail {
/// Returns f^(2^250 - 1) and sets f11 = f^11: the common prefix of the chains for p - 2 and
/// (p - 5) / 8 (the exponent is built from runs of ones, 2^k - 1, doubling k each time).
GOVMESH_HD inline Fe pow2250m1(const Fe& f, Fe& f11) {
  const Fe f2 = feSq(f);
  const Fe f9 = feMul(feSqN(f2, 2), f);
  f11 = feMul(f9, f2);
  const Fe e5 = feMul(feSq(f11), f9);           // 2^5 - 1
  const Fe e10 = feMul(feSqN(e5, 5), e5);       // 2^10 - 1
  const Fe e20 = feMul(feSqN(e10, 10), e10);    // 2^20 - 1
  const Fe e40 = feMul(feSqN(e20, 20), e20);    // 2^40 - 1
  const Fe e50 = feMul(feSqN(e40, 10), e10);    // 2^50 - 1
  const Fe e100 = feMul(feSqN(e50, 50), e50);   // 2^100 - 1
  const Fe e200 = feMul(feSqN(e100, 100), e100);  // 2^200 - 1
  return feMul(feSqN(e200, 50), e50);           // 2^250 - 1
}
}  // namespace field_detail

/// 1/f = f^(p - 2) (0 for f = 0).  p - 2 = 2^255 - 21 = (2^250 - 1) 2^5 + 11.
GOVMESH_HD inline Fe feInvert(const Fe& f) {
  Fe f11;
  const Fe e250 = field_detail::pow2250m1(f, f11);
  return feMul(feSqN(e250, 5), f11);
}

/// f^((p - 5) / 8) = f^(2^252 - 3) = f^((2^250 - 1) 4 + 1): the exponent of the square root.
GOVMESH_HD inline Fe fePow22523(const Fe& f) {
  Fe f11;
  const Fe e250 = field_detail::pow2250m1(f, f11);
  return feMul(feSqN(e250, 2), f);
}

/// The canonical 32-byte little-endian encoding (value fully reduced below p).
GOVMESH_HD inline void feToBytes(uint8_t out[32], const Fe& fIn) {
  using field_detail::kMask51;
  Fe f = feCarry(feCarry(fIn));  // now < 2^255 + small, limbs < 2^51 except a tiny v[0] excess
  // q = 1 exactly when f >= p: the carry out of f + 19 past bit 255.
  uint64_t q = (f.v[0] + 19) >> 51;
  q = (f.v[1] + q) >> 51;
  q = (f.v[2] + q) >> 51;
  q = (f.v[3] + q) >> 51;
  q = (f.v[4] + q) >> 51;
  f.v[0] += 19 * q;  // f - q p = f + 19 q - q 2^255: add 19q, then drop bit 255
  f.v[1] += f.v[0] >> 51; f.v[0] &= kMask51;
  f.v[2] += f.v[1] >> 51; f.v[1] &= kMask51;
  f.v[3] += f.v[2] >> 51; f.v[2] &= kMask51;
  f.v[4] += f.v[3] >> 51; f.v[3] &= kMask51;
  f.v[4] &= kMask51;
  const uint64_t w0 = f.v[0] | (f.v[1] << 51);
  const uint64_t w1 = (f.v[1] >> 13) | (f.v[2] << 38);
  const uint64_t w2 = (f.v[2] >> 26) | (f.v[3] << 25);
  const uint64_t w3 = (f.v[3] >> 39) | (f.v[4] << 12);
  const uint64_t w[4] = {w0, w1, w2, w3};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 8; ++j) out[8 * i + j] = static_cast<uint8_t>(w[i] >> (8 * j));
  }
}

namespace field_detail {
GOVMESH_HD inline uint64_t loadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace field_detail

/// Loads the low 255 bits of a 32-byte little-endian encoding (bit 255 ignored; the value may be
/// >= p: callers that need a canonical encoding check feBytesCanonical first).
GOVMESH_HD inline Fe feFromBytes(const uint8_t in[32]) {
  using field_detail::kMask51;
  using field_detail::loadLe64;
  const uint64_t w0 = loadLe64(in), w1 = loadLe64(in + 8), w2 = loadLe64(in + 16), w3 = loadLe64(in + 24);
  return Fe{{w0 & kMask51, ((w0 >> 51) | (w1 << 13)) & kMask51, ((w1 >> 38) | (w2 << 26)) & kMask51,
             ((w2 >> 25) | (w3 << 39)) & kMask51, (w3 >> 12) & kMask51}};
}

/// True when the low 255 bits of `in` are a value < p (bit 255, the sign, is ignored). The only
/// non-canonical 255-bit values are p .. 2^255 - 1: byte 0 >= 0xed, bytes 1..30 0xff, byte 31's
/// low seven bits all ones.
GOVMESH_HD inline bool feBytesCanonical(const uint8_t in[32]) {
  if ((in[31] & 0x7f) != 0x7f) return true;
  for (int i = 30; i >= 1; --i) {
    if (in[i] != 0xff) return true;
  }
  return in[0] < 0xed;
}

/// True when f = 0 (mod p).
GOVMESH_HD inline bool feIsZero(const Fe& f) {
  uint8_t s[32];
  feToBytes(s, f);
  uint8_t acc = 0;
  for (int i = 0; i < 32; ++i) acc |= s[i];
  return acc == 0;
}

/// True when f = g (mod p).
GOVMESH_HD inline bool feEqual(const Fe& f, const Fe& g) { return feIsZero(feSub(f, g)); }

/// The "sign" of RFC 8032: the low bit of the canonical encoding.
GOVMESH_HD inline bool feIsNegative(const Fe& f) {
  uint8_t s[32];
  feToBytes(s, f);
  return (s[0] & 1) != 0;
}

/// The curve constant d = -121665/121666.
GOVMESH_HD inline Fe feD() { return Fe GOVMESH_ED25519_D; }
/// 2d, as used by the addition formulas.
GOVMESH_HD inline Fe feD2() { return Fe GOVMESH_ED25519_D2; }
/// sqrt(-1) = 2^((p-1)/4).
GOVMESH_HD inline Fe feSqrtM1() { return Fe GOVMESH_ED25519_SQRT_M1; }

}  // namespace govmesh::kernels
