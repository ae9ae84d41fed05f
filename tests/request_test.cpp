// Tests for the request model (engine/request.h): the canonical signing bytes are pinned by a
// golden vector, injective on crafted near-collisions, normalized where Cedar is unordered, and
// sensitive to every bit of every signed field; signatures round-trip through the reference
// verifier; validateShape refuses each malformed shape with a reason.
#include <doctest/doctest.h>

#include <set>

#include "compiler/errors.h"
#include "compiler/extensions.h"
#include "engine/crypto_ed25519.h"
#include "engine/ed25519_verify.h"
#include "engine/request.h"

using namespace govmesh;
using cedar::EntityUid;
using cedar::Value;
using engine::canonicalSigningBytes;
using engine::DenyCode;
using engine::SignedRequest;

namespace {

SignedRequest sampleRequest() {
  SignedRequest r;
  r.principal = {"User", "alice"};
  r.action = {"Action", "read"};
  r.resource = {"Doc", "d1"};
  r.context = Value::record({{"b", Value::boolean(true)}, {"a", Value::integer(5)}});
  r.keyId = "k1";
  r.timestampNs = 0x0102030405060708;
  for (size_t i = 0; i < r.nonce.size(); ++i) r.nonce[i] = static_cast<uint8_t>(i);
  return r;
}

// A request whose context holds every kind of value, nested.
SignedRequest richRequest() {
  SignedRequest r = sampleRequest();
  r.context = Value::record({
      {"s", Value::string("web-\xc3\xa9")},
      {"n", Value::integer(-7)},
      {"e", Value::entity({"Team", "sre"})},
      {"set", Value::set({Value::integer(3), Value::string("x"), Value::boolean(false)})},
      {"rec", Value::record({{"inner", Value::set({Value::record({{"deep", Value::integer(1)}})})}})},
      {"dec", Value::decimal(*cedar::parseDecimal("-1.5"))},
      {"ip", Value::ip(*cedar::parseIp("10.0.0.1/24"))},
      {"ip6", Value::ip(*cedar::parseIp("2001:db8::1"))},
      {"when", Value::datetime(*cedar::parseDatetime("2026-01-02T03:04:05.678Z"))},
      {"dur", Value::duration(*cedar::parseDuration("-1d2h"))},
  });
  r.payload = std::string("the payload");
  return r;
}

std::string bytesOf(const SignedRequest& r) { return canonicalSigningBytes(r); }

}  // namespace

TEST_CASE("canonical signing bytes match the documented format (golden vector)") {
  const std::string expected =
      "676f766d6573682f726571756573742f763100"                  // "govmesh/request/v1\0"
      "0400000055736572" "05000000616c696365"                    // principal User::"alice"
      "06000000416374696f6e" "0400000072656164"                  // action Action::"read"
      "03000000446f63" "020000006431"                            // resource Doc::"d1"
      "06" "02000000"                                            // context: record of 2 fields
      "0100000061" "02" "0500000000000000"                       //   "a": long 5
      "0100000062" "01" "01"                                     //   "b": bool true
      "020000006b31"                                             // keyId "k1"
      "0807060504030201"                                         // timestampNs
      "000102030405060708090a0b0c0d0e0f"                         // nonce
      "00";                                                      // no payload
  CHECK(crypto::toHex(bytesOf(sampleRequest())) == expected);
  CHECK(engine::kRequestSigningPrefix.size() == 19);
}

TEST_CASE("canonical signing bytes: the payload is represented by its digest") {
  SignedRequest withPayload = sampleRequest();
  withPayload.payload = std::string("hello");
  SignedRequest withDigest = sampleRequest();
  withDigest.payloadDigest = crypto::sha256("hello");
  SignedRequest withBoth = withPayload;
  withBoth.payloadDigest = crypto::sha256("hello");
  CHECK(bytesOf(withPayload) == bytesOf(withDigest));
  CHECK(bytesOf(withBoth) == bytesOf(withDigest));
  const std::string b = bytesOf(withDigest);
  CHECK(b.substr(b.size() - 33) == std::string("\x01", 1) + std::string(crypto::bytesView(crypto::sha256("hello"))));

  // When both are carried, the claimed digest is what is signed (the verify stage checks the match).
  SignedRequest mismatched = withPayload;
  mismatched.payloadDigest = crypto::sha256("other");
  CHECK(bytesOf(mismatched) != bytesOf(withPayload));
  CHECK(engine::signedPayloadDigest(mismatched) == crypto::sha256("other"));

  // An empty payload is a payload, not the absence of one.
  SignedRequest empty = sampleRequest();
  empty.payload = std::string();
  CHECK(bytesOf(empty) != bytesOf(sampleRequest()));
  CHECK(engine::signedPayloadDigest(empty) == crypto::sha256(""));
  CHECK_FALSE(engine::signedPayloadDigest(sampleRequest()).has_value());

  // The append form with a precomputed digest gives the same bytes (the batched hot path).
  std::string out = "junk";
  engine::appendCanonicalSigningBytes(withPayload, crypto::sha256("hello"), out);
  CHECK(out == "junk" + bytesOf(withPayload));
}

TEST_CASE("canonical signing bytes are injective on near-collisions") {
  std::vector<std::pair<std::string, SignedRequest>> variants;
  auto add = [&](std::string name, auto mutate) {
    SignedRequest r = sampleRequest();
    mutate(r);
    variants.emplace_back(std::move(name), std::move(r));
  };
  add("base", [](SignedRequest&) {});
  // Characters moved across a field boundary.
  add("principal id ab|c", [](SignedRequest& r) { r.principal = {"User", "ab"}, r.action = {"cAction", "read"}; });
  add("principal id a|bc", [](SignedRequest& r) { r.principal = {"User", "a"}, r.action = {"bcAction", "read"}; });
  add("type/id split A|::B", [](SignedRequest& r) { r.resource = {"A", "::B"}; });
  add("type/id split A::|B", [](SignedRequest& r) { r.resource = {"A::", "B"}; });
  add("type/id split A::B|", [](SignedRequest& r) { r.resource = {"A::B", ""}; });
  add("resource|context", [](SignedRequest& r) { r.resource = {"Doc", "d1\x06"}; });
  add("keyId|timestamp", [](SignedRequest& r) { r.keyId = "k1\x08"; });
  add("keyId empty", [](SignedRequest& r) { r.keyId = ""; });
  // Inside the context.
  add("record ab:c", [](SignedRequest& r) { r.context = Value::record({{"ab", Value::string("c")}}); });
  add("record a:bc", [](SignedRequest& r) { r.context = Value::record({{"a", Value::string("bc")}}); });
  add("record a:b,c", [](SignedRequest& r) {
    r.context = Value::record({{"a", Value::set({Value::string("b"), Value::string("c")})}});
  });
  add("record a:bc set", [](SignedRequest& r) { r.context = Value::record({{"a", Value::set({Value::string("bc")})}}); });
  add("record a:{b:c}", [](SignedRequest& r) {
    r.context = Value::record({{"a", Value::record({{"b", Value::string("c")}})}});
  });
  add("record empty", [](SignedRequest& r) { r.context = Value::record({}); });
  add("record a:empty set", [](SignedRequest& r) { r.context = Value::record({{"a", Value::set({})}}); });
  add("record a:empty record", [](SignedRequest& r) { r.context = Value::record({{"a", Value::record({})}}); });
  add("record a:[[]]", [](SignedRequest& r) { r.context = Value::record({{"a", Value::set({Value::set({})})}}); });
  // Same number, different kinds.
  add("long 1", [](SignedRequest& r) { r.context = Value::record({{"v", Value::integer(1)}}); });
  add("decimal 0.0001", [](SignedRequest& r) { r.context = Value::record({{"v", Value::decimal({1})}}); });
  add("datetime 1ms", [](SignedRequest& r) { r.context = Value::record({{"v", Value::datetime({1})}}); });
  add("duration 1ms", [](SignedRequest& r) { r.context = Value::record({{"v", Value::duration({1})}}); });
  add("bool true", [](SignedRequest& r) { r.context = Value::record({{"v", Value::boolean(true)}}); });
  add("string \\x01", [](SignedRequest& r) { r.context = Value::record({{"v", Value::string("\x01")}}); });
  add("entity A::\"1\"", [](SignedRequest& r) { r.context = Value::record({{"v", Value::entity({"A", "1"})}}); });
  add("ip v4 0.0.0.1/32", [](SignedRequest& r) { r.context = Value::record({{"v", Value::ip(*cedar::parseIp("0.0.0.1"))}}); });
  add("ip v4 0.0.0.1/24", [](SignedRequest& r) {
    r.context = Value::record({{"v", Value::ip(*cedar::parseIp("0.0.0.1/24"))}});
  });
  add("ip v6 ::1", [](SignedRequest& r) { r.context = Value::record({{"v", Value::ip(*cedar::parseIp("::1"))}}); });
  // Payload presence.
  add("digest of empty", [](SignedRequest& r) { r.payloadDigest = crypto::sha256(""); });
  add("digest zero", [](SignedRequest& r) { r.payloadDigest = crypto::Sha256Digest{}; });

  std::set<std::string> seen;
  for (const auto& [name, r] : variants) {
    INFO("variant " << name);
    CHECK(seen.insert(bytesOf(r)).second);
  }
}

TEST_CASE("canonical signing bytes normalize what Cedar leaves unordered") {
  SignedRequest a = sampleRequest(), b = sampleRequest();
  a.context = Value::record({{"x", Value::integer(1)}, {"y", Value::set({Value::string("p"), Value::string("q")})}});
  b.context = Value::record({{"y", Value::set({Value::string("q"), Value::string("p"), Value::string("q")})}, {"x", Value::integer(1)}});
  CHECK(bytesOf(a) == bytesOf(b));
  // The same ipaddr written two ways signs the same bytes (numeric form, not text).
  a.context = Value::record({{"ip", Value::ip(*cedar::parseIp("10.0.0.1"))}});
  b.context = Value::record({{"ip", Value::ip(*cedar::parseIp("10.0.0.1/32"))}});
  CHECK(bytesOf(a) == bytesOf(b));
  // Deterministic: the same request twice, and a copy.
  const SignedRequest rich = richRequest();
  CHECK(bytesOf(rich) == bytesOf(richRequest()));
  // The signature itself is not covered.
  SignedRequest signedOne = rich;
  signedOne.signature[0] ^= 1;
  CHECK(bytesOf(signedOne) == bytesOf(rich));
}

TEST_CASE("canonical signing bytes change with one bit of any field") {
  const SignedRequest base = richRequest();
  const std::string baseBytes = bytesOf(base);
  auto flipString = [&](auto getField, const char* name) {
    SignedRequest probe = base;
    const size_t n = getField(probe).size();
    for (size_t i = 0; i < n; ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        SignedRequest r = base;
        getField(r)[i] = static_cast<char>(getField(r)[i] ^ (1 << bit));
        INFO(name << " byte " << i << " bit " << bit);
        CHECK(bytesOf(r) != baseBytes);
      }
    }
  };
  flipString([](SignedRequest& r) -> std::string& { return r.principal.type; }, "principal.type");
  flipString([](SignedRequest& r) -> std::string& { return r.principal.id; }, "principal.id");
  flipString([](SignedRequest& r) -> std::string& { return r.action.type; }, "action.type");
  flipString([](SignedRequest& r) -> std::string& { return r.action.id; }, "action.id");
  flipString([](SignedRequest& r) -> std::string& { return r.resource.type; }, "resource.type");
  flipString([](SignedRequest& r) -> std::string& { return r.resource.id; }, "resource.id");
  flipString([](SignedRequest& r) -> std::string& { return r.keyId; }, "keyId");
  flipString([](SignedRequest& r) -> std::string& { return *r.payload; }, "payload");
  for (int bit = 0; bit < 64; ++bit) {
    SignedRequest r = base;
    r.timestampNs = static_cast<int64_t>(static_cast<uint64_t>(r.timestampNs) ^ (uint64_t{1} << bit));
    INFO("timestamp bit " << bit);
    CHECK(bytesOf(r) != baseBytes);
  }
  for (size_t i = 0; i < base.nonce.size() * 8; ++i) {
    SignedRequest r = base;
    r.nonce[i / 8] ^= static_cast<uint8_t>(1 << (i % 8));
    INFO("nonce bit " << i);
    CHECK(bytesOf(r) != baseBytes);
  }
  SignedRequest withDigest = base;
  withDigest.payload.reset();
  withDigest.payloadDigest = crypto::sha256("the payload");
  CHECK(bytesOf(withDigest) == baseBytes);
  for (size_t i = 0; i < 256; ++i) {
    SignedRequest r = withDigest;
    (*r.payloadDigest)[i / 8] ^= static_cast<uint8_t>(1 << (i % 8));
    INFO("digest bit " << i);
    CHECK(bytesOf(r) != baseBytes);
  }
}

TEST_CASE("canonical signing bytes change with one bit of any context value") {
  // The parts of a context, so that each can be flipped bit by bit.
  struct Parts {
    std::string key = "zone", str = "eu-west", entityId = "sre";
    int64_t n = 0x0123456789abcdef, dec = 15000, dt = 1767323045678, dur = -93600000;
    cedar::IpAddr ip = *cedar::parseIp("2001:db8::1/64");
    bool flag = true;
  };
  auto build = [](const Parts& p) {
    SignedRequest r = sampleRequest();
    r.context = Value::record({
        {p.key, Value::string(p.str)},
        {"n", Value::integer(p.n)},
        {"in", Value::set({Value::entity({"Team", p.entityId}), Value::boolean(p.flag)})},
        {"ext", Value::record({{"dec", Value::decimal({p.dec})},
                               {"dt", Value::datetime({p.dt})},
                               {"dur", Value::duration({p.dur})},
                               {"ip", Value::ip(p.ip)}})},
    });
    return bytesOf(r);
  };
  const Parts base;
  const std::string baseBytes = build(base);
  auto flipBits = [&](auto mutate, size_t bits, const char* name) {
    for (size_t i = 0; i < bits; ++i) {
      Parts p = base;
      mutate(p, i);
      INFO(name << " bit " << i);
      CHECK(build(p) != baseBytes);
    }
  };
  auto flipIn = [](std::string& s, size_t i) { s[i / 8] = static_cast<char>(s[i / 8] ^ (1 << (i % 8))); };
  auto flip64 = [](int64_t& v, size_t i) { v = static_cast<int64_t>(static_cast<uint64_t>(v) ^ (uint64_t{1} << i)); };
  flipBits([&](Parts& p, size_t i) { flipIn(p.key, i); }, base.key.size() * 8, "key");
  flipBits([&](Parts& p, size_t i) { flipIn(p.str, i); }, base.str.size() * 8, "string");
  flipBits([&](Parts& p, size_t i) { flipIn(p.entityId, i); }, base.entityId.size() * 8, "entity id");
  flipBits([&](Parts& p, size_t i) { flip64(p.n, i); }, 64, "long");
  flipBits([&](Parts& p, size_t i) { flip64(p.dec, i); }, 64, "decimal");
  flipBits([&](Parts& p, size_t i) { flip64(p.dt, i); }, 64, "datetime");
  flipBits([&](Parts& p, size_t i) { flip64(p.dur, i); }, 64, "duration");
  flipBits([&](Parts& p, size_t i) { p.ip.bytes[i / 8] ^= static_cast<uint8_t>(1 << (i % 8)); }, 128, "ip bytes");
  flipBits([&](Parts& p, size_t i) { p.ip.prefix ^= static_cast<uint8_t>(1 << i); }, 8, "ip prefix");
  flipBits([&](Parts& p, size_t) { p.ip.v6 = !p.ip.v6; }, 1, "ip family");
  flipBits([&](Parts& p, size_t) { p.flag = !p.flag; }, 1, "bool");
}

TEST_CASE("a signed request verifies with the reference verifier, and nothing else does") {
  const crypto::Ed25519KeyPair key = crypto::generateEd25519();
  const crypto::Ed25519KeyPair other = crypto::generateEd25519();
  SignedRequest r = richRequest();
  engine::signRequest(r, key.privatePem);
  CHECK(engine::verifyRequestSignature(r, key.publicKey));
  CHECK_FALSE(engine::verifyRequestSignature(r, other.publicKey));

  // Directly through ed25519VerifyOne over canonicalSigningBytes, as the service's verify stage does.
  const std::string msg = canonicalSigningBytes(r);
  crypto::SigInput in{{key.publicKey.data(), 32}, {r.signature.data(), 64},
                      {reinterpret_cast<const uint8_t*>(msg.data()), msg.size()}};
  CHECK(crypto::ed25519VerifyOne(in));
  // And through OpenSSL (the oracle for honest signatures).
  CHECK(crypto::verifyEd25519(key.publicKey, msg, crypto::bytesView(r.signature)));

  // Carrying the digest instead of the payload keeps the signature valid.
  SignedRequest digestOnly = r;
  digestOnly.payload.reset();
  digestOnly.payloadDigest = crypto::sha256("the payload");
  CHECK(engine::verifyRequestSignature(digestOnly, key.publicKey));

  // Any change to a signed field breaks it.
  std::vector<std::pair<const char*, void (*)(SignedRequest&)>> tampers = {
      {"principal", [](SignedRequest& t) { t.principal.id = "mallory"; }},
      {"action", [](SignedRequest& t) { t.action.id = "write"; }},
      {"resource", [](SignedRequest& t) { t.resource.type = "Secret"; }},
      {"context", [](SignedRequest& t) { t.context = Value::record({}); }},
      {"keyId", [](SignedRequest& t) { t.keyId = "k2"; }},
      {"timestamp", [](SignedRequest& t) { t.timestampNs += 1; }},
      {"nonce", [](SignedRequest& t) { t.nonce[15] ^= 0x80; }},
      {"payload", [](SignedRequest& t) { (*t.payload)[0] ^= 1; }},
      {"payload dropped", [](SignedRequest& t) { t.payload.reset(); }},
      {"signature", [](SignedRequest& t) { t.signature[63] ^= 1; }},
  };
  for (const auto& [name, tamper] : tampers) {
    SignedRequest t = r;
    tamper(t);
    INFO("tampered " << name);
    CHECK_FALSE(engine::verifyRequestSignature(t, key.publicKey));
  }
  CHECK_THROWS_AS(engine::signRequest(r, "not a pem"), cedar::InputError);
}

TEST_CASE("validateShape accepts well-formed requests and names what is wrong in others") {
  CHECK(engine::validateShape(sampleRequest()).ok());
  CHECK(engine::validateShape(richRequest()).ok());
  SignedRequest ns = sampleRequest();
  ns.principal = {"Acme::Corp::User", ""};  // namespaced type, empty id: both legal Cedar
  CHECK(engine::validateShape(ns).ok());

  auto refused = [](auto mutate, const char* expectInReason) {
    SignedRequest r = sampleRequest();
    mutate(r);
    const engine::ShapeCheck c = engine::validateShape(r);
    INFO("expected `" << std::string(expectInReason) << "`, reason: " << c.reason);
    CHECK(c.code == DenyCode::kMalformed);
    CHECK(c.reason.find(expectInReason) != std::string::npos);
  };
  refused([](SignedRequest& r) { r.keyId.clear(); }, "keyId is empty");
  refused([](SignedRequest& r) { r.keyId = std::string(engine::kMaxNameBytes + 1, 'k'); }, "keyId is 1025 bytes");
  refused([](SignedRequest& r) { r.principal.type = ""; }, "principal type");
  refused([](SignedRequest& r) { r.action.type = "Bad Type"; }, "action type `Bad Type`");
  refused([](SignedRequest& r) { r.resource.type = "A::"; }, "resource type");
  refused([](SignedRequest& r) { r.resource.type = "1A"; }, "resource type");
  refused([](SignedRequest& r) { r.resource.id = std::string(engine::kMaxNameBytes + 1, 'x'); }, "resource id is");
  refused([](SignedRequest& r) { r.principal.id = "\xff"; }, "principal id is not valid UTF-8");
  refused([](SignedRequest& r) { r.principal.id = "\xc0\xaf"; }, "not valid UTF-8");       // overlong '/'
  refused([](SignedRequest& r) { r.principal.id = "\xed\xa0\x80"; }, "not valid UTF-8");   // a surrogate
  refused([](SignedRequest& r) { r.context = Value::integer(1); }, "context is a long, not a record");
  refused([](SignedRequest& r) { r.context = Value::record({{"a", Value::string("\x80")}}); }, "context.a: string is not valid UTF-8");
  refused([](SignedRequest& r) { r.context = Value::record({{"\xfe", Value::integer(1)}}); }, "record key is not valid UTF-8");
  refused([](SignedRequest& r) { r.context = Value::record({{"e", Value::entity({"no good", "x"})}}); }, "context.e:");
  refused([](SignedRequest& r) { r.context = Value::record({{"big", Value::string(std::string(engine::kMaxContextBytes, 'x'))}}); },
          "context exceeds");
  refused([](SignedRequest& r) { r.context = Value::record({{"t", Value::datetime({253402300800000})}}); },
          "context.t: datetime outside the years 0000-9999");
  refused([](SignedRequest& r) { r.payload = std::string(engine::kMaxPayloadBytes + 1, 'p'); }, "payload is");

  // Depth: the context record is depth 1; kMaxContextDepth levels pass, one more does not.
  auto nested = [](int depth) {
    Value v = Value::integer(0);
    for (int i = 1; i < depth; ++i) v = (i % 2) ? Value::set({v}) : Value::record({{"r", v}});
    return Value::record({{"x", v}});
  };
  SignedRequest deep = sampleRequest();
  deep.context = nested(engine::kMaxContextDepth);
  CHECK(engine::validateShape(deep).ok());
  deep.context = nested(engine::kMaxContextDepth + 1);
  CHECK(engine::validateShape(deep).code == DenyCode::kMalformed);
  CHECK(engine::validateShape(deep).reason.find("nested deeper") != std::string::npos);

  // Datetimes at the edges of the representable years pass.
  SignedRequest edge = sampleRequest();
  edge.context = Value::record({{"lo", Value::datetime(*cedar::parseDatetime("0000-01-01"))},
                                {"hi", Value::datetime(*cedar::parseDatetime("9999-12-31T23:59:59.999Z"))}});
  CHECK(engine::validateShape(edge).ok());
}

TEST_CASE("toCedarRequest and denyDecision") {
  const SignedRequest r = richRequest();
  const cedar::Request q = engine::toCedarRequest(r);
  CHECK((q.principal == r.principal));
  CHECK((q.action == r.action));
  CHECK((q.resource == r.resource));
  CHECK((q.context == r.context));
  const engine::Decision d = engine::denyDecision(DenyCode::kReplayedNonce);
  CHECK_FALSE(d.allow);
  CHECK(d.code == DenyCode::kReplayedNonce);
  CHECK(d.reasons.empty());
  CHECK(d.lineageSeq == 0);
}
