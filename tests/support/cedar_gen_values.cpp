// Cedar test generator: PRNG, literal pools, Cedar text escaping, types and JSON values.
#include <cstdio>
#include <limits>

#include "tests/support/cedar_gen_internal.h"

namespace govmesh::gen {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/// Decodes one UTF-8 sequence at s[i] (input is always valid UTF-8: it comes from our pools).
uint32_t decodeUtf8(std::string_view s, size_t& i) {
  auto c = static_cast<unsigned char>(s[i]);
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  uint32_t cp = extra == 3 ? c & 0x07 : extra == 2 ? c & 0x0F : extra == 1 ? c & 0x1F : c;
  for (int k = 0; k < extra && i + 1 < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F);
  ++i;
  return cp;
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%x", v);
  return buf;
}

}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }

int Rng::range(int lo, int hi) { return hi <= lo ? lo : lo + static_cast<int>(below(static_cast<uint64_t>(hi - lo) + 1)); }

bool Rng::chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

size_t Rng::weighted(const std::vector<int>& weights) {
  uint64_t total = 0;
  for (int w : weights) total += static_cast<uint64_t>(w > 0 ? w : 0);
  uint64_t r = below(total);
  for (size_t i = 0; i < weights.size(); ++i) {
    uint64_t w = static_cast<uint64_t>(weights[i] > 0 ? weights[i] : 0);
    if (r < w) return i;
    r -= w;
  }
  return weights.size() - 1;
}

std::string cedarString(std::string_view s, Rng* rng) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t start = i;
      uint32_t cp = decodeUtf8(s, i);
      if (rng && rng->chance(0.3)) out += "\\u{" + hex(cp) + "}";
      else out.append(s.substr(start, i - start));
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\0': out += "\\0"; break;
      case '\'': out += (rng && rng->chance(0.5)) ? "\\'" : "'"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += "\\u{" + hex(c) + "}";
        else if (rng && c >= 'a' && c <= 'z' && rng->chance(0.02)) out += "\\u{" + hex(c) + "}";
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string cedarUid(const Uid& uid, Rng* rng) { return uid.type + "::" + cedarString(uid.id, rng); }

bool isIdentifier(std::string_view s) {
  static const char* const kReserved[] = {"true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"};
  if (s.empty()) return false;
  for (const char* r : kReserved)
    if (s == r) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

const std::vector<std::string>& stringPool() {
  static const std::vector<std::string> pool = {
      "alice", "bob", "", "Alice", "a b", "h\xC3\xA9llo", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
      "emoji \xF0\x9F\x98\x80", "quote\"d", "back\\slash", "tab\there", "line\nbreak", "star*",
      std::string("nul\0byte", 8), "it's", "admin", "read", "x", "xyz", "*", "a*b*c", "\xC3\xBC" "ber",
      "red", "green", "10.0.0.1", "1.5", "2024-10-15",
  };
  return pool;
}

int64_t pickLong(Rng& rng, bool allowExtreme) {
  static const std::vector<int64_t> small = {0, 1, 2, 3, 5, 7, 10, 42, 100, 1000, -1, -5, -100, 65536};
  static const std::vector<int64_t> extreme = {
      std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
      std::numeric_limits<int64_t>::max() - 1, std::numeric_limits<int64_t>::min() + 1,
      4611686018427387904LL, -4611686018427387904LL, 3037000500LL, -3037000500LL,
      9007199254740993LL, 86400000LL * 106751991167LL};
  if (allowExtreme && rng.chance(0.35)) return rng.pick(extreme);
  return rng.pick(small);
}

namespace {
std::string pickFrom(Rng& rng, bool allowInvalid, const std::vector<std::string>& valid,
                     const std::vector<std::string>& invalid) {
  return allowInvalid && rng.chance(0.3) ? rng.pick(invalid) : rng.pick(valid);
}
}  // namespace

std::string pickDecimal(Rng& rng, bool allowInvalid) {
  static const std::vector<std::string> valid = {"0.0", "1.0", "-1.5", "3.1416", "0.0001", "12.34", "1.2300",
                                                 "922337203685477.5807", "-922337203685477.5808", "100.5",
                                                 "1.00", "1.23", "-1.50"};  // equal values, other spellings
  static const std::vector<std::string> invalid = {"1", "1.23456", "abc", "1.", "-.5", "922337203685477.5808",
                                                   "1e3", "", " 1.0", "+1.0", "1.0.0", "0x1.0", "-0.0"};
  return pickFrom(rng, allowInvalid, valid, invalid);
}

std::string pickIp(Rng& rng, bool allowInvalid) {
  static const std::vector<std::string> valid = {
      "127.0.0.1", "10.0.0.1", "10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/0", "224.0.0.1", "255.255.255.255",
      "::1", "::", "2001:db8::/32", "fe80::1", "ff02::1", "1.2.3.4/32", "10.1.2.3/8",
      "127.0.0.0/8", "192.168.1.7", "2001:db8::1", "::1/128", "ff00::/8", "10.0.0.1/32", "10.0.0.1/8",
      "0:0:0:0:0:0:0:1"};
  static const std::vector<std::string> invalid = {"256.1.1.1", "1.2.3", "10.0.0.0/33", "::1/129", "01.2.3.4",
                                                   "abc", "", "1.2.3.4/-1", "::g", "1.2.3.4 ", "1.2.3.4/08", "::ffff:10.0.0.1"};
  return pickFrom(rng, allowInvalid, valid, invalid);
}

std::string pickDatetime(Rng& rng, bool allowInvalid) {
  static const std::vector<std::string> valid = {
      "1970-01-01", "2000-02-29", "2024-10-15", "2024-10-15T11:35:00Z", "2024-10-15T11:35:00.123Z",
      "2024-10-15T11:35:00+0100", "2024-10-15T11:35:00.999-0230", "9999-12-31T23:59:59Z",
      "2025-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "2024-10-15T12:35:00+0100", "2024-10-15T00:00:00.000Z"};
  static const std::vector<std::string> invalid = {
      "2024-02-30", "2023-02-29", "2024-13-01", "2024-1-1", "2024-10-15T24:00:00Z", "2024-10-15T11:35:00",
      "2024-10-15T11:35:00.12Z", "2024-10-15T11:35:60Z", "2024-10-15 11:35:00Z", "", "2024-10-15T11:35:00+2400",
      "2024-10-15T11:35:00+0160", "+2024-10-15", "2024-10-15T11:35Z", "0000-01-01"};
  return pickFrom(rng, allowInvalid, valid, invalid);
}

std::string pickDuration(Rng& rng, bool allowInvalid) {
  static const std::vector<std::string> valid = {"0ms", "1ms", "1s", "1m", "1h", "1d", "-1d", "1d2h3m4s5ms", "90m",
                                                 "-2h30m", "100000d", "1h1ms", "9223372036854775807ms", "24h",
                                                 "86400000ms", "60m", "3600s", "0d"};
  static const std::vector<std::string> invalid = {"", "1x", "1d1d", "2h1d", "h", "-", "1.5h", "--1d",
                                                   "9223372036854775808ms", "1 d", "1D", "106751991168d", "-9223372036854775808ms"};
  return pickFrom(rng, allowInvalid, valid, invalid);
}

TypePtr simpleType(Kind k) {
  auto t = std::make_shared<Type>();
  t->kind = k;
  return t;
}

TypePtr setOf(TypePtr element) {
  auto t = std::make_shared<Type>();
  t->kind = Kind::Set;
  t->element = std::move(element);
  return t;
}

TypePtr randomType(Rng& rng, const World& world, int depth) {
  static const std::vector<std::string> fieldNames = {"a", "b", "city", "zip", "nick", "level", "on", "x y",
                                                      "\xC3\xA9t\xC3\xA9", "", "inner", "n2"};
  //                                     Bool Long Str Ent Set Rec Dec Ip  Dt  Dur
  static const std::vector<int> weights = {8, 12, 12, 8, 10, 6, 3, 3, 3, 3};
  auto k = static_cast<Kind>(rng.weighted(weights));
  if (k == Kind::Record && depth <= 0) k = Kind::Long;
  auto t = std::make_shared<Type>();
  t->kind = k;
  if (k == Kind::Entity) {
    t->entityType = rng.pick(world.entityTypes).name;
  } else if (k == Kind::Set) {
    t->element = depth > 0 && rng.chance(0.15) ? randomType(rng, world, depth - 1)
                                                : simpleType(rng.pick(std::vector<Kind>{Kind::Long, Kind::String, Kind::String, Kind::Entity, Kind::Bool, Kind::Decimal, Kind::Ip}));
    if (t->element->kind == Kind::Entity && t->element->entityType.empty()) {
      auto e = std::make_shared<Type>(*t->element);
      e->entityType = rng.pick(world.entityTypes).name;
      t->element = e;
    }
  } else if (k == Kind::Record) {
    int n = rng.range(1, 3);
    for (int i = 0; i < n; ++i) {
      std::string name = rng.pick(fieldNames);
      bool dup = false;
      for (auto& f : t->fields) dup = dup || f.name == name;
      if (dup) continue;
      t->fields.push_back({name, randomType(rng, world, depth - 1), !rng.chance(0.3)});
    }
  }
  return t;
}

namespace {
nlohmann::ordered_json extn(const char* fn, const std::string& arg) {
  return {{"__extn", {{"fn", fn}, {"arg", arg}}}};
}

nlohmann::ordered_json entityRef(const Uid& u) { return {{"__entity", {{"type", u.type}, {"id", u.id}}}}; }

Uid pickEntityOfType(Rng& rng, const World& world, const std::string& type) {
  std::vector<Uid> candidates;
  for (auto& e : world.entities)
    if (e.uid.type == type || (!world.withSchema && rng.chance(0.05))) candidates.push_back(e.uid);
  if (candidates.empty() || rng.chance(0.12)) {
    for (auto& m : world.missingUids)
      if (m.type == type) candidates.push_back(m);
    if (candidates.empty()) return Uid{type, "ghost"};
  }
  return rng.pick(candidates);
}
}  // namespace

nlohmann::ordered_json randomValue(Rng& rng, const World& world, const Type& t, bool loose) {
  switch (t.kind) {
    case Kind::Bool: return rng.chance(0.5);
    case Kind::Long: return pickLong(rng, rng.chance(0.1));
    case Kind::String: return rng.pick(stringPool());
    case Kind::Entity: return entityRef(pickEntityOfType(rng, world, t.entityType));
    case Kind::Set: {
      auto arr = nlohmann::ordered_json::array();
      int n = rng.range(0, 4);
      for (int i = 0; i < n; ++i) {
        if (loose && rng.chance(0.04)) arr.push_back(rng.pick(stringPool()));  // heterogeneous set
        else arr.push_back(randomValue(rng, world, *t.element, loose));
      }
      return arr;
    }
    case Kind::Record: {
      auto obj = nlohmann::ordered_json::object();
      for (auto& f : t.fields) {
        if (!f.required && rng.chance(0.4)) continue;
        if (loose && rng.chance(0.08)) continue;
        obj[f.name] = randomValue(rng, world, *f.type, loose);
      }
      return obj;
    }
    case Kind::Decimal: return extn("decimal", pickDecimal(rng, false));
    case Kind::Ip: return extn("ip", pickIp(rng, false));
    case Kind::Datetime: return extn("datetime", pickDatetime(rng, false));
    case Kind::Duration: return extn("duration", pickDuration(rng, false));
  }
  return nullptr;
}

std::string schemaType(const Type& t) {
  switch (t.kind) {
    case Kind::Bool: return "Bool";
    case Kind::Long: return "Long";
    case Kind::String: return "String";
    case Kind::Entity: return t.entityType;
    case Kind::Set: return "Set<" + schemaType(*t.element) + ">";
    case Kind::Record: {
      std::string s = "{";
      for (size_t i = 0; i < t.fields.size(); ++i) {
        const Field& f = t.fields[i];
        s += (i ? ", " : " ") + (isIdentifier(f.name) ? f.name : cedarString(f.name)) + (f.required ? "" : "?") + ": " +
             schemaType(*f.type);
      }
      return s + (t.fields.empty() ? "}" : " }");
    }
    case Kind::Decimal: return "decimal";
    case Kind::Ip: return "ipaddr";
    case Kind::Datetime: return "datetime";
    case Kind::Duration: return "duration";
  }
  return "Bool";
}

}  // namespace govmesh::gen
