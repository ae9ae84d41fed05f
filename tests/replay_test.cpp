// Batch replay (engine/replay.h): a log of real signed requests, decided by the real evaluator,
// replays clean; a flipped byte, a removed record, two reordered records, a forged decision and
// a swapped or altered bundle are each reported, at the right sequence number.
#include "engine/replay.h"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"
#include "engine/evaluator.h"
#include "engine/sha256_batch.h"
#include "support/lineage_fixture.h"

using namespace govmesh;
using namespace govmesh::engine;
namespace ln = govmesh::lineage;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kStartMs = int64_t{1'800'000'000} * 1000;

const crypto::Ed25519KeyPair& aliceKey() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}
const crypto::Ed25519KeyPair& authorityKey() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}

const char* kPoliciesA =
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };\n"
    "forbid(principal, action, resource) when { context has trust && context.trust == \"degraded\" };\n"
    "permit(principal, action == Action::\"read\", resource) when { context.level > 3 };\n";
const char* kPoliciesB = "permit(principal, action, resource);\n";

// A signed bundle file's bytes for `policies`.
std::string bundleFile(const char* policies, uint64_t revision) {
  BundleSources src;
  src.policyText = policies;
  src.policyFileName = "p.cedar";
  src.keys.push_back({"alice", aliceKey().publicKey, {"Workload", "alice"}, std::nullopt});
  Bundle b = compileBundle(src, revision, kStartMs, kStartMs + 3600 * 1000);
  return signBundle(writeUnsignedBundle(b), authorityKey().privatePem, "bundle", "authority key");
}

ln::Hash digestOf(const std::string& file) {
  SignedEnvelope env = readEnvelope(file, "bundle");
  ln::Hash h{};
  REQUIRE(env.digest.size() == 32);
  std::memcpy(h.data(), env.digest.data(), 32);
  return h;
}

crypto::Sha256Digest sha(const std::string& s) { return crypto::sha256One({reinterpret_cast<const uint8_t*>(s.data()), s.size()}); }

// The i-th request: a mix of deploys and reads in various contexts, every 17th with a forged
// signature (recorded as BAD_SIGNATURE, the way admission decides it).
SignedRequest requestFor(uint64_t i) {
  SignedRequest r;
  r.principal = {"Workload", "alice"};
  r.action = {"Action", i % 2 ? "deploy" : "read"};
  r.resource = {"Service", "svc-" + std::to_string(i % 7)};
  cedar::ValueRecord ctx;
  ctx.emplace_back("level", cedar::Value::integer(static_cast<int64_t>(i % 6)));
  if (i % 5 == 0) ctx.emplace_back("trust", cedar::Value::string("degraded"));
  ctx.emplace_back("zone", cedar::Value::string(i % 3 ? "eu-1" : "us-2"));
  r.context = cedar::Value::record(std::move(ctx));
  r.keyId = "alice";
  r.timestampNs = (kStartMs + static_cast<int64_t>(i)) * 1'000'000;
  for (size_t k = 0; k < 8; ++k) r.nonce[k] = static_cast<uint8_t>(i >> (8 * k));
  signRequest(r, aliceKey().privatePem);
  if (i % 17 == 0) r.signature[3] ^= 1;
  return r;
}

struct Fixture {
  fs::path dir;
  std::string fileA, fileB;
  uint64_t n = 600;

  explicit Fixture(const std::string& name) {
    dir = fs::temp_directory_path() / ("govmesh_replay_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "bundles");
    fileA = bundleFile(kPoliciesA, 1);
    fileB = bundleFile(kPoliciesB, 2);
    writeBundle("a.bundle", fileA);
    Bundle a = loadBundle(fileA, {authorityKey().publicKey}, "a");
    FlatTable flat(a.table);
    auto scalar = makeEvaluator("scalar");
    std::vector<ln::Record> recs;
    std::vector<cedar::Request> reqs;
    std::vector<SignedRequest> srs;
    for (uint64_t i = 1; i <= n; ++i) srs.push_back(requestFor(i));
    for (const auto& r : srs) reqs.push_back(toCedarRequest(r));
    auto resp = authorizeBatch(flat, *scalar, reqs);
    for (uint64_t i = 0; i < n; ++i) {
      const SignedRequest& s = srs[i];
      ln::Record r;
      r.timestampNs = s.timestampNs;
      r.nodeId = "node-1";
      r.bundleDigest = digestOf(fileA);
      r.bundleRevision = 1;
      r.principal = {s.principal.type, s.principal.id};
      r.action = {s.action.type, s.action.id};
      r.resource = {s.resource.type, s.resource.id};
      r.evidence = requestEvidence(s, signedPayloadDigest(s));
      r.requestDigest = sha(canonicalSigningBytes(s));
      r.contextDigest = sha(r.evidence->context);
      r.signature = s.signature;
      if ((i + 1) % 17 == 0) {
        r.denyCode = DenyCode::kBadSignature;
      } else {
        r.allow = resp[i].decision == cedar::Decision::Allow;
        r.reasons = resp[i].reasons;
        for (const auto& e : resp[i].errors) r.errors.push_back(e.policyId + ": " + e.message);
      }
      recs.push_back(std::move(r));
    }
    ln::LogOptions o;
    o.origin = ln::testing::kTestOrigin;
    o.signer = ln::testing::testSigner();
    o.sync = false;
    o.checkpointEvery = 100;
    auto log = ln::Log::open((dir / "log").string(), o);
    REQUIRE(log);
    for (size_t i = 0; i < recs.size(); i += 50) {
      REQUIRE(log->append(std::span(recs).subspan(i, std::min<size_t>(50, recs.size() - i))) == ln::LogStatus::kOk);
    }
    REQUIRE(log->close() == ln::LogStatus::kOk);
  }
  ~Fixture() { fs::remove_all(dir); }

  void writeBundle(const std::string& name, const std::string& bytes) const { std::ofstream(dir / "bundles" / name, std::ios::binary) << bytes; }

  ReplayReport run(bool verify = true) const {
    ReplayOptions o;
    o.logDir = (dir / "log").string();
    o.bundlesDir = (dir / "bundles").string();
    o.nodeVerifier = ln::testing::testSigner().verifier();
    o.trusted = {authorityKey().publicKey};
    o.backend = "scalar";
    o.batchSize = 64;
    o.verifySignatures = verify;
    return replay(o);
  }

  // The one segment's frames (header kept apart), to edit and write back.
  fs::path segment() const { return dir / "log" / "seg-00000000000000000001.log"; }
  std::pair<std::string, std::vector<std::string>> frames() const {
    std::ifstream in(segment(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string all = ss.str();
    std::vector<std::string> out;
    for (size_t off = 16; off + 8 <= all.size();) {
      uint32_t len = 0;
      for (int i = 0; i < 4; ++i) len |= uint32_t{static_cast<uint8_t>(all[off + i])} << (8 * i);
      out.push_back(all.substr(off, 8 + len));
      off += 8 + len;
    }
    return {all.substr(0, 16), out};
  }
  void writeFrames(const std::string& header, const std::vector<std::string>& fs_) const {
    std::ofstream out(segment(), std::ios::binary | std::ios::trunc);
    out << header;
    for (const auto& f : fs_) out << f;
  }
};

}  // namespace

TEST_CASE("replay: a clean log of real decisions replays with no divergence") {
  Fixture f("clean");
  auto rep = f.run();
  INFO(rep.fatal, " ", rep.tamperReason, " ", rep.divergences.empty() ? "" : rep.divergences[0].what);
  CHECK(rep.fatal.empty());
  CHECK(rep.records == f.n);
  CHECK(rep.checkpoints >= 6);
  CHECK(rep.checkpointsVerified == rep.checkpoints);
  CHECK(rep.coveredRecords == f.n);
  CHECK(rep.divergenceCount == 0);
  CHECK(!rep.firstTamperedSeq);
  CHECK(rep.missingBundles.empty());
  CHECK(rep.decisionsReevaluated == f.n - f.n / 17);
  CHECK(rep.signaturesVerified == f.n);
  CHECK(rep.acceptedAsRecorded == f.n / 17);
  CHECK(rep.ok());
  auto fast = f.run(false);
  CHECK(fast.ok());
  CHECK(fast.signaturesVerified == 0);
}

TEST_CASE("replay: a flipped byte, a removed record and two reordered records are found at their seq") {
  Fixture f("tamper");
  auto [header, frames] = f.frames();
  REQUIRE(frames.size() == f.n);
  SUBCASE("flip one byte") {
    auto fr = frames;
    fr[136][fr[136].size() - 40] ^= 0x01;  // record seq 137, inside its evidence
    f.writeFrames(header, fr);
    auto rep = f.run();
    REQUIRE(rep.firstTamperedSeq);
    CHECK(*rep.firstTamperedSeq == 137);
    CHECK(!rep.ok());
  }
  SUBCASE("remove a record") {
    auto fr = frames;
    fr.erase(fr.begin() + 249);  // seq 250
    f.writeFrames(header, fr);
    auto rep = f.run();
    REQUIRE(rep.firstTamperedSeq);
    CHECK(*rep.firstTamperedSeq == 250);
    CHECK(rep.records == f.n - 1);
    CHECK(!rep.ok());
  }
  SUBCASE("reorder two records") {
    auto fr = frames;
    std::swap(fr[400], fr[401]);  // seqs 401 and 402
    f.writeFrames(header, fr);
    auto rep = f.run();
    REQUIRE(rep.firstTamperedSeq);
    CHECK(*rep.firstTamperedSeq == 401);
    CHECK(!rep.ok());
  }
  SUBCASE("a checkpoint that does not verify under the node key") {
    ReplayOptions o;
    o.logDir = (f.dir / "log").string();
    o.bundlesDir = (f.dir / "bundles").string();
    std::array<uint8_t, 32> seed;
    seed.fill(7);
    o.nodeVerifier = ln::NoteSigner::fromSeed(ln::testing::kTestOrigin, seed)->verifier();
    o.trusted = {authorityKey().publicKey};
    auto rep = replay(o);
    CHECK(rep.checkpointsVerified == 0);
    CHECK(!rep.ok());
  }
}

TEST_CASE("replay: a forged decision is a divergence with its seq") {
  Fixture f("forged");
  auto [header, frames] = f.frames();
  // Rewrite record 42 as an ALLOW with a valid CRC: the node lied (or the writer was subverted),
  // so no frame check sees it; the checkpoint does, and re-evaluation names the seq.
  auto rec = ln::decodeRecord(std::string_view(frames[41]).substr(8));
  REQUIRE(rec);
  CHECK_FALSE(rec->allow);  // seq 42: a read at level 0
  rec->allow = true;
  rec->reasons = {"policy2"};
  std::string body = ln::encodeRecord(*rec);
  std::string frame(8, '\0');
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>(body.size() >> (8 * i));
  frame += body;
  uint32_t crc = ln::crc32c(body, ln::crc32c(std::string_view(frame.data(), 4)));
  for (int i = 0; i < 4; ++i) frame[4 + i] = static_cast<char>(crc >> (8 * i));
  frames[41] = frame;
  f.writeFrames(header, frames);
  auto rep = f.run();
  REQUIRE(rep.divergences.size() == 1);
  CHECK(rep.divergences[0].seq == 42);
  REQUIRE(rep.firstTamperedSeq);
  CHECK(*rep.firstTamperedSeq == 42);  // leaves.hash and the checkpoint disagree too
}

TEST_CASE("replay: a swapped or altered bundle is reported as missing") {
  Fixture f("bundles");
  SUBCASE("bundle B's file in place of A's") {
    fs::remove(f.dir / "bundles" / "a.bundle");
    f.writeBundle("a.bundle", f.fileB);
    auto rep = f.run();
    REQUIRE(rep.missingBundles.size() == 1);
    CHECK(rep.missingBundles[0].records == f.n);
    CHECK(rep.missingBundles[0].seqs.front() == 1);
    CHECK(rep.decisionsReevaluated == 0);
    CHECK(!rep.ok());
  }
  SUBCASE("an altered bundle file is refused and reported") {
    std::string bad = f.fileA;
    bad[bad.size() / 2] ^= 0x20;
    f.writeBundle("a.bundle", bad);
    auto rep = f.run();
    CHECK(rep.bundleProblems.size() == 1);
    CHECK(rep.missingBundles.size() == 1);
    CHECK(!rep.ok());
  }
  SUBCASE("an untrusted signer is refused") {
    ReplayOptions o;
    o.logDir = (f.dir / "log").string();
    o.bundlesDir = (f.dir / "bundles").string();
    o.trusted = {aliceKey().publicKey};
    auto rep = replay(o);
    CHECK(rep.bundleProblems.size() == 1);
    CHECK(!rep.ok());
  }
}

TEST_CASE("replay: records written before evidence existed still decode; evidence round-trips") {
  ln::Record r = ln::testing::recordFor(5);
  CHECK(ln::decodeRecord(ln::encodeRecord(r)) == r);
  r.evidence = requestEvidence(requestFor(3), std::nullopt);
  r.evidence->payloadDigest = sha("payload");
  auto back = ln::decodeRecord(ln::encodeRecord(r));
  REQUIRE(back);
  CHECK(*back == r);
  std::string bytes;
  CHECK(rebuildSigningBytes(r, bytes));
  auto ctx = decodeCanonicalValue(r.evidence->context);
  REQUIRE(ctx);
  CHECK(decodeCanonicalValue(r.evidence->context + "x") == std::nullopt);
}

// Throughput, not a check: `govmesh_replay_tests -tc='*bench*' --no-skip`. GOVMESH_REPLAY_BENCH_N
// records (default 1M: 1000 distinct signed requests repeated) and GOVMESH_REPLAY_BENCH_KEEP=DIR
// to keep the log (DIR/lineage, DIR/bundles, DIR/node.vkey, DIR/authority.pub) for the CLI.
TEST_CASE("replay: bench" * doctest::skip()) {
  const char* nEnv = std::getenv("GOVMESH_REPLAY_BENCH_N");
  const char* keep = std::getenv("GOVMESH_REPLAY_BENCH_KEEP");
  const uint64_t n = nEnv ? std::strtoull(nEnv, nullptr, 10) : 1'000'000;
  fs::path dir = keep ? fs::path(keep) : fs::temp_directory_path() / ("govmesh_replay_bench_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "bundles");
  std::string fileA = bundleFile(kPoliciesA, 1);
  std::ofstream(dir / "bundles" / "a.bundle", std::ios::binary) << fileA;
  std::ofstream(dir / "authority.pub") << authorityKey().publicPem;
  std::ofstream(dir / "other.pub") << aliceKey().publicPem;  // a key that signed no bundle
  std::ofstream(dir / "node.vkey") << ln::testing::testSigner().verifier().text() << "\n";
  Bundle a = loadBundle(fileA, {authorityKey().publicKey}, "a");
  FlatTable flat(a.table);
  auto scalar = makeEvaluator("scalar");
  std::vector<ln::Record> distinct;
  for (uint64_t i = 1; i <= 1000; ++i) {
    SignedRequest s = requestFor(i);
    auto resp = authorizeBatch(flat, *scalar, {toCedarRequest(s)});
    ln::Record r;
    r.timestampNs = s.timestampNs;
    r.nodeId = "node-1";
    r.bundleDigest = digestOf(fileA);
    r.bundleRevision = 1;
    r.principal = {s.principal.type, s.principal.id};
    r.action = {s.action.type, s.action.id};
    r.resource = {s.resource.type, s.resource.id};
    r.evidence = requestEvidence(s, std::nullopt);
    r.requestDigest = sha(canonicalSigningBytes(s));
    r.contextDigest = sha(r.evidence->context);
    r.signature = s.signature;
    if (i % 17 == 0) {
      r.denyCode = DenyCode::kBadSignature;
    } else {
      r.allow = resp[0].decision == cedar::Decision::Allow;
      r.reasons = resp[0].reasons;
      for (const auto& e : resp[0].errors) r.errors.push_back(e.policyId + ": " + e.message);
    }
    distinct.push_back(std::move(r));
  }
  {
    ln::LogOptions o;
    o.origin = ln::testing::kTestOrigin;
    o.signer = ln::testing::testSigner();
    o.sync = false;
    auto log = ln::Log::open((dir / "lineage").string(), o);
    REQUIRE(log);
    std::vector<ln::Record> batch;
    for (uint64_t done = 0; done < n;) {
      batch.clear();
      for (size_t k = 0; k < 4096 && done < n; ++k, ++done) batch.push_back(distinct[done % distinct.size()]);
      REQUIRE(log->append(batch) == ln::LogStatus::kOk);
    }
    REQUIRE(log->close() == ln::LogStatus::kOk);
  }
  uint64_t bytes = 0;
  for (const auto& e : fs::directory_iterator(dir / "lineage")) bytes += fs::file_size(e.path());
  MESSAGE("log: ", n, " records, ", bytes / n, " bytes/record on disk, cpu: ", cpuFeatures());
  ReplayOptions o;
  o.logDir = (dir / "lineage").string();
  o.bundlesDir = (dir / "bundles").string();
  o.nodeVerifier = ln::testing::testSigner().verifier();
  o.trusted = {authorityKey().publicKey};
  struct Mode {
    const char* name;
    bool verify, eval;
  };
  for (Mode m : {Mode{"hash+checkpoints only", false, false}, Mode{"no signature re-verification", false, true},
                 Mode{"full (signatures + evaluation)", true, true}}) {
    o.verifySignatures = m.verify;
    o.reevaluate = m.eval;
    auto rep = replay(o);
    CHECK(rep.ok());
    CHECK(rep.records == n);
    MESSAGE(std::string(m.name), ": ", static_cast<uint64_t>(rep.records / rep.seconds), " records/s (", rep.seconds, " s; eval ",
            rep.evalBackend, ", ed25519 ", rep.ed25519Backend, ")");
  }
  if (!keep) fs::remove_all(dir);
}
