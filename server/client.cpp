// DecisionClient: a two-party Cap'n Proto RPC connection driven on the caller's thread.
#include "server/client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <exception>

#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "server/govmesh.capnp.h"
#include "server/request_capnp.h"

namespace govmesh::server {
namespace {

std::string describe(const kj::Exception& e) { return std::string(e.getDescription().cStr()); }

// Reads a reply: a decision for each of `expected` requests, or an error. decodeDecision never
// throws and fails closed; the list access itself may throw (a reply over the reader limits),
// which the caller's catch turns into an error.
CallResult readDecisions(capnp::List<wire::Decision>::Reader list, size_t expected) {
  CallResult out;
  if (list.size() != expected) {
    out.error = "reply carries " + std::to_string(list.size()) + " decisions for " + std::to_string(expected) +
                " requests";
    return out;
  }
  out.decisions.reserve(expected);
  for (auto d : list) out.decisions.push_back(decodeDecision(d));
  return out;
}

}  // namespace

struct DecisionClient::Impl : public kj::TaskSet::ErrorHandler {
  // Declaration order is destruction order reversed: calls and the capability go before the
  // RPC system, which goes before the stream it writes to, which goes before the event loop.
  std::string address;
  EncodeOptions options;
  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyVatNetwork> network;
  kj::Own<capnp::RpcSystem<capnp::rpc::twoparty::VatId>> rpc;
  wire::Authorizer::Client cap{nullptr};
  kj::TaskSet tasks{*this};
  size_t inFlight = 0;
  size_t completed = 0;  // calls completed since the last waitAny() returned
  kj::Own<kj::PromiseFulfiller<void>> wake;
  std::exception_ptr callbackError;  // a callback's exception, rethrown from poll/waitAny/drain

  Impl(std::string addr, EncodeOptions opts, kj::AsyncIoContext ctx)
      : address(std::move(addr)), options(opts), io(kj::mv(ctx)) {}

  // Every call's promise catches its own errors, so this sees only bugs in the chain itself.
  void taskFailed(kj::Exception&& e) override {
    if (!callbackError) callbackError = std::make_exception_ptr(ClientError("client task failed: " + describe(e)));
  }

  void rethrowCallbackError() {
    if (callbackError) {
      auto e = callbackError;
      callbackError = nullptr;
      std::rethrow_exception(e);
    }
  }

  kj::Promise<CallResult> send(const engine::SignedRequest* first, size_t count) {
    auto req = cap.authorizeRequest();
    auto list = req.initRequests(static_cast<unsigned>(count));
    for (size_t i = 0; i < count; ++i) {
      engine::ShapeCheck check = encodeRequest(first[i], list[i]);
      if (!check.ok()) throw ClientError("request " + std::to_string(i) + " cannot be encoded: " + check.reason);
      if (options.omitSignature) list[i].initSignature(0);
    }
    return req.send().then(
        [count](capnp::Response<wire::Authorizer::AuthorizeResults>&& resp) {
          return readDecisions(resp.getDecisions(), count);
        },
        [](kj::Exception&& e) {
          CallResult r;
          r.error = "authorize call failed: " + describe(e);
          return r;
        });
  }
};

std::unique_ptr<DecisionClient> DecisionClient::connect(const std::string& address, EncodeOptions options) {
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>(address, options, kj::setupAsyncIo());
  } catch (const kj::Exception& e) {
    throw ClientError("cannot start a client event loop on this thread (one client per thread): " + describe(e));
  }
  try {
    auto& ws = impl->io.waitScope;
    auto addr = impl->io.provider->getNetwork().parseAddress(address).wait(ws);
    impl->stream = addr->connect().wait(ws);
    int one = 1;
    try {
      impl->stream->setsockopt(IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } catch (const kj::Exception&) {
      // Not a TCP stream (a unix socket): Nagle does not apply.
    }
    impl->network = kj::heap<capnp::TwoPartyVatNetwork>(*impl->stream, capnp::rpc::twoparty::Side::CLIENT,
                                                        wireReaderOptions());
    impl->rpc = kj::heap(capnp::makeRpcClient(*impl->network));
    capnp::MallocMessageBuilder vatIdMessage(8);
    auto vatId = vatIdMessage.initRoot<capnp::rpc::twoparty::VatId>();
    vatId.setSide(capnp::rpc::twoparty::Side::SERVER);
    impl->cap = impl->rpc->bootstrap(vatId).castAs<wire::Authorizer>();
  } catch (const kj::Exception& e) {
    throw ClientError("cannot connect to " + address + ": " + describe(e));
  }
  return std::unique_ptr<DecisionClient>(new DecisionClient(std::move(impl)));
}

DecisionClient::DecisionClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DecisionClient::~DecisionClient() = default;

const std::string& DecisionClient::address() const { return impl_->address; }

std::vector<engine::Decision> DecisionClient::authorize(const std::vector<engine::SignedRequest>& requests) {
  CallResult r;
  try {
    r = impl_->send(requests.data(), requests.size()).wait(impl_->io.waitScope);
  } catch (const kj::Exception& e) {
    throw ClientError("authorize call failed: " + describe(e));
  }
  if (!r.ok()) throw ClientError(r.error);
  return std::move(r.decisions);
}

void DecisionClient::authorizeAsync(const std::vector<engine::SignedRequest>& requests, Callback done) {
  authorizeAsync(requests.data(), requests.size(), std::move(done));
}

void DecisionClient::authorizeAsync(const engine::SignedRequest* first, size_t count, Callback done) {
  Impl* impl = impl_.get();
  auto promise = impl->send(first, count);
  ++impl->inFlight;
  impl->tasks.add(promise.then([impl, done = std::move(done)](CallResult&& r) mutable {
    --impl->inFlight;
    ++impl->completed;
    try {
      done(std::move(r));
    } catch (...) {
      if (!impl->callbackError) impl->callbackError = std::current_exception();
    }
    if (impl->wake) {
      impl->wake->fulfill();
      impl->wake = nullptr;
    }
  }));
}

size_t DecisionClient::inFlight() const { return impl_->inFlight; }

void DecisionClient::poll() {
  impl_->io.waitScope.poll();
  impl_->rethrowCallbackError();
}

void DecisionClient::waitAny() {
  poll();
  if (impl_->completed == 0 && impl_->inFlight > 0) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    impl_->wake = kj::mv(paf.fulfiller);
    paf.promise.wait(impl_->io.waitScope);
  }
  impl_->completed = 0;
  impl_->rethrowCallbackError();
}

bool DecisionClient::waitAnyFor(std::chrono::nanoseconds timeout) {
  poll();
  if (impl_->completed == 0 && impl_->inFlight > 0 && timeout.count() > 0) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    impl_->wake = kj::mv(paf.fulfiller);
    auto timer = impl_->io.provider->getTimer().afterDelay(timeout.count() * kj::NANOSECONDS);
    paf.promise.exclusiveJoin(kj::mv(timer)).wait(impl_->io.waitScope);
    impl_->wake = nullptr;
  }
  bool any = impl_->completed > 0;
  impl_->completed = 0;
  impl_->rethrowCallbackError();
  return any;
}

void DecisionClient::drain() {
  while (impl_->inFlight > 0) waitAny();
}

ServiceStatus DecisionClient::status() {
  try {
    auto resp = impl_->cap.statusRequest().send().wait(impl_->io.waitScope);
    auto s = resp.getStatus();
    ServiceStatus out;
    out.hasBundle = s.getHasBundle();
    out.bundleRevision = s.getBundleRevision();
    auto digest = s.getBundleDigest();
    out.bundleDigest.assign(reinterpret_cast<const char*>(digest.begin()), digest.size());
    out.bundleDeadlineMs = s.getBundleDeadlineMs();
    out.secondsToDeadline = s.getSecondsToDeadline();
    out.backend = s.getBackend().cStr();
    out.signatureBackend = s.getSignatureBackend().cStr();
    out.nodeId = s.getNodeId().cStr();
    out.queueDepth = s.getQueueDepth();
    out.decisions = s.getDecisions();
    out.allowed = s.getAllowed();
    for (auto c : s.getDeniedByCode()) out.deniedByCode.emplace_back(static_cast<engine::DenyCode>(c.getCode()), c.getCount());
    return out;
  } catch (const kj::Exception& e) {
    throw ClientError("status call failed: " + describe(e));
  }
}

BundleLoadResult DecisionClient::loadBundle(std::string_view bundleBytes) {
  try {
    auto req = impl_->cap.loadBundleRequest();
    req.setBundle(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(bundleBytes.data()), bundleBytes.size()));
    auto resp = req.send().wait(impl_->io.waitScope);
    auto r = resp.getResult();
    BundleLoadResult out;
    out.ok = r.getOk();
    out.revision = r.getRevision();
    out.error = r.getError().cStr();
    out.refusal = static_cast<uint16_t>(r.getRefusal());
    return out;
  } catch (const kj::Exception& e) {
    throw ClientError("loadBundle call failed: " + describe(e));
  }
}

}  // namespace govmesh::server
