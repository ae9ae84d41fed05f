// Prometheus registry and text rendering; the format and the thread-safety rules are at the top
// of metrics.h.
#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace govmesh::server {
namespace {

bool validName(std::string_view s, bool allowColon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allowColon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

const char* typeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

// Writes `name{labels[,extra]}` (no braces when there are no labels at all).
void appendSeries(std::string& out, std::string_view name, std::string_view suffix, const Labels& labels,
                  const std::pair<std::string_view, std::string>* extra = nullptr) {
  out.append(name).append(suffix);
  if (labels.empty() && !extra) return;
  out.push_back('{');
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out.push_back(',');
    first = false;
    out.append(k).append("=\"").append(escapeLabelValue(v)).push_back('"');
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (extra) one(extra->first, extra->second);
  out.push_back('}');
}

}  // namespace

std::string formatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // As Go's strconv.FormatFloat(v, 'g', -1, 64), which the reference client library uses, so
  // that our `le` labels read like every other exporter's ("0.0001", "1e-06", "65536"): the
  // shortest digits that read back as v, in exponent form when the exponent is < -4 or >= 6.
  char buf[40];
  auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string_view s(buf, static_cast<size_t>(sci.ptr - buf));
  // to_chars writes "d[.ddd]e±XX" here; from_chars takes no '+', so skip the sign by hand.
  const size_t e = s.find('e');
  int exp = 0;
  std::from_chars(s.data() + e + 2, s.data() + s.size(), exp);
  if (s[e + 1] == '-') exp = -exp;
  if (exp < -4 || exp >= 6) return std::string(s);
  auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, fixed.ptr);
}

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string escapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

// ---- Histogram -----------------------------------------------------------------------------

Histogram::Histogram(std::span<const double> upperBounds) : bounds_(upperBounds.begin(), upperBounds.end()) {
  if (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) throw std::invalid_argument("histogram bucket bound is not finite");
    if (i > 0 && !(bounds_[i - 1] < bounds_[i])) throw std::invalid_argument("histogram bucket bounds are not strictly increasing");
  }
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // lower_bound: the first bound >= v, so v == bound lands in that bound's bucket (le is <=).
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = acc;
  }
  s.count = acc;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// ---- MetricsRegistry -----------------------------------------------------------------------

struct MetricsRegistry::Family {
  struct Child {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::string name, help;
  MetricType type;
  std::vector<std::string> labelNames;
  std::vector<double> bounds;  // histograms only: every child has these
  std::vector<Child> children;

  Child* find(const Labels& labels) {
    for (Child& c : children)
      if (c.labels == labels) return &c;
    return nullptr;
  }
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family& MetricsRegistry::family(std::string_view name, std::string_view help, MetricType type,
                                                 const Labels& labels) {
  if (!validName(name, true) || name.starts_with("__")) throw std::invalid_argument("bad metric name: " + std::string(name));
  std::vector<std::string> labelNames;
  for (const auto& [k, v] : labels) {
    if (!validName(k, false) || k.starts_with("__")) throw std::invalid_argument("bad label name: " + k);
    if (type == MetricType::kHistogram && k == "le") throw std::invalid_argument("label \"le\" is reserved on histograms");
    if (std::find(labelNames.begin(), labelNames.end(), k) != labelNames.end()) throw std::invalid_argument("duplicate label: " + k);
    labelNames.push_back(k);
  }
  for (Family& f : families_) {
    if (f.name != name) continue;
    if (f.type != type) throw std::invalid_argument("metric " + f.name + " is already a " + typeName(f.type));
    if (f.labelNames != labelNames) throw std::invalid_argument("metric " + f.name + " has other label names");
    return f;
  }
  // A histogram's series names (_bucket, _sum, _count) must not collide with another family's,
  // or the scraper could not tell their samples apart.
  for (const Family& f : families_) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if ((f.type == MetricType::kHistogram && name == f.name + std::string(suffix)) ||
          (type == MetricType::kHistogram && f.name == std::string(name) + std::string(suffix)))
        throw std::invalid_argument("metric " + std::string(name) + " collides with the series of " + f.name);
    }
  }
  Family& f = families_.emplace_back();
  f.name = name;
  f.help = help;
  f.type = type;
  f.labelNames = std::move(labelNames);
  return f;
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, MetricType::kCounter, labels);
  if (auto* c = f.find(labels)) return *c->counter;
  auto& c = f.children.emplace_back();
  c.labels = labels;
  c.counter = std::make_unique<Counter>();
  return *c.counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, MetricType::kGauge, labels);
  if (auto* c = f.find(labels)) return *c->gauge;
  auto& c = f.children.emplace_back();
  c.labels = labels;
  c.gauge = std::make_unique<Gauge>();
  return *c.gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help, std::span<const double> upperBounds,
                                      const Labels& labels) {
  std::lock_guard lock(mu_);
  auto h = std::make_unique<Histogram>(upperBounds);  // validates the bounds before anything changes
  Family& f = family(name, help, MetricType::kHistogram, labels);
  if (f.children.empty()) f.bounds = h->upperBounds();
  if (f.bounds != h->upperBounds()) throw std::invalid_argument("metric " + f.name + " has other bucket bounds");
  if (auto* c = f.find(labels)) return *c->histogram;
  auto& c = f.children.emplace_back();
  c.labels = labels;
  c.histogram = std::move(h);
  return *c.histogram;
}

std::string MetricsRegistry::renderPrometheusText() const {
  std::lock_guard lock(mu_);  // guards the family list only; values are read atomically
  std::string out;
  out.reserve(4096);
  for (const Family& f : families_) {
    out.append("# HELP ").append(f.name).append(" ").append(escapeHelp(f.help)).append("\n");
    out.append("# TYPE ").append(f.name).append(" ").append(typeName(f.type)).append("\n");
    for (const Family::Child& c : f.children) {
      switch (f.type) {
        case MetricType::kCounter:
          appendSeries(out, f.name, "", c.labels);
          out.append(" ").append(std::to_string(c.counter->value())).append("\n");
          break;
        case MetricType::kGauge:
          appendSeries(out, f.name, "", c.labels);
          out.append(" ").append(formatMetricValue(c.gauge->value())).append("\n");
          break;
        case MetricType::kHistogram: {
          const Histogram::Snapshot s = c.histogram->snapshot();
          for (size_t i = 0; i < s.cumulative.size(); ++i) {
            const double le = i < f.bounds.size() ? f.bounds[i] : INFINITY;
            const std::pair<std::string_view, std::string> extra{"le", formatMetricValue(le)};
            appendSeries(out, f.name, "_bucket", c.labels, &extra);
            out.append(" ").append(std::to_string(s.cumulative[i])).append("\n");
          }
          appendSeries(out, f.name, "_sum", c.labels);
          out.append(" ").append(formatMetricValue(s.sum)).append("\n");
          appendSeries(out, f.name, "_count", c.labels);
          out.append(" ").append(std::to_string(s.count)).append("\n");
          break;
        }
      }
    }
  }
  return out;
}

// ---- ServiceMetrics ------------------------------------------------------------------------

std::string_view stageName(Stage s) {
  switch (s) {
    case Stage::kAdmit: return "admit";
    case Stage::kVerify: return "verify";
    case Stage::kFeaturize: return "featurize";
    case Stage::kEvaluate: return "evaluate";
    case Stage::kRecord: return "record";
    case Stage::kReply: return "reply";
  }
  return "unknown";
}

std::span<const double> batchSizeBuckets() {
  static constexpr double kBounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
  return kBounds;
}

std::span<const double> latencyBuckets() {
  static constexpr double kBounds[] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                       2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1};
  return kBounds;
}

ServiceMetrics::ServiceMetrics(MetricsRegistry& r) {
  constexpr std::string_view kDecisionsHelp =
      "Decisions answered, by result and deny code (code NONE on a deny: denied by the policies).";
  decisions_[0] = &r.counter("govmesh_decisions_total", kDecisionsHelp, {{"result", "allow"}, {"code", "NONE"}});
  for (engine::DenyCode code : engine::kAllDenyCodes)
    decisions_[1 + static_cast<size_t>(code)] =
        &r.counter("govmesh_decisions_total", kDecisionsHelp, {{"result", "deny"}, {"code", std::string(engine::denyCodeName(code))}});
  decisions_[1 + kCodeCount] = &r.counter("govmesh_decisions_total", kDecisionsHelp, {{"result", "deny"}, {"code", "UNKNOWN"}});
  batchSize_ = &r.histogram("govmesh_batch_size", "Requests per micro-batch.", batchSizeBuckets());
  for (size_t s = 0; s < kStageCount; ++s)
    stageLatency_[s] = &r.histogram("govmesh_stage_latency_seconds", "Wall time one micro-batch spent in a pipeline stage.",
                                    latencyBuckets(), {{"stage", std::string(stageName(static_cast<Stage>(s)))}});
  constexpr std::string_view kFallbackHelp = "Backend faults answered by falling back to the CPU reference code.";
  fallbackSha256_ = &r.counter("govmesh_backend_fallbacks_total", kFallbackHelp, {{"kind", "sha256"}});
  fallbackEd25519_ = &r.counter("govmesh_backend_fallbacks_total", kFallbackHelp, {{"kind", "ed25519"}});
  fallbackEvaluate_ = &r.counter("govmesh_backend_fallbacks_total", kFallbackHelp, {{"kind", "evaluate"}});
  queueDepth_ = &r.gauge("govmesh_queue_depth", "Requests waiting for a worker.");
  bundleRevision_ = &r.gauge("govmesh_bundle_revision", "Revision of the active policy bundle (0: none).");
  secondsUntilDeadline_ =
      &r.gauge("govmesh_bundle_seconds_until_deadline", "Seconds until the active bundle's freshness deadline (negative: stale).");
  nonceCacheEntries_ = &r.gauge("govmesh_nonce_cache_entries", "(keyId, nonce) pairs remembered against replay.");
}

}  // namespace govmesh::server
