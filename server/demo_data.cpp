#include "compiler/archive.h"
#include "server/demo_data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "compiler/errors.h"
#include "compiler/parser.h"

namespace govmesh::server {

using nlohmann::json;

namespace {

// Policies are written for people first: each says in its @id what it is for. Conditions that
// read a static attribute of the principal (zone, clearance, trust) compile into the principal's
// table rows; those on the context (time, attestation, source address) into context or derived
// features, so the demo exercises every feature kind of the decision table.
constexpr const char* kPolicies = R"cedar(// govmesh demo: governance of autonomous workloads (deploys and data access).

// Deploys and rollbacks: a workload changes services of its own trust zone that its team owns.
@id("deploy-own-zone")
permit(principal is Workload, action in [Action::"deploy", Action::"rollback"], resource is Service)
when { principal.zone == resource.zone && principal in resource.owner };

// Critical services are deployed only by workloads cleared at level 4.
@id("critical-needs-clearance-4")
forbid(principal, action == Action::"deploy", resource is Service)
when { resource.tier == "critical" && principal.clearance < 4 };

// Prod deploys happen inside the 08:00-18:00 UTC change window; rollbacks any time.
@id("prod-change-window")
forbid(principal, action == Action::"deploy", resource is Service)
when { resource.zone == "prod" }
unless { context.time.toTime() >= duration("8h") && context.time.toTime() < duration("18h") };

// No deploys at all during the year-end freeze.
@id("year-end-freeze")
forbid(principal, action == Action::"deploy", resource)
when { context.time >= datetime("2026-12-20T00:00:00Z") && context.time < datetime("2027-01-04T00:00:00Z") };

// The platform team's workloads scale services of their zone up to the service's limit.
@id("autoscale-within-limit")
permit(principal in Team::"platform", action == Action::"scale", resource is Service)
when { principal.zone == resource.zone && context.replicas <= resource.maxReplicas };

// Data is read within the trust zone by workloads cleared for its classification.
@id("read-by-clearance")
permit(principal is Workload, action == Action::"read", resource is Dataset)
when { principal.zone == resource.zone && principal.clearance >= resource.classification };

// Data is written only by its steward team's workloads.
@id("write-by-steward")
permit(principal is Workload, action == Action::"write", resource is Dataset)
when { principal in resource.steward && principal.clearance >= resource.classification };

// Restricted data (classification 4) needs a hardware-backed attestation.
@id("restricted-needs-hardware-attestation")
forbid(principal, action in [Action::"read", Action::"write"], resource is Dataset)
when { resource.classification >= 4 }
unless { context.attestation == "hardware" };

// Data is reached from the mesh network only.
@id("data-only-from-mesh")
forbid(principal, action in [Action::"read", Action::"write"], resource is Dataset)
unless { context.src.isInRange(ip("10.0.0.0/8")) };

// A workload whose trust has degraded (revoked attestation, failed scan) may do nothing.
@id("deny-degraded-workload")
forbid(principal, action, resource)
when { principal.trust == "degraded" };

// Nor may any request whose own attestation reports degraded trust.
@id("deny-degraded-attestation")
forbid(principal, action, resource)
when { context.attestation == "degraded" };
)cedar";

constexpr const char* kSchema = R"schema(// govmesh demo schema: the governance world's entities and actions.
entity Team;
entity Workload in [Team] { zone: String, clearance: Long, trust: String };
entity Service in [Team] { owner: Team, zone: String, tier: String, maxReplicas: Long };
entity Dataset in [Team] { steward: Team, zone: String, classification: Long };

action deploy, rollback appliesTo {
  principal: [Workload], resource: [Service],
  context: { time: datetime, attestation: String }
};
action scale appliesTo {
  principal: [Workload], resource: [Service],
  context: { replicas: Long, attestation: String }
};
action read, write appliesTo {
  principal: [Workload], resource: [Dataset],
  context: { src: ipaddr, attestation: String }
};
)schema";

json uidJson(const char* type, const char* id) { return json{{"type", type}, {"id", id}}; }
json ref(const char* type, const char* id) { return json{{"__entity", uidJson(type, id)}}; }

json workloadEntity(const char* id, const char* team, const char* zone, int clearance, const char* trust) {
  return json{{"uid", uidJson("Workload", id)},
              {"attrs", {{"zone", zone}, {"clearance", clearance}, {"trust", trust}}},
              {"parents", json::array({uidJson("Team", team)})}};
}
json serviceEntity(const char* id, const char* team, const char* zone, const char* tier, int maxReplicas) {
  return json{{"uid", uidJson("Service", id)},
              {"attrs", {{"owner", ref("Team", team)}, {"zone", zone}, {"tier", tier}, {"maxReplicas", maxReplicas}}},
              {"parents", json::array({uidJson("Team", team)})}};
}
json datasetEntity(const char* id, const char* team, const char* zone, int classification) {
  return json{{"uid", uidJson("Dataset", id)},
              {"attrs", {{"steward", ref("Team", team)}, {"zone", zone}, {"classification", classification}}},
              {"parents", json::array({uidJson("Team", team)})}};
}

std::string demoEntitiesJson() {
  json e = json::array();
  for (const char* team : {"platform", "data-eng", "ml"})
    e.push_back(json{{"uid", uidJson("Team", team)}, {"attrs", json::object()}, {"parents", json::array()}});
  e.push_back(workloadEntity("ci-bot", "platform", "prod", 3, "verified"));
  e.push_back(workloadEntity("staging-runner", "platform", "staging", 2, "verified"));
  e.push_back(workloadEntity("autoscaler", "platform", "prod", 1, "verified"));
  e.push_back(workloadEntity("etl-agent", "data-eng", "prod", 4, "verified"));
  e.push_back(workloadEntity("ml-trainer", "ml", "prod", 2, "verified"));
  e.push_back(workloadEntity("legacy-cron", "platform", "prod", 3, "degraded"));
  e.push_back(serviceEntity("checkout-api", "platform", "prod", "standard", 20));
  e.push_back(serviceEntity("payments-api", "platform", "prod", "critical", 12));
  e.push_back(serviceEntity("web-staging", "platform", "staging", "standard", 4));
  e.push_back(datasetEntity("orders", "data-eng", "prod", 3));
  e.push_back(datasetEntity("payroll", "data-eng", "prod", 4));
  e.push_back(datasetEntity("clickstream", "ml", "prod", 2));
  return e.dump(2) + "\n";
}

// Context builders: extension values as explicit __extn escapes, so that the context reads the
// same with or without the schema.
// "$now" is the key directory's placeholder for the sender's clock (server/workload.h).
json deployCtx(const char* time, const char* attestation = "tpm") {
  json t = std::string_view(time) == "$now" ? json(time) : json{{"__extn", {{"fn", "datetime"}, {"arg", time}}}};
  return json{{"time", t}, {"attestation", attestation}};
}
json scaleCtx(int replicas) { return json{{"replicas", replicas}, {"attestation", "tpm"}}; }
json dataCtx(const char* src, const char* attestation = "tpm") {
  return json{{"src", {{"__extn", {{"fn", "ip"}, {"arg", src}}}}}, {"attestation", attestation}};
}

constexpr const char* kDeploy = "Action::\"deploy\"";
constexpr const char* kRollback = "Action::\"rollback\"";
constexpr const char* kScale = "Action::\"scale\"";
constexpr const char* kRead = "Action::\"read\"";
constexpr const char* kWrite = "Action::\"write\"";
constexpr const char* kCheckout = "Service::\"checkout-api\"";
constexpr const char* kPayments = "Service::\"payments-api\"";
constexpr const char* kWebStaging = "Service::\"web-staging\"";
constexpr const char* kOrders = "Dataset::\"orders\"";
constexpr const char* kPayroll = "Dataset::\"payroll\"";
constexpr const char* kClickstream = "Dataset::\"clickstream\"";

// The request mix. Weights make allows the common case (as in a healthy mesh) while every
// forbid and the default deny still show up in a few seconds of load.
std::vector<DemoWorkload> demoWorkloads() {
  auto w = [](const char* keyId, const char* id, std::vector<DemoRequestTemplate> reqs) {
    DemoWorkload d;
    d.keyId = keyId;
    d.principal = std::string("Workload::\"") + id + "\"";
    d.requests = std::move(reqs);
    return d;
  };
  return {
      w("ci-bot-k1", "ci-bot",
        {{kDeploy, kCheckout, deployCtx("2026-11-26T10:15:00Z"), 4, true, "deploys checkout-api in the change window", "deploy-own-zone"},
         {kDeploy, kCheckout, deployCtx("2026-11-26T22:40:00Z"), 1, false, "deploys prod at 22:40: prod-change-window", "prod-change-window"},
         {kRollback, kCheckout, deployCtx("2026-11-26T22:45:00Z"), 1, true, "rolls back at 22:45: rollbacks have no window", "deploy-own-zone"},
         {kDeploy, kPayments, deployCtx("2026-11-26T11:00:00Z"), 1, false, "deploys critical payments-api at clearance 3", "critical-needs-clearance-4"},
         {kDeploy, kCheckout, deployCtx("2026-12-23T10:00:00Z"), 1, false, "deploys during the year-end freeze", "year-end-freeze"},
         {kDeploy, kCheckout, deployCtx("$now"), 1, false, "deploys checkout-api now: allowed 08:00-18:00 UTC only", "",
          true},
         {kDeploy, kCheckout, deployCtx("2026-11-26T10:20:00Z", "degraded"), 1, false,
          "deploys with a degraded attestation", "deny-degraded-attestation"}}),
      w("staging-runner-k1", "staging-runner",
        {{kDeploy, kWebStaging, deployCtx("2026-11-26T23:10:00Z"), 3, true, "deploys staging at night: no window there", "deploy-own-zone"},
         {kDeploy, kCheckout, deployCtx("2026-11-26T10:00:00Z"), 1, false, "deploys to prod from staging: no permit", ""}}),
      w("autoscaler-k1", "autoscaler",
        {{kScale, kCheckout, scaleCtx(12), 4, true, "scales checkout-api to 12 replicas", "autoscale-within-limit"},
         {kScale, kCheckout, scaleCtx(60), 1, false, "scales checkout-api to 60, over its limit of 20: no permit", ""},
         {kScale, kPayments, scaleCtx(8), 1, true, "scales payments-api to 8 replicas", "autoscale-within-limit"}}),
      w("etl-agent-k1", "etl-agent",
        {{kRead, kOrders, dataCtx("10.4.2.17"), 4, true, "reads orders from the mesh", "read-by-clearance"},
         {kWrite, kOrders, dataCtx("10.4.2.17"), 2, true, "writes orders, as their steward", "write-by-steward"},
         {kRead, kPayroll, dataCtx("10.4.2.17", "hardware"), 1, true, "reads restricted payroll with hardware attestation", "read-by-clearance"},
         {kRead, kPayroll, dataCtx("10.4.2.17"), 1, false, "reads restricted payroll with a TPM attestation only", "restricted-needs-hardware-attestation"},
         {kRead, kOrders, dataCtx("203.0.113.7"), 1, false, "reads orders from outside the mesh", "data-only-from-mesh"}}),
      w("ml-trainer-k1", "ml-trainer",
        {{kRead, kClickstream, dataCtx("10.8.0.5"), 4, true, "reads clickstream (classification 2)", "read-by-clearance"},
         {kRead, kOrders, dataCtx("10.8.0.5"), 1, false, "reads orders (classification 3) at clearance 2: no permit", ""},
         {kWrite, kClickstream, dataCtx("10.8.0.5"), 1, true, "writes clickstream, as its steward", "write-by-steward"}}),
      w("legacy-cron-k1", "legacy-cron",
        {{kDeploy, kCheckout, deployCtx("2026-11-26T10:00:00Z"), 2, false, "deploys from a degraded workload", "deny-degraded-workload"},
         {kRead, kClickstream, dataCtx("10.1.1.1"), 1, false, "reads from a degraded workload", "deny-degraded-workload"}}),
  };
}


void makeDir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw cedar::InputError(dir.string(), {}, "cannot create directory: " + ec.message());
}

}  // namespace

engine::BundleSources demoBundleSources(const DemoWorld& world) {
  engine::BundleSources s;
  s.policyText = world.policyText;
  s.policyFileName = "demo/policies.cedar";
  s.entitiesJson = world.entitiesJson;
  s.entitiesFileName = "demo/entities.json";
  s.schemaText = world.schemaText;
  s.schemaFileName = "demo/governance.cedarschema";
  for (const DemoWorkload& w : world.workloads) {
    engine::WorkloadKey k;
    k.keyId = w.keyId;
    k.publicKey = w.key.publicKey;
    k.principal = cedar::parseEntityUid(w.principal, "demo workload " + w.keyId);
    s.keys.push_back(std::move(k));
  }
  return s;
}

DemoWorld makeDemoWorld(int64_t nowMs, int64_t ttlMs, uint64_t revision) {
  DemoWorld world;
  world.policyText = kPolicies;
  world.schemaText = kSchema;
  world.entitiesJson = demoEntitiesJson();
  world.authority = crypto::generateEd25519();
  world.node = crypto::generateEd25519();
  world.workloads = demoWorkloads();
  for (DemoWorkload& w : world.workloads) w.key = crypto::generateEd25519();
  world.bundle = engine::compileBundle(demoBundleSources(world), revision, nowMs, nowMs + ttlMs);
  world.bundleBytes = engine::signBundle(engine::writeUnsignedBundle(world.bundle), world.authority.privatePem,
                                         "demo bundle", "demo authority key");
  return world;
}

json demoWorkloadsJson(const DemoWorld& world, const std::string& bundlePath) {
  json doc = json::object();
  if (!bundlePath.empty()) {
    doc["bundle"] = bundlePath;
    doc["authority"] = "authority.pub";
  }
  json workloads = json::array();
  for (const DemoWorkload& w : world.workloads) {
    json reqs = json::array();
    for (const DemoRequestTemplate& r : w.requests)
      reqs.push_back(json{{"action", r.action}, {"resource", r.resource}, {"context", r.context}, {"weight", r.weight}});
    workloads.push_back(
        json{{"keyId", w.keyId}, {"principal", w.principal}, {"key", "keys/" + w.keyId + ".key"}, {"requests", reqs}});
  }
  doc["workloads"] = std::move(workloads);
  return doc;
}

DemoPaths writeDemoDirectory(const DemoWorld& world, const std::filesystem::path& dirIn) {
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(dirIn, ec);
  if (ec) throw cedar::InputError(dirIn.string(), {}, "cannot resolve path: " + ec.message());
  DemoPaths p;
  p.dir = dir;
  p.keysDir = dir / "keys";
  p.policyDir = dir / "policy";
  p.authorityPub = dir / "authority.pub";
  p.authorityKey = dir / "authority.key";
  p.workloadsJson = dir / "workloads.json";
  p.nodeKey = dir / "node.key";
  p.nodePub = dir / "node.pub";
  p.lineage = dir / "lineage";
  std::string bundleRel = "bundles/" + std::to_string(world.bundle.revision) + ".bundle";
  p.bundle = dir / bundleRel;
  for (const auto& d : {dir, p.keysDir, p.policyDir, dir / "bundles"}) makeDir(d);

  cedar::writeFileAtomic(p.authorityKey, world.authority.privatePem, 0600);
  cedar::writeFileAtomic(p.authorityPub, world.authority.publicPem, 0644);
  cedar::writeFileAtomic(p.nodeKey, world.node.privatePem, 0600);
  cedar::writeFileAtomic(p.nodePub, world.node.publicPem, 0644);
  json keys = json::array();
  for (const DemoWorkload& w : world.workloads) {
    cedar::writeFileAtomic(p.keysDir / (w.keyId + ".key"), w.key.privatePem, 0600);
    cedar::writeFileAtomic(p.keysDir / (w.keyId + ".pub"), w.key.publicPem, 0644);
    keys.push_back(json{{"keyId", w.keyId},
                        {"publicKey", crypto::toBase64(crypto::bytesView(w.key.publicKey))},
                        {"principal", w.principal}});
  }
  cedar::writeFileAtomic(p.bundle, world.bundleBytes, 0644);
  cedar::writeFileAtomic(p.policyDir / "policies.cedar", world.policyText, 0644);
  cedar::writeFileAtomic(p.policyDir / "governance.cedarschema", world.schemaText, 0644);
  cedar::writeFileAtomic(p.policyDir / "entities.json", world.entitiesJson, 0644);
  cedar::writeFileAtomic(p.policyDir / "workload-keys.json", keys.dump(2) + "\n", 0644);
  cedar::writeFileAtomic(p.workloadsJson, demoWorkloadsJson(world, bundleRel).dump(2) + "\n", 0644);
  return p;
}

}  // namespace govmesh::server
