// Internal to the schema readers: the unresolved schema model that both formats parse into
// (schema_text.cpp for `.cedarschema`, schema_json.cpp for JSON), and the one resolution step
// (schema.cpp) that turns it into a govmesh::cedar::Schema. Keeping a single resolver means
// both formats get exactly the same name-resolution, shadowing and error rules, as in Cedar,
// where the text format is first translated into the JSON format's model.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/errors.h"
#include "compiler/schema.h"

namespace govmesh::cedar::schema_internal {

/// Where a schema item was written: a text position, or (JSON, whose parser keeps no positions
/// for values) a JSON-pointer-like path such as "/NS/entityTypes/User/shape".
struct Origin {
  SourceLoc loc;
  std::string jsonPath;  // a JSON pointer ("" is the whole document); used when isJson
  bool isJson = false;
};

/// Throws InputError for `origin` in `file`, appending the JSON path when there is one.
[[noreturn]] void fail(std::string_view file, const Origin& origin, const std::string& message);

struct RawType;
/// Shared because the text format binds one declaration to several names (`entity A, B {..}`).
using RawTypePtr = std::shared_ptr<const RawType>;

/// A record attribute as written.
struct RawAttribute {
  std::string name;
  RawTypePtr type;
  bool required = true;
};

/// A type as written, names not yet resolved.
struct RawType {
  enum class Kind : uint8_t {
    Bool, Long, String,   // JSON "Boolean"/"Long"/"String" (the text format writes names)
    Extension,            // JSON {"type": "Extension", "name": ...}
    Set, Record,
    EntityRef,            // must name an entity type (JSON "Entity")
    CommonRef,            // must name a common type (JSON {"type": "X"}, text `context: X`)
    EntityOrCommonRef,    // either, common type first (text type names, JSON "EntityOrCommon")
  } kind = Kind::Bool;
  Origin origin;
  std::string name;                      // references: the name as written; Extension: its name
  RawTypePtr element;                    // Set
  std::vector<RawAttribute> attributes;  // Record, in written order (a later duplicate wins)
  bool additionalAttributes = false;     // Record
};

/// A reference to an entity type (memberOfTypes, principal and resource types).
struct RawTypeRef {
  std::string name;
  Origin origin;
};

/// A reference to an action (`memberOf`): `type` absent means `Action`, resolved in the
/// declaring namespace first.
struct RawActionRef {
  std::optional<std::string> type;
  std::string id;
  Origin origin;
};

/// An entity type declaration; `name` is the unqualified name as declared.
struct RawEntityType {
  std::string name;
  Origin origin;
  std::vector<RawTypeRef> memberOf;
  RawTypePtr shape;  // null: empty record
  RawTypePtr tags;   // null: no tags
  std::optional<std::vector<std::string>> enumIds;
};

/// An action declaration; `id` is the action's entity id.
struct RawAction {
  std::string id;
  Origin origin;
  std::vector<RawActionRef> memberOf;
  std::vector<RawTypeRef> principalTypes;  // empty when no appliesTo (Cedar 4: applies to none)
  std::vector<RawTypeRef> resourceTypes;
  RawTypePtr context;  // null: empty record
};

/// A common type declaration (`type X = ...`).
struct RawCommonType {
  std::string name;
  Origin origin;
  RawTypePtr type;
};

/// One namespace's declarations; `name` is "" for the empty namespace.
struct RawNamespace {
  std::string name;
  Origin origin;
  std::vector<RawEntityType> entityTypes;
  std::vector<RawAction> actions;
  std::vector<RawCommonType> commonTypes;
};

/// A whole parsed schema, before resolution. Namespace names are unique (the readers merge
/// or reject repeats as their format requires).
struct RawSchema {
  std::vector<RawNamespace> namespaces;
};

/// Resolves names, inlines common types and checks everything Cedar checks when it builds a
/// schema: duplicates, reserved names, RFC 70 shadowing, undeclared types and actions, common
/// type cycles, action hierarchy cycles, record-typed shapes and contexts.
Schema resolveSchema(const RawSchema& raw, std::string_view fileName);

/// True for Cedar's reserved identifiers (`true`, `false`, `if`, `then`, `else`, `in`, `is`,
/// `like`, `has`), which cannot be used as names.
bool isReservedWord(std::string_view s);
/// True for an identifier: [_a-zA-Z][_a-zA-Z0-9]* (reserved words included).
bool isIdentifier(std::string_view s);
/// Splits "A::B::C" into components; nullopt unless every component is an identifier that is
/// not a reserved word (Cedar's normalized name syntax, as the JSON format requires).
std::optional<std::vector<std::string>> splitName(std::string_view s);

}  // namespace govmesh::cedar::schema_internal
