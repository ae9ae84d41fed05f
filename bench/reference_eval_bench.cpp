// Time per decision of the reference evaluator (tree-walking, exact Cedar) on the `gov`
// workload. The evaluator walks every policy for every request, like Cedar itself, so the cost
// grows with N; later benchmarks report the decision tables as ratios against this baseline.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include "bench/workloads.h"
#include "compiler/entities.h"
#include "compiler/evaluator.h"
#include "compiler/parser.h"

using namespace govmesh::cedar;

namespace {

void BM_ReferenceAuthorizeGov(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  govmesh::bench::Workload w = govmesh::bench::makeGovWorkload(n, 1024, 42);
  std::vector<Policy> policies = parsePolicies(w.policies, "gov.cedar").policies;
  EntityStore store = parseEntitiesJson(w.entities, "gov.entities.json", nullptr);
  std::vector<Request> requests;
  for (const std::string& text : w.requests) {
    nlohmann::json j = nlohmann::json::parse(text);
    Request r{uidFromJson(j["principal"], "p"), uidFromJson(j["action"], "a"), uidFromJson(j["resource"], "r"),
              contextFromJson(j["context"], nullptr, uidFromJson(j["action"], "a"), "ctx")};
    requests.push_back(std::move(r));
  }
  size_t i = 0, allowed = 0;
  for (auto _ : state) {
    Response r = authorize(policies, requests[i++ % requests.size()], store);
    allowed += r.decision == Decision::Allow;
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["policies"] = n;
  state.counters["allow_fraction"] = state.iterations() ? double(allowed) / double(state.iterations()) : 0.0;
  state.SetLabel("backend=reference (scalar tree walk, 1 thread)");
}

}  // namespace

BENCHMARK(BM_ReferenceAuthorizeGov)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
