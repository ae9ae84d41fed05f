// The mesh (issue 8) against real etcd processes (server/etcd_cluster.h): bundles chunked into
// etcd and read back (server/mesh_store.h), a node's sync and its freshness lease
// (server/mesh_node.h), and the whole multi-node scenario of `govmesh mesh-demo`
// (server/mesh_demo.h: three members, three nodes, tamper, partition, leader kill, quorum loss).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"
#include "engine/sync_lease.h"
#include "engine/wall_clock.h"
#include "server/client.h"
#include "server/etcd_client.h"
#include "server/etcd_cluster.h"
#include "server/mesh_demo.h"
#include "server/mesh_node.h"
#include "server/mesh_store.h"
#include "server/service.h"

using namespace govmesh;
using namespace std::chrono_literals;

namespace {

const crypto::Ed25519KeyPair& authority() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}

// A signed bundle of `revision` whose policy text is padded to about `pad` bytes.
std::string bundle(uint64_t revision, size_t pad = 0, const crypto::Ed25519KeyPair& signer = authority()) {
  engine::BundleSources src;
  src.policyText = "permit(principal, action == Action::\"read\", resource);\n// r" + std::to_string(revision) + "\n";
  for (size_t n = 0; n < pad; n += 64) src.policyText += "// " + std::string(60, 'x') + "\n";
  src.policyFileName = "t.cedar";
  const int64_t now = engine::wallClockMs();
  engine::Bundle b = engine::compileBundle(src, revision, now - 1000, now + 3600 * 1000);
  return engine::signBundle(engine::writeUnsignedBundle(b), signer.privatePem, "t.bundle", "a.key");
}

etcd::ClusterOptions oneMember(int64_t maxRequestBytes = 0) {
  etcd::ClusterOptions o;
  o.members = 1;
  o.maxRequestBytes = maxRequestBytes;
  return o;
}

std::unique_ptr<etcd::Client> clientFor(const etcd::LocalCluster& c) {
  etcd::ClientOptions o;
  o.endpoints = c.clientUrls();
  return std::make_unique<etcd::Client>(o);
}

// A decision service with a sync lease, and its mesh node.
struct MeshedService {
  std::shared_ptr<engine::SyncLease> lease = std::make_shared<engine::SyncLease>();
  std::unique_ptr<server::DecisionService> service;
  std::unique_ptr<mesh::MeshNode> node;

  MeshedService(const etcd::LocalCluster& c, int64_t syncTimeoutMs = 1500, int64_t watchLag = 0) {
    server::ServiceOptions so;
    so.listen = "127.0.0.1:0";
    so.trusted = {authority().publicKey};
    so.syncLease = lease;
    service = std::make_unique<server::DecisionService>(std::move(so));
    service->start();
    mesh::MeshNodeOptions mo;
    mo.endpoints = c.clientUrls();
    mo.syncTimeoutMs = syncTimeoutMs;
    mo.watchLagForTest = watchLag;
    node = std::make_unique<mesh::MeshNode>(std::move(mo), *service, lease);
    node->start();
  }
  ~MeshedService() {
    node->stop();
    service->shutdown();
  }
};

template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

}  // namespace

TEST_CASE("mesh store: the pointer's JSON round-trips and bad pointers are refused naming the field") {
  mesh::ActivePointer p{7, std::string(64, 'a'), 1000, 3, std::string(64, 'b')};
  const mesh::ActivePointer q = mesh::decodePointer(mesh::encodePointer(p));
  CHECK(q.revision == 7);
  CHECK(q.digestHex == p.digestHex);
  CHECK(q.chunks == 3);
  CHECK_THROWS_WITH_AS(mesh::decodePointer("[]"), doctest::Contains("not a JSON object"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(mesh::decodePointer(R"({"revision":1,"digest":"zz","size":1,"chunks":1,"sha256":"00"})"),
                       doctest::Contains("\"digest\""), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      mesh::decodePointer(R"({"revision":1,"digest":")" + std::string(64, 'a') + R"(","size":10,"chunks":0,"sha256":")" +
                          std::string(64, 'a') + "\"}"),
      doctest::Contains("not a bundle"), std::invalid_argument);
  CHECK(mesh::chunkKey("/p", 5, "ab", 2) == "/p/bundles/00000000000000000005/ab/000002");
}

TEST_CASE("mesh store: a bundle over etcd's request limit is chunked, reassembled and digest-checked") {
  etcd::LocalCluster cluster(oneMember(65536));
  auto client = clientFor(cluster);
  mesh::PublishOptions po;
  po.maxRequestBytes = 65536;
  const std::string big = bundle(1, 200000);
  REQUIRE(big.size() > 3 * 65536);
  const mesh::PublishResult r = mesh::publishBundle(*client, big, po);
  CHECK(r.chunks >= 4);
  CHECK(r.pointer.revision == 1);
  std::optional<mesh::FetchedBundle> f = mesh::fetchActive(*client, po.prefix);
  REQUIRE(f);
  CHECK(f->bytes == big);
  CHECK(f->pointerModRevision == r.etcdRevision);

  SUBCASE("the same revision again is refused") {
    CHECK_THROWS_WITH_AS(mesh::publishBundle(*client, big, po), doctest::Contains("not newer"), std::invalid_argument);
  }
  SUBCASE("a missing chunk is found") {
    client->deletePrefix(mesh::chunkKey(po.prefix, 1, r.pointer.fileSha256, 2));
    CHECK_THROWS_WITH_AS(mesh::fetchActive(*client, po.prefix), doctest::Contains("chunk"), std::invalid_argument);
  }
  SUBCASE("an altered chunk is found") {
    std::string chunk = client->get(mesh::chunkKey(po.prefix, 1, r.pointer.fileSha256, 1)).kvs.at(0).value;
    chunk[100] ^= 1;
    client->put(mesh::chunkKey(po.prefix, 1, r.pointer.fileSha256, 1), chunk);
    CHECK_THROWS_WITH_AS(mesh::fetchActive(*client, po.prefix), doctest::Contains("SHA-256"), std::invalid_argument);
  }
  SUBCASE("not a bundle, or altered after signing: refused before anything is written") {
    CHECK_THROWS_AS(mesh::publishBundle(*client, "hello", po), std::invalid_argument);
    std::string altered = bundle(2);
    altered[altered.size() / 2] ^= 1;
    CHECK_THROWS_AS(mesh::publishBundle(*client, altered, po), std::invalid_argument);
    CHECK(mesh::fetchActive(*client, po.prefix)->pointer.revision == 1);
  }
  SUBCASE("old revisions' chunks are deleted in the pointer's transaction") {
    po.keepRevisions = 1;
    for (uint64_t rev = 2; rev <= 4; ++rev) (void)mesh::publishBundle(*client, bundle(rev), po);
    CHECK(client->getPrefix(mesh::revisionPrefix(po.prefix, 1)).kvs.empty());
    CHECK(client->getPrefix(mesh::revisionPrefix(po.prefix, 2)).kvs.empty());
    CHECK_FALSE(client->getPrefix(mesh::revisionPrefix(po.prefix, 3)).kvs.empty());
    CHECK(mesh::fetchActive(*client, po.prefix)->pointer.revision == 4);
  }
}

TEST_CASE("mesh node: follows publishes, refuses a bundle from an untrusted signer, records the etcd revision") {
  etcd::LocalCluster cluster(oneMember());
  auto client = clientFor(cluster);
  mesh::PublishOptions po;
  MeshedService m(cluster);
  // Nothing published: no bundle, no lease.
  std::this_thread::sleep_for(300ms);
  CHECK(m.service->bundles().state() == engine::BundleState::kNoBundle);

  const mesh::PublishResult r1 = mesh::publishBundle(*client, bundle(1), po);
  REQUIRE(m.node->waitForRevision(1, 5000));
  CHECK(m.service->bundles().state() == engine::BundleState::kFresh);
  CHECK(m.service->bundles().current()->etcdRevision == static_cast<uint64_t>(r1.etcdRevision));
  CHECK(m.node->status().activeEtcdRevision == r1.etcdRevision);

  const crypto::Ed25519KeyPair mallory = crypto::generateEd25519();
  (void)mesh::publishBundle(*client, bundle(2, 0, mallory), po);
  CHECK(eventually([&] { return m.node->status().refusals >= 1; }));
  CHECK(m.service->bundles().revision() == 1);
  CHECK(m.node->status().lastRefusal.find("trusted") != std::string::npos);
  // It keeps serving the verified revision: the pointer is known, only its bundle was refused.
  std::this_thread::sleep_for(2000ms);
  CHECK(m.service->bundles().state() == engine::BundleState::kFresh);

  (void)mesh::publishBundle(*client, bundle(3), po);
  CHECK(m.node->waitForRevision(3, 5000));

  // A mesh node takes bundles only from etcd: one pushed over RPC would never have been published.
  auto rpc = server::DecisionClient::connect("127.0.0.1:" + std::to_string(m.service->port()));
  const server::BundleLoadResult pushed = rpc->loadBundle(bundle(4));
  CHECK_FALSE(pushed.ok);
  CHECK(pushed.error.find("mesh") != std::string::npos);
  CHECK(m.service->bundles().revision() == 3);
}

TEST_CASE("mesh node: a pointer whose chunks are missing is refused, and the node keeps serving its bundle") {
  etcd::LocalCluster cluster(oneMember());
  auto client = clientFor(cluster);
  mesh::PublishOptions po;
  // Leftovers of a publish of revision 2 that died after its chunk writes: another file.
  client->put(mesh::chunkKey(po.prefix, 2, std::string(64, 'e'), 0), "leftover");
  (void)mesh::publishBundle(*client, bundle(1), po);
  MeshedService m(cluster, 1000);
  REQUIRE(m.node->waitForRevision(1, 5000));
  // Revision 2 proper: its chunks are its own, whatever else lies under the revision.
  (void)mesh::publishBundle(*client, bundle(2), po);
  REQUIRE(m.node->waitForRevision(2, 5000));
  // A pointer to revision 3 whose chunk was never written. (Publishing it and deleting the chunk
  // afterwards would race the node, which may read the complete revision in between.)
  const std::string three = bundle(3);
  mesh::ActivePointer p3;
  p3.revision = 3;
  p3.digestHex = crypto::toHex(engine::readEnvelope(three, "b3").digest);
  p3.size = three.size();
  p3.chunks = 1;
  p3.fileSha256 = crypto::toHex(crypto::sha256(three));
  client->put(mesh::pointerKey(po.prefix), mesh::encodePointer(p3));
  CHECK(eventually([&] { return m.node->status().refusals >= 1; }));
  // Still serving revision 2 well past the sync timeout: etcd confirms what is published.
  std::this_thread::sleep_for(2000ms);
  CHECK(m.service->bundles().revision() == 2);
  CHECK(m.service->bundles().state() == engine::BundleState::kFresh);
  CHECK(m.node->status().lastRefusal.find("chunk") != std::string::npos);
}

TEST_CASE("mesh node: a compacted watch revision leads to a re-read, not a gap") {
  etcd::LocalCluster cluster(oneMember());
  auto client = clientFor(cluster);
  mesh::PublishOptions po;
  (void)mesh::publishBundle(*client, bundle(1), po);
  for (int i = 0; i < 20; ++i) client->put("/other/" + std::to_string(i), "x");
  const int64_t head = client->put("/other/last", "x");
  client->compact(head);
  // The node's first watch starts 10 revisions back: compacted.
  MeshedService m(cluster, 1500, 10);
  REQUIRE(m.node->waitForRevision(1, 5000));
  CHECK(eventually([&] { return m.node->status().rereads >= 1; }));
  (void)mesh::publishBundle(*client, bundle(2), po);
  CHECK(m.node->waitForRevision(2, 5000));
  CHECK(m.service->bundles().state() == engine::BundleState::kFresh);
}

TEST_CASE("mesh node: etcd gone means POLICY_STALE after the sync timeout; back means serving after a re-read") {
  etcd::LocalCluster cluster(oneMember());
  auto client = clientFor(cluster);
  (void)mesh::publishBundle(*client, bundle(1), mesh::PublishOptions{});
  MeshedService m(cluster, 1000);
  REQUIRE(m.node->waitForRevision(1, 5000));
  REQUIRE(m.service->bundles().state() == engine::BundleState::kFresh);
  const int64_t killed = engine::wallClockMs();
  cluster.kill(0);
  // Still serving right after (the lease runs from the last confirmation)...
  CHECK(m.lease->valid(killed));
  // ...and stale once the timeout has passed, on its own.
  CHECK(eventually([&] { return m.service->bundles().state() == engine::BundleState::kStale; }, 3000ms));
  CHECK(engine::wallClockMs() - killed <= 1000 + 1000);
  CHECK_FALSE(m.node->status().lastError.empty());
  const uint64_t rereads = m.node->status().rereads;
  cluster.restart(0);
  CHECK(eventually([&] { return m.service->bundles().state() == engine::BundleState::kFresh; }, 10000ms));
  CHECK(m.node->status().rereads > rereads);
}

TEST_CASE("mesh scenario: three etcd members, three nodes (govmesh mesh-demo)" * doctest::timeout(240)) {
  server::MeshDemoOptions o;
  o.publishes = 10;
  const server::MeshDemoReport r = server::runMeshDemo(o);
  INFO(server::meshDemoJson(r).dump(2));
  CHECK(r.nodes == 3);
  CHECK(r.etcdMembers == 3);
  CHECK(r.chunks > 1);
  CHECK(r.enforceMs.size() == 30);
  // The issue's bound (runMeshDemo fails the run above it too; mesh-demo prints the p50/p99).
  CHECK(r.enforceP99 <= 1000);
  CHECK(r.tamperedRefused);
  CHECK(r.partitionedNodeDenied);
  CHECK(r.othersServedDuringPartition);
  CHECK(r.partitionedNodeRecovered);
  CHECK(r.leaderKillSurvived);
  CHECK(r.quorumLossDenied);
  CHECK(r.quorumLossRecovered);
  CHECK(r.allowsUnderUnverified == 0);
  CHECK(r.allowsAudited > 0);
  CHECK(r.staleDenied > 0);
  CHECK(r.passed());
}
