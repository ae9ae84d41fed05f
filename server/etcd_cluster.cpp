// LocalCluster: etcd members as child processes (see etcd_cluster.h).
#include "server/etcd_cluster.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace govmesh::etcd {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStartTimeout = std::chrono::seconds(15);
constexpr auto kPollInterval = std::chrono::milliseconds(50);

size_t appendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

/// POSTs a JSON body and returns the response body of a 200 answer; nullopt on any failure
/// (a dead or hung member is an expected state here, not an error).
std::optional<std::string> postJson(const std::string& url, const std::string& body,
                                    long timeoutMs) {
  static std::once_flag curlInit;
  std::call_once(curlInit, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* c = curl_easy_init();
  if (c == nullptr) return std::nullopt;
  std::string out;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeoutMs);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we are threaded
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");  // loopback; an http_proxy variable must not apply
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK || status != 200) return std::nullopt;
  return out;
}

/// What /v3/maintenance/status says about one member: its own id and its leader's (decimal
/// strings, as the gateway writes uint64s; "0" or empty: no leader known).
struct MemberStatus {
  std::string memberId;
  std::string leaderId;
};

std::optional<MemberStatus> memberStatus(const std::string& clientUrl, long timeoutMs = 500) {
  auto body = postJson(clientUrl + "/v3/maintenance/status", "{}", timeoutMs);
  if (!body) return std::nullopt;
  auto j = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("header") || !j["header"].is_object()) return std::nullopt;
  MemberStatus s;
  s.memberId = j["header"].value("member_id", "");
  s.leaderId = j.value("leader", "");
  if (s.memberId.empty()) return std::nullopt;
  return s;
}

bool hasLeader(const MemberStatus& s) { return !s.leaderId.empty() && s.leaderId != "0"; }

/// Binds 127.0.0.1:0 and returns the bound socket and its port. The socket is held until every
/// port of the cluster is chosen, so that no two members are handed the same one.
std::pair<int, uint16_t> reservePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("etcd cluster: socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    ::close(fd);
    throw std::runtime_error(std::string("etcd cluster: cannot reserve a port: ") + std::strerror(e));
  }
  return {fd, ntohs(a.sin_port)};
}

std::string uniqueToken() {
  static std::atomic<unsigned> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch().count();
  return "govmesh-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(now);
}

std::string loopbackUrl(uint16_t port) { return "http://127.0.0.1:" + std::to_string(port); }

/// Closes every descriptor from 3 up in a forked child (async-signal-safe: no allocation).
void closeInheritedFds() {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
  rlimit rl{};
  long maxFd = (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                   ? static_cast<long>(rl.rlim_cur)
                   : 65536;
  if (maxFd > (1L << 20)) maxFd = 1L << 20;
  for (long fd = 3; fd < maxFd; ++fd) ::close(static_cast<int>(fd));
}

void writeAll(int fd, const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

struct LocalCluster::Member {
  std::string name, dir, logPath;
  uint16_t clientPort = 0, peerPort = 0;
  int pid = 0;  // 0: not running
};

LocalCluster::LocalCluster(ClusterOptions o) : opts_(std::move(o)) {
  if (opts_.members == 0) throw std::invalid_argument("etcd cluster: members must be at least 1");
  if (opts_.heartbeatMs <= 0 || opts_.electionMs < 5 * opts_.heartbeatMs)
    throw std::invalid_argument("etcd cluster: electionMs must be at least 5 x heartbeatMs (> 0)");
  if (opts_.progressNotifyMs <= 0 || opts_.maxRequestBytes < 0)
    throw std::invalid_argument("etcd cluster: progressNotifyMs must be > 0 and maxRequestBytes >= 0");

  std::string parent = opts_.dataDir;
  if (parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    parent = (t != nullptr && *t != '\0') ? t : "/tmp";
  }
  std::error_code ec;
  fs::create_directories(parent, ec);
  std::string tmpl = parent + "/govmesh-etcd-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("etcd cluster: cannot create a directory under " + parent + ": " +
                             std::strerror(errno));
  dir_ = tmpl;
  token_ = uniqueToken();

  // Choose every port while holding them all, then release them just before the members bind.
  // Another process could take one in that window; the member then fails to start and the
  // error (with etcd's "address already in use") says so.
  std::vector<int> held;
  try {
    for (size_t i = 0; i < opts_.members; ++i) {
      auto m = std::make_unique<Member>();
      m->name = "m" + std::to_string(i);
      m->dir = dir_ + "/" + m->name + ".etcd";
      m->logPath = dir_ + "/" + m->name + ".log";
      auto [cfd, cport] = reservePort();
      held.push_back(cfd);
      auto [pfd, pport] = reservePort();
      held.push_back(pfd);
      m->clientPort = cport;
      m->peerPort = pport;
      members_.push_back(std::move(m));
    }
    for (int fd : held) ::close(fd);
    held.clear();
    for (size_t i = 0; i < members_.size(); ++i) startMember(i);

    // Up when every member answers and all of them follow one leader that is one of them.
    auto deadline = Clock::now() + kStartTimeout;
    for (;;) {
      std::vector<std::optional<MemberStatus>> st(members_.size());
      for (size_t i = 0; i < members_.size(); ++i) {
        if (!alive(i))
          throw std::runtime_error("etcd cluster: member " + members_[i]->name +
                                   " exited while starting; its log ends:\n" + logTail(i));
        st[i] = memberStatus(clientUrl(i));
      }
      bool up = true;
      for (auto& s : st) up = up && s && hasLeader(*s) && s->leaderId == st[0]->leaderId;
      if (up) {
        bool leaderIsMember = false;
        for (auto& s : st) leaderIsMember = leaderIsMember || s->memberId == st[0]->leaderId;
        if (leaderIsMember) break;
      }
      if (Clock::now() >= deadline) {
        size_t worst = 0;
        for (size_t i = 0; i < st.size(); ++i)
          if (!st[i] || !hasLeader(*st[i])) worst = i;
        throw std::runtime_error("etcd cluster: no leader elected with every member answering "
                                 "within 15 s; member " + members_[worst]->name +
                                 "'s log ends:\n" + logTail(worst));
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  } catch (...) {
    for (int fd : held) ::close(fd);
    stopAll();
    fs::remove_all(dir_, ec);
    throw;
  }
}

LocalCluster::~LocalCluster() {
  stopAll();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void LocalCluster::stopAll() noexcept {
  std::lock_guard lock(mu_);
  for (auto& m : members_) {
    if (m->pid > 0) {
      ::kill(m->pid, SIGKILL);
      while (::waitpid(m->pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      m->pid = 0;
    }
  }
}

void LocalCluster::checkIndex(size_t i) const {
  if (i >= members_.size())
    throw std::out_of_range("etcd cluster: member " + std::to_string(i) + " of " +
                            std::to_string(members_.size()));
}

void LocalCluster::startMember(size_t i) {
  Member& m = *members_[i];
  std::string initialCluster;
  for (auto& p : members_) {
    if (!initialCluster.empty()) initialCluster += ",";
    initialCluster += p->name + "=" + loopbackUrl(p->peerPort);
  }
  // On a restart the data directory holds the membership, and etcd ignores the --initial-*
  // flags; passing the same ones keeps a single code path.
  std::vector<std::string> args = {
      opts_.etcdBinary,
      "--name", m.name,
      "--data-dir", m.dir,
      "--listen-client-urls", loopbackUrl(m.clientPort),
      "--advertise-client-urls", loopbackUrl(m.clientPort),
      "--listen-peer-urls", loopbackUrl(m.peerPort),
      "--initial-advertise-peer-urls", loopbackUrl(m.peerPort),
      "--initial-cluster", initialCluster,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", token_,
      "--heartbeat-interval", std::to_string(opts_.heartbeatMs),
      "--election-timeout", std::to_string(opts_.electionMs),
      "--experimental-watch-progress-notify-interval", std::to_string(opts_.progressNotifyMs) + "ms",
      "--logger", "zap",
  };
  if (opts_.maxRequestBytes > 0) {
    args.push_back("--max-request-bytes");
    args.push_back(std::to_string(opts_.maxRequestBytes));
  }
  // Everything the child touches is prepared here: after fork() it may only make
  // async-signal-safe calls (the parent may have other threads holding malloc's locks).
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // ETCD_* variables are read as flags and would clash with ours.
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    if (std::strncmp(*e, "ETCD_", 5) != 0) envp.push_back(*e);
  envp.push_back(nullptr);
  std::string execFailed = "govmesh: cannot exec " + opts_.etcdBinary + "\n";

  int logFd = ::open(m.logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0)
    throw std::runtime_error("etcd cluster: cannot open " + m.logPath + ": " + std::strerror(errno));
  pid_t parent = ::getpid();
  std::lock_guard lock(mu_);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Die with the parent (its spawning thread, strictly) even if it crashes; and if it died
    // before prctl took effect, go now.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int nullFd = ::open("/dev/null", O_RDONLY);
    if (nullFd >= 0) ::dup2(nullFd, 0);
    ::dup2(logFd, 1);
    ::dup2(logFd, 2);
    closeInheritedFds();
    ::execvpe(argv[0], argv.data(), envp.data());
    writeAll(2, execFailed.c_str());
    ::_exit(127);
  }
  int forkErr = errno;
  ::close(logFd);
  if (pid < 0)
    throw std::runtime_error("etcd cluster: fork: " + std::string(std::strerror(forkErr)));
  m.pid = pid;
}

size_t LocalCluster::size() const { return members_.size(); }

std::vector<std::string> LocalCluster::clientUrls() const {
  std::vector<std::string> out;
  for (auto& m : members_) out.push_back(loopbackUrl(m->clientPort));
  return out;
}

std::string LocalCluster::clientUrl(size_t i) const {
  checkIndex(i);
  return loopbackUrl(members_[i]->clientPort);
}

std::string LocalCluster::peerUrl(size_t i) const {
  checkIndex(i);
  return loopbackUrl(members_[i]->peerPort);
}

std::string LocalCluster::dataDir() const { return dir_; }

int LocalCluster::pid(size_t i) const {
  checkIndex(i);
  if (!alive(i)) return 0;
  std::lock_guard lock(mu_);
  return members_[i]->pid;
}

bool LocalCluster::alive(size_t i) const {
  checkIndex(i);
  std::lock_guard lock(mu_);
  Member& m = *members_[i];
  if (m.pid <= 0) return false;
  if (::waitpid(m.pid, nullptr, WNOHANG) == m.pid) {
    m.pid = 0;
    return false;
  }
  return true;
}

void LocalCluster::kill(size_t i) {
  checkIndex(i);
  std::lock_guard lock(mu_);
  Member& m = *members_[i];
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  while (::waitpid(m.pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  m.pid = 0;
}

void LocalCluster::restart(size_t i) {
  checkIndex(i);
  if (alive(i)) return;
  startMember(i);
  try {
    waitAnswering(i, Clock::now() + kStartTimeout);
  } catch (...) {
    kill(i);
    throw;
  }
}

void LocalCluster::waitAnswering(size_t i, Clock::time_point deadline) const {
  for (;;) {
    if (!alive(i))
      throw std::runtime_error("etcd cluster: member " + members_[i]->name +
                               " exited while starting; its log ends:\n" + logTail(i));
    auto s = memberStatus(clientUrl(i));
    if (s && hasLeader(*s)) return;
    if (Clock::now() >= deadline)
      throw std::runtime_error("etcd cluster: member " + members_[i]->name +
                               " did not rejoin within 15 s; its log ends:\n" + logTail(i));
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<size_t> LocalCluster::leader() const {
  for (size_t i = 0; i < members_.size(); ++i) {
    if (!alive(i)) continue;
    auto s = memberStatus(clientUrl(i));
    if (s && s->leaderId == s->memberId) return i;
  }
  return std::nullopt;
}

std::optional<size_t> LocalCluster::waitForLeader(std::chrono::milliseconds timeout,
                                                  std::optional<size_t> notMember) const {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto l = leader();
    if (l && l != notMember) return l;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string LocalCluster::logTail(size_t i, size_t bytes) const {
  checkIndex(i);
  std::ifstream in(members_[i]->logPath, std::ios::binary);
  if (!in) return "(no log at " + members_[i]->logPath + ")";
  in.seekg(0, std::ios::end);
  auto size = static_cast<size_t>(in.tellg());
  size_t from = size > bytes ? size - bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

}  // namespace govmesh::etcd
