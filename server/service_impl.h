// Internals of DecisionService shared by its source files: service.cpp (lifecycle, bundles,
// control thread, metrics), authorizer_rpc.cpp (the Cap'n Proto Authorizer) and
// http_endpoints.cpp (/metrics, /healthz, /readyz). Not for use outside server/.
#pragma once

#include <semaphore.h>

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/async.h>
#include <kj/compat/http.h>

#include "engine/bundle_manager.h"
#include "engine/deny_code.h"
#include "engine/pipeline.h"
#include "server/govmesh.capnp.h"
#include "server/lineage_recorder.h"
#include "server/metrics.h"
#include "server/service.h"

namespace govmesh::server {

class ConsoleState;  // server/console_api.h
struct ConsoleLoop;  // server/console_api.h
/// Destroys a ConsoleLoop (console_api.cpp), so that LoopState can hold one as an incomplete type.
struct ConsoleLoopDeleter {
  void operator()(ConsoleLoop* loop) const;
};

/// Feeds pipeline events into ServiceMetrics and keeps the per-code totals status() reports.
class MetricsObserver final : public engine::PipelineObserver {
 public:
  MetricsObserver(ServiceMetrics& metrics, engine::PipelineObserver* next) : metrics_(metrics), next_(next) {}
  void onBatch(const engine::BatchStats& stats) override;
  void onRejected(engine::DenyCode code, size_t n) override;
  /// Allow decisions so far.
  uint64_t allowed() const { return allowed_.load(std::memory_order_relaxed); }
  /// Deny decisions so far with code `c` (kNone: denied by the policies).
  uint64_t denied(engine::DenyCode c) const { return denied_[static_cast<size_t>(c)].load(std::memory_order_relaxed); }

 private:
  ServiceMetrics& metrics_;
  engine::PipelineObserver* next_;
  std::atomic<uint64_t> allowed_{0};
  std::array<std::atomic<uint64_t>, std::size(engine::kAllDenyCodes)> denied_{};
};

/// One RPC connection: its stream, the two-party network (reading with wireReaderOptions) and
/// the RPC system serving the bootstrap Authorizer.
struct RpcConnection {
  RpcConnection(kj::Own<kj::AsyncIoStream> stream, capnp::Capability::Client bootstrap);
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

/// Everything the loop thread owns; created and destroyed on that thread, touched only there.
struct LoopState {
  explicit LoopState(kj::TaskSet::ErrorHandler& errors) : connections(errors), http(errors) {}
  // Declaration order is teardown order reversed: tasks die before what they reference.
  kj::Timer* timer = nullptr;
  size_t inflight = 0;                            // authorize/loadBundle calls not yet answered
  std::set<RpcConnection*> open;                  // the connections, for the drain's flush check
  kj::Own<kj::ConnectionReceiver> rpcListener;    // null once shutdown() stopped accepting
  kj::Maybe<kj::Promise<void>> acceptTask;
  kj::TaskSet connections;                        // one task per connection: until it disconnects
  kj::Own<kj::ConnectionReceiver> httpListener;
  kj::Own<kj::HttpHeaderTable> httpHeaders;
  kj::Own<kj::HttpService> httpService;
  kj::Own<kj::HttpServer> httpServer;
  kj::TaskSet http;
  std::unique_ptr<ConsoleLoop, ConsoleLoopDeleter> console;  // the console's listener (consoleListen only)
};

struct DecisionService::Impl : kj::TaskSet::ErrorHandler {
  explicit Impl(ServiceOptions o);

  ServiceOptions options;
  MetricsRegistry registry;
  ServiceMetrics metrics{registry};
  MetricsObserver observer;
  std::unique_ptr<LineageRecorder> lineage;  // null: lineage off; before the pipeline (its hook)
  std::unique_ptr<ConsoleState> console;     // null: no console; before the bundles (it notes each)
  std::unique_ptr<engine::BundleManager> bundles;
  std::unique_ptr<engine::Pipeline> pipeline;
  std::optional<engine::LoadOutcome> initialLoad;

  // Lifecycle, guarded by lifecycleMu.
  std::mutex lifecycleMu;
  bool started = false, stopped = false;
  std::atomic<bool> draining{false};  // shutdown() has begun: loadBundle answers "unavailable"

  // The loop thread.
  std::thread loopThread;
  kj::Own<const kj::Executor> executor;                        // the loop's, set before start() returns
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stopLoop;     // fulfilled by shutdown()
  LoopState* loop = nullptr;                                   // loop-thread-only state
  std::atomic<uint16_t> port{0}, metricsPort{0}, consolePort{0};

  // The control thread: bundle reloads and loadBundle offers, off the loop.
  std::thread controlThread;
  sem_t controlWake;
  std::atomic<bool> reloadRequested{false}, controlStop{false};
  std::mutex jobsMu;
  std::deque<std::function<void()>> jobs;

  /// BundleManager::offer plus the gauges; `source` names it in messages.
  engine::LoadOutcome offer(std::string_view bytes, std::string_view source);
  /// Runs `job` on the control thread.
  void post(std::function<void()> job);
  void runControl();
  void runLoop(std::promise<void>& ready);
  kj::Promise<void> acceptLoop(LoopState& st, capnp::Capability::Client bootstrap);
  /// Resolves once every call is answered and every reply written (or after ~5 s).
  kj::Promise<void> drainLoop(LoopState& st, int triesLeft);
  /// Updates the scrape-time gauges.
  void refreshGauges();
  /// /readyz: ready, and why not.
  std::pair<bool, std::string> readiness() const;

  // The RPC methods' bodies (authorizer_rpc.cpp), on the loop thread.
  kj::Promise<void> authorize(capnp::CallContext<wire::Authorizer::AuthorizeParams, wire::Authorizer::AuthorizeResults> context);
  void fillStatus(wire::Status::Builder s);
  kj::Promise<void> loadBundle(capnp::CallContext<wire::Authorizer::LoadBundleParams, wire::Authorizer::LoadBundleResults> context);

  void taskFailed(kj::Exception&& exception) override;
};

/// The bootstrap capability served to every connection (authorizer_rpc.cpp).
kj::Own<wire::Authorizer::Server> makeAuthorizerServer(DecisionService::Impl& impl);

/// The HTTP service of /metrics, /healthz, /readyz (http_endpoints.cpp); `impl` must outlive it.
kj::Own<kj::HttpService> makeHttpEndpoints(DecisionService::Impl& impl, const kj::HttpHeaderTable& headers);

}  // namespace govmesh::server
