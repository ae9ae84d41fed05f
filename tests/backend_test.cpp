// Every CPU backend against the scalar reference, bit for bit, on seeded random tables and
// batch sizes around each backend's width; and the backend registry's rules.
#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "compiler/parser.h"
#include "engine/evaluator.h"
#include "tests/backend_support.h"
#include "tests/support/cedar_gen.h"

using namespace govmesh;

namespace {

std::vector<std::string> cpuBackends() {
  std::vector<std::string> out;
  for (const engine::BackendInfo& b : engine::listBackends()) {
    if (b.name == "cuda") continue;
    if (b.available) out.push_back(b.name);
    else MESSAGE("backend " << b.name << " skipped: " << b.why);
  }
  return out;
}

}  // namespace

TEST_CASE("CPU backends equal scalar bit for bit on random tables") {
  for (const std::string& name : cpuBackends()) {
    auto backend = engine::makeEvaluator(name);
    CHECK(backend->name() == name);
    const size_t width = name == "avx512" ? 8 : name == "avx2" ? 4 : 1;  // words per vector step
    for (uint32_t policies : {1u, 63u, 64u, 65u, 64u * 4 - 1, 64u * 8 + 1, 1000u, 100000u}) {
      // Word counts around the vector width exercise the vector loop and the leftover words.
      const uint32_t features = policies >= 100000 ? 3 : 5, rows = 7;
      table::DecisionTable t = testing::randomTable(policies, features, rows, policies * 7919 + width);
      engine::FlatTable ft(t);
      for (size_t n : {size_t{0}, size_t{1}, width - 1, width, width + 1, 2 * width + 1, size_t{5000}}) {
        if (policies >= 100000 && n > 64) continue;  // keep the largest table's test quick
        std::vector<uint32_t> codes = testing::randomCodes(features, rows, n, n * 31 + policies);
        testing::requireSameAsScalar(*backend, ft, codes, n,
                                     "backend " + name + ", policies " + std::to_string(policies) + ", batch " + std::to_string(n) +
                                         ", seed " + std::to_string(policies * 7919 + width));
      }
    }
  }
}

TEST_CASE("every CPU backend gives the reference evaluator's answers on generated Cedar tests") {
  gen::GenOptions opts;
  opts.seed = 4242;
  for (const std::string& name : cpuBackends()) {
    auto backend = engine::makeEvaluator(name);
    for (uint64_t ti = 0; ti < 60; ++ti) {
      gen::GeneratedTest g = gen::generateTest(opts, ti);
      cedar::PolicySet ps = cedar::parsePolicies(g.policiesText, "gen.cedar");
      cedar::EntityStore store = cedar::parseEntitiesJson(g.entitiesJson, "gen.entities.json", nullptr);
      std::vector<cedar::Request> requests;
      for (const std::string& rj : g.requestsJson) {
        requests.push_back(cedar::requestFromJson(nlohmann::json::parse(rj), nullptr, "request"));
      }
      table::DecisionTable t = table::compileTable(ps.policies, store);
      engine::FlatTable ft(t);
      std::vector<cedar::Response> got = engine::authorizeBatch(ft, *backend, requests);
      for (size_t i = 0; i < requests.size(); ++i) {
        cedar::Response want = cedar::authorize(ps.policies, requests[i], store);
        auto ids = [](const cedar::Response& r) {
          std::vector<std::string> e;
          for (const auto& x : r.errors) e.push_back(x.policyId);
          std::sort(e.begin(), e.end());
          return e;
        };
        std::sort(want.reasons.begin(), want.reasons.end());
        std::sort(got[i].reasons.begin(), got[i].reasons.end());
        INFO("backend " << name << ", generator seed 4242, test " << ti << ", request " << i);
        CHECK(got[i].decision == want.decision);
        CHECK(got[i].reasons == want.reasons);
        CHECK(ids(got[i]) == ids(want));
      }
    }
  }
}

TEST_CASE("GOVMESH_BACKEND forces a backend; unknown names are errors") {
  setenv("GOVMESH_BACKEND", "scalar", 1);
  CHECK(engine::bestEvaluator()->name() == "scalar");
  setenv("GOVMESH_BACKEND", "avx9000", 1);
  CHECK_THROWS_AS(engine::bestEvaluator(), std::invalid_argument);
  unsetenv("GOVMESH_BACKEND");
  auto best = engine::bestEvaluator(/*allowGpu=*/false);
  // The first available CPU backend in priority order wins.
  for (const engine::BackendInfo& b : engine::listBackends()) {
    if (b.name == "cuda" || !b.available) continue;
    CHECK(best->name() == b.name);
    break;
  }
  MESSAGE("best CPU backend here: " << best->name() << " (CPU features: " << engine::cpuFeatures() << ")");
}

namespace {
// A backend that always fails, as a faulting GPU would.
class FailingEvaluator : public engine::Evaluator {
 public:
  std::string_view name() const override { return "failing"; }
  bool evaluate(const engine::FlatTable&, const uint32_t*, size_t, engine::BatchResult& out) override {
    // Leave output that would allow everything, to prove it is never used.
    std::fill(out.flags.begin(), out.flags.end(), govmesh::kernels::kFlagPermitSat);
    return false;
  }
};
}  // namespace

TEST_CASE("a failing backend falls back to scalar and never yields an allow of its own") {
  const char* policies = "permit(principal == User::\"a\", action, resource);\nforbid(principal, action, resource) when { context.bad };";
  cedar::PolicySet ps = cedar::parsePolicies(policies, "p.cedar");
  cedar::EntityStore store;
  table::DecisionTable t = table::compileTable(ps.policies, store);
  engine::FlatTable ft(t);
  std::vector<cedar::Request> requests;
  for (const char* who : {"a", "b"})
    requests.push_back({cedar::EntityUid{"User", who}, cedar::EntityUid{"Action", "x"}, cedar::EntityUid{"Doc", "d"},
                        cedar::Value::record({{"bad", cedar::Value::boolean(false)}})});
  FailingEvaluator failing;
  std::vector<cedar::Response> got = engine::authorizeBatch(ft, failing, requests);
  REQUIRE(got.size() == 2);
  CHECK(got[0].decision == cedar::Decision::Allow);
  CHECK(got[0].reasons == std::vector<std::string>{"policy0"});
  CHECK(got[1].decision == cedar::Decision::Deny);
  CHECK(got[1].reasons.empty());
}
