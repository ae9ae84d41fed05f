// Tests for Cedar's extension types. Expected values were checked against the reference engine
// (cedar-wasm 4.13) where the behaviour is not obvious from the Cedar documentation; many inputs
// are the odd literals found in Cedar's integration corpus.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "compiler/extensions.h"

namespace {

using namespace govmesh::cedar;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kDay = 86'400'000;

Value str(const std::string& s) { return Value::string(s); }

/// Calls a constructor on a string that must be valid.
Value make(std::string_view fn, const std::string& s) {
  ExtResult r = callExtension(fn, {str(s)});
  INFO(fn, "(\"", s, "\"): ", r.error);
  REQUIRE(r.value.has_value());
  return *r.value;
}

bool isError(std::string_view fn, const std::vector<Value>& args) { return !callExtension(fn, args).value; }

bool callBool(std::string_view fn, const std::vector<Value>& args) {
  ExtResult r = callExtension(fn, args);
  INFO(fn, ": ", r.error);
  REQUIRE(r.value.has_value());
  REQUIRE(r.value->isBool());
  return r.value->asBool();
}

int64_t callLong(std::string_view fn, const std::vector<Value>& args) {
  ExtResult r = callExtension(fn, args);
  INFO(fn, ": ", r.error);
  REQUIRE(r.value.has_value());
  REQUIRE(r.value->isLong());
  return r.value->asLong();
}

int64_t dec(const char* s) {
  auto d = parseDecimal(s);
  INFO("decimal ", s);
  REQUIRE(d.has_value());
  return d->scaled;
}

int64_t dur(const char* s) {
  auto d = parseDuration(s);
  INFO("duration ", s);
  REQUIRE(d.has_value());
  return d->ms;
}

int64_t dt(const char* s) {
  auto d = parseDatetime(s);
  INFO("datetime ", s);
  REQUIRE(d.has_value());
  return d->ms;
}

Value ip(const char* s) { return make("ip", s); }

/// Both strings parse as IP addresses and denote the same value.
bool sameIp(const char* a, const char* b) {
  auto x = parseIp(a), y = parseIp(b);
  return x && y && *x == *y;
}
Value datetimeValue(int64_t ms) { return Value::datetime(Datetime{ms}); }
Value durationValue(int64_t ms) { return Value::duration(Duration{ms}); }

}  // namespace

// -------------------------------------------------------------------------------------------------
// decimal
// -------------------------------------------------------------------------------------------------

TEST_CASE("extensions: decimal parsing") {
  CHECK(dec("1.0") == 10000);
  CHECK(dec("1.2345") == 12345);
  CHECK(dec("123.456") == 1234560);
  CHECK(dec("0.1") == 1000);
  CHECK(dec("00.000") == 0);
  CHECK(dec("0123.0") == 1230000);
  CHECK(dec("-1.5") == -15000);
  // The sign belongs to the whole literal, even when the integer part is zero (fixed in Cedar 4.8).
  CHECK(dec("-0.5") == -5000);
  CHECK(dec("-0.0001") == -1);
  CHECK(dec("-0.0") == 0);
  CHECK(dec("68784.8447") == 687848447);
  // Int64 bounds after scaling by 10^4.
  CHECK(dec("922337203685477.5807") == kMax);
  CHECK(dec("-922337203685477.5808") == kMin);
  CHECK_FALSE(parseDecimal("922337203685477.5808"));
  CHECK_FALSE(parseDecimal("-922337203685477.5809"));
  CHECK_FALSE(parseDecimal("922337203685478.0"));
  CHECK_FALSE(parseDecimal("9223372036854775807.0"));
  CHECK_FALSE(parseDecimal("-9223372036854775808.0"));
  CHECK_FALSE(parseDecimal("99999999999999999999999999999999999999999.0"));
  CHECK_FALSE(parseDecimal("79537554428823969.5360"));
  // Malformed.
  for (const char* bad : {"", "1", "1234", "1.", ".1", "-.1", "-.", "1..0", "1.0.0", "1.0.", "1.a", "+1.0", "--1.0",
                          " 1.0", "1.0 ", "1e3", "1,0", "0.12345", "0.00000", "6221255448@4007459.3878", "\xd9\xa1.0"}) {
    INFO("decimal ", bad);
    CHECK_FALSE(parseDecimal(bad));
  }
}

TEST_CASE("extensions: decimal rendering round-trips") {
  CHECK(toString(Decimal{10000}) == "1.0000");
  CHECK(toString(Decimal{10500}) == "1.0500");
  CHECK(toString(Decimal{-5000}) == "-0.5000");
  CHECK(toString(Decimal{-1}) == "-0.0001");
  CHECK(toString(Decimal{0}) == "0.0000");
  CHECK(toString(Decimal{kMax}) == "922337203685477.5807");
  CHECK(toString(Decimal{kMin}) == "-922337203685477.5808");
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{123456789}, int64_t{-98765}, kMax, kMin}) {
    auto back = parseDecimal(toString(Decimal{v}));
    REQUIRE(back.has_value());
    CHECK(back->scaled == v);
  }
}

TEST_CASE("extensions: decimal comparisons") {
  Value a = make("decimal", "1.23"), b = make("decimal", "1.2300"), c = make("decimal", "-0.5");
  CHECK_FALSE(callBool("lessThan", {a, b}));
  CHECK(callBool("lessThanOrEqual", {a, b}));
  CHECK_FALSE(callBool("greaterThan", {a, b}));
  CHECK(callBool("greaterThanOrEqual", {a, b}));
  CHECK(callBool("lessThan", {c, a}));
  CHECK(callBool("greaterThan", {a, c}));
  CHECK_FALSE(callBool("greaterThanOrEqual", {c, a}));
  CHECK((a == b));
}

TEST_CASE("extensions: decimal errors") {
  ExtResult r = callExtension("decimal", {str("1.2.3")});
  REQUIRE_FALSE(r.value);
  CHECK(r.error == "error while evaluating `decimal` extension function: `1.2.3` is not a well-formed decimal value");
  r = callExtension("decimal", {str("1.23456")});
  CHECK(r.error == "error while evaluating `decimal` extension function: too many digits after the decimal in `1.23456`");
  r = callExtension("decimal", {str("1000000000000000.0")});
  CHECK(r.error == "error while evaluating `decimal` extension function: overflow when converting to decimal");
  // Cedar scales the integer part before it counts fraction digits.
  r = callExtension("decimal", {str("-77579118838073192.44225")});
  CHECK(r.error == "error while evaluating `decimal` extension function: overflow when converting to decimal");
  r = callExtension("decimal", {Value::integer(1)});
  CHECK(r.error == "type error: expected string, got long");
  r = callExtension("lessThan", {str("1.0"), make("decimal", "1.0")});
  CHECK(r.error == "type error: expected decimal, got string");
  r = callExtension("lessThan", {make("decimal", "1.0"), Value::entity({"U", "a"})});
  CHECK(r.error == "type error: expected decimal, got (entity of type `U`)");
  r = callExtension("greaterThan", {make("decimal", "1.0"), ip("1.2.3.4")});
  CHECK(r.error == "type error: expected decimal, got ipaddr");
}

// -------------------------------------------------------------------------------------------------
// ipaddr
// -------------------------------------------------------------------------------------------------

TEST_CASE("extensions: IPv4 parsing") {
  auto a = parseIp("192.168.0.1");
  REQUIRE(a);
  CHECK_FALSE(a->v6);
  CHECK(a->prefix == 32);
  CHECK(a->bytes[0] == 192);
  CHECK(a->bytes[3] == 1);
  CHECK(a->bytes[4] == 0);
  auto n = parseIp("10.0.0.1/24");
  REQUIRE(n);
  CHECK(n->prefix == 24);
  CHECK(n->bytes[3] == 1);  // host bits are kept
  CHECK(sameIp("1.2.3.4", "1.2.3.4/32"));
  CHECK_FALSE(sameIp("10.0.0.1/24", "10.0.0.0/24"));
  CHECK(parseIp("0.0.0.0/0")->prefix == 0);
  CHECK(parseIp("255.255.255.255"));
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.0", "1.2.3.04", "01.2.3.4", "00.0.0.0", "1.2.3.4/33",
                          "1.2.3.4/01", "1.2.3.4/00", "1.2.3.4/", "1.2.3.4/123", "1.2.3.4/1/2", "1.2.3.4/+1",
                          "1.2.3.4/-1", "1.2.3.4/ 1", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4:80", "1.2.3.x/1",
                          "\xe0\xa5\xa7.2.3.4", "1.2.3.4::"}) {
    INFO("ip ", bad);
    CHECK_FALSE(parseIp(bad));
  }
}

TEST_CASE("extensions: IPv6 parsing") {
  auto a = parseIp("::1");
  REQUIRE(a);
  CHECK(a->v6);
  CHECK(a->prefix == 128);
  CHECK(a->bytes[15] == 1);
  CHECK(sameIp("::", "0:0:0:0:0:0:0:0"));
  CHECK(sameIp("::/0", "0:0:0:0:0:0:0:0/0"));
  CHECK(sameIp("1::", "1:0:0:0:0:0:0:0"));
  CHECK(sameIp("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"));
  CHECK(sameIp("::1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"));
  CHECK(sameIp("ABCD:EF01:2345:6789:ABCD:EF01:2345:6789/128", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"));
  CHECK(sameIp("0000:0000::0001", "::1"));
  CHECK(parseIp("ffff:ffff:f8ff:ffff:ffff:4:ffff:ffff/0"));
  CHECK(parseIp("afaf:afaf:0:1af:afaf:afaf:afaf:afa7/46"));
  CHECK(parseIp("::1/128"));
  for (const char* bad : {"12345::", "00000::", ":::", "1:::2", "1::2::3", "0::0::0", "1:2:3:4:5:6:7:8:9",
                          "1:2:3:4:5:6:7", "1:2:3:4::5:6:7:8", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8::", "::1:",
                          ":1::", ":1", "1:", "g::", "::/129", "::/1a", "::1/0128", "::1/01", "::/", "[::1]",
                          "fe80::1%eth0", "ABCD:EF01:2345:6789:ABCD:EF01:2345:6789/1280",
                          // IPv4 embedded in IPv6 is refused outright.
                          "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "::ffff:127.0.0.1/128"}) {
    INFO("ip ", bad);
    CHECK_FALSE(parseIp(bad));
  }
}

TEST_CASE("extensions: ip errors read like Cedar's") {
  ExtResult r = callExtension("ip", {str("1.2.3.4/01")});
  CHECK(r.error == "error while evaluating `ipaddr` extension function: error parsing prefix `01`: leading zero(s)");
  r = callExtension("ip", {str("1.2.3.4/33")});
  CHECK(r.error == "error while evaluating `ipaddr` extension function: error parsing prefix: 33 is larger than the limit 32");
  r = callExtension("ip", {str("::/129")});
  CHECK(r.error == "error while evaluating `ipaddr` extension function: error parsing prefix: 129 is larger than the limit 128");
  r = callExtension("ip", {str("1.2.3.4/123")});
  CHECK(r.error == "error while evaluating `ipaddr` extension function: error parsing prefix: string length 3 is too large");
  r = callExtension("ip", {str("01.2.3.4")});
  CHECK(r.error == "error while evaluating `ipaddr` extension function: invalid IP address: 01.2.3.4");
  r = callExtension("ip", {str("::ffff:1.2.3.4")});
  CHECK(r.error.find("We do not accept IPv4 embedded in IPv6") != std::string::npos);
  r = callExtension("isInRange", {ip("1.2.3.4"), str("1.2.3.4")});
  CHECK(r.error == "type error: expected ipaddr, got string");
}

TEST_CASE("extensions: ip predicates") {
  CHECK(callBool("isIpv4", {ip("1.2.3.4")}));
  CHECK_FALSE(callBool("isIpv6", {ip("1.2.3.4")}));
  CHECK(callBool("isIpv6", {ip("::ffff:ff00:1")}));

  CHECK(callBool("isLoopback", {ip("127.0.0.1")}));
  CHECK(callBool("isLoopback", {ip("127.255.0.0/8")}));
  CHECK_FALSE(callBool("isLoopback", {ip("127.0.0.0/7")}));
  CHECK_FALSE(callBool("isLoopback", {ip("128.0.0.1")}));
  CHECK(callBool("isLoopback", {ip("::1")}));
  CHECK_FALSE(callBool("isLoopback", {ip("::1/127")}));
  CHECK_FALSE(callBool("isLoopback", {ip("::ffff:7f00:1")}));  // IPv4-mapped is still IPv6

  CHECK(callBool("isMulticast", {ip("224.0.0.1")}));
  CHECK(callBool("isMulticast", {ip("239.255.255.255")}));
  CHECK(callBool("isMulticast", {ip("224.0.0.0/4")}));
  CHECK_FALSE(callBool("isMulticast", {ip("239.0.0.0/3")}));
  CHECK_FALSE(callBool("isMulticast", {ip("240.0.0.0")}));
  CHECK(callBool("isMulticast", {ip("ff00::/8")}));
  CHECK_FALSE(callBool("isMulticast", {ip("ff00::/7")}));
  CHECK(callBool("isMulticast", {ip("ff02::1")}));
  CHECK_FALSE(callBool("isMulticast", {ip("fe00::1")}));
}

TEST_CASE("extensions: isInRange") {
  CHECK(callBool("isInRange", {ip("10.0.0.1"), ip("10.0.0.0/24")}));
  CHECK(callBool("isInRange", {ip("10.0.0.0/24"), ip("10.0.0.0/24")}));
  CHECK(callBool("isInRange", {ip("10.0.0.0/25"), ip("10.0.0.1/24")}));  // host bits ignored
  CHECK_FALSE(callBool("isInRange", {ip("10.0.0.0/23"), ip("10.0.0.0/24")}));
  CHECK_FALSE(callBool("isInRange", {ip("10.0.1.1"), ip("10.0.0.0/24")}));
  // /0 covers everything of its family; /32 and /128 only the address itself.
  CHECK(callBool("isInRange", {ip("0.0.0.0/0"), ip("1.1.1.1/0")}));
  CHECK_FALSE(callBool("isInRange", {ip("1.1.1.1/0"), ip("0.0.0.0/1")}));
  CHECK(callBool("isInRange", {ip("255.255.255.255"), ip("0.0.0.0/0")}));
  CHECK(callBool("isInRange", {ip("1.2.3.4"), ip("1.2.3.4/32")}));
  CHECK_FALSE(callBool("isInRange", {ip("1.2.3.5"), ip("1.2.3.4/32")}));
  CHECK(callBool("isInRange", {ip("ffff::1"), ip("::/0")}));
  CHECK(callBool("isInRange", {ip("2001:db8::1"), ip("2001:db8::/32")}));
  CHECK_FALSE(callBool("isInRange", {ip("2001:db9::1"), ip("2001:db8::/32")}));
  CHECK(callBool("isInRange", {ip("::1"), ip("::1/128")}));
  CHECK_FALSE(callBool("isInRange", {ip("::2"), ip("::1/128")}));
  // Families never mix.
  CHECK_FALSE(callBool("isInRange", {ip("::ffff:101:101"), ip("1.1.1.1/0")}));
  CHECK_FALSE(callBool("isInRange", {ip("1.1.1.1"), ip("::/0")}));
}

TEST_CASE("extensions: ip rendering round-trips") {
  CHECK(toString(*parseIp("1.2.3.4")) == "1.2.3.4");
  CHECK(toString(*parseIp("10.0.0.1/24")) == "10.0.0.1/24");
  CHECK(toString(*parseIp("::")) == "::");
  CHECK(toString(*parseIp("::1")) == "::1");
  CHECK(toString(*parseIp("1::")) == "1::");
  CHECK(toString(*parseIp("2001:0DB8:0:0:1:0:0:1/64")) == "2001:db8::1:0:0:1/64");  // first of equal runs
  CHECK(toString(*parseIp("1:0:2:3:4:5:6:7")) == "1:0:2:3:4:5:6:7");                // a single zero stays
  CHECK(toString(*parseIp("::ffff:ff00:1")) == "::ffff:ff00:1");                    // never dotted
  CHECK(toString(*parseIp("::ffff:102:304")) == "::ffff:102:304");
  for (const char* s : {"0.0.0.0/0", "255.255.255.255", "::/0", "1:2:3:4:5:6:7:8", "ff00::/8", "::ffff:102:304",
                        "1:0:0:2:0:0:0:3", "0:0:1::"}) {
    auto a = parseIp(s);
    REQUIRE(a);
    auto back = parseIp(toString(*a));
    INFO(s, " -> ", toString(*a));
    REQUIRE(back);
    CHECK((*back == *a));
  }
}

// -------------------------------------------------------------------------------------------------
// datetime
// -------------------------------------------------------------------------------------------------

TEST_CASE("extensions: datetime formats") {
  CHECK(dt("1970-01-01") == 0);
  CHECK(dt("2024-10-15") == 1728950400000);
  CHECK(dt("2024-10-15T11:38:02Z") == 1728950400000 + (11 * 3600 + 38 * 60 + 2) * 1000);
  CHECK(dt("2024-10-15T11:38:02.101Z") == 1728950400000 + (11 * 3600 + 38 * 60 + 2) * 1000 + 101);
  // Offsets are normalized to UTC: local time minus the offset.
  CHECK(dt("2024-10-15T11:38:02.101+1134") == dt("2024-10-15T00:04:02.101Z"));
  CHECK(dt("2024-10-15T11:38:02.101-1134") == dt("2024-10-15T23:12:02.101Z"));
  CHECK(dt("2024-10-15T11:38:02+1134") == dt("2024-10-15T00:04:02Z"));
  CHECK(dt("2024-10-15T23:59:00+2359") == dt("2024-10-15"));
  CHECK(dt("2024-10-15T00:00:00-2359") == dt("2024-10-15T23:59:00Z"));
  CHECK(dt("2024-01-01T00:00:00-0000") == dt("2024-01-01"));
  CHECK(dt("1969-12-31T23:59:59Z") == -1000);
  CHECK(dt("2024-02-29T12:30:45.123Z") == 1709209845123);
  // The whole range of four-digit years, year 0 included (proleptic Gregorian, a leap year).
  CHECK(dt("0001-01-01") == -62135596800000);
  CHECK(dt("0000-01-01") == -62135596800000 - 366 * kDay);
  CHECK(dt("0000-01-01T02:14:14+1414") == -62167262386000);
  CHECK(dt("0000-01-01T00:00:00+0100") == dt("0000-01-01") - 3600000);  // lands in year -1
  CHECK(dt("9999-12-31T23:59:59.999Z") == 253402300799999);
  CHECK(dt("9999-12-31T23:59:59.999-2359") == 253402300799999 + (23 * 60 + 59) * 60000);
  CHECK(dt("2102-03-25T06:38:26-1126") == 4172753066000);
  CHECK(dt("4250-11-03T10:00:00.343Z") == 71976333600343);
  CHECK(dt("3107-04-21T10:44:14+0803") == 35889705674000);
}

TEST_CASE("extensions: datetime validity") {
  // Leap years.
  CHECK(parseDatetime("2024-02-29"));
  CHECK(parseDatetime("2000-02-29"));
  CHECK(parseDatetime("0000-02-29"));
  CHECK_FALSE(parseDatetime("2023-02-29"));
  CHECK_FALSE(parseDatetime("1900-02-29"));
  CHECK_FALSE(parseDatetime("2024-02-30"));
  CHECK_FALSE(parseDatetime("2024-04-31"));
  CHECK(parseDatetime("2024-12-31"));
  for (const char* bad :
       {"", "a", "-", "-1", "11-12-13", "1111-1x-20", "2024-00-01", "2024-01-00", "2024-13-01", "2024-01-32",
        "0257-02-31T01:00:00Z", "5192-03-44", "10000-01-01", "+2024-01-01", "2024-1-01", "20240101", "000000000",
        "0000-01-1",
        // time part
        "2024-10-15Z", "2024-01-01T", "2024-01-01Ta", "2024-01-01T01:", "2024-01-01T01:02", "2024-01-01T01:02:0b",
        "2024-01-01T01::02:03", "2024-01-01T24:00:00Z", "2024-01-01T01:60:03Z", "2016-12-31T23:59:60Z",
        "2016-12-31T23:59:61Z", "2024-01-01t00:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T00:00Z",
        // milliseconds / offset part
        "2024-01-01T00:00:00", "0000-01-01T00:00:00", "2024-01-01T00:00:00T", "2024-01-01T00:00:00ZZ",
        "2024-10-15T11:38:02ZZ", "2024-01-01T00:00:00z", "2024-01-01T00:00:00x001Z", "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1Z", "2024-01-01T00:00:00.0001Z", "2024-01-01T00:00:00.001ZZ", "2024-01-01T00:00:00+00:00",
        "2024-01-01T00:00:00+000", "2024-01-01T00:00:00+00000", "2024-01-01T00:00:00+2400", "2024-01-01T00:00:00-0060",
        "0000-01-30T15:15:15.328-0334488", "2024-01-01T00:00:00\xe2\x9e\x95" "0000", "2024-01-01T00:00:00Z\n"}) {
    INFO("datetime ", bad);
    CHECK_FALSE(parseDatetime(bad));
  }
}

TEST_CASE("extensions: datetime errors read like Cedar's") {
  auto msg = [](const char* s) { return callExtension("datetime", {str(s)}).error; };
  const std::string p = "error while evaluating `datetime` extension function: ";
  CHECK(msg("2024-1-01") == p + "invalid date pattern");
  CHECK(msg("2024-02-30") == p + "invalid date: 2024-02-30");
  CHECK(msg("2024-01-01T1") == p + "invalid hour/minute/second pattern");
  CHECK(msg("2024-01-01T24:00:00Z") == p + "invalid hour/minute/second: 24:00:00");
  CHECK(msg("2024-01-01T00:00:00") == p + "invalid millisecond and/or offset pattern");
  CHECK(msg("2024-01-01T00:00:00+2400") == p + "invalid offset range: 240");
}

TEST_CASE("extensions: offset and durationSince") {
  const int64_t t = dt("2024-10-15");
  ExtResult r = callExtension("offset", {datetimeValue(t), durationValue(dur("1d2h"))});
  REQUIRE(r.value);
  CHECK(r.value->asDatetime().ms == dt("2024-10-16T02:00:00Z"));
  r = callExtension("offset", {datetimeValue(t), durationValue(dur("-1d"))});
  CHECK(r.value->asDatetime().ms == dt("2024-10-14"));
  // Overflow is an error, not a wrapped value.
  CHECK(isError("offset", {datetimeValue(dt("9999-12-31T23:59:59.999-2359")), durationValue(kMax)}));
  CHECK(isError("offset", {datetimeValue(-1), durationValue(kMin)}));
  CHECK(callExtension("offset", {datetimeValue(0), durationValue(kMin)}).value->asDatetime().ms == kMin);
  r = callExtension("offset", {datetimeValue(1), durationValue(kMax)});
  CHECK(r.error ==
        "error while evaluating `offset` extension function: overflows when adding an offset: "
        "datetime(\"1970-01-01\").offset(duration(\"1ms\"))+(9223372036854775807ms)");

  r = callExtension("durationSince", {datetimeValue(dt("2024-01-01")), datetimeValue(dt("2024-01-02"))});
  REQUIRE(r.value);
  CHECK(r.value->asDuration().ms == -kDay);
  CHECK(isError("durationSince", {datetimeValue(kMax), datetimeValue(-1)}));
  CHECK(isError("durationSince", {datetimeValue(kMin), datetimeValue(1)}));
  CHECK(callExtension("durationSince", {datetimeValue(-1), datetimeValue(kMax)}).value->asDuration().ms == kMin);

  r = callExtension("durationSince", {datetimeValue(0), durationValue(1)});
  CHECK(r.error == "type error: expected datetime, got duration");
  r = callExtension("offset", {datetimeValue(0), Value::integer(1)});
  CHECK(r.error == "type error: expected duration, got long");
}

TEST_CASE("extensions: toDate and toTime floor toward the past") {
  auto toDate = [](int64_t ms) { return callExtension("toDate", {datetimeValue(ms)}); };
  auto toTime = [](int64_t ms) { return callExtension("toTime", {datetimeValue(ms)}).value->asDuration().ms; };
  CHECK(toDate(dt("2024-10-15T11:38:02.101Z")).value->asDatetime().ms == dt("2024-10-15"));
  CHECK(toTime(dt("2024-10-15T11:38:02.101Z")) == (11 * 3600 + 38 * 60 + 2) * 1000 + 101);
  CHECK(toDate(0).value->asDatetime().ms == 0);
  CHECK(toTime(0) == 0);
  // Before the epoch the date is the previous midnight and the time stays positive.
  CHECK(toDate(dt("1969-12-31T23:59:59.999Z")).value->asDatetime().ms == dt("1969-12-31"));
  CHECK(toTime(dt("1969-12-31T23:59:59.999Z")) == kDay - 1);
  CHECK(toDate(-kDay).value->asDatetime().ms == -kDay);
  CHECK(toTime(-kDay) == 0);
  CHECK(toDate(-kDay - 1).value->asDatetime().ms == -2 * kDay);
  CHECK(toTime(-kDay - 1) == kDay - 1);
  CHECK(toDate(dt("0000-01-01T02:14:14+1414")).value->asDatetime().ms == dt("0000-01-01") - kDay);
  // Near the bottom of Int64 the previous midnight does not exist.
  ExtResult r = toDate(kMin);
  REQUIRE_FALSE(r.value);
  CHECK(r.error ==
        "error while evaluating `toDate` extension function: overflows when computing the date of "
        "datetime(\"1970-01-01\").offset(duration(\"-9223372036854775808ms\"))");
  CHECK(toTime(kMin) == 60424192);
  CHECK(toDate(kMax).value->asDatetime().ms == kMax / kDay * kDay);
  CHECK(toTime(kMax) == kMax % kDay);
}

TEST_CASE("extensions: datetime rendering") {
  CHECK(toString(Datetime{0}) == "1970-01-01T00:00:00.000Z");
  CHECK(toString(Datetime{-1}) == "1969-12-31T23:59:59.999Z");
  CHECK(toString(Datetime{dt("2024-02-29T12:30:45.123Z")}) == "2024-02-29T12:30:45.123Z");
  CHECK(toString(Datetime{dt("0000-01-01")}) == "0000-01-01T00:00:00.000Z");
  CHECK(toString(Datetime{dt("9999-12-31T23:59:59.999Z")}) == "9999-12-31T23:59:59.999Z");
  // Outside years 0000-9999 no datetime string exists; the text uses an extended, signed year.
  CHECK(toString(Datetime{dt("0000-01-01") - 1}) == "-0001-12-31T23:59:59.999Z");
  CHECK(toString(Datetime{kMax}) == "+292278994-08-17T07:12:55.807Z");
  CHECK(toString(Datetime{kMin}) == "-292275055-05-16T16:47:04.192Z");
  CHECK(toCedarExpr(Datetime{0}) == "datetime(\"1970-01-01T00:00:00.000Z\")");
  CHECK(toCedarExpr(Datetime{dt("0000-01-01") - 1}) ==
        "datetime(\"1970-01-01\").offset(duration(\"-62167219200001ms\"))");
  CHECK(toCedarExpr(Datetime{kMax}) == "datetime(\"1970-01-01\").offset(duration(\"9223372036854775807ms\"))");
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, dt("0000-01-01"), dt("9999-12-31T23:59:59.999Z"),
                    dt("1969-12-31T23:59:59.999Z"), dt("2024-02-29T12:30:45.123Z"), int64_t{-86400000}}) {
    auto back = parseDatetime(toString(Datetime{v}));
    INFO(v, " -> ", toString(Datetime{v}));
    REQUIRE(back);
    CHECK(back->ms == v);
  }
}

// -------------------------------------------------------------------------------------------------
// duration
// -------------------------------------------------------------------------------------------------

TEST_CASE("extensions: duration parsing") {
  CHECK(dur("1d2h3m4s5ms") == kDay + 2 * 3600000 + 3 * 60000 + 4000 + 5);
  CHECK(dur("1d") == kDay);
  CHECK(dur("2h") == 7200000);
  CHECK(dur("3m") == 180000);
  CHECK(dur("4s") == 4000);
  CHECK(dur("5ms") == 5);
  CHECK(dur("1m1ms") == 60001);
  CHECK(dur("1h1m1s1ms") == 3661001);
  CHECK(dur("0d") == 0);
  CHECK(dur("-0ms") == 0);
  CHECK(dur("-0d0h0s") == 0);
  CHECK(dur("00001d") == kDay);
  CHECK(dur("-2h") == -7200000);
  CHECK(dur("-1d1h") == -(kDay + 3600000));  // the sign covers every unit
  CHECK(dur("-16777215d") == -1449551376000000);
  CHECK(dur("25958m280810407733000s") == 280810409290480000);
  CHECK(dur("1m72057044282114047ms") == 72057044282174047);
  CHECK(dur("49772545d4294967295h") == 19762230150000000);
  // Int64 limits, exactly.
  CHECK(dur("9223372036854775807ms") == kMax);
  CHECK(dur("-9223372036854775808ms") == kMin);
  CHECK(dur("106751991167d7h12m55s807ms") == kMax);
  CHECK(dur("-106751991167d7h12m55s808ms") == kMin);
  for (const char* over : {"9223372036854775808ms", "-9223372036854775809ms", "106751991167d7h12m55s808ms",
                           "-106751991167d7h12m55s809ms", "106751991168d", "2562047788016h", "-2562047788016h", "153722867280913m",
                           "9223372036854776s", "18446744073709551615ms", "18446744073709551616ms",
                           "559572236437028869s", "-280375397710606d1h70192249681322475519m",
                           "-3689349694337708015d3689348816184750899h",
                           "-1d1h3689349694351212543m1s1ms"}) {
    INFO("duration ", over);
    CHECK_FALSE(parseDuration(over));
  }
  CHECK(dur("2562047788015h") == int64_t{2562047788015} * 3600000);
  CHECK(dur("153722867280912m") == int64_t{153722867280912} * 60000);
  CHECK(dur("9223372036854775s") == int64_t{9223372036854775} * 1000);
  for (const char* bad : {"", "-", "d", "ms", "1", "73187909238584059", "1D", "1d ", " 1d", "1.5h", "-1d-1h", "--1d",
                          "1dh", "1d1d", "1h1d", "1ms1m", "1s1s", "1x", "+1d", "1mss", "1d1hh1m", "\xc3\xbf" "1ms",
                          "--1d1h140737488355329m16888498602639359s"}) {
    INFO("duration ", bad);
    CHECK_FALSE(parseDuration(bad));
  }
}

TEST_CASE("extensions: duration errors read like Cedar's") {
  CHECK(callExtension("duration", {str("1h1d")}).error ==
        "error while evaluating `duration` extension function: invalid duration pattern");
  CHECK(callExtension("duration", {str("9223372036854775808ms")}).error ==
        "error while evaluating `duration` extension function: Duration overflows internal representation");
}

TEST_CASE("extensions: duration conversions truncate toward zero") {
  auto conv = [](std::string_view fn, int64_t ms) { return callLong(fn, {durationValue(ms)}); };
  const int64_t d = dur("1d2h3m4s5ms");
  CHECK(conv("toMilliseconds", d) == d);
  CHECK(conv("toSeconds", d) == 93784);
  CHECK(conv("toMinutes", d) == 1563);
  CHECK(conv("toHours", d) == 26);
  CHECK(conv("toDays", d) == 1);
  CHECK(conv("toSeconds", -1) == 0);
  CHECK(conv("toSeconds", -1999) == -1);
  CHECK(conv("toMinutes", -119999) == -1);
  CHECK(conv("toHours", -3600000) == -1);
  CHECK(conv("toDays", -kDay + 1) == 0);
  CHECK(conv("toDays", -kDay - 1) == -1);
  CHECK(conv("toMilliseconds", kMin) == kMin);
  CHECK(conv("toDays", kMax) == 106751991167);
  CHECK(conv("toDays", kMin) == -106751991167);
  CHECK(callExtension("toDays", {make("decimal", "1.0")}).error == "type error: expected duration, got decimal");
}

TEST_CASE("extensions: duration rendering round-trips") {
  CHECK(toString(Duration{0}) == "0ms");
  CHECK(toString(Duration{-5}) == "-5ms");
  CHECK(toString(Duration{kMin}) == "-9223372036854775808ms");
  for (int64_t v : {int64_t{0}, int64_t{-1}, kMax, kMin, kDay}) CHECK(parseDuration(toString(Duration{v}))->ms == v);
}

// -------------------------------------------------------------------------------------------------
// registry and dispatch
// -------------------------------------------------------------------------------------------------

TEST_CASE("extensions: registry") {
  for (const char* f : {"decimal", "ip", "datetime", "duration"}) {
    CHECK(isExtensionFunction(f));
    CHECK_FALSE(isExtensionMethod(f));
    CHECK(extensionArity(f) == 1);
  }
  for (const char* m : {"isIpv4", "isIpv6", "isLoopback", "isMulticast", "toDate", "toTime", "toMilliseconds",
                        "toSeconds", "toMinutes", "toHours", "toDays"}) {
    CHECK(isExtensionMethod(m));
    CHECK_FALSE(isExtensionFunction(m));
    CHECK(extensionArity(m) == 1);
  }
  for (const char* m : {"lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual", "isInRange", "offset",
                        "durationSince"}) {
    CHECK(isExtensionMethod(m));
    CHECK(extensionArity(m) == 2);
  }
  for (const char* n : {"contains", "isEmpty", "getTag", "Decimal", "ipaddr", "", "lessthan"}) {
    CHECK_FALSE(isExtensionFunction(n));
    CHECK_FALSE(isExtensionMethod(n));
    CHECK(extensionArity(n) == -1);
  }
}

TEST_CASE("extensions: callExtension checks arity and kinds") {
  ExtResult r = callExtension("decimal", {str("1.0"), str("2.0")});
  CHECK(r.error == "wrong number of arguments provided to extension function `decimal`: expected 1, got 2");
  r = callExtension("lessThan", {make("decimal", "1.0")});
  CHECK(r.error == "wrong number of arguments provided to extension function `lessThan`: expected 2, got 1");
  r = callExtension("isIpv4", {ip("1.2.3.4"), Value::integer(1)});
  CHECK(r.error == "wrong number of arguments provided to extension function `isIpv4`: expected 1, got 2");
  CHECK_FALSE(callExtension("nosuch", {}).value);
  // Receivers are checked before arguments.
  r = callExtension("isInRange", {Value::boolean(true), str("x")});
  CHECK(r.error == "type error: expected ipaddr, got bool");
  r = callExtension("isIpv4", {Value::set({})});
  CHECK(r.error == "type error: expected ipaddr, got set");
  r = callExtension("toTime", {Value::record({})});
  CHECK(r.error == "type error: expected datetime, got record");
  r = callExtension("ip", {Value::entity({"A::B", "x"})});
  CHECK(r.error == "type error: expected string, got (entity of type `A::B`)");
  // Constructors produce values of their kind.
  CHECK(make("decimal", "1.0").kind() == ValueKind::Decimal);
  CHECK(make("ip", "::1").kind() == ValueKind::Ip);
  CHECK(make("datetime", "2024-01-01").kind() == ValueKind::Datetime);
  CHECK(make("duration", "1d").kind() == ValueKind::Duration);
}
