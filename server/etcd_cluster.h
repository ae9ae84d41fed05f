// A real multi-member etcd cluster of child processes on loopback, for tests and for
// `govmesh mesh-demo`: members can be killed (SIGKILL, like a crashed machine) and restarted
// from their data directories, and the current Raft leader can be asked for.
//
// Each member is an `etcd` process with its own data directory and log file under one
// temporary directory (LocalCluster::dataDir()). Ports are chosen by binding port 0 and are
// kept for the cluster's life, so a restarted member comes back on the same URLs that its
// peers know it by.
//
// Lifetime: the members die with the LocalCluster (the destructor kills and reaps them and
// removes the directory) and, through PR_SET_PDEATHSIG, with the process even when it crashes.
// Linux sends that signal when the *thread* that started a member exits, so start and restart
// members from a thread that outlives them (normally the one that owns the LocalCluster).
//
// Threading: the methods may be called from several threads; the process table is guarded.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace govmesh::etcd {

/// How to start a LocalCluster.
struct ClusterOptions {
  size_t members = 3;             ///< cluster size (at least 1)
  std::string dataDir;            ///< parent of the cluster's temporary directory; empty: $TMPDIR or /tmp
  std::string etcdBinary = "etcd";  ///< path, or a name looked up in PATH
  int progressNotifyMs = 200;     ///< --experimental-watch-progress-notify-interval
  int64_t maxRequestBytes = 0;    ///< --max-request-bytes; 0: etcd's default (1.5 MiB)
  int heartbeatMs = 50;           ///< --heartbeat-interval
  int electionMs = 500;           ///< --election-timeout
};

/// A running etcd cluster of child processes on 127.0.0.1 (see the file comment).
class LocalCluster {
 public:
  /// Starts every member and waits (at most 15 s) until a leader is elected and every member
  /// answers. Throws std::invalid_argument for bad options, std::runtime_error (with the
  /// failing member's log tail) when the cluster does not come up; nothing is left running.
  explicit LocalCluster(ClusterOptions o);
  /// Kills (SIGKILL) and reaps every member and removes dataDir().
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  /// The number of members (live or not).
  size_t size() const;
  /// "http://127.0.0.1:PORT", one per member, in member order.
  std::vector<std::string> clientUrls() const;
  /// Member i's client URL. Throws std::out_of_range.
  std::string clientUrl(size_t i) const;
  /// Member i's peer (Raft) URL. Throws std::out_of_range.
  std::string peerUrl(size_t i) const;
  /// The cluster's own temporary directory (member data dirs and logs live below it).
  std::string dataDir() const;
  /// Member i's process id, or 0 when it is not running. Throws std::out_of_range.
  int pid(size_t i) const;

  /// The index of the member that is leader now: a live member whose status says that it is
  /// the leader itself (asked over /v3/maintenance/status). nullopt when no live member claims
  /// it (an election is running, or quorum is lost).
  std::optional<size_t> leader() const;
  /// Polls leader() until it names a member other than notMember, or timeout passes.
  std::optional<size_t> waitForLeader(std::chrono::milliseconds timeout,
                                      std::optional<size_t> notMember = {}) const;

  /// Kills member i with SIGKILL and reaps it; a member that is not running is left alone.
  /// Throws std::out_of_range.
  void kill(size_t i);
  /// Starts member i again on its data directory and ports (it rejoins with the cluster's
  /// state) and waits (at most 15 s) until it answers. A running member is left alone. Throws
  /// std::out_of_range, or std::runtime_error with its log tail when it does not come up.
  void restart(size_t i);
  /// Whether member i's process is running (a member that exited by itself is reaped here).
  bool alive(size_t i) const;

  /// The last `bytes` bytes of member i's log (all of its runs), for error messages.
  std::string logTail(size_t i, size_t bytes = 4000) const;

 private:
  struct Member;
  void startMember(size_t i);
  void waitAnswering(size_t i, std::chrono::steady_clock::time_point deadline) const;
  void stopAll() noexcept;
  void checkIndex(size_t i) const;

  ClusterOptions opts_;
  std::string dir_;
  std::string token_;
  std::vector<std::unique_ptr<Member>> members_;
  mutable std::mutex mu_;  // guards Member::pid
};

}  // namespace govmesh::etcd
