// Tests for the wire conversion (server/request_capnp.h): requests and decisions survive a trip
// through Cap'n Proto bytes exactly (every value kind, nesting, extensions, interned entities);
// every malformed input, including unions from a newer schema and corrupted bytes, comes back as
// MALFORMED with a reason and never as an exception; a client's signature still verifies after
// the trip; decisions fail closed when read.
#include <doctest/doctest.h>

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>

#include <climits>
#include <cstring>
#include <memory>
#include <random>

#include "compiler/extensions.h"
#include "engine/crypto_ed25519.h"
#include "server/request_capnp.h"

using namespace govmesh;
using cedar::Value;
using engine::DenyCode;
using engine::SignedRequest;
using server::DecodedRequest;
namespace wire = server::wire;

namespace {

SignedRequest richWireRequest() {
  SignedRequest r;
  r.principal = {"Workload", std::string("bot\0id", 6)};  // a NUL inside an id survives
  r.action = {"Acme::Action", "deploy"};
  r.resource = {"Node", ""};
  r.context = Value::record({
      {"s", Value::string("web-\xc3\xa9")},
      {"empty", Value::string("")},
      {"n", Value::integer(INT64_MIN)},
      {"t", Value::boolean(true)},
      {"f", Value::boolean(false)},
      {"e", Value::entity({"Team", "sre"})},
      {"set", Value::set({Value::integer(3), Value::string("x"), Value::boolean(false), Value::set({})})},
      {"rec", Value::record({{"inner", Value::set({Value::record({{"deep", Value::integer(1)}}), Value::record({})})}})},
      {"dec", Value::decimal(*cedar::parseDecimal("-1.5"))},
      {"decMin", Value::decimal({INT64_MIN})},
      {"ip", Value::ip(*cedar::parseIp("10.0.0.1/24"))},
      {"ip6", Value::ip(*cedar::parseIp("2001:db8::1/64"))},
      {"when", Value::datetime(*cedar::parseDatetime("2026-01-02T03:04:05.678Z"))},
      {"epochLo", Value::datetime(*cedar::parseDatetime("0000-01-01"))},
      {"dur", Value::duration(*cedar::parseDuration("-1d2h"))},
      {"durMin", Value::duration({INT64_MIN})},
  });
  r.keyId = "wl-key-1";
  r.timestampNs = -1;  // negative and all-ones: the wire keeps every bit
  for (size_t i = 0; i < r.nonce.size(); ++i) r.nonce[i] = static_cast<uint8_t>(0xf0 + i);
  r.payload = std::string("pay\0load", 8);
  for (size_t i = 0; i < r.signature.size(); ++i) r.signature[i] = static_cast<uint8_t>(i * 3);
  return r;
}

// Serializes a request the way a client sends it.
kj::Array<capnp::word> toWords(const SignedRequest& r, const engine::Bundle* intern = nullptr) {
  capnp::MallocMessageBuilder mb;
  engine::ShapeCheck c = server::encodeRequest(r, mb.initRoot<wire::Request>(), intern);
  REQUIRE(c.ok());
  return capnp::messageToFlatArray(mb);
}

DecodedRequest fromWords(kj::ArrayPtr<const capnp::word> words, const engine::Bundle* intern = nullptr) {
  capnp::FlatArrayMessageReader reader(words, server::wireReaderOptions());
  return server::decodeRequest(reader.getRoot<wire::Request>(), intern);
}

void checkSame(const SignedRequest& a, const SignedRequest& b) {
  CHECK((a.principal == b.principal));
  CHECK((a.action == b.action));
  CHECK((a.resource == b.resource));
  CHECK((a.context == b.context));
  CHECK(a.keyId == b.keyId);
  CHECK(a.timestampNs == b.timestampNs);
  CHECK(a.nonce == b.nonce);
  CHECK(a.payload == b.payload);
  CHECK(a.payloadDigest == b.payloadDigest);
  CHECK(a.signature == b.signature);
  CHECK(engine::canonicalSigningBytes(a) == engine::canonicalSigningBytes(b));
}

// A builder holding a valid request, for tests that then break one field.
struct WireRequest {
  capnp::MallocMessageBuilder mb;
  wire::Request::Builder root;
  WireRequest() : root(mb.initRoot<wire::Request>()) {
    SignedRequest r = richWireRequest();
    r.context = Value::record({{"a", Value::integer(1)}});
    REQUIRE(server::encodeRequest(r, root).ok());
  }
  DecodedRequest decode(const engine::Bundle* intern = nullptr) {
    // Through bytes, as the node receives it.
    auto words = capnp::messageToFlatArray(mb);
    return fromWords(words, intern);
  }
};

void expectMalformed(const DecodedRequest& d, const std::string& inReason) {
  INFO("reason: " << d.reason << " / expected to contain: " << inReason);
  CHECK(d.code == DenyCode::kMalformed);
  CHECK(d.reason.find(inReason) != std::string::npos);
}

// Sets a struct's union discriminant to a raw value, as a writer with a newer schema would.
template <typename T>
void setRawDiscriminant(typename T::Builder b, uint16_t which) {
  const uint32_t offset = capnp::Schema::from<T>().getProto().getStruct().getDiscriminantOffset();
  capnp::AnyStruct::Builder any = capnp::toAny(kj::mv(b));
  auto data = any.getDataSection();
  REQUIRE(data.size() >= (offset + 1) * 2);
  std::memcpy(data.begin() + offset * 2, &which, 2);  // little-endian, as Cap'n Proto stores it
}

engine::Bundle internBundle() {
  engine::Bundle b;
  b.table.entities = {{"Workload", std::string("bot\0id", 6)}, {"Acme::Action", "deploy"}, {"Team", "sre"}};
  for (uint32_t i = 0; i < b.table.entities.size(); ++i) b.table.entityIndex[b.table.entities[i]] = i;
  return b;
}

}  // namespace

TEST_CASE("requests round-trip through the wire: every value kind, nesting, extensions") {
  const SignedRequest r = richWireRequest();
  const DecodedRequest d = fromWords(toWords(r));
  INFO("reason: " << d.reason);
  REQUIRE(d.ok());
  checkSame(d.request, r);

  SUBCASE("payload forms") {
    SignedRequest digestOnly = r;
    digestOnly.payload.reset();
    digestOnly.payloadDigest = crypto::sha256("x");
    checkSame(fromWords(toWords(digestOnly)).request, digestOnly);

    SignedRequest both = r;
    both.payloadDigest = crypto::sha256("x");
    checkSame(fromWords(toWords(both)).request, both);

    SignedRequest none = r;
    none.payload.reset();
    checkSame(fromWords(toWords(none)).request, none);

    SignedRequest emptyPayload = r;  // an empty payload is still carried
    emptyPayload.payload = std::string();
    const DecodedRequest e = fromWords(toWords(emptyPayload));
    REQUIRE(e.request.payload.has_value());
    CHECK(e.request.payload->empty());
  }

  SUBCASE("interned entity references resolve through the bundle") {
    const engine::Bundle b = internBundle();
    const auto words = toWords(r, &b);
    // Interned on the wire (smaller than the text form) ...
    CHECK(words.size() < toWords(r).size());
    capnp::FlatArrayMessageReader reader(words);
    auto root = reader.getRoot<wire::Request>();
    CHECK(root.getPrincipal().isInterned());
    CHECK(root.getAction().isInterned());
    CHECK(root.getResource().isUid());  // not in the table: sent as text
    // ... and the same request once decoded.
    checkSame(server::decodeRequest(root, &b).request, r);
    // Without the table they cannot be read.
    expectMalformed(server::decodeRequest(root, nullptr), "principal is interned (0) but no bundle is active");
    engine::Bundle small;
    expectMalformed(server::decodeRequest(root, &small), "principal interned id 0 is past the bundle's entity table (0 entities)");
  }

  SUBCASE("an absent context is the empty record") {
    WireRequest w;
    w.root.disownContext();
    const DecodedRequest e = w.decode();
    REQUIRE(e.ok());
    CHECK((e.request.context == Value::record({})));
  }
}

TEST_CASE("a client's signature verifies after the wire round trip, and only for what was signed") {
  const crypto::Ed25519KeyPair key = crypto::generateEd25519();
  SignedRequest r = richWireRequest();
  engine::signRequest(r, key.privatePem);
  const engine::Bundle b = internBundle();
  for (const engine::Bundle* intern : {static_cast<const engine::Bundle*>(nullptr), &b}) {
    const DecodedRequest d = fromWords(toWords(r, intern), intern);
    REQUIRE(d.ok());
    CHECK(engine::verifyRequestSignature(d.request, key.publicKey));
  }
  // A wire whose record fields come in another order, and whose set repeats an element, is the
  // same request: it still verifies.
  {
    capnp::MallocMessageBuilder mb;
    auto root = mb.initRoot<wire::Request>();
    SignedRequest small = richWireRequest();
    small.context = Value::record({{"a", Value::integer(1)}, {"b", Value::set({Value::string("x"), Value::string("y")})}});
    engine::signRequest(small, key.privatePem);
    REQUIRE(server::encodeRequest(small, root).ok());
    auto fields = root.getContext().initRecord(2);
    fields[0].setName("b");
    auto set = fields[0].initValue().initSet(3);
    set[0].setString("y");
    set[1].setString("x");
    set[2].setString("y");
    fields[1].setName("a");
    fields[1].initValue().setLong(1);
    const DecodedRequest d = fromWords(capnp::messageToFlatArray(mb));
    REQUIRE(d.ok());
    CHECK(engine::verifyRequestSignature(d.request, key.publicKey));
    // Change a value on the wire: still readable, no longer verifies.
    fields[1].initValue().setLong(2);
    const DecodedRequest t = fromWords(capnp::messageToFlatArray(mb));
    REQUIRE(t.ok());
    CHECK_FALSE(engine::verifyRequestSignature(t.request, key.publicKey));
  }
  // An interned index that means another entity in another bundle revision fails the signature.
  {
    engine::Bundle other = internBundle();
    std::swap(other.table.entities[0], other.table.entities[2]);
    const DecodedRequest d = fromWords(toWords(r, &b), &other);
    REQUIRE(d.ok());
    CHECK((d.request.principal == cedar::EntityUid{"Team", "sre"}));
    CHECK_FALSE(engine::verifyRequestSignature(d.request, key.publicKey));
  }
}

TEST_CASE("malformed requests are MALFORMED with a reason, never an exception") {
  SUBCASE("missing or unset fields") {
    {
      WireRequest w;
      w.root.disownPrincipal();
      expectMalformed(w.decode(), "principal is missing");
    }
    {
      WireRequest w;
      w.root.initResource();  // present but unset
      expectMalformed(w.decode(), "resource is missing");
    }
    {
      WireRequest w;
      w.root.disownKeyId();
      expectMalformed(w.decode(), "keyId is missing");
    }
    {
      WireRequest w;
      w.root.setKeyId("");
      expectMalformed(w.decode(), "keyId is empty");
    }
    {
      WireRequest w;
      w.root.initContext();
      expectMalformed(w.decode(), "context is unset");
    }
    {
      WireRequest w;
      w.root.getContext().getRecord()[0].initValue();
      expectMalformed(w.decode(), "context.a is unset");
    }
  }
  SUBCASE("wrong lengths") {
    // Zero bytes of any length, as a Data reader.
    std::vector<uint8_t> buf(engine::kMaxPayloadBytes + 1);
    auto bytes = [&](size_t n) { return capnp::Data::Reader(buf.data(), n); };
    for (size_t n : {0, 15, 17}) {
      WireRequest w;
      auto b = bytes(n);
      w.root.setNonce(b);
      expectMalformed(w.decode(), "nonce is " + std::to_string(n) + " bytes, expected 16");
    }
    for (size_t n : {0, 63, 65}) {
      WireRequest w;
      auto b = bytes(n);
      w.root.setSignature(b);
      expectMalformed(w.decode(), "signature is " + std::to_string(n) + " bytes, expected 64");
    }
    {
      WireRequest w;
      w.root.disownSignature();
      expectMalformed(w.decode(), "signature is 0 bytes");
    }
    {
      WireRequest w;
      auto b = bytes(31);
      w.root.setPayloadDigest(b);
      expectMalformed(w.decode(), "payloadDigest is 31 bytes, expected 32");
    }
    {
      WireRequest w;
      auto b = bytes(engine::kMaxPayloadBytes + 1);
      w.root.setPayload(b);
      expectMalformed(w.decode(), "payload is 1048577 bytes (limit 1048576)");
    }
  }
  SUBCASE("bad context") {
    {
      WireRequest w;
      w.root.initContext().setLong(5);
      expectMalformed(w.decode(), "context is not a record");
    }
    {
      WireRequest w;
      auto fields = w.root.getContext().initRecord(2);
      fields[0].setName("k");
      fields[0].initValue().setLong(1);
      fields[1].setName("k");
      fields[1].initValue().setLong(2);
      expectMalformed(w.decode(), "context has the key `k` twice");
    }
    {
      WireRequest w;
      auto x = w.root.getContext().getRecord()[0].initValue().initExtension();
      x.setName("color");
      x.setArgument("red");
      expectMalformed(w.decode(), "context.a: unknown extension `color`");
    }
    {
      WireRequest w;
      auto x = w.root.getContext().getRecord()[0].initValue().initExtension();
      x.setName("ip");
      x.setArgument("10.0.0.256");
      expectMalformed(w.decode(), "context.a: `10.0.0.256` is not a valid ip");
    }
    {
      WireRequest w;
      w.root.getContext().getRecord()[0].initValue().setString("\xff");
      expectMalformed(w.decode(), "context.a: string is not valid UTF-8");
    }
    {
      WireRequest w;
      auto e = w.root.getContext().getRecord()[0].initValue().initEntity();
      e.setInterned(7);
      expectMalformed(w.decode(), "context.a is interned (7) but no bundle is active");
    }
  }
  SUBCASE("nesting too deep, and just deep enough") {
    auto nestedWire = [](int depth) {
      WireRequest w;
      // The context record is depth 1; each nested value adds one (alternating sets and records).
      auto v = w.root.getContext().getRecord()[0].initValue();
      for (int d = 2; d <= depth; ++d) {
        if (d % 2) {
          auto f = v.initRecord(1);
          f[0].setName("r");
          v = f[0].initValue();
        } else {
          v = v.initSet(1)[0];
        }
      }
      v.setLong(0);
      return w.decode();
    };
    CHECK(nestedWire(engine::kMaxContextDepth).ok());
    // The worst case for Cap'n Proto's nesting limit: records all the way, an entity at the bottom.
    {
      WireRequest w;
      auto v = w.root.getContext().getRecord()[0].initValue();
      for (int d = 2; d <= engine::kMaxContextDepth; ++d) {
        auto f = v.initRecord(1);
        f[0].setName("r");
        v = f[0].initValue();
      }
      v.initEntity().initUid().setType("Team");
      const DecodedRequest d = w.decode();
      INFO("reason: " << d.reason);
      CHECK(d.ok());
    }
    expectMalformed(nestedWire(engine::kMaxContextDepth + 1), "nested deeper than 32 levels");
    expectMalformed(nestedWire(10000), "nested deeper than 32 levels");
  }
  SUBCASE("a context too large is refused before it is read") {
    WireRequest w;
    w.root.getContext().getRecord()[0].initValue().initSet(100000);
    expectMalformed(w.decode(), "context.a: context exceeds 65536 bytes");
  }
  SUBCASE("union members from a newer schema") {
    {
      WireRequest w;
      setRawDiscriminant<wire::Value>(w.root.getContext().getRecord()[0].getValue(), 42);
      expectMalformed(w.decode(), "context.a is a value of an unknown kind (42), from a newer schema?");
    }
    {
      WireRequest w;
      setRawDiscriminant<wire::EntityRef>(w.root.getAction(), 9);
      expectMalformed(w.decode(), "action is an entity reference of an unknown kind (9)");
    }
    {
      WireRequest w;
      setRawDiscriminant<wire::Value>(w.root.getContext(), 1000);
      expectMalformed(w.decode(), "context is not a record");
    }
  }
  SUBCASE("bad names") {
    WireRequest w;
    w.root.getPrincipal().getUid().setType("not a type");
    expectMalformed(w.decode(), "principal type `not a type` is not a Cedar entity type name");
  }
}

TEST_CASE("corrupted wire bytes never throw out of decodeRequest") {
  SignedRequest r = richWireRequest();
  r.payloadDigest = crypto::sha256("x");
  const auto words = toWords(r);
  const auto bytes = words.asBytes();
  std::mt19937_64 rng(0x6d657368);  // fixed seed: a failure reproduces
  size_t decoded = 0, refused = 0, unreadableRoot = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    auto copy = kj::heapArray<capnp::word>(words.asPtr());
    auto b = copy.asBytes();
    // Flip 1-3 random bits (the first 8 bytes, the segment table, included).
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      const size_t bit = rng() % (bytes.size() * 8);
      b[bit / 8] ^= static_cast<kj::byte>(1 << (bit % 8));
    }
    std::unique_ptr<capnp::FlatArrayMessageReader> reader;
    wire::Request::Reader root;
    try {
      reader = std::make_unique<capnp::FlatArrayMessageReader>(copy.asPtr(), server::wireReaderOptions());
      root = reader->getRoot<wire::Request>();
    } catch (const kj::Exception&) {
      ++unreadableRoot;  // the server refuses the whole call before decoding: not our concern here
      continue;
    }
    DecodedRequest d;
    INFO("trial " << trial << " (seed 0x6d657368)");
    CHECK_NOTHROW(d = server::decodeRequest(root, nullptr));
    if (d.ok()) {
      ++decoded;
    } else {
      ++refused;
      CHECK(d.code == DenyCode::kMalformed);
      CHECK_FALSE(d.reason.empty());
    }
  }
  MESSAGE("corrupted messages: " << decoded << " decoded, " << refused << " MALFORMED, " << unreadableRoot
                                 << " unreadable root");
  CHECK(refused > 0);
}

TEST_CASE("decodeRequests answers each request of a batch on its own") {
  capnp::MallocMessageBuilder mb;
  auto list = mb.initRoot<capnp::AnyPointer>().initAs<capnp::List<wire::Request>>(3);
  SignedRequest r = richWireRequest();
  REQUIRE(server::encodeRequest(r, list[0]).ok());
  REQUIRE(server::encodeRequest(r, list[1]).ok());
  const uint8_t shortNonce[3] = {1, 2, 3};
  list[1].setNonce(capnp::Data::Reader(shortNonce, 3));
  REQUIRE(server::encodeRequest(r, list[2]).ok());
  std::vector<DecodedRequest> out(7);  // storage reused, size fixed by the call
  server::decodeRequests(list.asReader(), nullptr, out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].ok());
  expectMalformed(out[1], "nonce is 3 bytes");
  CHECK(out[2].ok());
  checkSame(out[2].request, r);
}

TEST_CASE("encodeRequest refuses what the wire cannot carry") {
  SignedRequest r = richWireRequest();
  capnp::MallocMessageBuilder mb;
  r.context = Value::record({{"far", Value::datetime({253402300800000})}});  // year 10000
  engine::ShapeCheck c = server::encodeRequest(r, mb.initRoot<wire::Request>());
  CHECK(c.code == DenyCode::kMalformed);
  CHECK(c.reason.find("cannot be sent") != std::string::npos);
  r.context = Value::integer(3);
  CHECK(server::encodeRequest(r, mb.initRoot<wire::Request>()).code == DenyCode::kMalformed);
}

TEST_CASE("decisions round-trip, and fail closed when read") {
  engine::Decision allow;
  allow.allow = true;
  allow.reasons = {"policy0", "policy7"};
  allow.lineageSeq = 12345678901234ULL;
  engine::Decision policyDeny;
  policyDeny.reasons = {"forbid-degraded"};
  policyDeny.errors = {"policy3: attribute `zone` not found"};
  engine::Decision fault = engine::denyDecision(DenyCode::kBadSignature);
  engine::Decision contradictory;  // allow with a fault code: a bug upstream, must not allow
  contradictory.allow = true;
  contradictory.code = DenyCode::kPolicyStale;

  capnp::MallocMessageBuilder mb;
  auto list = mb.initRoot<capnp::AnyPointer>().initAs<capnp::List<wire::Decision>>(4);
  const std::vector<engine::Decision> ds = {allow, policyDeny, fault, contradictory};
  CHECK(server::encodeDecisions(ds, list));
  const auto words = capnp::messageToFlatArray(mb);
  capnp::FlatArrayMessageReader reader(words);
  auto read = reader.getRoot<capnp::AnyPointer>().getAs<capnp::List<wire::Decision>>();
  REQUIRE(read.size() == 4);

  const engine::Decision a = server::decodeDecision(read[0]);
  CHECK(a.allow);
  CHECK(a.code == DenyCode::kNone);
  CHECK(a.reasons == allow.reasons);
  CHECK(a.lineageSeq == allow.lineageSeq);
  CHECK(read[0].getDenyName().size() == 0);

  const engine::Decision p = server::decodeDecision(read[1]);
  CHECK_FALSE(p.allow);
  CHECK(p.code == DenyCode::kNone);
  CHECK(p.reasons == policyDeny.reasons);
  CHECK(p.errors == policyDeny.errors);

  const engine::Decision f = server::decodeDecision(read[2]);
  CHECK_FALSE(f.allow);
  CHECK(f.code == DenyCode::kBadSignature);
  CHECK(std::string(read[2].getDenyName().cStr()) == "BAD_SIGNATURE");
  CHECK(read[2].getDenyCode() == 4);

  CHECK_FALSE(read[3].getAllow());
  CHECK_FALSE(server::decodeDecision(read[3]).allow);
  CHECK(server::decodeDecision(read[3]).code == DenyCode::kPolicyStale);

  // A mismatched list size is a caller bug: reported, never out of bounds.
  capnp::MallocMessageBuilder mb2;
  auto shortList = mb2.initRoot<capnp::AnyPointer>().initAs<capnp::List<wire::Decision>>(2);
  CHECK_FALSE(server::encodeDecisions(ds, shortList));

  // What a (buggy or newer) node might send: allow with a nonzero code, or a code we do not know.
  capnp::MallocMessageBuilder mb3;
  auto odd = mb3.initRoot<wire::Decision>();
  odd.setAllow(true);
  odd.setDenyCode(200);
  const engine::Decision o = server::decodeDecision(odd.asReader());
  CHECK_FALSE(o.allow);
  CHECK(static_cast<int>(o.code) == 200);
  CHECK(engine::denyCodeName(o.code) == "UNKNOWN");
}
