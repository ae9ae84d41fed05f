// Cedar schemas, in both of Cedar's formats (`.cedarschema` text and JSON), resolved into one
// model with fully qualified names. Used as Cedar uses them when loading entities and contexts:
// to read JSON values by their declared types, to add action entities with their `memberOf`
// hierarchy, and to check entity data against declared types.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/value.h"

namespace govmesh::cedar {

struct SchemaType;
using SchemaTypePtr = std::shared_ptr<const SchemaType>;

/// A record attribute's declared type.
struct AttributeType {
  SchemaTypePtr type;
  bool required = true;
};

/// A resolved schema type. Common types (`type X = ...`) are inlined during resolution, so
/// only these kinds remain.
struct SchemaType {
  enum class Kind : uint8_t { Bool, Long, String, Entity, Set, Record, Extension } kind = Kind::Bool;
  std::string name;                              // Entity: fully qualified type; Extension:
                                                 // "decimal" | "ipaddr" | "datetime" | "duration"
  SchemaTypePtr element;                         // Set
  std::map<std::string, AttributeType> attributes;  // Record
  bool additionalAttributes = false;             // Record (JSON schema's flag)
};

/// An entity type declaration.
struct EntityTypeDecl {
  std::string name;                        // fully qualified
  std::vector<std::string> memberOfTypes;  // fully qualified
  SchemaTypePtr shape;                     // a Record type (empty record when not declared)
  SchemaTypePtr tags;                      // tag value type; null when the type has no tags
  std::optional<std::vector<std::string>> enumIds;  // `enum [...]`: the only valid ids
};

/// An action declaration.
struct ActionDecl {
  EntityUid uid;                           // type is "<namespace>::Action" (or "Action")
  std::vector<EntityUid> memberOf;         // parent actions
  std::vector<std::string> principalTypes; // appliesTo
  std::vector<std::string> resourceTypes;
  SchemaTypePtr context;                   // a Record type (empty record when not declared)
  /// Always false for Cedar 4 schemas: an action declared without `appliesTo` applies to no
  /// principal and no resource (both lists empty), as in Cedar 4.x. Kept for callers that
  /// distinguish the Cedar 3 meaning.
  bool appliesToAnything = false;
};

/// A whole schema, all namespaces merged.
struct Schema {
  std::map<std::string, EntityTypeDecl> entityTypes;  // by fully qualified name
  std::map<EntityUid, ActionDecl> actions;
  std::set<std::string> actionTypes;  // every action entity type declared ("Action", "NS::Action")
  const EntityTypeDecl* findEntityType(std::string_view name) const;
  const ActionDecl* findAction(const EntityUid& uid) const;
  /// True when `type` is an action entity type declared by this schema (`Action` or `NS::Action`).
  bool isActionType(std::string_view type) const;
};

/// Renders a type for messages in the `.cedarschema` syntax: `Bool`, `Long`, `String`,
/// `Set<Long>`, `{ a: Long, "b c"?: String }`, entity types by name, extension types by name
/// (`decimal`); a record with additionalAttributes ends with `...`.
std::string describe(const SchemaType& type);

/// Parses a `.cedarschema` text; throws InputError (file:line:column) on malformed text or
/// unresolvable names.
Schema parseSchemaText(std::string_view text, std::string_view fileName);
/// Parses a JSON schema; throws InputError on malformed input or unresolvable names.
Schema parseSchemaJson(std::string_view text, std::string_view fileName);
/// Picks the format from the file name (".json" -> JSON, otherwise text) and parses.
Schema parseSchemaFile(const std::string& path);

}  // namespace govmesh::cedar
