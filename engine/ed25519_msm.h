// Multi-scalar multiplication over Ed25519 for batch verification (engine/ed25519_batch.cpp):
// sum_i [s_i] P_i for scalars below 2^128. Straus (interleaved width-5 w-NAF, one shared chain
// of doublings) is cheapest for few points; Pippenger's bucket method for many. Private to the
// engine; variable time (it handles only public data and the verifier's own random coefficients).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/cuda/ed25519_point.h"

namespace govmesh::crypto {

/// Which multi-scalar multiplication to use.
enum class MsmMethod {
  kAuto,       ///< Straus below kMsmPippengerFrom points, Pippenger from there on
  kStraus,     ///< interleaved w-NAF
  kPippenger,  ///< bucket method, window chosen by the number of points
};

/// From this many points on, kAuto uses Pippenger. Measured on one core (128-bit scalars): the
/// two cost the same near 36-50 points (16 signatures by 16 keys, 32 by one key); Pippenger is
/// ~10% faster at 68 points and ~20-35% at 130-260.
inline constexpr size_t kMsmPippengerFrom = 48;

/// A scalar below 2^128.
struct Scalar128 {
  uint64_t lo;
  uint64_t hi;
};

/// A point in the two forms the MSM needs: P3 to start a bucket by copying, cached to add.
struct MsmPoint {
  kernels::GeP3 p3;
  kernels::GeCached cached;
};

/// Both forms of p.
MsmPoint msmPoint(const kernels::GeP3& p);

/// sum_i [scalars[i]] points[i] (identity for no points). scalars.size() == points.size().
kernels::GeP3 msm128(std::span<const Scalar128> scalars, std::span<const MsmPoint> points, MsmMethod method);

/// The Pippenger window width (bits) used for n points: the c minimising the estimated number of
/// additions, (128 / c + 1) (n + 2^c).
int pippengerWindowBits(size_t n);

}  // namespace govmesh::crypto
