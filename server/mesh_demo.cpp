// The mesh scenario (see mesh_demo.h).
#include "server/mesh_demo.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"
#include "engine/lineage.h"
#include "engine/request.h"
#include "engine/sync_lease.h"
#include "engine/wall_clock.h"
#include "server/client.h"
#include "server/etcd_client.h"
#include "server/etcd_cluster.h"
#include "server/mesh_node.h"
#include "server/mesh_store.h"
#include "server/service.h"
#include "server/tcp_proxy.h"

namespace govmesh::server {

namespace {

using Clock = std::chrono::steady_clock;

void sleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Polls `done` every 20 ms until it holds or `timeoutMs` passes.
template <class F>
bool waitUntil(int64_t timeoutMs, F done) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeoutMs);
  while (!done()) {
    if (Clock::now() >= end) return done();
    sleepMs(20);
  }
  return true;
}

// Permits alice's deploys in eu-1 (the request every client sends), forbids anything degraded.
const char* kPolicies =
    "@id(\"deploy-eu\")\n"
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };\n"
    "@id(\"no-degraded\")\n"
    "forbid(principal, action, resource) when { context has trust && context.trust == \"degraded\" };\n";

struct Keys {
  crypto::Ed25519KeyPair authority = crypto::generateEd25519();
  crypto::Ed25519KeyPair alice = crypto::generateEd25519();
};

std::string makeBundle(const Keys& keys, uint64_t revision, size_t padBytes) {
  engine::BundleSources src;
  src.policyText = kPolicies;
  src.policyText += "// revision " + std::to_string(revision) + "\n";
  // Padding: comment lines, so that the bundle is larger than etcd's request limit.
  const std::string line = "// " + std::string(96, 'p') + "\n";
  for (size_t n = 0; n < padBytes; n += line.size()) src.policyText += line;
  src.policyFileName = "mesh.cedar";
  src.keys.push_back({"alice", keys.alice.publicKey, cedar::EntityUid{"Workload", "alice"}, std::nullopt});
  const int64_t now = engine::wallClockMs();
  engine::Bundle b = engine::compileBundle(src, revision, now - 1000, now + 3600 * 1000);
  return engine::signBundle(engine::writeUnsignedBundle(b), keys.authority.privatePem, "mesh.bundle", "authority.key");
}

// One answer a client got.
struct Answer {
  int64_t sentMs = 0, doneMs = 0;
  bool allow = false;
  engine::DenyCode code = engine::DenyCode::kNone;
  bool error = false;
};

// A decision node with its mesh link, its client thread and what it saw.
struct Node {
  std::string id;
  std::filesystem::path dir;
  std::shared_ptr<engine::SyncLease> lease = std::make_shared<engine::SyncLease>();
  std::vector<std::unique_ptr<net::TcpProxy>> proxies;
  std::unique_ptr<DecisionService> service;
  std::unique_ptr<mesh::MeshNode> mesh;

  std::mutex mu;
  std::map<uint64_t, int64_t> activatedAt;  // revision -> clock ms
  std::vector<Answer> answers;
  std::atomic<bool> stopTraffic{false};
  std::thread traffic;

  std::vector<Answer> answersBetween(int64_t fromMs, int64_t toMs) {
    std::lock_guard lock(mu);
    std::vector<Answer> out;
    for (const Answer& a : answers)
      if (a.sentMs >= fromMs && a.sentMs < toMs) out.push_back(a);
    return out;
  }
  /// answersBetween() once every request sent before `toMs` has its answer: the client thread
  /// sends one at a time, so an answer to a request sent at or after `toMs` settles the window.
  /// (A slow answer is not a missing one; on a loaded machine a call can outlast a short window.)
  /// Waits at most 10 s, then returns what there is.
  std::vector<Answer> settledAnswers(int64_t fromMs, int64_t toMs) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (!answers.empty() && answers.back().sentMs >= toMs) break;
      }
      if (stopTraffic.load() || std::chrono::steady_clock::now() >= until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return answersBetween(fromMs, toMs);
  }
};

void runTraffic(Node& n, const Keys& keys, int64_t intervalMs) {
  std::unique_ptr<DecisionClient> client;
  std::mt19937_64 rng(std::random_device{}());
  const std::string address = "127.0.0.1:" + std::to_string(n.service->port());
  while (!n.stopTraffic.load()) {
    engine::SignedRequest r;
    r.principal = {"Workload", "alice"};
    r.action = {"Action", "deploy"};
    r.resource = {"Service", "payments"};
    r.context = cedar::Value::record({{"zone", cedar::Value::string("eu-1")}});
    r.keyId = "alice";
    r.timestampNs = engine::wallClockMs() * 1'000'000;
    for (size_t i = 0; i < r.nonce.size(); i += 8) {
      const uint64_t x = rng();
      std::memcpy(r.nonce.data() + i, &x, std::min<size_t>(8, r.nonce.size() - i));
    }
    engine::signRequest(r, keys.alice.privatePem);
    Answer a;
    a.sentMs = engine::wallClockMs();
    try {
      if (!client) client = DecisionClient::connect(address);
      std::vector<engine::Decision> d = client->authorize({r});
      a.allow = d.at(0).allow;
      a.code = d.at(0).code;
    } catch (const std::exception&) {
      a.error = true;
      client.reset();
    }
    a.doneMs = engine::wallClockMs();
    {
      std::lock_guard lock(n.mu);
      n.answers.push_back(a);
    }
    sleepMs(intervalMs);
  }
}

// "N answers: A allows, D denies (CODE xK, ...), E errors": what a node answered in a window.
std::string answersSummary(const std::vector<Answer>& answers) {
  size_t allows = 0, errors = 0;
  std::map<std::string, size_t> codes;
  for (const Answer& a : answers) {
    if (a.error) ++errors;
    else if (a.allow) ++allows;
    else ++codes[std::string(engine::denyCodeName(a.code))];
  }
  std::string out = std::to_string(answers.size()) + " answers: " + std::to_string(allows) + " allows, " +
                    std::to_string(answers.size() - allows - errors) + " denies";
  if (!codes.empty()) {
    out += " (";
    for (auto it = codes.begin(); it != codes.end(); ++it) out += (it == codes.begin() ? "" : ", ") + it->first + " x" + std::to_string(it->second);
    out += ")";
  }
  return out + ", " + std::to_string(errors) + " errors";
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - (p > 0 ? 1 : 0);
  return v[std::min(i, v.size() - 1)];
}

class Scenario {
 public:
  Scenario(const MeshDemoOptions& o, std::ostream* log) : o_(o), log_(log) {}

  ~Scenario() {
    for (auto& n : nodes_) {
      n->stopTraffic = true;
      if (n->traffic.joinable()) n->traffic.join();
      if (n->mesh) n->mesh->stop();
      if (n->service) n->service->shutdown();
    }
    nodes_.clear();
    cluster_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  MeshDemoReport run() {
    const auto started = Clock::now();
    setUp();
    publishPhase();
    tamperPhase();
    partitionPhase();
    leaderPhase();
    stopTraffic();
    audit();
    r_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return r_;
  }

 private:
  void say(const std::string& line) {
    if (log_) *log_ << "mesh-demo: " << line << std::endl;
  }
  void fail(const std::string& what) {
    r_.failures.push_back(what);
    say("FAILED: " + what);
  }

  void setUp() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "govmesh-mesh-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create a temporary directory: " + std::string(std::strerror(errno)));
    dir_ = tmpl;
    etcd::ClusterOptions co;
    co.members = 3;
    co.dataDir = (dir_ / "etcd").string();
    co.etcdBinary = o_.etcdBinary;
    co.maxRequestBytes = static_cast<int64_t>(o_.maxRequestBytes);
    cluster_ = std::make_unique<etcd::LocalCluster>(co);
    r_.etcdMembers = cluster_->size();
    say("etcd: " + std::to_string(cluster_->size()) + " members up, leader member " + std::to_string(cluster_->leader().value_or(99)));

    etcd::ClientOptions pc;
    pc.endpoints = cluster_->clientUrls();
    pc.requestTimeoutMs = 3000;
    publisher_ = std::make_unique<etcd::Client>(pc);
    publishOptions_.maxRequestBytes = o_.maxRequestBytes;

    const crypto::Ed25519KeyPair nodeKey = crypto::generateEd25519();
    for (size_t i = 0; i < o_.nodes; ++i) {
      auto n = std::make_unique<Node>();
      n->id = "node-" + std::to_string(i);
      n->dir = dir_ / n->id;
      std::filesystem::create_directories(n->dir);
      std::vector<std::string> endpoints;
      const bool partitionable = i + 1 == o_.nodes;
      for (size_t k = 0; k < cluster_->size(); ++k) {
        const size_t m = (i + k) % cluster_->size();  // each node starts on another member
        if (partitionable) {
          const std::string url = cluster_->clientUrl(m);
          const uint16_t port = static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
          n->proxies.push_back(std::make_unique<net::TcpProxy>("127.0.0.1", port));
          endpoints.push_back("http://127.0.0.1:" + std::to_string(n->proxies.back()->port()));
        } else {
          endpoints.push_back(cluster_->clientUrl(m));
        }
      }
      ServiceOptions so;
      so.listen = "127.0.0.1:0";
      so.nodeId = n->id;
      so.trusted = {keys_.authority.publicKey};
      so.lineageDir = (n->dir / "lineage").string();
      so.nodeKeyPem = nodeKey.privatePem;
      so.pipeline.maxBatch = 64;
      so.pipeline.maxWait = std::chrono::microseconds(200);
      so.syncLease = n->lease;
      Node* raw = n.get();
      so.syncStaleReason = [raw] { return raw->mesh ? raw->mesh->staleReason() : std::string(); };
      n->service = std::make_unique<DecisionService>(std::move(so));
      n->service->start();
      mesh::MeshNodeOptions mo;
      mo.endpoints = endpoints;
      mo.syncTimeoutMs = o_.syncTimeoutMs;
      mo.onActivated = [raw](uint64_t revision, int64_t, int64_t atMs) {
        std::lock_guard lock(raw->mu);
        raw->activatedAt.emplace(revision, atMs);
      };
      n->mesh = std::make_unique<mesh::MeshNode>(std::move(mo), *n->service, n->lease);
      n->mesh->start();
      nodes_.push_back(std::move(n));
    }
    r_.nodes = nodes_.size();

    // Revision 1, then the clients.
    publish(1, true);
    for (auto& n : nodes_)
      if (!n->mesh->waitForRevision(1, 10000)) throw std::runtime_error(n->id + " did not activate revision 1: " + n->mesh->staleReason());
    for (auto& n : nodes_) n->traffic = std::thread([this, raw = n.get()] { runTraffic(*raw, keys_, o_.requestIntervalMs); });
    say(std::to_string(nodes_.size()) + " nodes serve revision 1 (bundle " + std::to_string(r_.bundleBytes) + " bytes in " +
        std::to_string(r_.chunks) + " etcd chunks)");
  }

  // Publishes a valid bundle of `revision`; returns the publish start time.
  int64_t publish(uint64_t revision, bool record) {
    const std::string bytes = bundleFor(revision);
    const int64_t t0 = engine::wallClockMs();
    mesh::PublishResult pr = mesh::publishBundle(*publisher_, bytes, publishOptions_);
    if (record) published_.insert({pr.pointer.revision, pr.pointer.digestHex, static_cast<uint64_t>(pr.etcdRevision)});
    r_.bundleBytes = pr.pointer.size;
    r_.chunks = pr.chunks;
    return t0;
  }

  std::string bundleFor(uint64_t revision) {
    auto it = bundles_.find(revision);
    if (it == bundles_.end()) it = bundles_.emplace(revision, makeBundle(keys_, revision, o_.bundlePadBytes)).first;
    return it->second;
  }

  void publishPhase() {
    // Compile every bundle first: publish-to-enforce times the mesh, not the compiler.
    for (uint64_t rev = 2; rev < 2 + o_.publishes; ++rev) (void)bundleFor(rev);
    for (uint64_t rev = 2; rev < 2 + o_.publishes; ++rev) {
      const int64_t t0 = publish(rev, true);
      for (auto& n : nodes_) {
        if (!n->mesh->waitForRevision(rev, 10000)) {
          fail(n->id + " did not enforce revision " + std::to_string(rev) + " within 10 s");
          continue;
        }
        std::lock_guard lock(n->mu);
        r_.enforceMs.push_back(static_cast<double>(n->activatedAt.at(rev) - t0));
      }
      sleepMs(50);
    }
    revision_ = 1 + o_.publishes;
    r_.enforceP50 = percentile(r_.enforceMs, 0.5);
    r_.enforceP99 = percentile(r_.enforceMs, 0.99);
    r_.enforceMax = r_.enforceMs.empty() ? 0 : *std::max_element(r_.enforceMs.begin(), r_.enforceMs.end());
    say("publish -> enforce over " + std::to_string(r_.enforceMs.size()) + " (publish, node) pairs: p50 " + std::to_string(r_.enforceP50) +
        " ms, p99 " + std::to_string(r_.enforceP99) + " ms");
    if (r_.enforceP99 > 1000) fail("publish_to_enforce p99 " + std::to_string(r_.enforceP99) + " ms is over 1 s");
  }

  void tamperPhase() {
    // A correctly signed bundle of the next revision, one content byte flipped after signing,
    // published under a pointer with the signed digest: the envelope passes the store's checks,
    // the authority's digest does not.
    const uint64_t rev = ++revision_;
    std::string bytes = makeBundle(keys_, rev, o_.bundlePadBytes);
    const engine::SignedEnvelope env = engine::readEnvelope(bytes, "tampered");
    const size_t at = bytes.find(env.content.substr(env.content.size() / 2, 64));
    if (at == std::string::npos) throw std::runtime_error("tamper: cannot find the content in the bundle");
    bytes[at] ^= 0x01;
    std::vector<uint64_t> refusalsBefore;
    for (auto& n : nodes_) refusalsBefore.push_back(n->mesh->status().refusals);
    (void)mesh::publishRaw(*publisher_, bytes, rev, crypto::toHex(env.digest), publishOptions_);
    bool all = true;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      Node& n = *nodes_[i];
      const bool refused = waitUntil(5000, [&] { return n.mesh->status().refusals > refusalsBefore[i]; });
      const uint64_t active = n.service->bundles().revision();
      if (!refused || active != revision_ - 1) {
        all = false;
        fail(n.id + " did not refuse the tampered revision " + std::to_string(rev) + " (active " + std::to_string(active) + ")");
      }
    }
    // And they keep serving the revision before it.
    sleepMs(300);
    const int64_t t = engine::wallClockMs();
    sleepMs(300);
    for (auto& n : nodes_) {
      const auto answers = n->settledAnswers(t, engine::wallClockMs());
      if (std::none_of(answers.begin(), answers.end(), [](const Answer& a) { return a.allow; })) {
        all = false;
        fail(n->id + " stopped serving after the tampered bundle: " + answersSummary(answers) + " in 300 ms");
      }
    }
    r_.tamperedRefused = all;
    say(std::string("tampered bundle: ") + (all ? "refused by every node, previous revision kept" : "NOT refused everywhere"));
  }

  void partitionPhase() {
    Node& cut = *nodes_.back();
    const int64_t tCut = engine::wallClockMs();
    for (auto& p : cut.proxies) p->cut();
    say(cut.id + " cut off from etcd");
    // A revision published during the partition reaches the others only.
    const uint64_t rev = ++revision_;
    (void)publish(rev, true);
    bool othersOk = true;
    for (size_t i = 0; i + 1 < nodes_.size(); ++i)
      if (!nodes_[i]->mesh->waitForRevision(rev, 5000)) {
        othersOk = false;
        fail(nodes_[i]->id + " did not take revision " + std::to_string(rev) + " published during the partition");
      }
    sleepMs(std::max<int64_t>(0, tCut + o_.syncTimeoutMs + 1500 - engine::wallClockMs()));
    // After the timeout (plus a batch's slack) the cut node must deny, and deny stale.
    const int64_t deadline = tCut + o_.syncTimeoutMs + 100;
    const auto after = cut.settledAnswers(deadline, engine::wallClockMs());
    const size_t allows = static_cast<size_t>(std::count_if(after.begin(), after.end(), [](const Answer& a) { return a.allow; }));
    const size_t stale = static_cast<size_t>(
        std::count_if(after.begin(), after.end(), [](const Answer& a) { return a.code == engine::DenyCode::kPolicyStale; }));
    r_.partitionedNodeDenied = allows == 0 && stale > 0 && cut.service->bundles().state() == engine::BundleState::kStale;
    if (!r_.partitionedNodeDenied)
      fail(cut.id + " partitioned: " + std::to_string(allows) + " allows and " + std::to_string(stale) + " stale denies after its sync timeout");
    r_.allowsUnderUnverified += allows;
    for (size_t i = 0; i + 1 < nodes_.size(); ++i) {
      const auto a = nodes_[i]->settledAnswers(tCut, engine::wallClockMs());
      if (a.empty() || std::any_of(a.begin(), a.end(), [](const Answer& x) { return !x.allow; })) {
        othersOk = false;
        fail(nodes_[i]->id + " did not keep serving while " + cut.id + " was partitioned");
      }
    }
    r_.othersServedDuringPartition = othersOk;
    for (auto& p : cut.proxies) p->heal();
    r_.partitionedNodeRecovered =
        cut.mesh->waitForRevision(rev, 10000) &&
        waitUntil(10000, [&] { return cut.service->bundles().state() == engine::BundleState::kFresh; });
    if (!r_.partitionedNodeRecovered) fail(cut.id + " did not serve revision " + std::to_string(rev) + " again after the partition healed");
    say(cut.id + (r_.partitionedNodeDenied ? " denied POLICY_STALE alone" : " did NOT deny") + ", healed: " +
        (r_.partitionedNodeRecovered ? "caught up" : "did NOT catch up"));
  }

  void leaderPhase() {
    const std::optional<size_t> leader = cluster_->leader();
    if (!leader) {
      fail("no etcd leader before the leader kill");
      return;
    }
    const int64_t tKill = engine::wallClockMs();
    cluster_->kill(*leader);
    say("etcd leader (member " + std::to_string(*leader) + ") killed");
    const std::optional<size_t> next = cluster_->waitForLeader(std::chrono::milliseconds(10000), *leader);
    const uint64_t rev = ++revision_;
    bool survived = next.has_value();
    if (!next) fail("no new etcd leader within 10 s");
    if (survived) {
      (void)publish(rev, true);
      for (auto& n : nodes_)
        if (!n->mesh->waitForRevision(rev, 10000)) {
          survived = false;
          fail(n->id + " did not take revision " + std::to_string(rev) + " after the leader kill");
        }
    }
    sleepMs(std::max<int64_t>(0, tKill + o_.syncTimeoutMs + 500 - engine::wallClockMs()));
    for (auto& n : nodes_) {
      const auto a = n->settledAnswers(tKill, engine::wallClockMs());
      const size_t denied = static_cast<size_t>(std::count_if(a.begin(), a.end(), [](const Answer& x) { return !x.allow; }));
      if (a.empty() || denied > 0) {
        survived = false;
        fail(n->id + ": " + std::to_string(denied) + " of " + std::to_string(a.size()) + " requests denied after the leader kill");
      }
    }
    r_.leaderKillSurvived = survived;
    say(std::string("leader kill: ") + (survived ? "every node kept serving and took the next revision" : "NOT survived"));

    // A second member down: no quorum, so no node can be sure any more.
    size_t second = (*leader + 1) % cluster_->size();
    const int64_t tLoss = engine::wallClockMs();
    cluster_->kill(second);
    say("a second etcd member (" + std::to_string(second) + ") killed: no quorum");
    sleepMs(o_.syncTimeoutMs + 1500);
    const int64_t deadline = tLoss + o_.syncTimeoutMs + 100;
    bool denied = true;
    for (auto& n : nodes_) {
      const auto a = n->settledAnswers(deadline, engine::wallClockMs());
      const size_t allows = static_cast<size_t>(std::count_if(a.begin(), a.end(), [](const Answer& x) { return x.allow; }));
      r_.allowsUnderUnverified += allows;
      if (a.empty() || allows > 0 || n->service->bundles().state() != engine::BundleState::kStale) {
        denied = false;
        fail(n->id + ": " + std::to_string(allows) + " allows after losing the etcd quorum");
      }
    }
    r_.quorumLossDenied = denied;
    cluster_->restart(*leader);
    cluster_->restart(second);
    bool back = cluster_->waitForLeader(std::chrono::milliseconds(15000)).has_value();
    for (auto& n : nodes_)
      back = back && waitUntil(15000, [&] { return n->service->bundles().state() == engine::BundleState::kFresh; });
    r_.quorumLossRecovered = back;
    if (!back) fail("the nodes did not serve again after the etcd members came back");
    say(std::string("quorum loss: ") + (denied ? "every node denied POLICY_STALE" : "NOT denied everywhere") + "; members back: " +
        (back ? "every node serves again" : "NOT recovered"));
  }

  void stopTraffic() {
    for (auto& n : nodes_) {
      n->stopTraffic = true;
      if (n->traffic.joinable()) n->traffic.join();
      std::lock_guard lock(n->mu);
      for (const Answer& a : n->answers) {
        ++r_.requests;
        r_.allowed += a.allow;
        r_.staleDenied += a.code == engine::DenyCode::kPolicyStale;
        r_.callErrors += a.error;
      }
    }
    for (auto& n : nodes_) {
      n->mesh->stop();
      n->service->shutdown();
    }
  }

  void audit() {
    for (auto& n : nodes_) {
      lineage::LogOptions lo;
      lo.readOnly = true;
      lineage::LogStatus st;
      std::string err;
      auto log = lineage::Log::open((n->dir / "lineage").string(), lo, &st, &err);
      if (!log) {
        fail(n->id + ": cannot read its lineage log: " + err);
        continue;
      }
      const lineage::LogStatus read = log->forEachBatch(1, 4096, [&](uint64_t, std::span<const std::string> batch) {
        for (const std::string& raw : batch) {
          ++r_.recordsAudited;
          std::optional<lineage::Record> rec = lineage::decodeRecord(raw);
          if (!rec) {
            fail(n->id + ": a lineage record does not decode");
            continue;
          }
          if (!rec->allow) continue;
          ++r_.allowsAudited;
          const std::string digest = crypto::toHex(rec->bundleDigest);
          if (!rec->etcdRevision || !published_.count({rec->bundleRevision, digest, *rec->etcdRevision})) ++r_.allowsUnderUnverified;
        }
        return true;
      });
      if (read != lineage::LogStatus::kOk) fail(n->id + ": reading its lineage log failed");
    }
    if (r_.allowsUnderUnverified != 0)
      fail(std::to_string(r_.allowsUnderUnverified) + " allows under a revision that was not published and verified");
    say("audit: " + std::to_string(r_.allowsAudited) + " allows in " + std::to_string(r_.recordsAudited) +
        " lineage records, each under a published, verified revision: " + (r_.allowsUnderUnverified == 0 ? "yes" : "NO"));
  }

  MeshDemoOptions o_;
  std::ostream* log_;
  MeshDemoReport r_;
  std::filesystem::path dir_;
  Keys keys_;
  std::unique_ptr<etcd::LocalCluster> cluster_;
  std::unique_ptr<etcd::Client> publisher_;
  mesh::PublishOptions publishOptions_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<uint64_t, std::string> bundles_;
  std::set<std::tuple<uint64_t, std::string, uint64_t>> published_;  // (revision, digest, etcd revision)
  uint64_t revision_ = 1;
};

}  // namespace

MeshDemoReport runMeshDemo(const MeshDemoOptions& options, std::ostream* log) {
  if (options.nodes < 2) throw std::invalid_argument("mesh-demo needs at least 2 nodes");
  Scenario s(options, log);
  return s.run();
}

nlohmann::json meshDemoJson(const MeshDemoReport& r) {
  return {
      {"nodes", r.nodes},
      {"etcd_members", r.etcdMembers},
      {"bundle_bytes", r.bundleBytes},
      {"bundle_chunks", r.chunks},
      {"publish_to_enforce_ms", {{"p50", r.enforceP50}, {"p99", r.enforceP99}, {"max", r.enforceMax}, {"samples", r.enforceMs.size()}}},
      {"tampered_bundle_refused", r.tamperedRefused},
      {"partitioned_node_denied", r.partitionedNodeDenied},
      {"others_served_during_partition", r.othersServedDuringPartition},
      {"partitioned_node_recovered", r.partitionedNodeRecovered},
      {"leader_kill_survived", r.leaderKillSurvived},
      {"quorum_loss_denied", r.quorumLossDenied},
      {"quorum_loss_recovered", r.quorumLossRecovered},
      {"allows_under_unverified_revision", r.allowsUnderUnverified},
      {"lineage_records_audited", r.recordsAudited},
      {"lineage_allows_audited", r.allowsAudited},
      {"requests", r.requests},
      {"allowed", r.allowed},
      {"stale_denied", r.staleDenied},
      {"call_errors", r.callErrors},
      {"seconds", r.seconds},
      {"passed", r.passed()},
      {"failures", r.failures},
  };
}

}  // namespace govmesh::server
