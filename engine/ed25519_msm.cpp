// Straus and Pippenger multi-scalar multiplication for 128-bit scalars (see ed25519_msm.h).
#include "engine/ed25519_msm.h"

#include <vector>

namespace govmesh::crypto {

using kernels::GeCached;
using kernels::GeP1P1;
using kernels::GeP2;
using kernels::GeP3;

MsmPoint msmPoint(const GeP3& p) { return MsmPoint{p, kernels::geToCached(p)}; }

namespace {

constexpr int kScalarBits = 128;
constexpr int kStrausWidth = 5;  // 8 odd multiples per point: ~21 additions per 128-bit scalar

/// acc + q or acc - q by the sign of digit (non-zero).
GeP3 addSigned(const GeP3& acc, const GeCached& q, int digit) {
  return kernels::geToP3(digit > 0 ? kernels::geAdd(acc, q) : kernels::geSub(acc, q));
}

GeP3 straus(std::span<const Scalar128> scalars, std::span<const MsmPoint> points) {
  const size_t n = points.size();
  std::vector<int8_t> naf(n * 256);
  std::vector<GeCached> tables(n * 8);
  int top = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t words[4] = {scalars[i].lo, scalars[i].hi, 0, 0};
    const int t = kernels::scalarToWnaf(&naf[i * 256], words, kStrausWidth);
    if (t > top) top = t;
    if (t == 0) continue;
    // Odd multiples P, 3P, ..., 15P.
    GeCached* table = &tables[i * 8];
    table[0] = points[i].cached;
    const GeCached twice = kernels::geToCached(kernels::geToP3(kernels::geDouble(points[i].p3)));
    GeP3 acc = points[i].p3;
    for (int j = 1; j < 8; ++j) {
      acc = kernels::geToP3(kernels::geAdd(acc, twice));
      table[j] = kernels::geToCached(acc);
    }
  }
  GeP3 acc = kernels::geIdentity();
  for (int bit = top - 1; bit >= 0; --bit) {
    GeP1P1 t = kernels::geDouble(acc);
    for (size_t i = 0; i < n; ++i) {
      const int d = naf[i * 256 + bit];
      if (d > 0) {
        t = kernels::geAdd(kernels::geToP3(t), tables[i * 8 + d / 2]);
      } else if (d < 0) {
        t = kernels::geSub(kernels::geToP3(t), tables[i * 8 + (-d) / 2]);
      }
    }
    if (bit == 0) return kernels::geToP3(t);
    // Doubling reads only X, Y, Z: skip T's multiplication until a step adds.
    const GeP2 r = kernels::geToP2(t);
    acc = GeP3{r.x, r.y, r.z, kernels::feZero()};
  }
  return acc;
}

GeP3 pippenger(std::span<const Scalar128> scalars, std::span<const MsmPoint> points) {
  const size_t n = points.size();
  const int c = pippengerWindowBits(n);
  const int windows = kScalarBits / c + 1;  // the extra window takes the last digit's carry
  const int half = 1 << (c - 1);
  // Signed digits in [-2^(c-1), 2^(c-1)]: window-major, so one window's pass reads them in order.
  std::vector<int32_t> digits(static_cast<size_t>(windows) * n);
  for (size_t i = 0; i < n; ++i) {
    int carry = 0;
    for (int w = 0; w < windows; ++w) {
      const int pos = w * c;
      uint64_t bits = 0;
      if (pos < 64) {
        bits = scalars[i].lo >> pos;
        if (pos + c > 64) bits |= scalars[i].hi << (64 - pos);
      } else if (pos < 128) {
        bits = scalars[i].hi >> (pos - 64);
      }
      int d = static_cast<int>(bits & ((uint64_t{1} << c) - 1)) + carry;
      carry = 0;
      if (d > half) {  // d in (2^(c-1), 2^c]: use d - 2^c and carry one into the next window
        d -= 1 << c;
        carry = 1;
      }
      digits[static_cast<size_t>(w) * n + i] = d;
    }
  }
  std::vector<GeP3> buckets(half);
  std::vector<uint8_t> used(half);
  GeP3 acc = kernels::geIdentity();
  bool accSet = false;
  for (int w = windows - 1; w >= 0; --w) {
    if (accSet) {
      for (int j = 0; j < c; ++j) {
        const GeP1P1 t = kernels::geDouble(acc);
        if (j + 1 < c) {
          const GeP2 r = kernels::geToP2(t);
          acc = GeP3{r.x, r.y, r.z, kernels::feZero()};
        } else {
          acc = kernels::geToP3(t);
        }
      }
    }
    std::fill(used.begin(), used.end(), 0);
    const int32_t* row = &digits[static_cast<size_t>(w) * n];
    for (size_t i = 0; i < n; ++i) {
      const int d = row[i];
      if (d == 0) continue;
      const int b = (d > 0 ? d : -d) - 1;
      if (!used[b]) {
        buckets[b] = d > 0 ? points[i].p3 : kernels::geNeg(points[i].p3);
        used[b] = 1;
      } else {
        buckets[b] = addSigned(buckets[b], points[i].cached, d);
      }
    }
    // sum_b (b+1) bucket[b] as a running sum from the top: running = sum of buckets >= b,
    // added once per b.
    GeP3 running{}, sum{};
    bool runningSet = false, sumSet = false;
    for (int b = half - 1; b >= 0; --b) {
      if (used[b]) {
        running = runningSet ? kernels::geToP3(kernels::geAdd(running, kernels::geToCached(buckets[b]))) : buckets[b];
        runningSet = true;
      }
      if (runningSet) {
        sum = sumSet ? kernels::geToP3(kernels::geAdd(sum, kernels::geToCached(running))) : running;
        sumSet = true;
      }
    }
    if (sumSet) {
      acc = accSet ? kernels::geToP3(kernels::geAdd(acc, kernels::geToCached(sum))) : sum;
      accSet = true;
    }
  }
  return acc;
}

}  // namespace

int pippengerWindowBits(size_t n) {
  int best = 4;
  double bestCost = 0;
  for (int c = 4; c <= 16; ++c) {
    const double cost = static_cast<double>(kScalarBits / c + 1) * (static_cast<double>(n) + double(1 << c));
    if (c == 4 || cost < bestCost) {
      best = c;
      bestCost = cost;
    }
  }
  return best;
}

GeP3 msm128(std::span<const Scalar128> scalars, std::span<const MsmPoint> points, MsmMethod method) {
  if (method == MsmMethod::kAuto) method = points.size() < kMsmPippengerFrom ? MsmMethod::kStraus : MsmMethod::kPippenger;
  return method == MsmMethod::kStraus ? straus(scalars, points) : pippenger(scalars, points);
}

}  // namespace govmesh::crypto
