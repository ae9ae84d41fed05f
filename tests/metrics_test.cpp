// Prometheus metrics: the rendered text is parsed line by line by a strict reader of the text
// exposition format 0.0.4 written here from the spec (not from our renderer), then its numbers are
// checked: counts add up, histogram buckets are cumulative and end at _count, escapes round-trip.
#include "server/metrics.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace govmesh;
using namespace govmesh::server;

namespace {

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> help;  // unescaped
  std::map<std::string, std::string> type;
  std::vector<Sample> samples;
};

bool isNameChar(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':')) return true;
  return !first && c >= '0' && c <= '9';
}

std::string readName(std::string_view line, size_t& pos, bool colon) {
  size_t start = pos;
  while (pos < line.size() && isNameChar(line[pos], pos == start, colon)) ++pos;
  if (pos == start) throw std::runtime_error("expected a name");
  return std::string(line.substr(start, pos - start));
}

double readValue(std::string_view text) {
  if (text == "+Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN") return NAN;
  std::string s(text);
  size_t used = 0;
  double v = std::stod(s, &used);
  if (used != s.size()) throw std::runtime_error("bad value: " + s);
  return v;
}

// The family a sample belongs to: its own name, or a histogram's name before _bucket/_sum/_count.
std::string familyOf(const Parsed& p, const std::string& name) {
  if (p.type.count(name)) return name;
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      std::string base = name.substr(0, name.size() - suffix.size());
      auto it = p.type.find(base);
      if (it != p.type.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  throw std::runtime_error("sample " + name + " has no # TYPE before it");
}

// Throws std::runtime_error naming the line on anything the format does not allow.
Parsed parse(const std::string& text) {
  if (!text.empty() && text.back() != '\n') throw std::runtime_error("text does not end with a line feed");
  Parsed p;
  std::istringstream in(text);
  std::string line;
  int lineNo = 0;
  std::string current;  // the family whose samples may follow (they must be contiguous)
  std::map<std::string, bool> closed;
  while (std::getline(in, line)) {
    ++lineNo;
    try {
      if (line.empty()) continue;
      if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
        size_t pos = 7;
        std::string name = readName(line, pos, true);
        if (pos >= line.size() || line[pos] != ' ') throw std::runtime_error("expected a space after the name");
        std::string rest = line.substr(pos + 1);
        if (line[2] == 'H') {
          if (p.help.count(name)) throw std::runtime_error("second HELP for " + name);
          std::string unescaped;
          for (size_t i = 0; i < rest.size(); ++i) {
            if (rest[i] != '\\') {
              unescaped.push_back(rest[i]);
              continue;
            }
            if (++i == rest.size()) throw std::runtime_error("dangling backslash in HELP");
            if (rest[i] == 'n') unescaped.push_back('\n');
            else if (rest[i] == '\\') unescaped.push_back('\\');
            else throw std::runtime_error("bad escape in HELP");
          }
          p.help[name] = unescaped;
        } else {
          if (p.type.count(name)) throw std::runtime_error("second TYPE for " + name);
          if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" && rest != "untyped")
            throw std::runtime_error("unknown type " + rest);
          if (closed.count(name)) throw std::runtime_error("TYPE after samples of " + name);
          p.type[name] = rest;
        }
        if (current != name) {
          if (!current.empty()) closed[current] = true;
          current = name;
        }
        continue;
      }
      if (line[0] == '#') continue;  // a plain comment
      Sample s;
      size_t pos = 0;
      s.name = readName(line, pos, true);
      if (pos < line.size() && line[pos] == '{') {
        ++pos;
        while (pos < line.size() && line[pos] != '}') {
          std::string key = readName(line, pos, false);
          if (line.compare(pos, 2, "=\"") != 0) throw std::runtime_error("expected =\" after label " + key);
          pos += 2;
          std::string value;
          while (true) {
            if (pos >= line.size()) throw std::runtime_error("unterminated label value");
            char c = line[pos++];
            if (c == '"') break;
            if (c == '\\') {
              if (pos >= line.size()) throw std::runtime_error("dangling backslash");
              char e = line[pos++];
              if (e == 'n') value.push_back('\n');
              else if (e == '\\') value.push_back('\\');
              else if (e == '"') value.push_back('"');
              else throw std::runtime_error("bad escape in label value");
            } else {
              value.push_back(c);
            }
          }
          for (const auto& [k, v] : s.labels)
            if (k == key) throw std::runtime_error("duplicate label " + key);
          s.labels.emplace_back(key, value);
          if (pos < line.size() && line[pos] == ',') ++pos;
        }
        if (pos >= line.size()) throw std::runtime_error("unterminated label set");
        ++pos;
      }
      if (pos >= line.size() || line[pos] != ' ') throw std::runtime_error("expected a space before the value");
      std::string rest = line.substr(pos + 1);
      size_t space = rest.find(' ');
      s.value = readValue(rest.substr(0, space));
      if (space != std::string::npos) std::stoll(rest.substr(space + 1));  // optional timestamp
      std::string fam = familyOf(p, s.name);
      if (fam != current) throw std::runtime_error("samples of " + fam + " are not contiguous");
      p.samples.push_back(std::move(s));
    } catch (const std::exception& e) {
      throw std::runtime_error("line " + std::to_string(lineNo) + " \"" + line + "\": " + e.what());
    }
  }
  return p;
}

std::optional<double> find(const Parsed& p, std::string_view name, const Labels& labels) {
  for (const Sample& s : p.samples)
    if (s.name == name && s.labels == labels) return s.value;
  return std::nullopt;
}

// Checks every histogram child: buckets ascend in le, counts are cumulative, +Inf == _count.
void checkHistograms(const Parsed& p) {
  for (const auto& [fam, type] : p.type) {
    if (type != "histogram") continue;
    std::map<Labels, std::vector<std::pair<double, double>>> buckets;  // labels without le
    for (const Sample& s : p.samples) {
      if (s.name != fam + "_bucket") continue;
      Labels rest;
      std::optional<double> le;
      for (const auto& [k, v] : s.labels) {
        if (k == "le") le = readValue(v);
        else rest.emplace_back(k, v);
      }
      REQUIRE(le);
      buckets[rest].emplace_back(*le, s.value);
    }
    for (const auto& [labels, bs] : buckets) {
      CAPTURE(fam);
      REQUIRE(!bs.empty());
      for (size_t i = 1; i < bs.size(); ++i) {
        CHECK(bs[i - 1].first < bs[i].first);
        CHECK(bs[i - 1].second <= bs[i].second);
      }
      CHECK(std::isinf(bs.back().first));
      auto count = find(p, fam + "_count", labels);
      REQUIRE(count);
      CHECK(*count == bs.back().second);
      CHECK(find(p, fam + "_sum", labels));
    }
  }
}

}  // namespace

TEST_CASE("metrics: the reader rejects what the format forbids") {
  CHECK_THROWS(parse("x 1"));                            // no final line feed
  CHECK_THROWS(parse("# TYPE x counter\nx{a=\"b} 1\n"));  // unterminated value
  CHECK_THROWS(parse("# TYPE x counter\nx{a=\"\\t\"} 1\n"));
  CHECK_THROWS(parse("y 1\n"));  // no TYPE
  CHECK_THROWS(parse("# TYPE x counter\nx one\n"));
  CHECK_NOTHROW(parse("# HELP x a\\\\b\n# TYPE x counter\nx{a=\"q\\\"\\n\"} 1 1700000000\n"));
}

TEST_CASE("metrics: counters, gauges and histograms render and parse") {
  MetricsRegistry r;
  Counter& c = r.counter("app_events_total", "Events.", {{"kind", "a"}});
  Counter& c2 = r.counter("app_events_total", "ignored: the first help stays", {{"kind", "b"}});
  CHECK(&r.counter("app_events_total", "", {{"kind", "a"}}) == &c);  // same child
  Gauge& g = r.gauge("app_temperature", "Degrees.");
  const double bounds[] = {0.1, 1, 10};
  Histogram& h = r.histogram("app_latency_seconds", "Latency.", bounds, {{"op", "get"}});
  c.inc();
  c.inc(4);
  c2.inc(2);
  g.set(-3.5);
  g.add(1);
  for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 50.0, 500.0}) h.observe(v);
  h.observe(NAN);  // ignored

  const std::string text = r.renderPrometheusText();
  CAPTURE(text);
  Parsed p;
  REQUIRE_NOTHROW(p = parse(text));
  CHECK(p.type["app_events_total"] == "counter");
  CHECK(p.type["app_temperature"] == "gauge");
  CHECK(p.type["app_latency_seconds"] == "histogram");
  CHECK(p.help["app_events_total"] == "Events.");
  CHECK(find(p, "app_events_total", {{"kind", "a"}}) == 5);
  CHECK(find(p, "app_events_total", {{"kind", "b"}}) == 2);
  CHECK(find(p, "app_temperature", {}) == -2.5);
  CHECK(find(p, "app_latency_seconds_bucket", {{"op", "get"}, {"le", "0.1"}}) == 2);  // le is inclusive
  CHECK(find(p, "app_latency_seconds_bucket", {{"op", "get"}, {"le", "1"}}) == 4);
  CHECK(find(p, "app_latency_seconds_bucket", {{"op", "get"}, {"le", "10"}}) == 5);
  CHECK(find(p, "app_latency_seconds_bucket", {{"op", "get"}, {"le", "+Inf"}}) == 7);
  CHECK(find(p, "app_latency_seconds_count", {{"op", "get"}}) == 7);
  CHECK(find(p, "app_latency_seconds_sum", {{"op", "get"}}) == doctest::Approx(556.65));
  checkHistograms(p);
}

TEST_CASE("metrics: label values and help texts are escaped") {
  MetricsRegistry r;
  const std::string nasty = "a \"quoted\" back\\slash\nnew line, {braces}=";
  r.counter("esc_total", "Help with \\ and\nnewline.", {{"v", nasty}}).inc();
  const std::string text = r.renderPrometheusText();
  CHECK(text.find("v=\"a \\\"quoted\\\" back\\\\slash\\nnew line, {braces}=\"") != std::string::npos);
  CHECK(text.find("# HELP esc_total Help with \\\\ and\\nnewline.\n") != std::string::npos);
  Parsed p = parse(text);
  CHECK(find(p, "esc_total", {{"v", nasty}}) == 1);
  CHECK(p.help["esc_total"] == "Help with \\ and\nnewline.");
  CHECK(escapeLabelValue("\\\"\n") == "\\\\\\\"\\n");
  CHECK(formatMetricValue(INFINITY) == "+Inf");
  CHECK(formatMetricValue(-INFINITY) == "-Inf");
  CHECK(formatMetricValue(NAN) == "NaN");
  CHECK(formatMetricValue(0.1) == "0.1");
  CHECK(formatMetricValue(42) == "42");
  CHECK(formatMetricValue(-2.5) == "-2.5");
  CHECK(formatMetricValue(1e-4) == "0.0001");
  CHECK(formatMetricValue(1e-6) == "1e-06");
  CHECK(formatMetricValue(2.5e-6) == "2.5e-06");
  CHECK(formatMetricValue(123456) == "123456");
  CHECK(formatMetricValue(1234567) == "1.234567e+06");
  CHECK(formatMetricValue(0) == "0");
}

TEST_CASE("metrics: registration refuses what would render an invalid or ambiguous text") {
  MetricsRegistry r;
  const double bounds[] = {1, 2};
  const double unsorted[] = {2, 1};
  CHECK_THROWS_AS(r.counter("bad name", ""), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("9lives", ""), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("__reserved", ""), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok_total", "", {{"bad-label", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok_total", "", {{"a", "x"}, {"a", "y"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h", "", bounds, {{"le", "1"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.histogram("h2", "", unsorted), std::invalid_argument);
  r.counter("ok_total", "", {{"a", "x"}});
  CHECK_THROWS_AS(r.gauge("ok_total", ""), std::invalid_argument);                   // other type
  CHECK_THROWS_AS(r.counter("ok_total", "", {{"b", "x"}}), std::invalid_argument);   // other labels
  r.histogram("lat", "", bounds);
  const double other[] = {1, 3};
  CHECK_THROWS_AS(r.histogram("lat", "", other, {}), std::invalid_argument);  // other bounds
  CHECK_THROWS_AS(r.counter("lat_count", ""), std::invalid_argument);          // collides with lat's series
  CHECK_NOTHROW(parse(r.renderPrometheusText()));
}

TEST_CASE("metrics: the service's metrics add up") {
  MetricsRegistry r;
  ServiceMetrics m(r);
  m.countDecision(true, engine::DenyCode::kNone, 10);
  m.countDecision(false, engine::DenyCode::kNone, 3);
  m.countDecision(false, engine::DenyCode::kBadSignature, 2);
  m.countDecision(false, engine::DenyCode::kReplayedNonce);
  m.countDecision(true, engine::DenyCode::kOverloaded);  // impossible allow: counted as a deny
  m.countDecision(false, static_cast<engine::DenyCode>(200));
  for (size_t n : {1, 3, 64, 100000}) m.observeBatchSize(n);
  m.observeStageNs(Stage::kVerify, 150'000);
  m.observeStage(Stage::kAdmit, 2e-6);
  m.queueDepth().set(17);
  m.bundleRevision().set(42);
  m.secondsUntilDeadline().set(-1.5);
  m.countEd25519Fallback();

  Parsed p = parse(r.renderPrometheusText());
  checkHistograms(p);
  double total = 0;
  for (const Sample& s : p.samples) {
    if (s.name != "govmesh_decisions_total") continue;
    total += s.value;
    REQUIRE(s.labels.size() == 2);
    if (s.labels[0].second == "allow") CHECK(s.labels[1].second == "NONE");  // no allow child with a fault code
  }
  CHECK(total == 18);
  CHECK(find(p, "govmesh_decisions_total", {{"result", "allow"}, {"code", "NONE"}}) == 10);
  CHECK(find(p, "govmesh_decisions_total", {{"result", "deny"}, {"code", "NONE"}}) == 3);
  CHECK(find(p, "govmesh_decisions_total", {{"result", "deny"}, {"code", "BAD_SIGNATURE"}}) == 2);
  CHECK(find(p, "govmesh_decisions_total", {{"result", "deny"}, {"code", "OVERLOADED"}}) == 1);
  CHECK(find(p, "govmesh_decisions_total", {{"result", "deny"}, {"code", "UNKNOWN"}}) == 1);
  for (engine::DenyCode code : engine::kAllDenyCodes)  // every code has a series, zero or not
    CHECK(find(p, "govmesh_decisions_total", {{"result", "deny"}, {"code", std::string(engine::denyCodeName(code))}}));
  CHECK(find(p, "govmesh_batch_size_count", {}) == 4);
  CHECK(find(p, "govmesh_batch_size_bucket", {{"le", "64"}}) == 3);
  CHECK(find(p, "govmesh_batch_size_bucket", {{"le", "+Inf"}}) == 4);  // 100000 is past the last bound
  CHECK(find(p, "govmesh_stage_latency_seconds_bucket", {{"stage", "verify"}, {"le", "0.00025"}}) == 1);
  CHECK(find(p, "govmesh_stage_latency_seconds_bucket", {{"stage", "verify"}, {"le", "0.0001"}}) == 0);
  CHECK(find(p, "govmesh_stage_latency_seconds_count", {{"stage", "admit"}}) == 1);
  CHECK(find(p, "govmesh_stage_latency_seconds_count", {{"stage", "reply"}}) == 0);
  CHECK(find(p, "govmesh_queue_depth", {}) == 17);
  CHECK(find(p, "govmesh_bundle_revision", {}) == 42);
  CHECK(find(p, "govmesh_bundle_seconds_until_deadline", {}) == -1.5);
  CHECK(find(p, "govmesh_backend_fallbacks_total", {{"kind", "ed25519"}}) == 1);
}

TEST_CASE("metrics: concurrent updates and scrapes lose nothing") {
  MetricsRegistry r;
  Counter& c = r.counter("hits_total", "Hits.");
  const double bounds[] = {1, 10};
  Histogram& h = r.histogram("size", "Sizes.", bounds);
  constexpr int kPerThread = 100000;
  auto work = [&] {
    for (int i = 0; i < kPerThread; ++i) {
      c.inc();
      h.observe(i % 20);
    }
  };
  std::thread t1(work), t2(work);
  for (int i = 0; i < 20; ++i) {  // scrapes while the writers run must parse and stay consistent
    Parsed p = parse(r.renderPrometheusText());
    checkHistograms(p);
  }
  t1.join();
  t2.join();
  Parsed p = parse(r.renderPrometheusText());
  CHECK(find(p, "hits_total", {}) == 2 * kPerThread);
  CHECK(find(p, "size_count", {}) == 2 * kPerThread);
  CHECK(find(p, "size_bucket", {{"le", "1"}}) == 2 * kPerThread / 10);  // 0 and 1 of every 20
  CHECK(find(p, "size_sum", {}) == 2.0 * kPerThread / 20 * 190);
}
