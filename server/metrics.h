// Prometheus metrics of the decision service, rendered in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), with no external library.
//
// Two layers:
//   MetricsRegistry  generic counters, gauges and histograms, each family a name, a help text and
//                    a fixed set of children (one per label set, created at registration), and
//                    renderPrometheusText() for the /metrics endpoint;
//   ServiceMetrics   the service's own metrics on top of it, with hot-path methods that index
//                    pre-created children (no lookup, no lock, no allocation).
//
// Hot path: Counter::inc, Gauge::set/add and Histogram::observe are relaxed atomic operations, safe
// from any thread without locks. Registration takes a mutex and may allocate; do it at start-up.
// renderPrometheusText() may run concurrently with updates: each value is read atomically, and a
// histogram's buckets and _count come from one read of each bucket, so they always agree (its _sum
// may lag or lead by the observations in flight).
//
// Why our own and not prometheus-cpp: Debian 12 ships prometheus-cpp-dev 1.0.1, but it is not
// installed on the build machines, it pulls in civetweb and libcurl for HTTP we serve with kj-http
// anyway, and its Histogram::Observe takes a mutex. The subset we need is the few hundred lines
// below.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/deny_code.h"

namespace govmesh::server {

/// A metric's label set: (name, value) pairs, rendered in the given order.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing count. Aligned to a cache line so that counters bumped by
/// different threads do not share one.
class alignas(64) Counter {
 public:
  /// Adds `n`. Relaxed: counts need no ordering with other memory.
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  /// The current count.
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

/// A value that goes up and down.
class alignas(64) Gauge {
 public:
  /// Sets the value.
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  /// Adds `d` (negative to subtract).
  void add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  /// The current value.
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

/// A histogram with fixed bucket upper bounds (inclusive, as Prometheus's `le`), plus the
/// implicit +Inf bucket.
class Histogram {
 public:
  /// Bounds must be finite and strictly increasing (a trailing +Inf is dropped: it is implicit).
  /// Throws std::invalid_argument otherwise; registration-time only.
  explicit Histogram(std::span<const double> upperBounds);

  /// Counts `v` in the first bucket whose bound is >= v and adds it to the sum. NaN is ignored:
  /// it would poison the sum for good.
  void observe(double v);

  /// A consistent view for rendering.
  struct Snapshot {
    std::vector<uint64_t> cumulative;  ///< per bound, then +Inf; each counts v <= bound
    uint64_t count = 0;                ///< == cumulative.back()
    double sum = 0;
  };
  /// Reads each bucket once and accumulates.
  Snapshot snapshot() const;

  /// The finite bounds, ascending.
  const std::vector<double>& upperBounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0.0};
};

/// The kind of a metric family (its # TYPE line).
enum class MetricType : uint8_t { kCounter, kGauge, kHistogram };

/// Holds metric families and renders them. Children live as long as the registry, at stable
/// addresses. Thread-safety: every method may be called concurrently.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  /// The counter `name{labels}`, created on first use. The family's help and type are fixed by
  /// its first registration. Throws std::invalid_argument on a bad metric or label name (names
  /// follow [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*, no "__" prefix, and no "le" on
  /// histograms), on a name registered with another type, or when the label names differ from
  /// the family's first child. Counter names should end in "_total".
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  /// The gauge `name{labels}` (as counter()).
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  /// The histogram `name{labels}` (as counter()); every child of a family has the same bounds,
  /// and a later registration with other bounds throws std::invalid_argument.
  Histogram& histogram(std::string_view name, std::string_view help, std::span<const double> upperBounds,
                       const Labels& labels = {});

  /// Every family in registration order, in the text format 0.0.4: "# HELP", "# TYPE", then one
  /// line per sample (a histogram child: _bucket{...,le="..."} lines, _sum, _count).
  std::string renderPrometheusText() const;

 private:
  struct Family;
  Family& family(std::string_view name, std::string_view help, MetricType type, const Labels& labels);
  mutable std::mutex mu_;
  std::deque<Family> families_;
};

/// The stages of the pipeline (ARCHITECTURE.md), as the `stage` label of the latency histogram.
enum class Stage : uint8_t { kAdmit, kVerify, kFeaturize, kEvaluate, kRecord, kReply };
/// Number of Stage values.
inline constexpr size_t kStageCount = 6;
/// The `stage` label value ("admit", ...).
std::string_view stageName(Stage s);

/// Bucket bounds of the batch-size histogram: powers of two, 1 to 65536.
std::span<const double> batchSizeBuckets();
/// Bucket bounds of the latency histograms, in seconds: 1 µs to 1 s, 1-2.5-5 per decade.
std::span<const double> latencyBuckets();

/// The decision service's metrics (names below), registered in `registry` at construction.
///   govmesh_decisions_total{result="allow"|"deny",code=DenyCode name}   counter
///   govmesh_batch_size                                                  histogram
///   govmesh_stage_latency_seconds{stage=...}                            histogram
///   govmesh_backend_fallbacks_total{kind="sha256"|"ed25519"|"evaluate"} counter
///   govmesh_queue_depth, govmesh_bundle_revision,
///   govmesh_bundle_seconds_until_deadline, govmesh_nonce_cache_entries  gauges
/// A result="allow" child exists only for code NONE (an allow never carries a fault code);
/// result="deny",code="NONE" counts denies by the policies themselves.
class ServiceMetrics {
 public:
  /// Registers every metric above in `registry`, which must outlive this object.
  explicit ServiceMetrics(MetricsRegistry& registry);

  /// Counts `n` decisions with this outcome. An allow with a fault code cannot happen; were it
  /// to, it is counted as a deny with that code, the way the service must treat it.
  /// A value outside DenyCode (only a bug could make one) goes to code="UNKNOWN".
  void countDecision(bool allow, engine::DenyCode code, uint64_t n = 1) {
    const size_t c = std::min<size_t>(static_cast<size_t>(code), kCodeCount);
    decisions_[allow && code == engine::DenyCode::kNone ? 0 : 1 + c]->inc(n);
  }
  /// Observes one batch's size.
  void observeBatchSize(size_t n) { batchSize_->observe(static_cast<double>(n)); }
  /// Observes time spent in a stage by one batch, in seconds.
  void observeStage(Stage s, double seconds) { stageLatency_[static_cast<size_t>(s)]->observe(seconds); }
  /// Observes time spent in a stage by one batch, in nanoseconds (as AdmissionTiming reports).
  void observeStageNs(Stage s, uint64_t ns) { observeStage(s, static_cast<double>(ns) * 1e-9); }
  /// Counts a SHA-256 backend fault that fell back to the scalar code.
  void countSha256Fallback() { fallbackSha256_->inc(); }
  /// Counts an Ed25519 backend fault that fell back to the single verifier.
  void countEd25519Fallback() { fallbackEd25519_->inc(); }
  /// Counts an evaluation backend fault that fell back to the CPU.
  void countEvaluateFallback() { fallbackEvaluate_->inc(); }

  /// Requests waiting for a worker.
  Gauge& queueDepth() { return *queueDepth_; }
  /// The active bundle's revision (0 when none).
  Gauge& bundleRevision() { return *bundleRevision_; }
  /// Seconds until the active bundle's freshness deadline (negative once past).
  Gauge& secondsUntilDeadline() { return *secondsUntilDeadline_; }
  /// Entries in the nonce cache.
  Gauge& nonceCacheEntries() { return *nonceCacheEntries_; }

 private:
  static constexpr size_t kCodeCount = std::size(engine::kAllDenyCodes);
  // [0] allow, [1 + code] deny with that code, [1 + kCodeCount] deny with an unknown code
  std::array<Counter*, 2 + kCodeCount> decisions_{};
  Histogram* batchSize_ = nullptr;
  std::array<Histogram*, kStageCount> stageLatency_{};
  Counter* fallbackSha256_ = nullptr;
  Counter* fallbackEd25519_ = nullptr;
  Counter* fallbackEvaluate_ = nullptr;
  Gauge* queueDepth_ = nullptr;
  Gauge* bundleRevision_ = nullptr;
  Gauge* secondsUntilDeadline_ = nullptr;
  Gauge* nonceCacheEntries_ = nullptr;
};

/// `v` as the text format writes sample values and `le` bounds: the shortest decimal that reads
/// back as v, in Go's %g style ("0.0001", "1e-06", "1.5e+06"), or "+Inf", "-Inf", "NaN".
std::string formatMetricValue(double v);
/// Escapes a label value for the text format: backslash, double quote and line feed.
std::string escapeLabelValue(std::string_view v);
/// Escapes a HELP text: backslash and line feed.
std::string escapeHelp(std::string_view v);

}  // namespace govmesh::server
