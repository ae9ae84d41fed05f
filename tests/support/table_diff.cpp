// Helpers of the decision-table differential test and fuzzer (see table_diff.h).
#include "tests/support/table_diff.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "compiler/errors.h"
#include "compiler/parser.h"
#include "tests/support/cedar_gen_internal.h"

namespace govmesh::tablediff {

using namespace govmesh::cedar;

Request parseRequest(const std::string& text, const Schema* schema) {
  return requestFromJson(parseJsonText(text, "request"), schema, "request");
}

std::unique_ptr<LoadedTest> loadGenerated(const gen::GeneratedTest& g) {
  auto t = std::make_unique<LoadedTest>();
  t->policySet = parsePolicies(g.policiesText, "generated.cedar");
  t->policies = t->policySet.policies;
  if (auto err = t->policySet.linkAll(t->policies)) throw InputError("generated.cedar", {}, *err);
  if (!g.schemaText.empty()) t->schema = parseSchemaText(g.schemaText, "generated.cedarschema");
  const Schema* schema = t->schema ? &*t->schema : nullptr;
  t->store = parseEntitiesJson(g.entitiesJson, "generated.entities.json", schema);
  for (const std::string& text : g.requestsJson) {
    try {
      t->requests.push_back(parseRequest(text, schema));
      t->requestJson.push_back(text);
    } catch (const InputError&) {
      ++t->skippedRequests;
    }
  }
  return t;
}

size_t templatize(LoadedTest& t, uint64_t seed, double fraction) {
  gen::Rng rng(seed);
  // A sorted list of the store's uids, so that the choice does not depend on hash order.
  std::vector<EntityUid> uids;
  for (const auto& [uid, e] : t.store.all()) uids.push_back(uid);
  std::sort(uids.begin(), uids.end());
  auto hasEntity = [](const ScopeConstraint& c) {
    return !c.target.isSlot &&
           (c.op == ScopeConstraint::Op::Eq || c.op == ScopeConstraint::Op::In || c.op == ScopeConstraint::Op::IsIn);
  };
  auto pickTarget = [&](const EntityUid& original) -> EntityUid {
    switch (rng.weighted({4, 4, 2})) {
      case 0: return original;
      case 1:
        if (!uids.empty()) return uids[rng.below(uids.size())];
        return original;
      default: return EntityUid{original.type, "absent link target"};
    }
  };
  PolicySet& ps = t.policySet;
  std::vector<Policy> kept;
  size_t links = 0;
  for (const Policy& p : ps.policies) {
    bool canP = hasEntity(p.principal), canR = hasEntity(p.resource);
    if ((!canP && !canR) || !rng.chance(fraction)) {
      kept.push_back(p);
      continue;
    }
    bool slotP = canP && (!canR || rng.chance(0.6));
    bool slotR = canR && (!slotP || rng.chance(0.5));
    Policy tmpl = p;
    if (slotP) tmpl.principal.target = EntityOrSlot{true, SlotId::Principal, {}};
    if (slotR) tmpl.resource.target = EntityOrSlot{true, SlotId::Resource, {}};
    ps.templates.push_back(tmpl);
    int n = rng.range(1, 3);
    for (int k = 0; k < n; ++k) {
      TemplateLink link;
      link.id = "link" + std::to_string(links++);
      link.templateId = tmpl.id;
      if (slotP) link.principal = pickTarget(p.principal.target.uid);
      if (slotR) link.resource = pickTarget(p.resource.target.uid);
      ps.links.push_back(link);
    }
  }
  ps.policies = kept;
  t.policies = kept;
  if (auto err = ps.linkAll(t.policies)) throw InputError("templatize", {}, *err);
  return links;
}

Answer canonical(const Response& r) {
  Answer a;
  a.decision = r.decision;
  a.reasons = r.reasons;
  for (const PolicyError& e : r.errors) a.errors.push_back(e.policyId);
  std::sort(a.reasons.begin(), a.reasons.end());
  std::sort(a.errors.begin(), a.errors.end());
  return a;
}

std::string describe(const Answer& a) {
  auto list = [](const std::vector<std::string>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + ids[i];
    return s + "]";
  };
  return std::string(a.decision == Decision::Allow ? "allow" : "deny") + " reasons=" + list(a.reasons) +
         " errors=" + list(a.errors);
}

bool sameErrorMessages(const Response& a, const Response& b) {
  auto sorted = [](const Response& r) {
    std::vector<std::pair<std::string, std::string>> v;
    for (const PolicyError& e : r.errors) v.emplace_back(e.policyId, e.message);
    std::sort(v.begin(), v.end());
    return v;
  };
  return sorted(a) == sorted(b);
}

}  // namespace govmesh::tablediff
