// Batch Ed25519 verification (see ed25519_batch.h). For a batch of prepared signatures with
// random 128-bit z_i, the cofactored equations [8](S_i B - R_i - k_i A_i) = 0 all hold exactly
// when (but for probability ~2^-128)
//   [8]( [sum z_i S_i] B + sum [z_i](-R_i) + sum_keys [sum_{i: A_i = A} z_i k_i](-A) ) = 0.
// Each full-width scalar w is split as w_lo + 2^128 w_hi against the points P and [2^128]P (kept
// per key in the cache, once for B), so the multi-scalar multiplication runs on 128-bit scalars
// only: n signatures by m keys cost n + 2m + 2 points.
#include "engine/ed25519_batch.h"

#include <openssl/rand.h>
#include <tbb/parallel_for.h>

#include <array>
#include <cstring>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/ed25519_core.h"

namespace govmesh::crypto {

using kernels::Ed25519Prepared;
using kernels::GeP3;
using kernels::Scalar;

namespace {

/// A public key after decoding, negated (the equation subtracts [k]A).
struct DecodedKey {
  bool valid = false;  ///< decodes strictly and is not of small order
  MsmPoint negA{};
  MsmPoint negA128{};  ///< [2^128](-A)
};

GeP3 timesTwoTo128(GeP3 p) {
  for (int i = 0; i < 128; ++i) p = kernels::geToP3(kernels::geDouble(p));
  return p;
}

DecodedKey decodeKey(const uint8_t bytes[32]) {
  DecodedKey key;
  GeP3 a;
  if (!kernels::geDecode(a, bytes) || kernels::geIsSmallOrder(a)) return key;
  const GeP3 negA = kernels::geNeg(a);
  key.valid = true;
  key.negA = msmPoint(negA);
  key.negA128 = msmPoint(timesTwoTo128(negA));
  return key;
}

using KeyBytes = std::array<uint8_t, 32>;

struct KeyHash {
  size_t operator()(const KeyBytes& k) const noexcept {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
  }
};

/// Decoded keys shared by all threads. Workload keys repeat, so decoding (a square root) and the
/// 128 doublings for [2^128]A are paid once per key, not per signature. Bounded: when full it is
/// emptied (simple, and a working set of keys refills it at once).
class KeyCache {
 public:
  static constexpr size_t kCapacity = 4096;

  DecodedKey get(const uint8_t bytes[32]) {
    KeyBytes k;
    std::memcpy(k.data(), bytes, 32);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = map_.find(k);
      if (it != map_.end()) return it->second;
    }
    DecodedKey decoded = decodeKey(bytes);  // outside the lock: it is the slow part
    std::lock_guard<std::mutex> lock(mutex_);
    if (map_.size() >= kCapacity) map_.clear();
    map_.emplace(k, decoded);
    return decoded;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    map_.clear();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<KeyBytes, DecodedKey, KeyHash> map_;
};

KeyCache& keyCache() {
  static KeyCache cache;
  return cache;
}

struct BasePoints {
  MsmPoint b, b128;
};

const BasePoints& basePoints() {
  static const BasePoints points = [] {
    const GeP3 b = kernels::ed25519BasePoint();
    return BasePoints{msmPoint(b), msmPoint(timesTwoTo128(b))};
  }();
  return points;
}

thread_local Ed25519BatchStats lastStats;

Scalar128 lowHalf(const Scalar& s) { return Scalar128{s.w[0], s.w[1]}; }
Scalar128 highHalf(const Scalar& s) { return Scalar128{s.w[2], s.w[3]}; }

/// One chunk's signatures that passed the cheap checks and decoding, and their coefficients.
class Batch {
 public:
  Batch(std::span<const SigInput> in, std::span<uint8_t> out, MsmMethod method) : out_(out), method_(method) {
    const size_t n = in.size();
    prepared_.resize(n);
    negR_.resize(n);
    keyOf_.resize(n);
    std::unordered_map<KeyBytes, uint32_t, KeyHash> keyIndex;
    for (size_t i = 0; i < n; ++i) {
      out_[i] = 0;
      const SigInput& s = in[i];
      if (!kernels::ed25519Prepare(s.pk.data, s.pk.size, s.sig.data, s.sig.size, s.msg.data, s.msg.size, prepared_[i])) {
        continue;
      }
      KeyBytes k;
      std::memcpy(k.data(), prepared_[i].a, 32);
      auto [it, added] = keyIndex.try_emplace(k, static_cast<uint32_t>(keys_.size()));
      if (added) keys_.push_back(keyCache().get(prepared_[i].a));
      if (!keys_[it->second].valid) continue;
      GeP3 r;
      if (!kernels::geDecode(r, prepared_[i].r)) continue;
      keyOf_[i] = it->second;
      negR_[i] = msmPoint(kernels::geNeg(r));
      candidates_.push_back(static_cast<uint32_t>(i));
    }
    z_.resize(n);
    keySum_.resize(keys_.size());
    keyTouched_.resize(keys_.size());
  }

  void run() {
    if (candidates_.empty()) return;
    // The coefficients must be unpredictable to whoever chose the signatures; without them the
    // batch check proves nothing, so a CSPRNG failure falls back to checking one by one.
    std::vector<uint8_t> random(16 * candidates_.size());
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
      for (uint32_t i : candidates_) checkOne(i);
      return;
    }
    for (size_t j = 0; j < candidates_.size(); ++j) {
      uint64_t lo, hi;
      std::memcpy(&lo, &random[16 * j], 8);
      std::memcpy(&hi, &random[16 * j + 8], 8);
      z_[candidates_[j]] = Scalar{{lo, hi, 0, 0}};
    }
    verifySubset(candidates_);
  }

 private:
  // Below this many signatures a failed subset is checked one by one: an MSM of 2 signatures
  // costs about as much as checking them.
  static constexpr size_t kSingleBelow = 3;
  // A subset of at most this many whose halves both failed is checked one by one: with two or
  // more bad signatures in it, bisecting further costs more MSM points than singles cost.
  static constexpr size_t kDenseSingles = 32;

  void checkOne(uint32_t i) {
    ++lastStats.singles;
    const Ed25519Prepared& p = prepared_[i];
    const GeP3 sbMinusKa = kernels::geDoubleScalarMulBase(kernels::scalarFromBytes(p.k), keys_[keyOf_[i]].negA.p3,
                                                          kernels::scalarFromBytes(p.s));
    out_[i] = kernels::geIsSmallOrder(kernels::geToP3(kernels::geAdd(sbMinusKa, negR_[i].cached))) ? 1 : 0;
  }

  void verifySubset(std::span<const uint32_t> subset) {
    if (subset.size() < kSingleBelow) {
      for (uint32_t i : subset) checkOne(i);
      return;
    }
    if (batchEquationHolds(subset)) {
      for (uint32_t i : subset) out_[i] = 1;
      return;
    }
    resolveFailed(subset);
  }

  /// Pinpoints the bad signatures of a subset whose batch equation failed (so it holds at least
  /// one). Bisection costs about 2 log2(n) smaller MSMs per bad signature, far less than n
  /// singles while bad signatures are rare; when both halves fail, bad ones are dense there and
  /// a small subset is cheaper to check one by one.
  void resolveFailed(std::span<const uint32_t> subset) {
    if (subset.size() < kSingleBelow) {
      for (uint32_t i : subset) checkOne(i);
      return;
    }
    const std::span<const uint32_t> left = subset.first(subset.size() / 2), right = subset.subspan(subset.size() / 2);
    if (left.size() < kSingleBelow) {
      bool leftAllGood = true;
      for (uint32_t i : left) {
        checkOne(i);
        leftAllGood = leftAllGood && out_[i] == 1;
      }
      // The parent failed: if left is clean, right holds a bad signature and needs no MSM of its own.
      if (leftAllGood) {
        resolveFailed(right);
      } else {
        verifySubset(right);
      }
      return;
    }
    if (batchEquationHolds(left)) {
      for (uint32_t i : left) out_[i] = 1;
      resolveFailed(right);
      return;
    }
    if (right.size() < kSingleBelow || batchEquationHolds(right)) {
      if (right.size() < kSingleBelow) {
        for (uint32_t i : right) checkOne(i);
      } else {
        for (uint32_t i : right) out_[i] = 1;
      }
      resolveFailed(left);
      return;
    }
    // Both halves fail: at least two bad signatures among these.
    if (subset.size() <= kDenseSingles) {
      for (uint32_t i : subset) checkOne(i);
      return;
    }
    resolveFailed(left);
    resolveFailed(right);
  }

  bool batchEquationHolds(std::span<const uint32_t> subset) {
    ++lastStats.msms;
    // Sums in Montgomery form (each product carries a 2^-256 that one final product removes).
    Scalar sSum{{0, 0, 0, 0}};
    touched_.clear();
    scalars_.clear();
    points_.clear();
    for (uint32_t i : subset) {
      const Ed25519Prepared& p = prepared_[i];
      sSum = kernels::scalarAdd(sSum, kernels::scalarMontMul(z_[i], kernels::scalarFromBytes(p.s)));
      const uint32_t key = keyOf_[i];
      if (!keyTouched_[key]) {
        keyTouched_[key] = 1;
        keySum_[key] = Scalar{{0, 0, 0, 0}};
        touched_.push_back(key);
      }
      keySum_[key] = kernels::scalarAdd(keySum_[key], kernels::scalarMontMul(z_[i], kernels::scalarFromBytes(p.k)));
      scalars_.push_back(lowHalf(z_[i]));
      points_.push_back(negR_[i]);
    }
    const Scalar r2 = Scalar GOVMESH_ED25519_R2;
    for (uint32_t key : touched_) {
      keyTouched_[key] = 0;
      const Scalar w = kernels::scalarMontMul(keySum_[key], r2);
      scalars_.push_back(lowHalf(w));
      points_.push_back(keys_[key].negA);
      scalars_.push_back(highHalf(w));
      points_.push_back(keys_[key].negA128);
    }
    const Scalar s = kernels::scalarMontMul(sSum, r2);
    scalars_.push_back(lowHalf(s));
    points_.push_back(basePoints().b);
    scalars_.push_back(highHalf(s));
    points_.push_back(basePoints().b128);
    return kernels::geIsSmallOrder(msm128(scalars_, points_, method_));
  }

  std::span<uint8_t> out_;
  MsmMethod method_;
  std::vector<Ed25519Prepared> prepared_;
  std::vector<MsmPoint> negR_;
  std::vector<uint32_t> keyOf_;   ///< index into keys_ per signature
  std::vector<DecodedKey> keys_;  ///< the distinct keys of this chunk
  std::vector<uint32_t> candidates_;
  std::vector<Scalar> z_;
  std::vector<Scalar> keySum_;
  std::vector<uint8_t> keyTouched_;
  std::vector<uint32_t> touched_;
  std::vector<Scalar128> scalars_;
  std::vector<MsmPoint> points_;
};

void verifyChunk(std::span<const SigInput> in, std::span<uint8_t> out, MsmMethod method) {
  Batch batch(in, out, method);
  batch.run();
}

}  // namespace

void ed25519VerifyBatch(std::span<const SigInput> in, std::span<uint8_t> out, MsmMethod method) {
  lastStats = Ed25519BatchStats{};
  const size_t chunks = (in.size() + kEd25519BatchChunk - 1) / kEd25519BatchChunk;
  if (chunks <= 1) {
    verifyChunk(in, out, method);
    return;
  }
  tbb::parallel_for(size_t{0}, chunks, [&](size_t c) {
    const size_t begin = c * kEd25519BatchChunk;
    const size_t len = std::min(kEd25519BatchChunk, in.size() - begin);
    verifyChunk(in.subspan(begin, len), out.subspan(begin, len), method);
  });
}

Ed25519BatchStats ed25519LastBatchStats() { return lastStats; }

void ed25519ClearKeyCache() { keyCache().clear(); }

}  // namespace govmesh::crypto
