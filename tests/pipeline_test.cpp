// The batch pipeline (engine/pipeline.h): decisions against a small compiled bundle, equal to an
// offline authorizeBatch; micro-batches gathered across threads and flushed on B or on T; every
// fail-closed path it owns (OVERLOADED, SHUTTING_DOWN, BACKEND_FAULT, LINEAGE_UNAVAILABLE,
// NO_BUNDLE, POLICY_STALE); bundle swaps between batches, never within one.
#include "engine/pipeline.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include "engine/crypto_ed25519.h"
#include "tests/support/service_fixture.h"

using namespace govmesh;
using namespace govmesh::engine;
using namespace std::chrono_literals;

namespace {

using namespace govmesh::testing;

// policy0 allows alice to deploy in eu-1, policy1 forbids anything on degraded trust, policy2
// allows reads above level 3 (and errors when the context has no level).
const char* kPolicies1 =
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };\n"
    "forbid(principal, action, resource) when { context has trust && context.trust == \"degraded\" };\n"
    "permit(principal, action == Action::\"read\", resource) when { context.level > 3 };\n";
// Revision 2 turns deploys in eu-1 into denies (policy1).
const char* kPolicies2 =
    "permit(principal == Workload::\"alice\", action == Action::\"deploy\", resource);\n"
    "forbid(principal, action == Action::\"deploy\", resource) when { context.zone == \"eu-1\" };\n";

std::shared_ptr<const Bundle> makeBundle(const char* policies, uint64_t revision) {
  return std::make_shared<const Bundle>(aliceBundle(policies, revision, kStartMs, kStartMs + kHourMs));
}

const std::shared_ptr<const Bundle>& bundle1() {
  static const auto b = makeBundle(kPolicies1, 1);
  return b;
}
const std::shared_ptr<const Bundle>& bundle2() {
  static const auto b = makeBundle(kPolicies2, 2);
  return b;
}

std::atomic<int64_t> gNow{kStart};

// A request by alice signed now, with a nonce never used before in this process.
SignedRequest request(const std::string& action, cedar::Value context) { return aliceRequest(action, std::move(context), gNow.load()); }

SignedRequest deployEu() { return request("deploy", euContext()); }

PipelineOptions baseOptions() {
  gNow = kStart;
  PipelineOptions o;
  o.allowGpu = false;
  o.maxWait = 100us;
  o.admission.clock = [] { return gNow.load(); };
  return o;
}

// One submission's answer, as a future (the callback must be copyable, hence the shared_ptr).
struct Reply {
  std::shared_ptr<std::promise<std::vector<Decision>>> promise = std::make_shared<std::promise<std::vector<Decision>>>();
  std::shared_future<std::vector<Decision>> future = promise->get_future().share();
  DecisionCallback callback() const {
    return [p = promise](std::vector<Decision> d) { p->set_value(std::move(d)); };
  }
  bool ready() const { return future.wait_for(0s) == std::future_status::ready; }
  std::vector<Decision> get() const {
    REQUIRE(future.wait_for(5s) == std::future_status::ready);
    return future.get();
  }
};

std::vector<Decision> decide(Pipeline& p, std::vector<SignedRequest> rs) {
  Reply reply;
  REQUIRE(p.submit(std::move(rs), reply.callback()) == DenyCode::kNone);
  return reply.get();
}

std::string errorText(const cedar::PolicyError& e) { return e.policyId + ": " + e.message; }

// The offline answer: the same requests through authorizeBatch on the scalar reference.
std::vector<cedar::Response> offline(const Bundle& b, const std::vector<SignedRequest>& rs) {
  std::vector<cedar::Request> cedarRequests;
  for (const SignedRequest& r : rs) cedarRequests.push_back(toCedarRequest(r));
  FlatTable flat(b.table);
  auto scalar = makeEvaluator("scalar");
  return authorizeBatch(flat, *scalar, cedarRequests);
}

void checkSame(const Decision& d, const cedar::Response& want) {
  CHECK(d.code == DenyCode::kNone);
  CHECK(d.allow == (want.decision == cedar::Decision::Allow));
  CHECK(d.reasons == want.reasons);
  std::vector<std::string> errors;
  for (const auto& e : want.errors) errors.push_back(errorText(e));
  CHECK(d.errors == errors);
}

// Records batch sizes and fallbacks.
struct Recorder : PipelineObserver {
  std::mutex mu;
  std::vector<size_t> sizes;
  std::vector<DenyCode> rejected;
  bool fellBack = false;
  uint64_t allowed = 0;
  std::condition_variable cv;
  void onBatch(const BatchStats& s) override {
    std::lock_guard<std::mutex> lock(mu);
    sizes.push_back(s.size);
    fellBack = fellBack || s.evaluateFellBack;
    allowed += s.allowed;
    cv.notify_all();
  }
  // onBatch runs after the batch's callbacks: a test that has its answers waits for it here.
  void waitBatches(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    REQUIRE(cv.wait_for(lock, 5s, [&] { return sizes.size() >= n; }));
  }
  void onRejected(DenyCode code, size_t) override {
    std::lock_guard<std::mutex> lock(mu);
    rejected.push_back(code);
  }
  std::vector<size_t> batchSizes() {
    std::lock_guard<std::mutex> lock(mu);
    return sizes;
  }
};

// Holds the worker in beforeBatch on the first batch until released.
struct Gate {
  std::atomic<bool> entered{false};
  std::promise<void> enteredPromise, releasePromise;
  std::shared_future<void> release = releasePromise.get_future().share();
  std::function<void(size_t)> hook() {
    return [this](size_t) {
      if (!entered.exchange(true)) {
        enteredPromise.set_value();
        release.wait();
      }
    };
  }
  void waitEntered() { REQUIRE(enteredPromise.get_future().wait_for(5s) == std::future_status::ready); }
  void open() {
    std::call_once(opened, [this] { releasePromise.set_value(); });
  }
  std::once_flag opened;
};

// Opens the gate when the test leaves its scope, so that a failed REQUIRE does not leave the
// worker blocked and the Pipeline's destructor waiting for it. Declare it after the Pipeline.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.open(); }
};

class FailingEvaluator : public Evaluator {
 public:
  std::string_view name() const override { return "failing"; }
  bool evaluate(const FlatTable&, const uint32_t*, size_t, BatchResult&) override { return false; }
};
class ThrowingEvaluator : public Evaluator {
 public:
  std::string_view name() const override { return "throwing"; }
  bool evaluate(const FlatTable&, const uint32_t*, size_t, BatchResult&) override {
    throw std::runtime_error("device lost");
  }
};
// Claims success but writes nothing: its output must not be trusted.
class LyingEvaluator : public Evaluator {
 public:
  std::string_view name() const override { return "lying"; }
  bool evaluate(const FlatTable&, const uint32_t*, size_t, BatchResult& out) override {
    out = {};
    return true;
  }
};

std::vector<SignedRequest> mixedRequests() {
  std::vector<SignedRequest> rs;
  rs.push_back(deployEu());  // allow, policy0
  rs.push_back(request("deploy", cedar::Value::record({{"zone", cedar::Value::string("eu-1")},
                                                       {"trust", cedar::Value::string("degraded")}})));  // forbid
  rs.push_back(request("read", cedar::Value::record({})));                                 // error in policy2
  rs.push_back(request("read", cedar::Value::record({{"level", cedar::Value::integer(5)}})));  // allow, policy2
  rs.push_back(request("deploy", cedar::Value::record({{"zone", cedar::Value::string("us-1")}})));  // default deny
  return rs;
}

}  // namespace

TEST_CASE("pipeline: allows and denies with reasons and errors; faults keep their codes") {
  PipelineOptions o = baseOptions();
  Pipeline p(o);
  p.setBundle(bundle1());
  auto rs = mixedRequests();
  SignedRequest forged = deployEu();
  forged.signature[0] ^= 1;
  rs.push_back(forged);
  auto want = offline(*bundle1(), rs);
  std::vector<DenyCode> preset(rs.size(), DenyCode::kNone);
  rs.push_back(SignedRequest{});
  preset.push_back(DenyCode::kMalformed);

  Reply reply;
  REQUIRE(p.submit(rs, preset, reply.callback()) == DenyCode::kNone);
  auto d = reply.get();
  REQUIRE(d.size() == 7);
  CHECK(d[0].allow);
  CHECK(d[0].reasons == std::vector<std::string>{"policy0"});
  CHECK_FALSE(d[1].allow);
  CHECK(d[1].reasons == std::vector<std::string>{"policy1"});
  CHECK_FALSE(d[2].allow);
  REQUIRE(d[2].errors.size() == 1);
  CHECK(d[2].errors[0].rfind("policy2: ", 0) == 0);
  CHECK(d[3].allow);
  CHECK(d[3].reasons == std::vector<std::string>{"policy2"});
  CHECK_FALSE(d[4].allow);
  CHECK(d[4].reasons.empty());
  for (size_t i = 0; i < 5; ++i) checkSame(d[i], want[i]);
  CHECK_FALSE(d[5].allow);
  CHECK(d[5].code == DenyCode::kBadSignature);
  CHECK_FALSE(d[6].allow);
  CHECK(d[6].code == DenyCode::kMalformed);

  // A preset-code list of the wrong size is the caller's bug: denied MALFORMED at once.
  Reply bad;
  CHECK(p.submit({deployEu()}, {}, bad.callback()) == DenyCode::kMalformed);
  REQUIRE(bad.ready());
  CHECK(bad.get()[0].code == DenyCode::kMalformed);

  auto c = p.counters();
  CHECK(c.allowed == 2);
  CHECK(c.submitted == 7);
  CHECK(p.backendName() == bestEvaluator(false)->name());
}

TEST_CASE("pipeline: decisions from several threads equal an offline authorizeBatch") {
  PipelineOptions o = baseOptions();
  o.workers = 2;
  o.maxBatch = 16;
  Pipeline p(o);
  p.setBundle(bundle1());
  constexpr int kThreads = 4, kSubmissions = 10, kPerSubmission = 5;
  std::vector<std::vector<SignedRequest>> sent(kThreads * kSubmissions);
  std::vector<Reply> replies(sent.size());
  for (size_t s = 0; s < sent.size(); ++s) {
    std::mt19937 rng(static_cast<uint32_t>(s));
    for (int i = 0; i < kPerSubmission; ++i) {
      cedar::ValueRecord ctx;
      ctx.emplace_back("zone", cedar::Value::string(rng() % 2 ? "eu-1" : "us-1"));
      if (rng() % 4 == 0) ctx.emplace_back("trust", cedar::Value::string(rng() % 2 ? "degraded" : "ok"));
      if (rng() % 2) ctx.emplace_back("level", cedar::Value::integer(static_cast<int64_t>(rng() % 8)));
      sent[s].push_back(request(rng() % 2 ? "deploy" : "read", cedar::Value::record(std::move(ctx))));
    }
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kSubmissions; ++k) {
        const size_t s = static_cast<size_t>(t * kSubmissions + k);
        CHECK(p.submit(sent[s], replies[s].callback()) == DenyCode::kNone);
      }
    });
  }
  for (auto& th : threads) th.join();
  size_t allowed = 0;
  for (size_t s = 0; s < sent.size(); ++s) {
    auto got = replies[s].get();
    auto want = offline(*bundle1(), sent[s]);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("submission " << s << " request " << i);
      checkSame(got[i], want[i]);
      allowed += got[i].allow;
    }
  }
  CHECK(allowed > 0);  // the workload is mixed, not all denies
  CHECK(allowed < sent.size() * kPerSubmission);
}

TEST_CASE("pipeline: micro-batches gather submissions from several threads and flush at B") {
  Recorder rec;
  PipelineOptions o = baseOptions();
  o.maxBatch = 8;
  o.maxWait = 10s;  // only B can flush within the test
  o.flushWhenIdle = false;
  o.observer = &rec;
  Pipeline p(o);
  p.setBundle(bundle1());
  std::vector<std::vector<SignedRequest>> rs(4);
  for (auto& v : rs) v = {deployEu(), deployEu()};
  std::vector<Reply> replies(4);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) threads.emplace_back([&, t] { p.submit(rs[t], replies[t].callback()); });
  for (auto& th : threads) th.join();
  for (auto& r : replies) {
    auto d = r.get();
    REQUIRE(d.size() == 2);
    CHECK(d[0].allow);
    CHECK(d[1].allow);
  }
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  rec.waitBatches(1);
  CHECK(rec.batchSizes() == std::vector<size_t>{8});
  CHECK(rec.allowed == 8);
}

TEST_CASE("pipeline: a batch under B flushes T after its first request") {
  Recorder rec;
  PipelineOptions o = baseOptions();
  o.maxBatch = 1000;
  o.maxWait = 300ms;
  o.flushWhenIdle = false;
  o.observer = &rec;
  Pipeline p(o);
  p.setBundle(bundle1());
  std::vector<SignedRequest> rs{deployEu(), deployEu(), deployEu()};
  std::vector<Reply> replies(3);
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < 3; ++i) p.submit({rs[i]}, replies[i].callback());
  for (auto& r : replies) CHECK(r.get()[0].allow);
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);
  rec.waitBatches(1);
  CHECK(rec.batchSizes() == std::vector<size_t>{3});
}

TEST_CASE("pipeline: with no worker busy, a lone request is flushed at once (flushWhenIdle)") {
  Recorder rec;
  PipelineOptions o = baseOptions();
  o.maxBatch = 1000;
  o.maxWait = 10s;  // B and T alone would hold the request for 10 s
  o.flushWhenIdle = true;
  o.observer = &rec;
  Pipeline p(o);
  p.setBundle(bundle1());
  Reply reply;
  const auto start = std::chrono::steady_clock::now();
  p.submit({deployEu()}, reply.callback());
  CHECK(reply.get()[0].allow);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  rec.waitBatches(1);
  CHECK(rec.batchSizes() == std::vector<size_t>{1});
}

TEST_CASE("pipeline: a full queue answers OVERLOADED at once") {
  Recorder rec;
  Gate gate;
  PipelineOptions o = baseOptions();
  o.maxBatch = 1;
  o.queueCapacity = 4;
  o.beforeBatch = gate.hook();
  o.observer = &rec;
  Pipeline p(o);
  OpenOnExit opener{gate};
  p.setBundle(bundle1());
  std::vector<Reply> replies(5);
  REQUIRE(p.submit({deployEu()}, replies[0].callback()) == DenyCode::kNone);
  gate.waitEntered();  // the worker holds request 0; the queue is empty again
  for (size_t i = 1; i < 5; ++i) REQUIRE(p.submit({deployEu()}, replies[i].callback()) == DenyCode::kNone);
  CHECK(p.queueDepth() == 4);
  Reply over, overPair;
  CHECK(p.submit({deployEu()}, over.callback()) == DenyCode::kOverloaded);
  REQUIRE(over.ready());  // answered before submit returned
  CHECK(over.get()[0].code == DenyCode::kOverloaded);
  CHECK_FALSE(over.get()[0].allow);
  CHECK(p.submit({deployEu(), deployEu()}, overPair.callback()) == DenyCode::kOverloaded);
  REQUIRE(overPair.ready());
  CHECK(overPair.get().size() == 2);
  gate.open();
  for (auto& r : replies) CHECK(r.get()[0].allow);
  CHECK(p.counters().overloaded == 3);
  CHECK(rec.rejected == std::vector<DenyCode>{DenyCode::kOverloaded, DenyCode::kOverloaded});
}

TEST_CASE("pipeline: shutdown answers what is in flight and refuses new work") {
  Gate gate;
  PipelineOptions o = baseOptions();
  o.maxBatch = 1;
  o.beforeBatch = gate.hook();
  Pipeline p(o);
  p.setBundle(bundle1());
  std::vector<Reply> replies(3);
  for (auto& r : replies) REQUIRE(p.submit({deployEu()}, r.callback()) == DenyCode::kNone);
  gate.waitEntered();
  std::jthread stopper([&] { p.shutdown(); });
  OpenOnExit opener{gate};  // destroyed first: opens the gate, then stopper joins
  for (int i = 0; i < 500 && p.accepting(); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE_FALSE(p.accepting());
  Reply late;
  CHECK(p.submit({deployEu()}, late.callback()) == DenyCode::kShuttingDown);
  REQUIRE(late.ready());
  CHECK(late.get()[0].code == DenyCode::kShuttingDown);
  gate.open();
  stopper.join();
  for (auto& r : replies) {
    REQUIRE(r.ready());  // shutdown() returned only after answering them
    CHECK(r.get()[0].allow);
  }
  Reply after;
  CHECK(p.submit({deployEu()}, after.callback()) == DenyCode::kShuttingDown);
  CHECK(p.counters().shuttingDown == 2);
  p.shutdown();  // idempotent
}

TEST_CASE("pipeline: a faulting backend falls back to the scalar one with the same decisions") {
  auto rs = mixedRequests();
  auto want = offline(*bundle1(), rs);
  const std::pair<const char*, EvaluatorFactory> faults[] = {
      {"failing", [] { return std::make_unique<FailingEvaluator>(); }},
      {"throwing", [] { return std::make_unique<ThrowingEvaluator>(); }},
      {"lying", [] { return std::make_unique<LyingEvaluator>(); }},
  };
  for (const auto& fault : faults) {
    const std::string name = fault.first;
    const EvaluatorFactory& factory = fault.second;
    INFO("primary backend " << name);
    Recorder rec;
    PipelineOptions o = baseOptions();
    o.makePrimary = factory;
    o.observer = &rec;
    Pipeline p(o);
    p.setBundle(bundle1());
    CHECK(p.backendName() == name);
    std::vector<SignedRequest> fresh;
    for (const SignedRequest& r : rs) {
      SignedRequest c = r;
      c.nonce = freshNonce();  // nonces are per pipeline, but keep them unique anyway
      signRequest(c, aliceKey().privatePem);
      fresh.push_back(c);
    }
    auto d = decide(p, fresh);
    REQUIRE(d.size() == want.size());
    for (size_t i = 0; i < d.size(); ++i) checkSame(d[i], want[i]);
    CHECK(p.counters().evaluateFallbacks == 1);
    CHECK(p.counters().backendFaults == 0);
    rec.waitBatches(1);
    CHECK(rec.fellBack);
  }
}

TEST_CASE("pipeline: when the fallback fails too, admitted requests are denied BACKEND_FAULT") {
  PipelineOptions o = baseOptions();
  o.makePrimary = [] { return std::make_unique<ThrowingEvaluator>(); };
  o.makeFallback = [] { return std::make_unique<FailingEvaluator>(); };
  Pipeline p(o);
  p.setBundle(bundle1());
  auto rs = mixedRequests();
  SignedRequest forged = deployEu();
  forged.signature[5] ^= 0x10;
  rs.push_back(forged);
  auto d = decide(p, rs);
  REQUIRE(d.size() == 6);
  for (size_t i = 0; i < 5; ++i) {
    CHECK_FALSE(d[i].allow);
    CHECK(d[i].code == DenyCode::kBackendFault);
    CHECK(d[i].reasons.empty());
  }
  CHECK(d[5].code == DenyCode::kBadSignature);  // decided before evaluation, so it keeps its code
  CHECK(p.counters().backendFaults == 1);
  CHECK(p.counters().allowed == 0);
}

TEST_CASE("pipeline: the record hook sets lineage, cannot allow, and its failure denies the batch") {
  SUBCASE("success: lineageSeq set, an attempted allow of a deny ignored") {
    PipelineOptions o = baseOptions();
    std::atomic<int> calls{0};
    o.record = [&](const Bundle* b, std::span<const SignedRequest> rs, std::span<Decision> ds) {
      ++calls;
      CHECK(b == bundle1().get());
      CHECK(rs.size() == ds.size());
      for (size_t i = 0; i < ds.size(); ++i) {
        ds[i].lineageSeq = 100 + i;
        ds[i].allow = true;  // a buggy hook: must not turn denies into allows
      }
      return true;
    };
    Pipeline p(o);
    p.setBundle(bundle1());
    auto d = decide(p, mixedRequests());
    CHECK(calls == 1);
    CHECK(d[0].allow);
    CHECK_FALSE(d[1].allow);
    CHECK_FALSE(d[4].allow);
    CHECK(d[3].allow);
    for (size_t i = 0; i < d.size(); ++i) CHECK(d[i].lineageSeq == 100 + i);
  }
  SUBCASE("failure (false or a throw): every decision LINEAGE_UNAVAILABLE") {
    for (bool throws : {false, true}) {
      PipelineOptions o = baseOptions();
      o.record = [throws](const Bundle*, std::span<const SignedRequest>, std::span<Decision>) -> bool {
        if (throws) throw std::runtime_error("disk full");
        return false;
      };
      Pipeline p(o);
      p.setBundle(bundle1());
      auto rs = mixedRequests();
      SignedRequest forged = deployEu();
      forged.signature[1] ^= 1;
      rs.push_back(forged);
      auto d = decide(p, rs);
      REQUIRE(d.size() == 6);
      for (const Decision& x : d) {
        CHECK_FALSE(x.allow);
        CHECK(x.code == DenyCode::kLineageUnavailable);
      }
      CHECK(p.counters().recordFailures == 1);
    }
  }
}

TEST_CASE("pipeline: setBundle swaps between batches, and a batch keeps the bundle it started with") {
  PipelineOptions o = baseOptions();
  Pipeline p(o);
  p.setBundle(bundle1());
  CHECK(p.bundle() == bundle1());
  auto d = decide(p, {deployEu()});
  CHECK(d[0].allow);
  CHECK(d[0].reasons == std::vector<std::string>{"policy0"});
  p.setBundle(bundle2());
  CHECK(p.bundle() == bundle2());
  d = decide(p, {deployEu()});
  CHECK_FALSE(d[0].allow);
  CHECK(d[0].reasons == std::vector<std::string>{"policy1"});

  // Swapped while a batch runs: that batch still uses the bundle it fixed first.
  PipelineOptions o2 = baseOptions();
  std::atomic<Pipeline*> self{nullptr};
  std::atomic<bool> swapped{false};
  o2.beforeBatch = [&](size_t) {
    if (!swapped.exchange(true)) self.load()->setBundle(bundle2());
  };
  Pipeline q(o2);
  self = &q;
  q.setBundle(bundle1());
  d = decide(q, {deployEu()});
  CHECK(d[0].allow);  // bundle 1, though bundle 2 was active before it was answered
  CHECK(q.bundle() == bundle2());
  d = decide(q, {deployEu()});
  CHECK_FALSE(d[0].allow);
}

TEST_CASE("pipeline: no bundle -> NO_BUNDLE; a bundle past its deadline -> POLICY_STALE") {
  PipelineOptions o = baseOptions();
  Pipeline p(o);
  auto d = decide(p, {deployEu()});
  CHECK(d[0].code == DenyCode::kNoBundle);
  CHECK_FALSE(d[0].allow);
  p.setBundle(bundle1());
  CHECK(decide(p, {deployEu()})[0].allow);
  gNow = kStart + 3600 * kSecond;  // the deadline itself is no longer fresh
  d = decide(p, {deployEu()});
  CHECK(d[0].code == DenyCode::kPolicyStale);
  CHECK_FALSE(d[0].allow);
  gNow = kStart;
  p.setBundle(nullptr);
  CHECK(decide(p, {deployEu()})[0].code == DenyCode::kNoBundle);
}
