// Schema resolution shared by both schema formats, plus the Schema accessors and `describe`.
//
// Resolution follows cedar-policy-validator (src/schema.rs, schema/raw_name.rs,
// schema/namespace_def.rs), which defines Cedar 4.x behaviour:
//  * A name written with `::` means exactly that name. An unqualified name `N` used inside
//    namespace `NS` means `NS::N` if that is declared, otherwise `N` in the empty namespace.
//    At each candidate a common type wins over an entity type (RFC 24, cedar#579).
//  * The primitive and extension type names (`Bool`, `Long`, `String`, `ipaddr`, `decimal`,
//    `datetime`, `duration`) are common types in the empty namespace aliasing `__cedar::X`,
//    unless the user declared that name in the empty namespace. `__cedar::X` always works.
//  * RFC 70: nothing declared in a named namespace may share its basename with an entity or
//    common type declared in the empty namespace; likewise for action ids.
//  * Common types are inlined; cycles among them are errors. Entity type shapes and action
//    contexts must be records. The action hierarchy must be acyclic (entity types may cycle).
#include "compiler/schema.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "compiler/errors.h"
#include "compiler/schema_internal.h"

namespace govmesh::cedar {

namespace schema_internal {

void fail(std::string_view file, const Origin& origin, const std::string& message) {
  std::string msg = message;
  if (origin.isJson) msg += " (at JSON pointer \"" + origin.jsonPath + "\")";
  throw InputError(std::string(file), origin.loc, std::move(msg));
}

bool isReservedWord(std::string_view s) {
  static const std::set<std::string_view> kReserved = {"true", "false", "if",   "then", "else",
                                                       "in",   "is",    "like", "has"};
  return kReserved.count(s) > 0;
}

bool isIdentifier(std::string_view s) {
  if (s.empty()) return false;
  auto head = [](char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!head(s[0])) return false;
  for (char c : s.substr(1)) {
    if (!head(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::optional<std::vector<std::string>> splitName(std::string_view s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find("::", start);
    std::string_view part = s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start);
    if (!isIdentifier(part) || isReservedWord(part)) return std::nullopt;
    parts.emplace_back(part);
    if (pos == std::string_view::npos) break;
    start = pos + 2;
  }
  return parts;
}

namespace {

constexpr const char* kCedarNamespace = "__cedar";

/// The types every schema can name without declaring them.
const std::vector<std::string>& builtinTypeNames() {
  static const std::vector<std::string> kNames = {"Bool",    "Long",     "String",  "ipaddr",
                                                  "decimal", "datetime", "duration"};
  return kNames;
}

bool isExtensionTypeName(std::string_view s) {
  return s == "ipaddr" || s == "decimal" || s == "datetime" || s == "duration";
}

/// Names that cannot be common type basenames (reserved JSON schema keywords; cedar#1070).
bool isReservedCommonTypeName(std::string_view s) {
  return s == "Bool" || s == "Boolean" || s == "Entity" || s == "Extension" || s == "Long" ||
         s == "Record" || s == "Set" || s == "String";
}

std::string qualify(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : ns + "::" + name;
}

bool hasReservedComponent(const std::string& name) {
  size_t start = 0;
  while (true) {
    size_t pos = name.find("::", start);
    size_t len = (pos == std::string::npos ? name.size() : pos) - start;
    if (std::string_view(name).substr(start, len) == kCedarNamespace) return true;
    if (pos == std::string::npos) return false;
    start = pos + 2;
  }
}

SchemaTypePtr makePrimitive(SchemaType::Kind kind, std::string name = {}) {
  auto t = std::make_shared<SchemaType>();
  t->kind = kind;
  t->name = std::move(name);
  return t;
}

SchemaTypePtr emptyRecord() {
  static const SchemaTypePtr kEmpty = makePrimitive(SchemaType::Kind::Record);
  return kEmpty;
}

/// A resolved type with its height (0 for leaves), kept so that inlining common types cannot
/// build types nested deeper than kMaxNestingDepth.
struct Resolved {
  SchemaTypePtr type;
  int height = 0;
};

/// What a type name resolved to.
struct NameTarget {
  bool isCommon = false;
  std::string name;  // fully qualified
};

class Resolver {
 public:
  Resolver(const RawSchema& raw, std::string_view file) : raw_(raw), file_(file) {}

  Schema run() {
    collectDeclarations();
    checkShadowing();
    addBuiltinAliases();
    resolveCommonTypes();
    Schema schema;
    for (const RawNamespace& ns : raw_.namespaces) {
      for (const RawEntityType& e : ns.entityTypes) resolveEntityType(ns.name, e, schema);
    }
    for (const RawNamespace& ns : raw_.namespaces) {
      for (const RawAction& a : ns.actions) resolveAction(ns.name, a, schema);
    }
    checkActionCycles(schema);
    for (const auto& [uid, decl] : schema.actions) schema.actionTypes.insert(uid.type);
    return schema;
  }

 private:
  struct CommonDef {
    const RawCommonType* decl;
    std::string ns;
  };

  [[noreturn]] void fail(const Origin& origin, const std::string& message) const {
    schema_internal::fail(file_, origin, message);
  }

  // ---- declarations ----

  void collectDeclarations() {
    std::set<std::string> namespaces;
    for (const RawNamespace& ns : raw_.namespaces) {
      if (!namespaces.insert(ns.name).second) fail(ns.origin, "namespace `" + ns.name + "` is declared twice");
      if (!ns.name.empty() && hasReservedComponent(ns.name)) {
        fail(ns.origin, "`" + ns.name + "` is not a valid namespace: `__cedar` is reserved");
      }
      for (const RawCommonType& c : ns.commonTypes) {
        if (c.name == kCedarNamespace) fail(c.origin, "`__cedar` is reserved and cannot name a common type");
        if (isReservedCommonTypeName(c.name)) {
          fail(c.origin, "`" + c.name + "` is reserved and cannot be the name of a common type");
        }
        std::string fq = qualify(ns.name, c.name);
        if (!commonDefs_.emplace(fq, CommonDef{&c, ns.name}).second) {
          fail(c.origin, "common type `" + fq + "` is declared twice");
        }
      }
      for (const RawEntityType& e : ns.entityTypes) {
        if (e.name == kCedarNamespace) fail(e.origin, "`__cedar` is reserved and cannot name an entity type");
        if (e.name == "Action") fail(e.origin, "`Action` cannot be declared as an entity type");
        std::string fq = qualify(ns.name, e.name);
        if (!entityDefs_.insert(fq).second) fail(e.origin, "entity type `" + fq + "` is declared twice");
      }
      for (const RawAction& a : ns.actions) {
        EntityUid uid{qualify(ns.name, "Action"), a.id};
        if (!actionDefs_.insert(uid).second) fail(a.origin, "action " + toString(uid) + " is declared twice");
      }
    }
  }

  /// RFC 70: a named namespace may not redeclare a basename that the empty namespace declares.
  void checkShadowing() const {
    std::map<std::string, std::string> emptyNsNames;  // basename -> "entity type"/"common type"
    for (const RawNamespace& ns : raw_.namespaces) {
      if (!ns.name.empty()) continue;
      for (const RawEntityType& e : ns.entityTypes) emptyNsNames.emplace(e.name, "entity type");
      for (const RawCommonType& c : ns.commonTypes) emptyNsNames.emplace(c.name, "common type");
    }
    std::set<std::string> emptyNsActions;
    for (const EntityUid& uid : actionDefs_) {
      if (uid.type == "Action") emptyNsActions.insert(uid.id);
    }
    for (const RawNamespace& ns : raw_.namespaces) {
      if (ns.name.empty()) continue;
      auto check = [&](const std::string& name, const Origin& origin) {
        auto it = emptyNsNames.find(name);
        if (it != emptyNsNames.end()) {
          fail(origin, "`" + qualify(ns.name, name) + "` shadows the " + it->second + " `" + name +
                           "` of the empty namespace");
        }
      };
      for (const RawEntityType& e : ns.entityTypes) check(e.name, e.origin);
      for (const RawCommonType& c : ns.commonTypes) check(c.name, c.origin);
      for (const RawAction& a : ns.actions) {
        if (emptyNsActions.count(a.id)) {
          fail(a.origin, "action " + toString(EntityUid{qualify(ns.name, "Action"), a.id}) +
                             " shadows action " + toString(EntityUid{"Action", a.id}));
        }
      }
    }
  }

  void addBuiltinAliases() {
    for (const std::string& name : builtinTypeNames()) {
      builtins_[std::string(kCedarNamespace) + "::" + name] = name;
      if (!entityDefs_.count(name) && !commonDefs_.count(name)) builtins_[name] = name;
    }
  }

  // ---- name lookup ----

  bool isCommonName(const std::string& fq) const { return commonDefs_.count(fq) || builtins_.count(fq); }

  /// Finds what `written` (as it appears in namespace `ns`) names, or fails.
  NameTarget lookup(const std::string& written, const std::string& ns, bool allowCommon, bool allowEntity,
                    const Origin& origin) const {
    std::vector<std::string> candidates;
    if (written.find("::") == std::string::npos && !ns.empty()) candidates.push_back(ns + "::" + written);
    candidates.push_back(written);
    for (const std::string& c : candidates) {
      if (allowCommon && isCommonName(c)) return {true, c};
      if (allowEntity && entityDefs_.count(c)) return {false, c};
    }
    std::string what = allowCommon && allowEntity ? "common or entity type" : allowCommon ? "common type" : "entity type";
    std::string msg = "unknown " + what + " `" + written + "`";
    if (candidates.size() == 2) msg += " (neither `" + candidates[0] + "` nor `" + candidates[1] + "` is declared)";
    fail(origin, msg);
  }

  // ---- common types ----

  /// Collects the user common types that `t` (written in `ns`) refers to, failing on unknown names.
  void collectCommonRefs(const RawType& t, const std::string& ns, std::set<std::string>& out) const {
    switch (t.kind) {
      case RawType::Kind::Set: collectCommonRefs(*t.element, ns, out); break;
      case RawType::Kind::Record:
        for (const RawAttribute& a : t.attributes) collectCommonRefs(*a.type, ns, out);
        break;
      case RawType::Kind::CommonRef:
      case RawType::Kind::EntityOrCommonRef:
      case RawType::Kind::EntityRef: {
        bool common = t.kind != RawType::Kind::EntityRef;
        bool entity = t.kind != RawType::Kind::CommonRef;
        NameTarget target = lookup(t.name, ns, common, entity, t.origin);
        if (target.isCommon && commonDefs_.count(target.name)) out.insert(target.name);
        break;
      }
      default: break;
    }
  }

  /// Resolves every common type in dependency order (Kahn's algorithm, so no recursion through
  /// chains of common types), which also detects cycles.
  void resolveCommonTypes() {
    std::map<std::string, std::set<std::string>> deps;
    std::map<std::string, std::vector<std::string>> dependents;
    for (const auto& [name, def] : commonDefs_) {
      std::set<std::string>& d = deps[name];
      collectCommonRefs(*def.decl->type, def.ns, d);
      for (const std::string& target : d) dependents[target].push_back(name);
    }
    std::vector<std::string> ready;
    std::map<std::string, size_t> remaining;
    for (const auto& [name, d] : deps) {
      remaining[name] = d.size();
      if (d.empty()) ready.push_back(name);
    }
    while (!ready.empty()) {
      std::string name = std::move(ready.back());
      ready.pop_back();
      const CommonDef& def = commonDefs_.at(name);
      commonResolved_[name] = resolveType(*def.decl->type, def.ns, 0);
      for (const std::string& user : dependents[name]) {
        if (--remaining[user] == 0) ready.push_back(user);
      }
    }
    for (const auto& [name, count] : remaining) {
      if (count > 0) {
        fail(commonDefs_.at(name).decl->origin, "common type `" + name + "` is part of or depends on a cycle of common types");
      }
    }
  }

  Resolved builtinType(const std::string& baseName) const {
    static const SchemaTypePtr kBool = makePrimitive(SchemaType::Kind::Bool);
    static const SchemaTypePtr kLong = makePrimitive(SchemaType::Kind::Long);
    static const SchemaTypePtr kString = makePrimitive(SchemaType::Kind::String);
    if (baseName == "Bool") return {kBool, 0};
    if (baseName == "Long") return {kLong, 0};
    if (baseName == "String") return {kString, 0};
    return {makePrimitive(SchemaType::Kind::Extension, baseName), 0};
  }

  Resolved checkHeight(Resolved r, const Origin& origin) const {
    if (r.height > kMaxNestingDepth) {
      fail(origin, "type nested deeper than " + std::to_string(kMaxNestingDepth) + " levels");
    }
    return r;
  }

  /// Resolves a written type. Common types referred to are already resolved (dependency order),
  /// so recursion here follows only the written nesting, which the readers bound.
  Resolved resolveType(const RawType& t, const std::string& ns, int depth) const {
    if (depth > kMaxNestingDepth) fail(t.origin, "type nested too deeply");
    switch (t.kind) {
      case RawType::Kind::Bool: return builtinType("Bool");
      case RawType::Kind::Long: return builtinType("Long");
      case RawType::Kind::String: return builtinType("String");
      case RawType::Kind::Extension:
        if (!isExtensionTypeName(t.name)) fail(t.origin, "unknown extension type `" + t.name + "`");
        return builtinType(t.name);
      case RawType::Kind::Set: {
        Resolved element = resolveType(*t.element, ns, depth + 1);
        auto s = std::make_shared<SchemaType>();
        s->kind = SchemaType::Kind::Set;
        s->element = element.type;
        return checkHeight({s, element.height + 1}, t.origin);
      }
      case RawType::Kind::Record: {
        auto r = std::make_shared<SchemaType>();
        r->kind = SchemaType::Kind::Record;
        r->additionalAttributes = t.additionalAttributes;
        int height = 0;
        for (const RawAttribute& a : t.attributes) {
          Resolved at = resolveType(*a.type, ns, depth + 1);
          height = std::max(height, at.height + 1);
          r->attributes[a.name] = AttributeType{at.type, a.required};  // a later duplicate wins, as in Cedar
        }
        return checkHeight({r, height}, t.origin);
      }
      case RawType::Kind::EntityRef:
      case RawType::Kind::CommonRef:
      case RawType::Kind::EntityOrCommonRef: {
        bool common = t.kind != RawType::Kind::EntityRef;
        bool entity = t.kind != RawType::Kind::CommonRef;
        NameTarget target = lookup(t.name, ns, common, entity, t.origin);
        if (!target.isCommon) return {makePrimitive(SchemaType::Kind::Entity, target.name), 0};
        auto builtin = builtins_.find(target.name);
        if (builtin != builtins_.end()) return builtinType(builtin->second);
        auto it = commonResolved_.find(target.name);
        if (it == commonResolved_.end()) {
          // Only reachable for a common type that depends on a cycle; resolveCommonTypes reports it.
          fail(t.origin, "common type `" + target.name + "` is defined in terms of itself (a cycle)");
        }
        return it->second;
      }
    }
    fail(t.origin, "unexpected type");
  }

  SchemaTypePtr resolveRecord(const RawTypePtr& t, const std::string& ns, const std::string& what,
                              const Origin& origin) const {
    if (!t) return emptyRecord();
    SchemaTypePtr r = resolveType(*t, ns, 0).type;
    if (r->kind != SchemaType::Kind::Record) fail(origin, what + " must be a record type, not " + describe(*r));
    return r;
  }

  // ---- entity types and actions ----

  void resolveEntityType(const std::string& ns, const RawEntityType& e, Schema& schema) const {
    EntityTypeDecl decl;
    decl.name = qualify(ns, e.name);
    decl.memberOfTypes = resolveEntityRefs(e.memberOf, ns);
    decl.shape = resolveRecord(e.shape, ns, "the shape of entity type `" + decl.name + "`", e.origin);
    if (e.tags) decl.tags = resolveType(*e.tags, ns, 0).type;
    decl.enumIds = e.enumIds;
    schema.entityTypes.emplace(decl.name, std::move(decl));
  }

  std::vector<std::string> resolveEntityRefs(const std::vector<RawTypeRef>& refs, const std::string& ns) const {
    std::vector<std::string> out;
    std::set<std::string> seen;  // repeats are dropped (Cedar keeps these lists as sets)
    for (const RawTypeRef& ref : refs) {
      std::string name = lookup(ref.name, ns, false, true, ref.origin).name;
      if (seen.insert(name).second) out.push_back(std::move(name));
    }
    return out;
  }

  void resolveAction(const std::string& ns, const RawAction& a, Schema& schema) {
    ActionDecl decl;
    decl.uid = EntityUid{qualify(ns, "Action"), a.id};
    std::set<EntityUid> seen;
    for (const RawActionRef& ref : a.memberOf) {
      std::string type = ref.type.value_or("Action");
      std::vector<std::string> candidates;
      if (type.find("::") == std::string::npos && !ns.empty()) candidates.push_back(ns + "::" + type);
      candidates.push_back(type);
      std::optional<EntityUid> found;
      for (const std::string& c : candidates) {
        EntityUid uid{c, ref.id};
        if (actionDefs_.count(uid)) {
          found = uid;
          break;
        }
      }
      if (!found) fail(ref.origin, "undeclared parent action " + toString(EntityUid{type, ref.id}));
      if (seen.insert(*found).second) decl.memberOf.push_back(*found);
    }
    decl.principalTypes = resolveEntityRefs(a.principalTypes, ns);
    decl.resourceTypes = resolveEntityRefs(a.resourceTypes, ns);
    decl.context = resolveRecord(a.context, ns, "the context of action " + toString(decl.uid), a.origin);
    origins_[decl.uid] = &a.origin;
    schema.actions.emplace(decl.uid, std::move(decl));
  }

  /// Fails when the action hierarchy has a cycle (iterative DFS: hierarchies can be long).
  void checkActionCycles(const Schema& schema) const {
    enum class Mark : uint8_t { New, Active, Done };
    std::map<EntityUid, Mark> marks;
    for (const auto& [root, rootDecl] : schema.actions) {
      if (marks[root] != Mark::New) continue;
      std::vector<std::pair<const ActionDecl*, size_t>> stack{{&rootDecl, 0}};
      marks[root] = Mark::Active;
      while (!stack.empty()) {
        auto& [decl, next] = stack.back();
        if (next == decl->memberOf.size()) {
          marks[decl->uid] = Mark::Done;
          stack.pop_back();
          continue;
        }
        const EntityUid& parent = decl->memberOf[next++];
        Mark& m = marks[parent];
        if (m == Mark::Active) {
          fail(*origins_.at(decl->uid), "the action hierarchy has a cycle through " + toString(parent));
        }
        if (m == Mark::New) {
          m = Mark::Active;
          stack.push_back({&schema.actions.at(parent), 0});
        }
      }
    }
  }

  const RawSchema& raw_;
  std::string_view file_;
  std::map<std::string, CommonDef> commonDefs_;      // user common types, fully qualified
  std::set<std::string> entityDefs_;                  // user entity types, fully qualified
  std::set<EntityUid> actionDefs_;
  std::map<std::string, std::string> builtins_;      // name usable as a builtin -> its basename
  std::map<std::string, Resolved> commonResolved_;
  std::map<EntityUid, const Origin*> origins_;  // for cycle messages
};

}  // namespace

Schema resolveSchema(const RawSchema& raw, std::string_view fileName) { return Resolver(raw, fileName).run(); }

}  // namespace schema_internal

const EntityTypeDecl* Schema::findEntityType(std::string_view name) const {
  auto it = entityTypes.find(std::string(name));
  return it == entityTypes.end() ? nullptr : &it->second;
}

const ActionDecl* Schema::findAction(const EntityUid& uid) const {
  auto it = actions.find(uid);
  return it == actions.end() ? nullptr : &it->second;
}

bool Schema::isActionType(std::string_view type) const { return actionTypes.count(std::string(type)) > 0; }

namespace {

void describeInto(const SchemaType& t, std::string& out, int depth) {
  if (depth > kMaxNestingDepth) {
    out += "...";
    return;
  }
  switch (t.kind) {
    case SchemaType::Kind::Bool: out += "Bool"; break;
    case SchemaType::Kind::Long: out += "Long"; break;
    case SchemaType::Kind::String: out += "String"; break;
    case SchemaType::Kind::Entity:
    case SchemaType::Kind::Extension: out += t.name; break;
    case SchemaType::Kind::Set:
      out += "Set<";
      if (t.element) describeInto(*t.element, out, depth + 1);
      out += ">";
      break;
    case SchemaType::Kind::Record: {
      if (t.attributes.empty() && !t.additionalAttributes) {
        out += "{}";
        break;
      }
      out += "{ ";
      bool first = true;
      for (const auto& [name, attr] : t.attributes) {
        if (!first) out += ", ";
        first = false;
        if (schema_internal::isIdentifier(name)) {
          out += name;
        } else {
          out += "\"" + escapeCedarString(name) + "\"";
        }
        if (!attr.required) out += "?";
        out += ": ";
        if (attr.type) describeInto(*attr.type, out, depth + 1);
      }
      if (t.additionalAttributes) out += first ? "..." : ", ...";
      out += " }";
      break;
    }
  }
}

}  // namespace

std::string describe(const SchemaType& type) {
  std::string out;
  describeInto(type, out, 0);
  return out;
}

Schema parseSchemaFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw InputError(path, {}, "cannot open schema file");
  // Refuse oversized files before reading them into memory.
  if (static_cast<size_t>(in.tellg()) > kMaxInputBytes) throw InputError(path, {}, "schema file is too large");
  in.seekg(0);
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string text = buf.str();
  bool isJson = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  return isJson ? parseSchemaJson(text, path) : parseSchemaText(text, path);
}

}  // namespace govmesh::cedar
