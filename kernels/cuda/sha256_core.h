// SHA-256 (FIPS 180-4) written once for the CPU and the GPU: the "scalar" backend runs it
// directly and the CUDA kernel runs it per thread, so the CPU tests exercise the very code the
// GPU runs. It is the reference that every other SHA-256 backend must match bit for bit.
//
// The free functions are `static`, so each translation unit keeps its own copy; still, include
// this header only from files built without ISA flags (-mavx512f, ...): the inline members of
// Sha256 are shared, and the linker could otherwise keep a copy that needs AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/hd_table.h"
#include "kernels/cuda/sha256_constants.h"
#include "kernels/cuda/host_device.h"

namespace govmesh::kernels {

namespace sha256_detail {

// The 64 round constants (FIPS 180-4 §4.2.2). __constant__ on the device: every thread reads
// round t's constant at the same time, which constant memory broadcasts.
GOVMESH_HD_TABLE(uint32_t, kRound, __constant__, GOVMESH_SHA256_ROUND_CONSTANTS);

GOVMESH_HD static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

GOVMESH_HD static inline uint32_t loadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

GOVMESH_HD static inline void storeBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace sha256_detail

/// Initial hash value H(0) (FIPS 180-4 §5.3.3) into state[8].
GOVMESH_HD static inline void sha256InitState(uint32_t state[8]) {
  state[0] = 0x6a09e667u;
  state[1] = 0xbb67ae85u;
  state[2] = 0x3c6ef372u;
  state[3] = 0xa54ff53au;
  state[4] = 0x510e527fu;
  state[5] = 0x9b05688cu;
  state[6] = 0x1f83d9abu;
  state[7] = 0x5be0cd19u;
}

/// One SHA-256 compression: folds the 64-byte `block` into `state`.
GOVMESH_HD static inline void sha256Compress(uint32_t state[8], const uint8_t block[64]) {
  using namespace sha256_detail;
  const uint32_t* k = GOVMESH_HD_TABLE_REF(kRound);
  // A 16-word ring holds the message schedule: W[t] overwrites W[t-16], which is no longer needed.
  uint32_t w[16];
  for (int t = 0; t < 16; ++t) w[t] = loadBe32(block + 4 * t);
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
  for (int t = 0; t < 64; ++t) {
    uint32_t wt;
    if (t < 16) {
      wt = w[t];
    } else {
      uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
      uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
      uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
      wt = w[t & 15] = w[t & 15] + s0 + w[(t - 7) & 15] + s1;
    }
    uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + (g ^ (e & (f ^ g))) + k[t] + wt;
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) | (c & (a | b)));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

/// Streaming SHA-256: init(), any number of update() calls, then final() once.
struct Sha256 {
  uint32_t state[8];
  uint8_t buffer[64];  // the partial block not yet compressed
  uint64_t length;     // bytes absorbed so far

  /// Starts a new message.
  GOVMESH_HD void init() {
    sha256InitState(state);
    length = 0;
  }

  /// Absorbs len bytes of the message.
  GOVMESH_HD void update(const uint8_t* data, size_t len) {
    size_t used = static_cast<size_t>(length & 63);
    length += len;
    if (used != 0) {
      size_t take = 64 - used < len ? 64 - used : len;
      for (size_t i = 0; i < take; ++i) buffer[used + i] = data[i];
      data += take;
      len -= take;
      if (used + take < 64) return;
      sha256Compress(state, buffer);
    }
    for (; len >= 64; data += 64, len -= 64) sha256Compress(state, data);
    for (size_t i = 0; i < len; ++i) buffer[i] = data[i];
  }

  /// Pads the message (0x80, zeros, 64-bit big-endian bit length) and writes the digest.
  GOVMESH_HD void final(uint8_t out[32]) {
    size_t used = static_cast<size_t>(length & 63);
    uint64_t bits = length << 3;
    buffer[used++] = 0x80;
    if (used > 56) {
      for (; used < 64; ++used) buffer[used] = 0;
      sha256Compress(state, buffer);
      used = 0;
    }
    for (; used < 56; ++used) buffer[used] = 0;
    sha256_detail::storeBe32(buffer + 56, static_cast<uint32_t>(bits >> 32));
    sha256_detail::storeBe32(buffer + 60, static_cast<uint32_t>(bits));
    sha256Compress(state, buffer);
    for (int i = 0; i < 8; ++i) sha256_detail::storeBe32(out + 4 * i, state[i]);
  }
};

/// SHA-256 of `len` bytes at `data` into out[32].
GOVMESH_HD static inline void sha256(const uint8_t* data, size_t len, uint8_t out[32]) {
  Sha256 h;
  h.init();
  h.update(data, len);
  h.final(out);
}

}  // namespace govmesh::kernels
