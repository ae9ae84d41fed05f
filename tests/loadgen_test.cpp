// The client and the load generator: key-directory parsing and its errors, request making and
// tampering, latency percentiles, and end-to-end runs against an in-process DecisionService.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "compiler/errors.h"
#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"
#include "engine/wall_clock.h"
#include "server/client.h"
#include "server/loadgen.h"
#include "server/service.h"
#include "server/workload.h"

namespace fs = std::filesystem;
using namespace govmesh;
using server::TamperKind;

namespace {

void writeText(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

constexpr const char* kPolicies = R"(
permit(principal == Workload::"ci-bot", action == Action::"deploy", resource) when { context.zone == "eu" };
forbid(principal, action, resource) when { context has trust && context.trust == "degraded" };
permit(principal == Workload::"etl", action == Action::"read", resource == Dataset::"sales");
)";

// A key directory with two workloads, an authority and a signed bundle naming their keys.
struct Fixture {
  fs::path dir;
  crypto::Ed25519KeyPair authority, ci, etl;

  explicit Fixture(const std::string& name, bool withBundle = true) {
    dir = fs::temp_directory_path() / ("govmesh_loadgen_test_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    authority = crypto::generateEd25519();
    ci = crypto::generateEd25519();
    etl = crypto::generateEd25519();
    writeText(dir / "authority.pub", authority.publicPem);
    writeText(dir / "keys/ci.key", ci.privatePem);
    writeText(dir / "keys/etl.key", etl.privatePem);
    engine::BundleSources src;
    src.policyText = kPolicies;
    src.policyFileName = "policies.cedar";
    src.keys = {{"ci-1", ci.publicKey, {"Workload", "ci-bot"}, std::nullopt},
                {"etl-1", etl.publicKey, {"Workload", "etl"}, std::nullopt}};
    engine::Bundle b = engine::compileBundle(src, 1, engine::wallClockMs(), engine::wallClockMs() + 3'600'000);
    std::string signedBytes = engine::signBundle(engine::writeUnsignedBundle(b), authority.privatePem, "b", "k");
    writeText(dir / "bundles/1.bundle", signedBytes);
    std::string bundleLine = withBundle ? R"("bundle": "bundles/1.bundle", "authority": "authority.pub",)" : "";
    writeText(dir / "workloads.json", "{" + bundleLine + R"(
  "workloads": [
    {"keyId": "ci-1", "principal": "Workload::\"ci-bot\"", "key": "keys/ci.key", "requests": [
      {"action": "Action::\"deploy\"", "resource": "Service::\"api\"", "context": {"zone": "eu"}, "weight": 3},
      {"action": "Action::\"deploy\"", "resource": "Service::\"api\"", "context": {"zone": "us"}},
      {"action": "Action::\"deploy\"", "resource": "Service::\"api\"", "context": {"zone": "eu", "trust": "degraded"}}
    ]},
    {"keyId": "etl-1", "principal": "Workload::\"etl\"", "key": "keys/etl.key", "requests": [
      {"action": "Action::\"read\"", "resource": "Dataset::\"sales\"", "context": {"at": "$now", "hour": "$hourUtc"}},
      {"action": "Action::\"read\"", "resource": "Dataset::\"hr\""}
    ]}
  ]})");
  }
  ~Fixture() { fs::remove_all(dir); }

  std::unique_ptr<server::DecisionService> startService(bool allowUnsigned = false) {
    server::ServiceOptions o;
    o.listen = "127.0.0.1:0";
    o.trusted = {authority.publicKey};
    o.bundlePath = (dir / "bundles/1.bundle").string();
    o.allowUnsigned = allowUnsigned;
    auto s = std::make_unique<server::DecisionService>(std::move(o));
    s->start();
    return s;
  }
};

std::string errorOf(const std::string& json, const std::string& dir = "/nonexistent") {
  try {
    server::parseWorkloads(json, "w.json", dir, nullptr);
  } catch (const cedar::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("workloads.json: errors name the file and the field") {
  Fixture f("errors", false);
  std::string d = f.dir.string();
  CHECK(errorOf("{").find("w.json:1:") == 0);
  CHECK(errorOf("[]").find("w.json: (top level)") == 0);
  CHECK(errorOf(R"({"workloads": []})").find("w.json: workloads: expected a non-empty array") == 0);
  CHECK(errorOf(R"({"workloads": [{"principal": "Workload::\"a\""}]})").find("workloads[0]: missing field \"keyId\"") !=
        std::string::npos);
  std::string base = R"({"workloads": [{"keyId": "k", "principal": "Workload::\"a\"", "key": "keys/ci.key", "requests": )";
  CHECK(errorOf(R"({"workloads": [{"keyId": "k", "principal": "alice", "key": "x", "requests": []}]})")
            .find("workloads[0].principal: not an entity uid") != std::string::npos);
  CHECK(errorOf(R"({"workloads": [{"keyId": "k", "principal": "Workload::\"a\"", "key": "nope.key", "requests": []}]})", d)
            .find("workloads[0].key: ") != std::string::npos);
  CHECK(errorOf(base + "[]}]}", d).find("workloads[0].requests: expected a non-empty array") != std::string::npos);
  CHECK(errorOf(base + R"([{"action": 3, "resource": "S::\"x\""}]}]})", d).find("workloads[0].requests[0].action: expected a string") !=
        std::string::npos);
  CHECK(errorOf(base + R"([{"action": "A::\"x\"", "resource": "S::\"x\"", "weight": 0}]}]})", d)
            .find("workloads[0].requests[0].weight: expected a number > 0") != std::string::npos);
  CHECK(errorOf(base + R"([{"action": "A::\"x\"", "resource": "S::\"x\"", "context": [1]}]}]})", d)
            .find("workloads[0].requests[0].context: expected an object") != std::string::npos);
  CHECK(errorOf(base + R"([{"action": "A::\"x\"", "resource": "S::\"x\"", "context": {"ip": {"__extn": {"fn": "ip", "arg": "nope"}}}}]}]})", d)
            .find("workloads[0].requests[0].context") != std::string::npos);
  std::string dup = R"({"workloads": [{"keyId": "k", "principal": "W::\"a\"", "key": "keys/ci.key", "requests": [{"action": "A::\"x\"", "resource": "S::\"x\""}]},
                                      {"keyId": "k", "principal": "W::\"b\"", "key": "keys/ci.key", "requests": [{"action": "A::\"x\"", "resource": "S::\"x\""}]}]})";
  CHECK(errorOf(dup, d).find("workloads[1].keyId: duplicate") != std::string::npos);
  // A public key where the private key belongs.
  CHECK(errorOf(R"({"workloads": [{"keyId": "k", "principal": "W::\"a\"", "key": "authority.pub", "requests": [{"action": "A::\"x\"", "resource": "S::\"x\""}]}]})", d)
            .find("workloads[0].key: ") != std::string::npos);
  // loadWorkloads names the file it read.
  CHECK_THROWS_WITH_AS(server::loadWorkloads((f.dir / "missing").string()), doctest::Contains("workloads.json"),
                       cedar::InputError);
}

TEST_CASE("workloads.json: a good directory, placeholders") {
  Fixture f("good");
  server::WorkloadSet set = server::loadWorkloads(f.dir.string());
  REQUIRE(set.bundle);
  CHECK(set.bundle->revision == 1);
  REQUIRE(set.workloads.size() == 2);
  CHECK(set.workloads[0].keyId == "ci-1");
  CHECK(set.workloads[0].publicKey == f.ci.publicKey);
  CHECK(set.workloads[0].requests[0].weight == 3);
  CHECK(set.workloads[0].requests[0].fixedContext.has_value());
  const server::RequestTemplate& t = set.workloads[1].requests[0];
  CHECK_FALSE(t.fixedContext.has_value());
  cedar::Value c = server::materializeContext(t, nullptr, int64_t{1'700'000'000'000} + 5 * 3'600'000);
  REQUIRE(c.isRecord());
  REQUIRE(c.asRecord().size() == 2);
  CHECK(c.asRecord()[0].first == "at");
  CHECK(c.asRecord()[0].second.kind() == cedar::ValueKind::Datetime);
  CHECK(c.asRecord()[1].second.asLong() == (1'700'000'000'000 / 3'600'000 + 5) % 24);
}

TEST_CASE("request factory: honest requests verify, each tamper kind breaks what it should") {
  Fixture f("factory");
  server::WorkloadSet set = server::loadWorkloads(f.dir.string());
  server::RequestFactory factory(set, 42, true);
  int64_t now = engine::wallClockMs() * 1'000'000;
  std::set<std::string> nonces;
  size_t perWorkload[2] = {0, 0};
  for (int i = 0; i < 400; ++i) {
    auto o = factory.draw(now);
    engine::SignedRequest r;
    factory.makeHonest(o, now, r);
    ++perWorkload[o.workload];
    CHECK(engine::verifyRequestSignature(r, set.workloads[o.workload].publicKey));
    CHECK(r.keyId == set.workloads[o.workload].keyId);
    nonces.insert(std::string(crypto::bytesView(r.nonce)));
  }
  CHECK(nonces.size() == 400);
  CHECK(perWorkload[0] > 100);  // workloads drawn uniformly
  CHECK(perWorkload[1] > 100);

  auto o = server::RequestFactory::Origin{0, 0, 0};
  engine::SignedRequest honest;
  factory.makeHonest(o, now, honest);
  const auto& ciKey = set.workloads[0].publicKey;

  engine::SignedRequest r = honest;
  factory.tamper(TamperKind::kFlipSignatureBit, o, now, r, nullptr);
  CHECK(r.signature != honest.signature);
  CHECK_FALSE(engine::verifyRequestSignature(r, ciKey));

  r = honest;
  factory.tamper(TamperKind::kChangeResource, o, now, r, nullptr);
  CHECK(r.resource.id != honest.resource.id);
  CHECK_FALSE(engine::verifyRequestSignature(r, ciKey));

  r = honest;
  factory.tamper(TamperKind::kStaleTimestamp, o, now, r, nullptr);
  CHECK(r.timestampNs <= now - int64_t{300} * 1'000'000'000);
  CHECK(engine::verifyRequestSignature(r, ciKey));  // well signed, only old

  r = honest;
  factory.tamper(TamperKind::kWrongKey, o, now, r, nullptr);
  CHECK(r.keyId == "etl-1");
  CHECK((r.principal == honest.principal));
  CHECK(engine::verifyRequestSignature(r, set.workloads[1].publicKey));

  engine::SignedRequest source;
  factory.makeHonest(server::RequestFactory::Origin{1, 1, 0}, now, source);
  r = honest;
  factory.tamper(TamperKind::kReplay, o, now, r, &source);
  CHECK(r.nonce == source.nonce);
  CHECK(r.signature == source.signature);
  CHECK(engine::canonicalSigningBytes(r) == engine::canonicalSigningBytes(source));
  CHECK_THROWS_AS(factory.tamper(TamperKind::kReplay, o, now, r, nullptr), std::invalid_argument);

  // Unsigned: no signature at all.
  server::RequestFactory unsignedFactory(set, 7, false);
  engine::SignedRequest u;
  unsignedFactory.makeHonest(o, now, u);
  CHECK(u.signature == crypto::Ed25519Signature{});
}

TEST_CASE("latency percentiles are nearest-rank over requests") {
  std::vector<server::LatencySample> none;
  CHECK(server::summarizeLatency(none).p99 == 0);
  std::vector<server::LatencySample> s;
  for (uint64_t i = 100; i >= 1; --i) s.push_back({i * 1000, 1});
  server::LatencySummary l = server::summarizeLatency(s);
  CHECK(l.p50 == 50);
  CHECK(l.p90 == 90);
  CHECK(l.p99 == 99);
  CHECK(l.p999 == 100);
  CHECK(l.max == 100);
  CHECK(l.mean == doctest::Approx(50.5));
  // A call of 99 requests at 10 us and one request at 1 ms: weights count.
  std::vector<server::LatencySample> w{{1'000'000, 1}, {10'000, 99}};
  l = server::summarizeLatency(w);
  CHECK(l.p50 == 10);
  CHECK(l.p99 == 10);
  CHECK(l.p999 == 1000);
  CHECK(server::tamperKindName(TamperKind::kReplay) == "replay");
}

TEST_CASE("client: connection failures are errors, never decisions") {
  // A port nothing listens on: bind one, learn its number, close it.
  Fixture f("client");
  uint16_t port = 0;
  {
    auto s = f.startService();
    port = s->port();
    s->shutdown();
  }
  CHECK_THROWS_AS(server::DecisionClient::connect("127.0.0.1:" + std::to_string(port)), server::ClientError);
  CHECK_THROWS_AS(server::DecisionClient::connect("not an address"), server::ClientError);
}

TEST_CASE("client: sync, async and status against a DecisionService") {
  Fixture f("sync");
  auto svc = f.startService();
  server::WorkloadSet set = server::loadWorkloads(f.dir.string());
  server::RequestFactory factory(set, 1, true);
  int64_t now = engine::wallClockMs() * 1'000'000;
  auto client = server::DecisionClient::connect("127.0.0.1:" + std::to_string(svc->port()));
  std::vector<engine::SignedRequest> reqs(3);
  factory.makeHonest({0, 0, 0}, now, reqs[0]);  // allowed
  factory.makeHonest({0, 1, 0}, now, reqs[1]);  // denied by policy (zone us)
  factory.makeHonest({0, 0, 0}, now, reqs[2]);
  factory.tamper(TamperKind::kFlipSignatureBit, {0, 0, 0}, now, reqs[2], nullptr);
  auto d = client->authorize(reqs);
  REQUIRE(d.size() == 3);
  CHECK(d[0].allow);
  CHECK(d[0].code == engine::DenyCode::kNone);
  CHECK_FALSE(d[1].allow);
  CHECK(d[1].code == engine::DenyCode::kNone);
  CHECK_FALSE(d[2].allow);
  CHECK(d[2].code == engine::DenyCode::kBadSignature);
  // The same requests again: replays.
  d = client->authorize({reqs[0]});
  CHECK(d.at(0).code == engine::DenyCode::kReplayedNonce);

  int done = 0;
  for (int i = 0; i < 4; ++i) {
    std::vector<engine::SignedRequest> one(1);
    factory.makeHonest({0, 0, 0}, now, one[0]);
    client->authorizeAsync(one, [&](server::CallResult&& r) {
      CHECK(r.ok());
      CHECK(r.decisions.at(0).allow);
      ++done;
    });
  }
  CHECK(client->inFlight() <= 4);
  client->drain();
  CHECK(done == 4);
  CHECK(client->inFlight() == 0);

  server::ServiceStatus st = client->status();
  CHECK(st.hasBundle);
  CHECK(st.bundleRevision == 1);
  CHECK(st.decisions >= 8);

  // Unsigned requests to a node not in unsigned mode are denied.
  auto unsignedClient = std::unique_ptr<server::DecisionClient>();
  client.reset();  // one client per thread
  unsignedClient = server::DecisionClient::connect("127.0.0.1:" + std::to_string(svc->port()), {true});
  std::vector<engine::SignedRequest> u(1);
  factory.makeHonest({0, 0, 0}, now, u[0]);
  d = unsignedClient->authorize(u);
  CHECK_FALSE(d.at(0).allow);
  CHECK(d.at(0).code == engine::DenyCode::kBadSignature);

  // A node that goes away fails the call; it does not answer it.
  svc->shutdown();
  factory.makeHonest({0, 0, 0}, now, u[0]);
  CHECK_THROWS_AS(unsignedClient->authorize(u), server::ClientError);
}

TEST_CASE("loadgen end to end: signed, tampered, checked offline") {
  Fixture f("e2e");
  auto svc = f.startService();
  server::LoadOptions o;
  o.connect = "127.0.0.1:" + std::to_string(svc->port());
  o.keysDir = f.dir.string();
  o.max = true;
  o.seconds = 2;
  o.batch = 32;
  o.inFlight = 4;
  o.badFraction = 0.2;
  o.check = true;
  o.poolLimit = 40'000;  // re-signing during the run is exercised too when the node is fast
  o.seed = 1234;
  int progress = 0;
  o.onProgress = [&](const server::LoadProgress&) { ++progress; };
  server::LoadReport r = server::runLoad(o);
  INFO(r.toJson().dump());
  CHECK(r.failedCalls == 0);
  CHECK(r.requests == r.sent);
  CHECK(r.requests > 1000);
  CHECK(r.tamperedSent > 0);
  CHECK(r.tamperedAllowed == 0);
  CHECK(r.mismatchesVsOffline == 0);
  CHECK(r.checked > 0);
  CHECK(r.allowed > 0);
  CHECK(r.deniedByPolicy > 0);
  CHECK(progress >= 2);
  CHECK(r.serverBundleRevision == std::optional<uint64_t>(1));
  const auto& replay = r.tamperedByKind.at("replay");
  CHECK(replay.sent > 0);
  CHECK(replay.allowed == 0);
  // Replays are REPLAYED_NONCE, except the few sent before any request had been answered (sent
  // as a flipped signature instead).
  uint64_t replayed = replay.deniedByCode.count("REPLAYED_NONCE") ? replay.deniedByCode.at("REPLAYED_NONCE") : 0;
  CHECK(replayed + 200 >= replay.sent);
  CHECK(replayed > 0);
  for (const auto& [code, n] : replay.deniedByCode) CHECK((code == "REPLAYED_NONCE" || code == "BAD_SIGNATURE"));
  auto only = [&](const char* kind, std::set<std::string> codes) {
    const auto& t = r.tamperedByKind.at(kind);
    CHECK(t.sent > 0);
    for (const auto& [code, n] : t.deniedByCode) {
      INFO(kind << " " << code);
      CHECK(codes.count(code) == 1);
    }
  };
  only("flip_signature_bit", {"BAD_SIGNATURE"});
  only("change_resource", {"BAD_SIGNATURE"});
  only("stale_timestamp", {"TIMESTAMP_OUT_OF_WINDOW"});
  only("wrong_key", {"KEY_NOT_PRINCIPAL"});
  nlohmann::json j = r.toJson();
  for (const char* k : {"requests", "decisions_per_second", "latency_us", "allowed", "denied_by_code", "tampered_sent",
                        "tampered_allowed", "mismatches_vs_offline", "seconds", "batch", "in_flight", "rate_target",
                        "connect"}) {
    CHECK(j.contains(k));
  }
  for (const char* k : {"p50", "p90", "p99", "p999"}) CHECK(j["latency_us"].contains(k));
}

TEST_CASE("loadgen end to end: at a rate, and unsigned against an unsigned-mode node") {
  Fixture f("rate");
  {
    auto svc = f.startService();
    server::LoadOptions o;
    o.connect = "127.0.0.1:" + std::to_string(svc->port());
    o.keysDir = f.dir.string();
    o.rate = 2000;
    o.seconds = 1;
    o.batch = 10;
    o.check = true;
    server::LoadReport r = server::runLoad(o);
    INFO(r.toJson().dump());
    CHECK(r.sent >= 1900);
    CHECK(r.sent <= 2010);
    CHECK(r.mismatchesVsOffline == 0);
    CHECK(r.tamperedSent == 0);
  }
  {
    auto svc = f.startService(true);
    server::LoadOptions o;
    o.connect = "127.0.0.1:" + std::to_string(svc->port());
    o.keysDir = f.dir.string();
    o.max = true;
    o.seconds = 1;
    o.batch = 256;
    o.unsignedRequests = true;
    o.badFraction = 0.1;
    o.check = true;
    server::LoadReport r = server::runLoad(o);
    INFO(r.toJson().dump());
    CHECK(r.requests > 1000);
    CHECK(r.presigned == 0);
    CHECK(r.tamperedAllowed == 0);
    CHECK(r.mismatchesVsOffline == 0);
    CHECK(r.tamperedByKind.count("flip_signature_bit") == 0);
  }
  // Options that make no sense are refused before anything is sent.
  server::LoadOptions bad;
  bad.keysDir = f.dir.string();
  bad.connect = "127.0.0.1:1";
  CHECK_THROWS_AS(server::runLoad(bad), std::invalid_argument);  // neither rate nor max
  bad.max = true;
  bad.batch = 0;
  CHECK_THROWS_AS(server::runLoad(bad), std::invalid_argument);
  bad.batch = 1;
  CHECK_THROWS_AS(server::runLoad(bad), server::ClientError);  // nothing listens on port 1
}
