// Ed25519 verification on AVX-512 IFMA: one signature per 64-bit lane, eight per vector, every
// lane on the same schedule (no data-dependent branches; per-lane choices are masks and gathers).
// Criterion and verdicts as in engine/ed25519_verify.h. Field arithmetic and its limb bounds:
// ed25519_ifma_field.hpp.
//
// Per batch of eight:
//   1. decode A and R strictly (y < p, square root via u·v^3·(u·v^7)^((p-5)/8), x = 0 with the
//      sign bit set rejected), both exponentiations interleaved for instruction-level parallelism;
//   2. tabulate [d](-A) for d in [-7, 8] (cached form) per lane; [8]A falls out of the table build
//      and gives the small-order test;
//   3. one joint ladder, Q = 16Q + [k_i](-A) per signed radix-16 digit of k, plus [s_j]B every
//      other step per signed radix-256 digit of s (32 additions of B instead of 64), both tables
//      read by gathers: B's (129 affine entries) is shared and built once, A's per lane;
//   4. Q - R, three doublings, and the identity test X = 0, Y = T (completed coordinates).
#include "kernels/simd/ed25519_ifma.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_epi32() as the unused merge source of the
// shift builtins, which -Wall reports hundreds of times once inlined (GCC PR 105593, fixed in
// 13). The values are never read; silence the false positive for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/simd/ed25519_ifma_field.hpp"

namespace govmesh::simd {

namespace {

using namespace ifma;

static_assert(sizeof(kernels::Ed25519Prepared) == 128, "lane gathers assume a 128-byte record");

/// Extended coordinates: x = X/Z, y = Y/Z, x·y = T/Z.
struct P3 {
  Fe x, y, z, t;
};

/// Completed coordinates (ref10's p1p1): x = X/Z, y = Y/T. The output of one add or double,
/// before the multiplications that bring it back to P3 (4M) or to X, Y, Z only (3M).
struct P1P1 {
  Fe x, y, z, t;
};

/// Cached form of a P3 for repeated additions: (Y+X, Y-X, 2Z, 2d·T).
struct Cached {
  Fe ypx, ymx, z2, t2d;
};

/// Affine cached form (Z = 1) of a constant point: (y+x, y-x, 2d·x·y).
struct Niels {
  Fe ypx, ymx, xy2d;
};

P3 toP3(const P1P1& p) { return {feMul(p.x, p.t), feMul(p.y, p.z), feMul(p.z, p.t), feMul(p.x, p.y)}; }

/// X, Y, Z only: enough for a following doubling, which never reads T.
P3 toP2(const P1P1& p) {
  P3 r;
  r.x = feMul(p.x, p.t);
  r.y = feMul(p.y, p.z);
  r.z = feMul(p.z, p.t);
  return r;
}

/// 2P from X, Y, Z (dbl-2008-hwcd with a = -1, as ref10's ge_p2_dbl).
P1P1 dbl(const P3& p) {
  const Fe xx = feSq(p.x);
  const Fe yy = feSq(p.y);
  const Fe zz = feSq(p.z);
  const Fe b = feAdd(zz, zz);
  const Fe aa = feSq(feAdd(p.x, p.y));
  P1P1 r;
  r.y = feAdd(yy, xx);
  r.z = feSub(yy, xx);
  r.x = feSub(aa, r.y);
  r.t = feSub(b, r.z);
  return r;
}

/// P + Q with Q cached (add-2008-hwcd-3, complete for a = -1 and non-square d).
P1P1 addCached(const P3& p, const Cached& q) {
  const Fe a = feMul(feAdd(p.y, p.x), q.ypx);
  const Fe b = feMul(feSub(p.y, p.x), q.ymx);
  const Fe c = feMul(q.t2d, p.t);
  const Fe d = feMul(p.z, q.z2);
  return {feSub(a, b), feAdd(a, b), feAdd(d, c), feSub(d, c)};
}

/// P + Q with Q affine (Z = 1), one multiplication fewer.
P1P1 addNiels(const P3& p, const Niels& q) {
  const Fe a = feMul(feAdd(p.y, p.x), q.ypx);
  const Fe b = feMul(feSub(p.y, p.x), q.ymx);
  const Fe c = feMul(q.xy2d, p.t);
  const Fe d = feAdd(p.z, p.z);
  return {feSub(a, b), feAdd(a, b), feAdd(d, c), feSub(d, c)};
}

Cached toCached(const P3& p) {
  return {feAdd(p.y, p.x), feSub(p.y, p.x), feAdd(p.z, p.z), feMul(p.t, feConst(kLimbs2D))};
}

/// z^(2^252 - 3) = z^((p-5)/8) for two independent inputs, interleaved so that the two
/// dependency chains overlap in the pipeline.
void pow22523x2(Fe (&z)[2]) {
  Fe t0[2], t1[2], t2[2];
  for (int j = 0; j < 2; ++j) {
    t0[j] = feSq(z[j]);                         // z^2
    t1[j] = feMul(z[j], feSqN(t0[j], 2));       // z^9
    t0[j] = feMul(t0[j], t1[j]);                // z^11
    t0[j] = feMul(t1[j], feSq(t0[j]));          // z^31 = z^(2^5-1)
    t1[j] = feMul(feSqN(t0[j], 5), t0[j]);      // z^(2^10-1)
  }
  for (int j = 0; j < 2; ++j) t2[j] = feMul(feSqN(t1[j], 10), t1[j]);  // 2^20-1
  for (int j = 0; j < 2; ++j) t2[j] = feMul(feSqN(t2[j], 20), t2[j]);  // 2^40-1
  for (int j = 0; j < 2; ++j) t1[j] = feMul(feSqN(t2[j], 10), t1[j]);  // 2^50-1
  for (int j = 0; j < 2; ++j) t2[j] = feMul(feSqN(t1[j], 50), t1[j]);  // 2^100-1
  Fe t3[2];
  for (int j = 0; j < 2; ++j) t3[j] = feMul(feSqN(t2[j], 100), t2[j]);  // 2^200-1
  for (int j = 0; j < 2; ++j) t3[j] = feMul(feSqN(t3[j], 50), t1[j]);   // 2^250-1
  for (int j = 0; j < 2; ++j) z[j] = feMul(feSqN(t3[j], 2), z[j]);      // 2^252-3
}

/// Strict RFC 8032 decoding of two points per lane. `words` are the four little-endian 64-bit
/// words of each encoding. Returns the points in P3 (Z = 1) and, per lane, whether each decoded.
void decodeX2(const __m512i (&words)[2][4], P3 (&out)[2], __mmask8 (&ok)[2]) {
  const Fe one = feSmall(1);
  const Fe d = feConst(kLimbsD);
  Fe y[2], u[2], v[2], v3[2], w[2];
  __mmask8 sign[2];
  for (int j = 0; j < 2; ++j) {
    y[j] = feFromWords(words[j]);
    sign[j] = _mm512_test_epi64_mask(words[j][3], bcast(uint64_t{1} << 63));
    const Fe yy = feSq(y[j]);
    u[j] = feSub(yy, one);
    v[j] = feAdd(feMul(yy, d), one);
    v3[j] = feMul(feSq(v[j]), v[j]);
    w[j] = feMul(u[j], feMul(feSq(v3[j]), v[j]));  // u·v^7
  }
  pow22523x2(w);
  for (int j = 0; j < 2; ++j) {
    Fe x = feMul(feMul(w[j], v3[j]), u[j]);  // u·v^3·(u·v^7)^((p-5)/8)
    const Fe vxx = feMul(v[j], feSq(x));
    const __mmask8 root = feEq(vxx, u[j]);
    const __mmask8 rootOfMinus = feEq(vxx, feNeg(u[j]));
    // x·sqrt(-1) is the root when v·x^2 = -u.
    x = feSelect(static_cast<__mmask8>(rootOfMinus & ~root), x, feMul(x, feConst(kLimbsSqrtM1)));
    const __mmask8 xZero = feIsZero(x);
    const __mmask8 flip = static_cast<__mmask8>(feIsOdd(x) ^ sign[j]);
    x = feSelect(flip, x, feNeg(x));
    ok[j] = static_cast<__mmask8>(feIsCanonical(y[j]) & (root | rootOfMinus) & ~(xZero & sign[j]));
    out[j].x = x;
    out[j].y = y[j];
    out[j].z = one;
    out[j].t = feMul(x, y[j]);
  }
}

/// Little-endian 32 bytes → signed radix-16 digits in [-7, 8], 64 of them (the top one ≤ 2 for a
/// scalar below 2^253), so that a 16-entry table indexed by digit + 7 covers every digit.
void recode(const uint8_t (&b)[32], int8_t* digits, size_t stride) {
  int e[64];
  for (int i = 0; i < 32; ++i) {
    e[2 * i] = b[i] & 15;
    e[2 * i + 1] = b[i] >> 4;
  }
  int carry = 0;
  for (int i = 0; i < 63; ++i) {
    e[i] += carry;
    carry = (e[i] + 7) >> 4;
    e[i] -= carry << 4;
  }
  e[63] += carry;
  for (int i = 0; i < 64; ++i) digits[static_cast<size_t>(i) * stride] = static_cast<int8_t>(e[i]);
}

/// Little-endian 32 bytes → signed radix-256 digits in [-128, 127], 32 of them (the top one
/// ≤ 32 for s < 2^253): B's additions then come every other radix-16 step, half as many.
void recodeBase(const uint8_t (&b)[32], int8_t* digits, size_t stride) {
  int carry = 0;
  for (int i = 0; i < 32; ++i) {
    int e = b[i] + carry;
    carry = (e + 128) >> 8;
    e -= carry << 8;
    digits[static_cast<size_t>(i) * stride] = static_cast<int8_t>(e);
  }
}

/// [d]B for d = 0..128 in affine cached form, shared by all lanes and looked up by gathers:
/// limb[d][c][l] with coordinates c = y+x, y-x, 2d·x·y, -2d·x·y (the last so that a negative
/// digit is only a different index, -P = (-x, y) swapping y+x with y-x).
struct BaseTable {
  alignas(64) uint64_t limb[129][4][5];
};

Fe feInvert(const Fe& z) {
  // z^(p-2) = z^(2^255 - 21) = (z^(2^250-1))^(2^5) · z^11, the chain of pow22523.
  const Fe z2 = feSq(z);
  const Fe z9 = feMul(z, feSqN(z2, 2));
  const Fe z11 = feMul(z2, z9);
  const Fe t5 = feMul(z9, feSq(z11));
  const Fe t10 = feMul(feSqN(t5, 5), t5);
  const Fe t20 = feMul(feSqN(t10, 10), t10);
  const Fe t40 = feMul(feSqN(t20, 20), t20);
  const Fe t50 = feMul(feSqN(t40, 10), t10);
  const Fe t100 = feMul(feSqN(t50, 50), t50);
  const Fe t200 = feMul(feSqN(t100, 100), t100);
  const Fe t250 = feMul(feSqN(t200, 50), t50);
  return feMul(feSqN(t250, 5), z11);
}

/// Built once, on first use, by the same lane code: B decoded from its encoding, its multiples
/// summed one by one (all lanes equal), then packed eight to a vector (entry 8b+j+1 in lane j)
/// so that sixteen inversions bring all 128 to affine form.
BaseTable makeBaseTable() {
  // B = (x, 4/5) with x even: y = 0x6666...6658 little-endian.
  __m512i words[2][4];
  for (int j = 0; j < 2; ++j) {
    words[j][0] = bcast(0x6666666666666658ull);
    words[j][1] = bcast(0x6666666666666666ull);
    words[j][2] = bcast(0x6666666666666666ull);
    words[j][3] = bcast(0x6666666666666666ull);
  }
  P3 dec[2];
  __mmask8 ok[2];
  decodeX2(words, dec, ok);
  const P3 base = dec[0];
  const Cached cb = toCached(base);
  BaseTable t{};
  t.limb[0][0][0] = 1;  // the identity: y+x = y-x = 1, x·y = 0
  t.limb[0][1][0] = 1;
  P3 cur = base;
  for (int b = 0; b < 16; ++b) {
    P3 packed = cur;
    for (int j = 0; j < 8; ++j) {
      if (b != 0 || j != 0) cur = toP3(addCached(cur, cb));
      const __mmask8 lane = static_cast<__mmask8>(1u << j);
      packed.x = feSelect(lane, packed.x, cur.x);
      packed.y = feSelect(lane, packed.y, cur.y);
      packed.z = feSelect(lane, packed.z, cur.z);
    }
    const Fe zi = feInvert(packed.z);
    const Fe x = feMul(packed.x, zi);
    const Fe y = feMul(packed.y, zi);
    const Fe xy2d = feMul(feMul(x, y), feConst(kLimbs2D));
    const Fe coords[4] = {feFreeze(feAdd(y, x)), feFreeze(feSub(y, x)), feFreeze(xy2d), feFreeze(feNeg(xy2d))};
    alignas(64) uint64_t lanes[8];
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 5; ++l) {
        _mm512_store_si512(lanes, coords[c].v[l]);
        for (int j = 0; j < 8; ++j) t.limb[8 * b + j + 1][c][l] = lanes[j];
      }
    }
  }
  return t;
}

const BaseTable& baseTable() {
  static const BaseTable table = makeBaseTable();
  return table;
}

/// Niels form of [d]B in each lane, d in [-128, 127] sign-extended to 64 bits.
Niels lookupBase(const BaseTable& t, __m512i d) {
  const __mmask8 neg = _mm512_movepi64_mask(d);
  const __m512i row = _mm512_mullo_epi64(_mm512_abs_epi64(d), bcast(20));
  // Coordinate offsets (in limbs) of the three slots: y+x, y-x, 2d·x·y, or y-x, y+x, -2d·x·y.
  const __m512i idx[3] = {_mm512_add_epi64(row, _mm512_mask_blend_epi64(neg, bcast(0), bcast(5))),
                          _mm512_add_epi64(row, _mm512_mask_blend_epi64(neg, bcast(5), bcast(0))),
                          _mm512_add_epi64(row, _mm512_mask_blend_epi64(neg, bcast(10), bcast(15)))};
  Niels r;
  Fe* coords[3] = {&r.ypx, &r.ymx, &r.xy2d};
  for (int c = 0; c < 3; ++c)
    for (int l = 0; l < 5; ++l) coords[c]->v[l] = _mm512_i64gather_epi64(idx[c], &t.limb[0][0][l], 8);
  return r;
}

/// Per-lane table of [d](-A), d = -7..8, cached form: limb[e][coord][limb][lane] so that one
/// gather with index e_j·160 + j fetches one limb of one coordinate for all lanes.
struct LaneTable {
  alignas(64) uint64_t limb[16][4][5][8];
};

void storeCached(LaneTable& t, int e, const Cached& c) {
  const Fe* coords[4] = {&c.ypx, &c.ymx, &c.z2, &c.t2d};
  for (int k = 0; k < 4; ++k)
    for (int l = 0; l < 5; ++l) _mm512_store_si512(&t.limb[e][k][l][0], coords[k]->v[l]);
}

/// Fills the table for -A from A; returns the lanes where [8]A is the identity (small order).
/// [8]A has order dividing L, so X([8]A) = 0 already means [8]A = (0, 1): (0, -1) has order 2.
__mmask8 buildLaneTable(const P3& a, LaneTable& t) {
  P3 m[9];
  m[1] = a;
  const Cached c1 = toCached(a);
  Cached c[9];
  c[1] = c1;
  for (int i = 2; i <= 8; ++i) {
    m[i] = (i % 2 == 0) ? toP3(dbl(m[i / 2])) : toP3(addCached(m[i - 1], c1));
    c[i] = toCached(m[i]);
  }
  const Cached identity{feSmall(1), feSmall(1), feSmall(2), feSmall(0)};
  storeCached(t, 7, identity);
  // Digits run from -7 to 8: entries 0..6 hold [-d](-A) = [d]A for d = 7..1, entries 8..15
  // hold [d](-A) = -[d]A for d = 1..8.
  for (int d = 1; d <= 7; ++d) storeCached(t, 7 - d, c[d]);
  for (int d = 1; d <= 8; ++d) storeCached(t, 7 + d, Cached{c[d].ymx, c[d].ypx, c[d].z2, feNeg(c[d].t2d)});
  return feIsZero(m[8].x);
}

/// Cached form of [d](-A) in each lane, d in [-7, 8] sign-extended to 64 bits.
Cached lookupLane(const LaneTable& t, __m512i d) {
  // Index in uint64 units: entry·(4·5·8) + lane; the coordinate and limb go in the base pointer.
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i e = _mm512_add_epi64(d, bcast(7));
  const __m512i e160 = _mm512_add_epi64(_mm512_slli_epi64(e, 7), _mm512_slli_epi64(e, 5));
  const __m512i gi = _mm512_add_epi64(e160, lane);
  Cached r;
  Fe* coords[4] = {&r.ypx, &r.ymx, &r.z2, &r.t2d};
  for (int k = 0; k < 4; ++k)
    for (int l = 0; l < 5; ++l) coords[k]->v[l] = _mm512_i64gather_epi64(gi, &t.limb[0][k][l][0], 8);
  return r;
}

/// Eight signed digits, one per lane, sign-extended.
__m512i loadDigits(const int8_t* p) {
  return _mm512_cvtepi8_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

/// Verdict mask for eight prepared signatures (all lanes real: the caller pads).
__attribute__((noinline)) __mmask8 verify8(const kernels::Ed25519Prepared (&in)[8]) {
  const BaseTable& bt = baseTable();
  // Gather the four 64-bit words of A and R per lane (records are 128 bytes = 16 words apart).
  const auto* base = reinterpret_cast<const long long*>(in);
  const __m512i rec = _mm512_set_epi64(7 * 16, 6 * 16, 5 * 16, 4 * 16, 3 * 16, 2 * 16, 1 * 16, 0);
  __m512i words[2][4];
  for (int w = 0; w < 4; ++w) {
    words[0][w] = _mm512_i64gather_epi64(rec, base + offsetof(kernels::Ed25519Prepared, a) / 8 + w, 8);
    words[1][w] = _mm512_i64gather_epi64(rec, base + offsetof(kernels::Ed25519Prepared, r) / 8 + w, 8);
  }
  P3 pts[2];
  __mmask8 ok[2];
  decodeX2(words, pts, ok);

  alignas(64) int8_t sd[32][8];
  alignas(64) int8_t kd[64][8];
  for (int j = 0; j < 8; ++j) {
    recodeBase(in[j].s, &sd[0][j], 8);
    recode(in[j].k, &kd[0][j], 8);
  }

  LaneTable table;  // 20 KiB on the stack, rebuilt per batch
  const __mmask8 smallA = buildLaneTable(pts[0], table);

  // Q = sum of 16^i·[k_i](-A) + sum of 256^j·[s_j]B = [s]B - [k]A, B's digit j added at step
  // i = 2j. The sum after each step only feeds a doubling (X, Y, Z suffice) except the last.
  P3 q{feSmall(0), feSmall(1), feSmall(1), feSmall(0)};
  P1P1 sum{};
  for (int i = 63; i >= 0; --i) {
    if (i != 63) {
      P3 t = toP2(sum);
      t = toP2(dbl(t));
      t = toP2(dbl(t));
      t = toP2(dbl(t));
      q = toP3(dbl(t));
    }
    if (i % 2 == 0) q = toP3(addNiels(q, lookupBase(bt, loadDigits(sd[i / 2]))));
    sum = addCached(q, lookupLane(table, loadDigits(kd[i])));
  }
  q = toP3(sum);
  // Q - R, then [8]: the identity in completed coordinates is X = 0, Y = T. ([8]P lies in the
  // subgroup of order L, where X = 0 already forces the identity; Y = T is checked anyway.)
  const Cached cr = toCached(pts[1]);
  P3 t = toP2(addCached(q, Cached{cr.ymx, cr.ypx, cr.z2, feNeg(cr.t2d)}));
  t = toP2(dbl(t));
  t = toP2(dbl(t));
  const P1P1 e = dbl(t);
  const __mmask8 identity = static_cast<__mmask8>(feIsZero(e.x) & feEq(e.y, e.t));
  return static_cast<__mmask8>(ok[0] & ok[1] & ~smallA & identity);
}

/// L, little-endian.
constexpr uint8_t kOrderL[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                 0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                                 0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};

/// The preconditions the digit tables rely on: s < L (as the criterion demands) and k < 2^253
/// (any such k gives the verdict of k mod L, the torsion part being killed by the 8). A record
/// breaking them would index past the tables, so it is denied instead of computed.
bool scalarsInRange(const kernels::Ed25519Prepared& p) {
  if (p.k[31] >= 0x20) return false;
  for (int i = 31; i >= 0; --i) {
    if (p.s[i] != kOrderL[i]) return p.s[i] < kOrderL[i];
  }
  return false;  // s = L
}

__attribute__((noinline)) void verifyAll(const kernels::Ed25519Prepared* in, size_t n, uint8_t* out) {
  kernels::Ed25519Prepared lanes[8];
  for (size_t i = 0; i < n; i += 8) {
    const size_t m = std::min<size_t>(8, n - i);
    // A short tail repeats its last record: its lanes compute, their verdicts are dropped.
    unsigned denied = 0;
    for (size_t j = 0; j < 8; ++j) {
      lanes[j] = in[i + std::min(j, m - 1)];
      if (!scalarsInRange(lanes[j])) {
        std::memset(lanes[j].s, 0, sizeof lanes[j].s);
        std::memset(lanes[j].k, 0, sizeof lanes[j].k);
        denied |= 1u << j;
      }
    }
    const unsigned v = verify8(lanes) & ~denied;
    for (size_t j = 0; j < m; ++j) out[i + j] = static_cast<uint8_t>((v >> j) & 1);
  }
}

}  // namespace

// The two entry points run before we know the CPU has AVX-512: keep the compiler from using it.
__attribute__((target("no-avx512f"))) bool cpuHasIfma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq");
}

__attribute__((target("no-avx512f"))) void ed25519VerifyPreparedIfma(const kernels::Ed25519Prepared* in, size_t n,
                                                                      uint8_t* out) {
  if (n == 0) return;
  if (!cpuHasIfma()) {  // documented precondition; deny rather than fault
    for (size_t i = 0; i < n; ++i) out[i] = 0;
    return;
  }
  verifyAll(in, n, out);
}

}  // namespace govmesh::simd
