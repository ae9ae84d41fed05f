// Time per decision of the reference evaluator (tree-walking, exact Cedar) on the `gov`
// workload. The evaluator walks every policy for every request, like Cedar itself, so the cost
// grows with N; later benchmarks report the decision tables as ratios against this baseline.
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include "bench/workloads.h"
#include "compiler/decision_table.h"
#include "compiler/entities.h"
#include "compiler/evaluator.h"
#include "compiler/parser.h"

using namespace govmesh::cedar;

namespace {

struct GovInput {
  std::vector<Policy> policies;
  EntityStore store;
  std::vector<Request> requests;
};

GovInput loadGov(int n) {
  govmesh::bench::Workload w = govmesh::bench::makeGovWorkload(n, 1024, 42);
  GovInput in;
  in.policies = parsePolicies(w.policies, "gov.cedar").policies;
  in.store = parseEntitiesJson(w.entities, "gov.entities.json", nullptr);
  for (const std::string& text : w.requests) {
    in.requests.push_back(requestFromJson(nlohmann::json::parse(text), nullptr, "request"));
  }
  return in;
}

void BM_ReferenceAuthorizeGov(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  GovInput in = loadGov(n);
  const std::vector<Policy>& policies = in.policies;
  const EntityStore& store = in.store;
  const std::vector<Request>& requests = in.requests;
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

// The scalar decision-table evaluator on the same requests, featurization included, in
// batches of 1,024: the ratio to BM_ReferenceAuthorizeGov at equal N is the table's speed-up.
void BM_TableAuthorizeGov(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  GovInput in = loadGov(n);
  govmesh::table::DecisionTable table = govmesh::table::compileTable(in.policies, in.store);
  std::vector<uint32_t> codes;
  std::vector<Response> out;
  size_t allowed = 0;
  for (auto _ : state) {
    govmesh::table::featurize(table, in.requests, codes);
    govmesh::table::evaluateBatch(table, in.requests, codes, out);
    for (const Response& r : out) allowed += r.decision == Decision::Allow;
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * in.requests.size()));
  state.counters["policies"] = n;
  state.counters["allow_fraction"] = double(allowed) / double(std::max<size_t>(1, state.iterations() * in.requests.size()));
  state.counters["table_bytes"] = double(table.tableBytes());
  state.SetLabel("backend=table-scalar (featurize + evaluate, batch 1024, 1 thread)");
}

}  // namespace

BENCHMARK(BM_TableAuthorizeGov)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ReferenceAuthorizeGov)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
