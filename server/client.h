// A client of the decision service (server/govmesh.capnp, interface Authorizer) for programs
// and for `govmesh loadgen`.
//
// Threading: a DecisionClient runs on the thread that connects it, on a kj event loop it owns
// (kj::setupAsyncIo()). Every method must be called from that thread, and since kj allows one
// event loop per thread, a thread holds at most one DecisionClient at a time (connect() fails
// with ClientError otherwise). Running on the caller's thread, not on a thread of its own,
// spares every call two cross-thread wake-ups: an unbatched round trip is then one write, the
// server's work and one read, which matters for the single-request latency target.
//
// Failures: a connection that cannot be made, a call the transport fails (the server went
// away), or a reply that does not answer every request (wrong count, unreadable list) is an
// error, never a decision: the sync forms throw ClientError, the async form hands the callback
// a CallResult whose `error` is set and whose `decisions` is empty. A decision that is present
// but cannot be read comes back as a MALFORMED deny (decodeDecision fails closed), so no
// failure can ever read as an allow.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/request.h"

namespace govmesh::server {

/// A failed connection or call (the transport's reason in what()). Never a deny: callers that
/// need a decision for the requests of a failed call must deny them themselves.
class ClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// status() as the client reads it (govmesh.capnp Status).
struct ServiceStatus {
  bool hasBundle = false;
  uint64_t bundleRevision = 0;
  std::string bundleDigest;  ///< raw 32 bytes (empty without a bundle)
  int64_t bundleDeadlineMs = 0;
  double secondsToDeadline = 0;
  std::string backend, signatureBackend, nodeId;
  uint64_t queueDepth = 0, decisions = 0, allowed = 0;
  std::vector<std::pair<engine::DenyCode, uint64_t>> deniedByCode;
};

/// loadBundle() as the client reads it (govmesh.capnp LoadResult).
struct BundleLoadResult {
  bool ok = false;
  uint64_t revision = 0;
  std::string error;
  uint16_t refusal = 0;  ///< the LoadRefusal enumerant's value (0: none)
};

/// What one authorize call produced: decisions[i] answers requests[i] when ok(); otherwise
/// `error` says why and `decisions` is empty.
struct CallResult {
  std::vector<engine::Decision> decisions;
  std::string error;
  /// True when the call returned a decision for every request.
  bool ok() const { return error.empty(); }
};

/// How requests are put on the wire.
struct EncodeOptions {
  /// Send an empty signature (zero-length Data) instead of the request's: for servers started
  /// in their loopback-only unsigned benchmarking mode, which skip only the Ed25519 check for
  /// such requests. Any other server denies them.
  bool omitSignature = false;
};

/// A connection to one govmesh node. Not copyable; see the threading note above.
class DecisionClient {
 public:
  /// Connects to "host:port" (anything kj's network parses, e.g. "127.0.0.1:7878",
  /// "[::1]:7878", "localhost:7878") with TCP_NODELAY. Throws ClientError naming the address
  /// when it cannot connect, or when this thread already runs a kj event loop.
  static std::unique_ptr<DecisionClient> connect(const std::string& address, EncodeOptions options = {});
  ~DecisionClient();
  DecisionClient(const DecisionClient&) = delete;
  DecisionClient& operator=(const DecisionClient&) = delete;

  /// Decides a batch and waits for the answer. Throws ClientError on a failed call, and (before
  /// sending anything) when a request holds what the wire cannot carry (encodeRequest's
  /// refusals: a context that is not a record, a datetime outside 0000-9999).
  std::vector<engine::Decision> authorize(const std::vector<engine::SignedRequest>& requests);

  /// Invoked with a call's outcome, on this client's thread, from inside poll()/waitAny()/
  /// drain() or a sync call.
  using Callback = std::function<void(CallResult&&)>;

  /// Starts an authorize call without waiting: the requests are encoded and written before this
  /// returns (so they may be changed or freed at once); `done` runs when the reply is in.
  /// Throws ClientError, sending nothing, when a request cannot be encoded (as authorize()).
  /// Callers keep their own bound on inFlight() (the loadgen keeps K calls in flight).
  void authorizeAsync(const std::vector<engine::SignedRequest>& requests, Callback done);
  /// Same, for requests [first, first + count) of `requests`.
  void authorizeAsync(const engine::SignedRequest* first, size_t count, Callback done);

  /// Calls started and not yet completed.
  size_t inFlight() const;
  /// Runs the callbacks of replies already received, without blocking.
  void poll();
  /// Blocks until at least one call completes (its callback has run); returns at once when
  /// none is in flight.
  void waitAny();
  /// Blocks until at least one call completes or `timeout` passes; returns whether one did.
  bool waitAnyFor(std::chrono::nanoseconds timeout);
  /// Blocks until every call in flight has completed.
  void drain();

  /// The node's status. Throws ClientError on a failed call.
  ServiceStatus status();
  /// Offers a signed bundle file. Throws ClientError on a failed call (a refusal is not one).
  BundleLoadResult loadBundle(std::string_view bundleBytes);

  /// The address this client connected to.
  const std::string& address() const;

 private:
  struct Impl;
  explicit DecisionClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace govmesh::server
