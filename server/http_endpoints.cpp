// The HTTP side of DecisionService (kj-http, on the event-loop thread): GET /metrics (Prometheus
// text format 0.0.4), /healthz (200 while the loop runs) and /readyz (200 only with a fresh
// verified bundle, else 503 with the reason). Anything else is 404; methods other than GET 405.
#include <string>
#include <utility>

#include <kj/compat/http.h>

#include "server/service_impl.h"

namespace govmesh::server {

namespace {

class HttpEndpoints final : public kj::HttpService {
 public:
  HttpEndpoints(DecisionService::Impl& impl, const kj::HttpHeaderTable& headers) : impl_(impl), headers_(headers) {}

  kj::Promise<void> request(kj::HttpMethod method, kj::StringPtr url, const kj::HttpHeaders& headers,
                            kj::AsyncInputStream& requestBody, Response& response) override {
    (void)headers, (void)requestBody;
    std::string_view path(url.cStr(), url.size());
    if (const size_t q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (method != kj::HttpMethod::GET) return send(response, 405, "Method Not Allowed", "only GET is served\n");
    if (path == "/metrics") {
      // Gauges that describe state (queue depth, bundle revision and deadline) are read now,
      // at scrape time, rather than kept current on the hot path.
      impl_.refreshGauges();
      return send(response, 200, "OK", impl_.registry.renderPrometheusText(), "text/plain; version=0.0.4; charset=utf-8");
    }
    if (path == "/healthz") return send(response, 200, "OK", "ok\n");
    if (path == "/readyz") {
      auto [ready, why] = impl_.readiness();
      return ready ? send(response, 200, "OK", why + "\n") : send(response, 503, "Service Unavailable", why + "\n");
    }
    return send(response, 404, "Not Found", "not found: " + std::string(path) + "\n");
  }

 private:
  kj::Promise<void> send(Response& response, unsigned status, kj::StringPtr statusText, std::string body,
                         kj::StringPtr contentType = "text/plain; charset=utf-8") {
    kj::HttpHeaders h(headers_);
    h.set(kj::HttpHeaderId::CONTENT_TYPE, contentType);
    auto text = kj::heapString(body.data(), body.size());
    auto stream = response.send(status, statusText, h, static_cast<uint64_t>(text.size()));
    auto written = stream->write(text.begin(), text.size());
    return written.attach(kj::mv(stream), kj::mv(text));
  }

  DecisionService::Impl& impl_;
  const kj::HttpHeaderTable& headers_;
};

}  // namespace

kj::Own<kj::HttpService> makeHttpEndpoints(DecisionService::Impl& impl, const kj::HttpHeaderTable& headers) {
  return kj::heap<HttpEndpoints>(impl, headers);
}

}  // namespace govmesh::server
