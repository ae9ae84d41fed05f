// Ed25519 verification of one signature, host and device, under govmesh's criterion
// (engine/ed25519_verify.h): the `single` backend, the per-thread body of the CUDA kernel, and
// the preparation step (lengths, S < L, k) that every batched backend shares.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/ed25519_constants.h"
#include "kernels/cuda/ed25519_field.h"
#include "kernels/cuda/ed25519_point.h"
#include "kernels/cuda/ed25519_prepared.h"
#include "kernels/cuda/ed25519_scalar.h"
#include "kernels/cuda/hd_table.h"
#include "kernels/cuda/host_device.h"
#include "kernels/cuda/sha512_core.h"

namespace govmesh::kernels {

namespace ed25519_detail {
// (2i+1)B for i < 64, affine: the w-NAF table of width 8 for the fixed base point. Lanes of a
// warp read different entries, so it lives in global (cached) memory rather than __constant__.
GOVMESH_HD_TABLE(GeNiels, kBaseOdd, __device__, {GOVMESH_ED25519_BASE_ODD_MULTIPLES});

/// Width of the w-NAF for the variable point: 8 cached odd multiples, built per signature.
constexpr int kPointWnafWidth = 5;
}  // namespace ed25519_detail

/// The odd multiples (2i+1)B, i < 64, as affine addends (for callers that tabulate B).
GOVMESH_HD inline const GeNiels* ed25519BaseOddMultiples() { return GOVMESH_HD_TABLE_REF(ed25519_detail::kBaseOdd); }

/// The base point B.
GOVMESH_HD inline GeP3 ed25519BasePoint() {
  const GeNiels& b = ed25519BaseOddMultiples()[0];
  // y = ((y+x) + (y-x)) / 2, x = ((y+x) - (y-x)) / 2: scale projectively by 2 instead of halving.
  const Fe x = feSub(b.yPlusX, b.yMinusX), y = feAdd(b.yPlusX, b.yMinusX);
  const Fe z{{2, 0, 0, 0, 0}};
  return GeP3{feMul(x, z), feMul(y, z), feSq(z), feMul(x, y)};
}

/// Fills table[i] = (2i+1)p for i < 8 (the w-NAF table of width 5).
GOVMESH_HD inline void geOddMultiples8(GeCached table[8], const GeP3& p) {
  const GeCached p2 = geToCached(geToP3(geDouble(p)));
  GeP3 acc = p;
  table[0] = geToCached(p);
  for (int i = 1; i < 8; ++i) {
    acc = geToP3(geAdd(acc, p2));
    table[i] = geToCached(acc);
  }
}

/// [a]p + [b]B for scalars < 2^255 (variable time: only public data is handled). One shared
/// chain of doublings, p's digits from a width-5 w-NAF, B's from a width-8 one over the table.
GOVMESH_HD inline GeP3 geDoubleScalarMulBase(const Scalar& a, const GeP3& p, const Scalar& b) {
  int8_t nafA[256], nafB[256];
  const int topA = scalarToWnaf(nafA, a.w, ed25519_detail::kPointWnafWidth);
  const int topB = scalarToWnaf(nafB, b.w, GOVMESH_ED25519_BASE_WNAF_WIDTH);
  GeCached table[8];
  geOddMultiples8(table, p);
  const GeNiels* base = ed25519BaseOddMultiples();
  GeP3 acc = geIdentity();
  for (int i = (topA > topB ? topA : topB) - 1; i >= 0; --i) {
    GeP1P1 t = geDouble(acc);
    // Only the steps that add need T; doubling from P2 saves its multiplication otherwise.
    if (nafA[i] > 0) {
      t = geAdd(geToP3(t), table[nafA[i] / 2]);
    } else if (nafA[i] < 0) {
      t = geSub(geToP3(t), table[-nafA[i] / 2]);
    }
    if (nafB[i] > 0) {
      t = geAdd(geToP3(t), base[nafB[i] / 2]);
    } else if (nafB[i] < 0) {
      t = geSub(geToP3(t), base[-nafB[i] / 2]);
    }
    if (i == 0) return geToP3(t);
    const GeP2 r = geToP2(t);
    acc = GeP3{r.x, r.y, r.z, feZero()};  // T unused by the next doubling
  }
  return acc;
}

/// The cheap checks and the hash: pk 32 bytes, sig 64 bytes, S < L, k = SHA-512(R ‖ A ‖ M) mod L.
/// Returns false (out unspecified) when the signature is invalid on these grounds. Reads each
/// buffer only within its stated length.
GOVMESH_HD inline bool ed25519Prepare(const uint8_t* pk, size_t pkLen, const uint8_t* sig, size_t sigLen,
                                      const uint8_t* msg, size_t msgLen, Ed25519Prepared& out) {
  if (pkLen != 32 || sigLen != 64) return false;
  if (!scalarBytesCanonical(sig + 32)) return false;
  for (int i = 0; i < 32; ++i) {
    out.a[i] = pk[i];
    out.r[i] = sig[i];
    out.s[i] = sig[32 + i];
  }
  Sha512 h;
  h.init();
  h.update(sig, 32);
  h.update(pk, 32);
  h.update(msg, msgLen);
  uint8_t digest[64];
  h.final(digest);
  scalarToBytes(out.k, scalarReduce512(digest));
  return true;
}

/// The point part of the criterion: A and R decode strictly, A is not of small order, and
/// [8]([S]B - R - [k]A) is the identity.
GOVMESH_HD inline bool ed25519VerifyPrepared(const Ed25519Prepared& p) {
  GeP3 a;
  if (!geDecode(a, p.a) || geIsSmallOrder(a)) return false;
  GeP3 r;
  if (!geDecode(r, p.r)) return false;
  const GeP3 sbMinusKa = geDoubleScalarMulBase(scalarFromBytes(p.k), geNeg(a), scalarFromBytes(p.s));
  return geIsSmallOrder(geToP3(geSub(sbMinusKa, geToCached(r))));
}

/// The whole criterion for one signature (the `single` backend's verdict).
GOVMESH_HD inline bool ed25519VerifySingle(const uint8_t* pk, size_t pkLen, const uint8_t* sig, size_t sigLen,
                                           const uint8_t* msg, size_t msgLen) {
  Ed25519Prepared p;
  return ed25519Prepare(pk, pkLen, sig, sigLen, msg, msgLen, p) && ed25519VerifyPrepared(p);
}

}  // namespace govmesh::kernels
