// The console's per-second ring of decision counts (see console_series.h).
#include "server/console_series.h"

#include <algorithm>

namespace govmesh::server {

namespace {

uint64_t sum(const std::array<uint64_t, std::size(engine::kAllDenyCodes)>& a) {
  uint64_t s = 0;
  for (uint64_t v : a) s += v;
  return s;
}

// now - before, or 0 should a counter ever go backwards (an interval never has negative counts).
uint64_t delta(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

}  // namespace

uint64_t DecisionTotals::deniedTotal() const { return sum(denied); }
uint64_t SeriesPoint::deniedTotal() const { return sum(denied); }

ConsoleSeries::ConsoleSeries(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

void ConsoleSeries::sample(int64_t tMs, const DecisionTotals& totals) {
  std::lock_guard lock(mu_);
  if (last_) {
    SeriesPoint p;
    p.tMs = tMs;
    p.allowed = delta(totals.allowed, last_->allowed);
    for (size_t c = 0; c < p.denied.size(); ++c) p.denied[c] = delta(totals.denied[c], last_->denied[c]);
    if (points_.size() == capacity_) points_.pop_front();
    points_.push_back(p);
  }
  last_ = totals;
}

std::deque<SeriesPoint> ConsoleSeries::points() const {
  std::lock_guard lock(mu_);
  return points_;
}

size_t ConsoleSeries::size() const {
  std::lock_guard lock(mu_);
  return points_.size();
}

}  // namespace govmesh::server
