// `govmesh demo`: the whole product on one machine, from nothing. It generates an authority and
// workload keys, the example governance world (server/demo_data.h), compiles and signs its
// bundle, starts a decision node on loopback, drives it with a signed load of which a share is
// tampered with or replayed, checks every honest decision against an offline evaluation, and
// stops the node cleanly. The node records every decision in its lineage log (DIR/lineage,
// checkpoints signed by DIR/node.key); with --keep the log stays, and the printed `govmesh
// replay` line verifies it. A --keep directory's earlier lineage log is removed first: it was
// signed by an earlier node key and names an earlier bundle.
//
// Output: a few lines on the world and the node, a progress line each second on stderr when it
// is a terminal, `govmesh loadgen`'s summary and JSON report, then where things were kept.
// With --json, stdout holds exactly one JSON object: the loadgen report plus a "demo" object
// (node address, bundle revision and digest, kept directory).
// With --console [ADDR] (default 127.0.0.1:8080; port 0 picks a free one) the node also serves
// the web console (docs/console.md): its URL is printed as `console: http://HOST:PORT/` as soon as
// it is bound (on stdout; on stderr with --json), and after the report the node stays up for the
// console until SIGINT or SIGTERM, then shuts down cleanly.
// Exit status: 0 when no tampered request was allowed, every honest decision matched the
// offline evaluation and no call failed; 2 otherwise; 1 on bad arguments.
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "compiler/errors.h"
#include "engine/wall_clock.h"
#include "server/cli/commands.h"
#include "server/demo_data.h"
#include "server/loadgen.h"
#include "server/service.h"

namespace govmesh::cli {

namespace {

struct DemoArgs {
  double seconds = 5;
  double rate = 20000;
  size_t batch = 16;
  double badFraction = 0.1;
  bool json = false;
  std::string keep;
  std::optional<std::string> console;  // the console's address; set (maybe empty) by --console
};

// The console address --console gives when it has no value.
constexpr const char* kDefaultConsole = "127.0.0.1:8080";

// A private temporary directory, removed with everything in it when the demo ends (also on an
// exception), unless the user asked to keep the files.
class DemoDir {
 public:
  explicit DemoDir(const std::string& keep) {
    if (!keep.empty()) {
      path_ = keep;
      return;
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / "govmesh-demo-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw cedar::InputError(tmpl, {}, std::string("cannot create a temporary directory: ") + std::strerror(errno));
    path_ = tmpl;
    temporary_ = true;
  }
  ~DemoDir() {
    std::error_code ec;  // best effort: a leftover temp dir is not worth failing the demo
    if (temporary_) std::filesystem::remove_all(path_, ec);
  }
  DemoDir(const DemoDir&) = delete;
  DemoDir& operator=(const DemoDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  bool temporary() const { return temporary_; }

 private:
  std::filesystem::path path_;
  bool temporary_ = false;
};


void printProgress(const server::LoadProgress& p) {
  std::fprintf(stderr, "\r%6.1f s  %10llu decisions  %9.0f/s  allowed %llu  denied %llu  tampered %llu (allowed %llu)  ",
               p.elapsedSeconds, static_cast<unsigned long long>(p.requests), p.decisionsPerSecond,
               static_cast<unsigned long long>(p.allowed), static_cast<unsigned long long>(p.denied),
               static_cast<unsigned long long>(p.tamperedSent), static_cast<unsigned long long>(p.tamperedAllowed));
  std::fflush(stderr);
}

int runDemo(const DemoArgs& a) {
  // 1-3. Keys, the governance world, its bundle compiled and signed: fresh for an hour, or for
  // the whole run when longer, so that a long demo never turns POLICY_STALE halfway.
  int64_t ttlMs = std::max<int64_t>(int64_t{3600} * 1000, static_cast<int64_t>(a.seconds * 1000) + int64_t{600} * 1000);
  server::DemoWorld world = server::makeDemoWorld(engine::wallClockMs(), ttlMs);
  size_t templates = 0;
  for (const server::DemoWorkload& w : world.workloads) templates += w.requests.size();

  // 4. The key directory loadgen reads (and the bundle file the node loads).
  DemoDir dir(a.keep);
  server::DemoPaths paths = server::writeDemoDirectory(world, dir.path());
  {
    std::error_code ec;
    std::filesystem::remove_all(paths.lineage, ec);
    if (ec) throw cedar::InputError(paths.lineage.string(), {}, "cannot remove the earlier lineage log: " + ec.message());
  }

  // 5. The node, on loopback ports the kernel picks.
  server::ServiceOptions so;
  so.listen = "127.0.0.1:0";
  so.metricsListen = "127.0.0.1:0";
  so.trusted = {world.authority.publicKey};
  so.bundlePath = paths.bundle.string();
  so.nodeId = "demo-node";
  so.lineageDir = paths.lineage.string();
  so.nodeKeyPem = world.node.privatePem;
  // With the console the node outlives the report until SIGINT/SIGTERM. The signals are blocked
  // before the node's threads exist (they inherit the mask), so only sigwait() below takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (a.console) {
    so.consoleListen = a.console->empty() ? std::string(kDefaultConsole) : *a.console;
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }
  server::DecisionService node(so);
  if (!node.initialLoad() || !node.initialLoad()->accepted)
    throw std::runtime_error("the demo node refused its own bundle: " +
                             (node.initialLoad() ? node.initialLoad()->message : std::string("not loaded")));
  if (auto why = node.lineageError()) throw std::runtime_error("the demo node cannot record its decisions: " + *why);
  node.start();
  std::string address = "127.0.0.1:" + std::to_string(node.port());
  std::string metrics = "http://127.0.0.1:" + std::to_string(node.metricsPort()) + "/metrics";
  auto active = node.bundles().current();
  std::string digest = active ? active->digestHex : std::string();
  std::ostream& notes = a.json ? std::cerr : std::cout;  // --json keeps stdout to one JSON object
  std::string consoleUrl;
  if (a.console) {
    const std::string host = so.consoleListen->substr(0, so.consoleListen->rfind(':'));
    consoleUrl = "http://" + host + ":" + std::to_string(node.consolePort()) + "/";
    notes << "console: " << consoleUrl << std::endl;
  }

  if (!a.json) {
    std::cout << "govmesh demo: " << world.bundle.table.policies.size() << " Cedar policies (deploys, scaling, data access), "
              << world.workloads.size() << " workloads, " << templates << " kinds of request\n"
              << "bundle revision " << world.bundle.revision << ", digest " << digest << ", signed by "
              << crypto::fingerprint(world.authority.publicKey) << ", fresh until " << engine::isoTime(world.bundle.freshUntilMs)
              << "\n"
              << "node " << so.nodeId << " listening on " << address << " (metrics " << metrics << ", backend "
              << node.pipeline().backendName() << "), recording every decision in " << paths.lineage.string() << "\n"
              << "load: " << a.rate << " signed requests/s for " << a.seconds << " s in batches of " << a.batch << ", "
              << a.badFraction * 100 << "% tampered or replayed, every honest decision checked offline\n"
              << std::flush;
  }

  // 6. The load, checked against the offline evaluator.
  server::LoadOptions lo;
  lo.connect = address;
  lo.keysDir = paths.dir.string();
  lo.rate = a.rate;
  lo.seconds = a.seconds;
  lo.batch = a.batch;
  lo.badFraction = a.badFraction;
  lo.check = true;
  if (isatty(STDERR_FILENO)) lo.onProgress = printProgress;
  server::LoadReport report;
  try {
    report = server::runLoad(lo);
  } catch (...) {
    node.shutdown();
    throw;
  }
  if (lo.onProgress) std::fprintf(stderr, "\n");

  // 8. Stop the node before reporting: shutdown drains what is in flight and signs the lineage
  // log's final checkpoint. With the console it stays up until a signal (holdForConsole).
  if (!a.console) node.shutdown();
  const uint64_t recorded = node.lineageSize();
  auto holdForConsole = [&] {
    if (!a.console) return;
    notes << "console still up at " << consoleUrl << " with the node; press Ctrl-C (SIGINT) or send SIGTERM to stop"
          << std::endl;
    int sig = 0;
    while (sigwait(&signals, &sig) != 0) {
    }
    notes << "govmesh demo: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": stopping the node" << std::endl;
    node.shutdown();
  };

  // 7. The report.
  bool ok = report.tamperedAllowed == 0 && report.mismatchesVsOffline == 0 && report.failedCalls == 0 && report.requests > 0;
  nlohmann::json j = report.toJson();
  j["demo"] = {{"node", address},
               {"bundle_revision", world.bundle.revision},
               {"bundle_digest", digest},
               {"kept", dir.temporary() ? nlohmann::json(nullptr) : nlohmann::json(paths.dir.string())},
               {"lineage_records", recorded},
               {"ok", ok}};
  if (a.json) {
    std::cout << j.dump() << std::endl;
    holdForConsole();
    return ok ? 0 : 2;
  }
  printLoadSummary(report);  // the summary `govmesh loadgen` prints, so the two read alike
  std::cout << j.dump() << "\n";
  if (a.console)
    std::cout << "lineage: " << recorded << " decisions recorded; the final checkpoint is signed when the node stops\n";
  else
    std::cout << "lineage: " << recorded << " decisions recorded, final checkpoint signed by the node key\n";
  if (dir.temporary()) {
    std::cout << "keys, bundle and lineage log are in a temporary directory, removed " << (a.console ? "when the node stops" : "now")
              << " (--keep DIR keeps them)\n";
  } else {
    std::cout << "kept in " << paths.dir.string() << ": authority.pub, authority.key, node.pub, node.key, keys/, bundles/"
              << paths.bundle.filename().string() << ", lineage/, policy/, workloads.json\n"
              << "  verify:  govmesh verify-bundle --trust " << paths.authorityPub.string() << " " << paths.bundle.string()
              << "\n"
              << "  lineage: govmesh replay --log " << paths.lineage.string() << " --bundles " << (paths.dir / "bundles").string()
              << " --node-key " << paths.nodePub.string() << " --trust " << paths.authorityPub.string() << "\n"
              << "           govmesh prove --log " << paths.lineage.string() << " --seq 1 --out proof.json && govmesh verify-proof"
              << " --proof proof.json --node-key " << paths.nodePub.string() << "\n"
              << "  rerun:   govmesh serve --bundle " << paths.bundle.string() << " --trust " << paths.authorityPub.string()
              << "  and  govmesh loadgen --connect 127.0.0.1:7878 --keys " << paths.dir.string()
              << " --rate 20000 --check\n";
  }
  holdForConsole();
  std::cout << "node stopped. "
            << (ok ? "OK: no tampered request was allowed, every honest decision matched the offline evaluation\n"
                   : "FAILED: see tampered_allowed, mismatches_vs_offline and failed_calls above\n");
  return ok ? 0 : 2;
}

}  // namespace

void addDemo(CLI::App& app, int& exitCode) {
  auto a = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run the example governance world: keys, policies, a signed bundle, a node on loopback, a checked load");
  cmd->add_option("--seconds", a->seconds, "How long to drive the load")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--rate", a->rate, "Signed requests per second")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--batch", a->batch, "Requests per call")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--bad-fraction", a->badFraction, "Share of tampered or replayed requests")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print only the JSON report (one object)");
  cmd->add_option("--keep", a->keep, "Keep keys, bundle, workloads and the lineage log in this directory (created if needed)");
  auto* console = cmd->add_option("--console", a->console,
                                  std::string("Also serve the web console on host:port (default ") + kDefaultConsole +
                                      "; port 0: any free one) and keep the node up after the report until Ctrl-C")
                      ->expected(0, 1);
  cmd->callback([a, console, &exitCode] {
    if (console->count() > 0 && !a->console) a->console = std::string();  // given without a value
    exitCode = runDemo(*a);
  });
}

}  // namespace govmesh::cli
