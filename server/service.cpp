// DecisionService lifecycle: construction (pipeline, bundle manager, first load), the event-loop
// thread (listeners, connections, drain), the control thread (bundle loads off the loop) and the
// metrics observer. The RPC methods are in authorizer_rpc.cpp, the HTTP endpoints in
// http_endpoints.cpp.
#include "server/service.h"

#include <cerrno>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include <kj/debug.h>

#include "server/console_api.h"
#include "server/request_capnp.h"
#include "server/service_impl.h"

namespace govmesh::server {

using engine::DenyCode;

bool isLoopbackListenAddress(std::string_view listen) {
  std::string_view host = listen;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return false;
    host = host.substr(1, close - 1);
  } else if (host.find(':') != host.rfind(':')) {
    // Several colons without brackets: a bare IPv6 address (kj takes no port from it then).
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8: "127." followed by digits and dots only.
  if (host.substr(0, 4) != "127.") return false;
  for (char c : host.substr(4))
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
  return true;
}

// ---- MetricsObserver ---------------------------------------------------------------------------

void MetricsObserver::onBatch(const engine::BatchStats& stats) {
  metrics_.observeBatchSize(stats.size);
  metrics_.observeStageNs(Stage::kAdmit, stats.admitNs);
  metrics_.observeStageNs(Stage::kVerify, stats.verifyNs);
  metrics_.observeStageNs(Stage::kFeaturize, stats.featurizeNs);
  metrics_.observeStageNs(Stage::kEvaluate, stats.evaluateNs);
  metrics_.observeStageNs(Stage::kRecord, stats.recordNs);
  metrics_.observeStageNs(Stage::kReply, stats.replyNs);
  if (stats.sha256FellBack) metrics_.countSha256Fallback();
  if (stats.ed25519FellBack) metrics_.countEd25519Fallback();
  if (stats.evaluateFellBack) metrics_.countEvaluateFallback();
  if (stats.allowed) {
    metrics_.countDecision(true, DenyCode::kNone, stats.allowed);
    allowed_.fetch_add(stats.allowed, std::memory_order_relaxed);
  }
  for (size_t c = 0; c < stats.denied.size(); ++c) {
    if (!stats.denied[c]) continue;
    metrics_.countDecision(false, static_cast<DenyCode>(c), stats.denied[c]);
    denied_[c].fetch_add(stats.denied[c], std::memory_order_relaxed);
  }
  if (next_) next_->onBatch(stats);
}

void MetricsObserver::onRejected(DenyCode code, size_t n) {
  metrics_.countDecision(false, code, n);
  const size_t c = static_cast<size_t>(code);
  if (c < denied_.size()) denied_[c].fetch_add(n, std::memory_order_relaxed);
  if (next_) next_->onRejected(code, n);
}

// ---- Impl --------------------------------------------------------------------------------------

namespace {

engine::PipelineOptions pipelineOptions(const ServiceOptions& o, engine::PipelineObserver* observer,
                                        LineageRecorder* lineage) {
  engine::PipelineOptions p = o.pipeline;
  p.observer = observer;
  p.admission.acceptUnsigned = o.allowUnsigned;
  p.admission.syncLease = o.syncLease;
  // With lineage on, the recorder is the record stage (a record hook given in o.pipeline is
  // replaced: there is one record of each decision).
  if (lineage) {
    p.record = [lineage](const engine::Bundle* bundle, std::span<const engine::SignedRequest> requests,
                         std::span<engine::Decision> decisions) { return lineage->record(bundle, requests, decisions); };
  }
  return p;
}

// The recorder for o.lineageDir, or null when lineage is off.
std::unique_ptr<LineageRecorder> makeLineage(const ServiceOptions& o) {
  if (!o.lineageDir) return nullptr;
  if (!o.nodeKeyPem) throw std::invalid_argument("lineage: a lineage directory needs the node key that signs its checkpoints");
  LineageRecorderOptions lo;
  lo.dir = *o.lineageDir;
  lo.nodeId = o.nodeId;
  lo.origin = o.lineageOrigin;
  if (lo.origin.empty())
    lo.origin = "govmesh/lineage/" + (lineage::validKeyName(o.nodeId) ? o.nodeId : std::string("node"));
  lo.nodeKeyPem = *o.nodeKeyPem;
  lo.checkpointEvery = o.checkpointEvery;
  lo.checkpointIntervalMs = o.checkpointIntervalMs;
  lo.sync = o.lineageSync;
  lo.hooks = o.lineageIoHooks;
  return std::make_unique<LineageRecorder>(std::move(lo));
}

// The bundle manager's clock in Unix ms, from the admission clock when one is injected, so that
// /readyz, status() and admission's POLICY_STALE agree.
engine::BundleManager::Clock managerClock(const engine::ClockNs& clockNs) {
  if (!clockNs) return {};
  return [clockNs] {
    const int64_t ns = clockNs();
    return ns / 1'000'000 - (ns % 1'000'000 < 0 ? 1 : 0);  // floor, as admission does
  };
}

ServiceOptions checked(ServiceOptions o) {
  if (o.allowUnsigned && !isLoopbackListenAddress(o.listen))
    throw std::invalid_argument("allow-unsigned is a benchmarking mode for loopback listeners only; listen address '" +
                                o.listen + "' is not loopback");
  return o;
}

}  // namespace

DecisionService::Impl::Impl(ServiceOptions o)
    : options(checked(std::move(o))), observer(metrics, options.pipeline.observer) {
  // The console first: its token check refuses a bad configuration before anything starts, and
  // it must see the first bundle activate.
  if (options.consoleListen) console = std::make_unique<ConsoleState>(*options.consoleListen, options.consoleToken);
  lineage = makeLineage(options);
  pipeline = std::make_unique<engine::Pipeline>(pipelineOptions(options, &observer, lineage.get()));
  bundles = std::make_unique<engine::BundleManager>(options.trusted, managerClock(options.pipeline.admission.clock));
  bundles->setSyncLease(options.syncLease);
  bundles->onChange([this](const std::shared_ptr<const engine::ActiveBundle>& active) {
    // The recorder learns the digest first, so that the first batch under it can name it.
    if (lineage) lineage->noteBundle(active);
    if (console) console->noteBundle(active);
    // The pipeline takes a Bundle; the aliasing pointer keeps the ActiveBundle alive with it.
    pipeline->setBundle(std::shared_ptr<const engine::Bundle>(active, &active->bundle));
    metrics.bundleRevision().set(static_cast<double>(active->bundle.revision));
  });
  if (options.bundlePath) initialLoad = bundles->loadFile(*options.bundlePath);
  sem_init(&controlWake, 0, 0);
  controlThread = std::thread([this] { runControl(); });
}

engine::LoadOutcome DecisionService::Impl::offer(std::string_view bytes, std::string_view source) {
  return bundles->offer(bytes, source);
}

void DecisionService::Impl::post(std::function<void()> job) {
  {
    std::lock_guard lock(jobsMu);
    if (!controlStop.load()) {
      jobs.push_back(std::move(job));
      sem_post(&controlWake);
      return;
    }
  }
  job();  // the control thread is gone (shutdown): the job sees `draining` and answers at once
}

void DecisionService::Impl::runControl() {
  for (;;) {
    while (sem_wait(&controlWake) != 0 && errno == EINTR) {
    }
    if (reloadRequested.exchange(false) && options.bundlePath && !draining.load()) {
      engine::LoadOutcome out = bundles->loadFile(*options.bundlePath);
      if (options.onReload) {
        try {
          options.onReload(out);
        } catch (...) {
          // A logging hook's failure must not take bundle reloads down with it.
        }
      }
    }
    std::deque<std::function<void()>> todo;
    bool stop = false;
    {
      std::lock_guard lock(jobsMu);
      todo.swap(jobs);
      stop = controlStop.load();
    }
    for (auto& job : todo) job();
    if (stop) return;  // post() now runs jobs inline; none can be left behind
  }
}

void DecisionService::Impl::refreshGauges() {
  metrics.queueDepth().set(static_cast<double>(pipeline->queueDepth()));
  metrics.bundleRevision().set(static_cast<double>(bundles->revision()));
  const auto left = bundles->secondsToDeadline(bundles->nowMs());
  metrics.secondsUntilDeadline().set(left ? *left : std::numeric_limits<double>::quiet_NaN());
  metrics.nonceCacheEntries().set(static_cast<double>(pipeline->admission().nonces().size()));
}

std::pair<bool, std::string> DecisionService::Impl::readiness() const {
  if (draining.load()) return {false, "not ready: shutting down"};
  if (lineage && !lineage->healthy())
    return {false, "not ready: decisions cannot be recorded (LINEAGE_UNAVAILABLE): " + lineage->lastError()};
  switch (bundles->state()) {
    case engine::BundleState::kFresh:
      return {true, "ready: bundle revision " + std::to_string(bundles->revision())};
    case engine::BundleState::kStale: {
      const int64_t now = bundles->nowMs();
      const bool pastDeadline = bundles->secondsToDeadline(now).value_or(0.0) <= 0.0;
      if (!pastDeadline && options.syncLease && !options.syncLease->valid(now))
        return {false, "not ready: bundle revision " + std::to_string(bundles->revision()) +
                           " is no longer confirmed current by etcd (sync lease lapsed; POLICY_STALE)" +
                           (options.syncStaleReason ? ": " + options.syncStaleReason() : std::string())};
      return {false, "not ready: bundle revision " + std::to_string(bundles->revision()) +
                         " is past its freshness deadline (POLICY_STALE)"};
    }
    case engine::BundleState::kNoBundle:
      break;
  }
  std::string why = "not ready: no verified bundle (NO_BUNDLE)";
  if (initialLoad && !initialLoad->accepted) why += ": " + initialLoad->message;
  return {false, why};
}

void DecisionService::Impl::taskFailed(kj::Exception&& exception) {
  // A connection that broke or an accept that failed: that client's problem, not the node's.
  // The library never prints; the connection is simply gone.
  (void)exception;
}

RpcConnection::RpcConnection(kj::Own<kj::AsyncIoStream> s, capnp::Capability::Client bootstrap)
    : stream(kj::mv(s)),
      network(*stream, capnp::rpc::twoparty::Side::SERVER, wireReaderOptions()),
      rpc(capnp::makeRpcServer(network, kj::mv(bootstrap))) {}

kj::Promise<void> DecisionService::Impl::acceptLoop(LoopState& st, capnp::Capability::Client bootstrap) {
  return st.rpcListener->accept().then([this, &st, bootstrap](kj::Own<kj::AsyncIoStream>&& s) mutable {
    auto conn = kj::heap<RpcConnection>(kj::mv(s), bootstrap);
    RpcConnection* c = conn.get();
    st.open.insert(c);
    st.connections.add(c->network.onDisconnect().attach(kj::defer([&st, c] { st.open.erase(c); }), kj::mv(conn)));
    return acceptLoop(st, kj::mv(bootstrap));
  });
}

kj::Promise<void> DecisionService::Impl::drainLoop(LoopState& st, int triesLeft) {
  bool flushed = st.inflight == 0;
  for (RpcConnection* c : st.open)
    if (c->network.getCurrentQueueCount() != 0) flushed = false;
  if (flushed || triesLeft <= 0) return kj::READY_NOW;
  return st.timer->afterDelay(1 * kj::MILLISECONDS).then([this, &st, triesLeft] { return drainLoop(st, triesLeft - 1); });
}

void DecisionService::Impl::runLoop(std::promise<void>& ready) {
  bool signalled = false;
  std::string where = options.listen;
  try {
    kj::AsyncIoContext io = kj::setupAsyncIo();
    LoopState st(*this);
    st.timer = &io.provider->getTimer();
    kj::Network& network = io.provider->getNetwork();
    st.rpcListener = network.parseAddress(options.listen).wait(io.waitScope)->listen();
    port = static_cast<uint16_t>(st.rpcListener->getPort());
    if (options.metricsListen) {
      where = *options.metricsListen;
      st.httpListener = network.parseAddress(*options.metricsListen).wait(io.waitScope)->listen();
      metricsPort = static_cast<uint16_t>(st.httpListener->getPort());
      st.httpHeaders = kj::heap<kj::HttpHeaderTable>();
      st.httpService = makeHttpEndpoints(*this, *st.httpHeaders);
      st.httpServer = kj::heap<kj::HttpServer>(io.provider->getTimer(), *st.httpHeaders, *st.httpService);
      st.http.add(st.httpServer->listenHttp(*st.httpListener));
    }
    if (options.consoleListen) {
      where = *options.consoleListen;
      st.console = listenConsole(*this, network, io.provider->getTimer(), io.waitScope);
      consolePort = consoleLoopPort(*st.console);
    }
    capnp::Capability::Client bootstrap = wire::Authorizer::Client(makeAuthorizerServer(*this));
    st.acceptTask = acceptLoop(st, bootstrap).eagerlyEvaluate([this](kj::Exception&& e) { taskFailed(kj::mv(e)); });
    auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
    stopLoop = kj::mv(stop.fulfiller);
    executor = kj::getCurrentThreadExecutor().addRef();
    loop = &st;
    signalled = true;
    ready.set_value();
    stop.promise.wait(io.waitScope);
    loop = nullptr;
  } catch (const kj::Exception& e) {
    if (!signalled)
      ready.set_exception(std::make_exception_ptr(
          std::runtime_error("cannot listen on " + where + ": " + std::string(e.getDescription().cStr()))));
  } catch (const std::exception& e) {
    if (!signalled) ready.set_exception(std::make_exception_ptr(std::runtime_error("cannot listen on " + where + ": " + e.what())));
  }
  loop = nullptr;
}

// ---- DecisionService ---------------------------------------------------------------------------

DecisionService::DecisionService(ServiceOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

DecisionService::~DecisionService() {
  shutdown();
  sem_destroy(&impl_->controlWake);
}

void DecisionService::start() {
  std::lock_guard lock(impl_->lifecycleMu);
  if (impl_->started || impl_->stopped) throw std::logic_error("DecisionService::start: already started or shut down");
  std::promise<void> ready;
  auto readyFuture = ready.get_future();
  impl_->loopThread = std::thread([this, &ready] { impl_->runLoop(ready); });
  try {
    readyFuture.get();
  } catch (...) {
    impl_->loopThread.join();
    throw;
  }
  impl_->started = true;
}

uint16_t DecisionService::port() const { return impl_->port.load(); }
uint16_t DecisionService::metricsPort() const { return impl_->metricsPort.load(); }
uint16_t DecisionService::consolePort() const { return impl_->consolePort.load(); }

void DecisionService::requestReload() {
  impl_->reloadRequested.store(true);
  sem_post(&impl_->controlWake);  // async-signal-safe (POSIX)
}

engine::LoadOutcome DecisionService::offerBundle(std::string_view bytes) { return impl_->offer(bytes, "offerBundle"); }

engine::LoadOutcome DecisionService::offerBundle(std::string_view bytes, std::string_view source, std::optional<uint64_t> etcdRevision) {
  return impl_->bundles->offer(bytes, source, etcdRevision);
}

void DecisionService::shutdown() {
  Impl& m = *impl_;
  std::lock_guard lock(m.lifecycleMu);
  if (m.stopped) return;
  m.stopped = true;
  m.draining = true;
  // 1. Stop accepting: the listening socket closes, new connections are refused.
  if (m.started) {
    m.executor->executeSync([&m] {
      m.loop->acceptTask = nullptr;
      m.loop->rpcListener = nullptr;
      if (m.loop->console) stopConsoleAccepting(*m.loop->console);
    });
  }
  // 1b. The console's worker finishes its job (queued ones are answered 503) before the lineage
  // log it reads is closed.
  if (m.console) m.console->stop();
  // 2. Answer everything queued or in flight; calls arriving meanwhile get SHUTTING_DOWN.
  m.pipeline->shutdown();
  // 2b. Nothing is decided any more: close the lineage log (its final signed checkpoint).
  if (m.lineage) (void)m.lineage->close();
  // 3. The control thread finishes its queued loads (answered "unavailable") and exits.
  {
    std::lock_guard jobsLock(m.jobsMu);
    m.controlStop = true;
  }
  sem_post(&m.controlWake);
  if (m.controlThread.joinable()) m.controlThread.join();
  // 4. Let the loop write the last replies, then stop it.
  if (m.started) {
    m.executor->executeSync([&m] { return m.drainLoop(*m.loop, 5000); });
    m.stopLoop->fulfill();
    m.loopThread.join();
    m.stopLoop = nullptr;
    m.executor = nullptr;
  }
}

const std::optional<engine::LoadOutcome>& DecisionService::initialLoad() const { return impl_->initialLoad; }
const engine::BundleManager& DecisionService::bundles() const { return *impl_->bundles; }
const engine::Pipeline& DecisionService::pipeline() const { return *impl_->pipeline; }

std::optional<std::string> DecisionService::lineageError() const {
  if (!impl_->lineage || impl_->lineage->healthy()) return std::nullopt;
  return impl_->lineage->lastError();
}

uint64_t DecisionService::lineageSize() const { return impl_->lineage ? impl_->lineage->size() : 0; }

std::string DecisionService::metricsText() {
  impl_->refreshGauges();
  return impl_->registry.renderPrometheusText();
}

}  // namespace govmesh::server
