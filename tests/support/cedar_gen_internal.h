// Internals shared by the Cedar test generator's source files (cedar_gen*.cpp): the PRNG,
// the generator's model of Cedar types, and the "world" (entity types, entities, actions,
// context shape) that one test's policies and requests are drawn from.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cedar_gen.h"

namespace govmesh::gen {

/// Deterministic PRNG (xoshiro256** seeded through splitmix64). Own implementation because
/// the std distributions differ between standard libraries, and tests must be reproducible.
class Rng {
 public:
  /// Seeds from a single 64-bit value.
  explicit Rng(uint64_t seed);
  /// Next raw 64-bit output.
  uint64_t next();
  /// Uniform integer in [0, n); n must be > 0.
  uint64_t below(uint64_t n);
  /// Uniform integer in [lo, hi].
  int range(int lo, int hi);
  /// True with probability p.
  bool chance(double p);
  /// A uniformly chosen element of a non-empty vector.
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
  /// Index chosen with probability proportional to weights[i].
  size_t weighted(const std::vector<int>& weights);

 private:
  uint64_t s_[4];
};

/// The value kinds the generator distinguishes.
enum class Kind { Bool, Long, String, Entity, Set, Record, Decimal, Ip, Datetime, Duration };

struct Type;
/// Types are shared and immutable.
using TypePtr = std::shared_ptr<const Type>;

/// A record field or entity attribute declaration.
struct Field {
  std::string name;
  TypePtr type;
  bool required = true;
};

/// A Cedar type as the generator models it.
struct Type {
  Kind kind = Kind::Bool;
  std::string entityType;     ///< Kind::Entity: the referenced entity type
  TypePtr element;            ///< Kind::Set: element type
  std::vector<Field> fields;  ///< Kind::Record: fields in declaration order
};

/// An entity uid.
struct Uid {
  std::string type;
  std::string id;
};

/// An entity type of the world with the attributes its entities may carry.
struct EntityTypeDef {
  std::string name;
  std::vector<Field> attrs;
  bool hasTags = false;                  ///< entities of this type may carry tags
  std::vector<std::string> parentTypes;  ///< filled from the data (for the schema)
};

/// An entity of the store.
struct Entity {
  Uid uid;
  nlohmann::ordered_json attrs = nlohmann::ordered_json::object();
  nlohmann::ordered_json tags;  ///< null when the entity has no "tags" field
  std::vector<Uid> parents;
  int level = 0;  ///< hierarchy level: parents always have a smaller level
};

/// An action of the world; groups are only ever used as parents.
struct ActionDef {
  Uid uid;
  std::vector<Uid> parents;
  bool isGroup = false;
  std::vector<std::string> principalTypes;  ///< schema appliesTo
  std::vector<std::string> resourceTypes;
};

/// Everything one test is generated from.
struct World {
  bool withSchema = false;
  std::vector<EntityTypeDef> entityTypes;
  std::vector<Entity> entities;
  std::vector<Uid> missingUids;  ///< uids referenced somewhere but absent from the store
  std::vector<ActionDef> actions;
  std::vector<Field> contextFields;
  TypePtr tagType;  ///< the value type of every tag in this test
  std::vector<std::string> tagKeys;
  // Indexes over the finished hierarchy (filled by buildWorld), so that large worlds (thousands
  // of entities) generate in linear rather than quadratic time; they change no output.
  /// Indices into `entities` of the entities that are some entity's parent, in store order.
  std::vector<size_t> entitiesWithChildren;
  /// Transitive ancestors of every entity and action, by uidKey().
  std::unordered_map<std::string, std::unordered_set<std::string>> ancestors;
};

/// A uid as one string, the key of World::ancestors.
std::string uidKey(const Uid& uid);

/// What one scope constraint (principal or resource) of a policy requires.
struct ScopeTarget {
  enum class Op { Any, Eq, In, Is, IsIn };
  Op op = Op::Any;
  Uid entity;        ///< Eq, In, IsIn
  std::string type;  ///< Is, IsIn
};

/// A policy's scope, kept so that requests can be aimed at policies: random requests would
/// rarely satisfy the scope of any policy, leaving almost every decision a default deny.
struct PolicyScope {
  bool permit = true;
  ScopeTarget principal, resource;
  bool actionAny = true;
  std::vector<Uid> actions;  ///< `action == a` or `action in [...]`: any of them (or a descendant)
};

// ---- literal pools and Cedar text helpers (cedar_gen_values.cpp) ----

/// Cedar string literal (with quotes) for UTF-8 `s`; with `rng`, non-ASCII characters are
/// sometimes written as \u{...} escapes, which must not change the meaning.
std::string cedarString(std::string_view s, Rng* rng = nullptr);
/// Cedar entity reference `Type::"id"`.
std::string cedarUid(const Uid& uid, Rng* rng = nullptr);
/// True when `s` can be written as a bare identifier (attribute access with '.').
bool isIdentifier(std::string_view s);
/// The pools from which strings, longs and extension literals are drawn, so that data and
/// policies share values and comparisons are true often enough.
const std::vector<std::string>& stringPool();
int64_t pickLong(Rng& rng, bool allowExtreme);
std::string pickDecimal(Rng& rng, bool allowInvalid);
std::string pickIp(Rng& rng, bool allowInvalid);
std::string pickDatetime(Rng& rng, bool allowInvalid);
std::string pickDuration(Rng& rng, bool allowInvalid);

/// Random type for an attribute or context field; `depth` bounds nesting.
TypePtr randomType(Rng& rng, const World& world, int depth);
/// Shorthand constructors.
TypePtr simpleType(Kind k);
TypePtr setOf(TypePtr element);
/// A JSON value (Cedar entity-JSON form, explicit escapes) of type `t`. Optional record
/// fields are left out at random; with `loose`, required ones sometimes too (no schema).
nlohmann::ordered_json randomValue(Rng& rng, const World& world, const Type& t, bool loose);
/// Cedar schema syntax for type `t`.
std::string schemaType(const Type& t);

// ---- world building (cedar_gen_world.cpp) ----

/// Builds the world of one test.
World buildWorld(Rng& rng, const GenOptions& options);
/// Entity store JSON of the world.
std::string entitiesJson(const World& world);
/// Schema text of the world (only meaningful when world.withSchema).
std::string schemaText(const World& world);
/// One request JSON object; often aimed at the scope of one of `scopes`.
nlohmann::ordered_json randomRequest(Rng& rng, const World& world, const std::vector<PolicyScope>& scopes);

// ---- policies (cedar_gen_policy.cpp) ----

/// The policy set text of one test; appends each policy's scope to `scopes`.
std::string generatePolicies(Rng& rng, const World& world, const GenOptions& options, std::vector<PolicyScope>& scopes);

}  // namespace govmesh::gen
