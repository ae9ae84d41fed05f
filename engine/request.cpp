// The request model: shape checks and the canonical signing bytes (format in engine/request.h).
#include "engine/request.h"

#include <cstring>

#include "engine/crypto_ed25519.h"
#include "engine/ed25519_verify.h"
#include "engine/sha256_batch.h"

namespace govmesh::engine {
namespace {

using cedar::Value;
using cedar::ValueKind;

// Kind tags of value(): fixed by the format, independent of ValueKind's numbering, so that a
// reordering of the compiler's enum can never change what signatures cover.
enum class Tag : uint8_t {
  kBool = 0x01,
  kLong = 0x02,
  kString = 0x03,
  kEntity = 0x04,
  kSet = 0x05,
  kRecord = 0x06,
  kDecimal = 0x07,
  kIp = 0x08,
  kDatetime = 0x09,
  kDuration = 0x0a,
};

void putU8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }

void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void putI64(std::string& out, int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

void putStr(std::string& out, std::string_view s) {
  putU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

void putUid(std::string& out, const cedar::EntityUid& u) {
  putStr(out, u.type);
  putStr(out, u.id);
}

void putValue(std::string& out, const Value& v) {
  switch (v.kind()) {
    case ValueKind::Bool:
      putU8(out, static_cast<uint8_t>(Tag::kBool));
      putU8(out, v.asBool() ? 1 : 0);
      return;
    case ValueKind::Long:
      putU8(out, static_cast<uint8_t>(Tag::kLong));
      putI64(out, v.asLong());
      return;
    case ValueKind::String:
      putU8(out, static_cast<uint8_t>(Tag::kString));
      putStr(out, v.asString());
      return;
    case ValueKind::Entity:
      putU8(out, static_cast<uint8_t>(Tag::kEntity));
      putUid(out, v.asEntity());
      return;
    case ValueKind::Set:
      // cedar::Value::set() sorted and deduplicated the elements: the order is canonical already.
      putU8(out, static_cast<uint8_t>(Tag::kSet));
      putU32(out, static_cast<uint32_t>(v.asSet().size()));
      for (const Value& e : v.asSet()) putValue(out, e);
      return;
    case ValueKind::Record:
      // cedar::Value::record() sorted the keys (std::string order, i.e. bytes) and made them unique.
      putU8(out, static_cast<uint8_t>(Tag::kRecord));
      putU32(out, static_cast<uint32_t>(v.asRecord().size()));
      for (const auto& [key, value] : v.asRecord()) {
        putStr(out, key);
        putValue(out, value);
      }
      return;
    case ValueKind::Decimal:
      putU8(out, static_cast<uint8_t>(Tag::kDecimal));
      putI64(out, v.asDecimal().scaled);
      return;
    case ValueKind::Ip: {
      const cedar::IpAddr& a = v.asIp();
      putU8(out, static_cast<uint8_t>(Tag::kIp));
      putU8(out, a.v6 ? 1 : 0);
      putU8(out, a.prefix);
      out.append(reinterpret_cast<const char*>(a.bytes.data()), a.bytes.size());
      return;
    }
    case ValueKind::Datetime:
      putU8(out, static_cast<uint8_t>(Tag::kDatetime));
      putI64(out, v.asDatetime().ms);
      return;
    case ValueKind::Duration:
      putU8(out, static_cast<uint8_t>(Tag::kDuration));
      putI64(out, v.asDuration().ms);
      return;
  }
}

bool isValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Lead byte: length and the smallest code point of that length (overlong forms refused).
    size_t len;
    uint32_t cp, minCp;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, minCp = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, minCp = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, minCp = 0x10000;
    else return false;
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < minCp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isIdentChar(char c) { return isIdentStart(c) || (c >= '0' && c <= '9'); }

// A Cedar entity type: identifiers joined by "::" (no spaces, nothing empty).
bool isCedarName(std::string_view s) {
  size_t i = 0;
  while (true) {
    if (i >= s.size() || !isIdentStart(s[i])) return false;
    while (i < s.size() && isIdentChar(s[i])) ++i;
    if (i == s.size()) return true;
    if (s.substr(i, 2) != "::") return false;
    i += 2;
  }
}

ShapeCheck malformed(std::string reason) { return {DenyCode::kMalformed, std::move(reason)}; }

std::optional<std::string> checkText(std::string_view s, std::string_view what) {
  if (s.size() > kMaxNameBytes)
    return std::string(what) + " is " + std::to_string(s.size()) + " bytes (limit " + std::to_string(kMaxNameBytes) + ")";
  if (!isValidUtf8(s)) return std::string(what) + " is not valid UTF-8";
  return std::nullopt;
}

std::optional<std::string> checkUid(const cedar::EntityUid& u, std::string_view what) {
  if (auto e = checkText(u.type, std::string(what) + " type")) return e;
  if (auto e = checkText(u.id, std::string(what) + " id")) return e;
  if (!isCedarName(u.type)) return std::string(what) + " type `" + u.type + "` is not a Cedar entity type name";
  return std::nullopt;
}

// Datetimes the wire's text form ("YYYY-MM-DDThh:mm:ss.SSSZ") can carry: years 0000 to 9999.
constexpr int64_t kMinDatetimeMs = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr int64_t kMaxDatetimeMs = 253402300799999;  // 9999-12-31T23:59:59.999Z

// A fault found in the context: where (".a.b[2]", built while unwinding so that the walk
// allocates nothing on the good path) and what.
struct ContextFault {
  std::string path;
  std::string message;
};

// Walks the context, adding its canonical size to `bytes`; stops at the first fault, so a huge
// or deep context costs no more than the limits allow.
std::optional<ContextFault> checkValue(const Value& v, int depth, size_t& bytes) {
  auto over = [&]() -> std::optional<ContextFault> {
    if (bytes > kMaxContextBytes) return ContextFault{"", "context exceeds " + std::to_string(kMaxContextBytes) + " bytes"};
    return std::nullopt;
  };
  bytes += 1;  // the tag
  switch (v.kind()) {
    case ValueKind::Bool: bytes += 1; break;
    case ValueKind::Long:
    case ValueKind::Decimal:
    case ValueKind::Duration: bytes += 8; break;
    case ValueKind::Datetime:
      bytes += 8;
      if (v.asDatetime().ms < kMinDatetimeMs || v.asDatetime().ms > kMaxDatetimeMs)
        return ContextFault{"", "datetime outside the years 0000-9999"};
      break;
    case ValueKind::Ip: bytes += 18; break;
    case ValueKind::String:
      bytes += 4 + v.asString().size();
      if (auto f = over()) return f;
      if (!isValidUtf8(v.asString())) return ContextFault{"", "string is not valid UTF-8"};
      break;
    case ValueKind::Entity:
      bytes += 8 + v.asEntity().type.size() + v.asEntity().id.size();
      if (auto f = over()) return f;
      if (auto e = checkUid(v.asEntity(), "entity")) return ContextFault{"", *e};
      break;
    case ValueKind::Set:
    case ValueKind::Record: {
      if (depth > kMaxContextDepth)
        return ContextFault{"", "context nested deeper than " + std::to_string(kMaxContextDepth) + " levels"};
      bytes += 4;
      if (v.isSet()) {
        size_t i = 0;
        for (const Value& e : v.asSet()) {
          if (auto f = checkValue(e, depth + 1, bytes)) {
            f->path = "[" + std::to_string(i) + "]" + f->path;
            return f;
          }
          ++i;
        }
      } else {
        for (const auto& [key, value] : v.asRecord()) {
          bytes += 4 + key.size();
          if (auto f = over()) return f;
          if (!isValidUtf8(key)) return ContextFault{"", "a record key is not valid UTF-8"};
          if (auto f = checkValue(value, depth + 1, bytes)) {
            f->path = "." + key + f->path;
            return f;
          }
        }
      }
      break;
    }
  }
  return over();
}

}  // namespace

Decision denyDecision(DenyCode code) {
  Decision d;
  d.allow = false;
  d.code = code;
  return d;
}

ShapeCheck validateShape(const SignedRequest& r) {
  if (auto e = checkUid(r.principal, "principal")) return malformed(*e);
  if (auto e = checkUid(r.action, "action")) return malformed(*e);
  if (auto e = checkUid(r.resource, "resource")) return malformed(*e);
  if (r.keyId.empty()) return malformed("keyId is empty");
  if (auto e = checkText(r.keyId, "keyId")) return malformed(*e);
  if (!r.context.isRecord()) return malformed(std::string("context is a ") + std::string(cedar::kindName(r.context.kind())) + ", not a record");
  size_t bytes = 0;
  if (auto f = checkValue(r.context, 1, bytes)) return malformed("context" + f->path + ": " + f->message);
  if (r.payload && r.payload->size() > kMaxPayloadBytes)
    return malformed("payload is " + std::to_string(r.payload->size()) + " bytes (limit " + std::to_string(kMaxPayloadBytes) +
                     "; send a payloadDigest instead)");
  return {};
}

void appendCanonicalValue(const cedar::Value& v, std::string& out) { putValue(out, v); }

namespace {

struct ValueReader {
  std::string_view s;
  bool take(size_t n, const char*& p) {
    if (s.size() < n) return false;
    p = s.data();
    s.remove_prefix(n);
    return true;
  }
  bool u8(uint8_t& v) {
    const char* p;
    if (!take(1, p)) return false;
    v = static_cast<uint8_t>(*p);
    return true;
  }
  bool u32(uint32_t& v) {
    const char* p;
    if (!take(4, p)) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
    return true;
  }
  bool i64(int64_t& v) {
    const char* p;
    if (!take(8, p)) return false;
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
    v = static_cast<int64_t>(u);
    return true;
  }
  bool str(std::string& out) {
    uint32_t n;
    const char* p;
    if (!u32(n) || !take(n, p)) return false;
    out.assign(p, n);
    return true;
  }
  std::optional<Value> value(int depth) {
    uint8_t tag;
    if (!u8(tag)) return std::nullopt;
    switch (static_cast<Tag>(tag)) {
      case Tag::kBool: {
        uint8_t b;
        if (!u8(b) || b > 1) return std::nullopt;
        return Value::boolean(b == 1);
      }
      case Tag::kLong: {
        int64_t v;
        if (!i64(v)) return std::nullopt;
        return Value::integer(v);
      }
      case Tag::kString: {
        std::string v;
        if (!str(v)) return std::nullopt;
        return Value::string(std::move(v));
      }
      case Tag::kEntity: {
        cedar::EntityUid u;
        if (!str(u.type) || !str(u.id)) return std::nullopt;
        return Value::entity(std::move(u));
      }
      case Tag::kSet: {
        uint32_t n;
        // Each element takes at least 2 bytes: a larger count is malformed (and must not reserve).
        if (depth >= kMaxContextDepth || !u32(n) || n > s.size() / 2) return std::nullopt;
        cedar::ValueSet elems;
        elems.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
          auto e = value(depth + 1);
          if (!e) return std::nullopt;
          elems.push_back(std::move(*e));
        }
        // Canonicality (sorted, unique) is checked once by re-encoding the whole value.
        return Value::set(std::move(elems));
      }
      case Tag::kRecord: {
        uint32_t n;
        if (depth >= kMaxContextDepth || !u32(n) || n > s.size() / 6) return std::nullopt;
        cedar::ValueRecord fields;
        fields.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
          std::string key;
          if (!str(key)) return std::nullopt;
          if (!fields.empty() && !(fields.back().first < key)) return std::nullopt;  // sorted, unique
          auto e = value(depth + 1);
          if (!e) return std::nullopt;
          fields.emplace_back(std::move(key), std::move(*e));
        }
        return Value::record(std::move(fields));
      }
      case Tag::kDecimal: {
        int64_t v;
        if (!i64(v)) return std::nullopt;
        return Value::decimal(cedar::Decimal{v});
      }
      case Tag::kIp: {
        cedar::IpAddr a;
        uint8_t v6;
        const char* p;
        if (!u8(v6) || v6 > 1 || !u8(a.prefix) || !take(16, p)) return std::nullopt;
        a.v6 = v6 == 1;
        std::memcpy(a.bytes.data(), p, 16);
        return Value::ip(a);
      }
      case Tag::kDatetime: {
        int64_t v;
        if (!i64(v)) return std::nullopt;
        return Value::datetime(cedar::Datetime{v});
      }
      case Tag::kDuration: {
        int64_t v;
        if (!i64(v)) return std::nullopt;
        return Value::duration(cedar::Duration{v});
      }
    }
    return std::nullopt;
  }
};

}  // namespace

std::optional<cedar::Value> decodeCanonicalValue(std::string_view bytes) {
  ValueReader r{bytes};
  auto v = r.value(1);
  if (!v || !r.s.empty()) return std::nullopt;
  // One byte string per value: an unsorted or duplicated set or record encodes differently.
  std::string again;
  putValue(again, *v);
  if (again != bytes) return std::nullopt;
  return v;
}

std::optional<crypto::Sha256Digest> signedPayloadDigest(const SignedRequest& r) {
  if (r.payloadDigest) return r.payloadDigest;
  if (r.payload) {
    const auto* p = reinterpret_cast<const uint8_t*>(r.payload->data());
    return crypto::sha256One(crypto::ByteView{p, r.payload->size()});
  }
  return std::nullopt;
}

void appendCanonicalSigningBytes(const SignedRequest& r, const std::optional<crypto::Sha256Digest>& digest,
                                 std::string& out) {
  out.append(kRequestSigningPrefix);
  putUid(out, r.principal);
  putUid(out, r.action);
  putUid(out, r.resource);
  putValue(out, r.context);
  putStr(out, r.keyId);
  putI64(out, r.timestampNs);
  out.append(reinterpret_cast<const char*>(r.nonce.data()), r.nonce.size());
  if (digest) {
    putU8(out, 1);
    out.append(reinterpret_cast<const char*>(digest->data()), digest->size());
  } else {
    putU8(out, 0);
  }
}

std::string canonicalSigningBytes(const SignedRequest& r) {
  std::string out;
  appendCanonicalSigningBytes(r, signedPayloadDigest(r), out);
  return out;
}

void signRequest(SignedRequest& r, std::string_view privatePem) {
  r.signature = crypto::signEd25519(privatePem, canonicalSigningBytes(r), "request signing key");
}

bool verifyRequestSignature(const SignedRequest& r, const crypto::Ed25519PublicKey& key) {
  const std::string msg = canonicalSigningBytes(r);
  crypto::SigInput in;
  in.pk = {key.data(), key.size()};
  in.sig = {r.signature.data(), r.signature.size()};
  in.msg = {reinterpret_cast<const uint8_t*>(msg.data()), msg.size()};
  return crypto::ed25519VerifyOne(in);
}

cedar::Request toCedarRequest(const SignedRequest& r) {
  cedar::Request q;
  q.principal = r.principal;
  q.action = r.action;
  q.resource = r.resource;
  q.context = r.context;
  return q;
}

}  // namespace govmesh::engine
