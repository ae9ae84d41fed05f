#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "compiler/archive.h"
#include "compiler/entities.h"
#include "compiler/evaluator.h"
#include "compiler/parser.h"
#include "compiler/schema.h"
#include "server/cli/commands.h"

namespace govmesh::cli {

using namespace govmesh::cedar;

namespace {

struct AuthorizeArgs {
  std::string policies, entities, schema, principal, action, resource, context;
};

int runAuthorize(const AuthorizeArgs& a) {
  PolicySet ps = parsePolicies(readFile(a.policies), a.policies);
  std::vector<Policy> policies = ps.policies;
  if (auto e = ps.linkAll(policies)) throw InputError(a.policies, {}, *e);
  std::optional<Schema> schema;
  if (!a.schema.empty()) schema = parseSchemaFile(a.schema);
  const Schema* sp = schema ? &*schema : nullptr;
  EntityStore store = a.entities.empty() ? EntityStore{} : parseEntitiesJson(readFile(a.entities), a.entities, sp);
  Request req;
  req.principal = parseEntityUid(a.principal, "--principal");
  req.action = parseEntityUid(a.action, "--action");
  req.resource = parseEntityUid(a.resource, "--resource");
  if (sp) {
    // With a schema, the request is validated as Cedar does before it is evaluated.
    if (auto e = validateRequestTypes(*sp, req.principal, req.action, req.resource)) throw InputError("request", {}, *e);
  }
  if (!a.context.empty()) {
    // Inline JSON when it looks like an object, else a file holding it.
    bool inlineJson = a.context.find_first_not_of(" \t\n") != std::string::npos && a.context[a.context.find_first_not_of(" \t\n")] == '{';
    std::string name = inlineJson ? "--context" : a.context;
    nlohmann::json j = parseJsonText(inlineJson ? a.context : readFile(a.context), name);
    req.context = contextFromJson(j, sp, req.action, name);
  }
  Response r = authorize(policies, req, store);
  std::cout << (r.decision == Decision::Allow ? "ALLOW" : "DENY") << "\n";
  if (!r.reasons.empty()) {
    std::cout << "\nnote: this decision was due to the following policies:\n";
    for (const std::string& id : r.reasons) std::cout << "  " << id << "\n";
  }
  if (!r.errors.empty()) {
    std::cout << "\nerrors while evaluating policies (those policies were skipped):\n";
    for (const PolicyError& e : r.errors) std::cout << "  " << e.policyId << ": " << e.message << "\n";
  }
  // Like `cedar authorize`: 0 for allow, 2 for deny (1 is left for bad input).
  return r.decision == Decision::Allow ? 0 : 2;
}

}  // namespace

void addAuthorize(CLI::App& app, int& exitCode) {
  auto args = std::make_shared<AuthorizeArgs>();
  CLI::App* cmd = app.add_subcommand("authorize", "Authorize one request against Cedar policies (like `cedar authorize`)");
  cmd->add_option("--policies,-p", args->policies, "Cedar policy file")->required();
  cmd->add_option("--entities", args->entities, "Entities JSON file");
  cmd->add_option("--schema,-s", args->schema, "Schema (.cedarschema text, or JSON when the name ends in .json)");
  cmd->add_option("--principal,-l", args->principal, "Principal, e.g. 'User::\"alice\"'")->required();
  cmd->add_option("--action,-a", args->action, "Action, e.g. 'Action::\"view\"'")->required();
  cmd->add_option("--resource,-r", args->resource, "Resource, e.g. 'Photo::\"x\"'")->required();
  cmd->add_option("--context,-c", args->context, "Context: inline JSON object, or a file holding one");
  cmd->callback([args, &exitCode] { exitCode = runAuthorize(*args); });
}

}  // namespace govmesh::cli
