// A plain-socket HTTP/1.1 client for tests of the service's HTTP endpoints (/metrics, /readyz,
// the console's API): one request per connection, the reply read up to its Content-Length,
// header names lower-cased. Test support only (it REQUIREs).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cctype>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace govmesh::testing {

/// A reply: status, headers (lower-case names), body.
struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json js() const { return nlohmann::json::parse(body); }
};

/// Sends one request to 127.0.0.1:`port` and reads the reply.
inline HttpReply http(uint16_t port, const std::string& method, const std::string& target, const std::string& body = {},
               std::vector<std::string> extraHeaders = {}, const std::string& host = "127.0.0.1") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  for (const std::string& h : extraHeaders) req += h + "\r\n";
  if (method == "POST") req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  REQUIRE(::send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
  // kj's server keeps the connection open after the reply (it does not act on the request's
  // `Connection: close`), so the reply ends where its Content-Length says.
  std::string in;
  char buf[65536];
  size_t headerEnd = std::string::npos, want = std::string::npos;
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (headerEnd == std::string::npos && (headerEnd = in.find("\r\n\r\n")) != std::string::npos) {
      const auto cl = in.find("Content-Length: ");
      if (cl != std::string::npos && cl < headerEnd) want = headerEnd + 4 + std::stoul(in.substr(cl + 16));
    }
    if (want != std::string::npos && in.size() >= want) break;
  }
  ::close(fd);
  HttpReply r;
  REQUIRE(in.rfind("HTTP/1.1 ", 0) == 0);
  r.status = std::stoi(in.substr(9, 3));
  const size_t end = in.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  size_t line = in.find("\r\n") + 2;
  while (line < end) {
    const size_t next = in.find("\r\n", line);
    const std::string h = in.substr(line, next - line);
    const size_t colon = h.find(':');
    if (colon != std::string::npos) {
      std::string name = h.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = h.substr(h.find_first_not_of(' ', colon + 1));
    }
    line = next + 2;
  }
  r.body = in.substr(end + 4);
  return r;
}

/// GET `target`.
inline HttpReply httpGet(uint16_t port, const std::string& target) { return http(port, "GET", target); }

}  // namespace govmesh::testing
