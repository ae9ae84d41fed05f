// `govmesh bench tables`: decision-table throughput per backend on the `gov` workload, with the
// reference evaluator and (where Node.js and the npm package are installed) the real Cedar
// engine measured in the same run on the same policies and requests. One JSON object per line.
#include <tbb/global_control.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench/workloads.h"
#include "compiler/parser.h"
#include "engine/evaluator.h"
#include "server/cli/commands.h"
#ifdef GOVMESH_WITH_CUDA
#include "kernels/cuda/table_eval_cuda.h"
#endif

namespace govmesh::cli {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct BenchArgs {
  int policies = 1000;
  int batch = 4096;
  double seconds = 1.0;
  int threads = 1;
  uint64_t seed = 42;
  bool peer = true;
};

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Runs `step` (which handles `per` decisions) until `seconds` pass; returns decisions/second.
template <class Fn>
double rate(double seconds, size_t per, Fn step) {
  step();  // warm-up
  size_t done = 0;
  auto start = Clock::now();
  do {
    step();
    done += per;
  } while (since(start) < seconds);
  return double(done) / since(start);
}

std::string findRepoFile(const std::string& rel) {
  // The binary lives in build/bin; the repo is two folders up. Fall back to the working dir.
  for (std::filesystem::path p : {std::filesystem::canonical("/proc/self/exe").parent_path() / "../..", std::filesystem::path(".")}) {
    if (std::filesystem::exists(p / rel)) return (p / rel).lexically_normal().string();
  }
  return "";
}

std::optional<json> runCedarWasm(const bench::Workload& w, double seconds) {
  std::string script = findRepoFile("tests/oracle/cedar_wasm_bench.mjs");
  if (script.empty() || !std::filesystem::exists(std::filesystem::path(script).parent_path() / "node_modules/@cedar-policy/cedar-wasm"))
    return std::nullopt;
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("govmesh-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "policies.cedar") << w.policies;
  std::ofstream(dir / "entities.json") << w.entities;
  {
    std::ofstream rq(dir / "requests.jsonl");
    for (const std::string& r : w.requests) rq << r << "\n";
  }
  std::string cmd = "node '" + script + "' '" + dir.string() + "' " + std::to_string(seconds) + " 2>&1";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  std::filesystem::remove_all(dir);
  try {
    return json::parse(out.substr(out.find('{')));
  } catch (...) {
    std::cerr << "cedar-wasm benchmark failed: " << out << "\n";
    return std::nullopt;
  }
}

int runBench(const BenchArgs& a) {
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, static_cast<size_t>(std::max(1, a.threads)));
  bench::Workload w = bench::makeGovWorkload(a.policies, a.batch, a.seed);
  std::vector<cedar::Policy> policies = cedar::parsePolicies(w.policies, "gov.cedar").policies;
  cedar::EntityStore store = cedar::parseEntitiesJson(w.entities, "gov.entities.json", nullptr);
  std::vector<cedar::Request> requests;
  for (const std::string& text : w.requests) {
    requests.push_back(cedar::requestFromJson(json::parse(text), nullptr, "request"));
  }
  auto compileStart = Clock::now();
  table::DecisionTable t = table::compileTable(policies, store);
  double compileSeconds = since(compileStart);
  engine::FlatTable ft(t);
  const size_t n = requests.size();
  std::vector<uint32_t> codes;
  table::featurize(t, requests, codes);
  json common = {{"workload", "gov"}, {"cpu_features", engine::cpuFeatures()}, {"policies", a.policies}, {"batch", a.batch},
                 {"threads", a.threads}, {"table_bytes", t.tableBytes()}, {"compile_seconds", compileSeconds}};
  // Answers of the reference evaluator for (up to) the first 4,096 requests, to check every
  // backend's decisions in the same run.
  std::vector<cedar::Response> want;
  for (size_t i = 0; i < std::min<size_t>(requests.size(), 4096); ++i) want.push_back(cedar::authorize(policies, requests[i], store));
  double refRate = rate(a.seconds, 1, [&, i = size_t{0}]() mutable { (void)cedar::authorize(policies, requests[i++ % n], store); });
  json ref = common;
  ref["backend"] = "reference";
  ref["decisions_per_second"] = refRate;
  ref["decisions_per_second_end_to_end"] = refRate;
  std::cout << ref.dump() << std::endl;
  for (const engine::BackendInfo& b : engine::listBackends()) {
    if (!b.available) {
      std::cout << json{{"backend", b.name}, {"skipped", b.why}}.dump() << std::endl;
      continue;
    }
    auto ev = engine::makeEvaluator(b.name);
    engine::BatchResult res;
    std::vector<cedar::Response> out;
    bool ok = true;
    double featurized = rate(a.seconds, n, [&] { ok = ok && ev->evaluate(ft, codes.data(), n, res); });
    double endToEnd = rate(a.seconds, n, [&] { out = engine::authorizeBatch(ft, *ev, requests); });
    size_t mismatches = 0, ambiguous = 0;
    for (size_t i = 0; i < n; ++i) {
      if (i < want.size()) mismatches += out[i].decision != want[i].decision || out[i].reasons != want[i].reasons;
      ambiguous += (res.flags[i] & kernels::kFlagAmbiguous) != 0;
    }
    json j = common;
    j["backend"] = b.name;
    j["decisions_per_second"] = featurized;
    j["decisions_per_second_end_to_end"] = endToEnd;
    j["speedup_vs_reference_end_to_end"] = endToEnd / refRate;
    j["handed_to_reference_fraction"] = double(ambiguous) / double(n);
    j["mismatches_vs_reference"] = mismatches;
    j["checked_vs_reference"] = want.size();
    j["ok"] = ok;
#ifdef GOVMESH_WITH_CUDA
    if (b.name == "cuda") {
      // Kernel alone, codes already resident on the device.
      kernels::CudaTableRunner runner;
      std::vector<uint8_t> fl(n);
      std::vector<uint64_t> bits(n * 3 * size_t{t.words});
      if (runner.upload(ft.view(), ft.rows.size()) && runner.run(codes.data(), n, fl.data(), bits.data())) {
        j["device_ms_per_batch_with_transfers"] = runner.lastRunMs();
        float ms = runner.kernelOnlyMs(n, 50);
        if (ms > 0) j["kernel_decisions_per_second"] = double(n) / (ms / 1000.0);
      }
    }
#endif
    std::cout << j.dump() << std::endl;
  }
  if (a.peer) {
    if (auto peer = runCedarWasm(w, a.seconds)) {
      json j = common;
      j["backend"] = "cedar-wasm";
      double r = (*peer)["decisions"].get<double>() / (*peer)["seconds"].get<double>();
      j["decisions_per_second"] = r;
      j["decisions_per_second_end_to_end"] = r;
      j["version"] = (*peer)["version"];
      j["table_bytes"] = nullptr;
      std::cout << j.dump() << std::endl;
    } else {
      std::cout << json{{"backend", "cedar-wasm"}, {"skipped", "node or tests/oracle/node_modules missing (run deploy/install-deps.sh)"}}.dump()
                << std::endl;
    }
  }
  return 0;
}

}  // namespace

void addBench(CLI::App& app, int& exitCode) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks");
  CLI::App* tables = bench->add_subcommand("tables", "Decision-table throughput per backend vs the reference and cedar-wasm");
  bench->require_subcommand(1);
  tables->add_option("--policies", args->policies, "Policies in the gov workload")->check(CLI::Range(1, 1000000));
  tables->add_option("--batch", args->batch, "Requests per batch")->check(CLI::Range(1, 10000000));
  tables->add_option("--seconds", args->seconds, "Seconds per measurement")->check(CLI::Range(0.01, 600.0));
  tables->add_option("--threads", args->threads, "Worker threads for CPU backends (targets are per core)")->check(CLI::Range(1, 1024));
  tables->add_option("--seed", args->seed, "Workload seed");
  tables->add_flag("!--no-peer", args->peer, "Skip the cedar-wasm peer");
  tables->callback([args, &exitCode] { exitCode = runBench(*args); });
  addBenchCrypto(*bench, exitCode);
}

}  // namespace govmesh::cli
