// An etcd v3 client over etcd's JSON gateway (grpc-gateway: HTTP/1.1 POSTs to /v3/..., keys
// and values base64 in JSON, 64-bit numbers as JSON strings), built on libcurl. It is what a
// mesh node uses to read and watch signed bundles and to publish its own state.
//
// Why the gateway and not gRPC: it needs only libcurl and nlohmann-json, and etcd serves it on
// the client port of every member (3.4: /v3/...).
//
// Endpoints: a unary call tries the configured endpoints in order, starting from the last one
// that answered; an endpoint that cannot be connected to, that does not answer within
// requestTimeoutMs, or that answers gRPC code 14 (UNAVAILABLE: "no leader", "request timed
// out", a stopping member) is skipped for the next. When every endpoint fails the call throws
// Error with kind kUnavailable (no endpoint could be reached or every one said it was
// unavailable) or kTimeout (at least one endpoint took the request and did not answer in
// time: for a write, the outcome is unknown and the caller must re-read), and a message that
// names each endpoint and why it failed.
//
// Because a request that timed out is sent again to the next endpoint, a write may be applied
// twice. put() and deletePrefix() are idempotent in effect; a txn() used as compare-and-swap
// may then answer succeeded=false for a swap that its first attempt made, so such callers
// re-read and compare before treating a failure as a conflict.
//
// Threading: Client is thread-safe (each call borrows a libcurl easy handle from a pool
// guarded by a mutex; pooled handles keep their connections alive). A Watch runs on a thread
// of its own.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace govmesh::etcd {

/// One key as etcd stores it. key and value are raw bytes (any byte, NUL included).
struct KeyValue {
  std::string key, value;
  int64_t createRevision = 0, modRevision = 0, version = 0;
};

/// The answer to a range read.
struct RangeResult {
  int64_t revision = 0;       ///< the header revision: the store's revision when it was read
  std::vector<KeyValue> kvs;  ///< in key order
  int64_t count = 0;          ///< keys in the range (may exceed kvs.size() when limited)
  bool more = false;          ///< a limit cut the answer short
};

/// Why a call failed (see the file comment for how endpoints fail over).
enum class ErrorKind {
  kUnavailable,  ///< no endpoint answered (refused, unreachable, or each said UNAVAILABLE)
  kTimeout,      ///< an endpoint took the request and did not answer in time: outcome unknown
  kCompacted,    ///< the revision asked for has been compacted away
  kTooLarge,     ///< the request is over etcd's --max-request-bytes
  kRejected,     ///< etcd answered an error (its message is in what())
  kBadResponse,  ///< the answer could not be read (not JSON, bad base64, missing fields)
};

/// A failed etcd call; kind() says why and what() says where.
class Error : public std::runtime_error {
 public:
  /// An error of this kind with this message.
  Error(ErrorKind kind, std::string msg);
  /// Why the call failed.
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

/// The name of an ErrorKind ("unavailable", "timeout", ...), for messages.
const char* errorKindName(ErrorKind kind);

/// How to reach etcd.
struct ClientOptions {
  std::vector<std::string> endpoints;  ///< "http://127.0.0.1:2379" (a trailing '/' is ignored)
  int connectTimeoutMs = 500;          ///< per endpoint, to open the TCP connection
  int requestTimeoutMs = 2000;         ///< per endpoint, for the whole request and answer
  /// A Watch whose stream stays silent this long fails (onError): the way to notice a peer
  /// that vanished without closing the connection. Set it to a few progress-notify intervals;
  /// 0 turns it off.
  int watchIdleTimeoutMs = 0;
};

/// One comparison of a txn: key's target `op` the number (revisions, version) or the value.
struct Compare {
  enum class Target { kModRevision, kVersion, kValue, kCreateRevision };
  enum class Op { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target;
  Op op;
  int64_t number = 0;  ///< for kModRevision, kVersion, kCreateRevision
  std::string value;   ///< for kValue
};

/// One operation of a txn branch. rangeEnd (for kDeleteRange and kRange) empty: the key alone.
struct TxnOp {
  enum class Kind { kPut, kDeleteRange, kRange };
  Kind kind;
  std::string key;
  std::string value;
  std::string rangeEnd;
};

/// The answer to a txn.
struct TxnResult {
  bool succeeded = false;  ///< every compare held, so the success branch ran
  int64_t revision = 0;    ///< the header revision after the txn
};

/// A unary etcd client (see the file comment for failover and threading).
class Client {
 public:
  /// A client of these endpoints; connects lazily, on the first call.
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// The key's current value (kvs empty when absent). Linearizable unless serializable, which
  /// answers from the endpoint's local state (possibly stale, but without a quorum round).
  RangeResult get(const std::string& key, bool serializable = false);
  /// Every key that starts with prefix ("" means every key), at most limit of them (0: all).
  RangeResult getPrefix(const std::string& prefix, bool serializable = false, int64_t limit = 0);
  /// Keys in [key, rangeEnd).
  RangeResult getRange(const std::string& key, const std::string& rangeEnd, bool serializable = false);
  /// Stores value under key; returns the header revision (the revision of this write).
  int64_t put(const std::string& key, const std::string& value);
  /// If every compare holds runs success, else failure. Range results of the branches are not
  /// returned (read them with get after, or compare on them).
  TxnResult txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                const std::vector<TxnOp>& failure = {});
  /// Deletes every key that starts with prefix ("" means every key); returns the header
  /// revision after the delete.
  int64_t deletePrefix(const std::string& prefix);
  /// Compacts the history up to revision; physical waits until the space is reclaimed.
  void compact(int64_t revision, bool physical = true);

  /// One member's maintenance/status.
  struct Status {
    std::string endpoint;
    uint64_t memberId = 0, leaderId = 0;
    int64_t revision = 0, raftTerm = 0;
  };
  /// Asks this one endpoint (which need not be among options().endpoints) for its status; no
  /// failover.
  Status status(const std::string& endpoint);

  /// The options this client was made with.
  const ClientOptions& options() const { return options_; }

 private:
  struct Pool;
  /// POSTs body to path on one endpoint after another (see the file comment); returns the
  /// parsed answer, or throws Error.
  nlohmann::json call(const std::string& path, const nlohmann::json& body);

  ClientOptions options_;
  std::unique_ptr<Pool> pool_;
  std::atomic<size_t> preferred_{0};
};

/// The range_end that covers every key with this prefix: the prefix with its last byte that is
/// not 0xff incremented (and what follows it dropped); "\0" (every key) when there is none.
std::string prefixEnd(std::string prefix);

/// One change a Watch saw.
struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type;
  KeyValue kv;  ///< for kDelete: the key and its modRevision (the delete's revision)
};

/// What a Watch calls, on its own thread, in stream order. Any may be empty.
struct WatchCallbacks {
  /// Changes of one revision or more (one etcd watch response), in revision order. The
  /// header revision is the store's when etcd sent them and may be past the events' own
  /// modRevisions (a catching-up watch gets old events with a current header).
  std::function<void(int64_t headerRevision, const std::vector<WatchEvent>&)> onEvents;
  /// A progress notification: every change up to headerRevision has been delivered. Also
  /// called for the "created" response; for a watch with a start revision that one reports
  /// at most startRevision - 1, since the replayed changes come after it.
  std::function<void(int64_t headerRevision)> onProgress;
  /// The start revision has been compacted; the watch has stopped.
  std::function<void(int64_t compactRevision)> onCompacted;
  /// The stream could not be opened, ended or failed; the watch has stopped.
  std::function<void(const std::string& why)> onError;
};

/// A watch on one key or a prefix from startRevision (0: from now), on its own thread over a
/// streaming request. It does not reconnect: when the stream cannot be opened, ends or fails it
/// calls onError once and stops; a compacted start revision calls onCompacted once and stops.
/// The owner re-reads and makes a new Watch. It opens on the first endpoint that connects
/// (each tried in order). Callbacks may call stop() but must not destroy the Watch, and
/// stop() must not be called while holding a lock that a callback takes (it waits for them).
class Watch {
 public:
  /// Starts watching (returns at once; failures arrive through onError).
  Watch(ClientOptions options, std::string key, bool prefix, int64_t startRevision, WatchCallbacks callbacks);
  /// stop().
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  /// Cancels the stream and waits for the thread (promptly: the thread's poll is woken); no
  /// callback runs after it returns (unless called from a callback, where it only cancels).
  void stop();
  /// Whether the stream is still being read (false after onError, onCompacted or stop()).
  bool running() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace govmesh::etcd
