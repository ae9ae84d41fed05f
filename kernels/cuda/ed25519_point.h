// Points of the Ed25519 curve -x^2 + y^2 = 1 + d x^2 y^2, host and device: strict decoding,
// the group law in extended coordinates (Hisil-Wong-Carter-Dawson 2008, a = -1), small-order
// checks and w-NAF recoding. Representations, each chosen for what it makes cheap:
//   GeP3     (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z      the general point (additions read T)
//   GeP2     (X:Y:Z)                                    enough to double (saves computing T)
//   GeP1P1   ((X:Z), (Y:T)): x = X/Z, y = Y/T           what add and double produce; 3 or 4
//                                                       multiplications turn it into P2 or P3
//   GeCached (Y+X, Y-X, Z, 2dT)                         the addend of an addition
//   GeNiels  (y+x, y-x, 2dxy), Z = 1                    an affine addend (precomputed tables)
#pragma once

#include <cstdint>

#include "kernels/cuda/ed25519_field.h"
#include "kernels/cuda/host_device.h"

namespace govmesh::kernels {

/// Extended coordinates.
struct GeP3 {
  Fe x, y, z, t;
};
/// Projective coordinates.
struct GeP2 {
  Fe x, y, z;
};
/// Completed coordinates, the output of an addition or doubling.
struct GeP1P1 {
  Fe x, y, z, t;
};
/// A point prepared as the addend of an addition.
struct GeCached {
  Fe yPlusX, yMinusX, z, t2d;
};
/// An affine point prepared as an addend (Z = 1 saves a multiplication).
struct GeNiels {
  Fe yPlusX, yMinusX, xy2d;
};

/// The neutral element (0, 1).
GOVMESH_HD inline GeP3 geIdentity() { return GeP3{feZero(), feOne(), feOne(), feZero()}; }

GOVMESH_HD inline GeP2 geToP2(const GeP1P1& p) {
  return GeP2{feMul(p.x, p.t), feMul(p.y, p.z), feMul(p.z, p.t)};
}

GOVMESH_HD inline GeP3 geToP3(const GeP1P1& p) {
  return GeP3{feMul(p.x, p.t), feMul(p.y, p.z), feMul(p.z, p.t), feMul(p.x, p.y)};
}

GOVMESH_HD inline GeP2 geP3ToP2(const GeP3& p) { return GeP2{p.x, p.y, p.z}; }

GOVMESH_HD inline GeCached geToCached(const GeP3& p) {
  return GeCached{feAdd(p.y, p.x), feSub(p.y, p.x), p.z, feMul(p.t, feD2())};
}

/// -p.
GOVMESH_HD inline GeP3 geNeg(const GeP3& p) { return GeP3{feNeg(p.x), p.y, p.z, feNeg(p.t)}; }

/// 2p ("dbl-2008-hwcd"): 4 squarings. With A = X^2, B = Y^2: x = ((X+Y)^2 - A - B) / (B - A)
/// and y = (A + B) / (2Z^2 - (B - A)), both halves of the completed point.
GOVMESH_HD inline GeP1P1 geDouble(const GeP2& p) {
  const Fe xx = feSq(p.x);
  const Fe yy = feSq(p.y);
  const Fe zz2 = feAdd(feSq(p.z), feSq(p.z));
  const Fe sum = feAdd(yy, xx);
  const Fe diff = feSub(yy, xx);
  return GeP1P1{feSub(feSq(feAdd(p.x, p.y)), sum), sum, diff, feSub(zz2, diff)};
}

GOVMESH_HD inline GeP1P1 geDouble(const GeP3& p) { return geDouble(geP3ToP2(p)); }

namespace point_detail {
/// The shared tail of the additions ("add-2008-hwcd-3"): from a = (Y1-X1)(Y2-X2),
/// b = (Y1+X1)(Y2+X2), c = 2d T1 T2, zz = 2 Z1 Z2 the sum is x = (b-a)/(zz+c), y = (b+a)/(zz-c).
GOVMESH_HD inline GeP1P1 finishAdd(const Fe& a, const Fe& b, const Fe& c, const Fe& zz) {
  return GeP1P1{feSub(b, a), feAdd(b, a), feAdd(zz, c), feSub(zz, c)};
}
}  // namespace point_detail

/// p + q.
GOVMESH_HD inline GeP1P1 geAdd(const GeP3& p, const GeCached& q) {
  const Fe a = feMul(feSub(p.y, p.x), q.yMinusX);
  const Fe b = feMul(feAdd(p.y, p.x), q.yPlusX);
  const Fe c = feMul(p.t, q.t2d);
  const Fe zz = feMul(p.z, q.z);
  return point_detail::finishAdd(a, b, c, feAdd(zz, zz));
}

/// p - q: q negated is (Y-X, Y+X, Z, -2dT), so the roles of the two sums swap and c changes sign.
GOVMESH_HD inline GeP1P1 geSub(const GeP3& p, const GeCached& q) {
  const Fe a = feMul(feSub(p.y, p.x), q.yPlusX);
  const Fe b = feMul(feAdd(p.y, p.x), q.yMinusX);
  const Fe c = feMul(p.t, q.t2d);
  const Fe zz = feMul(p.z, q.z);
  return point_detail::finishAdd(a, b, feNeg(c), feAdd(zz, zz));
}

/// p + q for an affine q.
GOVMESH_HD inline GeP1P1 geAdd(const GeP3& p, const GeNiels& q) {
  const Fe a = feMul(feSub(p.y, p.x), q.yMinusX);
  const Fe b = feMul(feAdd(p.y, p.x), q.yPlusX);
  const Fe c = feMul(p.t, q.xy2d);
  return point_detail::finishAdd(a, b, c, feAdd(p.z, p.z));
}

/// p - q for an affine q.
GOVMESH_HD inline GeP1P1 geSub(const GeP3& p, const GeNiels& q) {
  const Fe a = feMul(feSub(p.y, p.x), q.yPlusX);
  const Fe b = feMul(feAdd(p.y, p.x), q.yMinusX);
  const Fe c = feMul(p.t, q.xy2d);
  return point_detail::finishAdd(a, b, feNeg(c), feAdd(p.z, p.z));
}

/// True when p is the neutral element: X = 0 and Y = Z (projectively (0, 1)).
GOVMESH_HD inline bool geIsIdentity(const GeP3& p) { return feIsZero(p.x) && feEqual(p.y, p.z); }
/// The same test on projective coordinates.
GOVMESH_HD inline bool geIsIdentity(const GeP2& p) { return feIsZero(p.x) && feEqual(p.y, p.z); }

/// [8]p, by three doublings (the cofactor).
GOVMESH_HD inline GeP2 geMulBy8(const GeP3& p) {
  GeP2 r = geToP2(geDouble(p));
  r = geToP2(geDouble(r));
  return geToP2(geDouble(r));
}

/// True when [8]p is the identity (p in the torsion subgroup of order dividing 8).
GOVMESH_HD inline bool geIsSmallOrder(const GeP3& p) { return geIsIdentity(geMulBy8(p)); }

/// Strict RFC 8032 §5.1.3 decoding: y < p (y >= p rejected), x recovered from
/// x^2 = (y^2 - 1) / (d y^2 + 1) (no square root: rejected), and x = 0 with the sign bit set
/// rejected. Returns false, leaving out unspecified, on any rejection.
GOVMESH_HD inline bool geDecode(GeP3& out, const uint8_t in[32]) {
  if (!feBytesCanonical(in)) return false;
  const bool sign = (in[31] >> 7) != 0;
  const Fe y = feFromBytes(in);
  const Fe yy = feSq(y);
  const Fe u = feSub(yy, feOne());
  const Fe v = feAdd(feMul(yy, feD()), feOne());
  // Candidate x = u v^3 (u v^7)^((p-5)/8): one exponentiation gives both the inverse of v and the
  // square root; then v x^2 is u (x is a root), -u (sqrt(-1) x is) or neither (no root).
  const Fe v3 = feMul(feSq(v), v);
  const Fe v7 = feMul(feSq(v3), v);
  Fe x = feMul(feMul(u, v3), fePow22523(feMul(u, v7)));
  const Fe vxx = feMul(v, feSq(x));
  if (!feEqual(vxx, u)) {
    if (!feIsZero(feAdd(vxx, u))) return false;
    x = feMul(x, feSqrtM1());
  }
  const bool xNegative = feIsNegative(x);
  if (feIsZero(x) && sign) return false;
  if (xNegative != sign) x = feNeg(x);
  out = GeP3{x, y, feOne(), feMul(x, y)};
  return true;
}

/// The canonical 32-byte encoding of p (y with the sign of x in bit 255).
GOVMESH_HD inline void geEncode(uint8_t out[32], const GeP3& p) {
  const Fe zInv = feInvert(p.z);
  const Fe x = feMul(p.x, zInv);
  feToBytes(out, feMul(p.y, zInv));
  out[31] = static_cast<uint8_t>(out[31] | (feIsNegative(x) ? 0x80 : 0));
}

/// Writes the width-w non-adjacent form of a scalar < 2^255 given as 4 little-endian words:
/// naf[i] is 0 or odd with |naf[i]| < 2^(w-1), sum naf[i] 2^i = the scalar, and any w
/// consecutive digits hold at most one non-zero. 2 <= w <= 8. Returns the index of the highest
/// non-zero digit plus one (0 for a zero scalar).
GOVMESH_HD inline int scalarToWnaf(int8_t naf[256], const uint64_t scalar[4], int w) {
  const uint64_t words[5] = {scalar[0], scalar[1], scalar[2], scalar[3], 0};
  const int width = 1 << w;
  const uint64_t windowMask = static_cast<uint64_t>(width - 1);
  for (int i = 0; i < 256; ++i) naf[i] = 0;
  int top = 0;
  int carry = 0;  // 1 when the previous digit was negative: it borrowed 2^w from what remains
  int pos = 0;
  while (pos < 256) {
    const int word = pos / 64, bit = pos % 64;
    uint64_t bits = words[word] >> bit;
    if (bit + w > 64) bits |= words[word + 1] << (64 - bit);
    const int window = carry + static_cast<int>(bits & windowMask);
    if ((window & 1) == 0) {
      // An even window: the digit here is 0 and a pending carry moves up one bit with us.
      ++pos;
      continue;
    }
    if (window < width / 2) {
      carry = 0;
      naf[pos] = static_cast<int8_t>(window);
    } else {
      carry = 1;
      naf[pos] = static_cast<int8_t>(window - width);
    }
    top = pos + 1;
    pos += w;
  }
  return top;
}

}  // namespace govmesh::kernels
