// The demo's built-in governance world (server/demo_data.h): the policies parse, the bundle
// compiles, signs and verifies, every request template is answered as its story says by the
// reference evaluator and by the decision table, and the key directory is complete.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "compiler/archive.h"
#include "compiler/entities.h"
#include "compiler/parser.h"
#include "engine/bundle.h"
#include "engine/evaluator.h"
#include "engine/wall_clock.h"
#include "server/demo_data.h"

using namespace govmesh;

namespace {

std::string annotationId(const cedar::Policy& p) {
  for (const cedar::Annotation& a : p.annotations)
    if (a.key == "id" && a.value) return *a.value;
  return {};
}

// Builds the world once: key generation and compilation are the slow part.
const server::DemoWorld& world() {
  static const server::DemoWorld w = server::makeDemoWorld(engine::wallClockMs(), 3'600'000, 7);
  return w;
}

struct Evaluated {
  const server::DemoWorkload* workload;
  const server::DemoRequestTemplate* tmpl;
  cedar::Request request;
};

// Every template as a Cedar request, its context read without the schema, as a client that
// knows only workloads.json reads it.
std::vector<Evaluated> templateRequests(const engine::Bundle& b) {
  std::vector<Evaluated> out;
  for (const server::DemoWorkload& w : world().workloads)
    for (const server::DemoRequestTemplate& t : w.requests) {
      if (t.live) continue;  // decided by the clock: the service test covers it
      cedar::Request r;
      r.principal = cedar::parseEntityUid(w.principal, "principal");
      r.action = cedar::parseEntityUid(t.action, "action");
      r.resource = cedar::parseEntityUid(t.resource, "resource");
      r.context = cedar::contextFromJson(t.context, nullptr, r.action, w.keyId + ": " + t.story);
      // The schema accepts every template, and reading the context by it gives the same value.
      REQUIRE(b.schema);
      CHECK_MESSAGE(!cedar::validateRequestTypes(*b.schema, r.principal, r.action, r.resource), t.story);
      CHECK(cedar::compareValues(cedar::contextFromJson(t.context, b.schema.get(), r.action, t.story), r.context) == 0);
      out.push_back({&w, &t, std::move(r)});
    }
  return out;
}

}  // namespace

TEST_CASE("demo world: every policy parses and carries a unique @id") {
  cedar::PolicySet ps = cedar::parsePolicies(world().policyText, "demo policies");
  CHECK(ps.policies.size() >= 10);
  std::set<std::string> ids;
  for (const cedar::Policy& p : ps.policies) {
    std::string id = annotationId(p);
    CHECK_MESSAGE(!id.empty(), p.id);
    CHECK_MESSAGE(ids.insert(id).second, id);
  }
}

TEST_CASE("demo world: the signed bundle verifies against the authority key only") {
  const server::DemoWorld& w = world();
  engine::Bundle b = engine::loadBundle(w.bundleBytes, {w.authority.publicKey}, "demo bundle");
  CHECK(b.revision == 7);
  CHECK(engine::isFresh(b, engine::wallClockMs()));
  CHECK(b.schemaText);
  CHECK(b.keys.size() == w.workloads.size());
  for (const server::DemoWorkload& wl : w.workloads) {
    const engine::WorkloadKey* k = engine::findWorkloadKey(b, wl.keyId, engine::wallClockMs());
    REQUIRE_MESSAGE(k, wl.keyId);
    CHECK(k->publicKey == wl.key.publicKey);
    CHECK(cedar::toString(k->principal) == wl.principal);
    // Each workload's entity exists, so its attributes (zone, clearance, trust) are known.
    CHECK(b.store->find(k->principal) != nullptr);
  }
  crypto::Ed25519KeyPair other = crypto::generateEd25519();
  CHECK_THROWS_AS(engine::loadBundle(w.bundleBytes, {other.publicKey}, "demo bundle"), cedar::InputError);
}

TEST_CASE("demo world: templates are decided as their stories say, by the reference and by the table") {
  engine::Bundle b = engine::loadBundle(world().bundleBytes, {world().authority.publicKey}, "demo bundle");
  std::vector<Evaluated> reqs = templateRequests(b);
  std::map<std::string, std::string> idOf;  // "policy3" -> its @id
  for (const cedar::Policy& p : b.table.policies) idOf[p.id] = annotationId(p);

  std::vector<cedar::Request> batch;
  int allows = 0, forbids = 0, defaultDenies = 0;
  for (const Evaluated& e : reqs) {
    cedar::Response r = cedar::authorize(b.table.policies, e.request, *b.store);
    INFO(e.workload->keyId << ": " << e.tmpl->story);
    CHECK(r.errors.empty());
    CHECK((r.decision == cedar::Decision::Allow) == e.tmpl->expectAllow);
    if (e.tmpl->because.empty()) {
      CHECK(r.reasons.empty());
    } else {
      std::set<std::string> because;
      for (const std::string& id : r.reasons) because.insert(idOf[id]);
      CHECK(because.count(e.tmpl->because) == 1);
    }
    if (r.decision == cedar::Decision::Allow) ++allows;
    else if (r.reasons.empty()) ++defaultDenies;
    else ++forbids;
    batch.push_back(e.request);
  }
  // A realistic mix: allows, policy forbids and default denies all occur.
  CHECK(allows > 0);
  CHECK(forbids > 0);
  CHECK(defaultDenies > 0);

  // The compiled decision table (the service's path) agrees with the reference evaluator.
  engine::FlatTable flat(b.table);
  auto scalar = engine::makeEvaluator("scalar");
  std::vector<cedar::Response> got = engine::authorizeBatch(flat, *scalar, batch);
  REQUIRE(got.size() == reqs.size());
  for (size_t i = 0; i < got.size(); ++i) {
    cedar::Response want = cedar::authorize(b.table.policies, batch[i], *b.store);
    INFO(reqs[i].tmpl->story);
    CHECK(got[i].decision == want.decision);
    CHECK(got[i].reasons == want.reasons);
  }
}

TEST_CASE("demo world: the live-clock deploy follows the change window") {
  engine::Bundle b = engine::loadBundle(world().bundleBytes, {world().authority.publicKey}, "demo bundle");
  int live = 0;
  for (const server::DemoWorkload& w : world().workloads)
    for (const server::DemoRequestTemplate& t : w.requests) {
      if (!t.live) continue;
      ++live;
      REQUIRE(t.context["time"] == "$now");
      for (auto [at, allow] : {std::pair{"2026-11-26T09:30:00Z", true}, std::pair{"2026-11-26T21:30:00Z", false}}) {
        nlohmann::json ctx = t.context;
        ctx["time"] = {{"__extn", {{"fn", "datetime"}, {"arg", at}}}};
        cedar::Request r{cedar::parseEntityUid(w.principal, "principal"), cedar::parseEntityUid(t.action, "action"),
                         cedar::parseEntityUid(t.resource, "resource"), {}};
        r.context = cedar::contextFromJson(ctx, b.schema.get(), r.action, t.story);
        INFO(t.story << " at " << at);
        CHECK((cedar::authorize(b.table.policies, r, *b.store).decision == cedar::Decision::Allow) == allow);
      }
    }
  CHECK(live == 1);
}

TEST_CASE("demo world: the key directory holds what loadgen and verify-bundle read") {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("govmesh_demo_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const server::DemoWorld& w = world();
  server::DemoPaths p = server::writeDemoDirectory(w, dir);
  CHECK(p.bundle == dir / "bundles" / "7.bundle");

  // The bundle on disk verifies against the authority.pub on disk.
  crypto::Ed25519PublicKey authority = crypto::publicKeyFromPem(cedar::readFile(p.authorityPub.string()), "authority.pub");
  CHECK(authority == w.authority.publicKey);
  CHECK_NOTHROW(engine::loadBundle(cedar::readFile(p.bundle.string()), {authority}, "bundle"));

  // workloads.json names the bundle and a private key per workload, matching the registry.
  nlohmann::json doc = cedar::parseJsonText(cedar::readFile(p.workloadsJson.string()), "workloads.json");
  CHECK(doc["bundle"] == "bundles/7.bundle");
  REQUIRE(doc["workloads"].size() == w.workloads.size());
  for (size_t i = 0; i < w.workloads.size(); ++i) {
    const nlohmann::json& j = doc["workloads"][i];
    CHECK(j["keyId"] == w.workloads[i].keyId);
    CHECK(j["principal"] == w.workloads[i].principal);
    CHECK(j["requests"].size() == w.workloads[i].requests.size());
    std::string keyFile = (dir / j["key"].get<std::string>()).string();
    CHECK(crypto::publicKeyFromPem(cedar::readFile(keyFile), keyFile) == w.workloads[i].key.publicKey);
    struct stat st {};
    REQUIRE(::stat(keyFile.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  struct stat st {};
  REQUIRE(::stat(p.authorityKey.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // The sources rebuild the same policies (what `govmesh compile` would read).
  CHECK(cedar::readFile((p.policyDir / "policies.cedar").string()) == w.policyText);
  CHECK(std::filesystem::exists(p.policyDir / "workload-keys.json"));
  std::filesystem::remove_all(dir);
}
