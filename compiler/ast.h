// The Cedar abstract syntax tree: what the parser produces and the reference evaluator walks.
//
// Surface syntax that Cedar defines by rewriting is desugared by the parser, so the evaluator
// sees a small core language:
//   `e has a.b.c`      -> `e has a && e.a has b && e.a.b has c`
//   `e is T in x`      -> `e is T && e in x`
//   `a != b`           -> Ne node (kept; Cedar reports it as one operator)
//   `a > b`, `a >= b`  -> Gt/Ge nodes (kept; evaluated as the mirrored comparison)
//   `x.isEmpty()` etc. -> Method call nodes with the method name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/value.h"

namespace govmesh::cedar {

/// A 1-based source position.
struct SourceLoc {
  uint32_t line = 0;
  uint32_t column = 0;
};

enum class Var : uint8_t { Principal, Action, Resource, Context };
enum class SlotId : uint8_t { Principal, Resource };

/// Expression node kinds. Children live in `Expr::kids` in the order documented per kind.
enum class ExprKind : uint8_t {
  Literal,     // `literal`: Bool, Long, String or Entity value
  Variable,    // `var`
  Slot,        // `slot`: ?principal / ?resource (only inside templates)
  If,          // kids: cond, then, else
  And,         // kids: lhs, rhs (short-circuit)
  Or,          // kids: lhs, rhs (short-circuit)
  Not,         // kids: operand
  Neg,         // kids: operand (integer negation, overflow is an error)
  Eq, Ne, Lt, Le, Gt, Ge,  // kids: lhs, rhs
  Add, Sub, Mul,           // kids: lhs, rhs (Int64, overflow is an error)
  In,          // kids: lhs, rhs (entity in entity | set of entities)
  GetAttr,     // kids: record-or-entity; `name` is the attribute
  HasAttr,     // kids: record-or-entity; `name` is the attribute
  Like,        // kids: string; `pattern` holds the pattern
  Is,          // kids: entity; `name` is the entity type (fully qualified)
  SetLit,      // kids: elements
  RecordLit,   // kids: field values; `fieldNames` parallel to kids (unique)
  Call,        // kids: arguments; `name` is the extension function (`ip`, `decimal`, ...)
  Method,      // kids: receiver, then arguments; `name` is the method (`contains`,
               // `containsAll`, `containsAny`, `isEmpty`, `getTag`, `hasTag`, `lessThan`,
               // `isInRange`, `offset`, ... : builtin and extension methods alike)
};

/// One element of a `like` pattern: a literal character (a Unicode scalar, as UTF-8) or `*`.
struct PatternElem {
  bool wildcard = false;
  std::string literal;  // one UTF-8 encoded code point when !wildcard
};

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  ExprKind kind = ExprKind::Literal;
  SourceLoc loc;
  Value literal;                       // Literal
  Var var = Var::Principal;            // Variable
  SlotId slot = SlotId::Principal;     // Slot
  std::string name;                    // GetAttr/HasAttr attribute, Is type, Call/Method name
  std::vector<PatternElem> pattern;    // Like
  std::vector<std::string> fieldNames; // RecordLit
  std::vector<ExprPtr> kids;
};

/// What a scope constraint's right-hand side names: a concrete entity, or a template slot.
struct EntityOrSlot {
  bool isSlot = false;
  SlotId slot = SlotId::Principal;
  EntityUid uid;
};

/// The principal or resource part of a policy scope.
struct ScopeConstraint {
  enum class Op : uint8_t { Any, Eq, In, Is, IsIn } op = Op::Any;
  std::string entityType;  // Is, IsIn
  EntityOrSlot target;     // Eq, In, IsIn
};

/// The action part of a policy scope.
struct ActionConstraint {
  enum class Op : uint8_t { Any, Eq, In, InSet } op = Op::Any;
  std::vector<EntityUid> targets;  // Eq/In: one element; InSet: the list as written
};

enum class Effect : uint8_t { Permit, Forbid };

/// One `when { ... }` or `unless { ... }` clause.
struct Condition {
  bool isWhen = true;
  ExprPtr body;
};

struct Annotation {
  std::string key;
  std::optional<std::string> value;  // `@key` without a value has none
};

/// A static policy or a template (a template has at least one slot in its scope).
struct Policy {
  std::string id;  // "policy0", "policy1", ... by position in the file (templates share the count)
  Effect effect = Effect::Permit;
  std::vector<Annotation> annotations;
  ScopeConstraint principal;
  ActionConstraint action;
  ScopeConstraint resource;
  std::vector<Condition> conditions;
  SourceLoc loc;
  bool isTemplate() const;
};

/// A template-linked policy: a template with its slots filled.
struct TemplateLink {
  std::string id;          // the linked policy's id
  std::string templateId;  // the template it instantiates
  std::optional<EntityUid> principal;  // value for ?principal
  std::optional<EntityUid> resource;   // value for ?resource
};

/// A parsed policy file: static policies and templates in file order.
struct PolicySet {
  std::vector<Policy> policies;   // static policies
  std::vector<Policy> templates;  // templates (have slots)
  std::vector<TemplateLink> links;
  /// Materializes every link into a static policy (slots replaced by their entities).
  /// Returns an error message when a link names an unknown template or misses a slot value.
  std::optional<std::string> linkAll(std::vector<Policy>& out) const;
};

}  // namespace govmesh::cedar

namespace govmesh::cedar {
/// Renders an expression as Cedar text that parses back to an equal expression (fully
/// parenthesized). Used to key and store derived features of decision tables.
std::string toCedarText(const Expr& e);
}  // namespace govmesh::cedar
