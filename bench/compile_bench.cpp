// Cost of building a decision table for the `gov` workload (../shared/design/WORKLOADS.md) at
// 100, 1,000, 10,000 and 100,000 policies, phase by phase, so the figures say what dominates:
//   BM_GovParse/N        parsing the policy text
//   BM_GovEntityLoad/N   reading the entities JSON into an EntityStore (ancestor closure included)
//   BM_GovCompile/N      table::compileTable on the parsed policies and the store
// The 100,000-policy case has 1,000,000 entities (990,600 Workloads plus the teams, clusters
// and nodes) and runs each phase once; the smaller cases have WORKLOADS.md's 2,000 Workloads.
// BM_GovCompile reports the table's shape: policies, entities (store), universe (uids with a
// row in the entity features), features, rows, table_bytes, and ambiguous_fraction, the share of
// a sample of 1,000 requests that leave at least one policy to be settled by the reference
// evaluator. Progress, phase times and peak memory also go to stderr as each phase ends, so a
// run that is killed (timeout, ulimit) still says how far it got.
//
// Run: build/bin/govmesh_bench_compile [--benchmark_filter=/1000$]   (the largest case:
// --benchmark_filter=/100000; GOVMESH_BENCH_WORKLOADS=W overrides the Workload count)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/table_stats.h"
#include "bench/workloads.h"
#include "compiler/decision_table.h"
#include "compiler/entities.h"
#include "compiler/parser.h"

using namespace govmesh;

namespace {

constexpr int kSizes[] = {100, 1000, 10000, 100000};
constexpr int kSampleRequests = 1000;
constexpr uint64_t kSeed = 42;

/// Workload entities for N policies: WORKLOADS.md's 2,000, or for the largest case enough to
/// make the store 1,000,000 entities (teams, clusters and nodes as makeGovWorkload makes them).
/// GOVMESH_BENCH_WORKLOADS=W sets W for every size instead (to separate the two growths).
int workloadsFor(int n) {
  if (const char* w = std::getenv("GOVMESH_BENCH_WORKLOADS"); w && *w) return std::atoi(w);
  if (n < 100000) return 2000;
  const int teams = std::max(50, n / 20), clusters = std::max(40, n / 25), nodes = 400;
  return 1000000 - teams - clusters - nodes;
}

/// Peak and current resident memory of this process, from /proc (Linux), in MiB.
std::string memory() {
  std::ifstream in("/proc/self/status");
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0 || line.rfind("VmRSS:", 0) == 0) {
      long kb = std::atol(line.c_str() + 6);
      out += (out.empty() ? "" : ", ") + line.substr(0, 5) + " " + std::to_string(kb / 1024) + " MiB";
    }
  return out;
}

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void progress(int n, const std::string& what) {
  if (n < 10000) return;  // small cases are quick; Google Benchmark calls each several times
  std::fprintf(stderr, "compile_bench N=%d: %s [%s]\n", n, what.c_str(), memory().c_str());
  std::fflush(stderr);
}

/// The inputs of one size, built on first use and kept for the next phase; the inputs of the
/// previous size are dropped first, so the million-entity case has the memory to itself.
struct Inputs {
  int n = 0;
  bench::Workload text;
  std::optional<std::vector<cedar::Policy>> policies;
  std::unique_ptr<cedar::EntityStore> store;  // by pointer: the table points into it
  std::vector<cedar::Request> sample;
};

std::unique_ptr<Inputs> gInputs;

Inputs& inputs(int n) {
  if (gInputs && gInputs->n == n) return *gInputs;
  gInputs.reset();
  auto start = std::chrono::steady_clock::now();
  auto in = std::make_unique<Inputs>();
  in->n = n;
  in->text = bench::makeGovWorkload(n, kSampleRequests, kSeed, workloadsFor(n));
  char buf[200];
  std::snprintf(buf, sizeof buf, "workload generated in %.2f s (policies %.1f MB, entities %.1f MB)", seconds(start),
                in->text.policies.size() / 1e6, in->text.entities.size() / 1e6);
  progress(n, buf);
  for (const std::string& r : in->text.requests) {
    in->sample.push_back(cedar::requestFromJson(nlohmann::json::parse(r), nullptr, "request"));
  }
  gInputs = std::move(in);
  return *gInputs;
}

void BM_GovParse(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Inputs& in = inputs(n);
  auto start = std::chrono::steady_clock::now();
  cedar::PolicySet ps;
  for (auto _ : state) {
    ps = cedar::parsePolicies(in.text.policies, "gov.cedar");
    benchmark::DoNotOptimize(ps);
  }
  char buf[120];
  std::snprintf(buf, sizeof buf, "parse: %zu policies, %lld iterations in %.2f s", ps.policies.size(),
                static_cast<long long>(state.iterations()), seconds(start));
  progress(n, buf);
  state.counters["policies"] = double(ps.policies.size());
  state.counters["bytes"] = double(in.text.policies.size());
  in.policies = std::move(ps.policies);
}

void BM_GovEntityLoad(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Inputs& in = inputs(n);
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<cedar::EntityStore> store;
  for (auto _ : state) {
    state.PauseTiming();
    store.reset();  // the previous iteration's store goes before the next is built
    state.ResumeTiming();
    store = std::make_unique<cedar::EntityStore>(cedar::parseEntitiesJson(in.text.entities, "gov.entities.json", nullptr));
    benchmark::DoNotOptimize(store);
  }
  char buf[120];
  std::snprintf(buf, sizeof buf, "entity load: %zu entities, %lld iterations in %.2f s", store->size(),
                static_cast<long long>(state.iterations()), seconds(start));
  progress(n, buf);
  state.counters["entities"] = double(store->size());
  state.counters["bytes"] = double(in.text.entities.size());
  in.store = std::move(store);
}

void BM_GovCompile(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  Inputs& in = inputs(n);
  // Filtered runs may start here: then parse and load without timing them.
  if (!in.policies) in.policies = cedar::parsePolicies(in.text.policies, "gov.cedar").policies;
  if (!in.store) in.store = std::make_unique<cedar::EntityStore>(cedar::parseEntitiesJson(in.text.entities, "gov.entities.json", nullptr));
  if (n >= 100000) {  // the 100 MB text is not needed again (each phase runs once)
    in.text.entities.clear();
    in.text.entities.shrink_to_fit();
  }
  progress(n, "compiling");
  auto start = std::chrono::steady_clock::now();
  std::optional<table::DecisionTable> t;
  for (auto _ : state) {
    state.PauseTiming();
    t.reset();
    std::vector<cedar::Policy> copy = *in.policies;  // compileTable takes its policies by value
    state.ResumeTiming();
    t = table::compileTable(std::move(copy), *in.store);
    benchmark::DoNotOptimize(t);
  }
  char buf[120];
  std::snprintf(buf, sizeof buf, "compile: %lld iterations in %.2f s", static_cast<long long>(state.iterations()), seconds(start));
  progress(n, buf);
  size_t rows = 0;
  for (const table::Feature& f : t->features) rows += f.rowCount(t->words);
  // The sample of requests: how many leave an ambiguous policy to the reference evaluator.
  std::vector<uint32_t> codes;
  table::featurize(*t, in.sample, codes);
  size_t ambiguous = 0;
  for (size_t i = 0; i < in.sample.size(); ++i) ambiguous += bench::ambiguousPolicies(*t, codes, in.sample.size(), i) > 0;
  state.counters["policies"] = double(t->policyCount);
  state.counters["entities"] = double(in.store->size());
  state.counters["universe"] = double(t->entities.size());
  state.counters["features"] = double(t->features.size());
  state.counters["rows"] = double(rows);
  state.counters["table_bytes"] = double(t->tableBytes());
  state.counters["ambiguous_fraction"] = double(ambiguous) / double(in.sample.size());
  state.SetLabel("compileTable, 1 thread");
}

}  // namespace

int main(int argc, char** argv) {
  for (int n : kSizes) {
    auto setUp = [n](benchmark::internal::Benchmark* b) {
      b->Arg(n)->Unit(benchmark::kMillisecond);
      if (n >= 100000) b->Iterations(1);  // one pass: each phase takes seconds to minutes
    };
    setUp(benchmark::RegisterBenchmark("BM_GovParse", BM_GovParse));
    setUp(benchmark::RegisterBenchmark("BM_GovEntityLoad", BM_GovEntityLoad));
    setUp(benchmark::RegisterBenchmark("BM_GovCompile", BM_GovCompile));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
