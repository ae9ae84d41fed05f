// The governance console's per-second series (issue 9): the decision counters of the last 600
// seconds, one point per second, for the console's throughput and deny-code charts.
//
// The service's MetricsObserver keeps cumulative totals (allowed, denied per code). Once a second
// a timer on the event loop hands them to sample(), which stores the difference from the
// previous sample: the decisions of that second. Keeping deltas of cumulative counters (rather
// than counting in the hot path) costs the pipeline nothing, and a late tick only makes one
// point cover a little more than a second; no decision is lost or counted twice.
//
// Thread-safety: sample() and the readers may be called from any thread (one mutex).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include "engine/deny_code.h"

namespace govmesh::server {

/// Cumulative decision counters at one instant (MetricsObserver's totals).
struct DecisionTotals {
  uint64_t allowed = 0;  ///< allow decisions so far
  /// deny decisions so far, by code (index: DenyCode value; kNone = denied by the policies)
  std::array<uint64_t, std::size(engine::kAllDenyCodes)> denied{};
  /// Every deny, whatever its code.
  uint64_t deniedTotal() const;
};

/// The decisions of one sampling interval.
struct SeriesPoint {
  int64_t tMs = 0;        ///< when the interval ended (Unix ms)
  uint64_t allowed = 0;   ///< allow decisions in the interval
  /// deny decisions in the interval, by code (index: DenyCode value)
  std::array<uint64_t, std::size(engine::kAllDenyCodes)> denied{};
  /// Every deny in the interval.
  uint64_t deniedTotal() const;
};

/// A ring of the last `capacity` per-interval points (see the top of this file).
class ConsoleSeries {
 public:
  /// Points kept: 600 one-second samples, ten minutes.
  static constexpr size_t kDefaultCapacity = 600;

  /// A ring of `capacity` points (at least 1).
  explicit ConsoleSeries(size_t capacity = kDefaultCapacity);

  /// Records the interval ending at `tMs` whose cumulative counters are now `totals`. The first
  /// call only sets the baseline (no point: what came before it is not one interval). A counter
  /// that went backwards (never expected: the totals only grow) counts as 0 for that interval.
  void sample(int64_t tMs, const DecisionTotals& totals);
  /// The points kept, oldest first.
  std::deque<SeriesPoint> points() const;
  /// Points kept now.
  size_t size() const;

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::optional<DecisionTotals> last_;
  std::deque<SeriesPoint> points_;
};

}  // namespace govmesh::server
