// The decision service end to end (server/service.h): an in-process DecisionService on
// 127.0.0.1:0, a Cap'n Proto TwoPartyClient over TCP, and raw HTTP for /metrics, /healthz and
// /readyz. Every fail-closed case of issue 6 item 3 is its own subcase, answered over RPC:
// malformed, unknown key, key not for that principal, bad signature, payload digest mismatch,
// timestamp outside the window, replayed nonce, no bundle, POLICY_STALE, tampered / untrusted /
// older / expired bundle offered (refused, the current one stays), OVERLOADED, SHUTTING_DOWN,
// backend fault (fallback decides; both failing is BACKEND_FAULT); plus honest decisions,
// loadBundle of a newer bundle, SIGHUP-style reload, and the unsigned benchmarking mode.
#include "server/service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "engine/crypto_ed25519.h"
#include "engine/evaluator.h"
#include "server/request_capnp.h"
#include "tests/support/http_client.h"
#include "tests/support/service_fixture.h"

using namespace govmesh;
using namespace govmesh::engine;
using namespace std::chrono_literals;
namespace wire = govmesh::server::wire;
using server::DecisionService;
using server::ServiceOptions;

namespace {

using namespace govmesh::testing;

// policy0 allows alice to deploy in eu-1, policy1 forbids anything on degraded trust.
const char* kPolicies1 =
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };\n"
    "forbid(principal, action, resource) when { context has trust && context.trust == \"degraded\" };\n";
// A later revision forbids deploys in eu-1 (policy1).
const char* kPolicies2 =
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource);\n"
    "forbid(principal, action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };\n";

// A signed bundle file (the bytes `govmesh sign` writes).
std::string bundleFile(const char* policies, uint64_t revision, int64_t freshUntilMs = kStartMs + kHourMs,
                       const crypto::Ed25519KeyPair& signer = authorityKey()) {
  return signedAliceBundle(policies, revision, freshUntilMs, signer);
}

std::atomic<int64_t> gNow{kStart};

// A request by alice signed now, with a nonce never used before in this process.
SignedRequest request(const std::string& action, cedar::Value context, bool sign = true) {
  return aliceRequest(action, std::move(context), gNow.load(), sign);
}
SignedRequest deployEu() { return request("deploy", euContext()); }
SignedRequest deployDegraded() { return request("deploy", degradedContext()); }

ServiceOptions baseOptions() {
  gNow = kStart;
  ServiceOptions o;
  o.listen = "127.0.0.1:0";
  o.metricsListen = "127.0.0.1:0";
  o.trusted = {authorityKey().publicKey};
  o.nodeId = "test-node";
  o.pipeline.allowGpu = false;
  o.pipeline.maxWait = 100us;
  o.pipeline.admission.clock = [] { return gNow.load(); };
  return o;
}

// A Cap'n Proto client on its own kj event loop (this thread's).
struct Client {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  wire::Authorizer::Client cap = nullptr;

  explicit Client(uint16_t port) {
    auto addr = io.provider->getNetwork().parseAddress("127.0.0.1", port).wait(io.waitScope);
    stream = addr->connect().wait(io.waitScope);
    rpc = kj::heap<capnp::TwoPartyClient>(*stream);
    cap = rpc->bootstrap().castAs<wire::Authorizer>();
  }

  using Tweak = std::function<void(size_t, wire::Request::Builder)>;
  using Pending = kj::Promise<capnp::Response<wire::Authorizer::AuthorizeResults>>;

  Pending send(const std::vector<SignedRequest>& rs, const Tweak& tweak = {}) {
    auto req = cap.authorizeRequest();
    auto list = req.initRequests(static_cast<unsigned>(rs.size()));
    for (size_t i = 0; i < rs.size(); ++i) {
      REQUIRE(server::encodeRequest(rs[i], list[static_cast<unsigned>(i)]).ok());
      if (tweak) tweak(i, list[static_cast<unsigned>(i)]);
    }
    return req.send();
  }
  static std::vector<Decision> decisions(const capnp::Response<wire::Authorizer::AuthorizeResults>& resp) {
    std::vector<Decision> out;
    for (auto d : resp.getDecisions()) out.push_back(server::decodeDecision(d));
    return out;
  }
  std::vector<Decision> wait(Pending p) { return decisions(p.wait(io.waitScope)); }
  std::vector<Decision> authorize(const std::vector<SignedRequest>& rs, const Tweak& tweak = {}) {
    auto out = wait(send(rs, tweak));
    REQUIRE(out.size() == rs.size());
    return out;
  }
  Decision one(const SignedRequest& r, const Tweak& tweak = {}) { return authorize({r}, tweak).at(0); }

  struct StatusView {
    bool hasBundle = false;
    uint64_t revision = 0, decisions = 0, allowed = 0, queueDepth = 0;
    double secondsToDeadline = 0;
    std::string backend, nodeId, signatureBackend;
    size_t digestBytes = 0;
  };
  StatusView status() {
    auto resp = cap.statusRequest().send().wait(io.waitScope);
    auto s = resp.getStatus();
    return {s.getHasBundle(), s.getBundleRevision(), s.getDecisions(), s.getAllowed(), s.getQueueDepth(),
            s.getSecondsToDeadline(), s.getBackend(), s.getNodeId(), s.getSignatureBackend(), s.getBundleDigest().size()};
  }

  struct LoadView {
    bool ok = false;
    uint64_t revision = 0;
    wire::LoadRefusal refusal = wire::LoadRefusal::NONE;
    std::string error;
  };
  LoadView loadBundle(const std::string& bytes) {
    auto req = cap.loadBundleRequest();
    req.setBundle(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size()));
    auto resp = req.send().wait(io.waitScope);
    auto r = resp.getResult();
    return {r.getOk(), r.getRevision(), r.getRefusal(), r.getError()};
  }

  // Runs this loop for a while (so that sends go out while the test waits on something else).
  void pump(std::chrono::milliseconds ms) {
    io.provider->getTimer().afterDelay(ms.count() * kj::MILLISECONDS).wait(io.waitScope);
  }
  template <class Pred>
  bool pumpUntil(Pred pred, std::chrono::milliseconds limit = 5s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > end) return false;
      pump(1ms);
    }
    return true;
  }
};


// The value of the first sample line starting with `series` (e.g. `govmesh_bundle_revision `).
double metricValue(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const size_t eol = text.find('\n', at);
      return std::stod(text.substr(at + series.size(), eol - at - series.size()));
    }
    at += series.size();
  }
  FAIL("no sample " << series << " in:\n" << text);
  return 0;
}

// Holds the pipeline's worker in beforeBatch on the first batch until opened.
struct Gate {
  std::atomic<bool> entered{false};
  std::promise<void> releasePromise;
  std::shared_future<void> release = releasePromise.get_future().share();
  std::once_flag opened;
  std::function<void(size_t)> hook() {
    return [this](size_t) {
      if (!entered.exchange(true)) release.wait();
    };
  }
  void open() {
    std::call_once(opened, [this] { releasePromise.set_value(); });
  }
};
// Opens the gate on scope exit, so that a failed REQUIRE cannot leave a worker blocked forever.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.open(); }
};

class ThrowingEvaluator : public Evaluator {
 public:
  std::string_view name() const override { return "throwing"; }
  bool evaluate(const FlatTable&, const uint32_t*, size_t, BatchResult&) override { throw std::runtime_error("device lost"); }
};

// A running service with a bundle of kPolicies1, revision `revision`, and a client.
struct Running {
  explicit Running(ServiceOptions o, bool withBundle = true, uint64_t revision = 1) : svc(std::move(o)) {
    if (withBundle) REQUIRE(svc.offerBundle(bundleFile(kPolicies1, revision)).accepted);
    svc.start();
  }
  DecisionService svc;
  std::unique_ptr<Client> client;
  Client& c() {
    if (!client) client = std::make_unique<Client>(svc.port());
    return *client;
  }
};

}  // namespace

TEST_CASE("service: honest decisions and every request-level fail-closed case over RPC") {
  Running run(baseOptions());
  Client& c = run.c();

  SUBCASE("honest allow, and a policy deny with its reason") {
    auto ds = c.authorize({deployEu(), deployDegraded()});
    CHECK(ds[0].allow);
    CHECK(ds[0].code == DenyCode::kNone);
    CHECK(ds[0].reasons == std::vector<std::string>{"policy0"});
    CHECK_FALSE(ds[1].allow);
    CHECK(ds[1].code == DenyCode::kNone);
    CHECK(ds[1].reasons == std::vector<std::string>{"policy1"});
  }
  SUBCASE("malformed: missing principal (its neighbour is unaffected)") {
    auto ds = c.authorize({deployEu(), deployEu()}, [](size_t i, wire::Request::Builder b) {
      if (i == 1) b.getPrincipal().setUnset();
    });
    CHECK(ds[0].allow);
    CHECK_FALSE(ds[1].allow);
    CHECK(ds[1].code == DenyCode::kMalformed);
    REQUIRE(ds[1].errors.size() == 1);
    CHECK(ds[1].errors[0].find("principal") != std::string::npos);
  }
  SUBCASE("malformed: nonce of 15 bytes") {
    const uint8_t nonce[15] = {};
    Decision d = c.one(deployEu(), [&](size_t, wire::Request::Builder b) { b.setNonce(capnp::Data::Reader(nonce, 15)); });
    CHECK_FALSE(d.allow);
    CHECK(d.code == DenyCode::kMalformed);
    REQUIRE(d.errors.size() == 1);
    CHECK(d.errors[0] == "nonce is 15 bytes, expected 16");
  }
  SUBCASE("unknown keyId") {
    SignedRequest r = deployEu();
    r.keyId = "mallory";
    signRequest(r, aliceKey().privatePem);
    Decision d = c.one(r);
    CHECK_FALSE(d.allow);
    CHECK(d.code == DenyCode::kUnknownKey);
  }
  SUBCASE("key not allowed to act as that principal") {
    SignedRequest r = deployEu();
    r.principal = uid("Workload", "bob");
    signRequest(r, aliceKey().privatePem);
    Decision d = c.one(r);
    CHECK_FALSE(d.allow);
    CHECK(d.code == DenyCode::kKeyNotPrincipal);
  }
  SUBCASE("bad signature") {
    SignedRequest r = deployEu();
    r.signature[10] ^= 1;
    Decision d = c.one(r);
    CHECK_FALSE(d.allow);
    CHECK(d.code == DenyCode::kBadSignature);
  }
  SUBCASE("unsigned (empty signature) without --allow-unsigned is a bad signature") {
    Decision d = c.one(deployEu(), [](size_t, wire::Request::Builder b) { b.setSignature(capnp::Data::Reader()); });
    CHECK_FALSE(d.allow);
    CHECK(d.code == DenyCode::kBadSignature);
    Decision zero = c.one(request("deploy", cedar::Value::record({{"zone", cedar::Value::string("eu-1")}}), false));
    CHECK(zero.code == DenyCode::kBadSignature);
  }
  SUBCASE("payload digest mismatch") {
    SignedRequest r = deployEu();
    r.payload = "the real payload";
    r.payloadDigest = crypto::sha256("another payload");
    signRequest(r, aliceKey().privatePem);
    Decision d = c.one(r);
    CHECK_FALSE(d.allow);
    CHECK(d.code == DenyCode::kPayloadDigestMismatch);
    SignedRequest ok = deployEu();
    ok.payload = "the real payload";
    ok.payloadDigest = crypto::sha256("the real payload");
    signRequest(ok, aliceKey().privatePem);
    CHECK(c.one(ok).allow);
  }
  SUBCASE("timestamp outside the window") {
    for (int64_t skew : {-31 * kSecond, 31 * kSecond}) {
      SignedRequest r = deployEu();
      r.timestampNs = gNow.load() + skew;
      signRequest(r, aliceKey().privatePem);
      Decision d = c.one(r);
      CHECK_FALSE(d.allow);
      CHECK(d.code == DenyCode::kTimestampOutOfWindow);
    }
  }
  SUBCASE("replayed nonce") {
    const SignedRequest r = deployEu();
    CHECK(c.one(r).allow);
    Decision again = c.one(r);
    CHECK_FALSE(again.allow);
    CHECK(again.code == DenyCode::kReplayedNonce);
  }
  SUBCASE("bundle past its deadline: POLICY_STALE, /readyz 503") {
    CHECK(httpGet(run.svc.metricsPort(), "/readyz").status == 200);
    gNow = kStart + (kHourMs + 1000) * 1'000'000;
    Decision d = c.one(deployEu());
    CHECK_FALSE(d.allow);
    CHECK(d.code == DenyCode::kPolicyStale);
    auto ready = httpGet(run.svc.metricsPort(), "/readyz");
    CHECK(ready.status == 503);
    CHECK(ready.body.find("POLICY_STALE") != std::string::npos);
    CHECK(c.status().secondsToDeadline < 0);
    CHECK(metricValue(httpGet(run.svc.metricsPort(), "/metrics").body, "govmesh_bundle_seconds_until_deadline ") < 0);
  }
}

TEST_CASE("service: status() reports bundle, backend, counters and node") {
  Running run(baseOptions());
  Client& c = run.c();
  (void)c.authorize({deployEu(), deployDegraded()});
  SignedRequest bad = deployEu();
  bad.signature[0] ^= 1;
  (void)c.one(bad);
  auto s = c.status();
  CHECK(s.hasBundle);
  CHECK(s.revision == 1);
  CHECK(s.digestBytes == 32);
  CHECK(s.decisions == 3);
  CHECK(s.allowed == 1);
  CHECK(s.nodeId == "test-node");
  CHECK_FALSE(s.backend.empty());
  CHECK_FALSE(s.signatureBackend.empty());
  CHECK(s.secondsToDeadline == doctest::Approx(3600.0));
}

TEST_CASE("service without a bundle: NO_BUNDLE and not ready; a bundle through loadBundle fixes both") {
  Running run(baseOptions(), /*withBundle=*/false);
  Client& c = run.c();
  const uint16_t http = run.svc.metricsPort();
  REQUIRE(http != 0);

  Decision d = c.one(deployEu());
  CHECK_FALSE(d.allow);
  CHECK(d.code == DenyCode::kNoBundle);
  CHECK_FALSE(c.status().hasBundle);
  auto health = httpGet(http, "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  auto ready = httpGet(http, "/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.body.find("NO_BUNDLE") != std::string::npos);
  auto metrics = httpGet(http, "/metrics");
  for (int i = 0; i < 200 && metricValue(metrics.body, "govmesh_batch_size_count ") < 1; ++i) {
    std::this_thread::sleep_for(5ms);
    metrics = httpGet(http, "/metrics");
  }
  CHECK(metrics.status == 200);
  CHECK(metricValue(metrics.body, "govmesh_bundle_revision ") == 0);
  CHECK(metricValue(metrics.body, "govmesh_decisions_total{result=\"deny\",code=\"NO_BUNDLE\"} ") == 1);
  CHECK(httpGet(http, "/nope").status == 404);

  auto loaded = c.loadBundle(bundleFile(kPolicies1, 5));
  CHECK(loaded.ok);
  CHECK(loaded.revision == 5);
  CHECK(loaded.refusal == wire::LoadRefusal::NONE);
  CHECK(c.status().revision == 5);
  CHECK(c.one(deployEu()).allow);
  ready = httpGet(http, "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready: bundle revision 5\n");
  // The observer sees a batch after its replies went out (engine/pipeline.h): poll briefly.
  for (int i = 0; i < 200; ++i) {
    metrics = httpGet(http, "/metrics");
    if (metricValue(metrics.body, "govmesh_batch_size_count ") >= 2) break;
    std::this_thread::sleep_for(5ms);
  }
  CHECK(metricValue(metrics.body, "govmesh_bundle_revision ") == 5);
  CHECK(metricValue(metrics.body, "govmesh_decisions_total{result=\"allow\",code=\"NONE\"} ") == 1);
  CHECK(metricValue(metrics.body, "govmesh_batch_size_count ") >= 2);
  CHECK(metricValue(metrics.body, "govmesh_stage_latency_seconds_count{stage=\"verify\"} ") >= 2);
  CHECK(metricValue(metrics.body, "govmesh_bundle_seconds_until_deadline ") == doctest::Approx(3600.0));
}

TEST_CASE("service: loadBundle refuses tampered, untrusted, older and expired bundles; accepts a newer one") {
  Running run(baseOptions(), true, /*revision=*/2);
  Client& c = run.c();
  REQUIRE(c.status().revision == 2);
  Client::LoadView r;

  SUBCASE("tampered") {
    std::string bytes = bundleFile(kPolicies1, 3);
    bytes[bytes.size() / 2] ^= 0x20;
    r = c.loadBundle(bytes);
    CHECK(r.refusal != wire::LoadRefusal::NONE);
  }
  SUBCASE("signed by an untrusted key") {
    r = c.loadBundle(bundleFile(kPolicies1, 3, kStartMs + kHourMs, strangerKey()));
    CHECK(r.refusal == wire::LoadRefusal::UNTRUSTED_SIGNER);
  }
  SUBCASE("older") {
    r = c.loadBundle(bundleFile(kPolicies2, 1));
    CHECK(r.refusal == wire::LoadRefusal::NOT_NEWER);
  }
  SUBCASE("already past its deadline") {
    r = c.loadBundle(bundleFile(kPolicies2, 3, kStartMs - 1));
    CHECK(r.refusal == wire::LoadRefusal::STALE);
  }
  SUBCASE("not a bundle") {
    r = c.loadBundle("hello");
    CHECK(r.refusal == wire::LoadRefusal::MALFORMED);
  }
  SUBCASE("newer: accepted, decisions follow it") {
    CHECK(c.one(deployEu()).allow);
    r = c.loadBundle(bundleFile(kPolicies2, 3));
    CHECK(r.ok);
    CHECK(r.revision == 3);
    CHECK(c.status().revision == 3);
    Decision d = c.one(deployEu());
    CHECK_FALSE(d.allow);
    CHECK(d.reasons == std::vector<std::string>{"policy1"});
    return;
  }
  // Refused: the current bundle stays, and decides.
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.error.empty());
  CHECK(r.revision == 2);
  CHECK(c.status().revision == 2);
  CHECK(c.one(deployEu()).allow);
}

TEST_CASE("service: a full queue answers OVERLOADED at once") {
  Gate gate;
  ServiceOptions o = baseOptions();
  o.pipeline.workers = 1;
  o.pipeline.maxBatch = 1;
  o.pipeline.maxWait = 0us;
  o.pipeline.queueCapacity = 2;
  o.pipeline.beforeBatch = gate.hook();
  Running run(std::move(o));
  OpenOnExit opener{gate};
  Client& c = run.c();

  auto held = c.send({deployEu()});  // taken by the worker, which then waits at the gate
  REQUIRE(c.pumpUntil([&] { return gate.entered.load(); }));
  auto queued = c.send({deployEu(), deployEu()});  // fills the queue (capacity 2)
  REQUIRE(c.pumpUntil([&] { return run.svc.pipeline().queueDepth() == 2; }));
  const auto t0 = std::chrono::steady_clock::now();
  auto over = c.authorize({deployEu()});  // answered while the worker is still held
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK_FALSE(over[0].allow);
  CHECK(over[0].code == DenyCode::kOverloaded);
  CHECK_FALSE(gate.release.wait_for(0s) == std::future_status::ready);  // nothing waited on the gate

  gate.open();
  auto a = c.wait(kj::mv(held));
  auto b = c.wait(kj::mv(queued));
  REQUIRE(a.size() == 1);
  REQUIRE(b.size() == 2);
  CHECK(a[0].allow);
  CHECK(b[0].allow);
  CHECK(b[1].allow);
}

TEST_CASE("service: shutdown drains; calls during the drain get SHUTTING_DOWN; then connections are refused") {
  Gate gate;
  ServiceOptions o = baseOptions();
  o.pipeline.workers = 1;
  o.pipeline.beforeBatch = gate.hook();
  Running run(std::move(o));
  OpenOnExit opener{gate};
  Client& c = run.c();
  const uint16_t port = run.svc.port();

  auto inFlight = c.send({deployEu()});
  REQUIRE(c.pumpUntil([&] { return gate.entered.load(); }));
  std::thread stopper([&] { run.svc.shutdown(); });
  struct Join {
    std::thread& t;
    Gate& g;
    ~Join() {
      g.open();
      if (t.joinable()) t.join();
    }
  } join{stopper, gate};
  REQUIRE(c.pumpUntil([&] { return !run.svc.pipeline().accepting(); }));

  // Arrives on an open connection while the pipeline drains.
  auto late = c.authorize({deployEu()});
  CHECK_FALSE(late[0].allow);
  CHECK(late[0].code == DenyCode::kShuttingDown);

  // What was in flight is still answered, and honestly.
  gate.open();
  auto first = c.wait(kj::mv(inFlight));
  REQUIRE(first.size() == 1);
  CHECK(first[0].allow);
  stopper.join();

  // Afterwards the port is closed: connection refused.
  CHECK_THROWS(Client(port));
  run.svc.shutdown();  // idempotent
}

TEST_CASE("service: a faulting backend falls back to the CPU; both faulting is BACKEND_FAULT") {
  ServiceOptions o = baseOptions();
  o.pipeline.makePrimary = [] { return std::make_unique<ThrowingEvaluator>(); };
  bool bothFail = false;
  SUBCASE("primary throws") {}
  SUBCASE("primary and fallback throw") {
    bothFail = true;
    o.pipeline.makeFallback = [] { return std::make_unique<ThrowingEvaluator>(); };
  }
  Running run(std::move(o));
  Client& c = run.c();
  auto ds = c.authorize({deployEu(), deployDegraded()});
  if (bothFail) {
    for (const Decision& d : ds) {
      CHECK_FALSE(d.allow);
      CHECK(d.code == DenyCode::kBackendFault);
    }
    CHECK(run.svc.pipeline().counters().backendFaults >= 1);
  } else {
    CHECK(ds[0].allow);
    CHECK(ds[0].reasons == std::vector<std::string>{"policy0"});
    CHECK_FALSE(ds[1].allow);
    CHECK(ds[1].code == DenyCode::kNone);
    CHECK(ds[1].reasons == std::vector<std::string>{"policy1"});
    CHECK(run.svc.pipeline().counters().evaluateFallbacks >= 1);
    const std::string series = "govmesh_backend_fallbacks_total{kind=\"evaluate\"} ";
    for (int i = 0; i < 200 && metricValue(run.svc.metricsText(), series) < 1; ++i) std::this_thread::sleep_for(5ms);
    CHECK(metricValue(run.svc.metricsText(), series) >= 1);
  }
}

TEST_CASE("service: --allow-unsigned skips only the signature check, on loopback only") {
  CHECK(server::isLoopbackListenAddress("127.0.0.1:7878"));
  CHECK(server::isLoopbackListenAddress("127.1.2.3:0"));
  CHECK(server::isLoopbackListenAddress("localhost:7878"));
  CHECK(server::isLoopbackListenAddress("[::1]:7878"));
  CHECK_FALSE(server::isLoopbackListenAddress("0.0.0.0:7878"));
  CHECK_FALSE(server::isLoopbackListenAddress("10.0.0.1:7878"));
  CHECK_FALSE(server::isLoopbackListenAddress("127.0.0.1.evil.com:7878"));
  CHECK_FALSE(server::isLoopbackListenAddress("*:7878"));

  ServiceOptions o = baseOptions();
  o.allowUnsigned = true;
  SUBCASE("refused on a non-loopback listener") {
    o.listen = "0.0.0.0:0";
    CHECK_THROWS_AS(DecisionService(std::move(o)), std::invalid_argument);
    return;
  }
  Running run(std::move(o));
  Client& c = run.c();
  auto emptySig = [](size_t, wire::Request::Builder b) { b.setSignature(capnp::Data::Reader()); };
  const SignedRequest unsignedReq = request("deploy", cedar::Value::record({{"zone", cedar::Value::string("eu-1")}}), false);
  CHECK(c.one(unsignedReq, emptySig).allow);
  // Everything else still applies: the nonce, the key, the principal, the window...
  Decision replay = c.one(unsignedReq, emptySig);
  CHECK(replay.code == DenyCode::kReplayedNonce);
  SignedRequest stranger = request("deploy", cedar::Value::record({{"zone", cedar::Value::string("eu-1")}}), false);
  stranger.principal = uid("Workload", "bob");
  CHECK(c.one(stranger, emptySig).code == DenyCode::kKeyNotPrincipal);
  // ... and a signature that is present must verify.
  SignedRequest forged = deployEu();
  forged.signature[3] ^= 1;
  CHECK(c.one(forged).code == DenyCode::kBadSignature);
  CHECK(c.one(deployEu()).allow);
}

TEST_CASE("service: bundlePath at start and requestReload (the SIGHUP path)") {
  const auto dir = std::filesystem::temp_directory_path() / ("govmesh_service_rpc_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "node.bundle").string();
  auto write = [&](const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
  };
  struct Cleanup {
    std::filesystem::path d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};

  ServiceOptions o = baseOptions();
  o.bundlePath = path;
  SUBCASE("missing file: the service runs without a bundle and says why") {
    DecisionService svc(std::move(o));
    REQUIRE(svc.initialLoad());
    CHECK_FALSE(svc.initialLoad()->accepted);
    CHECK(svc.initialLoad()->reason == LoadRefusal::kUnreadable);
    CHECK(svc.initialLoad()->message.find("node.bundle") != std::string::npos);
    svc.start();
    Client c(svc.port());
    CHECK(c.one(deployEu()).code == DenyCode::kNoBundle);
    auto ready = httpGet(svc.metricsPort(), "/readyz");
    CHECK(ready.status == 503);
    CHECK(ready.body.find("node.bundle") != std::string::npos);
    return;
  }
  write(bundleFile(kPolicies1, 1));
  std::mutex mu;
  std::vector<LoadOutcome> outcomes;
  o.onReload = [&](const LoadOutcome& out) {
    std::lock_guard lock(mu);
    outcomes.push_back(out);
  };
  auto reloads = [&] {
    std::lock_guard lock(mu);
    return outcomes.size();
  };
  DecisionService svc(std::move(o));
  REQUIRE(svc.initialLoad());
  CHECK(svc.initialLoad()->accepted);
  svc.start();
  Client c(svc.port());
  CHECK(c.status().revision == 1);

  write(bundleFile(kPolicies2, 2));
  svc.requestReload();
  REQUIRE(c.pumpUntil([&] { return reloads() == 1; }));
  CHECK(outcomes[0].swapped);
  CHECK(c.status().revision == 2);
  CHECK_FALSE(c.one(deployEu()).allow);

  write("garbage");
  svc.requestReload();
  REQUIRE(c.pumpUntil([&] { return reloads() == 2; }));
  CHECK_FALSE(outcomes[1].accepted);
  CHECK(c.status().revision == 2);
  CHECK(httpGet(svc.metricsPort(), "/readyz").status == 200);
}

// Not a check: numbers for the report (run with --no-skip -tc="*measurement*"). One client on
// this thread, the service's loop and one worker on theirs, all on this machine.
TEST_CASE("service: round-trip latency and batched throughput (measurement)" * doctest::skip()) {
  auto percentile = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
  };
  for (int64_t waitUs : {0, 200}) {
    ServiceOptions o = baseOptions();
    o.pipeline.maxWait = std::chrono::microseconds(waitUs);
    Running run(std::move(o));
    Client& c = run.c();
    std::vector<SignedRequest> rs;
    for (int i = 0; i < 3000; ++i) rs.push_back(deployEu());
    std::vector<double> us;
    for (const SignedRequest& r : rs) {
      const auto t0 = std::chrono::steady_clock::now();
      REQUIRE(c.one(r).allow);
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    MESSAGE("unbatched signed round trip, T=" << waitUs << "us: p50 " << percentile(us, 0.5) << " us, p99 "
                                              << percentile(us, 0.99) << " us");
  }
  for (bool unsignedMode : {false, true}) {
    ServiceOptions o = baseOptions();
    o.allowUnsigned = unsignedMode;
    Running run(std::move(o));
    Client& c = run.c();
    constexpr size_t kBatch = 1024, kCalls = 30;
    std::vector<std::vector<SignedRequest>> calls(kCalls);
    for (auto& call : calls)
      for (size_t i = 0; i < kBatch; ++i)
        call.push_back(request("deploy", cedar::Value::record({{"zone", cedar::Value::string("eu-1")}}), !unsignedMode));
    Client::Tweak tweak;
    if (unsignedMode) tweak = [](size_t, wire::Request::Builder b) { b.setSignature(capnp::Data::Reader()); };
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Client::Pending> pending;
    for (auto& call : calls) pending.push_back(c.send(call, tweak));  // all in flight at once
    size_t allowed = 0;
    for (auto& p : pending)
      for (const Decision& d : c.wait(kj::mv(p))) allowed += d.allow;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(allowed == kBatch * kCalls);
    MESSAGE(std::string(unsignedMode ? "unsigned" : "signed") << " batches of " << kBatch << ", " << kCalls
                                                   << " calls in flight: " << static_cast<double>(kBatch * kCalls) / s
                                                   << " decisions/s (client encode + server, one worker)");
  }
}
