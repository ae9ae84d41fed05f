// `govmesh demo`: governance requests from autonomous workloads, decided against example
// Cedar policies, each printed with its decision, the policies that determined it and any
// policy that errored. The data is built in so the demo runs on a fresh checkout.
#include <iostream>
#include <nlohmann/json.hpp>

#include "compiler/entities.h"
#include "compiler/evaluator.h"
#include "compiler/parser.h"
#include "server/cli/commands.h"

namespace govmesh::cli {

using namespace govmesh::cedar;

namespace {

constexpr const char* kPolicies = R"cedar(
@id("sre-may-operate-prod")
permit(principal in Team::"sre", action in [Action::"deploy", Action::"scale"], resource in Cluster::"prod")
when { context.zone == "eu" && principal.clearance >= 3 };

@id("anyone-may-read")
permit(principal, action == Action::"read", resource);

@id("agents-scale-with-budget")
permit(principal is Workload, action == Action::"scale", resource)
when { context.cost.lessThan(decimal("12.50")) && context.src.isInRange(ip("10.0.0.0/8")) };

@id("deny-degraded-trust")
forbid(principal, action, resource in Cluster::"prod")
when { context.trust == "degraded" };

@id("deny-delete-unless-owner")
forbid(principal, action == Action::"delete", resource)
unless { resource.owner == principal };

@id("freeze-after-deadline")
forbid(principal, action == Action::"deploy", resource)
when { context.now >= datetime("2027-01-01T00:00:00Z") };
)cedar";

constexpr const char* kEntities = R"json([
  {"uid": {"type": "Team", "id": "sre"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Team", "id": "data"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Cluster", "id": "prod"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Cluster", "id": "dev"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Workload", "id": "deploy-bot"}, "attrs": {"clearance": 4}, "parents": [{"type": "Team", "id": "sre"}]},
  {"uid": {"type": "Workload", "id": "etl-agent"}, "attrs": {"clearance": 2}, "parents": [{"type": "Team", "id": "data"}]},
  {"uid": {"type": "Node", "id": "prod-eu-1"}, "attrs": {"owner": {"__entity": {"type": "Workload", "id": "deploy-bot"}}},
   "parents": [{"type": "Cluster", "id": "prod"}]},
  {"uid": {"type": "Node", "id": "dev-1"}, "attrs": {}, "parents": [{"type": "Cluster", "id": "dev"}]}
])json";

struct DemoRequest {
  const char* story;
  const char* principal;
  const char* action;
  const char* resource;
  const char* context;
};

constexpr DemoRequest kRequests[] = {
    {"SRE bot deploys to prod in the EU", "Workload::\"deploy-bot\"", "Action::\"deploy\"", "Node::\"prod-eu-1\"",
     R"({"zone": "eu", "trust": "ok", "now": {"__extn": {"fn": "datetime", "arg": "2026-11-26T10:00:00Z"}}})"},
    {"same deploy, but the node reports degraded trust", "Workload::\"deploy-bot\"", "Action::\"deploy\"", "Node::\"prod-eu-1\"",
     R"({"zone": "eu", "trust": "degraded", "now": {"__extn": {"fn": "datetime", "arg": "2026-11-26T10:00:00Z"}}})"},
    {"same deploy, after the change freeze", "Workload::\"deploy-bot\"", "Action::\"deploy\"", "Node::\"prod-eu-1\"",
     R"({"zone": "eu", "trust": "ok", "now": {"__extn": {"fn": "datetime", "arg": "2027-02-01T00:00:00Z"}}})"},
    {"ETL agent (clearance 2) tries to deploy to prod", "Workload::\"etl-agent\"", "Action::\"deploy\"", "Node::\"prod-eu-1\"",
     R"({"zone": "eu", "trust": "ok", "now": {"__extn": {"fn": "datetime", "arg": "2026-11-26T10:00:00Z"}}})"},
    {"ETL agent scales dev within budget from 10.1.2.3", "Workload::\"etl-agent\"", "Action::\"scale\"", "Node::\"dev-1\"",
     R"({"cost": {"__extn": {"fn": "decimal", "arg": "7.25"}}, "src": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}}})"},
    {"ETL agent scales dev over budget", "Workload::\"etl-agent\"", "Action::\"scale\"", "Node::\"dev-1\"",
     R"({"cost": {"__extn": {"fn": "decimal", "arg": "99.00"}}, "src": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}}})"},
    {"ETL agent scales dev, context missing the cost (policy errors, fails closed)", "Workload::\"etl-agent\"", "Action::\"scale\"",
     "Node::\"dev-1\"", R"({"src": {"__extn": {"fn": "ip", "arg": "10.1.2.3"}}})"},
    {"ETL agent reads a prod node", "Workload::\"etl-agent\"", "Action::\"read\"", "Node::\"prod-eu-1\"", R"({"trust": "ok"})"},
    {"owner deletes its own node", "Workload::\"deploy-bot\"", "Action::\"delete\"", "Node::\"prod-eu-1\"", R"({"trust": "ok"})"},
    {"ETL agent deletes a node it does not own", "Workload::\"etl-agent\"", "Action::\"delete\"", "Node::\"prod-eu-1\"",
     R"({"trust": "ok"})"},
};

// The policy's @id annotation when it has one: easier to read than "policy3".
std::string policyLabel(const std::vector<Policy>& policies, const std::string& id) {
  for (const Policy& p : policies)
    if (p.id == id)
      for (const Annotation& a : p.annotations)
        if (a.key == "id" && a.value) return id + " (" + *a.value + ")";
  return id;
}

int runDemo() {
  PolicySet ps = parsePolicies(kPolicies, "<demo policies>");
  EntityStore store = parseEntitiesJson(kEntities, "<demo entities>", nullptr);
  std::cout << "govmesh demo: " << ps.policies.size() << " Cedar policies, " << store.size() << " entities, "
            << std::size(kRequests) << " requests (reference evaluator)\n\n";
  int allowed = 0;
  for (const DemoRequest& d : kRequests) {
    Request req;
    req.principal = parseEntityUid(d.principal, "principal");
    req.action = parseEntityUid(d.action, "action");
    req.resource = parseEntityUid(d.resource, "resource");
    req.context = contextFromJson(parseJsonText(d.context, "context"), nullptr, req.action, "context");
    Response r = authorize(ps.policies, req, store);
    allowed += r.decision == Decision::Allow;
    std::cout << (r.decision == Decision::Allow ? "ALLOW" : "DENY ") << "  " << d.story << "\n"
              << "       " << d.principal << " " << d.action << " " << d.resource << "\n";
    for (const std::string& id : r.reasons) std::cout << "       because: " << policyLabel(ps.policies, id) << "\n";
    if (r.reasons.empty()) std::cout << "       because: no policy permits it (default deny)\n";
    for (const PolicyError& e : r.errors) std::cout << "       error in " << policyLabel(ps.policies, e.policyId) << ": " << e.message << "\n";
  }
  std::cout << "\n" << allowed << " allowed, " << (std::size(kRequests) - allowed) << " denied\n";
  return 0;
}

}  // namespace

void addDemo(CLI::App& app, int& exitCode) {
  CLI::App* cmd = app.add_subcommand("demo", "Authorize example governance requests against example Cedar policies");
  cmd->callback([&exitCode] { exitCode = runDemo(); });
}

}  // namespace govmesh::cli
