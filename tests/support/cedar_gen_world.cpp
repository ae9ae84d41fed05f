// Cedar test generator: the world of one test (entity types, entity hierarchy, actions,
// context shape), its entity-store JSON, its schema and its requests.
#include <algorithm>
#include <functional>
#include <set>

#include "tests/support/cedar_gen_internal.h"

namespace govmesh::gen {

namespace {

using Json = nlohmann::ordered_json;

std::string baseName(const std::string& type) {
  auto pos = type.rfind("::");
  return pos == std::string::npos ? type : type.substr(pos + 2);
}

std::string namespaceOf(const std::string& type) {
  auto pos = type.rfind("::");
  return pos == std::string::npos ? "" : type.substr(0, pos);
}

/// Picks `n` distinct names from `pool`; in schema mode also distinct by base name, because an
/// unqualified type name inside a namespace block could otherwise resolve to the wrong type.
std::vector<std::string> pickTypeNames(Rng& rng, int n, bool distinctBase) {
  static const std::vector<std::string> pool = {"User",   "Group", "Doc",        "Folder",         "Team",    "Role",
                                                "Photo",  "Album", "Acme::User", "Acme::Sub::Doc", "Org::Unit", "Device"};
  std::vector<std::string> names;
  for (int guard = 0; static_cast<int>(names.size()) < n && guard < 100; ++guard) {
    const std::string& c = rng.pick(pool);
    bool clash = false;
    for (auto& x : names) clash = clash || x == c || (distinctBase && baseName(x) == baseName(c));
    if (!clash) names.push_back(c);
  }
  return names;
}

std::vector<Field> pickFields(Rng& rng, const World& world, const std::vector<std::string>& pool, int n,
                              int typeDepth) {
  std::vector<Field> fields;
  for (int guard = 0; static_cast<int>(fields.size()) < n && guard < 100; ++guard) {
    const std::string& name = rng.pick(pool);
    bool dup = false;
    for (auto& f : fields) dup = dup || f.name == name;
    if (!dup) fields.push_back({name, randomType(rng, world, typeDepth), !rng.chance(0.25)});
  }
  return fields;
}

TypePtr recordOf(const std::vector<Field>& fields) {
  auto t = std::make_shared<Type>();
  t->kind = Kind::Record;
  t->fields = fields;
  return t;
}

void buildEntities(Rng& rng, const GenOptions& options, World& w, const std::vector<Field>& catalog) {
  static const std::vector<std::string> idPool = {
      "alice", "bob", "carol", "dave", "eve", "g1", "admins", "", "with space", "\xC3\xBCn\xC3\xAF", "quote\"",
      "x::y", "0", "Alice", "root", "ops", "\xE2\x98\x83", "tab\tid"};
  int n = rng.range(options.minEntities, options.maxEntities);
  int depth = std::max(1, options.hierarchyDepth);
  std::set<std::pair<std::string, std::string>> used;
  for (int i = 0; i < n; ++i) {
    Entity e;
    e.uid.type = rng.pick(w.entityTypes).name;
    std::string id = rng.pick(idPool);
    while (used.count({e.uid.type, id})) id += std::to_string(rng.range(0, 9));
    used.insert({e.uid.type, id});
    e.uid.id = id;
    e.level = rng.range(0, depth - 1);
    w.entities.push_back(std::move(e));
  }
  for (const auto& type : w.entityTypes) {
    std::string id = rng.pick(std::vector<std::string>{"ghost", "nobody", "missing \xC3\xBC"});
    if (!used.count({type.name, id})) w.missingUids.push_back({type.name, id});
  }
  // Parents come from lower levels only, which keeps the hierarchy acyclic; mostly from the
  // level just above, so chains are as deep as the levels allow.
  for (auto& e : w.entities) {
    std::vector<const Entity*> above, justAbove;
    for (auto& p : w.entities) {
      if (p.level < e.level) above.push_back(&p);
      if (p.level == e.level - 1) justAbove.push_back(&p);
    }
    if (!above.empty()) {
      int count = static_cast<int>(rng.weighted({1, 5, 3, 1}));
      for (int k = 0; k < count; ++k) {
        const Entity* p = (!justAbove.empty() && rng.chance(0.7)) ? rng.pick(justAbove) : rng.pick(above);
        bool dup = false;
        for (auto& q : e.parents) dup = dup || (q.type == p->uid.type && q.id == p->uid.id);
        if (!dup) e.parents.push_back(p->uid);
      }
    }
    if (!w.missingUids.empty() && rng.chance(0.08)) e.parents.push_back(rng.pick(w.missingUids));
  }
  for (auto& e : w.entities) {
    auto typeIt = std::find_if(w.entityTypes.begin(), w.entityTypes.end(), [&](auto& t) { return t.name == e.uid.type; });
    for (auto& f : typeIt->attrs) {
      bool present = w.withSchema ? (f.required || rng.chance(0.6)) : rng.chance(0.85);
      if (present) e.attrs[f.name] = randomValue(rng, w, *f.type, !w.withSchema);
    }
    if (!w.withSchema && rng.chance(0.1)) {  // an attribute entities of this type usually lack
      const Field& f = rng.pick(catalog);
      if (!e.attrs.contains(f.name)) e.attrs[f.name] = randomValue(rng, w, *f.type, true);
    }
    if (typeIt->hasTags && rng.chance(0.8)) {
      e.tags = Json::object();
      for (auto& k : w.tagKeys)
        if (rng.chance(0.6)) e.tags[k] = randomValue(rng, w, *w.tagType, !w.withSchema);
    }
    for (auto& p : e.parents) {
      auto& pts = typeIt->parentTypes;
      if (std::find(pts.begin(), pts.end(), p.type) == pts.end()) pts.push_back(p.type);
    }
  }
  // Shuffle so that store order says nothing about the hierarchy.
  for (size_t i = w.entities.size(); i > 1; --i) std::swap(w.entities[i - 1], w.entities[rng.below(i)]);
}

void buildActions(Rng& rng, World& w) {
  static const std::vector<std::string> leafPool = {"view", "edit", "delete", "share", "comment", "read \xC3\xBC",
                                                    "Action with space", "list"};
  static const std::vector<std::string> groupPool = {"readOnly", "write", "all"};
  std::string actionType = (!w.withSchema && rng.chance(0.2)) ? "Acme::Action" : "Action";
  std::vector<Uid> groups;
  int ng = rng.range(1, 3);
  for (int i = 0; i < ng; ++i) {
    ActionDef g;
    g.uid = {actionType, groupPool[static_cast<size_t>(i)]};
    g.isGroup = true;
    if (i > 0 && rng.chance(0.6)) g.parents.push_back(groups[rng.below(groups.size())]);
    groups.push_back(g.uid);
    w.actions.push_back(g);
  }
  std::vector<std::string> leaves = leafPool;
  for (size_t i = leaves.size(); i > 1; --i) std::swap(leaves[i - 1], leaves[rng.below(i)]);
  int nl = rng.range(2, 5);
  for (int i = 0; i < nl; ++i) {
    ActionDef a;
    a.uid = {actionType, leaves[static_cast<size_t>(i)]};
    int np = static_cast<int>(rng.weighted({2, 5, 2}));
    for (int k = 0; k < np; ++k) {
      const Uid& g = rng.pick(groups);
      bool dup = false;
      for (auto& q : a.parents) dup = dup || q.id == g.id;
      if (!dup) a.parents.push_back(g);
    }
    for (auto& t : w.entityTypes) {
      if (rng.chance(0.6)) a.principalTypes.push_back(t.name);
      if (rng.chance(0.6)) a.resourceTypes.push_back(t.name);
    }
    if (a.principalTypes.empty()) a.principalTypes.push_back(rng.pick(w.entityTypes).name);
    if (a.resourceTypes.empty()) a.resourceTypes.push_back(rng.pick(w.entityTypes).name);
    w.actions.push_back(a);
  }
}

Json uidJson(const Uid& u) { return {{"type", u.type}, {"id", u.id}}; }

/// Fills World::entitiesWithChildren and World::ancestors from the finished hierarchy.
void indexWorld(World& w) {
  std::unordered_map<std::string, const std::vector<Uid>*> parents;
  for (auto& e : w.entities) parents.emplace(uidKey(e.uid), &e.parents);
  for (auto& a : w.actions) parents.emplace(uidKey(a.uid), &a.parents);
  std::unordered_set<std::string> isParent;
  for (auto& e : w.entities)
    for (auto& p : e.parents) isParent.insert(uidKey(p));
  for (size_t i = 0; i < w.entities.size(); ++i)
    if (isParent.count(uidKey(w.entities[i].uid))) w.entitiesWithChildren.push_back(i);
  // Memoized closure; the hierarchy is acyclic (parents come from lower levels, action groups
  // from earlier groups), and its height is bounded by GenOptions::hierarchyDepth.
  std::function<const std::unordered_set<std::string>&(const std::string&)> closure =
      [&](const std::string& key) -> const std::unordered_set<std::string>& {
    if (auto it = w.ancestors.find(key); it != w.ancestors.end()) return it->second;
    std::unordered_set<std::string> out;
    if (auto it = parents.find(key); it != parents.end())
      for (auto& p : *it->second) {
        std::string pk = uidKey(p);
        out.insert(pk);
        const auto& up = closure(pk);
        out.insert(up.begin(), up.end());
      }
    return w.ancestors.emplace(key, std::move(out)).first->second;
  };
  for (auto& [key, ps] : parents) closure(key);
}

}  // namespace

std::string uidKey(const Uid& uid) { return uid.type + std::string(1, '\0') + uid.id; }

World buildWorld(Rng& rng, const GenOptions& options) {
  static const std::vector<std::string> attrPool = {
      "age", "name", "dept", "active", "owner", "manager", "level", "score", "email", "labels", "members",
      "profile", "balance", "addr", "created", "ttl", "big", "odd name", "\xC3\xBCn\xC3\xAF", "if", "", "nums"};
  static const std::vector<std::string> contextPool = {"ip", "time", "flag", "n", "s", "tags", "req", "amount",
                                                       "when", "dur", "who", "ok", "x y", "limit"};
  static const std::vector<std::string> tagKeyPool = {"env", "owner", "level", "", "a b", "\xC3\xA9", "tier"};
  World w;
  w.withSchema = rng.chance(options.schemaFraction);
  for (auto& name : pickTypeNames(rng, rng.range(2, 5), w.withSchema)) w.entityTypes.push_back({name, {}, false, {}});
  std::vector<Field> catalog = pickFields(rng, w, attrPool, rng.range(5, 11), 2);
  for (auto& t : w.entityTypes) {
    for (auto& f : catalog)
      if (rng.chance(0.7)) t.attrs.push_back(f);
    t.hasTags = rng.chance(0.45);
  }
  w.tagType = rng.chance(0.7) ? simpleType(rng.pick(std::vector<Kind>{Kind::Long, Kind::String, Kind::Bool, Kind::Decimal}))
                              : randomType(rng, w, 1);
  for (auto& k : tagKeyPool)
    if (rng.chance(0.5)) w.tagKeys.push_back(k);
  if (w.tagKeys.empty()) w.tagKeys.push_back("env");
  buildEntities(rng, options, w, catalog);
  buildActions(rng, w);
  w.contextFields = pickFields(rng, w, contextPool, rng.range(2, 7), 2);
  indexWorld(w);
  return w;
}

std::string entitiesJson(const World& w) {
  Json arr = Json::array();
  for (auto& e : w.entities) {
    Json parents = Json::array();
    for (auto& p : e.parents) parents.push_back(uidJson(p));
    Json obj = {{"uid", uidJson(e.uid)}, {"attrs", e.attrs}, {"parents", parents}};
    if (!e.tags.is_null()) obj["tags"] = e.tags;
    arr.push_back(obj);
  }
  // With a schema the actions come from the schema; without one they must be in the store for
  // the action hierarchy to exist.
  if (!w.withSchema)
    for (auto& a : w.actions) {
      Json parents = Json::array();
      for (auto& p : a.parents) parents.push_back(uidJson(p));
      arr.push_back({{"uid", uidJson(a.uid)}, {"attrs", Json::object()}, {"parents", parents}});
    }
  return arr.dump(1) + "\n";
}

std::string schemaText(const World& w) {
  std::string out;
  std::vector<std::string> namespaces;
  for (auto& t : w.entityTypes)
    if (std::find(namespaces.begin(), namespaces.end(), namespaceOf(t.name)) == namespaces.end())
      namespaces.push_back(namespaceOf(t.name));
  for (auto& ns : namespaces) {
    std::string indent = ns.empty() ? "" : "  ";
    if (!ns.empty()) out += "namespace " + ns + " {\n";
    for (auto& t : w.entityTypes) {
      if (namespaceOf(t.name) != ns) continue;
      out += indent + "entity " + baseName(t.name);
      for (size_t i = 0; i < t.parentTypes.size(); ++i) out += (i ? ", " : " in [") + t.parentTypes[i];
      if (!t.parentTypes.empty()) out += "]";
      if (!t.attrs.empty()) out += " = " + schemaType(*recordOf(t.attrs));
      if (t.hasTags) out += " tags " + schemaType(*w.tagType);
      out += ";\n";
    }
    if (!ns.empty()) out += "}\n";
  }
  std::string context = schemaType(*recordOf(w.contextFields));
  if (w.contextFields.size() % 2 == 0) {  // sometimes through a common type, a feature of its own
    out += "type RequestContext = " + context + ";\n";
    context = "RequestContext";
  }
  for (auto& a : w.actions) {
    out += "action " + cedarString(a.uid.id);
    for (size_t i = 0; i < a.parents.size(); ++i) out += (i ? ", " : " in [") + cedarString(a.parents[i].id);
    if (!a.parents.empty()) out += "]";
    if (!a.isGroup) {
      out += " appliesTo {\n  principal: [";
      for (size_t i = 0; i < a.principalTypes.size(); ++i) out += (i ? ", " : "") + a.principalTypes[i];
      out += "],\n  resource: [";
      for (size_t i = 0; i < a.resourceTypes.size(); ++i) out += (i ? ", " : "") + a.resourceTypes[i];
      out += "],\n  context: " + context + "\n}";
    }
    out += ";\n";
  }
  return out;
}

namespace {

bool sameUid(const Uid& a, const Uid& b) { return a.type == b.type && a.id == b.id; }

/// True when `x` is `target` or lies below it in the (acyclic) hierarchy.
bool isDescendant(const World& w, const Uid& x, const Uid& target) {
  if (sameUid(x, target)) return true;
  auto it = w.ancestors.find(uidKey(x));
  return it != w.ancestors.end() && it->second.count(uidKey(target)) > 0;
}

/// The uids that satisfy a scope constraint.
std::vector<Uid> satisfying(const World& w, const ScopeTarget& t) {
  using Op = ScopeTarget::Op;
  std::vector<Uid> out;
  if (t.op == Op::Eq) return {t.entity};
  for (auto& e : w.entities) {
    bool ok = t.op == Op::Any || ((t.op == Op::Is || t.op == Op::IsIn) ? e.uid.type == t.type : true);
    if (ok && (t.op == Op::In || t.op == Op::IsIn)) ok = isDescendant(w, e.uid, t.entity);
    if (ok) out.push_back(e.uid);
  }
  if (t.op == Op::In) out.push_back(t.entity);
  return out;
}

bool allowedType(const std::vector<std::string>& allowed, const std::string& type) {
  return std::find(allowed.begin(), allowed.end(), type) != allowed.end();
}

}  // namespace

Json randomRequest(Rng& rng, const World& w, const std::vector<PolicyScope>& scopes) {
  std::vector<const ActionDef*> leaves, all;
  for (auto& a : w.actions) {
    all.push_back(&a);
    if (!a.isGroup) leaves.push_back(&a);
  }
  // Aim most requests at one policy's scope (permits more often), so that conditions get
  // evaluated and decisions are not almost all default denies.
  const PolicyScope* aim = nullptr;
  if (!scopes.empty() && rng.chance(0.8)) {
    std::vector<const PolicyScope*> permits;
    for (auto& s : scopes)
      if (s.permit) permits.push_back(&s);
    aim = (!permits.empty() && rng.chance(0.8)) ? rng.pick(permits) : &rng.pick(scopes);
  }
  const ActionDef* action = nullptr;
  if (aim && !aim->actionAny) {
    std::vector<const ActionDef*> cands;
    for (auto* a : (w.withSchema ? leaves : all))
      for (auto& target : aim->actions)
        if (isDescendant(w, a->uid, target)) {
          cands.push_back(a);
          break;
        }
    if (!cands.empty()) action = rng.pick(cands);
  }
  if (!action) action = (!w.withSchema && rng.chance(0.1)) ? rng.pick(all) : rng.pick(leaves);
  bool validate = w.withSchema && rng.chance(0.85);

  auto pickUid = [&](const std::vector<std::string>& allowed, const ScopeTarget* target) -> Uid {
    if (target) {
      std::vector<Uid> cands = satisfying(w, *target), typed;
      for (auto& u : cands)
        if (allowedType(allowed, u.type)) typed.push_back(u);
      if (!validate && !cands.empty()) return rng.pick(cands);
      if (!typed.empty()) return rng.pick(typed);
      if (!cands.empty() && rng.chance(0.5)) {
        validate = false;  // the aimed-at entity has a type the action does not apply to
        return rng.pick(cands);
      }
    }
    std::vector<Uid> candidates;
    for (auto& e : w.entities)
      if (!validate || allowedType(allowed, e.uid.type)) candidates.push_back(e.uid);
    if (candidates.empty() || rng.chance(0.1)) {
      std::vector<Uid> ms;
      for (auto& m : w.missingUids)
        if (!validate || allowedType(allowed, m.type)) ms.push_back(m);
      if (!ms.empty()) return rng.pick(ms);
      if (candidates.empty()) return {allowed.front(), "ghost"};
    }
    return rng.pick(candidates);
  };
  Uid principal = pickUid(action->principalTypes, aim ? &aim->principal : nullptr);
  Uid resource = pickUid(action->resourceTypes, aim ? &aim->resource : nullptr);
  Json context = randomValue(rng, w, *recordOf(w.contextFields), !w.withSchema);
  Json req = {{"principal", uidJson(principal)},
              {"action", uidJson(action->uid)},
              {"resource", uidJson(resource)},
              {"context", context}};
  if (w.withSchema) req["validateRequest"] = validate;
  return req;
}

}  // namespace govmesh::gen
