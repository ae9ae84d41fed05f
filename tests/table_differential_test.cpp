// Differential test of the decision tables (compiler/decision_table.h) against the reference
// evaluator (compiler/evaluator.h): seeded random policy sets from the Cedar test generator
// (tests/support/cedar_gen.h), small and large (1 to 2,000 policies), over deep multi-parent
// entity hierarchies, with and without schemas, with templates, and with batches of every size
// around the 64-request and 64-policy word boundaries. The table must give exactly the
// reference's decision, reasons and erroring policies for every request.
//
// Environment (for soak runs; CI uses the defaults):
//   GOVMESH_TABLE_DIFF_SEED   master seed (default 20261126)
//   GOVMESH_TABLE_DIFF_SCALE  multiplies the number of generated tests (default 1)
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/table_stats.h"
#include "compiler/decision_table.h"
#include "compiler/parser.h"
#include "tests/support/cedar_gen.h"
#include "tests/support/table_diff.h"

namespace {

using namespace govmesh;
using cedar::Decision;
using cedar::Request;
using cedar::Response;
using gen::GenOptions;
using tablediff::Answer;
using tablediff::canonical;
using tablediff::describe;

uint64_t envU64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

double envDouble(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtod(v, nullptr) : fallback;
}

uint64_t masterSeed() { return envU64("GOVMESH_TABLE_DIFF_SEED", 20261126); }

int scaled(int tests) {
  double s = envDouble("GOVMESH_TABLE_DIFF_SCALE", 1.0);
  return std::max(1, static_cast<int>(tests * s));
}

/// A family of generated tests.
struct Profile {
  const char* name;
  GenOptions options;
  int tests;
  double templateFraction;  // > 0: turn that fraction of eligible policies into template links
};

GenOptions options(uint64_t seedSalt, int minP, int maxP, int minE, int maxE, int depth, int requests) {
  GenOptions o;
  o.seed = masterSeed() * 1000003 + seedSalt;
  o.minPolicies = minP;
  o.maxPolicies = maxP;
  o.minEntities = minE;
  o.maxEntities = maxE;
  o.hierarchyDepth = depth;
  o.requestsPerTest = requests;
  return o;
}

/// `o` with the given fraction of permits and chance of extra context comparisons (the
/// shape that becomes context features; the generator's defaults rarely make it).
GenOptions shape(GenOptions o, double permitFraction, double contextCompareBias) {
  o.permitFraction = permitFraction;
  o.contextCompareBias = contextCompareBias;
  return o;
}

/// Counts and the first mismatches of a run.
struct Tally {
  size_t tests = 0, requests = 0, allows = 0, withErrors = 0, skippedRequests = 0, failedLoads = 0;
  size_t mismatches = 0, messageMismatches = 0, links = 0, maxPolicies = 0, policies = 0;
  size_t contextFeatures = 0, derivedFeatures = 0, ambiguousRequests = 0;  // coverage of the table's paths
  std::vector<std::string> reports;  // the first few mismatches, in full
  std::string firstLoadFailure;
};

std::string clip(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n) + "\n...(clipped)"; }

/// Everything needed to reproduce a mismatch: where the test comes from, the request, both
/// answers, and (for small tests) the policies and entities themselves.
std::string mismatchReport(const Profile& p, uint64_t index, const gen::GeneratedTest& g, const tablediff::LoadedTest& t,
                           size_t request, const Answer& ref, const Answer& tab, const std::string& what) {
  std::ostringstream out;
  out << what << ": profile " << p.name << ", seed " << p.options.seed << " (master " << masterSeed() << "), test index "
      << index << ", " << t.policies.size() << " policies, " << t.store.size() << " entities"
      << (g.schemaText.empty() ? "" : ", with schema") << (t.policySet.links.empty() ? "" : ", templatized") << "\n"
      << "request: " << t.requestJson[request] << "\n"
      << "reference: " << describe(ref) << "\n"
      << "table:     " << describe(tab) << "\n";
  if (t.policies.size() <= 40) {
    out << "policies:\n" << clip(g.policiesText, 20000) << "\n";
    out << "entities:\n" << clip(g.entitiesJson, 20000) << "\n";
    if (!g.schemaText.empty()) out << "schema:\n" << clip(g.schemaText, 8000) << "\n";
  }
  return out.str();
}

void record(Tally& tally, std::string report) {
  ++tally.mismatches;
  if (tally.reports.size() < 8) tally.reports.push_back(std::move(report));
}

/// Generates, compiles and checks one test: every request, table against reference.
void checkOne(const Profile& p, uint64_t index, Tally& tally) {
  gen::GeneratedTest g = gen::generateTest(p.options, index);
  std::unique_ptr<tablediff::LoadedTest> t;
  try {
    t = tablediff::loadGenerated(g);
    if (p.templateFraction > 0) tally.links += tablediff::templatize(*t, p.options.seed ^ (index * 7919), p.templateFraction);
  } catch (const std::exception& e) {
    ++tally.failedLoads;
    if (tally.firstLoadFailure.empty())
      tally.firstLoadFailure = std::string(p.name) + " test " + std::to_string(index) + ": " + e.what();
    return;
  }
  ++tally.tests;
  tally.skippedRequests += t->skippedRequests;
  tally.policies += t->policies.size();
  tally.maxPolicies = std::max(tally.maxPolicies, t->policies.size());
  table::DecisionTable table = table::compileTable(t->policies, t->store);
  for (const table::Feature& f : table.features) {
    tally.contextFeatures += f.kind == table::FeatureKind::Context;
    tally.derivedFeatures += f.kind == table::FeatureKind::Derived;
  }
  std::vector<uint32_t> codes;
  table::featurize(table, t->requests, codes);
  for (size_t i = 0; i < t->requests.size(); ++i)
    tally.ambiguousRequests += bench::ambiguousPolicies(table, codes, t->requests.size(), i) > 0;
  for (size_t i = 0; i < t->requests.size(); ++i) {
    const Request& r = t->requests[i];
    Response refR = cedar::authorize(t->policies, r, t->store);
    Response tabR = table::authorizeWithTable(table, r);
    Answer ref = canonical(refR), tab = canonical(tabR);
    ++tally.requests;
    tally.allows += ref.decision == Decision::Allow;
    tally.withErrors += !ref.errors.empty();
    if (!(ref == tab)) {
      record(tally, mismatchReport(p, index, g, *t, i, ref, tab, "MISMATCH table vs reference"));
    } else if (!tablediff::sameErrorMessages(refR, tabR)) {
      ++tally.messageMismatches;
    }
  }
}

std::string summary(const Profile& p, const Tally& t, double seconds) {
  char buf[768];
  auto pct = [&](size_t x) { return t.requests ? 100.0 * double(x) / double(t.requests) : 0.0; };
  auto avg = [&](size_t x) { return t.tests ? double(x) / double(t.tests) : 0.0; };
  std::snprintf(buf, sizeof buf,
                "%-14s %5zu tests %7zu requests (%.0f%% allow, %.0f%% with errors, %.0f%% with ambiguous policies), "
                "policies avg %.0f max %zu, features/test: %.1f context %.1f derived, %zu links, %zu requests skipped, "
                "%zu tests not loaded, %.2f s",
                p.name, t.tests, t.requests, pct(t.allows), pct(t.withErrors), pct(t.ambiguousRequests), avg(t.policies),
                t.maxPolicies, avg(t.contextFeatures), avg(t.derivedFeatures), t.links, t.skippedRequests, t.failedLoads, seconds);
  return buf;
}

/// Runs a profile and checks its tally.
size_t runProfile(const Profile& p) {
  auto start = std::chrono::steady_clock::now();
  Tally tally;
  for (int i = 0; i < p.tests; ++i) checkOne(p, static_cast<uint64_t>(i), tally);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(summary(p, tally, seconds));
  for (const std::string& r : tally.reports) FAIL_CHECK(r);
  CHECK_MESSAGE(tally.mismatches == 0, tally.mismatches << " mismatches in profile " << p.name);
  CHECK_MESSAGE(tally.messageMismatches == 0, tally.messageMismatches << " responses with other error messages in " << p.name);
  // The generator writes valid Cedar: a test that does not load is a generator or front-end bug.
  CHECK_MESSAGE(tally.failedLoads == 0, tally.firstLoadFailure);
  // A few requests may be refused (e.g. a context the schema rejects), but not many.
  CHECK(tally.skippedRequests * 50 <= tally.requests + tally.skippedRequests);
  return tally.requests;
}

size_t gTotalRequests = 0;
int gContributors = 0;  // test cases that added to gTotalRequests (all of them in a full run)
constexpr int kContributors = 7;

}  // namespace

TEST_CASE("table differential: small policy sets over deep hierarchies") {
  ++gContributors;
  gTotalRequests += runProfile({"small-depth6", options(1, 1, 8, 8, 40, 6, 16), scaled(2700), 0});
  gTotalRequests += runProfile({"small-depth8", shape(options(2, 1, 30, 20, 90, 8, 16), 0.7, 0.5), scaled(1400), 0});
}

TEST_CASE("table differential: medium and large policy sets (up to 2,000 policies)") {
  ++gContributors;
  gTotalRequests += runProfile({"medium", shape(options(3, 30, 300, 60, 300, 7, 48), 0.8, 0.5), scaled(220), 0});
  // Mostly permits, or some forbid matches nearly every request and nothing is allowed.
  gTotalRequests += runProfile({"large", shape(options(4, 500, 2000, 300, 1200, 8, 400), 0.995, 0.6), scaled(8), 0});
  gTotalRequests += runProfile({"large-forbids", shape(options(7, 500, 2000, 300, 1200, 8, 400), 0.7, 0.3), scaled(2), 0});
}

TEST_CASE("table differential: policy counts around the 64-bit word boundaries") {
  ++gContributors;
  for (int n : {63, 64, 65, 127, 128, 129, 191, 192, 193}) {
    std::string name = "words-" + std::to_string(n);
    Profile p{"", shape(options(100 + n, n, n, 30, 120, 6, 64), 0.9, 0.5), scaled(3), 0};
    p.name = name.c_str();
    gTotalRequests += runProfile(p);
  }
}

TEST_CASE("table differential: template-linked policies from generated tests") {
  ++gContributors;
  gTotalRequests += runProfile({"templates", shape(options(5, 1, 40, 10, 80, 7, 16), 0.7, 0.3), scaled(900), 0.5});
  gTotalRequests += runProfile({"templates-big", shape(options(6, 100, 600, 60, 300, 7, 48), 0.98, 0.5), scaled(20), 0.3});
}

TEST_CASE("table differential: handwritten templates over a deep multi-parent hierarchy") {
  ++gContributors;
  // Groups g1 <- g2 <- ... <- g6 (g3 and g6 also under gX, a second parent), users below g6 and g3;
  // folders f1 <- ... <- f6, documents below them.
  std::string entities = R"([
    {"uid":{"type":"Group","id":"gX"},"attrs":{},"parents":[]},
    {"uid":{"type":"Group","id":"g1"},"attrs":{},"parents":[]},
    {"uid":{"type":"Group","id":"g2"},"attrs":{},"parents":[{"type":"Group","id":"g1"}]},
    {"uid":{"type":"Group","id":"g3"},"attrs":{},"parents":[{"type":"Group","id":"g2"},{"type":"Group","id":"gX"}]},
    {"uid":{"type":"Group","id":"g4"},"attrs":{},"parents":[{"type":"Group","id":"g3"}]},
    {"uid":{"type":"Group","id":"g5"},"attrs":{},"parents":[{"type":"Group","id":"g4"}]},
    {"uid":{"type":"Group","id":"g6"},"attrs":{},"parents":[{"type":"Group","id":"g5"},{"type":"Group","id":"gX"}]},
    {"uid":{"type":"User","id":"alice"},"attrs":{"clearance":5},"parents":[{"type":"Group","id":"g6"}]},
    {"uid":{"type":"User","id":"bob"},"attrs":{"clearance":2},"parents":[{"type":"Group","id":"g3"},{"type":"Group","id":"g6"}]},
    {"uid":{"type":"User","id":"carol"},"attrs":{},"parents":[]},
    {"uid":{"type":"Folder","id":"f1"},"attrs":{},"parents":[]},
    {"uid":{"type":"Folder","id":"f2"},"attrs":{},"parents":[{"type":"Folder","id":"f1"}]},
    {"uid":{"type":"Folder","id":"f3"},"attrs":{},"parents":[{"type":"Folder","id":"f2"}]},
    {"uid":{"type":"Folder","id":"f4"},"attrs":{},"parents":[{"type":"Folder","id":"f3"}]},
    {"uid":{"type":"Folder","id":"f5"},"attrs":{},"parents":[{"type":"Folder","id":"f4"}]},
    {"uid":{"type":"Folder","id":"f6"},"attrs":{},"parents":[{"type":"Folder","id":"f5"}]},
    {"uid":{"type":"Doc","id":"d1"},"attrs":{"owner":{"__entity":{"type":"User","id":"alice"}}},"parents":[{"type":"Folder","id":"f6"}]},
    {"uid":{"type":"Doc","id":"d2"},"attrs":{"owner":{"__entity":{"type":"User","id":"bob"}}},"parents":[{"type":"Folder","id":"f3"}]},
    {"uid":{"type":"Doc","id":"d3"},"attrs":{},"parents":[]},
    {"uid":{"type":"Action","id":"read"},"attrs":{},"parents":[{"type":"Action","id":"any"}]},
    {"uid":{"type":"Action","id":"edit"},"attrs":{},"parents":[{"type":"Action","id":"any"}]},
    {"uid":{"type":"Action","id":"any"},"attrs":{},"parents":[]}
  ])";
  std::string policies = R"(
    permit(principal == ?principal, action == Action::"read", resource in ?resource) when { context.level >= 2 };
    forbid(principal in ?principal, action, resource) unless { principal.clearance > 3 };
    permit(principal is User in ?principal, action in [Action::"read", Action::"edit"], resource)
      when { resource.owner == principal };
    permit(principal, action in Action::"any", resource is Doc in ?resource) when { context.level == 7 };
    permit(principal in Group::"g1", action == Action::"edit", resource in Folder::"f2");
  )";
  cedar::PolicySet ps = cedar::parsePolicies(policies, "templates.cedar");
  REQUIRE(ps.templates.size() == 4);
  REQUIRE(ps.policies.size() == 1);
  auto uid = [](const char* type, const char* id) { return cedar::EntityUid{type, id}; };
  auto link = [&](const char* id, int tmpl, std::optional<cedar::EntityUid> p, std::optional<cedar::EntityUid> r) {
    ps.links.push_back({id, ps.templates[static_cast<size_t>(tmpl)].id, p, r});
  };
  link("alice-reads-f3", 0, uid("User", "alice"), uid("Folder", "f3"));
  link("bob-reads-absent", 0, uid("User", "bob"), uid("Folder", "absent"));
  link("carol-reads-d3", 0, uid("User", "carol"), uid("Doc", "d3"));
  link("forbid-g4", 1, uid("Group", "g4"), std::nullopt);
  link("forbid-gX", 1, uid("Group", "gX"), std::nullopt);
  link("owners-g1", 2, uid("Group", "g1"), std::nullopt);
  link("owners-alice", 2, uid("User", "alice"), std::nullopt);
  link("owners-absent", 2, uid("Group", "nobody"), std::nullopt);
  link("level7-f1", 3, std::nullopt, uid("Folder", "f1"));
  link("level7-d2", 3, std::nullopt, uid("Doc", "d2"));
  std::vector<cedar::Policy> linked = ps.policies;
  REQUIRE_FALSE(ps.linkAll(linked).has_value());
  REQUIRE(linked.size() == 11);

  cedar::EntityStore store = cedar::parseEntitiesJson(entities, "templates.entities.json", nullptr);
  table::DecisionTable t = table::compileTable(linked, store);
  std::vector<cedar::EntityUid> principals = {uid("User", "alice"), uid("User", "bob"),   uid("User", "carol"),
                                              uid("User", "zed"),   uid("Group", "g4"),   uid("Group", "gX")};
  std::vector<cedar::EntityUid> actions = {uid("Action", "read"), uid("Action", "edit"), uid("Action", "any"), uid("Action", "none")};
  std::vector<cedar::EntityUid> resources = {uid("Doc", "d1"),    uid("Doc", "d2"),       uid("Doc", "d3"),
                                             uid("Folder", "f3"), uid("Folder", "absent"), uid("Doc", "zz")};
  std::vector<cedar::Value> contexts = {cedar::Value::record({}), cedar::Value::record({{"level", cedar::Value::integer(2)}}),
                                        cedar::Value::record({{"level", cedar::Value::integer(7)}}),
                                        cedar::Value::record({{"level", cedar::Value::string("high")}})};
  std::vector<Request> requests;
  for (auto& p : principals)
    for (auto& a : actions)
      for (auto& r : resources)
        for (auto& c : contexts) requests.push_back({p, a, r, c});
  std::set<std::string> seenIds;
  size_t mismatches = 0;
  for (const Request& r : requests) {
    Answer ref = canonical(cedar::authorize(linked, r, store));
    Answer tab = canonical(table::authorizeWithTable(t, r));
    for (auto& id : ref.reasons) seenIds.insert(id);
    for (auto& id : ref.errors) seenIds.insert(id);
    if (!(ref == tab) && ++mismatches <= 5)
      FAIL_CHECK("request " << cedar::toString(r.principal) << " " << cedar::toString(r.action) << " " << cedar::toString(r.resource)
                            << " " << cedar::toString(r.context) << "\nreference: " << describe(ref) << "\ntable:     " << describe(tab));
  }
  CHECK(mismatches == 0);
  // Links answer under their own ids, and every link but the one to an absent group decides or
  // errors somewhere (the absent folder matches itself: `resource in R` holds for R itself).
  for (const char* id : {"alice-reads-f3", "bob-reads-absent", "carol-reads-d3", "forbid-g4", "forbid-gX", "owners-g1", "owners-alice", "level7-f1",
                         "level7-d2", "policy4"})
    CHECK_MESSAGE(seenIds.count(id), id);
  CHECK_FALSE(seenIds.count("owners-absent"));  // no request's principal is in Group::"nobody"
  for (const cedar::Policy& tmpl : ps.templates) CHECK_FALSE(seenIds.count(tmpl.id));
  gTotalRequests += requests.size();

  // The same answers through one whole batch.
  std::vector<uint32_t> codes;
  std::vector<Response> out;
  table::featurize(t, requests, codes);
  table::evaluateBatch(t, requests, codes, out);
  REQUIRE(out.size() == requests.size());
  for (size_t i = 0; i < requests.size(); ++i) CHECK(canonical(out[i]) == canonical(cedar::authorize(linked, requests[i], store)));
}

TEST_CASE("table differential: look-alike atoms, escapes and sentinel-like uids") {
  ++gContributors;
  // Atoms that differ only in escapes, quoting or nesting share no row or cache entry (the
  // compiler keys atoms and values by their text), and uids that look like the compiler's
  // representatives of unknown entities behave as what they are.
  std::string policies = R"(
    permit(principal, action, resource) when { context.s like "a*" };
    permit(principal, action, resource) when { context.s like "a\*" };
    permit(principal, action, resource) when { principal.name like "a*" };
    permit(principal, action, resource) when { principal.name like "a\*" };
    permit(principal, action, resource) when { principal["a.b"] == 1 };
    permit(principal, action, resource) when { principal.a.b == 1 };
    permit(principal, action, resource) when { context["a.b"] == 1 };
    permit(principal, action, resource) when { context.a.b == 1 };
    permit(principal, action, resource) when { context has "a b" };
    permit(principal, action, resource) when { context has a };
    permit(principal, action, resource) when { context.s == "a\"b" };
    permit(principal, action, resource) when { context.s == "a\\\"b" };
    permit(principal == User::"\u{1}govmesh-unknown", action, resource);
    permit(principal, action, resource) when { principal == User::"\u{1}govmesh-unknown\u{1}" };
    permit(principal is A::B, action, resource);
    permit(principal, action, resource) when { principal is A };
    permit(principal, action, resource) when { context.e == User::"a\"b" };
    permit(principal, action, resource) when { context.e == User::"a" };
    permit(principal, action, resource) when { context.n == -9223372036854775808 };
    permit(principal, action, resource) when { context.n == 9223372036854775807 };
    permit(principal, action, resource) when { context.s == "\u{2603}" };
    permit(principal, action, resource) when { context.s like "\u{2603}*" };
    permit(principal, action, resource) when { context.s == "" };
    permit(principal, action, resource) when { context.s != "" };
    permit(principal, action, resource) when { context.s like "" };
    permit(principal, action, resource) when { context.s == "\u{1}govmesh-other" };
    permit(principal, action, resource) when { context.s != "\u{1}govmesh-other" };
    permit(principal, action, resource) when { context.e.name == "a*" };
    permit(principal, action, resource) when { resource.name == principal.name };
    forbid(principal, action, resource) when { context.f == true } unless { context.g == false };
  )";
  std::string entities = R"([
    {"uid":{"type":"User","id":"a"},"attrs":{"name":"a*","a.b":1,"a":{"b":2}},"parents":[]},
    {"uid":{"type":"User","id":"b"},"attrs":{"name":"ab","a":{"b":1}},"parents":[]},
    {"uid":{"type":"User","id":"\u0001govmesh-unknown"},"attrs":{"name":"x"},"parents":[{"type":"User","id":"a"}]},
    {"uid":{"type":"A::B","id":"x"},"attrs":{},"parents":[]}
  ])";
  cedar::PolicySet ps = cedar::parsePolicies(policies, "lookalike.cedar");
  std::vector<cedar::Policy> linked = ps.policies;
  REQUIRE_FALSE(ps.linkAll(linked).has_value());
  cedar::EntityStore store = cedar::parseEntitiesJson(entities, "lookalike.entities.json", nullptr);
  table::DecisionTable t = table::compileTable(linked, store);
  std::vector<cedar::EntityUid> principals = {{"User", "a"},
                                              {"User", "b"},
                                              {"User", "\x01govmesh-unknown"},
                                              {"User", "\x01govmesh-unknown\x01"},
                                              {"User", "\x01govmesh-unknown\x01\x01"},
                                              {"User", "zz"},
                                              {"A::B", "x"},
                                              {"A", "y"},
                                              {"\x01govmesh-unknown-type", "\x01govmesh-unknown"}};
  std::vector<std::string> contexts = {
      R"({"s":"a*"})",      R"({"s":"ab"})",          R"({"s":"a\"b"})",  R"({"s":"a\\\"b"})",
      R"({"a.b":1})",       R"({"a":{"b":1}})",       R"({"a b":1})",     R"({"a":1})",
      R"({"e":{"__entity":{"type":"User","id":"a\"b"}}})",                R"({"e":{"__entity":{"type":"User","id":"a"}}})",
      R"({"e":{"__entity":{"type":"User","id":"zz"}}})",                  R"({"n":-9223372036854775808})",
      R"({"n":9223372036854775807})",                 R"({"s":"\u2603"})", R"({"s":"\u2603x"})",
      R"({"s":""})",        R"({"s":"\u0001govmesh-other"})",             R"({"f":true,"g":false})",
      R"({"f":true})",      R"({})",                  R"({"s":5})",       R"({"s":["a*"]})"};
  size_t checked = 0, mismatches = 0;
  std::set<std::string> seen;  // policies that decide or error somewhere
  for (const auto& p : principals)
    for (const std::string& c : contexts)
      for (const cedar::EntityUid& r : {cedar::EntityUid{"User", "a"}, cedar::EntityUid{"Doc", "d"}}) {
        Request req{p, {"Action", "go"}, r, cedar::contextFromJson(cedar::parseJsonText(c, "ctx"), nullptr, {"Action", "go"}, "ctx")};
        Answer ref = canonical(cedar::authorize(linked, req, store));
        Answer tab = canonical(table::authorizeWithTable(t, req));
        seen.insert(ref.reasons.begin(), ref.reasons.end());
        seen.insert(ref.errors.begin(), ref.errors.end());
        ++checked;
        if (!(ref == tab) && ++mismatches <= 5)
          FAIL_CHECK("principal " << cedar::toString(p) << ", resource " << cedar::toString(r) << ", context " << c
                                  << "\nreference: " << describe(ref) << "\ntable:     " << describe(tab));
      }
  CHECK(mismatches == 0);
  // Not vacuous: every policy decides or errors for some request.
  CHECK_MESSAGE(seen.size() == linked.size(), seen.size() << " of " << linked.size() << " policies ever decide or error");
  gTotalRequests += checked;
}

TEST_CASE("table differential: featurize + evaluateBatch equal one-at-a-time answers") {
  ++gContributors;
  const std::vector<size_t> sizes = {0, 1, 63, 64, 65, 129, 1000};
  size_t checked = 0, mismatches = 0;
  for (int k = 0; k < scaled(6); ++k) {
    // Policy counts on both sides of word boundaries, 1,000 requests per test.
    static const int counts[] = {5, 64, 65, 130, 300, 700};
    int n = counts[k % 6];
    GenOptions o = shape(options(200 + static_cast<uint64_t>(k), n, n, 30, 150, 7, 1000), 0.9, 0.5);
    gen::GeneratedTest g = gen::generateTest(o, static_cast<uint64_t>(k));
    auto t = tablediff::loadGenerated(g);
    REQUIRE(!t->requests.empty());
    table::DecisionTable table = table::compileTable(t->policies, t->store);
    std::vector<Response> single;
    for (const Request& r : t->requests) single.push_back(table::authorizeWithTable(table, r));
    for (size_t size : sizes) {
      // The first `size` requests, cycling when the test has fewer (a few may have been refused).
      std::vector<Request> batch;
      std::vector<size_t> source;
      for (size_t i = 0; i < size; ++i) {
        source.push_back(i % t->requests.size());
        batch.push_back(t->requests[source.back()]);
      }
      std::vector<uint32_t> codes;
      std::vector<Response> out;
      table::featurize(table, batch, codes);
      CHECK(codes.size() == table.features.size() * size);
      table::evaluateBatch(table, batch, codes, out);
      REQUIRE(out.size() == size);
      for (size_t i = 0; i < size; ++i) {
        const Response& one = single[source[i]];
        bool same = canonical(out[i]) == canonical(one) && tablediff::sameErrorMessages(out[i], one);
        ++checked;
        if (!same && ++mismatches <= 5)
          FAIL_CHECK("batch of " << size << ", request " << i << " (" << t->requestJson[source[i]] << "), " << n
                                 << " policies, seed " << o.seed << " test " << k << "\nbatch:  " << describe(canonical(out[i]))
                                 << "\nsingle: " << describe(canonical(one)));
      }
    }
    // And the one-at-a-time answers against the reference.
    for (size_t i = 0; i < t->requests.size(); ++i) {
      Answer ref = canonical(cedar::authorize(t->policies, t->requests[i], t->store));
      if (!(ref == canonical(single[i])) && ++mismatches <= 5)
        FAIL_CHECK("request " << t->requestJson[i] << ", " << n << " policies, seed " << o.seed << " test " << k
                              << "\nreference: " << describe(ref) << "\ntable:     " << describe(canonical(single[i])));
    }
    gTotalRequests += t->requests.size();
  }
  CHECK(mismatches == 0);
  MESSAGE("batches: " << checked << " batched answers compared with one-at-a-time answers");
}

TEST_CASE("table differential: at least 100,000 requests in all") {
  MESSAGE("requests compared with the reference: " << gTotalRequests);
  // Only a full run (no test-case filter, full scale) must reach the total.
  if (gContributors == kContributors && envDouble("GOVMESH_TABLE_DIFF_SCALE", 1.0) >= 1.0) CHECK(gTotalRequests >= 100000);
}
