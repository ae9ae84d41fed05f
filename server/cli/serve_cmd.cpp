// `govmesh serve`: runs the decision service (server/service.h) until SIGTERM or SIGINT, and
// re-reads the bundle file on SIGHUP.
//
// Signals are handled synchronously: they are blocked in every thread (the mask is set before the
// service starts its threads, which inherit it) and this thread takes them with sigwait(), so no
// code runs in an async signal handler.
//
// A bundle that is missing, unreadable, untrusted or otherwise refused at start-up is an error
// (exit 1, naming the file and the reason): an operator who names a bundle means to serve it, and
// a node that silently came up answering NO_BUNDLE would look healthy to a process supervisor.
// (The library itself can run without a bundle; see DecisionService.) A bundle refused on SIGHUP
// is logged on stderr and the active one stays.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "compiler/archive.h"
#include "compiler/errors.h"
#include "engine/crypto_ed25519.h"
#include "server/cli/commands.h"
#include "server/mesh_node.h"
#include "server/service.h"

namespace govmesh::cli {

namespace {

struct ServeArgs {
  std::string bundle;
  std::vector<std::string> trust;
  std::string listen = "127.0.0.1:7878";
  std::optional<std::string> metrics;
  size_t batch = 1024;
  int64_t batchWaitUs = 200;
  size_t workers = 1;
  size_t queue = size_t{1} << 16;
  std::string backend;
  bool allowUnsigned = false;
  std::string nodeId;
  std::optional<std::string> lineage;
  std::optional<std::string> nodeKey;
  uint64_t checkpointEvery = 65536;
  uint64_t checkpointMs = 1000;
  std::string etcd;            // comma-separated etcd client URLs: the mesh (issue 8)
  std::string prefix = "/govmesh";
  int64_t syncTimeoutMs = 3000;
  std::optional<std::string> console;  // the web console's address (issue 9)
  std::string consoleTokenFile;
};

// The console token: the file's first line, surrounding whitespace removed. An empty token would
// make the console's admin actions answer anyone who sends "Bearer ", so it is refused.
std::string readConsoleToken(const std::string& path) {
  std::string text = cedar::readFile(path);
  text = text.substr(0, text.find('\n'));
  const size_t first = text.find_first_not_of(" \t\r");
  const size_t last = text.find_last_not_of(" \t\r");
  if (first == std::string::npos) throw cedar::InputError(path, {}, "the console token file is empty");
  return text.substr(first, last - first + 1);
}

std::vector<std::string> splitEndpoints(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = list.find(',', start);
    std::string one = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!one.empty()) out.push_back(std::move(one));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// "host:port" with the port replaced by the bound one (the listen address may say port 0).
std::string boundAddress(const std::string& listen, uint16_t port) {
  size_t colon = listen.rfind(':');
  if (!listen.empty() && listen.front() == '[') {
    const size_t close = listen.find(']');
    colon = close == std::string::npos ? std::string::npos : close + 1;
  } else if (listen.find(':') != colon) {
    return "[" + listen + "]:" + std::to_string(port);  // a bare IPv6 address
  }
  const std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  return host + ":" + std::to_string(port);
}

int runServe(const ServeArgs& a) {
  server::ServiceOptions o;
  o.listen = a.listen;
  o.metricsListen = a.metrics;
  for (const std::string& f : a.trust) o.trusted.push_back(crypto::publicKeyFromPem(cedar::readFile(f), f));
  if (!a.bundle.empty()) o.bundlePath = a.bundle;
  // With --etcd the bundle comes from the mesh: the node verifies each published bundle and
  // denies POLICY_STALE once etcd has not confirmed it for the sync timeout.
  std::shared_ptr<std::atomic<mesh::MeshNode*>> meshRef = std::make_shared<std::atomic<mesh::MeshNode*>>(nullptr);
  if (!a.etcd.empty()) {
    o.syncLease = std::make_shared<engine::SyncLease>();
    o.syncStaleReason = [meshRef] {
      mesh::MeshNode* m = meshRef->load();
      return m ? m->staleReason() : std::string("the mesh sync has not started");
    };
    o.meshStatusJson = [meshRef] {
      mesh::MeshNode* m = meshRef->load();
      return m ? mesh::meshStatusJson(m->status(), m->syncTimeoutMs()) : std::string();
    };
  }
  o.pipeline.maxBatch = a.batch;
  o.pipeline.maxWait = std::chrono::microseconds(a.batchWaitUs);
  o.pipeline.workers = a.workers;
  o.pipeline.queueCapacity = a.queue;
  o.pipeline.backend = a.backend;
  o.nodeId = a.nodeId;
  o.allowUnsigned = a.allowUnsigned;
  if (a.lineage) {
    o.lineageDir = a.lineage;
    o.nodeKeyPem = cedar::readFile(*a.nodeKey);
    o.checkpointEvery = a.checkpointEvery;
    o.checkpointIntervalMs = a.checkpointMs;
  }
  o.consoleListen = a.console;
  if (!a.consoleTokenFile.empty()) o.consoleToken = readConsoleToken(a.consoleTokenFile);
  o.onReload = [](const engine::LoadOutcome& out) {
    if (out.accepted && out.swapped)
      std::cerr << "govmesh serve: SIGHUP: now serving bundle revision " << out.revision << std::endl;
    else if (out.accepted)
      std::cerr << "govmesh serve: SIGHUP: bundle unchanged (revision " << out.revision << ")" << std::endl;
    else
      std::cerr << "govmesh serve: SIGHUP: bundle refused (" << engine::loadRefusalName(out.reason) << "): " << out.message
                << "; keeping the active one" << std::endl;
  };

  // Block the signals before any thread exists, so that every thread inherits the mask and
  // only sigwait() below ever takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::shared_ptr<engine::SyncLease> lease = o.syncLease;
  server::DecisionService service(std::move(o));
  const auto& first = service.initialLoad();
  if (first && !first->accepted)
    throw std::runtime_error("cannot serve bundle (" + std::string(engine::loadRefusalName(first->reason)) + "): " + first->message);
  // Like a refused bundle: a node that cannot record would deny everything LINEAGE_UNAVAILABLE.
  if (auto why = service.lineageError()) throw std::runtime_error(*why);
  std::unique_ptr<mesh::MeshNode> meshNode;
  if (!a.etcd.empty()) {
    mesh::MeshNodeOptions mo;
    mo.endpoints = splitEndpoints(a.etcd);
    mo.prefix = a.prefix;
    mo.syncTimeoutMs = a.syncTimeoutMs;
    mo.onActivated = [](uint64_t revision, int64_t etcdRevision, int64_t) {
      std::cerr << "govmesh serve: etcd: now serving bundle revision " << revision << " (etcd revision " << etcdRevision << ")" << std::endl;
    };
    mo.onRefused = [](uint64_t revision, const std::string& why) {
      std::cerr << "govmesh serve: etcd: published revision " << revision << " refused: " << why << "; keeping the active one" << std::endl;
    };
    meshNode = std::make_unique<mesh::MeshNode>(std::move(mo), service, lease);
    meshRef->store(meshNode.get());
  }
  // On every way out (an exception included), the service stops calling into the mesh node and
  // is shut down before the node is destroyed (it is declared after the service).
  struct StopInOrder {
    server::DecisionService& service;
    std::unique_ptr<mesh::MeshNode>& node;
    std::atomic<mesh::MeshNode*>& ref;
    ~StopInOrder() {
      if (node) node->stop();
      service.shutdown();
      ref.store(nullptr);
    }
  } stopInOrder{service, meshNode, *meshRef};
  service.start();
  if (meshNode) {
    meshNode->start();
    // Give the first read a moment, so that the line below names the revision when etcd has one;
    // the node serves (or denies NO_BUNDLE) either way.
    (void)meshNode->waitForRevision(1, a.syncTimeoutMs);
  }
  std::cout << "listening on " << boundAddress(a.listen, service.port()) << " (metrics "
            << (a.metrics ? boundAddress(*a.metrics, service.metricsPort()) : std::string("off")) << "), bundle revision "
            << service.bundles().revision();
  if (a.lineage) std::cout << ", lineage " << *a.lineage << " (" << service.lineageSize() << " records)";
  std::cout << std::endl;
  if (a.console) std::cout << "console: http://" << boundAddress(*a.console, service.consolePort()) << "/" << std::endl;

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      service.requestReload();
      continue;
    }
    std::cerr << "govmesh serve: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ": draining" << std::endl;
    break;
  }
  if (meshNode) {
    meshNode->stop();
    meshRef->store(nullptr);
  }
  service.shutdown();
  const engine::PipelineCounters c = service.pipeline().counters();
  std::cerr << "govmesh serve: stopped after " << (c.allowed + c.denied) << " decisions (" << c.allowed << " allowed)";
  if (a.lineage) std::cerr << "; lineage " << *a.lineage << " holds " << service.lineageSize() << " records";
  std::cerr << std::endl;
  return 0;
}

}  // namespace

void addServe(CLI::App& app, int& exitCode) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Run the decision service: Cap'n Proto RPC, /metrics /healthz /readyz; SIGHUP reloads the bundle, SIGTERM drains");
  auto* bundle = cmd->add_option("--bundle", a->bundle, "Signed policy bundle file (re-read on SIGHUP)");
  auto* etcd = cmd->add_option("--etcd", a->etcd,
                               "Join the mesh: etcd client URLs, comma-separated; the bundle is the one published there (govmesh publish)");
  bundle->excludes(etcd);
  cmd->add_option("--prefix", a->prefix, "The mesh's etcd key prefix")->capture_default_str()->needs(etcd);
  cmd->add_option("--sync-timeout-ms", a->syncTimeoutMs, "Deny POLICY_STALE once etcd has not confirmed the bundle for this long")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->needs(etcd);
  cmd->add_option("--trust", a->trust, "Trusted authority public key (PEM); repeatable")->required();
  cmd->add_option("--listen", a->listen, "RPC address host:port (port 0: any free port)")->capture_default_str();
  cmd->add_option("--metrics", a->metrics, "HTTP address host:port for /metrics, /healthz, /readyz");
  cmd->add_option("--batch", a->batch, "Flush a micro-batch at this many requests (B)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch-wait-us", a->batchWaitUs, "Flush a micro-batch this long after its first request (T, µs)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--workers", a->workers, "Pipeline worker threads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--queue", a->queue, "Most requests waiting; more are answered OVERLOADED at once")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--backend", a->backend, "Table-evaluation backend (default: the best this machine runs)");
  cmd->add_flag("--allow-unsigned", a->allowUnsigned,
                "Benchmarking: requests with an empty signature skip the Ed25519 check (loopback --listen only)");
  cmd->add_option("--node-id", a->nodeId, "The node's name in status() and in its lineage records");
  auto* lineage = cmd->add_option("--lineage", a->lineage,
                                  "Record every decision in this lineage log directory (fsync per batch, before replying)");
  auto* key = cmd->add_option("--node-key", a->nodeKey, "The node's Ed25519 private key (govmesh keygen) that signs lineage checkpoints");
  lineage->needs(key);
  key->needs(lineage);
  cmd->add_option("--checkpoint-every", a->checkpointEvery, "Sign a lineage checkpoint every N records")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--checkpoint-ms", a->checkpointMs, "...and every T ms (0: only every N and at shutdown)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  auto* console = cmd->add_option("--console", a->console,
                                  "Serve the web console and its JSON API on host:port (docs/console.md); loopback unless a token is given");
  cmd->add_option("--console-token-file", a->consoleTokenFile,
                  "File holding the console's bearer token (admin actions; every API call on a non-loopback --console)")
      ->needs(console);
  cmd->callback([a, &exitCode] {
    if (a->bundle.empty() && a->etcd.empty()) throw CLI::ValidationError("serve", "give --bundle FILE or --etcd URLS");
    exitCode = runServe(*a);
  });
}

}  // namespace govmesh::cli
