#include "compiler/value.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "compiler/extensions.h"

namespace govmesh::cedar {

size_t EntityUidHash::operator()(const EntityUid& u) const noexcept {
  size_t h = std::hash<std::string>{}(u.type);
  // Mix so that ("a","bc") and ("ab","c") differ.
  return h ^ (std::hash<std::string>{}(u.id) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

Value Value::set(ValueSet elems) {
  std::sort(elems.begin(), elems.end(), [](const Value& a, const Value& b) { return compareValues(a, b) < 0; });
  elems.erase(std::unique(elems.begin(), elems.end(), [](const Value& a, const Value& b) { return compareValues(a, b) == 0; }),
              elems.end());
  return Value(Storage(std::in_place_index<4>, std::make_shared<const ValueSet>(std::move(elems))));
}

Value Value::record(ValueRecord fields) {
  std::stable_sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // Keep the last of equal keys: walk backwards keeping the first seen.
  ValueRecord out;
  out.reserve(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i + 1 < fields.size() && fields[i + 1].first == fields[i].first) continue;
    out.push_back(std::move(fields[i]));
  }
  return Value(Storage(std::in_place_index<5>, std::make_shared<const ValueRecord>(std::move(out))));
}

const Value* Value::field(std::string_view name) const {
  const ValueRecord& r = asRecord();
  auto it = std::lower_bound(r.begin(), r.end(), name, [](const auto& f, std::string_view n) { return f.first < n; });
  if (it == r.end() || it->first != name) return nullptr;
  return &it->second;
}

namespace {
template <class T>
int cmp3(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}
}  // namespace

int compareValues(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return a.kind() < b.kind() ? -1 : 1;
  switch (a.kind()) {
    case ValueKind::Bool: return cmp3(a.asBool(), b.asBool());
    case ValueKind::Long: return cmp3(a.asLong(), b.asLong());
    case ValueKind::String: return a.asString().compare(b.asString()) < 0 ? -1 : (a.asString() == b.asString() ? 0 : 1);
    case ValueKind::Entity: return cmp3(a.asEntity(), b.asEntity());
    case ValueKind::Set: {
      const ValueSet &x = a.asSet(), &y = b.asSet();
      if (&x == &y) return 0;
      size_t n = std::min(x.size(), y.size());
      for (size_t i = 0; i < n; ++i)
        if (int c = compareValues(x[i], y[i])) return c;
      return cmp3(x.size(), y.size());
    }
    case ValueKind::Record: {
      const ValueRecord &x = a.asRecord(), &y = b.asRecord();
      if (&x == &y) return 0;
      size_t n = std::min(x.size(), y.size());
      for (size_t i = 0; i < n; ++i) {
        if (int c = cmp3(x[i].first, y[i].first)) return c;
        if (int c = compareValues(x[i].second, y[i].second)) return c;
      }
      return cmp3(x.size(), y.size());
    }
    case ValueKind::Decimal: return cmp3(a.asDecimal(), b.asDecimal());
    case ValueKind::Ip: return cmp3(a.asIp(), b.asIp());
    case ValueKind::Datetime: return cmp3(a.asDatetime(), b.asDatetime());
    case ValueKind::Duration: return cmp3(a.asDuration(), b.asDuration());
  }
  return 0;
}

std::string_view kindName(ValueKind k) {
  switch (k) {
    case ValueKind::Bool: return "bool";
    case ValueKind::Long: return "long";
    case ValueKind::String: return "string";
    case ValueKind::Entity: return "entity";
    case ValueKind::Set: return "set";
    case ValueKind::Record: return "record";
    case ValueKind::Decimal: return "decimal";
    case ValueKind::Ip: return "ipaddr";
    case ValueKind::Datetime: return "datetime";
    case ValueKind::Duration: return "duration";
  }
  return "?";
}

std::string escapeCedarString(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\0': out += "\\0"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[12];
          std::snprintf(buf, sizeof buf, "\\u{%x}", c);
          out += buf;
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through unchanged
        }
    }
  }
  return out;
}

std::string toString(const EntityUid& u) { return u.type + "::\"" + escapeCedarString(u.id) + "\""; }

std::string toString(const Value& v) {
  switch (v.kind()) {
    case ValueKind::Bool: return v.asBool() ? "true" : "false";
    case ValueKind::Long: return std::to_string(v.asLong());
    case ValueKind::String: return "\"" + escapeCedarString(v.asString()) + "\"";
    case ValueKind::Entity: return toString(v.asEntity());
    case ValueKind::Set: {
      std::string s = "[";
      bool first = true;
      for (const Value& e : v.asSet()) {
        if (!first) s += ", ";
        first = false;
        s += toString(e);
      }
      return s + "]";
    }
    case ValueKind::Record: {
      std::string s = "{";
      bool first = true;
      for (const auto& [k, e] : v.asRecord()) {
        if (!first) s += ", ";
        first = false;
        s += "\"" + escapeCedarString(k) + "\": " + toString(e);
      }
      return s + "}";
    }
    case ValueKind::Decimal: return "decimal(\"" + toString(v.asDecimal()) + "\")";
    case ValueKind::Ip: return "ip(\"" + toString(v.asIp()) + "\")";
    case ValueKind::Datetime: return "datetime(\"" + toString(v.asDatetime()) + "\")";
    case ValueKind::Duration: return "duration(\"" + toString(v.asDuration()) + "\")";
  }
  return "?";
}

}  // namespace govmesh::cedar
