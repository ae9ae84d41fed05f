// Wire <-> engine conversion of requests and decisions (see server/request_capnp.h).
#include "server/request_capnp.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <optional>

#include <kj/exception.h>

#include "compiler/extensions.h"

namespace govmesh::server {
namespace {

using cedar::Value;
using engine::DenyCode;

std::string toStd(capnp::Text::Reader t) { return std::string(t.begin(), t.size()); }

// Reads entity references and values, keeping the first fault. A class rather than free
// functions so that the running size budget and the intern table travel together.
class Decoder {
 public:
  explicit Decoder(const engine::Bundle* internTable) : intern_(internTable) {}

  std::string error;  // set at the first fault; the result is then meaningless

  std::optional<cedar::EntityUid> entity(wire::EntityRef::Reader r, const std::string& what) {
    switch (r.which()) {
      case wire::EntityRef::UNSET:
        return fail(what + " is missing");
      case wire::EntityRef::UID: {
        auto u = r.getUid();
        if (u.getType().size() > engine::kMaxNameBytes || u.getId().size() > engine::kMaxNameBytes)
          return fail(what + " is longer than " + std::to_string(engine::kMaxNameBytes) + " bytes");
        return cedar::EntityUid{toStd(u.getType()), toStd(u.getId())};
      }
      case wire::EntityRef::INTERNED: {
        const uint32_t i = r.getInterned();
        if (!intern_) return fail(what + " is interned (" + std::to_string(i) + ") but no bundle is active");
        if (i >= intern_->table.entities.size())
          return fail(what + " interned id " + std::to_string(i) + " is past the bundle's entity table (" +
                      std::to_string(intern_->table.entities.size()) + " entities)");
        return intern_->table.entities[i];
      }
    }
    return fail(what + " is an entity reference of an unknown kind (" + std::to_string(static_cast<unsigned>(r.which())) +
                "), from a newer schema?");
  }

  // `depth` counts as engine::validateShape does: the context record is 1.
  std::optional<Value> value(wire::Value::Reader v, int depth, const std::string& path) {
    bytes_ += 1;
    switch (v.which()) {
      case wire::Value::UNSET: return fail(path + " is unset");
      case wire::Value::BOOLEAN: bytes_ += 1; return Value::boolean(v.getBoolean());
      case wire::Value::LONG: bytes_ += 8; return Value::integer(v.getLong());
      case wire::Value::STRING: {
        auto t = v.getString();
        bytes_ += 4 + t.size();
        if (!withinBudget(path)) return std::nullopt;
        return Value::string(toStd(t));
      }
      case wire::Value::ENTITY: {
        auto u = entity(v.getEntity(), path);
        if (!u) return std::nullopt;
        bytes_ += 8 + u->type.size() + u->id.size();
        if (!withinBudget(path)) return std::nullopt;
        return Value::entity(std::move(*u));
      }
      case wire::Value::SET: {
        if (!enterNested(depth, path)) return std::nullopt;
        auto list = v.getSet();
        // Every element costs at least 2 canonical bytes: refuse a huge list before reading it.
        bytes_ += 4;
        if (!withinBudget(path, 2 * size_t{list.size()})) return std::nullopt;
        cedar::ValueSet elems;
        elems.reserve(list.size());
        for (uint32_t i = 0; i < list.size(); ++i) {
          auto e = value(list[i], depth + 1, path + "[" + std::to_string(i) + "]");
          if (!e) return std::nullopt;
          elems.push_back(std::move(*e));
        }
        return Value::set(std::move(elems));
      }
      case wire::Value::RECORD: return record(v.getRecord(), depth, path);
      case wire::Value::EXTENSION: {
        auto x = v.getExtension();
        auto e = extension(toStd(x.getName()), x.getArgument(), path);
        if (!e) return std::nullopt;
        bytes_ += e->kind() == cedar::ValueKind::Ip ? 18 : 8;  // ipaddr: flag, prefix, 16 bytes; others an i64
        if (!withinBudget(path)) return std::nullopt;
        return e;
      }
    }
    return fail(path + " is a value of an unknown kind (" + std::to_string(static_cast<unsigned>(v.which())) +
                "), from a newer schema?");
  }

  std::optional<Value> record(capnp::List<wire::Field>::Reader fields, int depth, const std::string& path) {
    if (!enterNested(depth, path)) return std::nullopt;
    bytes_ += 4;
    // Every field costs at least 6 canonical bytes (key length, tag, smallest value).
    if (!withinBudget(path, 6 * size_t{fields.size()})) return std::nullopt;
    cedar::ValueRecord out;
    out.reserve(fields.size());
    for (auto f : fields) {
      std::string key = toStd(f.getName());
      bytes_ += 4 + key.size();
      if (!withinBudget(path)) return std::nullopt;
      auto v = value(f.getValue(), depth + 1, path + "." + key);
      if (!v) return std::nullopt;
      out.emplace_back(std::move(key), std::move(*v));
    }
    // Value::record() would let a later duplicate replace an earlier one; on the wire a
    // duplicate is refused, so that what is evaluated never depends on field order.
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    auto dup = std::adjacent_find(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first == b.first; });
    if (dup != out.end()) return fail(path + " has the key `" + dup->first + "` twice");
    return Value::record(std::move(out));
  }

 private:
  const engine::Bundle* intern_;
  size_t bytes_ = 0;  // canonical bytes of the context so far (engine/request.h value())

  std::nullopt_t fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return std::nullopt;
  }

  bool withinBudget(const std::string& path, size_t more = 0) {
    if (bytes_ + more <= engine::kMaxContextBytes) return true;
    fail(path + ": context exceeds " + std::to_string(engine::kMaxContextBytes) + " bytes");
    return false;
  }

  bool enterNested(int depth, const std::string& path) {
    if (depth <= engine::kMaxContextDepth) return true;
    fail(path + ": context nested deeper than " + std::to_string(engine::kMaxContextDepth) + " levels");
    return false;
  }

  std::optional<Value> extension(const std::string& name, capnp::Text::Reader argReader, const std::string& path) {
    const std::string arg = toStd(argReader);
    std::optional<Value> v;
    if (name == "decimal") {
      if (auto d = cedar::parseDecimal(arg)) v = Value::decimal(*d);
    } else if (name == "ip") {
      if (auto a = cedar::parseIp(arg)) v = Value::ip(*a);
    } else if (name == "datetime") {
      if (auto d = cedar::parseDatetime(arg)) v = Value::datetime(*d);
    } else if (name == "duration") {
      if (auto d = cedar::parseDuration(arg)) v = Value::duration(*d);
    } else {
      return fail(path + ": unknown extension `" + name + "`");
    }
    if (!v) return fail(path + ": `" + arg + "` is not a valid " + name);
    return v;
  }
};

// Copies a fixed-size Data field, or explains why it cannot.
template <size_t N>
bool readFixed(capnp::Data::Reader d, std::array<uint8_t, N>& out, const char* what, std::string& error) {
  if (d.size() != N) {
    error = std::string(what) + " is " + std::to_string(d.size()) + " bytes, expected " + std::to_string(N);
    return false;
  }
  std::memcpy(out.data(), d.begin(), N);
  return true;
}

void decodeInto(wire::Request::Reader r, const engine::Bundle* internTable, bool emptySignatureAsZero,
                DecodedRequest& out) {
  out.code = DenyCode::kMalformed;  // until everything has been read
  out.reason.clear();
  engine::SignedRequest& q = out.request;
  Decoder dec(internTable);
  auto fail = [&](std::string why) { out.reason = std::move(why); };

  auto principal = dec.entity(r.getPrincipal(), "principal");
  if (!principal) return fail(dec.error);
  auto action = dec.entity(r.getAction(), "action");
  if (!action) return fail(dec.error);
  auto resource = dec.entity(r.getResource(), "resource");
  if (!resource) return fail(dec.error);
  q.principal = std::move(*principal);
  q.action = std::move(*action);
  q.resource = std::move(*resource);

  if (r.hasContext()) {
    auto ctx = r.getContext();
    if (ctx.which() != wire::Value::RECORD) {
      if (ctx.which() == wire::Value::UNSET) return fail("context is unset");
      return fail("context is not a record");
    }
    auto v = dec.record(ctx.getRecord(), 1, "context");
    if (!v) return fail(dec.error);
    q.context = std::move(*v);
  } else {
    q.context = Value::record({});
  }

  if (!r.hasKeyId()) return fail("keyId is missing");
  q.keyId = toStd(r.getKeyId());
  q.timestampNs = r.getTimestampNs();
  if (!readFixed(r.getNonce(), q.nonce, "nonce", out.reason)) return;
  if (emptySignatureAsZero && r.getSignature().size() == 0) {
    q.signature.fill(0);
  } else if (!readFixed(r.getSignature(), q.signature, "signature", out.reason)) {
    return;
  }

  q.payload.reset();
  if (r.hasPayload()) {
    auto p = r.getPayload();
    if (p.size() > engine::kMaxPayloadBytes)
      return fail("payload is " + std::to_string(p.size()) + " bytes (limit " + std::to_string(engine::kMaxPayloadBytes) + ")");
    q.payload.emplace(reinterpret_cast<const char*>(p.begin()), p.size());
  }
  q.payloadDigest.reset();
  if (r.hasPayloadDigest()) {
    crypto::Sha256Digest d{};
    if (!readFixed(r.getPayloadDigest(), d, "payloadDigest", out.reason)) return;
    q.payloadDigest = d;
  }

  // Names, UTF-8 and the remaining limits. TODO(perf): this walks the context a second time.
  engine::ShapeCheck shape = engine::validateShape(q);
  if (!shape.ok()) return fail(std::move(shape.reason));
  out.code = DenyCode::kNone;
}

// Writes an entity reference: interned when `internTable` knows the uid, else as text.
void writeEntityRef(const cedar::EntityUid& u, wire::EntityRef::Builder b, const engine::Bundle* internTable) {
  if (internTable) {
    auto it = internTable->table.entityIndex.find(u);
    if (it != internTable->table.entityIndex.end()) {
      b.setInterned(it->second);
      return;
    }
  }
  auto ub = b.initUid();
  ub.setType(capnp::Text::Reader(u.type.data(), u.type.size()));
  ub.setId(capnp::Text::Reader(u.id.data(), u.id.size()));
}

}  // namespace

capnp::ReaderOptions wireReaderOptions() {
  capnp::ReaderOptions o;
  o.nestingLimit = kWireNestingLimit;
  return o;
}

DecodedRequest decodeRequest(wire::Request::Reader r, const engine::Bundle* internTable,
                             bool emptySignatureAsZero) noexcept {
  DecodedRequest out;
  try {
    decodeInto(r, internTable, emptySignatureAsZero, out);
  } catch (const kj::Exception& e) {
    out.code = DenyCode::kMalformed;
    out.reason = std::string("unreadable request: ") + e.getDescription().cStr();
  } catch (const std::exception& e) {
    out.code = DenyCode::kMalformed;
    out.reason = std::string("unreadable request: ") + e.what();
  } catch (...) {
    out.code = DenyCode::kMalformed;
    out.reason = "unreadable request";
  }
  if (!out.ok()) out.request = engine::SignedRequest{};  // nothing half-read leaks to later stages
  return out;
}

void decodeRequests(capnp::List<wire::Request>::Reader requests, const engine::Bundle* internTable,
                    std::vector<DecodedRequest>& out, bool emptySignatureAsZero) noexcept {
  try {
    out.resize(requests.size());
    for (uint32_t i = 0; i < requests.size(); ++i) out[i] = decodeRequest(requests[i], internTable, emptySignatureAsZero);
  } catch (...) {
    // Only allocation can fail here (decodeRequest catches the rest): answer nothing rather
    // than something partial; the caller denies by the wire list's size.
    out.clear();
  }
}

engine::ShapeCheck encodeValue(const cedar::Value& v, wire::Value::Builder b, const engine::Bundle* internTable) {
  auto setExt = [&](const char* name, const std::string& arg) {
    auto x = b.initExtension();
    x.setName(name);
    x.setArgument(capnp::Text::Reader(arg.data(), arg.size()));
  };
  switch (v.kind()) {
    case cedar::ValueKind::Bool: b.setBoolean(v.asBool()); break;
    case cedar::ValueKind::Long: b.setLong(v.asLong()); break;
    case cedar::ValueKind::String: b.setString(capnp::Text::Reader(v.asString().data(), v.asString().size())); break;
    case cedar::ValueKind::Entity: writeEntityRef(v.asEntity(), b.initEntity(), internTable); break;
    case cedar::ValueKind::Set: {
      auto list = b.initSet(static_cast<uint32_t>(v.asSet().size()));
      for (uint32_t i = 0; i < list.size(); ++i) {
        engine::ShapeCheck c = encodeValue(v.asSet()[i], list[i], internTable);
        if (!c.ok()) return c;
      }
      break;
    }
    case cedar::ValueKind::Record: {
      auto list = b.initRecord(static_cast<uint32_t>(v.asRecord().size()));
      for (uint32_t i = 0; i < list.size(); ++i) {
        const auto& [key, value] = v.asRecord()[i];
        list[i].setName(capnp::Text::Reader(key.data(), key.size()));
        engine::ShapeCheck c = encodeValue(value, list[i].initValue(), internTable);
        if (!c.ok()) return c;
      }
      break;
    }
    case cedar::ValueKind::Decimal: setExt("decimal", cedar::toString(v.asDecimal())); break;
    case cedar::ValueKind::Ip: setExt("ip", cedar::toString(v.asIp())); break;
    case cedar::ValueKind::Datetime: {
      // The text form names years 0000-9999 only; outside them there is nothing parseable to send.
      const std::string text = cedar::toString(v.asDatetime());
      if (!cedar::parseDatetime(text)) return {DenyCode::kMalformed, "datetime " + text + " cannot be sent (years 0000-9999 only)"};
      setExt("datetime", text);
      break;
    }
    case cedar::ValueKind::Duration: setExt("duration", cedar::toString(v.asDuration())); break;
  }
  return {};
}

engine::ShapeCheck encodeRequest(const engine::SignedRequest& r, wire::Request::Builder b,
                                 const engine::Bundle* internTable) {
  writeEntityRef(r.principal, b.initPrincipal(), internTable);
  writeEntityRef(r.action, b.initAction(), internTable);
  writeEntityRef(r.resource, b.initResource(), internTable);
  if (!r.context.isRecord()) return {DenyCode::kMalformed, "context is not a record"};
  engine::ShapeCheck c = encodeValue(r.context, b.initContext(), internTable);
  if (!c.ok()) return c;
  b.setKeyId(capnp::Text::Reader(r.keyId.data(), r.keyId.size()));
  b.setTimestampNs(r.timestampNs);
  b.setNonce(capnp::Data::Reader(r.nonce.data(), r.nonce.size()));
  if (r.payload)
    b.setPayload(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(r.payload->data()), r.payload->size()));
  if (r.payloadDigest) b.setPayloadDigest(capnp::Data::Reader(r.payloadDigest->data(), r.payloadDigest->size()));
  b.setSignature(capnp::Data::Reader(r.signature.data(), r.signature.size()));
  return {};
}

void encodeDecision(const engine::Decision& d, wire::Decision::Builder b) {
  // An allow with a fault code is contradictory: it goes out as a deny.
  b.setAllow(d.allow && d.code == DenyCode::kNone);
  auto reasons = b.initReasons(static_cast<uint32_t>(d.reasons.size()));
  for (uint32_t i = 0; i < reasons.size(); ++i) reasons.set(i, capnp::Text::Reader(d.reasons[i].data(), d.reasons[i].size()));
  auto errors = b.initErrors(static_cast<uint32_t>(d.errors.size()));
  for (uint32_t i = 0; i < errors.size(); ++i) errors.set(i, capnp::Text::Reader(d.errors[i].data(), d.errors[i].size()));
  b.setDenyCode(static_cast<uint8_t>(d.code));
  if (d.code != DenyCode::kNone) {
    const std::string_view name = engine::denyCodeName(d.code);
    b.setDenyName(capnp::Text::Reader(name.data(), name.size()));
  }
  b.setLineageSeq(d.lineageSeq);
}

bool encodeDecisions(std::span<const engine::Decision> ds, capnp::List<wire::Decision>::Builder b) {
  const size_t n = std::min<size_t>(ds.size(), b.size());
  for (size_t i = 0; i < n; ++i) encodeDecision(ds[i], b[static_cast<uint32_t>(i)]);
  return ds.size() == b.size();
}

engine::Decision decodeDecision(wire::Decision::Reader d) noexcept {
  try {
    engine::Decision out;
    out.code = static_cast<DenyCode>(d.getDenyCode());
    out.allow = d.getAllow() && out.code == DenyCode::kNone;
    for (auto t : d.getReasons()) out.reasons.push_back(toStd(t));
    for (auto t : d.getErrors()) out.errors.push_back(toStd(t));
    out.lineageSeq = d.getLineageSeq();
    return out;
  } catch (const kj::Exception& e) {
    engine::Decision out = engine::denyDecision(DenyCode::kMalformed);
    try {
      out.errors.push_back(std::string("unreadable decision: ") + e.getDescription().cStr());
    } catch (...) {
    }
    return out;
  } catch (...) {
    return engine::denyDecision(DenyCode::kMalformed);
  }
}

}  // namespace govmesh::server
