// Cedar runtime values: the data every evaluator, the entity store and the JSON readers share.
//
// A Value is immutable after construction. Sets and records are held by shared pointers so that
// copying a Value is cheap (entity attributes are copied into expressions' results constantly).
// Sets are kept sorted by `compareValues` and deduplicated, which makes set equality a vector
// comparison and gives every set one canonical order (Cedar's sets are unordered).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace govmesh::cedar {

/// An entity reference `Type::"id"`. `type` is fully qualified, components joined by "::".
struct EntityUid {
  std::string type;
  std::string id;
  bool operator==(const EntityUid&) const = default;
  auto operator<=>(const EntityUid&) const = default;
};

/// Hash for EntityUid keys in unordered containers.
struct EntityUidHash {
  size_t operator()(const EntityUid& u) const noexcept;
};

/// Cedar `decimal`: a fixed-point number with four fractional digits, stored as value * 10^4.
struct Decimal {
  int64_t scaled = 0;
  bool operator==(const Decimal&) const = default;
  auto operator<=>(const Decimal&) const = default;
};

/// Cedar `ipaddr`: an IPv4 or IPv6 address with a prefix length (a single address has the full
/// prefix, 32 or 128). IPv4 addresses use the first 4 bytes of `bytes`; the rest are zero.
/// The host bits are kept as written, so ip("10.0.0.1/24") != ip("10.0.0.0/24").
struct IpAddr {
  bool v6 = false;
  uint8_t prefix = 32;
  std::array<uint8_t, 16> bytes{};
  bool operator==(const IpAddr&) const = default;
  auto operator<=>(const IpAddr&) const = default;
};

/// Cedar `datetime`: milliseconds since the Unix epoch (UTC), signed.
struct Datetime {
  int64_t ms = 0;
  bool operator==(const Datetime&) const = default;
  auto operator<=>(const Datetime&) const = default;
};

/// Cedar `duration`: a signed number of milliseconds.
struct Duration {
  int64_t ms = 0;
  bool operator==(const Duration&) const = default;
  auto operator<=>(const Duration&) const = default;
};

class Value;
using ValueSet = std::vector<Value>;                          // sorted, deduplicated
using ValueRecord = std::vector<std::pair<std::string, Value>>;  // sorted by key, unique keys

/// The kinds of Cedar value, in the order `compareValues` ranks them.
enum class ValueKind : uint8_t { Bool, Long, String, Entity, Set, Record, Decimal, Ip, Datetime, Duration };

/// One Cedar value.
class Value {
 public:
  Value() : v_(false) {}
  static Value boolean(bool b) { return Value(Storage(std::in_place_index<0>, b)); }
  static Value integer(int64_t i) { return Value(Storage(std::in_place_index<1>, i)); }
  static Value string(std::string s) { return Value(Storage(std::in_place_index<2>, std::move(s))); }
  static Value entity(EntityUid u) { return Value(Storage(std::in_place_index<3>, std::move(u))); }
  /// Sorts and deduplicates `elems`.
  static Value set(ValueSet elems);
  /// Sorts by key; a later duplicate key replaces an earlier one (callers reject duplicates
  /// first where Cedar does).
  static Value record(ValueRecord fields);
  static Value decimal(Decimal d) { return Value(Storage(std::in_place_index<6>, d)); }
  static Value ip(IpAddr a) { return Value(Storage(std::in_place_index<7>, a)); }
  static Value datetime(Datetime d) { return Value(Storage(std::in_place_index<8>, d)); }
  static Value duration(Duration d) { return Value(Storage(std::in_place_index<9>, d)); }

  ValueKind kind() const { return static_cast<ValueKind>(v_.index()); }
  bool isBool() const { return kind() == ValueKind::Bool; }
  bool isLong() const { return kind() == ValueKind::Long; }
  bool isString() const { return kind() == ValueKind::String; }
  bool isEntity() const { return kind() == ValueKind::Entity; }
  bool isSet() const { return kind() == ValueKind::Set; }
  bool isRecord() const { return kind() == ValueKind::Record; }

  // Accessors: the caller checks kind() first (a wrong kind is a bug and throws bad_variant_access).
  bool asBool() const { return std::get<0>(v_); }
  int64_t asLong() const { return std::get<1>(v_); }
  const std::string& asString() const { return std::get<2>(v_); }
  const EntityUid& asEntity() const { return std::get<3>(v_); }
  const ValueSet& asSet() const { return *std::get<4>(v_); }
  const ValueRecord& asRecord() const { return *std::get<5>(v_); }
  Decimal asDecimal() const { return std::get<6>(v_); }
  const IpAddr& asIp() const { return std::get<7>(v_); }
  Datetime asDatetime() const { return std::get<8>(v_); }
  Duration asDuration() const { return std::get<9>(v_); }

  /// Looks up a record field; nullptr when absent. Requires isRecord().
  const Value* field(std::string_view name) const;

  /// Structural equality, as Cedar's `==` (values of different kinds are unequal).
  bool operator==(const Value& o) const { return compareValues(*this, o) == 0; }
  /// A total order over all values: by kind, then by content. Used to keep sets canonical.
  friend int compareValues(const Value& a, const Value& b);

 private:
  using Storage = std::variant<bool, int64_t, std::string, EntityUid, std::shared_ptr<const ValueSet>,
                               std::shared_ptr<const ValueRecord>, Decimal, IpAddr, Datetime, Duration>;
  explicit Value(Storage s) : v_(std::move(s)) {}
  Storage v_;
};

int compareValues(const Value& a, const Value& b);

/// Cedar's name for a value's type in error messages ("long", "set", "decimal", ...).
std::string_view kindName(ValueKind k);

/// Writes a Cedar string literal body with Cedar's escapes (\n, \t, \", \\, \0, \u{...}).
std::string escapeCedarString(std::string_view s);
/// Renders `Type::"id"` with the id escaped.
std::string toString(const EntityUid& u);
/// Renders a value as Cedar source text (extension values as constructor calls).
std::string toString(const Value& v);

}  // namespace govmesh::cedar
