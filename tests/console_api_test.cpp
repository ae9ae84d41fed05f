// The governance console's JSON API (issue 9, server/console_api.h, docs/console.md), end to
// end: an in-process DecisionService with a bundle, keys and a lineage log, its console on a
// loopback port, decisions made over RPC, and the API read with a plain-socket HTTP client.
#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/checkpoint.h"
#include "engine/crypto_ed25519.h"
#include "engine/lineage.h"
#include "engine/merkle.h"
#include "server/client.h"
#include "server/console_series.h"
#include "server/console_views.h"
#include "server/service.h"
#include "tests/support/http_client.h"
#include "tests/support/service_fixture.h"

using namespace govmesh;
using namespace govmesh::engine;
using namespace std::chrono_literals;
using nlohmann::json;
using server::DecisionService;
using server::ServiceOptions;

namespace {

using namespace govmesh::testing;

const std::string kToken = "console-test-token-0123456789";
// An entity id with a NUL, quotes and markup (the Cedar corpus has such ids).
const std::string kOddId = std::string("m\0al\"<script>alert(1)</script>", 31);


// The exact texts of the static policies, so that the console's cut can be compared with them.
const std::string kPolicy0 =
    "@reason(\"deploys to eu-1\")\n"
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };";
const std::string kPolicy1 = "forbid(principal, action, resource) when { context has trust && context.trust == \"degraded\" };";
const std::string kTemplate = "permit(principal == ?principal, action == Action::\"read\", resource);";
const std::string kPolicies = "// deploys\n" + kPolicy0 + "  // trailing comment; with a semicolon\n\n" + kPolicy1 + "\n" +
                              kTemplate + "\n";

std::string bundleBytes(uint64_t revision = 1) {
  BundleSources src;
  src.policyText = kPolicies;
  src.policyFileName = "p.cedar";
  src.links.push_back({"bob-reads", "policy2", uid("Workload", "bob"), std::nullopt});
  for (const char* who : {"alice", "bob"}) src.keys.push_back({who, aliceKey().publicKey, uid("Workload", who), std::nullopt});
  src.keys.push_back({"odd", aliceKey().publicKey, uid("Workload", kOddId), std::nullopt});
  Bundle b = compileBundle(src, revision, kStartMs - 1000, kStartMs + kHourMs);
  return signBundle(writeUnsignedBundle(b), authorityKey().privatePem, "b.bundle", "a.key");
}

// A request by `principal` with `keyId` (every workload here signs with alice's key).
SignedRequest request(const std::string& keyId, const std::string& principal, const std::string& action, cedar::Value context) {
  SignedRequest r = aliceRequest(action, std::move(context), kStart, false);
  r.principal = uid("Workload", principal);
  r.keyId = keyId;
  signRequest(r, aliceKey().privatePem);
  return r;
}
cedar::Value zone(const char* z) { return cedar::Value::record({{"zone", cedar::Value::string(z)}}); }
SignedRequest deployEu() { return request("alice", "alice", "deploy", zone("eu-1")); }
SignedRequest deployDegraded() { return request("alice", "alice", "deploy", degradedContext()); }
SignedRequest badSignature() {
  SignedRequest r = deployEu();
  r.signature[5] ^= 0x20;
  return r;
}
SignedRequest bobReads() { return request("bob", "bob", "read", cedar::Value::record({})); }
SignedRequest oddDeploys() { return request("odd", kOddId, "deploy", zone("us-2")); }


ServiceOptions consoleOptions(const TempDir& dir) {
  ServiceOptions o;
  o.listen = "127.0.0.1:0";
  o.trusted = {authorityKey().publicKey};
  o.nodeId = "console-node";
  o.pipeline.allowGpu = false;
  o.pipeline.maxWait = 100us;
  o.pipeline.admission.clock = [] { return kStart; };
  o.lineageDir = (dir.path / "lineage").string();
  o.nodeKeyPem = nodeKey().privatePem;
  o.lineageOrigin = "govmesh/lineage/console-node";
  o.checkpointEvery = 1'000'000;
  o.checkpointIntervalMs = 0;  // no checkpoint until asked: the proof view signs one
  o.consoleListen = "127.0.0.1:0";
  o.consoleToken = kToken;
  return o;
}

HttpReply get(const DecisionService& s, const std::string& target) { return http(s.consolePort(), "GET", target); }
HttpReply post(const DecisionService& s, const std::string& target, const std::string& body, std::vector<std::string> headers = {}) {
  return http(s.consolePort(), "POST", target, body, std::move(headers));
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}
lineage::Hash hashOf(const std::string& hexText) {
  lineage::Hash h{};
  const std::string raw = unhex(hexText);
  REQUIRE(raw.size() == h.size());
  std::copy(raw.begin(), raw.end(), h.begin());
  return h;
}

std::string urlEncode(const std::string& s) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

// A started node with the console and some decisions: seqs 1..6 are
//   1 alice deploy eu-1 (allow, policy0)   2 alice deploy degraded (deny, policy1)
//   3 bad signature (deny BAD_SIGNATURE)   4 bob read (allow, bob-reads)
//   5 odd id deploys us-2 (deny, no reason) 6 alice deploy eu-1 (allow)
struct Node {
  TempDir dir;
  DecisionService svc;
  std::vector<Decision> decisions;
  Node() : svc(consoleOptions(dir)) {
    REQUIRE(svc.offerBundle(bundleBytes()).accepted);
    svc.start();
    auto client = server::DecisionClient::connect("127.0.0.1:" + std::to_string(svc.port()));
    for (auto& call : std::vector<std::vector<SignedRequest>>{{deployEu(), deployDegraded()}, {badSignature()}, {bobReads(), oddDeploys()}, {deployEu()}}) {
      auto ds = client->authorize(call);
      decisions.insert(decisions.end(), ds.begin(), ds.end());
    }
    REQUIRE(decisions.size() == 6);
    REQUIRE(svc.lineageSize() == 6);
  }
};

}  // namespace

TEST_CASE("console series: per-interval deltas of the totals, oldest first, bounded ring") {
  server::ConsoleSeries s(3);
  server::DecisionTotals t;
  s.sample(1000, t);  // the baseline: no point yet
  CHECK(s.size() == 0);
  t.allowed = 5;
  t.denied[static_cast<size_t>(DenyCode::kBadSignature)] = 2;
  s.sample(2000, t);
  t.allowed = 6;
  s.sample(3000, t);
  auto p = s.points();
  REQUIRE(p.size() == 2);
  CHECK(p[0].tMs == 2000);
  CHECK(p[0].allowed == 5);
  CHECK(p[0].denied[static_cast<size_t>(DenyCode::kBadSignature)] == 2);
  CHECK(p[0].deniedTotal() == 2);
  CHECK(p[1].allowed == 1);
  CHECK(p[1].deniedTotal() == 0);
  s.sample(4000, t);
  s.sample(5000, t);
  p = s.points();
  REQUIRE(p.size() == 3);  // the oldest fell off
  CHECK(p.front().tMs == 3000);
  CHECK(p.back().tMs == 5000);
}

TEST_CASE("console policy texts: each static policy cut exactly; a linked policy shows its template and link") {
  BundleSources src;
  src.policyText = kPolicies;
  src.policyFileName = "p.cedar";
  src.links.push_back({"bob-reads", "policy2", uid("Workload", "bob"), std::nullopt});
  Bundle b = compileBundle(src, 1, 0, kHourMs);
  auto texts = server::policySources(b);
  REQUIRE(texts.count("policy0"));
  CHECK(texts["policy0"].text == kPolicy0);
  CHECK(texts["policy0"].effect == "permit");
  CHECK(texts["policy1"].text == kPolicy1);
  CHECK(texts["policy1"].effect == "forbid");
  CHECK(texts["policy2"].text == kTemplate);
  REQUIRE(texts.count("bob-reads"));
  CHECK(texts["bob-reads"].text.rfind(kTemplate, 0) == 0);
  CHECK(texts["bob-reads"].text.find("?principal = Workload::\"bob\"") != std::string::npos);
  CHECK(texts["bob-reads"].templateId == "policy2");
}

TEST_CASE("console status: node, state, bundle, lineage and totals; security headers") {
  Node n;
  auto r = get(n.svc, "/api/v1/status");
  REQUIRE(r.status == 200);
  CHECK(r.headers["content-type"].find("application/json") == 0);
  CHECK(r.headers["cache-control"] == "no-store");
  CHECK(r.headers["x-content-type-options"] == "nosniff");
  CHECK(r.headers["content-security-policy"].find("default-src 'self'") == 0);
  CHECK(r.headers["content-security-policy"].find("frame-ancestors 'none'") != std::string::npos);
  json j = r.js();
  CHECK(j["node_id"] == "console-node");
  CHECK(j["state"] == "serving");
  CHECK(j["state_reason"].get<std::string>().find("ready") != std::string::npos);
  CHECK(j["now_ms"] == kStartMs);
  CHECK(j["backend"].is_string());
  REQUIRE(j["bundle"].is_object());
  CHECK(j["bundle"]["revision"] == 1);
  CHECK(j["bundle"]["digest"] == n.svc.bundles().digestHex());
  CHECK(j["bundle"]["fresh_until_ms"] == kStartMs + kHourMs);
  CHECK(j["bundle"]["policy_count"] == 3);  // policy0, policy1, bob-reads
  CHECK(j["bundle"]["seconds_left"].get<double>() == doctest::Approx(3600.0));
  CHECK(j["queue_depth"].is_number());
  CHECK(j["lineage"]["enabled"] == true);
  CHECK(j["lineage"]["size"] == 6);
  CHECK(j["totals"]["allow"] == 3);
  CHECK(j["totals"]["deny"] == 3);
  CHECK(j["totals"]["deny_by_code"]["NONE"] == 2);
  CHECK(j["totals"]["deny_by_code"]["BAD_SIGNATURE"] == 1);
  CHECK(j["totals"]["deny_by_code"]["REPLAYED_NONCE"] == 0);
}

TEST_CASE("console series: one point a second, counting the decisions of that second") {
  Node n;
  json j;
  uint64_t allowed = 0;
  // The first point covers the second in which the six decisions were made (they follow the
  // baseline sample taken at start()).
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(100ms);
    j = get(n.svc, "/api/v1/series").js();
    allowed = 0;
    for (const json& p : j["points"]) allowed += p["allow"].get<uint64_t>();
    if (j["points"].size() >= 2 && allowed == 3) break;
  }
  CHECK(j["interval_ms"] == 1000);
  REQUIRE(j["points"].size() >= 2);
  CHECK(allowed == 3);
  uint64_t bad = 0;
  for (const json& p : j["points"]) bad += p["deny_by_code"].value("BAD_SIGNATURE", uint64_t{0});
  CHECK(bad == 1);
  CHECK(j["points"][0]["t_ms"].get<int64_t>() < j["points"][1]["t_ms"].get<int64_t>());
}

TEST_CASE("console lineage search: filters, newest first, paging with next_before_seq") {
  Node n;
  auto seqs = [](const json& j) {
    std::vector<uint64_t> out;
    for (const json& r : j["records"]) out.push_back(r["seq"]);
    return out;
  };
  json all = get(n.svc, "/api/v1/lineage").js();
  CHECK(all["size"] == 6);
  CHECK(all["scanned"] == 6);
  CHECK(all["truncated"] == false);
  CHECK(all["next_before_seq"].is_null());
  CHECK(seqs(all) == std::vector<uint64_t>{6, 5, 4, 3, 2, 1});
  const json& first = all["records"][5];
  CHECK(first["principal"] == json{{"type", "Workload"}, {"id", "alice"}});
  CHECK(first["action"]["id"] == "deploy");
  CHECK(first["decision"] == "allow");
  CHECK(first["deny_code"] == "NONE");
  CHECK(first["reasons"] == json{"policy0"});
  CHECK(first["bundle_revision"] == 1);
  CHECK(first["time_ms"] == kStartMs);

  CHECK(seqs(get(n.svc, "/api/v1/lineage?principal=" + urlEncode("Workload::\"alice\"")).js()) == std::vector<uint64_t>{6, 3, 2, 1});
  CHECK(seqs(get(n.svc, "/api/v1/lineage?principal=bob").js()) == std::vector<uint64_t>{4});
  CHECK(seqs(get(n.svc, "/api/v1/lineage?decision=deny").js()) == std::vector<uint64_t>{5, 3, 2});
  CHECK(seqs(get(n.svc, "/api/v1/lineage?decision=deny&code=NONE").js()) == std::vector<uint64_t>{5, 2});
  CHECK(seqs(get(n.svc, "/api/v1/lineage?code=BAD_SIGNATURE").js()) == std::vector<uint64_t>{3});
  CHECK(seqs(get(n.svc, "/api/v1/lineage?action=read&decision=allow").js()) == std::vector<uint64_t>{4});
  CHECK(seqs(get(n.svc, "/api/v1/lineage?from_ms=" + std::to_string(kStartMs + 1)).js()).empty());

  // Paging: two at a time, following next_before_seq, gives every record once, newest first.
  std::vector<uint64_t> paged;
  std::string target = "/api/v1/lineage?limit=2";
  for (int page = 0; page < 10; ++page) {
    json j = get(n.svc, target).js();
    for (uint64_t s : seqs(j)) paged.push_back(s);
    if (j["next_before_seq"].is_null()) break;
    target = "/api/v1/lineage?limit=2&before_seq=" + std::to_string(j["next_before_seq"].get<uint64_t>());
  }
  CHECK(paged == std::vector<uint64_t>{6, 5, 4, 3, 2, 1});

  auto bad = get(n.svc, "/api/v1/lineage?decision=maybe");
  CHECK(bad.status == 400);
  CHECK(bad.js()["error"].get<std::string>().find("decision") == 0);
  bad = get(n.svc, "/api/v1/lineage?code=NOPE");
  CHECK(bad.status == 400);
  CHECK(bad.js()["error"].get<std::string>().find("code") == 0);
  bad = get(n.svc, "/api/v1/lineage?limit=ten");
  CHECK(bad.status == 400);
  CHECK(bad.js()["error"].get<std::string>().find("limit") == 0);
}

TEST_CASE("console record detail: every field, the context as JSON, the deciding policies' texts") {
  Node n;
  auto r = get(n.svc, "/api/v1/lineage/1");
  REQUIRE(r.status == 200);
  json j = r.js();
  CHECK(j["seq"] == 1);
  CHECK(j["node_id"] == "console-node");
  CHECK(j["decision"] == "allow");
  CHECK(j["reasons"] == json{"policy0"});
  CHECK(j["errors"] == json::array());
  CHECK(j["request_digest"].get<std::string>().size() == 64);
  CHECK(j["signature"].get<std::string>().size() == 128);
  CHECK(j["etcd_revision"].is_null());
  REQUIRE(j["evidence"].is_object());
  CHECK(j["evidence"]["key_id"] == "alice");
  CHECK(j["evidence"]["nonce"].get<std::string>().size() == 32);
  CHECK(j["evidence"]["payload_digest"].is_null());
  CHECK(j["evidence"]["context"] == json{{"zone", "eu-1"}});
  CHECK(j["bundle"]["revision"] == 1);
  CHECK(j["bundle"]["digest"] == n.svc.bundles().digestHex());
  CHECK(j["bundle"]["known"] == true);
  REQUIRE(j["policies"].size() == 1);
  CHECK(j["policies"][0] == json{{"id", "policy0"}, {"effect", "permit"}, {"text", kPolicy0}});

  json linked = get(n.svc, "/api/v1/lineage/4").js();
  CHECK(linked["reasons"] == json{"bob-reads"});
  REQUIRE(linked["policies"].size() == 1);
  CHECK(linked["policies"][0]["text"].get<std::string>().rfind(kTemplate, 0) == 0);
  CHECK(linked["policies"][0]["template"] == "policy2");

  json forbid = get(n.svc, "/api/v1/lineage/2").js();
  CHECK(forbid["decision"] == "deny");
  CHECK(forbid["policies"][0]["effect"] == "forbid");
  CHECK(forbid["policies"][0]["text"] == kPolicy1);

  CHECK(get(n.svc, "/api/v1/lineage/7").status == 404);
  CHECK(get(n.svc, "/api/v1/lineage/0").status == 400);
  CHECK(get(n.svc, "/api/v1/lineage/x1").status == 400);
}

TEST_CASE("console proof: verifies in C++ (leaf, RFC 9162 path, signed checkpoint); a flipped path byte fails") {
  Node n;
  for (uint64_t seq : {1, 4, 6}) {
    CAPTURE(seq);
    auto r = get(n.svc, "/api/v1/lineage/" + std::to_string(seq) + "/proof");
    REQUIRE(r.status == 200);
    json j = r.js();
    CHECK(j["seq"] == seq);
    CHECK(j["leaf_index"] == seq - 1);
    auto record = lineage::base64Decode(j["record_b64"].get<std::string>());
    REQUIRE(record.has_value());
    auto decoded = lineage::decodeRecord(*record);
    REQUIRE(decoded.has_value());
    CHECK(decoded->seq == seq);
    const lineage::Hash leaf = lineage::leafHash(*record);
    CHECK(j["leaf_hash"] == crypto::toHex(leaf));
    const uint64_t size = j["tree_size"];
    CHECK(size == 6);  // the view signed a checkpoint covering every record
    std::vector<lineage::Hash> path;
    for (const json& h : j["path"]) path.push_back(hashOf(h));
    const lineage::Hash root = hashOf(j["checkpoint"]["root"]);
    CHECK(lineage::verifyInclusion(seq - 1, size, leaf, path, root));

    // The note is signed by the node key the JSON names, and its root is the JSON root.
    CHECK(j["node_key"]["public_key"] ==
          crypto::toHex(nodeKey().publicKey));
    auto verifier = lineage::NoteVerifier::fromKey(j["node_key"]["name"].get<std::string>(), nodeKey().publicKey);
    REQUIRE(verifier.has_value());
    char keyId[9];
    std::snprintf(keyId, sizeof keyId, "%08x", verifier->keyId);
    CHECK(j["node_key"]["key_id"] == keyId);
    lineage::NoteStatus st = lineage::NoteStatus::kMalformed;
    auto cp = lineage::openCheckpoint(j["checkpoint"]["note"].get<std::string>(), *verifier, &st);
    REQUIRE(st == lineage::NoteStatus::kOk);
    CHECK(cp->root == root);
    CHECK(cp->size == size);
    CHECK(cp->origin == j["checkpoint"]["origin"]);

    // Tampering with any path byte breaks the proof.
    REQUIRE_FALSE(path.empty());
    path[0][7] ^= 0x01;
    CHECK_FALSE(lineage::verifyInclusion(seq - 1, size, leaf, path, root));
  }
  CHECK(get(n.svc, "/api/v1/lineage/99/proof").status == 404);
}

TEST_CASE("console what-if: allow/deny with reasons and texts; nothing recorded, nothing counted") {
  Node n;
  const json before = get(n.svc, "/api/v1/status").js();
  const PipelineCounters countersBefore = n.svc.pipeline().counters();
  auto r = post(n.svc, "/api/v1/whatif",
                R"({"principal": "Workload::\"alice\"", "action": "Action::\"deploy\"", "resource": "Service::\"payments\"",
                    "context": {"zone": "eu-1"}})");
  REQUIRE(r.status == 200);
  CHECK(r.headers["cache-control"] == "no-store");
  json j = r.js();
  CHECK(j["decision"] == "allow");
  CHECK(j["reasons"] == json{"policy0"});
  CHECK(j["errors"] == json::array());
  CHECK(j["recorded"] == false);
  CHECK(j["bundle"]["revision"] == 1);
  CHECK(j["bundle"]["digest"] == n.svc.bundles().digestHex());
  REQUIRE(j["policies"].size() == 1);
  CHECK(j["policies"][0]["text"] == kPolicy0);

  j = post(n.svc, "/api/v1/whatif",
           R"({"principal": "Workload::\"alice\"", "action": "Action::\"deploy\"", "resource": "Service::\"payments\"",
               "context": {"zone": "eu-1", "trust": "degraded"}})")
          .js();
  CHECK(j["decision"] == "deny");
  CHECK(j["reasons"] == json{"policy1"});
  CHECK(j["policies"][0]["effect"] == "forbid");

  // A missing context attribute is an evaluation error of the policy that reads it, reported.
  j = post(n.svc, "/api/v1/whatif",
           R"({"principal": "Workload::\"alice\"", "action": "Action::\"deploy\"", "resource": "Service::\"payments\"",
               "context": {}})")
          .js();
  CHECK(j["decision"] == "deny");
  CHECK(j["reasons"] == json::array());
  REQUIRE(j["errors"].size() == 1);
  CHECK(j["errors"][0].get<std::string>().rfind("policy0: ", 0) == 0);

  // No context at all is an empty one.
  j = post(n.svc, "/api/v1/whatif", R"({"principal": "Workload::\"bob\"", "action": "Action::\"read\"", "resource": "Service::\"x\""})").js();
  CHECK(j["decision"] == "allow");
  CHECK(j["reasons"] == json{"bob-reads"});

  CHECK(n.svc.lineageSize() == 6);
  const json after = get(n.svc, "/api/v1/status").js();
  CHECK(after["totals"] == before["totals"]);
  CHECK(after["lineage"]["size"] == 6);
  const PipelineCounters countersAfter = n.svc.pipeline().counters();
  CHECK(countersAfter.allowed == countersBefore.allowed);
  CHECK(countersAfter.denied == countersBefore.denied);
}

TEST_CASE("console what-if: bad input is a 400 naming the field") {
  Node n;
  auto bad = [&](const std::string& body, const std::string& field) {
    CAPTURE(body);
    auto r = post(n.svc, "/api/v1/whatif", body);
    CHECK(r.status == 400);
    const std::string error = r.js()["error"];
    CAPTURE(error);
    CHECK(error.find(field) != std::string::npos);
  };
  bad(R"({"principal": "alice", "action": "Action::\"deploy\"", "resource": "Service::\"x\""})", "principal");
  bad(R"({"principal": "Workload::\"alice\"", "action": 3, "resource": "Service::\"x\""})", "action");
  bad(R"({"principal": "Workload::\"alice\"", "action": "Action::\"deploy\""})", "resource");
  bad(R"({"principal": "Workload::\"alice\"", "action": "Action::\"deploy\"", "resource": "Service::\"x\"", "context": [1]})",
      "context");
  bad(R"({"principal": "Workload::\"alice\"", "action": "Action::\"deploy\"", "resource": "Service::\"x\"",)", "request body");
  bad("[]", "request body");
  CHECK(get(n.svc, "/api/v1/whatif").status == 405);
}

TEST_CASE("console admin reload: no token, wrong token 403; the right token 202 and the node re-reads its bundle") {
  TempDir files;
  const std::string bundlePath = (files.path / "b.bundle").string();
  {
    std::ofstream(bundlePath, std::ios::binary) << bundleBytes(1);
  }
  std::atomic<int> reloads{0};
  ServiceOptions o;
  o.listen = "127.0.0.1:0";
  o.trusted = {authorityKey().publicKey};
  o.pipeline.allowGpu = false;
  o.pipeline.admission.clock = [] { return kStart; };
  o.bundlePath = bundlePath;
  o.onReload = [&reloads](const engine::LoadOutcome&) { ++reloads; };
  o.consoleListen = "127.0.0.1:0";
  o.consoleToken = kToken;
  DecisionService svc(o);
  svc.start();
  CHECK(post(svc, "/api/v1/admin/reload", "").status == 403);
  CHECK(post(svc, "/api/v1/admin/reload", "", {"Authorization: Bearer wrong-token"}).status == 403);
  CHECK(post(svc, "/api/v1/admin/reload", "", {"Authorization: Bearer " + kToken + "x"}).status == 403);
  CHECK(reloads.load() == 0);
  {
    std::ofstream(bundlePath, std::ios::binary | std::ios::trunc) << bundleBytes(2);
  }
  auto r = post(svc, "/api/v1/admin/reload", "", {"Authorization: Bearer " + kToken});
  CHECK(r.status == 202);
  CHECK(r.js()["requested"] == true);
  for (int i = 0; i < 500 && reloads.load() == 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(reloads.load() == 1);
  CHECK(svc.bundles().revision() == 2);
  // Reads on a loopback console need no token.
  CHECK(get(svc, "/api/v1/status").status == 200);
  // The lineage views of a node without lineage say so.
  CHECK(get(svc, "/api/v1/lineage").status == 404);

  // A console without a token refuses every admin action.
  ServiceOptions none = o;
  none.consoleToken.clear();
  DecisionService noToken(none);
  noToken.start();
  CHECK(post(noToken, "/api/v1/admin/reload", "", {"Authorization: Bearer " + kToken}).status == 403);
}

TEST_CASE("console: a non-loopback console needs a token, and then every API call needs it too") {
  ServiceOptions o;
  o.listen = "127.0.0.1:0";
  o.pipeline.allowGpu = false;
  o.consoleListen = "0.0.0.0:0";
  CHECK_THROWS_AS(DecisionService{o}, std::invalid_argument);
  o.consoleListen = "192.0.2.1:8080";
  CHECK_THROWS_AS(DecisionService{o}, std::invalid_argument);

  o.consoleListen = "0.0.0.0:0";
  o.consoleToken = kToken;
  DecisionService svc(o);
  svc.start();
  auto r = get(svc, "/api/v1/status");
  CHECK(r.status == 401);
  CHECK(r.js()["error"].get<std::string>().find("Authorization") == 0);
  CHECK(http(svc.consolePort(), "GET", "/api/v1/status", "", {"Authorization: Bearer nope"}).status == 401);
  r = http(svc.consolePort(), "GET", "/api/v1/status", "", {"Authorization: Bearer " + kToken});
  CHECK(r.status == 200);
  CHECK(r.js()["state"] == "no_bundle");
}

TEST_CASE("console: ids with NUL, quotes and markup survive the JSON round trip") {
  Node n;
  auto r = get(n.svc, "/api/v1/lineage?principal=" + urlEncode("<script>"));
  REQUIRE(r.status == 200);
  CHECK(r.body.find("\\u0000") != std::string::npos);  // the NUL is escaped, not cut
  json j = r.js();
  REQUIRE(j["records"].size() == 1);
  CHECK(j["records"][0]["seq"] == 5);
  CHECK(j["records"][0]["principal"]["id"].get<std::string>() == kOddId);
  CHECK(get(n.svc, "/api/v1/lineage/5").js()["principal"]["id"].get<std::string>() == kOddId);

  // A NUL byte in the filter itself (percent-encoded) matches too.
  j = get(n.svc, "/api/v1/lineage?principal=" + urlEncode(kOddId.substr(0, 3))).js();
  REQUIRE(j["records"].size() == 1);

  // What-if takes the id in Cedar syntax, escapes and all, and names it back unchanged.
  json req{{"principal", "Workload::\"m\\0al\\\"<script>alert(1)</script>\""},
           {"action", "Action::\"deploy\""},
           {"resource", "Service::\"payments\""}};
  auto w = post(n.svc, "/api/v1/whatif", req.dump());
  REQUIRE(w.status == 200);
  CHECK(w.js()["decision"] == "deny");
}

TEST_CASE("console: static assets, unknown paths 404, security headers everywhere, the Host guard") {
  Node n;
  auto page = get(n.svc, "/");
  if (page.status == 200) {  // a build with the page embedded (govmesh_console_assets)
    CHECK(page.headers["content-type"].find("text/html") == 0);
    CHECK(get(n.svc, "/index.html").body == page.body);
  } else {
    CHECK(page.status == 404);  // the stub: no page
  }
  CHECK(page.headers["content-security-policy"].find("script-src 'self'") != std::string::npos);
  CHECK(page.headers["x-content-type-options"] == "nosniff");

  auto missing = get(n.svc, "/no/such/file.js");
  CHECK(missing.status == 404);
  CHECK(missing.headers.count("content-security-policy") == 1);
  auto api = get(n.svc, "/api/v1/nope");
  CHECK(api.status == 404);
  CHECK(api.js()["error"].get<std::string>().find("/api/v1/nope") != std::string::npos);
  CHECK(api.headers["cache-control"] == "no-store");
  CHECK(http(n.svc.consolePort(), "DELETE", "/").status == 405);

  // A page on another origin that rebinds its name to 127.0.0.1 sends its own Host: refused.
  auto rebound = http(n.svc.consolePort(), "GET", "/api/v1/status", "", {}, "evil.example:8080");
  CHECK(rebound.status == 403);
  CHECK(rebound.js()["error"].get<std::string>().find("Host") == 0);
  CHECK(http(n.svc.consolePort(), "GET", "/api/v1/status", "", {}, "localhost:1234").status == 200);
}

TEST_CASE("console: shutdown closes the console port") {
  Node n;
  const uint16_t port = n.svc.consolePort();
  REQUIRE(port != 0);
  CHECK(get(n.svc, "/api/v1/status").status == 200);
  n.svc.shutdown();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0);
  ::close(fd);
}
