// decodeBundleContent: Cap'n Proto bytes -> a usable Bundle. Every size and index the bytes
// state is checked before it is used, so a malformed bundle is an InputError, never a crash or
// an out-of-bounds read later in an evaluator.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "compiler/errors.h"
#include "compiler/parser.h"
#include "engine/bundle.capnp.h"
#include "engine/bundle.h"
#include "engine/bundle_internal.h"

namespace govmesh::engine {

using cedar::InputError;

namespace {

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }
cedar::EntityUid getUid(wire::Uid::Reader r) { return {str(r.getType()), str(r.getId())}; }

bool isEntityKind(table::FeatureKind k) {
  return k == table::FeatureKind::Principal || k == table::FeatureKind::Action || k == table::FeatureKind::Resource;
}

class TableDecoder {
 public:
  TableDecoder(const std::string& where, const cedar::EntityStore& store) : where_(where), store_(store) {}

  void decode(wire::DecisionTable::Reader r, std::vector<cedar::Policy> policies, table::DecisionTable& t) {
    t.policyCount = r.getPolicyCount();
    t.words = r.getWords();
    if (uint64_t{t.words} != (uint64_t{t.policyCount} + 63) / 64) fail("words does not match the policy count");
    decodePolicies(r.getPolicyIds(), std::move(policies), t);
    t.permitMask = readMask(r.getPermitMask(), t, "permit");
    t.forbidMask = readMask(r.getForbidMask(), t, "forbid");
    for (uint32_t i = 0; i < t.policyCount; ++i) {
      bool permit = (t.permitMask[i / 64] >> (i % 64)) & 1, forbid = (t.forbidMask[i / 64] >> (i % 64)) & 1;
      if (permit != (t.policies[i].effect == cedar::Effect::Permit) || forbid != (t.policies[i].effect == cedar::Effect::Forbid))
        fail("the effect masks disagree with policy `" + t.policies[i].id + "`");
    }
    auto ents = r.getEntities();
    t.entities.reserve(ents.size());
    for (auto e : ents) {
      cedar::EntityUid u = getUid(e);
      if (!t.entityIndex.emplace(u, static_cast<uint32_t>(t.entities.size())).second)
        fail("entity " + cedar::toString(u) + " is listed twice");
      t.entities.push_back(std::move(u));
    }
    // The entity features give every stored entity its own row; one missing from the universe
    // would be treated as unknown, silently changing decisions.
    for (const auto& [uid, e] : store_.all())
      if (!t.entityIndex.count(uid)) fail("entity " + cedar::toString(uid) + " of the store is not in the table");
    auto feats = r.getFeatures();
    t.features.resize(feats.size());
    for (unsigned i = 0; i < feats.size(); ++i) decodeFeature(feats[i], i, t, t.features[i]);
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw InputError(where_, {}, "decision table: " + msg); }

  void decodePolicies(capnp::List<capnp::Text>::Reader ids, std::vector<cedar::Policy> policies, table::DecisionTable& t) {
    if (ids.size() != t.policyCount) fail("policy count " + std::to_string(t.policyCount) + " but " + std::to_string(ids.size()) + " policy ids");
    if (policies.size() != t.policyCount)
      fail("the table has " + std::to_string(t.policyCount) + " policies but the policy text defines " + std::to_string(policies.size()));
    std::unordered_map<std::string, size_t> byId;
    for (size_t i = 0; i < policies.size(); ++i) byId.emplace(policies[i].id, i);
    std::vector<bool> used(policies.size());
    t.policies.reserve(policies.size());
    for (auto idText : ids) {
      std::string id = str(idText);
      auto it = byId.find(id);
      if (it == byId.end()) fail("policy `" + id + "` is not in the policy text");
      if (used[it->second]) fail("policy `" + id + "` is listed twice");
      used[it->second] = true;
      t.policies.push_back(std::move(policies[it->second]));
    }
  }

  std::vector<table::Word> readMask(capnp::List<uint64_t>::Reader r, const table::DecisionTable& t, const char* name) const {
    if (r.size() != t.words) fail(std::string(name) + " mask has " + std::to_string(r.size()) + " words, expected " + std::to_string(t.words));
    std::vector<table::Word> out(r.size());
    for (unsigned i = 0; i < r.size(); ++i) out[i] = r[i];
    // Bits past the last policy must be clear: evaluators may count set bits of whole words.
    if (t.policyCount % 64 != 0 && (out.back() >> (t.policyCount % 64)) != 0) fail(std::string(name) + " mask has bits past the last policy");
    return out;
  }

  void decodeFeature(wire::Feature::Reader r, unsigned index, const table::DecisionTable& t, table::Feature& f) {
    std::string name = "feature " + std::to_string(index);
    auto kind = static_cast<uint16_t>(r.getKind());
    if (kind > static_cast<uint16_t>(table::FeatureKind::Derived)) fail(name + " has unknown kind " + std::to_string(kind));
    f.kind = static_cast<table::FeatureKind>(kind);
    for (auto p : r.getPath()) f.path.push_back(str(p));
    f.atomText = str(r.getAtomText());
    if (f.kind == table::FeatureKind::Context && f.path.empty()) fail(name + ": a context feature needs a path");
    if (f.kind == table::FeatureKind::Derived) {
      if (f.atomText.empty()) fail(name + ": a derived feature needs its atom");
      f.atom = cedar::parseExpression(f.atomText, where_ + ": " + name + " atom");
    }
    const uint32_t rowCount = r.getRowCount();
    auto rows = r.getRows();
    if (uint64_t{rows.size()} != uint64_t{rowCount} * 3 * t.words)
      fail(name + " has " + std::to_string(rows.size()) + " row words, expected " + std::to_string(rowCount) + " rows of 3 x " +
           std::to_string(t.words) + " words");
    f.rows.resize(rows.size());
    for (unsigned i = 0; i < rows.size(); ++i) f.rows[i] = rows[i];
    auto checkRow = [&](uint32_t row, const std::string& what) {
      if (row >= rowCount) fail(name + ": " + what + " names row " + std::to_string(row) + " of " + std::to_string(rowCount));
      return row;
    };
    auto keys = r.getValueKeys();
    auto valueRows = r.getValueRows();
    if (keys.size() != valueRows.size()) fail(name + ": value dictionary keys and rows differ in length");
    for (unsigned i = 0; i < keys.size(); ++i) {
      std::string key = str(keys[i]);
      if (!f.valueRows.emplace(key, checkRow(valueRows[i], "value " + key)).second) fail(name + ": value " + key + " is listed twice");
    }
    f.otherRow = r.getOtherRow();
    f.errorRow = r.getErrorRow();
    f.unknownAnyTypeRow = r.getUnknownAnyTypeRow();
    if (f.kind == table::FeatureKind::Context) {
      checkRow(f.otherRow, "the other-value row");
      checkRow(f.errorRow, "the error row");
    }
    if (f.kind == table::FeatureKind::Derived && rowCount < 3) fail(name + ": a derived feature needs rows true, false and error");
    auto entityRows = r.getEntityRows();
    if (isEntityKind(f.kind) && entityRows.size() != t.entities.size())
      fail(name + " has rows for " + std::to_string(entityRows.size()) + " entities, expected " + std::to_string(t.entities.size()));
    f.entityRows.reserve(entityRows.size());
    for (unsigned i = 0; i < entityRows.size(); ++i) f.entityRows.push_back(checkRow(entityRows[i], "entity " + std::to_string(i)));
    auto types = r.getUnknownTypes();
    auto typeRows = r.getUnknownTypeRows();
    if (types.size() != typeRows.size()) fail(name + ": unknown-type keys and rows differ in length");
    for (unsigned i = 0; i < types.size(); ++i) {
      std::string type = str(types[i]);
      if (!f.unknownTypeRows.emplace(type, checkRow(typeRows[i], "type " + type)).second) fail(name + ": type " + type + " is listed twice");
    }
    if (isEntityKind(f.kind)) checkRow(f.unknownAnyTypeRow, "the unknown-entity row");
  }

  const std::string& where_;
  const cedar::EntityStore& store_;
};

}  // namespace

kj::Array<capnp::word> alignedWords(std::string_view bytes, const std::string& where) {
  if (bytes.empty()) throw InputError(where, {}, "empty bundle");
  if (bytes.size() > kMaxBundleBytes) throw InputError(where, {}, "bundle larger than " + std::to_string(kMaxBundleBytes) + " bytes");
  if (bytes.size() % sizeof(capnp::word) != 0)
    throw InputError(where, {}, "not a govmesh bundle: " + std::to_string(bytes.size()) + " bytes is not a whole number of 8-byte words");
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

capnp::ReaderOptions readerOptions(size_t words) {
  capnp::ReaderOptions o;
  o.traversalLimitInWords = 4 * words + 1024;
  o.nestingLimit = 16;  // the schema nests 4 deep
  return o;
}

void checkFormatVersion(uint64_t version, const std::string& where) {
  if (version > kBundleFormatVersion)
    throw InputError(where, {}, "bundle format " + std::to_string(version) + " is newer than this govmesh understands (" +
                                    std::to_string(kBundleFormatVersion) + ")");
  if (version != kBundleFormatVersion)
    throw InputError(where, {}, "bundle format " + std::to_string(version) + " is not supported (this govmesh reads format " +
                                    std::to_string(kBundleFormatVersion) + ")");
}

Bundle decodeBundleContent(std::string_view content, const std::string& where) {
  Bundle b;
  try {
    kj::Array<capnp::word> words = alignedWords(content, where);
    capnp::FlatArrayMessageReader reader(words, readerOptions(words.size()));
    auto r = reader.getRoot<wire::Bundle>();
    b.formatVersion = r.getFormatVersion();
    checkFormatVersion(b.formatVersion, where);
    b.revision = r.getRevision();
    b.issuedAtMs = r.getIssuedAtMs();
    b.freshUntilMs = r.getFreshUntilMs();
    b.policyText = str(r.getPolicyText());
    b.policyFileName = str(r.getPolicyFileName());
    for (auto l : r.getLinks()) {
      cedar::TemplateLink link{str(l.getId()), str(l.getTemplateId()), std::nullopt, std::nullopt};
      if (l.getHasPrincipal()) link.principal = getUid(l.getPrincipal());
      if (l.getHasResource()) link.resource = getUid(l.getResource());
      b.links.push_back(std::move(link));
    }
    std::unordered_set<std::string> keyIds;
    for (auto k : r.getKeys()) {
      WorkloadKey key;
      key.keyId = str(k.getKeyId());
      if (key.keyId.empty() || !keyIds.insert(key.keyId).second) throw InputError(where, {}, "workload key id `" + key.keyId + "` is empty or repeated");
      auto pub = k.getPublicKey();
      if (pub.size() != key.publicKey.size()) throw InputError(where, {}, "workload key `" + key.keyId + "` is not 32 bytes");
      std::memcpy(key.publicKey.data(), pub.begin(), pub.size());
      key.principal = getUid(k.getPrincipal());
      if (k.getHasNotAfter()) key.notAfterMs = k.getNotAfterMs();
      b.keys.push_back(std::move(key));
    }
    std::string inside = where + ": ";
    if (r.getHasSchema()) {
      b.schemaText = str(r.getSchemaText());
      b.schemaIsJson = r.getSchemaIsJson();
      std::string name = inside + "schema";
      b.schema = std::make_shared<const cedar::Schema>(b.schemaIsJson ? cedar::parseSchemaJson(*b.schemaText, name)
                                                                      : cedar::parseSchemaText(*b.schemaText, name));
    }
    // Without a schema: the stored JSON is explicit, and schema action entities are in it.
    auto store = std::make_shared<const cedar::EntityStore>(cedar::parseEntitiesJson(str(r.getEntitiesJson()), inside + "entities", nullptr));
    b.store = store;
    cedar::PolicySet ps = cedar::parsePolicies(b.policyText, inside + b.policyFileName);
    std::vector<cedar::Policy> policies = ps.policies;
    ps.links = b.links;
    if (auto err = ps.linkAll(policies)) throw InputError(inside + b.policyFileName, {}, *err);
    TableDecoder(where, *store).decode(r.getTable(), std::move(policies), b.table);
    b.table.store = store.get();
  } catch (const kj::Exception& e) {
    throw InputError(where, {}, "malformed bundle content: " + std::string(e.getDescription().cStr()));
  }
  return b;
}

}  // namespace govmesh::engine
