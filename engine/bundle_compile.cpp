// compileBundle: policy, entity and schema sources -> an in-memory Bundle with its decision
// table compiled. Kept apart from the codec so that reading bundles does not link the compiler.
#include <unordered_set>

#include "compiler/errors.h"
#include "compiler/parser.h"
#include "engine/bundle.h"

namespace govmesh::engine {

using cedar::InputError;

Bundle compileBundle(const BundleSources& s, uint64_t revision, int64_t issuedAtMs, int64_t freshUntilMs) {
  Bundle b;
  b.revision = revision;
  b.issuedAtMs = issuedAtMs;
  b.freshUntilMs = freshUntilMs;
  b.policyText = s.policyText;
  b.policyFileName = s.policyFileName;
  b.links = s.links;
  b.schemaText = s.schemaText;
  b.schemaIsJson = s.schemaIsJson;
  std::unordered_set<std::string> keyIds;
  for (const WorkloadKey& k : s.keys)
    if (k.keyId.empty() || !keyIds.insert(k.keyId).second) throw InputError("keys", {}, "workload key id `" + k.keyId + "` is empty or repeated");
  b.keys = s.keys;
  if (s.schemaText)
    b.schema = std::make_shared<const cedar::Schema>(s.schemaIsJson ? cedar::parseSchemaJson(*s.schemaText, s.schemaFileName)
                                                                    : cedar::parseSchemaText(*s.schemaText, s.schemaFileName));
  // Parsed even when empty: with a schema, its action entities join the store.
  auto store = std::make_shared<const cedar::EntityStore>(
      cedar::parseEntitiesJson(s.entitiesJson.empty() ? std::string_view("[]") : std::string_view(s.entitiesJson), s.entitiesFileName,
                               b.schema.get()));
  b.store = store;
  cedar::PolicySet ps = cedar::parsePolicies(s.policyText, s.policyFileName);
  std::vector<cedar::Policy> policies = ps.policies;
  ps.links = s.links;
  if (auto err = ps.linkAll(policies)) throw InputError(s.policyFileName, {}, *err);
  b.table = table::compileTable(std::move(policies), *store);
  return b;
}

}  // namespace govmesh::engine
