// Tests for the node's bundle state (engine/bundle_manager.h): a verified, newer, unexpired
// bundle replaces the active one; every other offer is refused with its reason and leaves the
// active bundle in place; NO_BUNDLE / POLICY_STALE follow the clock; racing offers keep the
// highest revision and readers keep the bundle they hold.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "engine/bundle.h"
#include "engine/bundle_manager.h"
#include "engine/crypto_ed25519.h"

using namespace govmesh;
using engine::BundleManager;
using engine::BundleState;
using engine::LoadRefusal;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kT0 = 1'800'000'000'000;  // fake "now" at the start of each test
constexpr int64_t kTtl = 600'000;           // bundles stay fresh for 10 minutes

// An authority, a fake clock and a manager that trusts the authority and reads the clock.
struct Node {
  crypto::Ed25519KeyPair authority = crypto::generateEd25519();
  std::shared_ptr<std::atomic<int64_t>> now = std::make_shared<std::atomic<int64_t>>(kT0);
  BundleManager manager{{authority.publicKey}, [n = now] { return n->load(); }};

  // A signed bundle of `revision`; `variant` changes the policy text, so the content (and the
  // digest) differs between two bundles of the same revision.
  std::string bundle(uint64_t revision, int64_t freshUntilMs = kT0 + kTtl, int variant = 0,
                     const crypto::Ed25519KeyPair* signer = nullptr) const {
    engine::BundleSources s;
    s.policyText = "permit(principal == Workload::\"bot\", action == Action::\"deploy\", resource)"
                   " when { context.zone == \"eu" + std::to_string(variant) + "\" };\n";
    s.policyFileName = "policies.cedar";
    engine::Bundle b = engine::compileBundle(s, revision, kT0 - 1000, freshUntilMs);
    return engine::signBundle(engine::writeUnsignedBundle(b), (signer ? *signer : authority).privatePem, "b.bundle", "a.key");
  }
};

// One byte of one envelope field flipped, the envelope re-encoded (so that only that field is wrong).
std::string tamper(const std::string& bytes, std::string engine::SignedEnvelope::*field) {
  engine::SignedEnvelope env = engine::readEnvelope(bytes, "b.bundle");
  std::string& f = env.*field;
  REQUIRE(!f.empty());
  f[f.size() / 2] ^= 0x01;
  return engine::encodeEnvelope(env);
}

// The refusal `reason`, with the active bundle left at `revision`.
void requireRefused(BundleManager& m, const engine::LoadOutcome& o, LoadRefusal reason, uint64_t activeRevision) {
  INFO(o.message);
  CHECK_FALSE(o.accepted);
  CHECK_FALSE(o.swapped);
  CHECK(engine::loadRefusalName(o.reason) == std::string(engine::loadRefusalName(reason)));
  CHECK(!o.message.empty());
  REQUIRE(m.active() != nullptr);
  CHECK(m.active()->revision == activeRevision);
}

struct BundleDir {
  fs::path path = fs::temp_directory_path() / ("govmesh_bundle_manager_test_" + std::to_string(std::random_device{}()));
  BundleDir() { fs::create_directories(path); }
  ~BundleDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path write(const std::string& name, const std::string& bytes) const {
    fs::path p = path / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
};

}  // namespace

TEST_CASE("no bundle: NO_BUNDLE until the first verified load, then fresh") {
  Node n;
  CHECK(n.manager.active() == nullptr);
  CHECK(n.manager.current() == nullptr);
  CHECK(n.manager.state(kT0) == BundleState::kNoBundle);
  CHECK(engine::denyCodeFor(n.manager.state(kT0)) == engine::DenyCode::kNoBundle);
  CHECK_FALSE(n.manager.secondsToDeadline(kT0).has_value());
  CHECK(n.manager.revision() == 0);
  CHECK(n.manager.digestHex().empty());

  std::string bytes = n.bundle(3);
  engine::LoadOutcome o = n.manager.offer(bytes, "first.bundle");
  INFO(o.message);
  CHECK(o.accepted);
  CHECK(o.swapped);
  CHECK(o.reason == LoadRefusal::kNone);
  CHECK(o.revision == 3);
  REQUIRE(n.manager.active() != nullptr);
  CHECK(n.manager.active()->revision == 3);
  CHECK(n.manager.state(kT0) == BundleState::kFresh);
  CHECK_FALSE(engine::denyCodeFor(BundleState::kFresh).has_value());
  CHECK(n.manager.state() == BundleState::kFresh);  // by the injected clock
  // The digest is SHA-256 of the envelope's content, as signed.
  engine::SignedEnvelope env = engine::readEnvelope(bytes, "b");
  CHECK(n.manager.digestHex() == crypto::toHex(crypto::bytesView(crypto::sha256(env.content))));
  CHECK(n.manager.current()->digest == env.digest);
  CHECK(n.manager.current()->signer == n.authority.publicKey);
  CHECK(n.manager.current()->source == "first.bundle");
  CHECK(n.manager.current()->loadedAtMs == kT0);
}

TEST_CASE("a newer bundle replaces the active one; older and equal-revision-other-content are refused") {
  Node n;
  std::string r5 = n.bundle(5), r6 = n.bundle(6), r4 = n.bundle(4), r6b = n.bundle(6, kT0 + kTtl, 1);
  REQUIRE(n.manager.offer(r5, "r5").accepted);
  const std::string digest5 = n.manager.digestHex();

  engine::LoadOutcome o = n.manager.offer(r6, "r6");
  CHECK(o.accepted);
  CHECK(o.swapped);
  CHECK(n.manager.revision() == 6);
  CHECK(n.manager.digestHex() != digest5);
  const std::string digest6 = n.manager.digestHex();

  requireRefused(n.manager, n.manager.offer(r4, "r4"), LoadRefusal::kNotNewer, 6);
  requireRefused(n.manager, n.manager.offer(r5, "r5"), LoadRefusal::kNotNewer, 6);
  o = n.manager.offer(r6b, "r6b");
  requireRefused(n.manager, o, LoadRefusal::kNotNewer, 6);
  CHECK(o.message.find("different content") != std::string::npos);
  CHECK(n.manager.digestHex() == digest6);

  // The active bundle re-offered (SIGHUP, file unchanged): success, nothing swapped.
  o = n.manager.offer(r6, "r6 again");
  CHECK(o.accepted);
  CHECK_FALSE(o.swapped);
  CHECK(o.reason == LoadRefusal::kNone);
  CHECK(n.manager.current()->source == "r6");
}

TEST_CASE("tampered, untrusted, unsigned and malformed bundles are refused; the active one stays") {
  Node n;
  REQUIRE(n.manager.offer(n.bundle(1), "r1").accepted);
  std::string r2 = n.bundle(2);

  SUBCASE("a content byte: bad digest") {
    requireRefused(n.manager, n.manager.offer(tamper(r2, &engine::SignedEnvelope::content), "t"), LoadRefusal::kBadDigest, 1);
  }
  SUBCASE("a digest byte: bad digest") {
    requireRefused(n.manager, n.manager.offer(tamper(r2, &engine::SignedEnvelope::digest), "t"), LoadRefusal::kBadDigest, 1);
  }
  SUBCASE("a signature byte: bad signature") {
    requireRefused(n.manager, n.manager.offer(tamper(r2, &engine::SignedEnvelope::signature), "t"), LoadRefusal::kBadSignature, 1);
  }
  SUBCASE("a signer byte: untrusted signer") {
    requireRefused(n.manager, n.manager.offer(tamper(r2, &engine::SignedEnvelope::signerPublicKey), "t"), LoadRefusal::kUntrustedSigner,
                   1);
  }
  SUBCASE("signed by a key that is not trusted") {
    crypto::Ed25519KeyPair other = crypto::generateEd25519();
    engine::LoadOutcome o = n.manager.offer(n.bundle(2, kT0 + kTtl, 0, &other), "other.bundle");
    requireRefused(n.manager, o, LoadRefusal::kUntrustedSigner, 1);
    CHECK(o.message.find("other.bundle") != std::string::npos);
    CHECK(o.message.find("not a trusted authority key") != std::string::npos);
  }
  SUBCASE("another key's signature under the trusted signer's name: bad signature") {
    crypto::Ed25519KeyPair other = crypto::generateEd25519();
    engine::SignedEnvelope env = engine::readEnvelope(n.bundle(2, kT0 + kTtl, 0, &other), "b");
    env.signerPublicKey = std::string(crypto::bytesView(n.authority.publicKey));
    requireRefused(n.manager, n.manager.offer(engine::encodeEnvelope(env), "t"), LoadRefusal::kBadSignature, 1);
  }
  SUBCASE("unsigned") {
    engine::SignedEnvelope env = engine::readEnvelope(r2, "b");
    env.signature.clear();
    env.signerPublicKey.clear();
    requireRefused(n.manager, n.manager.offer(engine::encodeEnvelope(env), "t"), LoadRefusal::kUntrustedSigner, 1);
  }
  SUBCASE("signed by the authority but the content does not decode") {
    engine::SignedEnvelope env = engine::readEnvelope(r2, "b");
    env.content = env.content.substr(0, env.content.size() / 2);
    env.digest = std::string(crypto::bytesView(crypto::sha256(env.content)));
    env.signature = std::string(crypto::bytesView(crypto::signEd25519(n.authority.privatePem, engine::signedMessage(env.digest), "a.key")));
    requireRefused(n.manager, n.manager.offer(engine::encodeEnvelope(env), "t"), LoadRefusal::kMalformedContent, 1);
  }
  SUBCASE("a manager that trusts no key refuses everything") {
    BundleManager none({}, [] { return kT0; });
    engine::LoadOutcome o = none.offer(r2, "r2");
    CHECK_FALSE(o.accepted);
    CHECK(o.reason == LoadRefusal::kUntrustedSigner);
    CHECK(none.state(kT0) == BundleState::kNoBundle);
  }
  // Whatever was refused, the untampered newer bundle still goes through afterwards.
  CHECK(n.manager.offer(r2, "r2").accepted);
  CHECK(n.manager.revision() == 2);
}

TEST_CASE("not a bundle: random bytes, empty input, missing, empty and unreadable files") {
  Node n;
  BundleDir dir;
  std::mt19937 rng(7);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng());

  // Before any bundle: refused, and the node stays at NO_BUNDLE.
  engine::LoadOutcome o = n.manager.offer(random, "random.bin");
  CHECK_FALSE(o.accepted);
  CHECK(o.reason == LoadRefusal::kNotABundle);
  CHECK(n.manager.state(kT0) == BundleState::kNoBundle);

  REQUIRE(n.manager.loadFile(dir.write("good.bundle", n.bundle(9)).string()).accepted);
  requireRefused(n.manager, n.manager.offer(random, "random.bin"), LoadRefusal::kNotABundle, 9);
  requireRefused(n.manager, n.manager.offer("", "empty"), LoadRefusal::kNotABundle, 9);
  requireRefused(n.manager, n.manager.offer("permit(principal, action, resource);", "policies.cedar"), LoadRefusal::kNotABundle, 9);
  requireRefused(n.manager, n.manager.loadFile(dir.write("random.bundle", random).string()), LoadRefusal::kNotABundle, 9);
  requireRefused(n.manager, n.manager.loadFile(dir.write("empty.bundle", "").string()), LoadRefusal::kNotABundle, 9);
  o = n.manager.loadFile((dir.path / "missing.bundle").string());
  requireRefused(n.manager, o, LoadRefusal::kUnreadable, 9);
  CHECK(o.message.find("missing.bundle") != std::string::npos);
  requireRefused(n.manager, n.manager.loadFile(dir.path.string()), LoadRefusal::kUnreadable, 9);  // a directory
  // A newer bundle from disk is still accepted.
  o = n.manager.loadFile(dir.write("next.bundle", n.bundle(10)).string());
  CHECK(o.accepted);
  CHECK(n.manager.current()->source == (dir.path / "next.bundle").string());
}

TEST_CASE("an already-expired bundle is refused; the active one goes stale on the clock") {
  Node n;
  SUBCASE("expired as the first bundle: still no bundle") {
    engine::LoadOutcome o = n.manager.offer(n.bundle(1, kT0 - 1), "old");
    CHECK_FALSE(o.accepted);
    CHECK(o.reason == LoadRefusal::kExpired);
    CHECK(o.revision == 1);
    CHECK(n.manager.state(kT0) == BundleState::kNoBundle);
  }
  SUBCASE("a deadline exactly now is past (isFresh is strict)") {
    CHECK(n.manager.offer(n.bundle(1, kT0), "now").reason == LoadRefusal::kExpired);
  }
  SUBCASE("expired newer bundle: refused, the fresh one stays") {
    REQUIRE(n.manager.offer(n.bundle(1), "r1").accepted);
    requireRefused(n.manager, n.manager.offer(n.bundle(2, kT0 - 5), "r2"), LoadRefusal::kExpired, 1);
  }
  SUBCASE("fresh -> stale as the fake clock passes the deadline; a newer bundle makes it fresh") {
    std::string r1 = n.bundle(1);
    REQUIRE(n.manager.offer(r1, "r1").accepted);
    CHECK(n.manager.state() == BundleState::kFresh);
    CHECK(*n.manager.secondsToDeadline(kT0) == doctest::Approx(600.0));
    n.now->store(kT0 + kTtl - 1);
    CHECK(n.manager.state() == BundleState::kFresh);
    CHECK(*n.manager.secondsToDeadline(n.now->load()) == doctest::Approx(0.001));
    n.now->store(kT0 + kTtl);
    CHECK(n.manager.state() == BundleState::kStale);
    CHECK(engine::denyCodeFor(n.manager.state()) == engine::DenyCode::kPolicyStale);
    CHECK(*n.manager.secondsToDeadline(kT0 + kTtl + 2500) == doctest::Approx(-2.5));
    CHECK(n.manager.active() != nullptr);  // stale is not gone: status() still reports it
    // Re-offering the active, now expired, bundle says so and changes nothing.
    requireRefused(n.manager, n.manager.offer(r1, "r1 again"), LoadRefusal::kExpired, 1);
    CHECK(n.manager.state() == BundleState::kStale);
    REQUIRE(n.manager.offer(n.bundle(2, kT0 + 2 * kTtl), "r2").accepted);
    CHECK(n.manager.state() == BundleState::kFresh);
  }
}

TEST_CASE("onChange fires after each swap, in revision order, not on refusals or no-ops") {
  Node n;
  std::vector<uint64_t> seen;
  n.manager.onChange([&](const std::shared_ptr<const engine::ActiveBundle>& b) {
    // The new bundle is already active when the callback runs (the pipeline rebuilds from it).
    CHECK(n.manager.current() == b);
    seen.push_back(b->bundle.revision);
  });
  std::string r2 = n.bundle(2);
  CHECK(n.manager.offer(r2, "r2").accepted);
  CHECK(n.manager.offer(r2, "r2").accepted);     // no-op
  CHECK_FALSE(n.manager.offer(n.bundle(1), "r1").accepted);  // older
  CHECK_FALSE(n.manager.offer("junk", "junk").accepted);
  CHECK(n.manager.offer(n.bundle(3), "r3").accepted);
  CHECK(seen == std::vector<uint64_t>{2, 3});
  // A throwing callback does not escape offer(); the swap stands.
  n.manager.onChange([](const std::shared_ptr<const engine::ActiveBundle>&) { throw std::runtime_error("rebuild failed"); });
  CHECK(n.manager.offer(n.bundle(4), "r4").accepted);
  CHECK(n.manager.revision() == 4);
}

TEST_CASE("concurrent offers end on the highest revision") {
  Node n;
  SUBCASE("two threads, revisions 5 and 6, 200 rounds") {
    std::string r5 = n.bundle(5), r6 = n.bundle(6);
    for (int round = 0; round < 200; ++round) {
      BundleManager m({n.authority.publicKey}, [] { return kT0; });
      std::atomic<bool> go{false};
      engine::LoadOutcome o5, o6;
      std::thread a([&] {
        while (!go.load()) {}
        o5 = m.offer(r5, "r5");
      });
      std::thread b([&] {
        while (!go.load()) {}
        o6 = m.offer(r6, "r6");
      });
      go.store(true);
      a.join();
      b.join();
      REQUIRE(m.revision() == 6);
      CHECK(o6.accepted);
      // 5 is accepted only when it got in first, and then 6 replaced it.
      if (!o5.accepted) CHECK(o5.reason == LoadRefusal::kNotNewer);
    }
  }
  SUBCASE("four threads offering revisions 1..16 in shuffled orders") {
    std::vector<std::string> bundles;
    for (uint64_t r = 1; r <= 16; ++r) bundles.push_back(n.bundle(r));
    std::vector<uint64_t> notified;
    std::mutex notifiedMutex;
    n.manager.onChange([&](const std::shared_ptr<const engine::ActiveBundle>& b) {
      std::lock_guard lock(notifiedMutex);
      notified.push_back(b->bundle.revision);
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        std::vector<size_t> order(bundles.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), std::mt19937(t));
        for (size_t i : order) n.manager.offer(bundles[i], "r");
      });
    for (std::thread& t : threads) t.join();
    CHECK(n.manager.revision() == 16);
    REQUIRE(!notified.empty());
    CHECK(std::is_sorted(notified.begin(), notified.end()));
    CHECK(std::adjacent_find(notified.begin(), notified.end()) == notified.end());  // strictly increasing
    CHECK(notified.back() == 16);
  }
}

TEST_CASE("active() stays valid while swaps happen") {
  Node n;
  REQUIRE(n.manager.offer(n.bundle(1), "r1").accepted);
  std::shared_ptr<const engine::Bundle> held = n.manager.active();
  std::weak_ptr<const engine::Bundle> watch = held;
  REQUIRE(n.manager.offer(n.bundle(2), "r2").accepted);
  // The swapped-out bundle lives while a reader holds it, with its table and store intact.
  CHECK(held->revision == 1);
  CHECK(held->table.policies.size() == 1);
  CHECK(held->store != nullptr);
  CHECK(n.manager.active()->revision == 2);
  held.reset();
  CHECK(watch.expired());  // and is freed once the last reader lets go

  // Readers on another thread see only whole bundles and never a revision going back.
  std::vector<std::string> bundles;
  for (uint64_t r = 3; r <= 12; ++r) bundles.push_back(n.bundle(r));
  std::atomic<bool> done{false};
  bool monotone = true, whole = true;
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      std::shared_ptr<const engine::Bundle> b = n.manager.active();
      if (b->revision < last) monotone = false;
      if (b->table.policies.size() != 1 || !b->store) whole = false;
      last = b->revision;
    }
  });
  for (const std::string& b : bundles) CHECK(n.manager.offer(b, "r").accepted);
  done.store(true);
  reader.join();
  CHECK(monotone);
  CHECK(whole);
  CHECK(n.manager.revision() == 12);
}
