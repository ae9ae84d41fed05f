// Decision-table evaluation per backend on featurized `gov` requests (batch 4,096, one
// thread), next to the scalar backend in the same run: the ratio is each backend's speed-up.
// Backends this machine cannot run are listed and skipped.
#include <benchmark/benchmark.h>
#include <tbb/global_control.h>

#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "bench/workloads.h"
#include "compiler/parser.h"
#include "engine/evaluator.h"

using namespace govmesh;

namespace {

struct Prepared {
  std::vector<cedar::Policy> policies;
  cedar::EntityStore store;
  std::vector<cedar::Request> requests;
  std::unique_ptr<table::DecisionTable> table;
  std::unique_ptr<engine::FlatTable> flat;
  std::vector<uint32_t> codes;
};

Prepared& prepared(int policies) {
  static std::map<int, Prepared> cache;
  Prepared& p = cache[policies];
  if (p.table) return p;
  bench::Workload w = bench::makeGovWorkload(policies, 4096, 42);
  p.policies = cedar::parsePolicies(w.policies, "gov.cedar").policies;
  p.store = cedar::parseEntitiesJson(w.entities, "gov.entities.json", nullptr);
  for (const std::string& text : w.requests) {
    p.requests.push_back(cedar::requestFromJson(nlohmann::json::parse(text), nullptr, "request"));
  }
  p.table = std::make_unique<table::DecisionTable>(table::compileTable(p.policies, p.store));
  p.flat = std::make_unique<engine::FlatTable>(*p.table);
  table::featurize(*p.table, p.requests, p.codes);
  return p;
}

void runBackend(benchmark::State& state, const std::string& backend, int policies) {
  Prepared& p = prepared(policies);
  auto ev = engine::makeEvaluator(backend);
  engine::BatchResult out;
  for (auto _ : state) {
    if (!ev->evaluate(*p.flat, p.codes.data(), p.requests.size(), out)) state.SkipWithError("backend failed");
    benchmark::DoNotOptimize(out.flags.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * p.requests.size()));
  state.counters["policies"] = policies;
  state.counters["table_bytes"] = double(p.table->tableBytes());
  state.SetLabel("backend=" + backend + " cpu_features=" + engine::cpuFeatures());
}

}  // namespace

int main(int argc, char** argv) {
  tbb::global_control oneThread(tbb::global_control::max_allowed_parallelism, 1);
  for (const engine::BackendInfo& b : engine::listBackends()) {
    if (!b.available) {
      std::cerr << "skipping backend " << b.name << ": " << b.why << "\n";
      continue;
    }
    for (int n : {100, 1000, 10000})
      benchmark::RegisterBenchmark(("BM_TableBackend/" + b.name + "/" + std::to_string(n)).c_str(),
                                   [name = b.name, n](benchmark::State& s) { runBackend(s, name, n); })
          ->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
