// The etcd client (server/etcd_client.h) against a real etcd: one single-member etcd process
// per test group, started here on free loopback ports with a temporary data directory.
#include "server/etcd_client.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

namespace etcd = govmesh::etcd;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A port that was free a moment ago (bound to 0 and released); etcd binds it right after.
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string findEtcd() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = (dir.empty() ? "." : dir) + "/etcd";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// One etcd process: killed (SIGKILL), reaped and its directory removed by the destructor; and
// killed by the kernel (PR_SET_PDEATHSIG) if this test process dies first.
class EtcdProcess {
 public:
  explicit EtcdProcess(int64_t maxRequestBytes = 0) {
    const std::string bin = findEtcd();
    REQUIRE_MESSAGE(!bin.empty(), "etcd is not on PATH: install etcd-server (deploy/install-deps.sh) to run this test");
    char tmpl[] = "/tmp/govmesh-etcd-client-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    url_ = "http://127.0.0.1:" + std::to_string(freePort());
    const std::string peer = "http://127.0.0.1:" + std::to_string(freePort());
    std::vector<std::string> args = {bin, "--name", "t", "--data-dir", dir_ + "/data",
                                     "--listen-client-urls", url_, "--advertise-client-urls", url_,
                                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                     "--initial-cluster", "t=" + peer,
                                     "--experimental-watch-progress-notify-interval", "200ms"};
    if (maxRequestBytes > 0) {
      args.push_back("--max-request-bytes");
      args.push_back(std::to_string(maxRequestBytes));
    }
    const std::string log = dir_ + "/etcd.log";
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Wait until it answers maintenance/status with a leader.
    etcd::Client probe({{url_}, 200, 500});
    const auto deadline = Clock::now() + 20s;
    for (;;) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        fail("etcd exited at start");
      }
      try {
        if (probe.status(url_).leaderId != 0) break;
      } catch (const etcd::Error&) {
      }
      if (Clock::now() > deadline) fail("etcd did not answer within 20 s");
      std::this_thread::sleep_for(50ms);
    }
  }
  ~EtcdProcess() {
    kill();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  const std::string& url() const { return url_; }
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // The destructor does not run for a constructor that throws: clean up, then fail.
  [[noreturn]] void fail(const std::string& why) {
    std::string log = logTail();
    kill();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
    FAIL(why << "; etcd log:\n" << log);
    throw std::runtime_error(why);  // not reached: FAIL throws
  }
  std::string logTail() const {
    std::ifstream in(dir_ + "/etcd.log");
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > 3000 ? all.substr(all.size() - 3000) : all;
  }

 private:
  pid_t pid_ = -1;
  std::string dir_, url_;
};

// The etcd most tests share (64 KiB request limit for the too-large test).
EtcdProcess& sharedEtcd() {
  static EtcdProcess p(65536);
  return p;
}

etcd::ClientOptions opts(std::vector<std::string> endpoints) {
  etcd::ClientOptions o;
  o.endpoints = std::move(endpoints);
  return o;
}

// A URL where nothing listens (a port that was just free).
std::string deadUrl() { return "http://127.0.0.1:" + std::to_string(freePort()); }

// What a Watch reported, for the test thread to wait on.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<int64_t, etcd::WatchEvent>> events;
  std::vector<int64_t> progress;
  int64_t compacted = -1;
  std::string error;
  int errors = 0;

  etcd::WatchCallbacks callbacks() {
    etcd::WatchCallbacks cb;
    cb.onEvents = [this](int64_t rev, const std::vector<etcd::WatchEvent>& evs) {
      std::lock_guard<std::mutex> l(mu);
      for (const auto& e : evs) events.emplace_back(rev, e);
      cv.notify_all();
    };
    cb.onProgress = [this](int64_t rev) {
      std::lock_guard<std::mutex> l(mu);
      progress.push_back(rev);
      cv.notify_all();
    };
    cb.onCompacted = [this](int64_t rev) {
      std::lock_guard<std::mutex> l(mu);
      compacted = rev;
      cv.notify_all();
    };
    cb.onError = [this](const std::string& why) {
      std::lock_guard<std::mutex> l(mu);
      error = why;
      ++errors;
      cv.notify_all();
    };
    return cb;
  }
  template <class Pred>
  bool waitFor(Pred pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, timeout, pred);
  }
};

}  // namespace

TEST_CASE("prefixEnd covers exactly the keys with the prefix") {
  CHECK(etcd::prefixEnd("abc") == "abd");
  CHECK(etcd::prefixEnd(std::string("a\xff\xff", 3)) == "b");
  CHECK(etcd::prefixEnd(std::string("\xff\xff", 2)) == std::string(1, '\0'));
  CHECK(etcd::prefixEnd("") == std::string(1, '\0'));
  CHECK(etcd::prefixEnd(std::string("a\0", 2)) == std::string("a\1", 2));
}

TEST_CASE("put, get and getPrefix") {
  etcd::Client c(opts({sharedEtcd().url()}));
  int64_t r1 = c.put("pg/a", "1");
  int64_t r2 = c.put("pg/b", "2");
  int64_t r3 = c.put("pg/c", "3");
  CHECK(r1 > 0);
  CHECK(r2 == r1 + 1);
  CHECK(r3 == r2 + 1);
  c.put("ph/x", "not in the prefix");

  auto g = c.get("pg/b");
  REQUIRE(g.kvs.size() == 1);
  CHECK(g.kvs[0].key == "pg/b");
  CHECK(g.kvs[0].value == "2");
  CHECK(g.kvs[0].createRevision == r2);
  CHECK(g.kvs[0].modRevision == r2);
  CHECK(g.kvs[0].version == 1);
  CHECK(g.revision >= r3);
  CHECK(c.get("pg/b", /*serializable=*/true).kvs.size() == 1);

  int64_t r4 = c.put("pg/b", "22");
  g = c.get("pg/b");
  REQUIRE(g.kvs.size() == 1);
  CHECK(g.kvs[0].value == "22");
  CHECK(g.kvs[0].version == 2);
  CHECK(g.kvs[0].modRevision == r4);
  CHECK(g.kvs[0].createRevision == r2);

  CHECK(c.get("pg/none").kvs.empty());

  auto p = c.getPrefix("pg/");
  REQUIRE(p.kvs.size() == 3);
  CHECK(p.kvs[0].key == "pg/a");
  CHECK(p.kvs[1].key == "pg/b");
  CHECK(p.kvs[2].key == "pg/c");
  CHECK_FALSE(p.more);

  auto lim = c.getPrefix("pg/", false, 2);
  CHECK(lim.kvs.size() == 2);
  CHECK(lim.more);
  CHECK(lim.count == 3);

  auto range = c.getRange("pg/a", "pg/c");
  CHECK(range.kvs.size() == 2);

  int64_t rd = c.deletePrefix("pg/");
  CHECK(rd > r4);
  CHECK(c.getPrefix("pg/").kvs.empty());
  CHECK(c.get("ph/x").kvs.size() == 1);
}

TEST_CASE("binary keys and values survive the base64 round trip") {
  etcd::Client c(opts({sharedEtcd().url()}));
  std::string all;
  for (int i = 0; i < 256; ++i) all += char(i);
  // Lengths 0..5 exercise every base64 padding case.
  for (size_t len = 0; len <= 5; ++len) {
    std::string key = std::string("bin/\0\xff", 6) + char('0' + len);
    std::string value = std::string("\0\xff\x01\xfe\x80", 5).substr(0, len);
    c.put(key, value);
    auto g = c.get(key);
    REQUIRE(g.kvs.size() == 1);
    CHECK(g.kvs[0].key == key);
    CHECK(g.kvs[0].value == value);
  }
  std::string key = std::string("bin/\0\xff\xff", 7);
  c.put(key, all + all);
  auto g = c.get(key);
  REQUIRE(g.kvs.size() == 1);
  CHECK(g.kvs[0].value == all + all);
  // A prefix that ends in 0xff.
  auto p = c.getPrefix(std::string("bin/\0\xff", 6));
  CHECK(p.kvs.size() == 7);
}

TEST_CASE("txn: compares decide the branch") {
  etcd::Client c(opts({sharedEtcd().url()}));
  using C = etcd::Compare;
  using Op = etcd::TxnOp;
  // Create if absent (version == 0).
  std::vector<C> absent = {{"tx/k", C::Target::kVersion, C::Op::kEqual, 0, ""}};
  auto t1 = c.txn(absent, {{Op::Kind::kPut, "tx/k", "v1", ""}}, {{Op::Kind::kPut, "tx/lost", "1", ""}});
  CHECK(t1.succeeded);
  CHECK(t1.revision > 0);
  auto t2 = c.txn(absent, {{Op::Kind::kPut, "tx/k", "v2", ""}}, {{Op::Kind::kPut, "tx/lost", "1", ""}});
  CHECK_FALSE(t2.succeeded);
  CHECK(t2.revision == t1.revision + 1);  // the failure branch wrote
  CHECK(c.get("tx/k").kvs.at(0).value == "v1");
  CHECK(c.get("tx/lost").kvs.size() == 1);

  // Compare-and-swap on the mod revision, and on the value.
  int64_t mod = c.get("tx/k").kvs.at(0).modRevision;
  CHECK(c.txn({{"tx/k", C::Target::kModRevision, C::Op::kEqual, mod, ""}}, {{Op::Kind::kPut, "tx/k", "v3", ""}}).succeeded);
  CHECK_FALSE(c.txn({{"tx/k", C::Target::kModRevision, C::Op::kEqual, mod, ""}}, {{Op::Kind::kPut, "tx/k", "v4", ""}}).succeeded);
  CHECK(c.txn({{"tx/k", C::Target::kValue, C::Op::kEqual, 0, "v3"}}, {{Op::Kind::kPut, "tx/k", "v5", ""}}).succeeded);
  CHECK(c.txn({{"tx/k", C::Target::kModRevision, C::Op::kGreater, mod, ""}}, {}).succeeded);
  CHECK(c.txn({{"tx/k", C::Target::kCreateRevision, C::Op::kLess, mod + 1, ""}}, {}).succeeded);
  CHECK(c.txn({{"tx/k", C::Target::kValue, C::Op::kNotEqual, 0, "v3"}}, {}).succeeded);
  // Delete in a txn.
  CHECK(c.txn({}, {{Op::Kind::kDeleteRange, "tx/", "", etcd::prefixEnd("tx/")}}).succeeded);
  CHECK(c.getPrefix("tx/").kvs.empty());
}

TEST_CASE("etcd's errors: too large, compacted, rejected") {
  etcd::Client c(opts({sharedEtcd().url()}));
  auto kindOf = [](auto&& f) -> std::optional<etcd::ErrorKind> {
    try {
      f();
    } catch (const etcd::Error& e) {
      return e.kind();
    }
    return std::nullopt;
  };
  CHECK(kindOf([&] { c.put("big", std::string(70000, 'x')); }) == etcd::ErrorKind::kTooLarge);
  // Past the gRPC message limit (max-request-bytes + 512 KiB) the error comes from gRPC.
  CHECK(kindOf([&] { c.put("big", std::string(1 << 20, 'x')); }) == etcd::ErrorKind::kTooLarge);
  try {
    c.put("big", std::string(70000, 'x'));
  } catch (const etcd::Error& e) {
    CHECK(std::string(e.what()).find("request is too large") != std::string::npos);
  }

  int64_t r = c.put("cmp/k", "1");
  c.put("cmp/k", "2");
  c.compact(r);
  CHECK(kindOf([&] { c.compact(r - 1); }) == etcd::ErrorKind::kCompacted);
  CHECK(kindOf([&] { c.compact(r + 1000000); }) == etcd::ErrorKind::kRejected);
  CHECK(kindOf([&] { c.put("", "no key"); }) == etcd::ErrorKind::kRejected);
}

TEST_CASE("status names the member and its leader") {
  etcd::Client c(opts({sharedEtcd().url()}));
  auto s = c.status(sharedEtcd().url());
  CHECK(s.endpoint == sharedEtcd().url());
  CHECK(s.memberId != 0);
  CHECK(s.leaderId == s.memberId);  // one member: it leads
  CHECK(s.raftTerm > 0);
  CHECK(s.revision > 0);
  try {
    c.status(deadUrl());
    FAIL("status of a dead endpoint answered");
  } catch (const etcd::Error& e) {
    CHECK(e.kind() == etcd::ErrorKind::kUnavailable);
  }
}

TEST_CASE("failover: a dead endpoint first in the list; all dead is kUnavailable") {
  const std::string dead1 = deadUrl(), dead2 = deadUrl();
  etcd::Client c(opts({dead1, sharedEtcd().url() + "/"}));
  int64_t r = c.put("fo/k", "v");
  auto g = c.get("fo/k");
  REQUIRE(g.kvs.size() == 1);
  CHECK(g.kvs[0].modRevision == r);

  etcd::ClientOptions o = opts({dead1, dead2});
  o.connectTimeoutMs = 300;
  o.requestTimeoutMs = 1000;
  etcd::Client none(o);
  auto t0 = Clock::now();
  try {
    none.get("fo/k");
    FAIL("a call with every endpoint dead answered");
  } catch (const etcd::Error& e) {
    CHECK(e.kind() == etcd::ErrorKind::kUnavailable);
    std::string what = e.what();
    CHECK(what.find(dead1) != std::string::npos);
    CHECK(what.find(dead2) != std::string::npos);
  }
  // Each endpoint is bounded by the request timeout (a generous bound, not a benchmark).
  CHECK(Clock::now() - t0 < 2 * 1000ms + 3s);

  try {
    etcd::Client(opts({})).get("x");
    FAIL("a client without endpoints answered");
  } catch (const etcd::Error& e) {
    CHECK(e.kind() == etcd::ErrorKind::kUnavailable);
  }
}

TEST_CASE("a request that hangs is a timeout, and moves on to the next endpoint") {
  // A listening socket that never answers: connections complete in the kernel's backlog.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string hung = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));

  etcd::ClientOptions o = opts({hung});
  o.requestTimeoutMs = 300;
  try {
    etcd::Client(o).get("x");
    FAIL("a hung endpoint answered");
  } catch (const etcd::Error& e) {
    CHECK(e.kind() == etcd::ErrorKind::kTimeout);
    CHECK(std::string(e.what()).find(hung) != std::string::npos);
  }
  o.endpoints.push_back(sharedEtcd().url());
  etcd::Client c(o);
  c.put("hang/k", "v");
  CHECK(c.get("hang/k").kvs.size() == 1);

  // A Watch on the hung endpoint: connected, nothing ever arrives; the destructor must not
  // wait for the stream.
  Recorder rec;
  auto w = std::make_unique<etcd::Watch>(opts({hung}), "hang/k", false, 0, rec.callbacks());
  std::this_thread::sleep_for(200ms);
  CHECK(w->running());
  auto t0 = Clock::now();
  w.reset();
  CHECK(Clock::now() - t0 < 1s);
  CHECK(rec.errors == 0);  // a stopped watch does not call back

  // With an idle timeout, the silent stream is an error.
  etcd::ClientOptions idle = opts({hung});
  idle.watchIdleTimeoutMs = 300;
  Recorder rec2;
  etcd::Watch w2(idle, "hang/k", false, 0, rec2.callbacks());
  REQUIRE(rec2.waitFor([&] { return rec2.errors > 0; }));
  {
    std::lock_guard<std::mutex> l(rec2.mu);
    CHECK(rec2.error.find("no data for 300 ms") != std::string::npos);
  }
  CHECK_FALSE(w2.running());
  ::close(fd);
}

TEST_CASE("watch: puts and deletes in order with revisions, then progress") {
  etcd::Client c(opts({sharedEtcd().url()}));
  int64_t start = c.put("wt/seed", "x") + 1;
  // Three changes from the past (replayed after "created"), then live ones.
  int64_t r1 = c.put("wt/a", "1");
  int64_t r2 = c.put("wt/b", std::string("\0\xff", 2));
  int64_t r3 = c.deletePrefix("wt/a");
  Recorder rec;
  etcd::Watch w(opts({deadUrl(), sharedEtcd().url()}), "wt/", true, start, rec.callbacks());
  REQUIRE(rec.waitFor([&] { return !rec.progress.empty(); }));
  // Many events in one response: one txn of 20 puts.
  std::vector<etcd::TxnOp> many;
  for (int i = 0; i < 20; ++i) many.push_back({etcd::TxnOp::Kind::kPut, "wt/m" + std::to_string(100 + i), std::string(2000, char('a' + i)), ""});
  int64_t r4 = c.txn({}, many).revision;
  c.put("outside/prefix", "not watched");

  REQUIRE(rec.waitFor([&] { return rec.events.size() >= 23; }));
  std::lock_guard<std::mutex> l(rec.mu);
  REQUIRE(rec.events.size() == 23);
  CHECK(rec.events[0].second.type == etcd::WatchEvent::Type::kPut);
  CHECK(rec.events[0].second.kv.key == "wt/a");
  CHECK(rec.events[0].second.kv.value == "1");
  CHECK(rec.events[0].second.kv.modRevision == r1);
  CHECK(rec.events[1].second.kv.key == "wt/b");
  CHECK(rec.events[1].second.kv.value == std::string("\0\xff", 2));
  CHECK(rec.events[1].second.kv.modRevision == r2);
  CHECK(rec.events[2].second.type == etcd::WatchEvent::Type::kDelete);
  CHECK(rec.events[2].second.kv.key == "wt/a");
  CHECK(rec.events[2].second.kv.modRevision == r3);
  for (int i = 0; i < 20; ++i) {
    CHECK(rec.events[3 + i].second.kv.modRevision == r4);
    CHECK(rec.events[3 + i].first >= r4);  // a response's header may be ahead of its events
    CHECK(rec.events[3 + i].second.kv.key == "wt/m" + std::to_string(100 + i));
    CHECK(rec.events[3 + i].second.kv.value == std::string(2000, char('a' + i)));
  }
  // The first progress (the "created" answer, at revision r3) came before the replayed
  // changes, so it may not vouch for more than start - 1.
  REQUIRE(!rec.progress.empty());
  CHECK(rec.progress.front() <= start - 1);
  CHECK(rec.errors == 0);
  CHECK(w.running());
}

TEST_CASE("watch: progress notifications arrive on an idle key") {
  etcd::Client c(opts({sharedEtcd().url()}));
  int64_t now = c.put("pr/other", "x");
  Recorder rec;
  etcd::Watch w(opts({sharedEtcd().url()}), "pr/idle", false, 0, rec.callbacks());
  // The created answer and at least two notifications (every 200 ms).
  REQUIRE(rec.waitFor([&] { return rec.progress.size() >= 3; }));
  std::lock_guard<std::mutex> l(rec.mu);
  CHECK(rec.progress.back() >= now);
  CHECK(rec.events.empty());
}

TEST_CASE("watch: a compacted start revision calls onCompacted and stops") {
  etcd::Client c(opts({sharedEtcd().url()}));
  int64_t first = c.put("cw/k", "1");
  c.put("cw/k", "2");
  int64_t last = c.put("cw/k", "3");
  c.compact(last);
  Recorder rec;
  etcd::Watch w(opts({sharedEtcd().url()}), "cw/k", false, first, rec.callbacks());
  REQUIRE(rec.waitFor([&] { return rec.compacted >= 0 || rec.errors > 0; }));
  std::lock_guard<std::mutex> l(rec.mu);
  CHECK(rec.compacted >= last);
  CHECK(rec.errors == 0);
  CHECK(rec.events.empty());
  CHECK_FALSE(w.running());
}

TEST_CASE("watch: every endpoint dead calls onError") {
  Recorder rec;
  const std::string d1 = deadUrl(), d2 = deadUrl();
  etcd::Watch w(opts({d1, d2}), "k", false, 0, rec.callbacks());
  REQUIRE(rec.waitFor([&] { return rec.errors > 0; }));
  std::lock_guard<std::mutex> l(rec.mu);
  CHECK(rec.errors == 1);
  CHECK(rec.error.find(d1) != std::string::npos);
  CHECK(rec.error.find(d2) != std::string::npos);
}

TEST_CASE("watch: large values split across chunks, then onError when etcd is killed") {
  EtcdProcess own;  // default request limit (1.5 MiB)
  etcd::Client c(opts({own.url()}));
  Recorder rec;
  etcd::Watch w(opts({own.url()}), "lv/", true, 0, rec.callbacks());
  REQUIRE(rec.waitFor([&] { return !rec.progress.empty(); }));
  std::string big1(1400 * 1024, '\0'), big2(1200 * 1024, '\0');
  for (size_t i = 0; i < big1.size(); ++i) big1[i] = char((i * 7 + i / 251) & 0xff);
  for (size_t i = 0; i < big2.size(); ++i) big2[i] = char((i * 13 + 5) & 0xff);
  c.put("lv/1", big1);
  c.put("lv/2", big2);
  REQUIRE(rec.waitFor([&] { return rec.events.size() >= 2; }));
  {
    std::lock_guard<std::mutex> l(rec.mu);
    CHECK(rec.events[0].second.kv.value == big1);
    CHECK(rec.events[1].second.kv.value == big2);
    CHECK(rec.errors == 0);
  }
  own.kill();
  REQUIRE(rec.waitFor([&] { return rec.errors > 0; }));
  std::this_thread::sleep_for(100ms);
  std::lock_guard<std::mutex> l(rec.mu);
  CHECK(rec.errors == 1);  // once
  CHECK(rec.error.find(own.url()) != std::string::npos);
  CHECK_FALSE(w.running());
}

TEST_CASE("watch: stop from inside a callback, and destroying a stopped watch") {
  Recorder rec;
  std::atomic<etcd::Watch*> self{nullptr};
  std::atomic<int> calls{0};
  auto cb = rec.callbacks();
  cb.onProgress = [&](int64_t) {
    ++calls;
    if (auto* w = self.load()) w->stop();
  };
  auto w = std::make_unique<etcd::Watch>(opts({sharedEtcd().url()}), "st/k", false, 0, cb);
  self = w.get();
  for (int i = 0; i < 100 && w->running(); ++i) std::this_thread::sleep_for(20ms);
  CHECK_FALSE(w->running());
  int seen = calls.load();
  std::this_thread::sleep_for(500ms);
  CHECK(calls.load() == seen);  // nothing after the stop
  w.reset();
  CHECK(rec.errors == 0);
}
