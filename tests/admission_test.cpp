// Fail-closed admission: one test per deny code (each beside an honest control request that
// passes, so the code is caused by the one change made), a mixed batch, replay windows on a fake
// clock, the nonce cache's cap, the order "signature before nonce", and two threads at once.
#include "engine/admission.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "engine/crypto_ed25519.h"
#include "tests/support/service_fixture.h"

using namespace govmesh;
using namespace govmesh::engine;
using namespace govmesh::testing;

namespace {

// kSecond, kStart (2027-01-15, in Unix ns), aliceKey() and uid() come from the shared fixture.
// Keys are slow to generate; every test shares these.
const crypto::Ed25519KeyPair& bobKey() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}

// A fake clock and a bundle with keys "alice" (Workload::"alice"), "bob" (Workload::"bob") and
// "retired" (expired at kStart), fresh for an hour.
struct Fixture {
  int64_t now = kStart;
  std::shared_ptr<Bundle> bundle = std::make_shared<Bundle>();
  uint8_t nextNonce = 1;

  Fixture() {
    bundle->revision = 7;
    bundle->freshUntilMs = (kStart + 3600 * kSecond) / 1'000'000;
    bundle->keys.push_back({"alice", aliceKey().publicKey, uid("Workload", "alice"), std::nullopt});
    bundle->keys.push_back({"bob", bobKey().publicKey, uid("Workload", "bob"), std::nullopt});
    bundle->keys.push_back({"retired", aliceKey().publicKey, uid("Workload", "alice"), kStart / 1'000'000});
  }

  AdmissionOptions options() {
    AdmissionOptions o;
    o.clock = [this] { return now; };
    return o;
  }

  // An honest request by alice, signed now, with a fresh nonce.
  SignedRequest request(const std::string& keyId = "alice", const crypto::Ed25519KeyPair& key = aliceKey(),
                        const std::string& principal = "alice") {
    SignedRequest r;
    r.principal = uid("Workload", principal);
    r.action = uid("Action", "deploy");
    r.resource = uid("Service", "payments");
    r.context = cedar::Value::record({{"zone", cedar::Value::string("eu-1")}});
    r.keyId = keyId;
    r.timestampNs = now;
    r.nonce.fill(0);
    r.nonce[0] = nextNonce++;
    r.nonce[15] = 0xa5;
    signRequest(r, key.privatePem);
    return r;
  }

  void sign(SignedRequest& r, const crypto::Ed25519KeyPair& key = aliceKey()) { signRequest(r, key.privatePem); }
};

std::vector<DenyCode> admitAll(Admission& a, const std::shared_ptr<const Bundle>& b, const std::vector<SignedRequest>& rs,
                               AdmissionTiming* timing = nullptr) {
  std::vector<DenyCode> codes(rs.size(), DenyCode::kNone);
  REQUIRE(a.admit(b, rs, codes, timing));
  return codes;
}

// Admits {control, r}: the control must pass, so r's code is the change's doing.
DenyCode admitBesideControl(Fixture& f, Admission& a, const SignedRequest& r) {
  auto codes = admitAll(a, f.bundle, {f.request(), r});
  CHECK(codes[0] == DenyCode::kNone);
  return codes[1];
}

}  // namespace

TEST_CASE("admission: an honest request is admitted, and its timing is reported") {
  Fixture f;
  Admission a(f.options());
  AdmissionTiming t;
  auto codes = admitAll(a, f.bundle, {f.request()}, &t);
  CHECK(codes[0] == DenyCode::kNone);
  CHECK(t.verified == 1);
  CHECK(t.hashed == 0);
  CHECK_FALSE(t.ed25519FellBack);
  CHECK(a.nonces().size() == 1);
}

TEST_CASE("admission: no bundle -> NO_BUNDLE; stale bundle -> POLICY_STALE") {
  Fixture f;
  Admission a(f.options());
  auto r = f.request();
  CHECK(admitAll(a, nullptr, {r})[0] == DenyCode::kNoBundle);
  f.now = kStart + 3600 * kSecond;  // exactly at the deadline: no longer fresh
  r = f.request();
  CHECK(admitAll(a, f.bundle, {r})[0] == DenyCode::kPolicyStale);
  f.now -= 1'000'000;  // one ms earlier: fresh
  r = f.request();
  CHECK(admitAll(a, f.bundle, {r})[0] == DenyCode::kNone);
}

TEST_CASE("admission: codes set on entry are kept and their requests skipped") {
  Fixture f;
  Admission a(f.options());
  std::vector<SignedRequest> rs{f.request(), f.request()};
  std::vector<DenyCode> codes{DenyCode::kMalformed, DenyCode::kNone};
  REQUIRE(a.admit(f.bundle, rs, codes));
  CHECK(codes[0] == DenyCode::kMalformed);
  CHECK(codes[1] == DenyCode::kNone);
  CHECK(a.nonces().size() == 1);  // the skipped request's nonce was not recorded
  std::vector<DenyCode> wrongSize(1);
  CHECK_FALSE(a.admit(f.bundle, rs, wrongSize));
}

TEST_CASE("admission: MALFORMED when the shape is invalid") {
  Fixture f;
  Admission a(f.options());
  auto r = f.request();
  r.action = uid("not a cedar name!", "deploy");
  f.sign(r);
  CHECK(admitBesideControl(f, a, r) == DenyCode::kMalformed);
}

TEST_CASE("admission: UNKNOWN_KEY for an absent or expired key") {
  Fixture f;
  Admission a(f.options());
  CHECK(admitBesideControl(f, a, f.request("mallory")) == DenyCode::kUnknownKey);
  CHECK(admitBesideControl(f, a, f.request("retired")) == DenyCode::kUnknownKey);
  f.now = kStart - kSecond;  // before its not-after instant the retired key still works
  CHECK(admitBesideControl(f, a, f.request("retired")) == DenyCode::kNone);
}

TEST_CASE("admission: KEY_NOT_PRINCIPAL when a key acts for another principal") {
  Fixture f;
  Admission a(f.options());
  // Bob's valid key and signature, claiming to be alice.
  CHECK(admitBesideControl(f, a, f.request("bob", bobKey(), "alice")) == DenyCode::kKeyNotPrincipal);
  CHECK(admitBesideControl(f, a, f.request("bob", bobKey(), "bob")) == DenyCode::kNone);
}

TEST_CASE("admission: TIMESTAMP_OUT_OF_WINDOW outside now +- window, inclusive bounds") {
  Fixture f;
  Admission a(f.options());
  const int64_t w = a.options().timestampWindowNs;
  CHECK(w == 30 * kSecond);
  for (int64_t offset : {-w - 1, w + 1, -1000 * kSecond, std::numeric_limits<int64_t>::min() / 2}) {
    auto r = f.request();
    r.timestampNs = f.now + offset;
    f.sign(r);
    CAPTURE(offset);
    CHECK(admitBesideControl(f, a, r) == DenyCode::kTimestampOutOfWindow);
  }
  for (int64_t offset : {-w, w}) {
    auto r = f.request();
    r.timestampNs = f.now + offset;
    f.sign(r);
    CAPTURE(offset);
    CHECK(admitBesideControl(f, a, r) == DenyCode::kNone);
  }
}

TEST_CASE("admission: PAYLOAD_DIGEST_MISMATCH when the payload is not the signed digest") {
  Fixture f;
  Admission a(f.options());
  auto r = f.request();
  r.payloadDigest = crypto::sha256("the signed payload");
  f.sign(r);  // valid signature over the digest
  r.payload = "a different payload";
  AdmissionTiming t;
  auto codes = admitAll(a, f.bundle, {f.request(), r}, &t);
  CHECK(codes[0] == DenyCode::kNone);
  CHECK(codes[1] == DenyCode::kPayloadDigestMismatch);
  CHECK(t.hashed == 1);
  CHECK(t.verified == 1);  // the mismatching request never reached verification

  // The right payload beside its digest, and a payload alone (digest computed), both pass.
  auto withBoth = f.request();
  withBoth.payload = "the signed payload";
  withBoth.payloadDigest = crypto::sha256("the signed payload");
  f.sign(withBoth);
  CHECK(admitBesideControl(f, a, withBoth) == DenyCode::kNone);
  auto payloadOnly = f.request();
  payloadOnly.payload = "the signed payload";
  f.sign(payloadOnly);
  CHECK(admitBesideControl(f, a, payloadOnly) == DenyCode::kNone);
  // A payload swapped after signing without a digest: the computed digest is not the signed one.
  auto swapped = f.request();
  swapped.payload = "original";
  f.sign(swapped);
  swapped.payload = "swapped";
  CHECK(admitBesideControl(f, a, swapped) == DenyCode::kBadSignature);
}

TEST_CASE("admission: BAD_SIGNATURE for a flipped bit, an altered field, or another key") {
  Fixture f;
  Admission a(f.options());
  auto flipped = f.request();
  flipped.signature[5] ^= 0x10;
  CHECK(admitBesideControl(f, a, flipped) == DenyCode::kBadSignature);
  auto altered = f.request();
  altered.resource = uid("Service", "billing");
  CHECK(admitBesideControl(f, a, altered) == DenyCode::kBadSignature);
  auto wrongKey = f.request("alice", bobKey());  // keyId alice, signed by bob
  CHECK(admitBesideControl(f, a, wrongKey) == DenyCode::kBadSignature);
}

TEST_CASE("admission: BACKEND_FAULT only when the fallback fails too") {
  Fixture f;
  SUBCASE("Ed25519 backend faults, fallback works: admitted") {
    auto o = f.options();
    o.ed25519Backend = "no-such-backend";
    Admission a(o);
    AdmissionTiming t;
    auto codes = admitAll(a, f.bundle, {f.request()}, &t);
    CHECK(codes[0] == DenyCode::kNone);
    CHECK(t.ed25519FellBack);
  }
  SUBCASE("Ed25519 backend and fallback fault: every request denied, bad ones too") {
    auto o = f.options();
    o.ed25519Backend = "no-such-backend";
    o.ed25519FallbackBackend = "no-such-fallback";
    Admission a(o);
    auto bad = f.request();
    bad.signature[0] ^= 1;
    auto codes = admitAll(a, f.bundle, {f.request(), bad, f.request("mallory")});
    CHECK(codes[0] == DenyCode::kBackendFault);
    CHECK(codes[1] == DenyCode::kBackendFault);
    CHECK(codes[2] == DenyCode::kUnknownKey);  // denied earlier, keeps its own code
    CHECK(a.nonces().size() == 0);
  }
  SUBCASE("SHA-256 backend and fallback fault: requests with payloads denied") {
    auto o = f.options();
    o.sha256Backend = "no-such-backend";
    o.sha256FallbackBackend = "no-such-fallback";
    Admission a(o);
    auto withPayload = f.request();
    withPayload.payload = "bytes";
    f.sign(withPayload);
    auto codes = admitAll(a, f.bundle, {f.request(), withPayload});
    CHECK(codes[0] == DenyCode::kNone);
    CHECK(codes[1] == DenyCode::kBackendFault);
  }
}

TEST_CASE("admission: REPLAYED_NONCE within the window, across and within batches") {
  Fixture f;
  Admission a(f.options());
  auto r = f.request();
  CHECK(admitAll(a, f.bundle, {r})[0] == DenyCode::kNone);
  CHECK(admitBesideControl(f, a, r) == DenyCode::kReplayedNonce);
  auto s = f.request();
  auto codes = admitAll(a, f.bundle, {s, s});  // duplicate inside one batch: the first wins
  CHECK(codes[0] == DenyCode::kNone);
  CHECK(codes[1] == DenyCode::kReplayedNonce);
  // The same nonce under another key is another pair.
  auto bobs = f.request("bob", bobKey(), "bob");
  bobs.nonce = r.nonce;
  f.sign(bobs, bobKey());
  CHECK(admitAll(a, f.bundle, {bobs})[0] == DenyCode::kNone);
}

TEST_CASE("admission: a replay is denied inside the window and the nonce is free after it") {
  Fixture f;
  Admission a(f.options());
  const int64_t w = a.options().timestampWindowNs;
  auto r = f.request();
  CHECK(admitAll(a, f.bundle, {r})[0] == DenyCode::kNone);
  f.now += w;  // the last instant r's timestamp is accepted: still a replay
  CHECK(admitAll(a, f.bundle, {r})[0] == DenyCode::kReplayedNonce);
  f.now += 1;  // past it the timestamp check rejects r itself
  CHECK(admitAll(a, f.bundle, {r})[0] == DenyCode::kTimestampOutOfWindow);
  // The client may reuse the nonce in a new, newly signed request: the old one cannot come back.
  auto again = r;
  again.timestampNs = f.now;
  f.sign(again);
  CHECK(admitAll(a, f.bundle, {again})[0] == DenyCode::kNone);
  CHECK(admitAll(a, f.bundle, {again})[0] == DenyCode::kReplayedNonce);
}

TEST_CASE("admission: a forged request carrying a victim's nonce does not burn it") {
  Fixture f;
  Admission a(f.options());
  auto victim = f.request();
  auto forged = victim;
  forged.resource = uid("Service", "vault");  // the attacker's change; the signature no longer fits
  CHECK(admitAll(a, f.bundle, {forged})[0] == DenyCode::kBadSignature);
  CHECK(a.nonces().size() == 0);
  // The forgery first in the same batch as the victim's request, too.
  auto codes = admitAll(a, f.bundle, {forged, victim});
  CHECK(codes[0] == DenyCode::kBadSignature);
  CHECK(codes[1] == DenyCode::kNone);
  // Once the victim's request is in, the forgery is still a bad signature or a replay, never allowed.
  CHECK(admitAll(a, f.bundle, {forged})[0] != DenyCode::kNone);
}

TEST_CASE("nonce cache: fails closed at its cap and recovers as nonces expire") {
  NonceCache c({.capacity = 4, .shards = 1});
  CHECK(c.capacity() == 4);
  Nonce n{};
  for (uint8_t i = 0; i < 4; ++i) {
    n[0] = i;
    CHECK(c.checkAndRecord("k", n, 100, 0) == NonceOutcome::kRecorded);
  }
  n[0] = 9;
  CHECK(c.checkAndRecord("k", n, 100, 0) == NonceOutcome::kFull);
  CHECK_FALSE(c.seen("k", n, 0));  // a refused nonce is not remembered
  n[0] = 0;
  CHECK(c.checkAndRecord("k", n, 100, 50) == NonceOutcome::kReplayed);  // nothing was evicted
  CHECK(c.seen("k", n, 100));
  CHECK_FALSE(c.seen("k", n, 101));  // expired entries count as absent
  n[0] = 9;
  CHECK(c.checkAndRecord("k", n, 300, 101) == NonceOutcome::kRecorded);  // full: purged the expired four
  CHECK(c.size() == 1);
}

TEST_CASE("nonce cache: a pair older than a purge is refused, not recorded afresh") {
  NonceCache c({.capacity = 16, .shards = 1});
  Nonce n{};
  n[0] = 1;
  CHECK(c.checkAndRecord("k", n, 100, 0) == NonceOutcome::kRecorded);
  CHECK(c.purgeExpired(200) == 1);
  // A batch that read the clock at 50 and records a pair expiring at 150 cannot know whether the
  // purge at 200 dropped it: refused.
  n[0] = 2;
  CHECK(c.checkAndRecord("k", n, 150, 50) == NonceOutcome::kReplayed);
  CHECK(c.checkAndRecord("k", n, 90, 100) == NonceOutcome::kReplayed);  // already expired
  CHECK(c.checkAndRecord("k", n, 250, 200) == NonceOutcome::kRecorded);
}

TEST_CASE("admission: OVERLOADED when the nonce cache is full, and nothing is forgotten") {
  Fixture f;
  auto o = f.options();
  o.nonces = {.capacity = 2, .shards = 1};
  Admission a(o);
  auto r1 = f.request(), r2 = f.request(), r3 = f.request();
  auto codes = admitAll(a, f.bundle, {r1, r2, r3});
  CHECK(codes[0] == DenyCode::kNone);
  CHECK(codes[1] == DenyCode::kNone);
  CHECK(codes[2] == DenyCode::kOverloaded);
  CHECK(admitAll(a, f.bundle, {r1})[0] == DenyCode::kReplayedNonce);
  f.now += 2 * a.options().timestampWindowNs + 1;  // r1 and r2's nonces have expired
  auto r4 = f.request();
  CHECK(admitAll(a, f.bundle, {r4})[0] == DenyCode::kNone);
}

TEST_CASE("admission: a mixed batch gives each request its own code") {
  Fixture f;
  Admission a(f.options());
  auto replayed = f.request();
  REQUIRE(admitAll(a, f.bundle, {replayed})[0] == DenyCode::kNone);

  std::vector<SignedRequest> batch;
  std::vector<DenyCode> want;
  auto add = [&](SignedRequest r, DenyCode code) {
    batch.push_back(std::move(r));
    want.push_back(code);
  };
  add(f.request(), DenyCode::kNone);
  add(f.request("mallory"), DenyCode::kUnknownKey);
  add(f.request("bob", bobKey(), "alice"), DenyCode::kKeyNotPrincipal);
  auto old = f.request();
  old.timestampNs -= 31 * kSecond;
  f.sign(old);
  add(old, DenyCode::kTimestampOutOfWindow);
  auto mismatch = f.request();
  mismatch.payloadDigest = crypto::sha256("x");
  f.sign(mismatch);
  mismatch.payload = "y";
  add(mismatch, DenyCode::kPayloadDigestMismatch);
  auto forged = f.request();
  forged.signature[63] ^= 0x01;
  add(forged, DenyCode::kBadSignature);
  add(replayed, DenyCode::kReplayedNonce);
  auto malformed = f.request();
  malformed.keyId.clear();
  add(malformed, DenyCode::kMalformed);
  auto withPayload = f.request();
  withPayload.payload = "honest payload";
  f.sign(withPayload);
  add(withPayload, DenyCode::kNone);
  add(f.request("bob", bobKey(), "bob"), DenyCode::kNone);

  auto got = admitAll(a, f.bundle, batch);
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(denyCodeName(got[i]) == denyCodeName(want[i]));
  }
}

TEST_CASE("admission: two threads admitting the same requests admit each exactly once") {
  Fixture f;
  Admission a(f.options());
  std::vector<SignedRequest> rs;
  for (int i = 0; i < 64; ++i) {
    rs.push_back(f.request());
    rs.back().nonce[1] = static_cast<uint8_t>(i);  // distinct even past 255 requests
    f.sign(rs.back());
  }
  std::atomic<int> admitted{0}, replayed{0}, other{0};
  auto worker = [&](size_t batch) {
    for (size_t from = 0; from < rs.size(); from += batch) {
      const size_t n = std::min(batch, rs.size() - from);
      std::vector<DenyCode> codes(n, DenyCode::kNone);
      if (!a.admit(f.bundle, std::span(rs).subspan(from, n), codes)) {
        other += static_cast<int>(n);
        continue;
      }
      for (DenyCode c : codes) {
        if (c == DenyCode::kNone) ++admitted;
        else if (c == DenyCode::kReplayedNonce) ++replayed;
        else ++other;
      }
    }
  };
  std::thread t1(worker, 8), t2(worker, 5);
  t1.join();
  t2.join();
  CHECK(admitted.load() == 64);
  CHECK(replayed.load() == 64);
  CHECK(other.load() == 0);
  CHECK(a.nonces().size() == 64);
}

TEST_CASE("admission: a verifier with another criterion (openssl) is refused at construction") {
  AdmissionOptions o;
  o.ed25519Backend = "openssl";
  CHECK_THROWS_AS(Admission{o}, std::invalid_argument);
  AdmissionOptions f;
  f.ed25519FallbackBackend = "openssl";
  CHECK_THROWS_AS(Admission{f}, std::invalid_argument);
  AdmissionOptions ok;
  ok.ed25519Backend = "single";
  CHECK_NOTHROW(Admission{ok});
}
