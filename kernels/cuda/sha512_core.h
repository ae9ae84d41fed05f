// SHA-512 (FIPS 180-4) for host and device: the hash inside Ed25519's k = SHA-512(R ‖ A ‖ M).
// Plain portable code, one message per call (one per GPU thread); tested against NIST CAVP.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/hd_table.h"
#include "kernels/cuda/host_device.h"

namespace govmesh::kernels {

namespace sha512_detail {

// First 64 bits of the fractional parts of the cube roots of the first 80 primes (FIPS 180-4
// §4.2.3). __constant__ on the device: every lane reads round t's constant at the same time.
GOVMESH_HD_TABLE(uint64_t, kRound, __constant__,
                 {0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL, 0xb5c0fbcfec4d3b2fULL, 0xe9b5dba58189dbbcULL,
                  0x3956c25bf348b538ULL, 0x59f111f1b605d019ULL, 0x923f82a4af194f9bULL, 0xab1c5ed5da6d8118ULL,
                  0xd807aa98a3030242ULL, 0x12835b0145706fbeULL, 0x243185be4ee4b28cULL, 0x550c7dc3d5ffb4e2ULL,
                  0x72be5d74f27b896fULL, 0x80deb1fe3b1696b1ULL, 0x9bdc06a725c71235ULL, 0xc19bf174cf692694ULL,
                  0xe49b69c19ef14ad2ULL, 0xefbe4786384f25e3ULL, 0x0fc19dc68b8cd5b5ULL, 0x240ca1cc77ac9c65ULL,
                  0x2de92c6f592b0275ULL, 0x4a7484aa6ea6e483ULL, 0x5cb0a9dcbd41fbd4ULL, 0x76f988da831153b5ULL,
                  0x983e5152ee66dfabULL, 0xa831c66d2db43210ULL, 0xb00327c898fb213fULL, 0xbf597fc7beef0ee4ULL,
                  0xc6e00bf33da88fc2ULL, 0xd5a79147930aa725ULL, 0x06ca6351e003826fULL, 0x142929670a0e6e70ULL,
                  0x27b70a8546d22ffcULL, 0x2e1b21385c26c926ULL, 0x4d2c6dfc5ac42aedULL, 0x53380d139d95b3dfULL,
                  0x650a73548baf63deULL, 0x766a0abb3c77b2a8ULL, 0x81c2c92e47edaee6ULL, 0x92722c851482353bULL,
                  0xa2bfe8a14cf10364ULL, 0xa81a664bbc423001ULL, 0xc24b8b70d0f89791ULL, 0xc76c51a30654be30ULL,
                  0xd192e819d6ef5218ULL, 0xd69906245565a910ULL, 0xf40e35855771202aULL, 0x106aa07032bbd1b8ULL,
                  0x19a4c116b8d2d0c8ULL, 0x1e376c085141ab53ULL, 0x2748774cdf8eeb99ULL, 0x34b0bcb5e19b48a8ULL,
                  0x391c0cb3c5c95a63ULL, 0x4ed8aa4ae3418acbULL, 0x5b9cca4f7763e373ULL, 0x682e6ff3d6b2b8a3ULL,
                  0x748f82ee5defb2fcULL, 0x78a5636f43172f60ULL, 0x84c87814a1f0ab72ULL, 0x8cc702081a6439ecULL,
                  0x90befffa23631e28ULL, 0xa4506cebde82bde9ULL, 0xbef9a3f7b2c67915ULL, 0xc67178f2e372532bULL,
                  0xca273eceea26619cULL, 0xd186b8c721c0c207ULL, 0xeada7dd6cde0eb1eULL, 0xf57d4f7fee6ed178ULL,
                  0x06f067aa72176fbaULL, 0x0a637dc5a2c898a6ULL, 0x113f9804bef90daeULL, 0x1b710b35131c471bULL,
                  0x28db77f523047d84ULL, 0x32caab7b40c72493ULL, 0x3c9ebe0a15c9bebcULL, 0x431d67c49c100d4cULL,
                  0x4cc5d4becb3e42b6ULL, 0x597f299cfc657e2aULL, 0x5fcb6fab3ad6faecULL, 0x6c44198c4a475817ULL});

GOVMESH_HD inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

GOVMESH_HD inline uint64_t loadBe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

GOVMESH_HD inline void storeBe64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

/// One compression of a 128-byte block into the state h.
GOVMESH_HD inline void compress(uint64_t h[8], const uint8_t* block) {
  const uint64_t* k = GOVMESH_HD_TABLE_REF(kRound);
  // A 16-word ring holds the message schedule: W[t] only needs W[t-2], W[t-7], W[t-15], W[t-16].
  uint64_t w[16];
  for (int t = 0; t < 16; ++t) w[t] = loadBe64(block + 8 * t);
  uint64_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 80; ++t) {
    uint64_t wt;
    if (t < 16) {
      wt = w[t];
    } else {
      const uint64_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
      const uint64_t s0 = rotr(w15, 1) ^ rotr(w15, 8) ^ (w15 >> 7);
      const uint64_t s1 = rotr(w2, 19) ^ rotr(w2, 61) ^ (w2 >> 6);
      wt = w[t & 15] = w[t & 15] + s0 + w[(t - 7) & 15] + s1;
    }
    const uint64_t t1 = hh + (rotr(e, 14) ^ rotr(e, 18) ^ rotr(e, 41)) + ((e & f) ^ (~e & g)) + k[t] + wt;
    const uint64_t t2 = (rotr(a, 28) ^ rotr(a, 34) ^ rotr(a, 39)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

}  // namespace sha512_detail

/// Streaming SHA-512: init(), any number of update() calls, then final() (which ends the stream;
/// call init() again to reuse).
struct Sha512 {
  uint64_t h[8];
  uint8_t buf[128];
  size_t bufLen;
  uint64_t totalLo;  ///< message length in bytes, low 64 bits
  uint64_t totalHi;  ///< and the carry out of it (the padding encodes the length in 128 bits)

  /// Starts a new message (FIPS 180-4 §5.3.5 initial hash value).
  GOVMESH_HD void init() {
    h[0] = 0x6a09e667f3bcc908ULL;
    h[1] = 0xbb67ae8584caa73bULL;
    h[2] = 0x3c6ef372fe94f82bULL;
    h[3] = 0xa54ff53a5f1d36f1ULL;
    h[4] = 0x510e527fade682d1ULL;
    h[5] = 0x9b05688c2b3e6c1fULL;
    h[6] = 0x1f83d9abfb41bd6bULL;
    h[7] = 0x5be0cd19137e2179ULL;
    bufLen = 0;
    totalLo = 0;
    totalHi = 0;
  }

  /// Appends `len` bytes (data may be null when len is 0).
  GOVMESH_HD void update(const uint8_t* data, size_t len) {
    const uint64_t before = totalLo;
    totalLo += len;
    if (totalLo < before) ++totalHi;
    if (bufLen > 0) {
      const size_t take = len < 128 - bufLen ? len : 128 - bufLen;
      for (size_t i = 0; i < take; ++i) buf[bufLen + i] = data[i];
      bufLen += take;
      data += take;
      len -= take;
      if (bufLen < 128) return;
      sha512_detail::compress(h, buf);
      bufLen = 0;
    }
    // Whole blocks straight from the input, without copying them through buf.
    while (len >= 128) {
      sha512_detail::compress(h, data);
      data += 128;
      len -= 128;
    }
    for (size_t i = 0; i < len; ++i) buf[i] = data[i];
    bufLen = len;
  }

  /// Pads, writes the 64-byte digest to out.
  GOVMESH_HD void final(uint8_t out[64]) {
    // Padding: 0x80, zeros, then the length in bits as a 128-bit big-endian number.
    const uint64_t bitsHi = (totalHi << 3) | (totalLo >> 61);
    const uint64_t bitsLo = totalLo << 3;
    buf[bufLen++] = 0x80;
    if (bufLen > 112) {
      while (bufLen < 128) buf[bufLen++] = 0;
      sha512_detail::compress(h, buf);
      bufLen = 0;
    }
    while (bufLen < 112) buf[bufLen++] = 0;
    sha512_detail::storeBe64(buf + 112, bitsHi);
    sha512_detail::storeBe64(buf + 120, bitsLo);
    sha512_detail::compress(h, buf);
    for (int i = 0; i < 8; ++i) sha512_detail::storeBe64(out + 8 * i, h[i]);
  }
};

/// SHA-512 of one message.
GOVMESH_HD inline void sha512(const uint8_t* data, size_t len, uint8_t out[64]) {
  Sha512 s;
  s.init();
  s.update(data, len);
  s.final(out);
}

}  // namespace govmesh::kernels
