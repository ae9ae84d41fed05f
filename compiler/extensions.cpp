// Cedar's extension types with the semantics of Cedar 4.x as shipped in cedar-wasm 4.13 (the Rust
// implementation, which the Lean specification in cedar-spec is checked against). Where the two
// historically differed (e.g. `decimal("-0.5")`, `duration("-9223372036854775808ms")`), the Rust
// behaviour of that release wins, because conformance is judged against it.
//
// Every parser here is a hand-written scanner over bytes: Cedar's own grammars only accept ASCII
// digits, so any non-ASCII byte simply fails to match. Arithmetic that can overflow is done in
// 128 bits (or with explicit checks) so that overflow becomes an error, never a wrapped value.
#include "compiler/extensions.h"

#include <cstdio>
#include <limits>

namespace govmesh::cedar {
namespace {

// 128-bit integers (a GCC/Clang extension) hold every intermediate of the 64-bit arithmetic below.
__extension__ using U128 = unsigned __int128;
__extension__ using I128 = __int128;

constexpr int64_t kMsPerSecond = 1000;
constexpr int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr int64_t kMsPerDay = 24 * kMsPerHour;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
// |INT64_MIN|: the largest magnitude a negative int64 may have.
constexpr U128 kNegLimit = static_cast<U128>(kInt64Max) + 1;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Accumulates a run of ASCII digits into `out`, saturating just above `cap` so that arbitrarily
/// long inputs cannot wrap around. Returns false when the value exceeds `cap`.
bool digitsToValue(std::string_view digits, U128 cap, U128& out) {
  U128 v = 0;
  for (char c : digits) {
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > cap) return false;
  }
  out = v;
  return true;
}

/// Reads exactly `n` ASCII digits at `s[pos]` as a number; -1 when they are not all digits.
int fixedDigits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!isDigit(s[pos + i])) return -1;
    v = v * 10 + (s[pos + i] - '0');
  }
  return v;
}

void setError(std::string* err, std::string msg) {
  if (err) *err = std::move(msg);
}

// ---------------------------------------------------------------------------------------------
// decimal
// ---------------------------------------------------------------------------------------------

std::optional<Decimal> parseDecimalImpl(std::string_view s, std::string* err) {
  // Shape: -?[0-9]+\.[0-9]+ (the whole string).
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && s[i] == '-') {
    neg = true;
    ++i;
  }
  size_t intStart = i;
  while (i < s.size() && isDigit(s[i])) ++i;
  size_t intEnd = i;
  bool shapeOk = intEnd > intStart && i < s.size() && s[i] == '.';
  size_t fracStart = i + 1;
  if (shapeOk) {
    i = fracStart;
    while (i < s.size() && isDigit(s[i])) ++i;
    shapeOk = i > fracStart && i == s.size();
  }
  if (!shapeOk) {
    setError(err, "`" + std::string(s) + "` is not a well-formed decimal value");
    return std::nullopt;
  }
  // Cedar scales the integer part by 10^4 in i64 before it looks at the fraction, so that
  // overflow is reported ahead of "too many digits".
  const U128 limit = neg ? kNegLimit : static_cast<U128>(kInt64Max);
  U128 intPart = 0;
  if (!digitsToValue(s.substr(intStart, intEnd - intStart), kNegLimit, intPart) || intPart * 10000 > limit) {
    setError(err, "overflow when converting to decimal");
    return std::nullopt;
  }
  size_t fracLen = s.size() - fracStart;
  if (fracLen > 4) {
    setError(err, "too many digits after the decimal in `" + std::string(s) + "`");
    return std::nullopt;
  }
  U128 frac = 0;
  digitsToValue(s.substr(fracStart), 10000, frac);
  for (size_t k = fracLen; k < 4; ++k) frac *= 10;
  // The sign comes from the '-' (not from the integer part), so "-0.5" is negative.
  U128 mag = intPart * 10000 + frac;
  if (mag > limit) {
    setError(err, "overflow when converting to decimal");
    return std::nullopt;
  }
  int64_t v = neg ? static_cast<int64_t>(-static_cast<I128>(mag)) : static_cast<int64_t>(mag);
  return Decimal{v};
}

// ---------------------------------------------------------------------------------------------
// ipaddr
// ---------------------------------------------------------------------------------------------

/// Parses dotted-quad IPv4 as Rust's std does: four 1-3 digit decimal octets <= 255, no leading
/// zeros ("0" alone is fine).
bool parseV4(std::string_view s, std::array<uint8_t, 16>& bytes) {
  size_t pos = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (pos >= s.size() || s[pos] != '.') return false;
      ++pos;
    }
    size_t start = pos;
    while (pos < s.size() && isDigit(s[pos])) ++pos;
    size_t len = pos - start;
    if (len == 0 || len > 3) return false;
    if (len > 1 && s[start] == '0') return false;
    int v = fixedDigits(s, start, len);
    if (v > 255) return false;
    bytes[part] = static_cast<uint8_t>(v);
  }
  return pos == s.size();
}

/// Parses colon-separated groups of 1-4 hex digits; an empty string is zero groups.
bool parseV6Groups(std::string_view s, std::vector<uint16_t>& out) {
  if (s.empty()) return true;
  size_t pos = 0;
  while (true) {
    size_t start = pos;
    unsigned v = 0;
    while (pos < s.size() && hexValue(s[pos]) >= 0) v = v * 16 + static_cast<unsigned>(hexValue(s[pos++]));
    size_t len = pos - start;
    if (len == 0 || len > 4) return false;
    out.push_back(static_cast<uint16_t>(v));
    if (pos == s.size()) return true;
    if (s[pos] != ':') return false;
    ++pos;
  }
}

/// Parses IPv6 text without embedded IPv4 (Cedar rejects that form before parsing): up to eight
/// groups, with at most one "::" standing for one or more zero groups.
bool parseV6(std::string_view s, std::array<uint8_t, 16>& bytes) {
  std::vector<uint16_t> head, tail;
  size_t dc = s.find("::");
  if (dc == std::string_view::npos) {
    if (!parseV6Groups(s, head) || head.size() != 8) return false;
  } else {
    std::string_view left = s.substr(0, dc), right = s.substr(dc + 2);
    if (right.find("::") != std::string_view::npos) return false;
    if (!parseV6Groups(left, head) || !parseV6Groups(right, tail)) return false;
    if (head.size() + tail.size() >= 8) return false;  // "::" must stand for at least one group
    head.resize(8 - tail.size(), 0);
    head.insert(head.end(), tail.begin(), tail.end());
  }
  for (size_t g = 0; g < 8; ++g) {
    bytes[2 * g] = static_cast<uint8_t>(head[g] >> 8);
    bytes[2 * g + 1] = static_cast<uint8_t>(head[g] & 0xff);
  }
  return true;
}

/// Parses an address without prefix, IPv4 first, as Rust's `IpAddr::from_str`.
bool parseAddr(std::string_view s, IpAddr& out) {
  out = IpAddr{};
  if (parseV4(s, out.bytes)) {
    out.v6 = false;
    out.prefix = 32;
    return true;
  }
  out = IpAddr{};
  if (parseV6(s, out.bytes)) {
    out.v6 = true;
    out.prefix = 128;
    return true;
  }
  return false;
}

bool containsAtLeastTwo(std::string_view s, char c) {
  size_t i = s.find(c);
  return i != std::string_view::npos && s.find(c, i + 1) != std::string_view::npos;
}

std::optional<IpAddr> parseIpImpl(std::string_view s, std::string* err) {
  const std::string str(s);
  // Longest valid text: 8 groups of 4 hex digits, 7 colons and "/128".
  if (s.size() > 43) {
    setError(err, "error parsing IP address from string `" + str + "`: string length is too large");
    return std::nullopt;
  }
  // Cedar refuses IPv4-embedded IPv6 ("::ffff:1.2.3.4") by this coarse test on the whole string.
  if (containsAtLeastTwo(s, ':') && containsAtLeastTwo(s, '.')) {
    setError(err,
             "error parsing IP address from string: We do not accept IPv4 embedded in IPv6 (e.g., "
             "::ffff:127.0.0.1). Found: `" +
                 str + "`");
    return std::nullopt;
  }
  IpAddr a;
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) {
    if (!parseAddr(s, a)) {
      setError(err, "invalid IP address: " + str);
      return std::nullopt;
    }
    return a;
  }
  std::string_view addr = s.substr(0, slash), pre = s.substr(slash + 1);
  if (!parseAddr(addr, a)) {
    setError(err, "error parsing IP address from the string `" + std::string(addr) + "`: invalid IP address syntax");
    return std::nullopt;
  }
  const unsigned maxPrefix = a.v6 ? 128 : 32;
  const size_t maxLen = a.v6 ? 3 : 2;
  const std::string preStr(pre);
  if (pre.size() > maxLen) {
    setError(err, "error parsing prefix: string length " + std::to_string(pre.size()) + " is too large");
    return std::nullopt;
  }
  for (char c : pre) {
    if (!isDigit(c)) {
      setError(err, "error parsing prefix `" + preStr + "`: encountered non-digit");
      return std::nullopt;
    }
  }
  if (pre.size() > 1 && pre[0] == '0') {
    setError(err, "error parsing prefix `" + preStr + "`: leading zero(s)");
    return std::nullopt;
  }
  if (pre.empty()) {
    setError(err, "error parsing prefix from the string ``: cannot parse integer from empty string");
    return std::nullopt;
  }
  int p = fixedDigits(pre, 0, pre.size());
  if (p > 255) {
    setError(err, "error parsing prefix from the string `" + preStr + "`: number too large to fit in target type");
    return std::nullopt;
  }
  if (static_cast<unsigned>(p) > maxPrefix) {
    setError(err, "error parsing prefix: " + std::to_string(p) + " is larger than the limit " + std::to_string(maxPrefix));
    return std::nullopt;
  }
  a.prefix = static_cast<uint8_t>(p);
  return a;
}

/// The address as an unsigned number (IPv4 in the low 32 bits).
U128 addrBits(const IpAddr& a) {
  U128 v = 0;
  const int n = a.v6 ? 16 : 4;
  for (int i = 0; i < n; ++i) v = (v << 8) | a.bytes[i];
  return v;
}

/// Is the network `child` contained in the network `parent`? Host bits are ignored; an IPv4
/// network is never in an IPv6 one nor the reverse.
bool ipInRange(const IpAddr& child, const IpAddr& parent) {
  if (child.v6 != parent.v6) return false;
  const unsigned width = child.v6 ? 128 : 32;
  const U128 all = child.v6 ? ~static_cast<U128>(0) : 0xffffffffu;
  auto hostMask = [&](unsigned prefix) -> U128 {
    return prefix >= width ? 0 : (all >> prefix);
  };
  auto netMask = [&](unsigned prefix) { return all & ~hostMask(prefix); };
  const U128 c = addrBits(child), p = addrBits(parent);
  const U128 childLo = c & netMask(child.prefix), childHi = c | hostMask(child.prefix);
  const U128 parentLo = p & netMask(parent.prefix), parentHi = p | hostMask(parent.prefix);
  return parentLo <= childLo && childHi <= parentHi;
}

bool ipIsLoopback(const IpAddr& a) {
  if (!a.v6) return a.bytes[0] == 127 && a.prefix >= 8;
  for (int i = 0; i < 15; ++i)
    if (a.bytes[i] != 0) return false;
  return a.bytes[15] == 1 && a.prefix >= 128;
}

bool ipIsMulticast(const IpAddr& a) {
  if (!a.v6) return a.bytes[0] >= 224 && a.bytes[0] <= 239 && a.prefix >= 4;
  return a.bytes[0] == 0xff && a.prefix >= 8;
}

// ---------------------------------------------------------------------------------------------
// datetime and duration
// ---------------------------------------------------------------------------------------------

bool isLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

int daysInMonth(int64_t y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeapYear(y) ? 29 : kDays[m - 1];
}

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/// a mod b in [0, b) for b > 0. Computed from the remainder, because floorDiv(a, b) * b can
/// overflow near INT64_MIN.
int64_t floorMod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return r < 0 ? r + b : r;
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t daysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = floorDiv(y, 400);
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/// Inverse of daysFromCivil.
void civilFromDays(int64_t z, int64_t& y, int& m, int& d) {
  z += 719468;
  const int64_t era = floorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2);
}

std::optional<Datetime> parseDatetimeImpl(std::string_view s, std::string* err) {
  // Date: YYYY-MM-DD at the start.
  const int year = fixedDigits(s, 0, 4), month = fixedDigits(s, 5, 2), day = fixedDigits(s, 8, 2);
  if (year < 0 || month < 0 || day < 0 || s[4] != '-' || s[7] != '-') {
    setError(err, "invalid date pattern");
    return std::nullopt;
  }
  const std::string dateStr(s.substr(0, 10));
  auto dateValid = [&] { return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month); };
  if (s.size() == 10) {
    if (!dateValid()) {
      setError(err, "invalid date: " + dateStr);
      return std::nullopt;
    }
    return Datetime{daysFromCivil(year, month, day) * kMsPerDay};
  }
  // Time: Thh:mm:ss.
  const int hh = fixedDigits(s, 11, 2), mi = fixedDigits(s, 14, 2), ss = fixedDigits(s, 17, 2);
  if (s[10] != 'T' || hh < 0 || mi < 0 || ss < 0 || s[13] != ':' || s[16] != ':') {
    setError(err, "invalid hour/minute/second pattern");
    return std::nullopt;
  }
  // Rest: (.SSS)? then Z or (+|-)hhmm, then the end.
  std::string_view rest = s.substr(19);
  int millis = 0;
  if (!rest.empty() && rest[0] == '.') {
    millis = fixedDigits(rest, 1, 3);
    rest = millis < 0 ? std::string_view{} : rest.substr(4);  // empty fails the match below
  }
  bool restOk = false, hasOffset = false, positive = true;
  int offH = 0, offM = 0;
  if (rest == "Z") {
    restOk = true;
  } else if (rest.size() == 5 && (rest[0] == '+' || rest[0] == '-')) {
    offH = fixedDigits(rest, 1, 2);
    offM = fixedDigits(rest, 3, 2);
    restOk = offH >= 0 && offM >= 0;
    hasOffset = true;
    positive = rest[0] == '+';
  }
  if (!restOk) {
    setError(err, "invalid millisecond and/or offset pattern");
    return std::nullopt;
  }
  if (!dateValid()) {
    setError(err, "invalid date: " + dateStr);
    return std::nullopt;
  }
  if (hh >= 24 || mi >= 60 || ss >= 60) {  // no leap seconds
    setError(err, "invalid hour/minute/second: " + std::string(s.substr(11, 8)));
    return std::nullopt;
  }
  if (hasOffset && (offH >= 24 || offM >= 60)) {
    // Cedar prints the two numbers back to back, unpadded.
    setError(err, "invalid offset range: " + std::to_string(offH) + std::to_string(offM));
    return std::nullopt;
  }
  const int64_t offsetSeconds = (positive ? 1 : -1) * (int64_t{offH} * 3600 + int64_t{offM} * 60);
  // Years 0000-9999 and offsets under a day keep this far inside int64.
  const int64_t ms = daysFromCivil(year, month, day) * kMsPerDay + hh * kMsPerHour + mi * kMsPerMinute +
                     ss * kMsPerSecond + millis - offsetSeconds * kMsPerSecond;
  return Datetime{ms};
}

std::optional<Duration> parseDurationImpl(std::string_view s, std::string* err) {
  if (s.empty() || s == "-") {
    setError(err, "invalid duration pattern");
    return std::nullopt;
  }
  const bool neg = s[0] == '-';
  size_t pos = neg ? 1 : 0;
  // Units in the only order Cedar allows; each at most once.
  struct Unit {
    std::string_view name;
    int64_t ms;
  };
  static constexpr Unit kUnits[] = {{"d", kMsPerDay}, {"h", kMsPerHour}, {"m", kMsPerMinute}, {"s", kMsPerSecond}, {"ms", 1}};
  size_t nextUnit = 0;
  U128 total = 0;
  bool overflow = false;
  while (pos < s.size()) {
    size_t start = pos;
    while (pos < s.size() && isDigit(s[pos])) ++pos;
    std::string_view digits = s.substr(start, pos - start);
    // "ms" must be tried before "m" (a lone "m" followed by "s" would otherwise misparse).
    std::string_view unit;
    if (s.substr(pos, 2) == "ms") unit = "ms";
    else if (pos < s.size()) unit = s.substr(pos, 1);
    size_t u = nextUnit;
    while (u < 5 && kUnits[u].name != unit) ++u;
    if (digits.empty() || u == 5) {
      setError(err, "invalid duration pattern");
      return std::nullopt;
    }
    pos += unit.size();
    nextUnit = u + 1;
    // Cedar reads each quantity as a u64 and combines them with checked i64 arithmetic; the
    // result is exact when it fits and an overflow error otherwise.
    U128 q = 0;
    if (!digitsToValue(digits, std::numeric_limits<uint64_t>::max(), q)) {
      overflow = true;
      continue;  // keep scanning: a malformed tail is still a pattern error
    }
    if (!overflow) {
      total += q * static_cast<unsigned>(kUnits[u].ms);
      if (total > kNegLimit) overflow = true;
    }
  }
  if (overflow || total > (neg ? kNegLimit : static_cast<U128>(kInt64Max))) {
    setError(err, "Duration overflows internal representation");
    return std::nullopt;
  }
  return Duration{neg ? static_cast<int64_t>(-static_cast<I128>(total)) : static_cast<int64_t>(total)};
}

/// Floor of the datetime to midnight; nullopt when that falls below INT64_MIN.
std::optional<Datetime> toDate(Datetime d) {
  const int64_t days = floorDiv(d.ms, kMsPerDay);
  I128 v = static_cast<I128>(days) * kMsPerDay;
  if (v < kInt64Min) return std::nullopt;
  return Datetime{static_cast<int64_t>(v)};
}

/// Milliseconds since the last midnight (always 0 <= result < one day).
Duration toTime(Datetime d) { return Duration{floorMod(d.ms, kMsPerDay)}; }

/// How Cedar writes a computed datetime in messages.
std::string datetimeOffsetExpr(Datetime d) {
  return "datetime(\"1970-01-01\").offset(duration(\"" + std::to_string(d.ms) + "ms\"))";
}

// ---------------------------------------------------------------------------------------------
// dispatch
// ---------------------------------------------------------------------------------------------

ExtResult ok(Value v) { return ExtResult{std::move(v), {}}; }
ExtResult fail(std::string msg) { return ExtResult{std::nullopt, std::move(msg)}; }
ExtResult extFail(std::string_view ext, const std::string& msg) {
  return fail("error while evaluating `" + std::string(ext) + "` extension function: " + msg);
}

/// Cedar's name for a value's type in a type error (entities name their type).
std::string typeDescription(const Value& v) {
  if (v.isEntity()) return "(entity of type `" + v.asEntity().type + "`)";
  return std::string(kindName(v.kind()));
}

std::string typeError(std::string_view expected, const Value& got) {
  return "type error: expected " + std::string(expected) + ", got " + typeDescription(got);
}

using Handler = ExtResult (*)(const std::vector<Value>&);

struct ExtFn {
  std::string_view name;
  int arity;          // receiver included
  bool isConstructor; // function-style (`ip("...")`) rather than method-style
  Handler fn;
};

/// Checks that every argument has the expected kind; the first mismatch is the error.
std::optional<std::string> checkKinds(const std::vector<Value>& args, std::initializer_list<ValueKind> kinds) {
  size_t i = 0;
  for (ValueKind k : kinds) {
    if (args[i].kind() != k) return typeError(kindName(k), args[i]);
    ++i;
  }
  return std::nullopt;
}

#define GOVMESH_CHECK_KINDS(...)                                   \
  if (auto typeErr = checkKinds(args, {__VA_ARGS__})) return fail(*typeErr)

ExtResult callDecimal(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::String);
  std::string err;
  if (auto d = parseDecimalImpl(args[0].asString(), &err)) return ok(Value::decimal(*d));
  return extFail("decimal", err);
}

template <bool (*Cmp)(int64_t, int64_t)>
ExtResult decimalCompare(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Decimal, ValueKind::Decimal);
  return ok(Value::boolean(Cmp(args[0].asDecimal().scaled, args[1].asDecimal().scaled)));
}
bool lt(int64_t a, int64_t b) { return a < b; }
bool le(int64_t a, int64_t b) { return a <= b; }
bool gt(int64_t a, int64_t b) { return a > b; }
bool ge(int64_t a, int64_t b) { return a >= b; }

ExtResult callIp(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::String);
  std::string err;
  if (auto a = parseIpImpl(args[0].asString(), &err)) return ok(Value::ip(*a));
  return extFail("ipaddr", err);
}

template <bool (*Pred)(const IpAddr&)>
ExtResult ipPredicate(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Ip);
  return ok(Value::boolean(Pred(args[0].asIp())));
}
bool ipIsV4(const IpAddr& a) { return !a.v6; }
bool ipIsV6(const IpAddr& a) { return a.v6; }

ExtResult callIsInRange(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Ip, ValueKind::Ip);
  return ok(Value::boolean(ipInRange(args[0].asIp(), args[1].asIp())));
}

ExtResult callDatetime(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::String);
  std::string err;
  if (auto d = parseDatetimeImpl(args[0].asString(), &err)) return ok(Value::datetime(*d));
  return extFail("datetime", err);
}

ExtResult callDuration(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::String);
  std::string err;
  if (auto d = parseDurationImpl(args[0].asString(), &err)) return ok(Value::duration(*d));
  return extFail("duration", err);
}

ExtResult callOffset(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Datetime, ValueKind::Duration);
  const Datetime d = args[0].asDatetime();
  const Duration by = args[1].asDuration();
  int64_t r;
  if (__builtin_add_overflow(d.ms, by.ms, &r))
    return extFail("offset", "overflows when adding an offset: " + datetimeOffsetExpr(d) + "+(" + toString(by) + ")");
  return ok(Value::datetime(Datetime{r}));
}

ExtResult callDurationSince(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Datetime, ValueKind::Datetime);
  const Datetime a = args[0].asDatetime(), b = args[1].asDatetime();
  int64_t r;
  if (__builtin_sub_overflow(a.ms, b.ms, &r))
    return extFail("durationSince", "overflows when computing the duration between " + datetimeOffsetExpr(a) + " and " +
                                        datetimeOffsetExpr(b));
  return ok(Value::duration(Duration{r}));
}

ExtResult callToDate(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Datetime);
  const Datetime d = args[0].asDatetime();
  if (auto r = toDate(d)) return ok(Value::datetime(*r));
  return extFail("toDate", "overflows when computing the date of " + datetimeOffsetExpr(d));
}

ExtResult callToTime(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Datetime);
  return ok(Value::duration(toTime(args[0].asDatetime())));
}

// Duration conversions truncate toward zero, as Rust's integer division does.
template <int64_t Divisor>
ExtResult durationTo(const std::vector<Value>& args) {
  GOVMESH_CHECK_KINDS(ValueKind::Duration);
  return ok(Value::integer(args[0].asDuration().ms / Divisor));
}

#undef GOVMESH_CHECK_KINDS

// Cedar's `unknown("name")` marks a value for partial evaluation. govmesh evaluates concrete
// requests only, so like Cedar's concrete authorizer it makes the policy an error.
ExtResult callUnknown(const std::vector<Value>& args) {
  std::string name = args[0].isString() ? args[0].asString() : toString(args[0]);
  return fail("unknown value `" + name + "`: partial evaluation is not supported, so this policy errors");
}

constexpr ExtFn kExtFns[] = {
    {"unknown", 1, true, callUnknown},
    {"decimal", 1, true, callDecimal},
    {"lessThan", 2, false, decimalCompare<lt>},
    {"lessThanOrEqual", 2, false, decimalCompare<le>},
    {"greaterThan", 2, false, decimalCompare<gt>},
    {"greaterThanOrEqual", 2, false, decimalCompare<ge>},
    {"ip", 1, true, callIp},
    {"isIpv4", 1, false, ipPredicate<ipIsV4>},
    {"isIpv6", 1, false, ipPredicate<ipIsV6>},
    {"isLoopback", 1, false, ipPredicate<ipIsLoopback>},
    {"isMulticast", 1, false, ipPredicate<ipIsMulticast>},
    {"isInRange", 2, false, callIsInRange},
    {"datetime", 1, true, callDatetime},
    {"duration", 1, true, callDuration},
    {"offset", 2, false, callOffset},
    {"durationSince", 2, false, callDurationSince},
    {"toDate", 1, false, callToDate},
    {"toTime", 1, false, callToTime},
    {"toMilliseconds", 1, false, durationTo<1>},
    {"toSeconds", 1, false, durationTo<kMsPerSecond>},
    {"toMinutes", 1, false, durationTo<kMsPerMinute>},
    {"toHours", 1, false, durationTo<kMsPerHour>},
    {"toDays", 1, false, durationTo<kMsPerDay>},
};

const ExtFn* findExt(std::string_view name) {
  for (const ExtFn& f : kExtFns)
    if (f.name == name) return &f;
  return nullptr;
}

std::string pad(int64_t v, int width) {
  std::string s = std::to_string(v);
  if (static_cast<int>(s.size()) < width) s.insert(0, static_cast<size_t>(width) - s.size(), '0');
  return s;
}

}  // namespace

std::optional<Decimal> parseDecimal(std::string_view s) { return parseDecimalImpl(s, nullptr); }
std::optional<IpAddr> parseIp(std::string_view s) { return parseIpImpl(s, nullptr); }
std::optional<Datetime> parseDatetime(std::string_view s) { return parseDatetimeImpl(s, nullptr); }
std::optional<Duration> parseDuration(std::string_view s) { return parseDurationImpl(s, nullptr); }

std::string toString(Decimal d) {
  // Always four fractional digits, so the text parses back to the same value.
  const bool neg = d.scaled < 0;
  const uint64_t mag = neg ? 0 - static_cast<uint64_t>(d.scaled) : static_cast<uint64_t>(d.scaled);
  return (neg ? "-" : "") + std::to_string(mag / 10000) + "." + pad(static_cast<int64_t>(mag % 10000), 4);
}

std::string toString(const IpAddr& a) {
  std::string s;
  if (!a.v6) {
    for (int i = 0; i < 4; ++i) s += (i ? "." : "") + std::to_string(a.bytes[i]);
    if (a.prefix != 32) s += "/" + std::to_string(a.prefix);
    return s;
  }
  // RFC 5952 shape, as Rust prints it: lowercase hex, the longest run (first on ties) of two or
  // more zero groups replaced by "::". Never the dotted IPv4 tail, which Cedar would not re-read.
  uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = static_cast<uint16_t>((a.bytes[2 * i] << 8) | a.bytes[2 * i + 1]);
  int bestStart = -1, bestLen = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    if (i == bestStart) {
      s += "::";
      i += bestLen - 1;
      continue;
    }
    if (!s.empty() && s.back() != ':') s += ":";
    std::snprintf(buf, sizeof buf, "%x", g[i]);
    s += buf;
  }
  if (a.prefix != 128) s += "/" + std::to_string(a.prefix);
  return s;
}

std::string toString(Datetime d) {
  const int64_t days = floorDiv(d.ms, kMsPerDay);
  const int64_t msOfDay = floorMod(d.ms, kMsPerDay);
  int64_t y;
  int m, day;
  civilFromDays(days, y, m, day);
  std::string s;
  if (y < 0) s = "-" + pad(-y, 4);
  else if (y > 9999) s = "+" + std::to_string(y);
  else s = pad(y, 4);
  s += "-" + pad(m, 2) + "-" + pad(day, 2) + "T";
  s += pad(msOfDay / kMsPerHour, 2) + ":" + pad(msOfDay / kMsPerMinute % 60, 2) + ":" +
       pad(msOfDay / kMsPerSecond % 60, 2) + "." + pad(msOfDay % 1000, 3) + "Z";
  return s;
}

std::string toString(Duration d) { return std::to_string(d.ms) + "ms"; }

std::string toCedarExpr(Datetime d) {
  const int64_t minMs = daysFromCivil(0, 1, 1) * kMsPerDay;
  const int64_t maxMs = daysFromCivil(10000, 1, 1) * kMsPerDay - 1;
  if (d.ms >= minMs && d.ms <= maxMs) return "datetime(\"" + toString(d) + "\")";
  return datetimeOffsetExpr(d);
}

bool isExtensionFunction(std::string_view name) {
  const ExtFn* f = findExt(name);
  return f && f->isConstructor;
}

bool isExtensionMethod(std::string_view name) {
  const ExtFn* f = findExt(name);
  return f && !f->isConstructor;
}

int extensionArity(std::string_view name) {
  const ExtFn* f = findExt(name);
  return f ? f->arity : -1;
}

ExtResult callExtension(std::string_view name, const std::vector<Value>& args) {
  const ExtFn* f = findExt(name);
  if (!f) return fail("function does not exist: `" + std::string(name) + "`");
  if (static_cast<int>(args.size()) != f->arity)
    return fail("wrong number of arguments provided to extension function `" + std::string(name) + "`: expected " +
                std::to_string(f->arity) + ", got " + std::to_string(args.size()));
  return f->fn(args);
}

}  // namespace govmesh::cedar
