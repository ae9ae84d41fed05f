// A loopback TCP forwarder that can be cut, to stage network partitions in tests and in
// `govmesh mesh-demo`: a client talks to etcd (or any TCP service) through the proxy's port,
// and cut() makes that path behave like a partitioned network, not like a dead server.
//
// A cut hangs, it does not refuse: connections stay open and new ones are still accepted, but
// nothing is forwarded in either direction (bytes sit in the kernel's socket buffers), so the
// client sees what it would see behind a broken switch: timeouts. heal() forwards again for
// new connections and closes the ones that were black-holed, as a real partition's stale
// connections end up reset by keepalives or retransmission timeouts.
//
// One thread per proxy runs every connection with poll(); cut() and heal() take effect before
// they return (no byte is forwarded after cut() returns).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace govmesh::net {

/// A TCP forwarder from 127.0.0.1:port() to a target, with a partition switch.
class TcpProxy {
 public:
  /// Listens on 127.0.0.1:0 and forwards every accepted connection to targetHost:targetPort
  /// (an IPv4 address or a name resolved once, here). Throws std::runtime_error when the
  /// target cannot be resolved or the listening socket cannot be made.
  TcpProxy(std::string targetHost, uint16_t targetPort);
  /// Stops the forwarding thread promptly and closes every socket.
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  /// The loopback port that clients connect to.
  uint16_t port() const;
  /// Black-holes the path: open connections stop forwarding (their sockets stay open, their
  /// data is held) and new connections are accepted but never forwarded. Idempotent.
  void cut();
  /// Forwards again for new connections; the connections black-holed by the cut are closed.
  /// Idempotent.
  void heal();
  /// Whether the path is cut now.
  bool isCut() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace govmesh::net
