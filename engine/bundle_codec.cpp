// Bundle content -> Cap'n Proto (engine/bundle.capnp): encodeBundleContent, and the entity
// store as entities JSON. Encoding is deterministic (dictionaries sorted, entities by uid), so
// the same inputs give the same bytes and the same digest. Decoding: bundle_decode.cpp.
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "compiler/errors.h"
#include "engine/bundle.capnp.h"
#include "engine/bundle.h"
#include "engine/bundle_internal.h"

namespace govmesh::engine {

using cedar::InputError;
using nlohmann::json;

namespace {

capnp::Text::Reader text(const std::string& s) { return capnp::Text::Reader(s.c_str(), s.size()); }

void setUid(wire::Uid::Builder b, const cedar::EntityUid& u) {
  b.setType(text(u.type));
  b.setId(text(u.id));
}

// Cap'n Proto lists hold at most 2^29 elements; larger tables do not fit in one bundle.
unsigned listSize(size_t n) {
  if (n >= (size_t{1} << 29)) throw InputError("", {}, "decision table too large for a bundle (a list of " + std::to_string(n) + " elements)");
  return static_cast<unsigned>(n);
}

template <typename Map>
std::vector<std::pair<std::string, uint32_t>> sortedEntries(const Map& m) {
  std::vector<std::pair<std::string, uint32_t>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end());
  return v;
}

void encodeFeature(wire::Feature::Builder out, const table::Feature& f, uint32_t words) {
  out.setKind(static_cast<wire::FeatureKind>(f.kind));
  auto path = out.initPath(listSize(f.path.size()));
  for (unsigned i = 0; i < path.size(); ++i) path.set(i, text(f.path[i]));
  out.setAtomText(text(f.atomText));
  // Sorted, so that the same table always encodes to the same bytes (and the same digest).
  auto values = sortedEntries(f.valueRows);
  auto keys = out.initValueKeys(listSize(values.size()));
  auto rows = out.initValueRows(listSize(values.size()));
  for (unsigned i = 0; i < values.size(); ++i) {
    keys.set(i, text(values[i].first));
    rows.set(i, values[i].second);
  }
  out.setOtherRow(f.otherRow);
  out.setErrorRow(f.errorRow);
  auto er = out.initEntityRows(listSize(f.entityRows.size()));
  for (unsigned i = 0; i < er.size(); ++i) er.set(i, f.entityRows[i]);
  auto types = sortedEntries(f.unknownTypeRows);
  auto tn = out.initUnknownTypes(listSize(types.size()));
  auto tr = out.initUnknownTypeRows(listSize(types.size()));
  for (unsigned i = 0; i < types.size(); ++i) {
    tn.set(i, text(types[i].first));
    tr.set(i, types[i].second);
  }
  out.setUnknownAnyTypeRow(f.unknownAnyTypeRow);
  size_t perRow = size_t{3} * words;
  if (perRow != 0 && f.rows.size() % perRow != 0) throw std::invalid_argument("feature rows are not a whole number of rows");
  size_t rowCount = perRow == 0 ? 0 : f.rows.size() / perRow;
  if (rowCount > UINT32_MAX) throw std::invalid_argument("too many rows");
  out.setRowCount(static_cast<uint32_t>(rowCount));
  auto w = out.initRows(listSize(f.rows.size()));
  for (unsigned i = 0; i < w.size(); ++i) w.set(i, f.rows[i]);
}

void encodeTable(wire::DecisionTable::Builder out, const table::DecisionTable& t) {
  if (t.policies.size() != t.policyCount) throw std::invalid_argument("decision table: policies.size() != policyCount");
  out.setPolicyCount(t.policyCount);
  out.setWords(t.words);
  auto ids = out.initPolicyIds(listSize(t.policies.size()));
  for (unsigned i = 0; i < ids.size(); ++i) ids.set(i, text(t.policies[i].id));
  auto permit = out.initPermitMask(listSize(t.permitMask.size()));
  for (unsigned i = 0; i < permit.size(); ++i) permit.set(i, t.permitMask[i]);
  auto forbid = out.initForbidMask(listSize(t.forbidMask.size()));
  for (unsigned i = 0; i < forbid.size(); ++i) forbid.set(i, t.forbidMask[i]);
  auto ents = out.initEntities(listSize(t.entities.size()));
  for (unsigned i = 0; i < ents.size(); ++i) setUid(ents[i], t.entities[i]);
  auto feats = out.initFeatures(listSize(t.features.size()));
  for (unsigned i = 0; i < feats.size(); ++i) encodeFeature(feats[i], t.features[i], t.words);
}

// A record that Cedar's JSON reader would take for an escape cannot round-trip through
// entities JSON; refuse it when writing instead of loading a different store later.
void checkStorable(const cedar::Value& v, const std::string& where, int depth) {
  if (depth > cedar::kMaxNestingDepth) throw InputError(where, {}, "value nested too deeply to store in a bundle");
  if (v.isSet()) {
    for (const cedar::Value& e : v.asSet()) checkStorable(e, where, depth + 1);
  } else if (v.isRecord()) {
    const cedar::ValueRecord& r = v.asRecord();
    for (const auto& [k, e] : r) {
      bool escape = k == "__expr" || (r.size() == 1 && (k == "__entity" || k == "__extn"));
      if (escape) throw InputError(where, {}, "a record with attribute `" + k + "` cannot be stored as entities JSON");
      checkStorable(e, where, depth + 1);
    }
  }
}

json uidJson(const cedar::EntityUid& u) { return json{{"type", u.type}, {"id", u.id}}; }

}  // namespace

std::string entitiesToJson(const cedar::EntityStore& store) {
  std::vector<const cedar::Entity*> all;
  all.reserve(store.size());
  for (const auto& [uid, e] : store.all()) all.push_back(&e);
  std::sort(all.begin(), all.end(), [](const cedar::Entity* a, const cedar::Entity* b) { return a->uid < b->uid; });
  json doc = json::array();
  for (const cedar::Entity* e : all) {
    std::string where = "entity " + cedar::toString(e->uid);
    checkStorable(e->attrs, where, 0);
    checkStorable(e->tags, where, 0);
    json parents = json::array();
    for (const cedar::EntityUid& p : e->parents) parents.push_back(uidJson(p));
    // attrs and tags are records, so valueToJson writes plain objects (no escape) for them.
    doc.push_back(json{{"uid", uidJson(e->uid)}, {"attrs", cedar::valueToJson(e->attrs)}, {"parents", parents},
                       {"tags", cedar::valueToJson(e->tags)}});
  }
  try {
    return doc.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::exception& ex) {
    throw InputError("entities", {}, std::string("cannot write the entity store as JSON: ") + ex.what());
  }
}

std::string encodeBundleContent(const Bundle& b) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::Bundle>();
  root.setFormatVersion(b.formatVersion);
  root.setRevision(b.revision);
  root.setIssuedAtMs(b.issuedAtMs);
  root.setFreshUntilMs(b.freshUntilMs);
  root.setPolicyText(text(b.policyText));
  root.setPolicyFileName(text(b.policyFileName));
  auto links = root.initLinks(listSize(b.links.size()));
  for (unsigned i = 0; i < links.size(); ++i) {
    const cedar::TemplateLink& l = b.links[i];
    links[i].setId(text(l.id));
    links[i].setTemplateId(text(l.templateId));
    links[i].setHasPrincipal(l.principal.has_value());
    links[i].setHasResource(l.resource.has_value());
    if (l.principal) setUid(links[i].initPrincipal(), *l.principal);
    if (l.resource) setUid(links[i].initResource(), *l.resource);
  }
  root.setHasSchema(b.schemaText.has_value());
  root.setSchemaIsJson(b.schemaIsJson);
  if (b.schemaText) root.setSchemaText(text(*b.schemaText));
  root.setEntitiesJson(text(b.store ? entitiesToJson(*b.store) : std::string("[]")));
  auto keys = root.initKeys(listSize(b.keys.size()));
  for (unsigned i = 0; i < keys.size(); ++i) {
    const WorkloadKey& k = b.keys[i];
    keys[i].setKeyId(text(k.keyId));
    keys[i].setPublicKey(capnp::Data::Reader(k.publicKey.data(), k.publicKey.size()));
    setUid(keys[i].initPrincipal(), k.principal);
    keys[i].setHasNotAfter(k.notAfterMs.has_value());
    keys[i].setNotAfterMs(k.notAfterMs.value_or(0));
  }
  encodeTable(root.initTable(), b.table);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

}  // namespace govmesh::engine
