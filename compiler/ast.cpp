// The non-inline parts of the AST: template detection and template linking (ast.h).
#include "compiler/ast.h"

#include <unordered_map>
#include <unordered_set>

namespace govmesh::cedar {

namespace {

bool usesSlot(const ScopeConstraint& c) {
  return c.op != ScopeConstraint::Op::Any && c.op != ScopeConstraint::Op::Is && c.target.isSlot;
}

// Fills a slot from a link's value; Cedar's linker refuses missing values and values for
// slots the template does not have.
std::optional<std::string> fill(ScopeConstraint& c, const std::optional<EntityUid>& value, const char* slotName,
                                const TemplateLink& link) {
  if (usesSlot(c)) {
    if (!value)
      return "link `" + link.id + "` of template `" + link.templateId + "` gives no value for `" + slotName + "`";
    c.target.isSlot = false;
    c.target.uid = *value;
  } else if (value) {
    return "link `" + link.id + "` gives a value for `" + slotName + "`, which template `" + link.templateId +
           "` does not have";
  }
  return std::nullopt;
}

}  // namespace

bool Policy::isTemplate() const { return usesSlot(principal) || usesSlot(resource); }

std::optional<std::string> PolicySet::linkAll(std::vector<Policy>& out) const {
  std::unordered_map<std::string, const Policy*> byId;
  for (const Policy& t : templates) byId.emplace(t.id, &t);
  // A linked policy's id must be new: Cedar refuses ids already taken by a policy, a template
  // or an earlier link.
  std::unordered_set<std::string> taken;
  for (const Policy& p : policies) taken.insert(p.id);
  for (const Policy& t : templates) taken.insert(t.id);
  for (const TemplateLink& link : links) {
    auto it = byId.find(link.templateId);
    if (it == byId.end()) return "link `" + link.id + "` names unknown template `" + link.templateId + "`";
    if (!taken.insert(link.id).second) return "link id `" + link.id + "` is already used by another policy";
    Policy p = *it->second;
    p.id = link.id;
    if (auto err = fill(p.principal, link.principal, "?principal", link)) return err;
    if (auto err = fill(p.resource, link.resource, "?resource", link)) return err;
    out.push_back(std::move(p));
  }
  return std::nullopt;
}

}  // namespace govmesh::cedar
