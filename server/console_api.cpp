// The console's HTTP side (see console_api.h): routing, authentication, security headers, the
// worker thread, the per-second sampling timer and the status view.
// GCC 12 reports -Wmaybe-uninitialized inside kj's ExceptionOr<T> for cross-thread promise types
// (a known false positive of kj::Maybe's union), as in authorizer_rpc.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "server/console_api.h"

#include <chrono>
#include <map>
#include <stdexcept>
#include <utility>

#include <kj/compat/url.h>
#include <kj/debug.h>

#include "engine/wall_clock.h"
#include "server/console_assets.h"

namespace govmesh::server {

using nlohmann::json;

// ---- ConsoleState ------------------------------------------------------------------------------

ConsoleState::ConsoleState(std::string listen, std::string token)
    : token_(std::move(token)), loopback_(isLoopbackListenAddress(listen)) {
  if (!loopback_ && token_.empty())
    throw std::invalid_argument("console: listen address '" + listen +
                                "' is not loopback; a console reachable from the network needs a token (--console-token-file)");
  worker_ = std::thread([this] { run(); });
}

ConsoleState::~ConsoleState() { stop(); }

void ConsoleState::noteBundle(const std::shared_ptr<const engine::ActiveBundle>& active) {
  if (!active) return;
  std::lock_guard lock(bundlesMu_);
  for (const Kept& k : bundles_)
    if (k.active->digest == active->digest) return;
  if (bundles_.size() == kKeptBundles) bundles_.pop_front();
  bundles_.push_back({active, nullptr});
}

std::shared_ptr<const BundleView> ConsoleState::bundleView(const std::string& digest) {
  std::shared_ptr<const engine::ActiveBundle> active;
  {
    std::lock_guard lock(bundlesMu_);
    for (const Kept& k : bundles_) {
      if (k.active->digest != digest) continue;
      if (k.view) return k.view;
      active = k.active;
    }
  }
  if (!active) return nullptr;
  // Cut outside the lock (a large policy set takes a while); the only cutter is the worker.
  auto view = std::make_shared<BundleView>();
  view->active = active;
  view->policies = policySources(active->bundle);
  std::lock_guard lock(bundlesMu_);
  for (Kept& k : bundles_)
    if (k.active == active) k.view = view;
  return view;
}

std::shared_ptr<const BundleView> ConsoleState::viewOf(const std::shared_ptr<const engine::ActiveBundle>& active) {
  if (!active) return nullptr;
  if (auto v = bundleView(active->digest)) return v;
  // Activated while a newer swap overtook its notification: not kept, cut for this use only.
  auto view = std::make_shared<BundleView>();
  view->active = active;
  view->policies = policySources(active->bundle);
  return view;
}

bool ConsoleState::post(std::function<void(bool)> job) {
  {
    std::lock_guard lock(jobsMu_);
    if (stopping_) return false;
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void ConsoleState::run() {
  std::unique_lock lock(jobsMu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;  // stop() answers what is left
    std::function<void(bool)> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job(false);
    lock.lock();
  }
}

void ConsoleState::stop() {
  {
    std::lock_guard lock(jobsMu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
  std::deque<std::function<void(bool)>> left;
  {
    std::lock_guard lock(jobsMu_);
    left.swap(jobs_);
  }
  for (auto& job : left) job(true);
}

bool constantTimeEquals(std::string_view given, std::string_view expected) {
  // Every byte of `given` is compared against `expected` (wrapping), and the length difference is
  // folded in, so the time depends on the lengths alone.
  unsigned diff = given.size() == expected.size() ? 0u : 1u;
  if (expected.empty()) return false;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(expected[i % expected.size()]);
  return diff == 0;
}

// ---- Views computed here -----------------------------------------------------------------------

namespace {

constexpr const char* kCsp =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
// A what-if body: a request and its context (the context's canonical form is at most 64 KiB).
constexpr uint64_t kMaxBodyBytes = uint64_t{1} << 20;

DecisionTotals totalsOf(const MetricsObserver& o) {
  DecisionTotals t;
  t.allowed = o.allowed();
  for (engine::DenyCode c : engine::kAllDenyCodes) t.denied[static_cast<size_t>(c)] = o.denied(c);
  return t;
}

// The mesh sync's state (issue 8), or null on a standalone node.
json meshJson(const ServiceOptions& o) {
  if (!o.meshStatusJson) return nullptr;
  json j = json::parse(o.meshStatusJson(), nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

ApiReply statusView(DecisionService::Impl& impl) {
  const int64_t now = impl.bundles->nowMs();
  const auto current = impl.bundles->current();
  std::string state;
  if (impl.lineage && !impl.lineage->healthy()) {
    state = "lineage_unavailable";
  } else {
    switch (impl.bundles->state(now)) {
      case engine::BundleState::kFresh: state = "serving"; break;
      case engine::BundleState::kStale: state = "stale"; break;
      case engine::BundleState::kNoBundle: state = "no_bundle"; break;
    }
  }
  json bundle = nullptr;
  if (current) {
    const engine::Bundle& b = current->bundle;
    bundle = json{{"revision", b.revision},
                  {"digest", current->digestHex},
                  {"issued_at_ms", b.issuedAtMs},
                  {"fresh_until_ms", b.freshUntilMs},
                  {"seconds_left", impl.bundles->secondsToDeadline(now).value_or(0.0)},
                  {"source", current->source},
                  {"loaded_at_ms", current->loadedAtMs},
                  {"policy_count", b.table.policies.size()},
                  {"etcd_revision", current->etcdRevision ? json(*current->etcdRevision) : json(nullptr)}};
  }
  json lineage{{"enabled", impl.options.lineageDir.has_value()}, {"size", 0}, {"latest_checkpoint_size", 0}};
  if (impl.lineage && impl.lineage->log()) {
    lineage["size"] = impl.lineage->size();
    if (auto cp = impl.lineage->log()->latestCheckpoint()) lineage["latest_checkpoint_size"] = cp->checkpoint.size;
  }
  const DecisionTotals t = totalsOf(impl.observer);
  json byCode = json::object();
  for (engine::DenyCode c : engine::kAllDenyCodes) byCode[std::string(engine::denyCodeName(c))] = t.denied[static_cast<size_t>(c)];
  ApiReply out;
  out.body = json{{"node_id", impl.options.nodeId},
                  {"backend", impl.pipeline->backendName()},
                  {"state", state},
                  {"state_reason", impl.readiness().second},
                  {"now_ms", now},
                  {"bundle", std::move(bundle)},
                  {"mesh", meshJson(impl.options)},
                  {"queue_depth", impl.pipeline->queueDepth()},
                  {"lineage", std::move(lineage)},
                  {"totals", json{{"allow", t.allowed}, {"deny", t.deniedTotal()}, {"deny_by_code", std::move(byCode)}}}};
  return out;
}

ApiReply seriesView(const ConsoleSeries& series) {
  json points = json::array();
  for (const SeriesPoint& p : series.points()) {
    json byCode = json::object();  // only the codes seen in that second, to keep 600 points small
    for (engine::DenyCode c : engine::kAllDenyCodes)
      if (p.denied[static_cast<size_t>(c)]) byCode[std::string(engine::denyCodeName(c))] = p.denied[static_cast<size_t>(c)];
    points.push_back(json{{"t_ms", p.tMs}, {"allow", p.allowed}, {"deny", p.deniedTotal()}, {"deny_by_code", std::move(byCode)}});
  }
  ApiReply out;
  out.body = json{{"interval_ms", 1000}, {"points", std::move(points)}};
  return out;
}

// The lineage log for a view, or the reply that says why there is none.
lineage::Log* logFor(DecisionService::Impl& impl, ApiReply& err) {
  if (!impl.lineage) {
    err = ApiReply::error(404, "lineage is not enabled on this node (govmesh serve --lineage DIR)");
    return nullptr;
  }
  lineage::Log* log = impl.lineage->log();
  if (!log) err = ApiReply::error(503, "the lineage log is not open: " + impl.lineage->lastError());
  return log;
}

// "/api/v1/lineage/123" -> 123; nullopt when the segment is not a positive decimal.
std::optional<uint64_t> seqOf(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (v == 0) return std::nullopt;
  return v;
}

// True when the Host header names this machine's loopback (127.0.0.0/8, ::1, localhost), with
// or without a port: the DNS-rebinding guard of a token-less loopback console (docs/console.md).
bool loopbackHost(std::string_view host) {
  if (host.empty()) return false;
  std::string withPort(host);
  if (withPort.front() != '[' && withPort.find(':') == std::string::npos) withPort += ":0";
  return isLoopbackListenAddress(withPort);
}

// ---- The HTTP service --------------------------------------------------------------------------

struct HeaderIds {
  kj::HttpHeaderId authorization, csp, nosniff, cacheControl, referrerPolicy, wwwAuthenticate;
};

class ConsoleHttp final : public kj::HttpService {
 public:
  ConsoleHttp(DecisionService::Impl& impl, ConsoleState& state, const kj::HttpHeaderTable& table, HeaderIds ids)
      : impl_(impl), state_(state), table_(table), ids_(ids) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                            kj::AsyncInputStream& requestBody, Response& response) override {
    std::string_view target(url.cStr(), url.size());
    std::string_view path = target.substr(0, target.find('?'));
    if (path.substr(0, 5) == "/api/" || path == "/api") return api(method, target, path, headers, requestBody, response);
    if (method != kj::HttpMethod::GET && method != kj::HttpMethod::HEAD)
      return sendText(response, 405, "Method Not Allowed", "only GET is served here\n");
    const ConsoleAsset* asset = findConsoleAsset(path == "/" ? std::string_view("/index.html") : path);
    if (!asset) return sendText(response, 404, "Not Found", "not found\n");
    kj::HttpHeaders h(table_);
    securityHeaders(h);
    h.set(ids_.cacheControl, "no-cache");
    h.set(kj::HttpHeaderId::CONTENT_TYPE, kj::heapString(asset->contentType.data(), asset->contentType.size()));
    return sendBody(response, 200, "OK", h, std::string(asset->body));
  }

 private:
  kj::Promise<void> api(kj::HttpMethod method, std::string_view target, std::string_view path, const kj::HttpHeaders& headers,
                        kj::AsyncInputStream& body, Response& response) {
    const bool post = method == kj::HttpMethod::POST;
    const std::string bearer = bearerToken(headers);
    // A loopback console without a token is protected by the browser's same-origin rule only;
    // a page on another origin can reach it through DNS rebinding unless the Host is checked.
    if (state_.loopback()) {
      KJ_IF_MAYBE(host, headers.get(kj::HttpHeaderId::HOST)) {
        if (!loopbackHost(std::string_view(host->cStr(), host->size())))
          return sendJson(response, ApiReply::error(403, "Host: '" + std::string(host->cStr()) +
                                                             "' is not a loopback address; open the console at http://127.0.0.1:PORT/"));
      } else {
        return sendJson(response, ApiReply::error(403, "Host: missing"));
      }
    }
    if (path.substr(0, 14) == "/api/v1/admin/") {
      if (state_.token().empty())
        return sendJson(response, ApiReply::error(403, "admin actions need a console token, and this node has none (--console-token-file)"));
      if (bearer.empty() || !constantTimeEquals(bearer, state_.token()))
        return sendJson(response, ApiReply::error(403, "Authorization: admin actions need 'Bearer <console token>'"));
      if (!post) return sendJson(response, ApiReply::error(405, "method: admin actions are POST"));
      if (path == "/api/v1/admin/reload") {
        // As SIGHUP: the control thread re-reads the bundle file (async-signal-safe flag).
        impl_.reloadRequested.store(true);
        sem_post(&impl_.controlWake);
        ApiReply r;
        r.status = 202;
        r.body = json{{"requested", true},
                      {"bundle_path", impl_.options.bundlePath ? json(*impl_.options.bundlePath) : json(nullptr)}};
        return sendJson(response, r);
      }
      return sendJson(response, ApiReply::error(404, "no admin action " + std::string(path)));
    }
    if (!state_.loopback() && !state_.token().empty() && (bearer.empty() || !constantTimeEquals(bearer, state_.token())))
      return sendJson(response, ApiReply::error(401, "Authorization: this console needs 'Bearer <console token>'"));

    if (path == "/api/v1/whatif") {
      if (!post) return sendJson(response, ApiReply::error(405, "method: /api/v1/whatif is POST"));
      return body.readAllText(kMaxBodyBytes)
          .then(
              [this, &response](kj::String text) {
                auto input = std::make_shared<std::string>(text.cStr(), text.size());
                return offload(response, [this, input] {
                  return whatIf(state_.viewOf(impl_.bundles->current()).get(), *input);
                });
              },
              [this, &response](kj::Exception&&) {
                return sendJson(response, ApiReply::error(413, "request body: larger than 1 MiB or unreadable"));
              });
    }
    if (method != kj::HttpMethod::GET) return sendJson(response, ApiReply::error(405, "method: " + std::string(path) + " is GET"));
    if (path == "/api/v1/status") return offload(response, [this] { return statusView(impl_); });
    if (path == "/api/v1/series") return sendJson(response, seriesView(state_.series()));
    if (path == "/api/v1/lineage") {
      std::map<std::string, std::string> params;
      try {
        kj::Url u = kj::Url::parse(kj::str("http://console", kj::StringPtr(target.data(), target.size())));
        for (const auto& p : u.query) params[std::string(p.name.cStr())] = std::string(p.value.cStr(), p.value.size());
      } catch (const kj::Exception&) {
        return sendJson(response, ApiReply::error(400, "query: not a valid URL query string"));
      }
      std::string why;
      std::optional<LineageQuery> q = parseLineageQuery(params, &why);
      if (!q) return sendJson(response, ApiReply::error(400, why));
      return offload(response, [this, q = *q] {
        ApiReply err;
        lineage::Log* log = logFor(impl_, err);
        return log ? searchLineage(*log, q) : err;
      });
    }
    constexpr std::string_view kRecord = "/api/v1/lineage/";
    if (path.substr(0, kRecord.size()) == kRecord) {
      std::string_view rest = path.substr(kRecord.size());
      const bool proof = rest.size() > 6 && rest.substr(rest.size() - 6) == "/proof";
      if (proof) rest.remove_suffix(6);
      std::optional<uint64_t> seq = seqOf(rest);
      if (!seq) return sendJson(response, ApiReply::error(400, "seq: '" + std::string(rest) + "' is not a record number (1, 2, ...)"));
      return offload(response, [this, s = *seq, proof] {
        ApiReply err;
        lineage::Log* log = logFor(impl_, err);
        if (!log) return err;
        if (proof) return recordProof(*log, s, impl_.lineage->verifier());
        return recordDetail(*log, s, [this](const std::string& digest) { return state_.bundleView(digest); });
      });
    }
    return sendJson(response, ApiReply::error(404, "no such API: " + std::string(path)));
  }

  // Runs `work` on the console's worker thread and answers with its reply on the loop.
  kj::Promise<void> offload(Response& response, std::function<ApiReply()> work) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<ApiReply>();
    // std::function must be copyable; the fulfiller is not, so it is shared.
    auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<ApiReply>>>(kj::mv(paf.fulfiller));
    const bool posted = state_.post([fulfiller, work = std::move(work)](bool cancelled) {
      ApiReply r;
      if (cancelled) {
        r = ApiReply::error(503, "the node is shutting down");
      } else {
        try {
          r = work();
        } catch (const std::exception& e) {
          r = ApiReply::error(500, std::string("console: ") + e.what());
        }
      }
      (*fulfiller)->fulfill(kj::mv(r));
    });
    if (!posted) return sendJson(response, ApiReply::error(503, "the node is shutting down"));
    return paf.promise.then([this, &response](ApiReply&& r) { return sendJson(response, r); });
  }

  std::string bearerToken(const kj::HttpHeaders& headers) const {
    KJ_IF_MAYBE(v, headers.get(ids_.authorization)) {
      std::string_view s(v->cStr(), v->size());
      if (s.substr(0, 7) == "Bearer ") return std::string(s.substr(7));
    }
    return {};
  }

  void securityHeaders(kj::HttpHeaders& h) const {
    h.set(ids_.csp, kCsp);
    h.set(ids_.nosniff, "nosniff");
    h.set(ids_.referrerPolicy, "no-referrer");
  }

  kj::Promise<void> sendJson(Response& response, const ApiReply& r) {
    kj::HttpHeaders h(table_);
    securityHeaders(h);
    h.set(ids_.cacheControl, "no-store");
    h.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json; charset=utf-8");
    if (r.status == 401) h.set(ids_.wwwAuthenticate, "Bearer");
    return sendBody(response, r.status, statusText(r.status), h, dumpJson(r.body) + "\n");
  }

  kj::Promise<void> sendText(Response& response, unsigned status, kj::StringPtr text, std::string body) {
    kj::HttpHeaders h(table_);
    securityHeaders(h);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, "text/plain; charset=utf-8");
    return sendBody(response, status, text, h, std::move(body));
  }

  static kj::Promise<void> sendBody(Response& response, unsigned status, kj::StringPtr statusText, const kj::HttpHeaders& h,
                                    std::string body) {
    auto text = kj::heapString(body.data(), body.size());
    auto stream = response.send(status, statusText, h, static_cast<uint64_t>(text.size()));
    auto written = stream->write(text.begin(), text.size());
    return written.attach(kj::mv(stream), kj::mv(text));
  }

  static kj::StringPtr statusText(unsigned status) {
    switch (status) {
      case 200: return "OK";
      case 202: return "Accepted";
      case 400: return "Bad Request";
      case 401: return "Unauthorized";
      case 403: return "Forbidden";
      case 404: return "Not Found";
      case 405: return "Method Not Allowed";
      case 413: return "Payload Too Large";
      case 503: return "Service Unavailable";
      default: return status >= 500 ? "Internal Server Error" : "Error";
    }
  }

  DecisionService::Impl& impl_;
  ConsoleState& state_;
  const kj::HttpHeaderTable& table_;
  HeaderIds ids_;
};

}  // namespace

// ---- The loop side -----------------------------------------------------------------------------

struct ConsoleLoop {
  explicit ConsoleLoop(kj::TaskSet::ErrorHandler& errors) : tasks(errors) {}
  // Declaration order is teardown order reversed: the tasks go first, then the server, the
  // service and the header table they use.
  kj::Own<kj::HttpHeaderTable> table;
  kj::Own<kj::HttpService> service;
  kj::Own<kj::HttpServer> server;
  kj::Own<kj::ConnectionReceiver> listener;
  uint16_t port = 0;
  kj::TaskSet tasks;
  kj::Maybe<kj::Promise<void>> listenTask;  // dropped by stopConsoleAccepting()
};

namespace {

// Samples the totals at every whole second after `next` (atTime, not afterDelay: no drift).
kj::Promise<void> sampleLoop(kj::Timer& timer, kj::TimePoint next, DecisionService::Impl& impl, ConsoleState& state) {
  return timer.atTime(next).then([&timer, next, &impl, &state] {
    state.series().sample(engine::wallClockMs(), totalsOf(impl.observer));
    return sampleLoop(timer, next + 1 * kj::SECONDS, impl, state);
  });
}

}  // namespace

void ConsoleLoopDeleter::operator()(ConsoleLoop* loop) const { delete loop; }

std::unique_ptr<ConsoleLoop, ConsoleLoopDeleter> listenConsole(DecisionService::Impl& impl, kj::Network& network,
                                                              kj::Timer& timer, kj::WaitScope& waitScope) {
  KJ_REQUIRE(impl.console != nullptr && impl.options.consoleListen, "console not configured");
  std::unique_ptr<ConsoleLoop, ConsoleLoopDeleter> loop(new ConsoleLoop(impl));
  kj::HttpHeaderTable::Builder builder;
  HeaderIds ids{builder.add("Authorization"),   builder.add("Content-Security-Policy"), builder.add("X-Content-Type-Options"),
                builder.add("Cache-Control"),   builder.add("Referrer-Policy"),         builder.add("WWW-Authenticate")};
  loop->table = builder.build();
  loop->listener = network.parseAddress(*impl.options.consoleListen).wait(waitScope)->listen();
  loop->port = static_cast<uint16_t>(loop->listener->getPort());
  loop->service = kj::heap<ConsoleHttp>(impl, *impl.console, *loop->table, ids);
  loop->server = kj::heap<kj::HttpServer>(timer, *loop->table, *loop->service);
  loop->listenTask = loop->server->listenHttp(*loop->listener).eagerlyEvaluate([&impl](kj::Exception&& e) { impl.taskFailed(kj::mv(e)); });
  impl.console->series().sample(engine::wallClockMs(), totalsOf(impl.observer));  // the baseline
  loop->tasks.add(sampleLoop(timer, timer.now() + 1 * kj::SECONDS, impl, *impl.console));
  return loop;
}

uint16_t consoleLoopPort(const ConsoleLoop& loop) { return loop.port; }

void stopConsoleAccepting(ConsoleLoop& loop) {
  loop.listenTask = nullptr;
  loop.listener = nullptr;
}

}  // namespace govmesh::server
