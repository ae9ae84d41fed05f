// Tests for signed policy bundles (engine/bundle.h) and their crypto (engine/crypto_ed25519.h):
// round trips that keep tables and decisions identical, and refusal of every altered,
// unsigned, untrusted, newer or malformed bundle, without a crash.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "compiler/errors.h"
#include "compiler/evaluator.h"
#include "compiler/parser.h"
#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"

using namespace govmesh;
using cedar::EntityUid;
using cedar::InputError;

namespace {

const char* kPolicies = R"(
permit(principal in Team::"sre", action == Action::"deploy", resource)
when { principal.clearance >= 3 && context.zone == "eu" };
forbid(principal, action, resource) when { context.trust == "degraded" };
permit(principal, action in [Action::"read", Action::"deploy"], resource is Node)
when { resource.name like "web-*" && principal.clearance > resource.level };
permit(principal == ?principal, action == Action::"read", resource in ?resource);
forbid(principal is Workload, action, resource) unless { context has zone };
)";

const char* kEntities = R"([
  {"uid": {"type": "Team", "id": "sre"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Workload", "id": "bot"}, "attrs": {"clearance": 4}, "parents": [{"type": "Team", "id": "sre"}]},
  {"uid": {"type": "Workload", "id": "intern"}, "attrs": {"clearance": 1}, "parents": []},
  {"uid": {"type": "Folder", "id": "f"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Node", "id": "n1"}, "attrs": {"name": "web-1", "level": 2}, "parents": [{"type": "Folder", "id": "f"}]},
  {"uid": {"type": "Node", "id": "n2"}, "attrs": {"name": "db-1", "level": 5},
   "tags": {"owner": "x", "since": {"__extn": {"fn": "datetime", "arg": "2024-01-02T03:04:05Z"}}}},
  {"uid": {"type": "Node", "id": "odd\u0000id"}, "attrs": {"name": "web-\u00e9", "level": 0,
   "limits": {"cpu": {"__extn": {"fn": "decimal", "arg": "1.5"}}, "net": {"__extn": {"fn": "ip", "arg": "10.0.0.0/8"}},
              "ttl": {"__extn": {"fn": "duration", "arg": "1h"}}, "peers": [{"__entity": {"type": "Node", "id": "n1"}}, "s", 3]}}}
])";

engine::BundleSources sources() {
  engine::BundleSources s;
  s.policyText = kPolicies;
  s.policyFileName = "policies.cedar";
  s.links.push_back({"L1", "policy3", EntityUid{"Workload", "bot"}, EntityUid{"Folder", "f"}});
  s.entitiesJson = kEntities;
  s.entitiesFileName = "entities.json";
  engine::WorkloadKey k;
  k.keyId = "bot-1";
  k.publicKey = crypto::generateEd25519().publicKey;
  k.principal = EntityUid{"Workload", "bot"};
  k.notAfterMs = 1'800'000'000'000;
  s.keys.push_back(k);
  return s;
}

std::vector<cedar::Request> requests() {
  std::vector<cedar::Request> out;
  const char* principals[] = {"bot", "intern", "stranger"};
  const char* actions[] = {"deploy", "read", "delete"};
  std::vector<EntityUid> resources = {{"Node", "n1"}, {"Node", "n2"}, {"Node", std::string("odd\0id", 6)}, {"Folder", "f"}, {"Node", "zz"}};
  std::vector<cedar::Value> contexts = {
      cedar::Value::record({}),
      cedar::Value::record({{"zone", cedar::Value::string("eu")}}),
      cedar::Value::record({{"zone", cedar::Value::string("us")}}),
      cedar::Value::record({{"zone", cedar::Value::string("eu")}, {"trust", cedar::Value::string("degraded")}}),
      cedar::Value::record({{"zone", cedar::Value::integer(1)}}),
  };
  for (const char* p : principals)
    for (const char* a : actions)
      for (const EntityUid& r : resources)
        for (const cedar::Value& c : contexts) out.push_back({EntityUid{"Workload", p}, EntityUid{"Action", a}, r, c});
  return out;
}

void requireSameResponse(const cedar::Response& a, const cedar::Response& b) {
  REQUIRE(a.decision == b.decision);
  REQUIRE(a.reasons == b.reasons);
  REQUIRE(a.errors.size() == b.errors.size());
  for (size_t i = 0; i < a.errors.size(); ++i) {
    CHECK(a.errors[i].policyId == b.errors[i].policyId);
    CHECK(a.errors[i].message == b.errors[i].message);
  }
}

void requireSameTable(const table::DecisionTable& a, const table::DecisionTable& b) {
  REQUIRE(a.policyCount == b.policyCount);
  REQUIRE(a.words == b.words);
  REQUIRE(a.policies.size() == b.policies.size());
  for (size_t i = 0; i < a.policies.size(); ++i) {
    CHECK(a.policies[i].id == b.policies[i].id);
    CHECK(a.policies[i].effect == b.policies[i].effect);
  }
  CHECK(a.permitMask == b.permitMask);
  CHECK(a.forbidMask == b.forbidMask);
  CHECK(a.entities == b.entities);
  CHECK(a.entityIndex == b.entityIndex);
  REQUIRE(a.features.size() == b.features.size());
  for (size_t i = 0; i < a.features.size(); ++i) {
    const table::Feature &x = a.features[i], &y = b.features[i];
    CHECK(x.kind == y.kind);
    CHECK(x.path == y.path);
    CHECK(x.atomText == y.atomText);
    CHECK(bool(x.atom) == bool(y.atom));
    if (x.atom && y.atom) CHECK(cedar::toCedarText(*x.atom) == cedar::toCedarText(*y.atom));
    CHECK(x.valueRows == y.valueRows);
    CHECK(x.otherRow == y.otherRow);
    CHECK(x.errorRow == y.errorRow);
    CHECK(x.entityRows == y.entityRows);
    CHECK(x.unknownTypeRows == y.unknownTypeRows);
    CHECK(x.unknownAnyTypeRow == y.unknownAnyTypeRow);
    CHECK(x.rows == y.rows);
  }
}

void requireSameStore(const cedar::EntityStore& a, const cedar::EntityStore& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [uid, e] : a.all()) {
    const cedar::Entity* o = b.find(uid);
    REQUIRE(o != nullptr);
    CHECK((e.attrs == o->attrs));  // (( )): doctest cannot print a Value
    CHECK((e.tags == o->tags));
    CHECK(e.parents == o->parents);
    CHECK(a.ancestors(uid) == b.ancestors(uid));
  }
}

// Loading must end in a Bundle or an InputError; anything else (another exception type, a
// crash, a sanitizer report) fails the test.
bool loads(const std::string& bytes, const std::vector<crypto::Ed25519PublicKey>& trusted) {
  try {
    engine::loadBundle(bytes, trusted, "b.bundle");
    return true;
  } catch (const InputError&) {
    return false;
  }
}

struct Signed {
  crypto::Ed25519KeyPair authority = crypto::generateEd25519();
  engine::Bundle original = engine::compileBundle(sources(), 42, 1'700'000'000'000, 1'700'000'600'000);
  std::string bytes = engine::signBundle(engine::writeUnsignedBundle(original), authority.privatePem, "b.bundle", "a.key");
};

}  // namespace

TEST_CASE("crypto: SHA-256, base64, Ed25519 keys and signatures") {
  CHECK(crypto::toHex(crypto::bytesView(crypto::sha256("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) CHECK(crypto::fromBase64(crypto::toBase64(s)) == s);
  CHECK(crypto::toBase64("foobar") == "Zm9vYmFy");
  CHECK_FALSE(crypto::fromBase64("Zm9vYmF"));   // not a multiple of 4
  CHECK_FALSE(crypto::fromBase64("Zm9v YmF"));  // bad character
  CHECK_FALSE(crypto::fromBase64("Zg=a"));      // data after padding
  CHECK_FALSE(crypto::fromBase64("Zh=="));      // non-canonical: hidden bits set
  CHECK_FALSE(crypto::fromBase64("Zg==Zg=="));  // padding before the end
  crypto::Ed25519KeyPair kp = crypto::generateEd25519();
  CHECK(kp.privatePem.find("BEGIN PRIVATE KEY") != std::string::npos);
  CHECK(crypto::publicKeyFromPem(kp.publicPem, "a.pub") == kp.publicKey);
  CHECK(crypto::publicKeyFromPem(kp.privatePem, "a.key") == kp.publicKey);
  crypto::Ed25519Signature sig = crypto::signEd25519(kp.privatePem, "message", "a.key");
  CHECK(crypto::verifyEd25519(kp.publicKey, "message", crypto::bytesView(sig)));
  CHECK_FALSE(crypto::verifyEd25519(kp.publicKey, "messagE", crypto::bytesView(sig)));
  CHECK_FALSE(crypto::verifyEd25519(crypto::generateEd25519().publicKey, "message", crypto::bytesView(sig)));
  CHECK_FALSE(crypto::verifyEd25519(kp.publicKey, "message", "short"));
  CHECK_THROWS_AS(crypto::publicKeyFromPem("not a key", "x.pub"), InputError);
  CHECK_THROWS_AS(crypto::signEd25519(kp.publicPem, "m", "x.pub"), InputError);
  CHECK(crypto::fingerprint(kp.publicKey).rfind("SHA256:", 0) == 0);
}

TEST_CASE("bundle round trip: keygen, compile, sign, verify, load") {
  Signed s;
  engine::Bundle loaded = engine::loadBundle(s.bytes, {s.authority.publicKey}, "b.bundle");
  CHECK(loaded.revision == 42);
  CHECK(loaded.issuedAtMs == 1'700'000'000'000);
  CHECK(loaded.freshUntilMs == 1'700'000'600'000);
  CHECK(loaded.policyText == kPolicies);
  REQUIRE(loaded.links.size() == 1);
  CHECK(loaded.links[0].id == "L1");
  CHECK((loaded.links[0].principal == EntityUid{"Workload", "bot"}));
  REQUIRE(loaded.keys.size() == 1);
  CHECK(loaded.keys[0].keyId == "bot-1");
  CHECK(loaded.keys[0].publicKey == s.original.keys[0].publicKey);
  CHECK(loaded.keys[0].notAfterMs == 1'800'000'000'000);
  CHECK(loaded.table.store == loaded.store.get());
  requireSameTable(s.original.table, loaded.table);
  requireSameStore(*s.original.store, *loaded.store);
  CHECK(loaded.table.policies.back().id == "L1");
  for (const cedar::Request& r : requests()) {
    cedar::Response expected = cedar::authorize(s.original.table.policies, r, *s.original.store);
    requireSameResponse(table::authorizeWithTable(s.original.table, r), expected);
    requireSameResponse(table::authorizeWithTable(loaded.table, r), expected);
    requireSameResponse(cedar::authorize(loaded.table.policies, r, *loaded.store), expected);
  }
  // Same inputs, same bytes: the digest identifies the content.
  CHECK(engine::encodeBundleContent(loaded) == engine::readEnvelope(s.bytes, "b.bundle").content);
  // Copies share the store, so their tables stay usable.
  engine::Bundle copy = loaded;
  CHECK(copy.table.store == copy.store.get());
}

TEST_CASE("bundle with a schema: schema actions are kept, the schema is reloaded") {
  engine::BundleSources src;
  src.policyText = "permit(principal in Team::\"sre\", action in Action::\"ops\", resource) when { context.zone == \"eu\" };";
  src.policyFileName = "p.cedar";
  src.entitiesJson = R"([{"uid": {"type": "Team", "id": "sre"}}, {"uid": {"type": "Workload", "id": "bot"}, "attrs": {"clearance": 4}, "parents": [{"type": "Team", "id": "sre"}]}])";
  src.schemaText = "entity Team; entity Workload in [Team] { clearance: Long }; entity Node;\n"
                   "action ops; action deploy in [ops] appliesTo { principal: [Workload], resource: [Node], context: { zone: String } };";
  src.schemaFileName = "s.cedarschema";
  auto authority = crypto::generateEd25519();
  engine::Bundle b = engine::compileBundle(src, 1, 0, 1000);
  engine::Bundle loaded = engine::loadBundle(engine::signBundle(engine::writeUnsignedBundle(b), authority.privatePem, "b", "k"),
                                             {authority.publicKey}, "b");
  REQUIRE(loaded.schema);
  CHECK(loaded.schema->findAction(EntityUid{"Action", "deploy"}) != nullptr);
  requireSameStore(*b.store, *loaded.store);
  cedar::Request r{EntityUid{"Workload", "bot"}, EntityUid{"Action", "deploy"}, EntityUid{"Node", "n"},
                   cedar::Value::record({{"zone", cedar::Value::string("eu")}})};
  CHECK(table::authorizeWithTable(loaded.table, r).decision == cedar::Decision::Allow);
}

TEST_CASE("every single-byte change of a signed bundle is refused") {
  engine::BundleSources src;
  src.policyText = "permit(principal == User::\"a\", action, resource) when { context.x == 1 };";
  src.policyFileName = "p.cedar";
  src.entitiesJson = R"([{"uid": {"type": "User", "id": "a"}}])";
  auto authority = crypto::generateEd25519();
  std::string good = engine::signBundle(engine::writeUnsignedBundle(engine::compileBundle(src, 1, 0, 1000)), authority.privatePem, "b", "k");
  REQUIRE(loads(good, {authority.publicKey}));
  MESSAGE("flipping each of " << good.size() << " bytes");
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t{0xff}, uint8_t{0x01}}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      INFO("byte " << i << " xor " << int(mask));
      REQUIRE_FALSE(loads(bad, {authority.publicKey}));
    }
  }
  // Truncated and extended files too.
  for (size_t n : {size_t{0}, size_t{8}, good.size() - 8, good.size() - 1}) CHECK_FALSE(loads(good.substr(0, n), {authority.publicKey}));
  CHECK_FALSE(loads(good + std::string(8, '\0'), {authority.publicKey}));
}

TEST_CASE("the content decoder survives arbitrary corruption (digest not consulted)") {
  engine::BundleSources src = sources();
  std::string content = engine::encodeBundleContent(engine::compileBundle(src, 1, 0, 1000));
  std::mt19937_64 rng(7);
  size_t decoded = 0;
  for (size_t i = 0; i < content.size(); i += 1 + rng() % 5) {
    std::string bad = content;
    bad[i] = static_cast<char>(rng());
    try {
      engine::decodeBundleContent(bad, "c");
      ++decoded;  // a change that keeps the content valid (a character of a text, say)
    } catch (const InputError&) {
    }
  }
  MESSAGE(decoded << " corrupted contents still decoded");
}

TEST_CASE("unsigned, untrusted, newer and older bundles are refused with clear messages") {
  Signed s;
  std::string unsignedBytes = engine::writeUnsignedBundle(s.original);
  CHECK_THROWS_WITH_AS(engine::loadBundle(unsignedBytes, {s.authority.publicKey}, "b.bundle"), doctest::Contains("not signed"), InputError);
  crypto::Ed25519KeyPair other = crypto::generateEd25519();
  CHECK_THROWS_WITH_AS(engine::loadBundle(s.bytes, {other.publicKey}, "b.bundle"), doctest::Contains("not a trusted authority key"), InputError);
  CHECK_THROWS_WITH_AS(engine::loadBundle(s.bytes, {}, "b.bundle"), doctest::Contains("not a trusted"), InputError);
  CHECK_NOTHROW(engine::loadBundle(s.bytes, {other.publicKey, s.authority.publicKey}, "b.bundle"));
  // Signed by another key that claims to be the trusted one: the signature does not verify.
  engine::SignedEnvelope env = engine::readEnvelope(engine::signBundle(unsignedBytes, other.privatePem, "b", "k"), "b");
  env.signerPublicKey = std::string(crypto::bytesView(s.authority.publicKey));
  CHECK_THROWS_WITH_AS(engine::loadBundle(engine::encodeEnvelope(env), {s.authority.publicKey}, "b.bundle"),
                       doctest::Contains("signature does not verify"), InputError);
  // A newer format is refused by name, before anything else is looked at.
  env = engine::readEnvelope(s.bytes, "b");
  env.formatVersion = engine::kBundleFormatVersion + 1;
  std::string expected = "bundle format " + std::to_string(engine::kBundleFormatVersion + 1) +
                         " is newer than this govmesh understands (" + std::to_string(engine::kBundleFormatVersion) + ")";
  CHECK_THROWS_WITH_AS(engine::loadBundle(engine::encodeEnvelope(env), {s.authority.publicKey}, "b.bundle"),
                       doctest::Contains(expected.c_str()), InputError);
  env.formatVersion = 0;
  CHECK_THROWS_WITH_AS(engine::readEnvelope(engine::encodeEnvelope(env), "b"), doctest::Contains("not supported"), InputError);
  // A newer content version under a current envelope (a faulty authority) is refused as well.
  engine::Bundle newer = s.original;
  newer.formatVersion = engine::kBundleFormatVersion + 1;
  CHECK_THROWS_WITH_AS(engine::decodeBundleContent(engine::encodeBundleContent(newer), "c"), doctest::Contains("is newer than"), InputError);
  // Signing refuses an altered bundle.
  env = engine::readEnvelope(unsignedBytes, "b");
  env.content[env.content.size() / 2] ^= 1;
  CHECK_THROWS_WITH_AS(engine::signBundle(engine::encodeEnvelope(env), s.authority.privatePem, "b", "k"), doctest::Contains("digest"), InputError);
  CHECK_THROWS_AS(engine::readEnvelope("not a bundle", "b"), InputError);
  CHECK_THROWS_AS(engine::readEnvelope(std::string(64, '\xff'), "b"), InputError);
}

TEST_CASE("freshness and workload keys") {
  Signed s;
  CHECK(engine::isFresh(s.original, 1'700'000'000'000));
  CHECK(engine::isFresh(s.original, 1'700'000'599'999));
  CHECK_FALSE(engine::isFresh(s.original, 1'700'000'600'000));
  CHECK(engine::findWorkloadKey(s.original, "bot-1", 1'799'999'999'999) != nullptr);
  CHECK(engine::findWorkloadKey(s.original, "bot-1", 1'800'000'000'000) == nullptr);
  CHECK(engine::findWorkloadKey(s.original, "nobody", 0) == nullptr);
  CHECK(engine::isoTime(1'700'000'000'000) == "2023-11-14T22:13:20.000Z");
  engine::BundleCounts c = engine::countBundle(s.original);
  CHECK(c.policies == 5);
  CHECK(c.links == 1);
  CHECK(c.entities == 7);
  CHECK(c.keys == 1);
}

TEST_CASE("a signed but inconsistent table is an InputError, not a crash") {
  engine::Bundle good = engine::compileBundle(sources(), 1, 0, 1000);
  CHECK_NOTHROW(engine::decodeBundleContent(engine::encodeBundleContent(good), "c"));
  auto refused = [&](auto mutate, const char* message) {
    engine::Bundle b = good;
    mutate(b);
    CHECK_THROWS_WITH_AS(engine::decodeBundleContent(engine::encodeBundleContent(b), "c"), doctest::Contains(message), InputError);
  };
  auto firstOf = [](engine::Bundle& b, table::FeatureKind k) -> table::Feature& {
    for (table::Feature& f : b.table.features)
      if (f.kind == k) return f;
    REQUIRE_MESSAGE(false, "no feature of the kind");
    return b.table.features.front();
  };
  refused([&](engine::Bundle& b) { firstOf(b, table::FeatureKind::Principal).entityRows[0] = 1u << 30; }, "names row");
  refused([&](engine::Bundle& b) { firstOf(b, table::FeatureKind::Principal).entityRows.pop_back(); }, "expected");
  refused([&](engine::Bundle& b) { firstOf(b, table::FeatureKind::Principal).unknownAnyTypeRow = 1u << 30; }, "unknown-entity row");
  refused([&](engine::Bundle& b) { firstOf(b, table::FeatureKind::Context).errorRow = 1u << 30; }, "error row");
  refused([&](engine::Bundle& b) { firstOf(b, table::FeatureKind::Context).valueRows["\"zz\""] = 1u << 30; }, "names row");
  refused([&](engine::Bundle& b) { firstOf(b, table::FeatureKind::Derived).atomText = "(("; }, "feature");
  refused([&](engine::Bundle& b) { b.table.permitMask[0] ^= 1; }, "effect masks");
  refused([&](engine::Bundle& b) { b.table.forbidMask[0] |= table::Word{1} << 63; }, "past the last policy");
  refused([&](engine::Bundle& b) { b.table.policies[0].id = "nope"; }, "not in the policy text");
  refused([&](engine::Bundle& b) { b.table.policies[1].id = b.table.policies[0].id; }, "listed twice");
  refused([&](engine::Bundle& b) { b.policyText += "permit(principal, action, resource);"; }, "policy text defines");
  refused([&](engine::Bundle& b) { b.links.clear(); }, "policy text defines");
  refused([&](engine::Bundle& b) { b.table.entities.push_back(b.table.entities[0]); }, "listed twice");
  refused([&](engine::Bundle& b) { b.policyText = "permit(principal, action, resource) when { ((( };"; }, "policies.cedar");
  // A store entity missing from the table's entity universe would silently change decisions.
  refused(
      [&](engine::Bundle& b) {
        b.table.entities.clear();
        b.table.entityIndex.clear();
        for (table::Feature& f : b.table.features) f.entityRows.clear();
      },
      "of the store is not in the table");
}

TEST_CASE("entities that Cedar's JSON would misread are refused when writing") {
  engine::Bundle b = engine::compileBundle(sources(), 1, 0, 1000);
  cedar::EntityStore store;
  cedar::Entity e;
  e.uid = EntityUid{"User", "a"};
  e.attrs = cedar::Value::record({{"r", cedar::Value::record({{"__extn", cedar::Value::integer(1)}})}});
  store.add(e);
  store.computeAncestors();
  b.store = std::make_shared<const cedar::EntityStore>(std::move(store));
  CHECK_THROWS_WITH_AS(engine::encodeBundleContent(b), doctest::Contains("__extn"), InputError);
}
