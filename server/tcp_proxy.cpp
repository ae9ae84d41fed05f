// TcpProxy: one poll() thread forwarding loopback connections, with a partition switch.
#include "server/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace govmesh::net {

namespace {

// Bytes held per direction before the proxy stops reading that side (back-pressure).
constexpr size_t kBufferCap = 64 * 1024;

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

/// One direction of a connection: bytes read from `from` wait in `buf` until `to` takes them.
struct Pipe {
  std::string buf;
  bool srcEof = false;   // `from` sent FIN
  bool shutSent = false; // FIN passed on to `to`
};

struct Conn {
  int client = -1, upstream = -1;
  bool connecting = false;   // upstream connect() in progress
  bool blackholed = false;   // frozen by a cut: never polled again, closed by heal()
  bool dead = false;         // to be closed at the end of this round
  Pipe up, down;             // client -> upstream, upstream -> client
  int clientSlot = -1, upstreamSlot = -1;  // indices into this round's pollfd array
};

/// Reads what `from` has into p.buf (up to the cap). False on a socket error.
bool readInto(int from, Pipe& p) {
  char chunk[16 * 1024];
  while (p.buf.size() < kBufferCap && !p.srcEof) {
    size_t want = std::min(sizeof chunk, kBufferCap - p.buf.size());
    ssize_t n = ::recv(from, chunk, want, 0);
    if (n > 0) {
      p.buf.append(chunk, static_cast<size_t>(n));
    } else if (n == 0) {
      p.srcEof = true;
    } else if (errno == EINTR) {
      continue;
    } else {
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
  }
  return true;
}

/// Writes what p.buf holds to `to` and passes FIN on once the source ended and the buffer is
/// drained. False on a socket error (the peer reset, say).
bool writeFrom(int to, Pipe& p) {
  while (!p.buf.empty()) {
    ssize_t n = ::send(to, p.buf.data(), p.buf.size(), MSG_NOSIGNAL);
    if (n > 0) {
      p.buf.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    } else {
      return false;
    }
  }
  if (p.srcEof && !p.shutSent) {
    ::shutdown(to, SHUT_WR);
    p.shutSent = true;
  }
  return true;
}

}  // namespace

struct TcpProxy::State {
  sockaddr_in target{};
  int listenFd = -1;
  int wakeFd = -1;
  uint16_t port = 0;
  std::atomic<bool> cut{false};

  // Control: the caller bumps `requested` and waits until the thread has applied it.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t requested = 0, applied = 0;
  bool wantCut = false, stop = false, done = false;

  std::vector<Conn> conns;
  bool cutApplied = false;
  std::thread thread;

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeFd, &one, sizeof one);
  }

  void request(bool cutNow) {
    std::unique_lock lock(mu);
    wantCut = cutNow;
    cut = cutNow;
    uint64_t mine = ++requested;
    wake();
    cv.wait(lock, [&] { return applied >= mine || done; });
  }

  /// Applies a pending cut or heal; returns false when the thread must stop.
  bool applyControl() {
    std::lock_guard lock(mu);
    if (stop) return false;
    if (wantCut && !cutApplied) {
      for (auto& c : conns) c.blackholed = true;
      cutApplied = true;
    } else if (!wantCut && cutApplied) {
      for (auto& c : conns)
        if (c.blackholed) c.dead = true;
      cutApplied = false;
    }
    applied = requested;
    cv.notify_all();
    return true;
  }

  void acceptAll() {
    for (;;) {
      int fd = ::accept4(listenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: the next round tries again
      Conn c;
      c.client = fd;
      if (cutApplied) {
        // Accepted, so the client's connect succeeds, and then nothing: a partition.
        c.blackholed = true;
        conns.push_back(std::move(c));
        continue;
      }
      c.upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.upstream < 0) {
        closeFd(c.client);
        continue;
      }
      if (::connect(c.upstream, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
        if (errno != EINPROGRESS) {
          closeFd(c.upstream);
          closeFd(c.client);  // the target refuses: so does the proxy
          continue;
        }
        c.connecting = true;
      }
      conns.push_back(std::move(c));
    }
  }

  void serviceConn(Conn& c, const std::vector<pollfd>& fds) {
    short cre = c.clientSlot >= 0 ? fds[c.clientSlot].revents : 0;
    short ure = c.upstreamSlot >= 0 ? fds[c.upstreamSlot].revents : 0;
    if ((cre | ure) & POLLNVAL) {
      c.dead = true;
      return;
    }
    if (c.connecting) {
      if (ure == 0) return;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        c.dead = true;
        return;
      }
      c.connecting = false;
      return;  // polled for data from the next round on
    }
    bool ok = true;
    if (cre != 0) ok = ok && readInto(c.client, c.up);
    if (ure != 0) ok = ok && readInto(c.upstream, c.down);
    ok = ok && writeFrom(c.upstream, c.up) && writeFrom(c.client, c.down);
    if (!ok || (c.up.shutSent && c.down.shutSent)) c.dead = true;
  }

  void run() {
    std::vector<pollfd> fds;
    while (applyControl()) {
      fds.clear();
      fds.push_back({wakeFd, POLLIN, 0});
      fds.push_back({listenFd, POLLIN, 0});
      for (auto& c : conns) {
        c.clientSlot = c.upstreamSlot = -1;
        if (c.blackholed || c.dead) continue;
        short ce = 0, ue = 0;
        if (c.connecting) {
          ue = POLLOUT;
        } else {
          if (!c.up.srcEof && c.up.buf.size() < kBufferCap) ce |= POLLIN;
          if (!c.down.srcEof && c.down.buf.size() < kBufferCap) ue |= POLLIN;
          if (!c.up.buf.empty()) ue |= POLLOUT;
          if (!c.down.buf.empty()) ce |= POLLOUT;
        }
        // A socket wanted for nothing is left out, so that its POLLHUP cannot spin the loop.
        if (ce != 0) {
          c.clientSlot = static_cast<int>(fds.size());
          fds.push_back({c.client, ce, 0});
        }
        if (ue != 0) {
          c.upstreamSlot = static_cast<int>(fds.size());
          fds.push_back({c.upstream, ue, 0});
        }
      }
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
      if (fds[0].revents & POLLIN) {
        uint64_t v;
        [[maybe_unused]] ssize_t n = ::read(wakeFd, &v, sizeof v);
      }
      size_t polled = conns.size();  // connections accepted below were not in this poll
      if (fds[1].revents & POLLIN) acceptAll();
      for (size_t i = 0; i < polled; ++i)
        if (!conns[i].blackholed && !conns[i].dead) serviceConn(conns[i], fds);
      std::erase_if(conns, [](Conn& c) {
        if (!c.dead) return false;
        closeFd(c.client);
        closeFd(c.upstream);
        return true;
      });
    }
  }
};

TcpProxy::TcpProxy(std::string targetHost, uint16_t targetPort) : s_(std::make_unique<State>()) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(targetHost.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr)
    throw std::runtime_error("tcp proxy: cannot resolve target '" + targetHost + "': " + ::gai_strerror(rc));
  s_->target = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  s_->target.sin_port = htons(targetPort);
  ::freeaddrinfo(res);

  s_->listenFd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (s_->listenFd < 0 || ::bind(s_->listenFd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(s_->listenFd, 128) != 0 ||
      ::getsockname(s_->listenFd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    closeFd(s_->listenFd);
    throw std::runtime_error(std::string("tcp proxy: cannot listen on 127.0.0.1: ") + std::strerror(e));
  }
  s_->port = ntohs(a.sin_port);
  s_->wakeFd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s_->wakeFd < 0) {
    int e = errno;
    closeFd(s_->listenFd);
    throw std::runtime_error(std::string("tcp proxy: eventfd: ") + std::strerror(e));
  }
  State* s = s_.get();
  s_->thread = std::thread([s] {
    try {
      s->run();
    } catch (...) {
      // Out of memory in the loop: stop forwarding (which reads as a partition) rather than
      // let the exception end the process.
    }
    std::lock_guard lock(s->mu);
    s->done = true;
    s->cv.notify_all();
  });
}

TcpProxy::~TcpProxy() {
  {
    std::lock_guard lock(s_->mu);
    s_->stop = true;
  }
  s_->wake();
  s_->thread.join();
  for (auto& c : s_->conns) {
    closeFd(c.client);
    closeFd(c.upstream);
  }
  closeFd(s_->listenFd);
  closeFd(s_->wakeFd);
}

uint16_t TcpProxy::port() const { return s_->port; }
void TcpProxy::cut() { s_->request(true); }
void TcpProxy::heal() { s_->request(false); }
bool TcpProxy::isCut() const { return s_->cut; }

}  // namespace govmesh::net
