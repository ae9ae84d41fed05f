// The load generator behind `govmesh loadgen` and `govmesh demo`: plays a key directory's
// workloads (server/workload.h) against a node, with a share of tampered requests, and reports
// throughput, client-observed latency, decisions by code and any tampered request that came
// back allowed.
//
// How requests are made. A pool of requests is built and signed before timing starts, on every
// core: OpenSSL signs about 36 k Ed25519 signatures per second per core, so on a 2-core machine
// signing during the run would take a core from the node and bound the rate below the targets.
// The pool holds the whole run at a rate (rate x seconds, up to poolLimit), or an estimate of
// it with --max (80 k/s x seconds, up to poolLimit). Pre-signing stops after 8 s, since a
// loaded machine signs slowly and a pool signed over longer would go stale before use (the
// pool is then what was signed: `presigned` in the report). When the run outlives the pool,
// slots are re-signed on the driver's thread as they come round again (counted in
// `resigned_during_run`: such a run measures the signer as much as the node); so are slots
// signed more than 20 s earlier, so that no honest request reaches the node outside its ±30 s
// window. Nonces are 16 bytes: 8 random bytes per run and an 8-byte counter, so they never
// repeat within a run and are not predictable across runs.
//
// Driving. One thread (the caller's) runs a DecisionClient and keeps up to inFlight calls of
// `batch` requests in flight: with `rate`, calls start on an open-loop schedule (a late call is
// sent at once; latency is measured from the actual send, so a node that cannot keep up shows
// as a rate below target rather than as latency); with `max`, a new call starts whenever one
// completes. Latency per request is the time of its call, from before encoding to the reply
// (a batch's requests share it).
//
// Tampering (badFraction of the requests, kinds in turn): a flipped signature bit, the resource
// changed after signing, a timestamp 10 minutes old (signed), a verbatim replay of a request
// already answered (its nonce reused), a request signed by another workload's key for this
// principal (KEY_NOT_PRINCIPAL; UNKNOWN_KEY with a single workload). With unsignedRequests the
// first two are left out: nothing checks the signature. A tampered request that comes back
// allowed is counted in tampered_allowed, which must stay 0.
//
// --check: every decision of an honest request is compared with the reference evaluator
// (cedar::authorize) on the bundle named in workloads.json: allow/deny and the determining
// policies must match. An honest request denied with a code (a fault, not the policies) is a
// mismatch too, except OVERLOADED, counted as honest_overloaded (load shedding is allowed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "server/workload.h"

namespace govmesh::server {

/// A snapshot of a run in progress, reported about once per second.
struct LoadProgress {
  double elapsedSeconds = 0;
  uint64_t requests = 0;           ///< decisions received so far
  double decisionsPerSecond = 0;   ///< over the last interval
  uint64_t allowed = 0, denied = 0;
  uint64_t tamperedSent = 0, tamperedAllowed = 0, mismatches = 0;
  size_t inFlight = 0;             ///< calls in flight
};

/// What to run (the CLI flags of `govmesh loadgen`).
struct LoadOptions {
  std::string connect;                ///< "host:port" of the node
  std::string keysDir;                ///< the key directory (server/workload.h)
  std::optional<double> rate;         ///< target requests per second (open loop)
  bool max = false;                   ///< as fast as the node answers (with inFlight calls)
  double seconds = 5;                 ///< how long to send
  size_t batch = 1;                   ///< requests per authorize call
  bool unsignedRequests = false;      ///< send empty signatures (node in allowUnsigned mode)
  double badFraction = 0;             ///< share of tampered requests, in [0, 1]
  bool check = false;                 ///< compare honest decisions with an offline evaluation
  size_t inFlight = 8;                ///< calls kept in flight at most
  size_t poolLimit = size_t{1} << 20; ///< most requests signed ahead of timing
  uint64_t seed = 0;                  ///< the mix's and tampering's random seed (0: random)
  /// Called on the driver's thread about once per second.
  std::function<void(const LoadProgress&)> onProgress;
};

/// Percentiles of the per-request latency, in microseconds.
struct LatencySummary {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

/// One latency observation: `count` requests that took `ns` (one call of a batch).
struct LatencySample {
  uint64_t ns = 0;
  uint32_t count = 0;
};

/// Nearest-rank percentiles over requests (a sample counts `count` times); sorts `samples`.
/// All zero for no samples.
LatencySummary summarizeLatency(std::vector<LatencySample>& samples);

/// How a request was tampered with (kNone: honest).
enum class TamperKind : uint8_t { kNone, kFlipSignatureBit, kChangeResource, kStaleTimestamp, kReplay, kWrongKey };

/// The kind's name in reports: "none", "flip_signature_bit", "change_resource",
/// "stale_timestamp", "replay", "wrong_key".
std::string_view tamperKindName(TamperKind k);

/// Tallies of one tamper kind.
struct TamperTally {
  uint64_t sent = 0, allowed = 0;
  std::map<std::string, uint64_t> deniedByCode;
};

/// The outcome of a run. toJson() gives the object `govmesh loadgen --json` prints.
struct LoadReport {
  std::string connect;
  double targetSeconds = 0;
  double seconds = 0;        ///< from the first send to the last reply
  size_t batch = 0, inFlight = 0;
  std::optional<double> rateTarget;
  bool max = false, signedRequests = true, check = false;
  uint64_t sent = 0;         ///< requests sent
  uint64_t requests = 0;     ///< decisions received
  double decisionsPerSecond = 0;
  LatencySummary latencyUs;
  uint64_t allowed = 0;
  uint64_t deniedByPolicy = 0;                   ///< denies with code NONE (the policies said no)
  std::map<std::string, uint64_t> deniedByCode;  ///< denies with a fault code, by code name
  uint64_t tamperedSent = 0, tamperedAllowed = 0;
  std::map<std::string, TamperTally> tamperedByKind;
  uint64_t checked = 0;             ///< honest decisions compared offline
  uint64_t mismatchesVsOffline = 0;
  uint64_t honestOverloaded = 0;    ///< honest requests shed with OVERLOADED
  std::vector<std::string> mismatchExamples;  ///< the first few, described
  uint64_t presigned = 0, resignedDuringRun = 0;
  uint64_t failedCalls = 0;         ///< calls that brought no decisions (transport errors)
  std::string firstError;
  std::optional<uint64_t> serverBundleRevision, offlineBundleRevision;
  /// The report as one JSON object: the members above in snake_case ("decisions_per_second",
  /// "latency_us": {"p50", "p90", "p99", "p999", "max", "mean"}, "denied_by_code": {name:
  /// count}, "tampered_by_kind": {kind: {"sent", "allowed", "denied_by_code"}}, ...), absent
  /// optionals as null, "error" only when firstError is set.
  nlohmann::json toJson() const;
};

/// Runs a load (see the top of this file). Throws ClientError when it cannot connect,
/// cedar::InputError for a bad key directory, std::invalid_argument for inconsistent options
/// (neither or both of rate and max, --check without a bundle, batch 0). A connection lost
/// mid-run ends the run early with failedCalls > 0 and firstError set.
LoadReport runLoad(const LoadOptions& options);

/// Builds requests from a workload set: the mix, signing with keys parsed once, nonces, and
/// the tamper kinds. Exposed for tests; runLoad uses it. Not thread-safe (one per thread).
class RequestFactory {
 public:
  /// Signs nothing when `sign` is false (requests keep a zero signature).
  RequestFactory(const WorkloadSet& set, uint64_t seed, bool sign);
  ~RequestFactory();
  RequestFactory(RequestFactory&&) noexcept;
  RequestFactory& operator=(RequestFactory&&) = delete;

  /// What made a request: its workload and template, and the context version (the second of
  /// the run its placeholders were substituted at; 0 without placeholders).
  struct Origin {
    uint32_t workload = 0, templ = 0;
    int64_t contextSecond = 0;
  };

  /// Draws a template from the mix, for a request made at `nowNs` (its contextSecond).
  Origin draw(int64_t nowNs);
  /// Fills `r` as an honest request of `o` at `nowNs` (fresh nonce, signed).
  void makeHonest(const Origin& o, int64_t nowNs, engine::SignedRequest& r);
  /// Makes an honest request `r` of `o` new again at `nowNs`: timestamp, fresh nonce, signature
  /// (cheaper than makeHonest: nothing else is copied).
  void refresh(const Origin& o, int64_t nowNs, engine::SignedRequest& r);
  /// Tampers with honest request `r` (made for `o`) in `kind`'s way. kReplay copies
  /// `*replaySource` verbatim (which must be non-null).
  void tamper(TamperKind kind, const Origin& o, int64_t nowNs, engine::SignedRequest& r,
              const engine::SignedRequest* replaySource);
  /// Signs `r` with workload `w`'s key.
  void sign(uint32_t workload, engine::SignedRequest& r);
  /// The context of `o` (what makeHonest puts in requests of `o`).
  const cedar::Value& context(const Origin& o);
  /// The workload set.
  const WorkloadSet& workloads() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace govmesh::server
