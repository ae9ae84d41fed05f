// The entity store and Cedar's JSON formats for entities, values and contexts.
//
// JSON values follow Cedar's entities-JSON rules: booleans, integers, strings, arrays (sets),
// objects (records), and the escapes {"__entity": {"type", "id"}} and
// {"__extn": {"fn", "arg"}}. When a schema gives the expected type, the escapes may be left
// out, as Cedar allows: an entity as {"type", "id"}, an extension value as its string or as
// {"fn", "arg"}.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compiler/schema.h"
#include "compiler/value.h"

namespace govmesh::cedar {

/// One entity: its attributes and tags (records) and its direct parents.
struct Entity {
  EntityUid uid;
  Value attrs = Value::record({});
  Value tags = Value::record({});
  std::vector<EntityUid> parents;
};

/// Entities by uid, with the transitive closure of the parent relation precomputed.
class EntityStore {
 public:
  /// Adds an entity; throws InputError when the uid is already present.
  void add(Entity e, const std::string& file = "");
  /// Adds an entity unless its uid is present (used for schema actions).
  void addIfAbsent(Entity e);
  const Entity* find(const EntityUid& uid) const;
  /// Recomputes every entity's ancestor set. Call after the last add().
  void computeAncestors();
  /// Cedar's `in` on two entities: equal, or `ancestor` is in the closure of `uid`'s parents.
  bool isDescendantOrSelf(const EntityUid& uid, const EntityUid& ancestor) const;
  /// The transitive ancestors of `uid` (empty for unknown uids).
  const std::unordered_set<EntityUid, EntityUidHash>& ancestors(const EntityUid& uid) const;
  size_t size() const { return entities_.size(); }
  const std::unordered_map<EntityUid, Entity, EntityUidHash>& all() const { return entities_; }

 private:
  std::unordered_map<EntityUid, Entity, EntityUidHash> entities_;
  std::unordered_map<EntityUid, std::unordered_set<EntityUid, EntityUidHash>, EntityUidHash> ancestors_;
};

/// Reads an entities JSON document (an array of {uid, attrs, parents, tags}). With a schema,
/// values are read by their declared types, entity data is checked against the declarations,
/// and the schema's action entities (with their memberOf parents) are added. Computes the
/// ancestor closure. Throws InputError naming the file and the entity on bad input.
EntityStore parseEntitiesJson(std::string_view text, const std::string& fileName, const Schema* schema);

/// Reads one JSON value; `expected` (may be null) directs the reading as described above and
/// is checked. `where` names the value in error messages (file and JSON path).
Value jsonToValue(const nlohmann::json& j, const SchemaType* expected, const std::string& where, int depth = 0);

/// Reads a request context (a JSON object). With a schema, the action's declared context type
/// directs reading and is checked.
Value contextFromJson(const nlohmann::json& j, const Schema* schema, const EntityUid& action, const std::string& where);

/// Checks a request against the schema as Cedar's request validation does: the action is
/// declared, and the principal's and resource's types are among the action's `appliesTo` types
/// (with valid ids for enumerated types). The context is checked when it is read
/// (contextFromJson). Returns why the request is invalid, or nullopt when it is valid.
std::optional<std::string> validateRequestTypes(const Schema& schema, const EntityUid& principal, const EntityUid& action,
                                                const EntityUid& resource);

/// Reads an entity reference: {"type","id"} or {"__entity": {"type","id"}}.
EntityUid uidFromJson(const nlohmann::json& j, const std::string& where);

/// Writes a value as Cedar JSON (with __entity / __extn escapes).
nlohmann::json valueToJson(const Value& v);

/// Parses a JSON text; throws InputError with line and column on a syntax error, and refuses
/// nesting deeper than kMaxNestingDepth.
nlohmann::json parseJsonText(std::string_view text, const std::string& fileName);

}  // namespace govmesh::cedar
