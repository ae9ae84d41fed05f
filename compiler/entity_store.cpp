#include <algorithm>
#include <nlohmann/json.hpp>

#include "compiler/entities.h"
#include "compiler/errors.h"

namespace govmesh::cedar {

using nlohmann::json;

void EntityStore::add(Entity e, const std::string& file) {
  EntityUid uid = e.uid;
  auto [it, inserted] = entities_.emplace(uid, std::move(e));
  if (!inserted) throw InputError(file, {}, "duplicate entity " + toString(uid));
}

void EntityStore::addIfAbsent(Entity e) {
  EntityUid uid = e.uid;
  entities_.emplace(std::move(uid), std::move(e));
}

const Entity* EntityStore::find(const EntityUid& uid) const {
  auto it = entities_.find(uid);
  return it == entities_.end() ? nullptr : &it->second;
}

void EntityStore::computeAncestors() {
  // Iterative depth-first walk per entity. Parents that are not in the store are still
  // ancestors (Cedar keeps them), they just contribute no further parents. Cycles terminate
  // because each uid is visited once per walk.
  ancestors_.clear();
  for (const auto& [uid, entity] : entities_) {
    std::unordered_set<EntityUid, EntityUidHash> seen;
    std::vector<const EntityUid*> stack;
    for (const EntityUid& p : entity.parents) stack.push_back(&p);
    while (!stack.empty()) {
      const EntityUid* cur = stack.back();
      stack.pop_back();
      if (!seen.insert(*cur).second) continue;
      // Reuse an already computed closure when there is one.
      if (auto done = ancestors_.find(*cur); done != ancestors_.end()) {
        seen.insert(done->second.begin(), done->second.end());
        continue;
      }
      if (const Entity* pe = find(*cur))
        for (const EntityUid& pp : pe->parents) stack.push_back(&pp);
    }
    ancestors_.emplace(uid, std::move(seen));
  }
}

const std::unordered_set<EntityUid, EntityUidHash>& EntityStore::ancestors(const EntityUid& uid) const {
  static const std::unordered_set<EntityUid, EntityUidHash> kNone;
  auto it = ancestors_.find(uid);
  return it == ancestors_.end() ? kNone : it->second;
}

bool EntityStore::isDescendantOrSelf(const EntityUid& uid, const EntityUid& ancestor) const {
  if (uid == ancestor) return true;
  auto it = ancestors_.find(uid);
  return it != ancestors_.end() && it->second.count(ancestor) > 0;
}

namespace {

void checkAgainstSchema(const Entity& e, const json& parentsJson, const Schema& schema, const std::string& where) {
  const EntityTypeDecl* decl = schema.findEntityType(e.uid.type);
  if (!decl) throw InputError(where, {}, "entity type `" + e.uid.type + "` is not declared in the schema");
  if (decl->enumIds && std::find(decl->enumIds->begin(), decl->enumIds->end(), e.uid.id) == decl->enumIds->end())
    throw InputError(where, {}, "`" + escapeCedarString(e.uid.id) + "` is not one of the enumerated ids of " + decl->name);
  for (const EntityUid& p : e.parents) {
    bool ok = std::find(decl->memberOfTypes.begin(), decl->memberOfTypes.end(), p.type) != decl->memberOfTypes.end();
    if (!ok) throw InputError(where, {}, "entities of type " + e.uid.type + " cannot have a parent of type " + p.type);
  }
  (void)parentsJson;
}

}  // namespace

EntityStore parseEntitiesJson(std::string_view text, const std::string& fileName, const Schema* schema) {
  json doc = parseJsonText(text, fileName);
  if (!doc.is_array()) throw InputError(fileName, {}, "entities file must hold a JSON array of entities");
  EntityStore store;
  for (size_t i = 0; i < doc.size(); ++i) {
    const json& ej = doc[i];
    std::string where = fileName + ": entity [" + std::to_string(i) + "]";
    if (!ej.is_object() || !ej.contains("uid")) throw InputError(where, {}, "expected an object with \"uid\"");
    Entity e;
    e.uid = uidFromJson(ej["uid"], where + ".uid");
    where = fileName + ": entity " + toString(e.uid);
    if (schema && schema->isActionType(e.uid.type)) {
      // Action entities come from the schema, which is the authority on their hierarchy.
      if (!schema->findAction(e.uid)) throw InputError(where, {}, "action " + toString(e.uid) + " is not declared in the schema");
      continue;
    }
    const EntityTypeDecl* decl = schema ? schema->findEntityType(e.uid.type) : nullptr;
    if (ej.contains("parents")) {
      const json& pj = ej["parents"];
      if (!pj.is_array()) throw InputError(where, {}, "\"parents\" must be an array");
      for (size_t k = 0; k < pj.size(); ++k) e.parents.push_back(uidFromJson(pj[k], where + ".parents[" + std::to_string(k) + "]"));
    }
    if (schema) checkAgainstSchema(e, ej.value("parents", json::array()), *schema, where);
    if (ej.contains("attrs")) {
      if (!ej["attrs"].is_object()) throw InputError(where, {}, "\"attrs\" must be an object");
      e.attrs = jsonToValue(ej["attrs"], decl ? decl->shape.get() : nullptr, where + ".attrs");
    } else if (decl && decl->shape) {
      e.attrs = jsonToValue(json::object(), decl->shape.get(), where + ".attrs");
    }
    if (ej.contains("tags")) {
      const json& tj = ej["tags"];
      if (!tj.is_object()) throw InputError(where, {}, "\"tags\" must be an object");
      if (decl && !decl->tags && !tj.empty()) throw InputError(where, {}, "entity type " + decl->name + " declares no tags");
      ValueRecord tags;
      for (auto it = tj.begin(); it != tj.end(); ++it)
        tags.emplace_back(it.key(), jsonToValue(it.value(), decl ? decl->tags.get() : nullptr, where + ".tags." + it.key()));
      e.tags = Value::record(std::move(tags));
    }
    store.add(std::move(e), fileName);
  }
  if (schema) {
    for (const auto& [uid, action] : schema->actions) {
      Entity a;
      a.uid = uid;
      a.parents = action.memberOf;
      store.addIfAbsent(std::move(a));
    }
  }
  store.computeAncestors();
  return store;
}

}  // namespace govmesh::cedar
