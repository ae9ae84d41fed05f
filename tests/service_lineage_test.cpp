// The decision service with its lineage log (issue 7 item 5, server/lineage_recorder.h): decisions
// over RPC carry increasing lineageSeq, the log holds exactly those records, checkpoints are
// signed by the node key (periodically and at shutdown), and a log that cannot be written makes
// its batch LINEAGE_UNAVAILABLE (never an allow) while the service keeps running.
#include <errno.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/crypto_ed25519.h"
#include "engine/lineage.h"
#include "tests/support/service_fixture.h"
#include "engine/replay.h"
#include "server/client.h"
#include "server/lineage_recorder.h"
#include "server/service.h"

using namespace govmesh;
using namespace govmesh::engine;
using namespace std::chrono_literals;
using server::DecisionService;
using server::ServiceOptions;

namespace {

using namespace govmesh::testing;

const std::string kOrigin = "govmesh/lineage/lineage-node";

// policy0 allows alice to deploy in eu-1, policy1 forbids anything on degraded trust.
const char* kPolicies =
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };\n"
    "forbid(principal, action, resource) when { context has trust && context.trust == \"degraded\" };\n";

std::string bundleFile(uint64_t revision = 1) { return signedAliceBundle(kPolicies, revision); }

SignedRequest requestAtStart(const std::string& action, cedar::Value context) { return aliceRequest(action, std::move(context), kStart); }
SignedRequest deployEuAtStart() { return requestAtStart("deploy", euContext()); }
SignedRequest deployDegradedAtStart() { return requestAtStart("deploy", degradedContext()); }
SignedRequest badSignatureAtStart() {
  SignedRequest r = deployEuAtStart();
  r.signature[5] ^= 0x20;
  return r;
}

ServiceOptions lineageOptions(const TempDir& dir) {
  ServiceOptions o;
  o.listen = "127.0.0.1:0";
  o.trusted = {authorityKey().publicKey};
  o.nodeId = "lineage-node";
  o.pipeline.allowGpu = false;
  o.pipeline.maxWait = 100us;
  o.pipeline.admission.clock = [] { return kStart; };
  o.lineageDir = dir.log();
  o.nodeKeyPem = nodeKey().privatePem;
  o.checkpointEvery = 1'000'000;  // only the timer (when on) and shutdown sign
  o.checkpointIntervalMs = 0;
  return o;
}

lineage::NoteVerifier nodeVerifier() { return *lineage::NoteVerifier::fromKey(kOrigin, nodeKey().publicKey); }

std::unique_ptr<lineage::Log> openReadOnly(const std::string& dir) {
  lineage::LogOptions lo;
  lo.readOnly = true;
  lo.verifier = nodeVerifier();
  lineage::LogStatus st = lineage::LogStatus::kOk;
  std::string err;
  auto log = lineage::Log::open(dir, std::move(lo), &st, &err);
  INFO("open " << dir << ": " << lineage::logStatusName(st) << " " << err);
  REQUIRE(log != nullptr);
  return log;
}

std::vector<lineage::Record> readAll(const lineage::Log& log) {
  std::vector<std::string> raw;
  REQUIRE(log.readRecords(1, log.size(), raw) == lineage::LogStatus::kOk);
  std::vector<lineage::Record> out;
  for (const std::string& b : raw) {
    auto r = lineage::decodeRecord(b);
    REQUIRE(r.has_value());
    out.push_back(*r);
  }
  return out;
}

std::unique_ptr<server::DecisionClient> connect(const DecisionService& s) {
  return server::DecisionClient::connect("127.0.0.1:" + std::to_string(s.port()));
}

}  // namespace

TEST_CASE("service lineage: RPC decisions carry increasing lineageSeq; the log holds exactly them; shutdown signs") {
  TempDir dir;
  std::vector<SignedRequest> sent;
  std::vector<Decision> got;
  std::string digest;
  {
    DecisionService svc(lineageOptions(dir));
    REQUIRE(svc.offerBundle(bundleFile()).accepted);
    digest = svc.bundles().current()->digest;
    CHECK_FALSE(svc.lineageError().has_value());
    svc.start();
    auto client = connect(svc);
    const std::vector<std::vector<SignedRequest>> calls = {
        {deployEuAtStart()},
        {deployEuAtStart(), deployDegradedAtStart(), requestAtStart("read", cedar::Value::record({}))},
        {badSignatureAtStart(), deployEuAtStart()},
    };
    for (const auto& call : calls) {
      std::vector<Decision> ds = client->authorize(call);
      REQUIRE(ds.size() == call.size());
      sent.insert(sent.end(), call.begin(), call.end());
      got.insert(got.end(), ds.begin(), ds.end());
    }
    // Sequential calls from one client: seqs are 1..n in order.
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].lineageSeq == i + 1);
    CHECK(got[0].allow);
    CHECK_FALSE(got[2].allow);  // forbidden by policy1
    CHECK(got[4].code == DenyCode::kBadSignature);
    CHECK(svc.lineageSize() == sent.size());
    svc.shutdown();
  }
  auto log = openReadOnly(dir.log());
  REQUIRE(log->size() == sent.size());
  std::vector<lineage::Record> recs = readAll(*log);
  for (size_t i = 0; i < recs.size(); ++i) {
    CAPTURE(i);
    const lineage::Record& r = recs[i];
    const SignedRequest& q = sent[i];
    CHECK(r.seq == got[i].lineageSeq);
    CHECK(r.nodeId == "lineage-node");
    CHECK(r.principal == lineage::EntityRef{q.principal.type, q.principal.id});
    CHECK(r.action == lineage::EntityRef{q.action.type, q.action.id});
    CHECK(r.resource == lineage::EntityRef{q.resource.type, q.resource.id});
    CHECK(r.allow == got[i].allow);
    CHECK(r.denyCode == got[i].code);
    CHECK(r.reasons == got[i].reasons);
    CHECK(r.errors == got[i].errors);
    CHECK(r.timestampNs == q.timestampNs);
    CHECK(r.signature == q.signature);
    CHECK(r.bundleRevision == 1);
    CHECK(std::string(r.bundleDigest.begin(), r.bundleDigest.end()) == digest);
    CHECK(r.requestDigest == crypto::sha256(canonicalSigningBytes(q)));
    // The evidence replay needs: the signing bytes rebuild exactly, the context hashes to its digest.
    REQUIRE(r.evidence.has_value());
    CHECK(r.evidence->keyId == "alice");
    CHECK(r.evidence->nonce == q.nonce);
    CHECK(crypto::sha256(r.evidence->context) == r.contextDigest);
    std::string rebuilt;
    REQUIRE(rebuildSigningBytes(r, rebuilt));
    CHECK(rebuilt == canonicalSigningBytes(q));
    // toRecord is the one mapping: re-deriving the record from the request gives the same fields.
    lineage::Record again = server::toRecord(q, got[i], nullptr, {}, "lineage-node");
    CHECK(again.contextDigest == r.contextDigest);
    CHECK(again.evidence == r.evidence);
  }
  // The final checkpoint (shutdown) covers every record and is signed by the node key.
  auto cp = log->latestCheckpoint();
  REQUIRE(cp.has_value());
  lineage::NoteStatus ns = lineage::NoteStatus::kMalformed;
  auto opened = lineage::openCheckpoint(cp->note, nodeVerifier(), &ns);
  REQUIRE(ns == lineage::NoteStatus::kOk);
  CHECK(opened->origin == kOrigin);
  CHECK(opened->size == sent.size());
  CHECK(opened->root == *log->root(sent.size()));
}

TEST_CASE("service lineage: the timer signs checkpoints while serving; a restart continues the log") {
  TempDir dir;
  ServiceOptions o = lineageOptions(dir);
  o.checkpointIntervalMs = 20;
  {
    DecisionService svc(o);
    REQUIRE(svc.offerBundle(bundleFile()).accepted);
    svc.start();
    auto client = connect(svc);
    CHECK(client->authorize({deployEuAtStart(), deployEuAtStart()}).at(1).lineageSeq == 2);
    // A checkpoint of size 2 appears within a few intervals, without shutdown.
    bool signedOne = false;
    for (int i = 0; i < 200 && !signedOne; ++i) {
      std::this_thread::sleep_for(10ms);
      auto cp = openReadOnly(dir.log())->latestCheckpoint();
      signedOne = cp && cp->checkpoint.size == 2;
    }
    CHECK(signedOne);
  }
  {
    DecisionService svc(o);
    REQUIRE(svc.offerBundle(bundleFile()).accepted);
    CHECK(svc.lineageSize() == 2);
    svc.start();
    auto client = connect(svc);
    CHECK(client->authorize({deployEuAtStart()}).at(0).lineageSeq == 3);
  }
  CHECK(openReadOnly(dir.log())->latestCheckpoint()->checkpoint.size == 3);
}

TEST_CASE("service lineage: each record names the bundle that decided it, across a bundle swap") {
  TempDir dir;
  std::string digest1, digest2;
  {
    DecisionService svc(lineageOptions(dir));
    REQUIRE(svc.offerBundle(bundleFile(1)).accepted);
    digest1 = svc.bundles().current()->digest;
    svc.start();
    auto client = connect(svc);
    CHECK(client->authorize({deployEuAtStart()}).at(0).lineageSeq == 1);
    REQUIRE(client->loadBundle(bundleFile(2)).ok);
    digest2 = svc.bundles().current()->digest;
    CHECK(client->authorize({deployEuAtStart(), deployEuAtStart()}).at(1).lineageSeq == 3);
  }
  REQUIRE(digest1 != digest2);
  auto recs = readAll(*openReadOnly(dir.log()));
  REQUIRE(recs.size() == 3);
  CHECK(recs[0].bundleRevision == 1);
  CHECK(std::string(recs[0].bundleDigest.begin(), recs[0].bundleDigest.end()) == digest1);
  for (size_t i = 1; i < 3; ++i) {
    CHECK(recs[i].bundleRevision == 2);
    CHECK(std::string(recs[i].bundleDigest.begin(), recs[i].bundleDigest.end()) == digest2);
  }
}

TEST_CASE("service lineage: a failed write denies the batch LINEAGE_UNAVAILABLE; the service keeps running") {
  TempDir dir;
  ServiceOptions o = lineageOptions(dir);
  auto failWrites = std::make_shared<std::atomic<bool>>(false);
  auto failSyncs = std::make_shared<std::atomic<bool>>(false);
  o.lineageIoHooks.pwrite = [failWrites](int fd, const void* buf, size_t n, off_t off) -> ssize_t {
    if (failWrites->load()) {
      errno = ENOSPC;
      return -1;
    }
    return ::pwrite(fd, buf, n, off);
  };
  o.lineageIoHooks.fdatasync = [failSyncs](int fd) -> int {
    if (failSyncs->load()) {
      errno = EIO;
      return -1;
    }
    return ::fdatasync(fd);
  };
  DecisionService svc(o);
  REQUIRE(svc.offerBundle(bundleFile()).accepted);
  svc.start();
  auto client = connect(svc);
  CHECK(client->authorize({deployEuAtStart()}).at(0).lineageSeq == 1);

  SUBCASE("a full disk: that batch is denied, the next one is recorded") {
    failWrites->store(true);
    for (const Decision& d : client->authorize({deployEuAtStart(), deployEuAtStart(), deployDegradedAtStart()})) {
      CHECK_FALSE(d.allow);
      CHECK(d.code == DenyCode::kLineageUnavailable);
      CHECK(d.lineageSeq == 0);
      CHECK(d.reasons.empty());
    }
    REQUIRE(svc.lineageError().has_value());
    CHECK(svc.lineageError()->find("no_space") != std::string::npos);
    failWrites->store(false);
    const Decision d = client->authorize({deployEuAtStart()}).at(0);
    CHECK(d.allow);
    CHECK(d.lineageSeq == 2);  // the failed batch was rolled back
    CHECK_FALSE(svc.lineageError().has_value());
    CHECK(svc.lineageSize() == 2);
  }
  SUBCASE("a failed fdatasync: every later batch is denied until restart; status still answers") {
    failSyncs->store(true);
    CHECK(client->authorize({deployEuAtStart()}).at(0).code == DenyCode::kLineageUnavailable);
    failSyncs->store(false);
    for (int i = 0; i < 3; ++i) {
      const Decision d = client->authorize({deployEuAtStart()}).at(0);
      CHECK_FALSE(d.allow);
      CHECK(d.code == DenyCode::kLineageUnavailable);
    }
    CHECK(svc.lineageError().has_value());
    CHECK(client->status().decisions >= 5);
  }
  CHECK(svc.pipeline().counters().recordFailures >= 1);
}

TEST_CASE("service lineage: a log that cannot be opened denies everything; a bad node key is refused") {
  TempDir dir;
  SUBCASE("locked by another writer") {
    lineage::LogOptions lo;
    lo.origin = kOrigin;
    lo.signer = lineage::NoteSigner::fromPem(kOrigin, nodeKey().privatePem);
    auto holder = lineage::Log::open(dir.log(), std::move(lo));
    REQUIRE(holder != nullptr);
    DecisionService svc(lineageOptions(dir));
    REQUIRE(svc.offerBundle(bundleFile()).accepted);
    REQUIRE(svc.lineageError().has_value());
    CHECK(svc.lineageError()->find("locked") != std::string::npos);
    svc.start();
    auto client = connect(svc);
    for (const Decision& d : client->authorize({deployEuAtStart(), deployDegradedAtStart()})) {
      CHECK_FALSE(d.allow);
      CHECK(d.code == DenyCode::kLineageUnavailable);
    }
  }
  SUBCASE("not an Ed25519 private key") {
    ServiceOptions o = lineageOptions(dir);
    o.nodeKeyPem = nodeKey().publicPem;
    CHECK_THROWS_AS(DecisionService{o}, std::invalid_argument);
    o.nodeKeyPem.reset();
    CHECK_THROWS_AS(DecisionService{o}, std::invalid_argument);
  }
}
