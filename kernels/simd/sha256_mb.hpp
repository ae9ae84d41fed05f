// Multi-buffer SHA-256, written once for every vector width: lane i of each vector carries one
// message, so a vector instruction advances V::kLanes independent hashes by one step. Each ISA
// file (sha256_mb_avx2.cpp, sha256_mb_avx512.cpp) defines a vector type V and instantiates
// sha256Multi<V>; this header is included only by those files, each compiled with its ISA flags.
//
// Layout: the hash states are kept "transposed" (state[j][lane] = word j of that lane's hash), so
// one vector load brings word j of every lane. Each step compresses one 64-byte block per lane;
// a lane whose message is finished writes its digest and picks up the next message at once
// (lanes are refilled independently), so mixed lengths waste no lane time except at the end of
// the batch. A message's last one or two blocks (remainder, 0x80, zeros, bit length) are built in
// the lane's own tail buffer when the lane picks it up.
//
// Everything lives in an anonymous namespace so that each ISA file's copy stays its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cuda/sha256_constants.h"

namespace govmesh::simd {
namespace {

alignas(64) constexpr uint32_t kMbRoundK[64] = GOVMESH_SHA256_ROUND_CONSTANTS;

constexpr uint32_t kMbInitState[8] = GOVMESH_SHA256_INITIAL_STATE;

// One SHA-256 round on vectors: the FIPS 180-4 T1/T2 update, with `kw` = K[t] + W[t]. Only d and
// h change; the caller rotates the roles of the eight variables instead of moving values.
template <class V>
inline void mbRound(typename V::Reg a, typename V::Reg b, typename V::Reg c, typename V::Reg& d, typename V::Reg e,
                    typename V::Reg f, typename V::Reg g, typename V::Reg& h, typename V::Reg kw) {
  auto t1 = V::add(V::add(h, V::bigSigma1(e)), V::add(V::ch(e, f, g), kw));
  d = V::add(d, t1);
  h = V::add(t1, V::add(V::bigSigma0(a), V::maj(a, b, c)));
}

// The 64 rounds on every lane: kwAt(t) gives round t's K[t] + W[t] vector, asked for in order
// t = 0..63; state holds the transposed hash state and is updated in place.
template <class V, class KwAt>
inline void mbRounds(uint32_t* state, KwAt kwAt) {
  using R = typename V::Reg;
  R a = V::load(state + 0 * V::kLanes), b = V::load(state + 1 * V::kLanes);
  R c = V::load(state + 2 * V::kLanes), d = V::load(state + 3 * V::kLanes);
  R e = V::load(state + 4 * V::kLanes), f = V::load(state + 5 * V::kLanes);
  R g = V::load(state + 6 * V::kLanes), h = V::load(state + 7 * V::kLanes);
  for (int t = 0; t < 64; t += 8) {
    mbRound<V>(a, b, c, d, e, f, g, h, kwAt(t + 0));
    mbRound<V>(h, a, b, c, d, e, f, g, kwAt(t + 1));
    mbRound<V>(g, h, a, b, c, d, e, f, kwAt(t + 2));
    mbRound<V>(f, g, h, a, b, c, d, e, kwAt(t + 3));
    mbRound<V>(e, f, g, h, a, b, c, d, kwAt(t + 4));
    mbRound<V>(d, e, f, g, h, a, b, c, kwAt(t + 5));
    mbRound<V>(c, d, e, f, g, h, a, b, kwAt(t + 6));
    mbRound<V>(b, c, d, e, f, g, h, a, kwAt(t + 7));
  }
  const R out[8] = {a, b, c, d, e, f, g, h};
  for (int j = 0; j < 8; ++j) V::store(state + j * V::kLanes, V::add(out[j], V::load(state + j * V::kLanes)));
}

// Compresses one block per lane: w[0..15] hold the block's words (w[t][lane], byte-swapped).
// The schedule runs alongside the rounds: W[t] overwrites W[t-16] in the 16-word ring.
template <class V>
inline void mbCompress(uint32_t* state, typename V::Reg w[16]) {
  mbRounds<V>(state, [w](int t) {
    if (t >= 16) {
      int i = t & 15;
      w[i] = V::add(V::add(w[i], V::smallSigma0(w[(i + 1) & 15])), V::add(w[(i + 9) & 15], V::smallSigma1(w[(i + 14) & 15])));
    }
    return V::add(w[t & 15], V::broadcast(kMbRoundK[t]));
  });
}

// K[t] + W[t] for one block, scalar: used when every lane compresses the same block.
inline void mbScheduleScalar(const uint8_t* block, uint32_t kw[64]) {
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  uint32_t w[64];
  for (int t = 0; t < 16; ++t)
    w[t] = uint32_t{block[4 * t]} << 24 | uint32_t{block[4 * t + 1]} << 16 | uint32_t{block[4 * t + 2]} << 8 | block[4 * t + 3];
  for (int t = 16; t < 64; ++t) {
    uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  for (int t = 0; t < 64; ++t) kw[t] = w[t] + kMbRoundK[t];
}

// What one lane is working on.
struct MbLane {
  const uint8_t* next;  // the lane's next block: in the message, or in `tail`
  size_t fullLeft;      // whole 64-byte blocks still to read from the message
  unsigned tailLeft;    // padding blocks still to read from `tail` (after the whole ones)
  unsigned tailBlocks;  // 1 or 2
  size_t job;           // index of the message, or kIdle
  // Per tail block: nonzero when the block holds no message byte, so that its content depends
  // only on the message length; equal keys mean equal blocks.
  uint64_t padKey[2];
  alignas(64) uint8_t tail[128];
};

constexpr size_t kIdle = ~size_t{0};
alignas(64) constexpr uint8_t kZeroBlock[64] = {};

// Starts message `job` in `lane` (state words j at state[j * lanes + slot]).
inline void mbStartLane(MbLane& lane, uint32_t* state, size_t lanes, size_t slot, size_t job, const uint8_t* data,
                        size_t len) {
  size_t full = len / 64, rest = len % 64;
  lane.job = job;
  lane.fullLeft = full;
  lane.tailLeft = lane.tailBlocks = rest < 56 ? 1 : 2;
  uint64_t bits = static_cast<uint64_t>(len) << 3;
  // Block 0 holds the message's last bytes unless rest == 0; block 1 never holds any.
  lane.padKey[0] = rest == 0 ? (bits << 2 | 1) : 0;
  lane.padKey[1] = bits << 2 | 2;
  lane.next = full != 0 ? data : lane.tail;
  std::memset(lane.tail, 0, sizeof lane.tail);
  if (rest != 0) std::memcpy(lane.tail, data + full * 64, rest);
  lane.tail[rest] = 0x80;
  uint8_t* end = lane.tail + lane.tailLeft * 64;
  for (int i = 0; i < 8; ++i) end[-1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  for (int j = 0; j < 8; ++j) state[j * lanes + slot] = kMbInitState[j];
}

// SHA-256 of n messages into out + 32*i, V::kLanes at a time.
template <class V>
void sha256Multi(const uint8_t* const* data, const size_t* lens, size_t n, uint8_t* out) {
  constexpr size_t kL = V::kLanes;
  alignas(64) uint32_t state[8 * kL] = {};
  MbLane lanes[kL];
  size_t nextJob = 0, active = 0;
  uint64_t cachedKey = 0;  // the padding block whose K + W is in cachedKw (0: none)
  alignas(64) uint32_t cachedKw[64];
  for (size_t s = 0; s < kL; ++s) {
    if (nextJob < n) {
      mbStartLane(lanes[s], state, kL, s, nextJob, data[nextJob], lens[nextJob]);
      ++nextJob;
      ++active;
    } else {
      lanes[s].job = kIdle;
      lanes[s].next = kZeroBlock;
    }
  }
  while (active != 0) {
    // When every busy lane is at the same padding-only block (batches of equal lengths reach
    // one per message, e.g. the second block of every 64-byte message), its schedule is the
    // same for all lanes: computed once in scalar code and broadcast, it saves the transpose
    // and the vector schedule, about a third of the block's work.
    uint64_t sharedKey = 0;
    const uint8_t* sharedBlock = nullptr;
    for (size_t s = 0; s < kL; ++s) {
      const MbLane& lane = lanes[s];
      if (lane.job == kIdle) continue;
      uint64_t key = lane.fullLeft == 0 ? lane.padKey[lane.tailBlocks - lane.tailLeft] : 0;
      if (key == 0 || (sharedBlock != nullptr && key != sharedKey)) {
        sharedBlock = nullptr;
        break;
      }
      sharedKey = key;
      sharedBlock = lane.next;
    }
    if (sharedBlock != nullptr) {
      if (sharedKey != cachedKey) {
        mbScheduleScalar(sharedBlock, cachedKw);
        cachedKey = sharedKey;
      }
      mbRounds<V>(state, [&](int t) { return V::broadcast(cachedKw[t]); });
    } else {
      const uint8_t* blocks[kL];
      for (size_t s = 0; s < kL; ++s) blocks[s] = lanes[s].next;
      typename V::Reg w[16];
      V::loadTransposed(blocks, w);
      mbCompress<V>(state, w);
    }
    for (size_t s = 0; s < kL; ++s) {
      MbLane& lane = lanes[s];
      if (lane.job == kIdle) continue;
      if (lane.fullLeft != 0) {
        // Whole blocks come straight from the message; then the tail buffer takes over.
        lane.next = --lane.fullLeft != 0 ? lane.next + 64 : lane.tail;
        continue;
      }
      if (--lane.tailLeft != 0) {
        lane.next += 64;
        continue;
      }
      uint8_t* digest = out + 32 * lane.job;
      for (int j = 0; j < 8; ++j) {
        uint32_t v = state[j * kL + s];
        digest[4 * j] = static_cast<uint8_t>(v >> 24);
        digest[4 * j + 1] = static_cast<uint8_t>(v >> 16);
        digest[4 * j + 2] = static_cast<uint8_t>(v >> 8);
        digest[4 * j + 3] = static_cast<uint8_t>(v);
      }
      if (nextJob < n) {
        mbStartLane(lane, state, kL, s, nextJob, data[nextJob], lens[nextJob]);
        ++nextJob;
      } else {
        lane.job = kIdle;
        lane.next = kZeroBlock;
        --active;
      }
    }
  }
}

}  // namespace
}  // namespace govmesh::simd
