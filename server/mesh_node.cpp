// The mesh node's sync thread (see mesh_node.h).
#include "server/mesh_node.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/wall_clock.h"
#include "server/service.h"

namespace govmesh::mesh {

namespace {

// After a failed read the thread retries this often (a partitioned node keeps trying, so that it
// serves again as soon as a quorum answers).
constexpr int64_t kRetryMs = 200;

}  // namespace

std::string meshStatusJson(const MeshStatus& s, int64_t syncTimeoutMs) {
  return nlohmann::json{{"running", s.running},
                        {"active_revision", s.activeRevision},
                        {"etcd_revision", s.activeEtcdRevision},
                        {"published_revision", s.publishedRevision},
                        {"pointer_etcd_revision", s.pointerEtcdRevision},
                        {"last_confirmed_ms", s.lastConfirmedMs},
                        {"last_heard_ms", s.lastHeardMs},
                        {"lease_until_ms", s.leaseUntilMs},
                        {"sync_timeout_ms", syncTimeoutMs},
                        {"reads", s.reads},
                        {"probes", s.probes},
                        {"watch_events", s.watchEvents},
                        {"progress_notifications", s.progressNotifications},
                        {"refusals", s.refusals},
                        {"rereads", s.rereads},
                        {"last_error", s.lastError},
                        {"last_refusal", s.lastRefusal}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

MeshNode::MeshNode(MeshNodeOptions options, server::DecisionService& service, std::shared_ptr<engine::SyncLease> lease)
    : options_(std::move(options)), service_(service), lease_(std::move(lease)) {
  if (!lease_) throw std::invalid_argument("mesh node: the service needs a sync lease (ServiceOptions::syncLease)");
  if (options_.endpoints.empty()) throw std::invalid_argument("mesh node: no etcd endpoint");
  if (options_.syncTimeoutMs <= 0) throw std::invalid_argument("mesh node: the sync timeout must be positive");
  if (options_.probeMs <= 0) options_.probeMs = std::max<int64_t>(options_.syncTimeoutMs / 4, 10);
  if (!options_.clock) options_.clock = engine::wallClockMs;
  etcd::ClientOptions co;
  co.endpoints = options_.endpoints;
  // A probe must fail well before the lease would lapse, so that the next one can try again.
  co.connectTimeoutMs = options_.connectTimeoutMs > 0 ? options_.connectTimeoutMs
                                                      : static_cast<int>(std::clamp<int64_t>(options_.syncTimeoutMs / 6, 50, 500));
  co.requestTimeoutMs = options_.requestTimeoutMs > 0 ? options_.requestTimeoutMs
                                                      : static_cast<int>(std::clamp<int64_t>(options_.syncTimeoutMs / 3, 100, 2000));
  client_ = std::make_unique<etcd::Client>(std::move(co));
}

MeshNode::~MeshNode() { stop(); }

void MeshNode::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stop_) return;
  status_.running = true;
  thread_ = std::thread([this] { run(); });
}

void MeshNode::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    status_.running = false;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

MeshStatus MeshNode::status() const {
  std::lock_guard lock(mu_);
  MeshStatus s = status_;
  const int64_t until = lease_->untilMs();
  s.leaseUntilMs = lease_->valid(now()) ? until : 0;
  return s;
}

std::string MeshNode::staleReason() const {
  const MeshStatus s = status();
  std::string why = "no quorum confirmation from etcd since " +
                    (s.lastConfirmedMs ? std::to_string(now() - s.lastConfirmedMs) + " ms ago" : std::string("start")) +
                    " (sync timeout " + std::to_string(options_.syncTimeoutMs) + " ms)";
  if (!s.lastError.empty()) why += "; last error: " + s.lastError;
  return why;
}

bool MeshNode::waitForRevision(uint64_t revision, int64_t timeoutMs) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeoutMs), [&] { return status_.activeRevision >= revision; });
}

void MeshNode::push(Event e) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void MeshNode::setError(const std::string& why) {
  std::lock_guard lock(mu_);
  status_.lastError = why;
}

void MeshNode::renew(int64_t sentMs) {
  // From the moment the confirming read was sent: the answer proves the pointer was current no
  // earlier than that.
  lease_->renew(sentMs + options_.syncTimeoutMs);
  std::lock_guard lock(mu_);
  status_.lastConfirmedMs = sentMs;
  status_.lastError.clear();
}

void MeshNode::refuse(const ActivePointer& pointer, int64_t modRevision, const std::string& why, int64_t sentMs) {
  {
    std::lock_guard lock(mu_);
    status_.publishedRevision = pointer.revision;
    status_.pointerEtcdRevision = modRevision;
    ++status_.refusals;
    status_.lastRefusal = why;
  }
  if (options_.onRefused) options_.onRefused(pointer.revision, why);
  // The node still enforces a bundle that came through the mesh and knows exactly what is
  // published: a bundle it deliberately did not take. It keeps serving the verified one. (A
  // bundle that did not come from etcd is never confirmed by it.)
  const std::shared_ptr<const engine::ActiveBundle> active = service_.bundles().current();
  if (active && active->etcdRevision) renew(sentMs);
  cv_.notify_all();
}

void MeshNode::apply(const ActivePointer& pointer, int64_t modRevision, const std::string& bytes, int64_t sentMs) {
  const std::string source = "etcd:" + pointerKey(options_.prefix) + "@" + std::to_string(modRevision);
  const engine::LoadOutcome out = service_.offerBundle(bytes, source, static_cast<uint64_t>(modRevision));
  if (!out.accepted) {
    refuse(pointer, modRevision, out.message, sentMs);
    return;
  }
  // Before the status says so, so that a waitForRevision() caller finds the activation time.
  if (out.swapped && options_.onActivated) options_.onActivated(out.revision, modRevision, now());
  {
    std::lock_guard lock(mu_);
    status_.publishedRevision = pointer.revision;
    status_.pointerEtcdRevision = modRevision;
    // What the node enforces, as the bundle manager says: the signed bundle's own revision.
    status_.activeRevision = out.revision;
    if (out.swapped) status_.activeEtcdRevision = modRevision;
    if (out.revision != pointer.revision) {
      // Signed and verified, so it is enforced; but the pointer claimed another revision: the
      // publisher's pointer and bundle disagree, which an operator must hear about.
      ++status_.refusals;
      status_.lastRefusal = source + ": the pointer names revision " + std::to_string(pointer.revision) +
                            " but the signed bundle is revision " + std::to_string(out.revision);
    }
  }
  renew(sentMs);
  cv_.notify_all();
}

bool MeshNode::readAll(bool gap, bool restartWatch) {
  const int64_t sent = now();
  try {
    int64_t mod = 0, header = 0;
    const std::optional<ActivePointer> pointer = readPointer(*client_, options_.prefix, &mod, &header);
    {
      std::lock_guard lock(mu_);
      ++status_.reads;
      if (gap) ++status_.rereads;
      status_.lastHeardMs = now();
    }
    if (!pointer) {
      // Nothing is published: nothing can be confirmed either.
      lease_->expire();
    } else {
      std::string bytes;
      try {
        bytes = fetchChunks(*client_, options_.prefix, *pointer);
      } catch (const std::invalid_argument& e) {
        // The stored bundle does not match its pointer (a chunk missing or altered): refused
        // like a bad signature, and the active bundle stays.
        refuse(*pointer, mod, e.what(), sent);
        bytes.clear();
      }
      if (!bytes.empty()) apply(*pointer, mod, bytes, sent);
    }
    // From the pointer read's revision: everything up to it is what was just applied.
    if (restartWatch) startWatch(std::max<int64_t>(1, header + 1 - std::exchange(options_.watchLagForTest, 0)));
    return true;
  } catch (const etcd::Error& e) {
    setError(e.what());
  } catch (const std::invalid_argument& e) {
    // An unreadable pointer: nothing can be confirmed.
    setError(e.what());
  } catch (const std::exception& e) {
    setError(std::string("mesh read failed: ") + e.what());
  }
  return false;
}

void MeshNode::startWatch(int64_t fromRevision) {
  // The old stream's queued events are covered by the read that precedes every restart.
  watch_.reset();
  {
    std::lock_guard lock(mu_);
    events_.clear();
  }
  etcd::WatchCallbacks cb;
  const std::string key = pointerKey(options_.prefix);
  cb.onEvents = [this, key](int64_t, const std::vector<etcd::WatchEvent>& events) {
    for (const etcd::WatchEvent& ev : events) {
      if (ev.kv.key != key) continue;
      push({ev.type == etcd::WatchEvent::Type::kPut ? EventKind::kPointer : EventKind::kPointerDeleted, ev.kv.modRevision, ev.kv.value, {}});
    }
  };
  cb.onProgress = [this](int64_t revision) { push({EventKind::kProgress, revision, {}, {}}); };
  cb.onCompacted = [this](int64_t revision) {
    push({EventKind::kBroken, revision, {}, "watch revision compacted (at " + std::to_string(revision) + "): re-reading"});
  };
  cb.onError = [this](const std::string& why) { push({EventKind::kBroken, 0, {}, "watch ended: " + why}); };
  etcd::ClientOptions co = client_->options();
  watch_ = std::make_unique<etcd::Watch>(co, key, false, fromRevision, std::move(cb));
}

void MeshNode::probe() {
  const int64_t sent = now();
  int64_t mod = 0;
  std::optional<ActivePointer> p;
  try {
    p = readPointer(*client_, options_.prefix, &mod, nullptr);
  } catch (const std::exception& e) {
    setError(std::string("freshness probe: ") + e.what());
    std::lock_guard lock(mu_);
    ++status_.probes;
    return;
  }
  int64_t knownMod = 0;
  {
    std::lock_guard lock(mu_);
    ++status_.probes;
    status_.lastHeardMs = now();
    knownMod = status_.pointerEtcdRevision;
  }
  if (!p) {
    lease_->expire();
    return;
  }
  if (!lease_->valid(now())) {
    // Lapsed: only a full re-read and re-verification brings the node back, and the watch
    // (which may hang on a stream cut off by the partition) starts afresh.
    if (!readAll(true, true)) needRead_ = true;
    return;
  }
  if (mod == knownMod) {
    renew(sent);
    return;
  }
  // The pointer moved and the watch did not say so: fetch it now, and distrust the watch.
  if (!readAll(true, true)) needRead_ = true;
}

void MeshNode::run() {
  bool needRead = true, gap = false;
  auto nextProbe = std::chrono::steady_clock::now();
  for (;;) {
    if (needRead) {
      watch_.reset();
      if (readAll(gap, true)) {
        needRead = gap = false;
      } else {
        gap = true;
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(kRetryMs), [&] { return stop_; });
        if (stop_) break;
        continue;
      }
      nextProbe = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.probeMs);
    }
    std::deque<Event> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, nextProbe, [&] { return stop_ || !events_.empty(); });
      if (stop_) break;
      batch.swap(events_);
    }
    for (Event& e : batch) {
      switch (e.kind) {
        case EventKind::kProgress: {
          std::lock_guard lock(mu_);
          ++status_.progressNotifications;
          status_.lastHeardMs = now();
          break;
        }
        case EventKind::kPointer: {
          {
            std::lock_guard lock(mu_);
            ++status_.watchEvents;
            status_.lastHeardMs = now();
          }
          // Re-read rather than trust the event's value alone: the read is a quorum read, so
          // what it activates is current as of that read (and a later event follows otherwise).
          if (!readAll(false, false)) needRead = gap = true;
          break;
        }
        case EventKind::kPointerDeleted: {
          std::lock_guard lock(mu_);
          ++status_.watchEvents;
          status_.lastError = "the active pointer was deleted: nothing is published";
          lease_->expire();
          break;
        }
        case EventKind::kBroken:
          setError(e.why);
          needRead = gap = true;
          break;
      }
      if (needRead) break;
    }
    if (!needRead && std::chrono::steady_clock::now() >= nextProbe) {
      probe();
      if (std::exchange(needRead_, false)) needRead = gap = true;
      nextProbe = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.probeMs);
    }
  }
  watch_.reset();
}

}  // namespace govmesh::mesh
