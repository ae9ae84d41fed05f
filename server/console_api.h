// The governance console (issue 9): a single-page web console and its JSON API, served by the
// decision service on its own kj-http listener (ServiceOptions::consoleListen). The API and its
// security model are documented in docs/console.md; the page's files are compiled into the
// binary (server/console_assets.h).
//
// Threads. The listener, the HTTP parsing and the per-second sampling run on the service's event
// loop, which must never wait long: it also serves the decision RPCs. Everything that reads the
// lineage log or evaluates policies (status, lineage search, record detail, proofs, what-if)
// runs on the console's own worker thread, one job at a time, and answers the loop through a
// kj cross-thread promise, as authorize() does with the pipeline. One thread is enough: the
// console is an operator's tool, and a single worker bounds what it can take from the node
// (a search examines at most kMaxScanRecords records per call). Admin reload is a flag for the
// control thread (as SIGHUP), so it needs no worker.
//
// Lifetime. ConsoleState lives in DecisionService::Impl (created with the service when a
// console address is configured, so that it sees the first bundle activate); ConsoleLoop lives
// in the loop thread's LoopState. shutdown() stops accepting console connections together with
// the RPC listener, then stops the worker (queued jobs are answered 503) before the lineage log
// closes, so no console job ever touches a closed log.
//
// Not for use outside server/.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <kj/async-io.h>
#include <kj/compat/http.h>

#include "server/console_series.h"
#include "server/console_views.h"
#include "server/service_impl.h"

namespace govmesh::server {

/// What the console keeps for the service's whole life (see the top of this file).
class ConsoleState {
 public:
  /// Bundles kept for record detail (the policy texts of the bundle that decided): the last 16
  /// activated. Older records show their bundle as unknown.
  static constexpr size_t kKeptBundles = 16;

  /// `listen`: the console address; `token`: the bearer token (empty: none). Throws
  /// std::invalid_argument when `listen` is not loopback and there is no token. Starts the worker.
  ConsoleState(std::string listen, std::string token);
  /// Calls stop().
  ~ConsoleState();
  ConsoleState(const ConsoleState&) = delete;
  ConsoleState& operator=(const ConsoleState&) = delete;

  /// Remembers a bundle that became active (BundleManager::onChange; any thread).
  void noteBundle(const std::shared_ptr<const engine::ActiveBundle>& active);
  /// The view (policy texts) of the kept bundle whose raw digest is `digest`; null when not kept.
  /// Texts are cut on first use, on the calling thread (the worker).
  std::shared_ptr<const BundleView> bundleView(const std::string& digest);
  /// The view of `active` (kept or not); null for null.
  std::shared_ptr<const BundleView> viewOf(const std::shared_ptr<const engine::ActiveBundle>& active);

  /// The per-second decision counts.
  ConsoleSeries& series() { return series_; }

  /// Queues `job` for the worker thread; it is called with cancelled = false there, or with
  /// cancelled = true by stop() when the worker stops first. Returns false (job not taken) once
  /// stop() has run.
  bool post(std::function<void(bool cancelled)> job);
  /// Stops the worker: the running job finishes, queued ones are called cancelled. Idempotent;
  /// not from the worker itself.
  void stop();

  /// The bearer token (empty: none configured).
  const std::string& token() const { return token_; }
  /// True when the listener is loopback: reads need no token then (admin always does).
  bool loopback() const { return loopback_; }

 private:
  void run();

  std::string token_;
  bool loopback_;
  ConsoleSeries series_;

  std::mutex bundlesMu_;
  struct Kept {
    std::shared_ptr<const engine::ActiveBundle> active;
    std::shared_ptr<const BundleView> view;  // null until first asked for
  };
  std::deque<Kept> bundles_;  // oldest first, at most kKeptBundles

  std::mutex jobsMu_;
  std::condition_variable wake_;
  std::deque<std::function<void(bool)>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

/// True when `given` equals `expected`, in time that depends only on their lengths (no early exit
/// on the first differing byte: the token must not leak through response timing).
bool constantTimeEquals(std::string_view given, std::string_view expected);

/// The console's loop-thread side: its listener, HTTP server and sampling timer.
struct ConsoleLoop;

/// Binds impl.options.consoleListen on the loop thread and starts serving the console and
/// sampling the series once a second. Throws kj::Exception when the address cannot be bound.
std::unique_ptr<ConsoleLoop, ConsoleLoopDeleter> listenConsole(DecisionService::Impl& impl, kj::Network& network,
                                                              kj::Timer& timer, kj::WaitScope& waitScope);
/// The bound port.
uint16_t consoleLoopPort(const ConsoleLoop& loop);
/// Closes the listener: new console connections are refused (open ones are served until the
/// loop stops).
void stopConsoleAccepting(ConsoleLoop& loop);

}  // namespace govmesh::server
