// LocalCluster (server/etcd_cluster.h) against the real etcd binary: start, replicate, lose the
// leader, rejoin, clean up; and TcpProxy (server/tcp_proxy.h) as a partition in front of etcd.
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/etcd_cluster.h"
#include "server/tcp_proxy.h"

using govmesh::etcd::ClusterOptions;
using govmesh::etcd::LocalCluster;
using govmesh::net::TcpProxy;
using namespace std::chrono_literals;

namespace {

#ifndef GOVMESH_ETCD_BINARY
#define GOVMESH_ETCD_BINARY "etcd"
#endif

ClusterOptions options(size_t members) {
  ClusterOptions o;
  o.members = members;
  o.etcdBinary = GOVMESH_ETCD_BINARY;
  return o;
}

std::string base64(const std::string& in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; --k) out += abc[(v >> (6 * k)) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

size_t appendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

/// POSTs JSON with libcurl; the body of a 200 answer, or nullopt (timeout, refusal, error).
/// `handle` reuses a connection (keep-alive) across calls when given.
std::optional<std::string> post(const std::string& url, const nlohmann::json& body,
                                long timeoutMs = 3000, CURL* handle = nullptr) {
  CURL* c = handle != nullptr ? handle : curl_easy_init();
  REQUIRE(c != nullptr);
  std::string text = body.dump(), out;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, text.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeoutMs);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(headers);
  if (handle == nullptr) curl_easy_cleanup(c);
  if (rc != CURLE_OK || status != 200) return std::nullopt;
  return out;
}

/// post() retried for up to 5 s: on a busy machine the 50 ms heartbeats of the test cluster can
/// miss and start an election, and etcd refuses requests while it runs ("leader changed").
std::optional<std::string> postRetrying(const std::string& url, const nlohmann::json& body) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    auto r = post(url, body);
    if (r || std::chrono::steady_clock::now() >= deadline) return r;
    std::this_thread::sleep_for(100ms);
  }
}

bool put(const std::string& baseUrl, const std::string& key, const std::string& value) {
  return postRetrying(baseUrl + "/v3/kv/put", {{"key", base64(key)}, {"value", base64(value)}}).has_value();
}

/// The value of `key` read through `baseUrl` (linearizable: through the leader), base64.
std::optional<std::string> getB64(const std::string& baseUrl, const std::string& key) {
  auto body = postRetrying(baseUrl + "/v3/kv/range", {{"key", base64(key)}});
  if (!body) return std::nullopt;
  auto j = nlohmann::json::parse(*body);
  if (!j.contains("kvs") || j["kvs"].empty()) return std::string();
  return j["kvs"][0].value("value", "");
}

bool processGone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

/// Port of "http://127.0.0.1:PORT".
uint16_t portOf(const std::string& url) {
  return static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
}

}  // namespace

TEST_CASE("a 3-member cluster elects a leader, replicates, and leaves nothing behind") {
  std::vector<int> pids;
  std::string dir;
  {
    LocalCluster cluster(options(3));
    REQUIRE(cluster.size() == 3);
    dir = cluster.dataDir();
    CHECK(std::filesystem::is_directory(dir));
    auto urls = cluster.clientUrls();
    REQUIRE(urls.size() == 3);
    CHECK(urls[1] == cluster.clientUrl(1));
    CHECK(urls[0] != urls[1]);
    CHECK_THROWS_AS(cluster.clientUrl(3), std::out_of_range);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(cluster.alive(i));
      pids.push_back(cluster.pid(i));
      CHECK(pids.back() > 0);
    }
    auto leader = cluster.leader();
    REQUIRE(leader.has_value());
    CHECK(*leader < 3);

    REQUIRE(put(cluster.clientUrl(0), "/govmesh/test/a", "hello"));
    CHECK(getB64(cluster.clientUrl(1), "/govmesh/test/a") == base64("hello"));
    CHECK(getB64(cluster.clientUrl(2), "/govmesh/test/a") == base64("hello"));
    CHECK(cluster.logTail(0).size() > 0);
  }
  for (int pid : pids) CHECK_MESSAGE(processGone(pid), "etcd pid " << pid << " still exists");
  CHECK_FALSE(std::filesystem::exists(dir));
}

TEST_CASE("killing the leader elects another among the rest; the killed member rejoins") {
  LocalCluster cluster(options(3));
  auto old = cluster.waitForLeader(5s);
  REQUIRE(old.has_value());
  int oldPid = cluster.pid(*old);
  cluster.kill(*old);
  CHECK_FALSE(cluster.alive(*old));
  CHECK(cluster.pid(*old) == 0);
  CHECK(processGone(oldPid));

  auto next = cluster.waitForLeader(5s, old);
  REQUIRE_MESSAGE(next.has_value(), "no new leader; a survivor's log ends:\n"
                                        << cluster.logTail((*old + 1) % 3));
  CHECK(*next != *old);
  CHECK(cluster.alive(*next));

  size_t other = 3 - *old - *next;  // the surviving follower
  REQUIRE(put(cluster.clientUrl(other), "/govmesh/test/after-kill", "v2"));
  CHECK(getB64(cluster.clientUrl(*next), "/govmesh/test/after-kill") == base64("v2"));
  // The killed member's URL is dead: nothing answers there.
  CHECK_FALSE(post(cluster.clientUrl(*old) + "/v3/maintenance/status", nlohmann::json::object(), 500));

  cluster.restart(*old);
  CHECK(cluster.alive(*old));
  // It rejoined: it serves a linearizable read of a write made while it was down.
  CHECK(getB64(cluster.clientUrl(*old), "/govmesh/test/after-kill") == base64("v2"));
  REQUIRE(put(cluster.clientUrl(*old), "/govmesh/test/after-restart", "v3"));
  CHECK(getB64(cluster.clientUrl(other), "/govmesh/test/after-restart") == base64("v3"));
  CHECK(cluster.waitForLeader(5s).has_value());
  // Restarting a running member is a no-op.
  int pidNow = cluster.pid(*old);
  cluster.restart(*old);
  CHECK(cluster.pid(*old) == pidNow);
}

TEST_CASE("LocalCluster refuses bad options and reports a member that cannot start") {
  ClusterOptions o = options(0);
  CHECK_THROWS_AS(LocalCluster{o}, std::invalid_argument);
  o = options(1);
  o.electionMs = o.heartbeatMs;  // etcd wants the election timeout well above the heartbeat
  CHECK_THROWS_AS(LocalCluster{o}, std::invalid_argument);

  auto parent = std::filesystem::temp_directory_path() / "govmesh-etcd-cluster-test";
  std::filesystem::remove_all(parent);
  o = options(1);
  o.dataDir = parent.string();
  o.etcdBinary = "/nonexistent/etcd";
  try {
    LocalCluster c(o);
    FAIL("a cluster started without an etcd binary");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("cannot exec /nonexistent/etcd") != std::string::npos);
  }
  // The failed start removed its own directory, and only that one.
  CHECK(std::filesystem::is_directory(parent));
  CHECK(std::filesystem::is_empty(parent));
  std::filesystem::remove_all(parent);
}

TEST_CASE("TcpProxy forwards HTTP to etcd; a cut hangs like a partition; heal forwards again") {
  LocalCluster cluster(options(1));
  std::string direct = cluster.clientUrl(0);
  TcpProxy proxy("127.0.0.1", portOf(direct));
  std::string via = "http://127.0.0.1:" + std::to_string(proxy.port());
  CHECK_FALSE(proxy.isCut());

  REQUIRE(put(via, "/govmesh/test/proxy", "through"));
  CHECK(getB64(direct, "/govmesh/test/proxy") == base64("through"));
  CHECK(getB64(via, "/govmesh/test/proxy") == base64("through"));

  // A kept-alive connection opened before the cut.
  CURL* kept = curl_easy_init();
  REQUIRE(kept != nullptr);
  REQUIRE(post(via + "/v3/kv/range", {{"key", base64("/govmesh/test/proxy")}}, 3000, kept));

  proxy.cut();
  CHECK(proxy.isCut());
  auto started = std::chrono::steady_clock::now();
  // New connection: accepted, then silence until curl's timeout.
  CHECK_FALSE(post(via + "/v3/kv/range", {{"key", base64("/govmesh/test/proxy")}}, 400));
  // It hung (a timeout), it was not refused at once.
  CHECK(std::chrono::steady_clock::now() - started >= 300ms);
  // The old connection is black-holed too.
  CHECK_FALSE(post(via + "/v3/kv/range", {{"key", base64("/govmesh/test/proxy")}}, 400, kept));
  curl_easy_cleanup(kept);
  // etcd itself is fine.
  REQUIRE(put(direct, "/govmesh/test/proxy", "during-cut"));
  CHECK(getB64(direct, "/govmesh/test/proxy") == base64("during-cut"));
  proxy.cut();  // idempotent
  CHECK(proxy.isCut());

  proxy.heal();
  CHECK_FALSE(proxy.isCut());
  CHECK(getB64(via, "/govmesh/test/proxy") == base64("during-cut"));
  REQUIRE(put(via, "/govmesh/test/proxy", "healed"));
  CHECK(getB64(direct, "/govmesh/test/proxy") == base64("healed"));
}

TEST_CASE("TcpProxy passes a refusal on, refuses an unknown host, and stops promptly") {
  CHECK_THROWS_AS(TcpProxy("no-such-host.invalid", 80), std::runtime_error);
  uint16_t deadPort;
  {
    TcpProxy probe("127.0.0.1", 1);
    deadPort = probe.port();  // free once the probe is gone
  }
  TcpProxy proxy("127.0.0.1", deadPort);
  auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(post("http://127.0.0.1:" + std::to_string(proxy.port()) + "/", nlohmann::json::object(), 2000));
  // The target refused: the client hears it at once (closed), not after its timeout.
  CHECK(std::chrono::steady_clock::now() - started < 1500ms);
  // A cut proxy holding a black-holed connection still goes away at once.
  auto cutOne = std::make_unique<TcpProxy>("127.0.0.1", deadPort);
  cutOne->cut();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(cutOne->port());
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);  // accepted, not refused
  REQUIRE(::send(fd, "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL) == 18);
  started = std::chrono::steady_clock::now();
  cutOne.reset();
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  // ...and closed the connection: the client reads end of stream, or a reset since the proxy
  // closed with the request unread. (The receive timeout only keeps a failure from hanging.)
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char b;
  ssize_t n = ::recv(fd, &b, 1, 0);
  CHECK((n == 0 || (n < 0 && errno == ECONNRESET)));
  ::close(fd);
}
