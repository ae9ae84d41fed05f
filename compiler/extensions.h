// Cedar's extension types: decimal, ipaddr, datetime, duration. Parsing of their literal
// strings and every extension function and method, with Cedar's exact semantics (the Lean
// specification in cedar-spec is the reference).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/value.h"

namespace govmesh::cedar {

/// Parses a decimal literal: optional '-', 1+ digits, '.', 1-4 digits; range of Int64 scaled
/// by 10^4. nullopt when malformed or out of range.
std::optional<Decimal> parseDecimal(std::string_view s);
/// Parses an IPv4 or IPv6 address with optional "/prefix", as Cedar's `ip()` does.
std::optional<IpAddr> parseIp(std::string_view s);
/// Parses "YYYY-MM-DD", "YYYY-MM-DDThh:mm:ssZ", "...ss.SSSZ", "...ss(+|-)hhmm",
/// "...ss.SSS(+|-)hhmm", as Cedar's `datetime()` does.
std::optional<Datetime> parseDatetime(std::string_view s);
/// Parses a duration such as "1d2h3m4s5ms" or "-2h" (units in order d,h,m,s,ms, each optional
/// but at least one), as Cedar's `duration()` does; nullopt on overflow.
std::optional<Duration> parseDuration(std::string_view s);

/// Renders extension values the way Cedar displays them (used in messages and JSON output).
std::string toString(Decimal d);
std::string toString(const IpAddr& a);
std::string toString(Datetime d);
std::string toString(Duration d);
/// Cedar source text that evaluates to `d`: `datetime("...")` when the instant lies in years
/// 0000-9999 (the only ones a datetime string can name), else Cedar's own fallback form
/// `datetime("1970-01-01").offset(duration("<ms>ms"))`.
std::string toCedarExpr(Datetime d);

/// Result of an extension call: a value, or an error message (evaluation error).
struct ExtResult {
  std::optional<Value> value;
  std::string error;  // set when !value
};

/// True when `name` is an extension constructor function (`decimal`, `ip`, `datetime`,
/// `duration`), callable as `name(arg)`.
bool isExtensionFunction(std::string_view name);
/// True when `name` is an extension method (`lessThan`, `isIpv4`, `isInRange`, `offset`,
/// `toDays`, ...), callable as `receiver.name(args)`.
bool isExtensionMethod(std::string_view name);
/// Number of arguments an extension function or method takes, receiver included; -1 if unknown.
int extensionArity(std::string_view name);

/// Calls extension function or method `name`; for methods args[0] is the receiver. Type errors,
/// malformed literal strings and overflow come back as an error.
ExtResult callExtension(std::string_view name, const std::vector<Value>& args);

}  // namespace govmesh::cedar
