// The Authorizer interface (server/govmesh.capnp) of DecisionService, on the event-loop thread.
// The loop only decodes and encodes: authorize() hands the decoded batch to the pipeline and
// waits for a cross-thread fulfiller that a worker fulfils; loadBundle() hands the bytes to the
// control thread the same way.
// GCC 12 reports -Wmaybe-uninitialized inside kj's ExceptionOr<T> for the cross-thread promise
// types below (a known false positive of kj::Maybe's union); silenced here, where it is known.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <kj/async.h>

#include "server/request_capnp.h"
#include "server/service_impl.h"

namespace govmesh::server {

using engine::Decision;
using engine::DenyCode;

namespace {

class AuthorizerServer final : public wire::Authorizer::Server {
 public:
  explicit AuthorizerServer(DecisionService::Impl& impl) : impl_(impl) {}

 protected:
  kj::Promise<void> authorize(AuthorizeContext context) override { return impl_.authorize(context); }
  kj::Promise<void> status(StatusContext context) override {
    impl_.fillStatus(context.getResults().initStatus());
    return kj::READY_NOW;
  }
  kj::Promise<void> loadBundle(LoadBundleContext context) override { return impl_.loadBundle(context); }

 private:
  DecisionService::Impl& impl_;
};

wire::LoadRefusal wireRefusal(engine::LoadRefusal r) {
  switch (r) {
    case engine::LoadRefusal::kNone: return wire::LoadRefusal::NONE;
    case engine::LoadRefusal::kNotABundle:
    case engine::LoadRefusal::kUnreadable:
    case engine::LoadRefusal::kMalformedContent: return wire::LoadRefusal::MALFORMED;
    case engine::LoadRefusal::kBadDigest: return wire::LoadRefusal::DIGEST_MISMATCH;
    case engine::LoadRefusal::kUntrustedSigner: return wire::LoadRefusal::UNTRUSTED_SIGNER;
    case engine::LoadRefusal::kBadSignature: return wire::LoadRefusal::BAD_SIGNATURE;
    case engine::LoadRefusal::kExpired: return wire::LoadRefusal::STALE;
    case engine::LoadRefusal::kNotNewer: return wire::LoadRefusal::NOT_NEWER;
  }
  return wire::LoadRefusal::MALFORMED;
}

// What the control thread sends back for one loadBundle call.
struct LoadReply {
  engine::LoadOutcome outcome;
  bool unavailable = false;  // the node was shutting down: not even looked at
  uint64_t activeRevision = 0;
};

// Counts a call as in flight on the loop until its promise is done (shutdown() waits for zero).
kj::Promise<void> tracked(LoopState& st, kj::Promise<void> p) {
  ++st.inflight;
  return p.attach(kj::defer([&st] { --st.inflight; }));
}

}  // namespace

kj::Own<wire::Authorizer::Server> makeAuthorizerServer(DecisionService::Impl& impl) {
  return kj::heap<AuthorizerServer>(impl);
}

kj::Promise<void> DecisionService::Impl::authorize(capnp::CallContext<wire::Authorizer::AuthorizeParams, wire::Authorizer::AuthorizeResults> context) {
  auto list = context.getParams().getRequests();
  const uint32_t n = list.size();
  // Interned references resolve against the bundle active now; a later swap cannot make a
  // request mean something else, because the signature covers the uid text (govmesh.capnp).
  const std::shared_ptr<const engine::Bundle> intern = pipeline->bundle();
  std::vector<DecodedRequest> decoded;
  decodeRequests(list, intern.get(), decoded, /*emptySignatureAsZero=*/true);

  std::vector<engine::SignedRequest> requests(n);
  std::vector<DenyCode> codes(n, DenyCode::kNone);
  std::vector<std::pair<uint32_t, std::string>> reasons;  // the decoder's words for MALFORMED ones
  if (decoded.size() != n) {
    std::fill(codes.begin(), codes.end(), DenyCode::kMalformed);
    for (uint32_t i = 0; i < n; ++i) reasons.emplace_back(i, "request list could not be read");
  } else {
    for (uint32_t i = 0; i < n; ++i) {
      if (decoded[i].ok()) {
        requests[i] = std::move(decoded[i].request);
      } else {
        codes[i] = decoded[i].code;
        reasons.emplace_back(i, std::move(decoded[i].reason));
      }
    }
  }
  decoded.clear();
  context.releaseParams();

  auto paf = kj::newPromiseAndCrossThreadFulfiller<std::vector<Decision>>();
  // std::function must be copyable; the fulfiller is not, so it is shared.
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<std::vector<Decision>>>>(kj::mv(paf.fulfiller));
  pipeline->submit(std::move(requests), std::move(codes),
                   [fulfiller](std::vector<Decision> ds) { (*fulfiller)->fulfill(kj::mv(ds)); });

  auto reply = paf.promise.then([context, n, reasons = std::move(reasons)](std::vector<Decision>&& ds) mutable {
    if (ds.size() != n) {
      // The pipeline answers every request; were it not to, nobody is allowed anything.
      ds.assign(n, engine::denyDecision(DenyCode::kBackendFault));
    }
    for (auto& [i, why] : reasons) ds[i].errors.push_back(std::move(why));
    auto out = context.getResults().initDecisions(n);
    (void)encodeDecisions(ds, out);  // sizes agree by construction
  });
  return tracked(*loop, kj::mv(reply));
}

void DecisionService::Impl::fillStatus(wire::Status::Builder s) {
  const auto current = bundles->current();
  s.setHasBundle(current != nullptr);
  if (current) {
    s.setBundleRevision(current->bundle.revision);
    s.setBundleDigest(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(current->digest.data()), current->digest.size()));
    s.setBundleDeadlineMs(current->bundle.freshUntilMs);
    s.setSecondsToDeadline(bundles->secondsToDeadline(bundles->nowMs()).value_or(0.0));
  }
  s.setBackend(pipeline->backendName());
  s.setQueueDepth(pipeline->queueDepth());
  // The pipeline counts a batch before its replies go out, so a client that got its decisions
  // sees them here; per-code counts come from the observer, which may lag by a batch.
  const engine::PipelineCounters c = pipeline->counters();
  s.setDecisions(c.allowed + c.denied);
  s.setAllowed(c.allowed);
  size_t nonzero = 0;
  for (DenyCode code : engine::kAllDenyCodes)
    if (observer.denied(code)) ++nonzero;
  auto list = s.initDeniedByCode(static_cast<unsigned>(nonzero));
  size_t k = 0;
  for (DenyCode code : engine::kAllDenyCodes) {
    if (!observer.denied(code) || k == nonzero) continue;
    list[k].setCode(static_cast<uint8_t>(code));
    list[k].setCount(observer.denied(code));
    ++k;
  }
  s.setNodeId(options.nodeId);
  s.setSignatureBackend(pipeline->admission().options().ed25519Backend);
}

kj::Promise<void> DecisionService::Impl::loadBundle(capnp::CallContext<wire::Authorizer::LoadBundleParams, wire::Authorizer::LoadBundleResults> context) {
  auto data = context.getParams().getBundle();
  auto bytes = std::make_shared<const std::string>(reinterpret_cast<const char*>(data.begin()), data.size());
  context.releaseParams();
  auto paf = kj::newPromiseAndCrossThreadFulfiller<LoadReply>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<LoadReply>>>(kj::mv(paf.fulfiller));
  // Verifying and compiling a bundle is heavy: the control thread does it, never the loop.
  post([this, bytes, fulfiller] {
    LoadReply r;
    if (draining.load()) {
      r.unavailable = true;
      r.outcome.message = "the node is shutting down";
    } else if (options.syncLease) {
      // A mesh node enforces only what etcd names: a bundle pushed here would be enforced
      // without ever being published (and the lease would vouch for it).
      r.unavailable = true;
      r.outcome.message = "this node takes its bundles from the mesh (etcd); publish with `govmesh publish`";
    } else {
      r.outcome = offer(*bytes, "rpc:loadBundle");
    }
    r.activeRevision = bundles->revision();
    (*fulfiller)->fulfill(kj::mv(r));
  });
  auto reply = paf.promise.then([context](LoadReply&& r) mutable {
    auto res = context.getResults().initResult();
    res.setOk(r.outcome.accepted && !r.unavailable);
    res.setRevision(r.activeRevision);
    if (r.unavailable) {
      res.setRefusal(wire::LoadRefusal::UNAVAILABLE);
      res.setError(r.outcome.message);
    } else if (!r.outcome.accepted) {
      res.setRefusal(wireRefusal(r.outcome.reason));
      res.setError(r.outcome.message);
    }
  });
  return tracked(*loop, kj::mv(reply));
}

}  // namespace govmesh::server
