// `govmesh loadgen`: drives a node with the workloads of a key directory (server/loadgen.h).
//
// Output: with --json only the report (one JSON object) on stdout; otherwise a few summary lines
// and then the report. A progress line each second goes to stderr when stderr is a terminal.
// Exit status: 0; 1 when it cannot connect or its input is bad; 2 when a tampered request was
// allowed, an honest decision differed from the offline evaluation, or calls failed mid-run.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "server/cli/commands.h"
#include "server/client.h"
#include "server/loadgen.h"

namespace govmesh::cli {

void printLoadSummary(const server::LoadReport& r) {
  std::cout << r.requests << " decisions in " << r.seconds << " s: " << static_cast<uint64_t>(r.decisionsPerSecond)
            << " decisions/s, latency p50 " << r.latencyUs.p50 << " us, p99 " << r.latencyUs.p99 << " us\n"
            << r.allowed << " allowed, " << r.deniedByPolicy << " denied by policy";
  for (const auto& [code, n] : r.deniedByCode) std::cout << ", " << n << " " << code;
  std::cout << "\n" << r.tamperedSent << " tampered sent, " << r.tamperedAllowed << " tampered allowed";
  if (r.check) std::cout << "; " << r.checked << " checked offline, " << r.mismatchesVsOffline << " mismatches";
  std::cout << "\n";
  if (!r.firstError.empty()) std::cout << "error: " << r.firstError << "\n";
  for (const std::string& m : r.mismatchExamples) std::cout << "mismatch: " << m << "\n";
}

void addLoadgen(CLI::App& app, int& exitCode) {
  auto* cmd = app.add_subcommand("loadgen", "Drive a govmesh node with a signed, mixed, partly tampered load");
  struct Args {
    server::LoadOptions o;
    double rate = 0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--connect", args->o.connect, "The node's RPC address, host:port")->required();
  cmd->add_option("--keys", args->o.keysDir, "Key directory holding workloads.json")->required();
  auto* rate = cmd->add_option("--rate", args->rate, "Target requests per second (open loop)")->check(CLI::PositiveNumber);
  auto* max = cmd->add_flag("--max", args->o.max, "Send as fast as the node answers");
  rate->excludes(max);
  cmd->add_option("--seconds", args->o.seconds, "How long to send")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--batch", args->o.batch, "Requests per call")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  cmd->add_option("--in-flight", args->o.inFlight, "Calls kept in flight at most")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  cmd->add_flag("--unsigned", args->o.unsignedRequests, "Send empty signatures (node started with unsigned mode)");
  cmd->add_option("--bad-fraction", args->o.badFraction, "Share of tampered requests")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_flag("--check", args->o.check, "Compare every honest decision with an offline evaluation of the bundle");
  cmd->add_flag("--json", args->json, "Print only the JSON report");
  cmd->add_option("--seed", args->o.seed, "Random seed of the mix and the tampering (0: random)");
  cmd->add_option("--pool", args->o.poolLimit, "Most requests signed ahead of timing")->capture_default_str();
  cmd->callback([args, rate, &exitCode] {
    server::LoadOptions o = args->o;
    if (rate->count() > 0) o.rate = args->rate;
    if (!o.rate && !o.max) throw CLI::ValidationError("loadgen", "give --rate R or --max");
    if (isatty(STDERR_FILENO)) {
      o.onProgress = [](const server::LoadProgress& p) {
        std::fprintf(stderr, "\r%6.1f s  %10llu decisions  %9.0f/s  allowed %llu  denied %llu  tampered %llu (allowed %llu)  ",
                     p.elapsedSeconds, static_cast<unsigned long long>(p.requests), p.decisionsPerSecond,
                     static_cast<unsigned long long>(p.allowed), static_cast<unsigned long long>(p.denied),
                     static_cast<unsigned long long>(p.tamperedSent), static_cast<unsigned long long>(p.tamperedAllowed));
        std::fflush(stderr);
      };
    }
    server::LoadReport r;
    try {
      r = server::runLoad(o);
    } catch (const server::ClientError& e) {
      std::cerr << "error: " << e.what() << "\n";
      exitCode = 1;
      return;
    }
    if (o.onProgress) std::fprintf(stderr, "\n");
    if (!args->json) printLoadSummary(r);
    std::cout << r.toJson().dump() << std::endl;
    if (r.tamperedAllowed > 0 || r.mismatchesVsOffline > 0 || r.failedCalls > 0) exitCode = 2;
  });
}

}  // namespace govmesh::cli
