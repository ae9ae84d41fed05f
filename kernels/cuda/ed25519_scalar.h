// Scalars mod L (the prime order of Ed25519's base point), host and device: the canonical check
// on S, the reduction of SHA-512 output for k, and the products and sums that batch verification
// needs for its random coefficients. Four 64-bit little-endian words, Montgomery multiplication
// (R = 2^256) with 128-bit products.
#pragma once

#include <cstdint>

#include "kernels/cuda/ed25519_constants.h"
#include "kernels/cuda/host_device.h"

namespace govmesh::kernels {

/// A 256-bit value, little-endian 64-bit words; "mod L" functions return values < L.
struct Scalar {
  uint64_t w[4];
};

namespace scalar_detail {
using U128 = unsigned __int128;

GOVMESH_HD inline Scalar orderL() { return Scalar GOVMESH_ED25519_L; }
GOVMESH_HD inline Scalar r2() { return Scalar GOVMESH_ED25519_R2; }

GOVMESH_HD inline uint64_t loadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// a >= b.
GOVMESH_HD inline bool geq(const Scalar& a, const Scalar& b) {
  for (int i = 3; i >= 0; --i) {
    if (a.w[i] != b.w[i]) return a.w[i] > b.w[i];
  }
  return true;
}

/// a - b mod 2^256.
GOVMESH_HD inline Scalar sub(const Scalar& a, const Scalar& b) {
  Scalar r;
  uint64_t borrow = 0;
  for (int i = 0; i < 4; ++i) {
    const U128 d = U128(a.w[i]) - b.w[i] - borrow;
    r.w[i] = static_cast<uint64_t>(d);
    borrow = static_cast<uint64_t>(d >> 64) & 1;
  }
  return r;
}
}  // namespace scalar_detail

/// Reads 32 little-endian bytes.
GOVMESH_HD inline Scalar scalarFromBytes(const uint8_t in[32]) {
  using scalar_detail::loadLe64;
  return Scalar{{loadLe64(in), loadLe64(in + 8), loadLe64(in + 16), loadLe64(in + 24)}};
}

/// Writes 32 little-endian bytes.
GOVMESH_HD inline void scalarToBytes(uint8_t out[32], const Scalar& s) {
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 8; ++j) out[8 * i + j] = static_cast<uint8_t>(s.w[i] >> (8 * j));
  }
}

/// True when the 32-byte little-endian value is < L (RFC 8032's check on S).
GOVMESH_HD inline bool scalarBytesCanonical(const uint8_t in[32]) {
  return !scalar_detail::geq(scalarFromBytes(in), scalar_detail::orderL());
}

/// a b / 2^256 mod L (Montgomery product), for a < 2^256 and b < L (so that a b < 2^256 L).
GOVMESH_HD inline Scalar scalarMontMul(const Scalar& a, const Scalar& b) {
  using scalar_detail::U128;
  const Scalar l = scalar_detail::orderL();
  uint64_t t[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 4; ++i) {
    uint64_t carry = 0;
    for (int j = 0; j < 4; ++j) {
      const U128 p = U128(a.w[i]) * b.w[j] + t[i + j] + carry;
      t[i + j] = static_cast<uint64_t>(p);
      carry = static_cast<uint64_t>(p >> 64);
    }
    t[i + 4] = carry;
  }
  // Clear one low word per step by adding m L with m = -t[i] / L mod 2^64; the sum stays below
  // 2^256 L + 2^256 L < 2^510, so nine words hold it.
  for (int i = 0; i < 4; ++i) {
    const uint64_t m = t[i] * GOVMESH_ED25519_L_NEG_INV;
    uint64_t carry = 0;
    for (int j = 0; j < 4; ++j) {
      const U128 p = U128(m) * l.w[j] + t[i + j] + carry;
      t[i + j] = static_cast<uint64_t>(p);
      carry = static_cast<uint64_t>(p >> 64);
    }
    for (int j = i + 4; j < 9 && carry != 0; ++j) {
      const U128 s = U128(t[j]) + carry;
      t[j] = static_cast<uint64_t>(s);
      carry = static_cast<uint64_t>(s >> 64);
    }
  }
  Scalar r{{t[4], t[5], t[6], t[7]}};  // < 2L, and t[8] = 0 since 2L < 2^256
  if (scalar_detail::geq(r, l)) r = scalar_detail::sub(r, l);
  return r;
}

/// a b mod L for a < 2^256, b < L.
GOVMESH_HD inline Scalar scalarMul(const Scalar& a, const Scalar& b) {
  return scalarMontMul(scalarMontMul(a, b), scalar_detail::r2());
}

/// a + b mod L for a, b < L.
GOVMESH_HD inline Scalar scalarAdd(const Scalar& a, const Scalar& b) {
  Scalar r;
  uint64_t carry = 0;
  for (int i = 0; i < 4; ++i) {
    const scalar_detail::U128 s = scalar_detail::U128(a.w[i]) + b.w[i] + carry;
    r.w[i] = static_cast<uint64_t>(s);
    carry = static_cast<uint64_t>(s >> 64);
  }
  const Scalar l = scalar_detail::orderL();
  if (scalar_detail::geq(r, l)) r = scalar_detail::sub(r, l);  // a + b < 2L < 2^254: no carry out
  return r;
}

/// A 64-byte little-endian value (a SHA-512 digest) mod L: lo + hi 2^256 with 2^256 = R.
GOVMESH_HD inline Scalar scalarReduce512(const uint8_t in[64]) {
  const Scalar lo = scalarFromBytes(in), hi = scalarFromBytes(in + 32);
  const Scalar r2 = scalar_detail::r2();
  const Scalar hiPart = scalarMontMul(hi, r2);                             // hi R mod L
  const Scalar loPart = scalarMontMul(scalarMontMul(lo, r2), Scalar{{1, 0, 0, 0}});  // lo mod L
  return scalarAdd(hiPart, loPart);
}

}  // namespace govmesh::kernels
