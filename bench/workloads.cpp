#include "bench/workloads.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

namespace govmesh::bench {

using nlohmann::json;

namespace {
const char* const kActions[] = {"deploy", "scale", "read", "write", "invoke", "delete"};
const char* const kZones[] = {"eu", "us", "ap", "sov-de", "edge"};
constexpr int kNodes = 400;

json uid(const std::string& type, const std::string& id) { return json{{"type", type}, {"id", id}}; }
}  // namespace

Workload makeGovWorkload(int policies, int requests, uint64_t seed, int workloads) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  const int teams = std::max(50, policies / 20);
  const int clusters = std::max(40, policies / 25);
  Workload w;
  for (int i = 0; i < policies; ++i) {
    std::string team = "Team::\"t" + std::to_string(pick(teams)) + "\"";
    std::string cluster = "Cluster::\"c" + std::to_string(pick(clusters)) + "\"";
    if (i % 10 == 9) {  // 10 % forbids
      w.policies += "forbid(principal in " + team + ", action, resource in " + cluster +
                    ") when { context.trust == \"degraded\" };\n";
    } else {
      w.policies += "permit(principal in " + team + ", action == Action::\"" + kActions[pick(6)] + "\", resource in " + cluster +
                    ") when { context.zone == \"" + kZones[pick(5)] + "\" && principal.clearance >= " + std::to_string(1 + pick(4)) +
                    " };\n";
    }
  }
  json ents = json::array();
  for (int t = 0; t < teams; ++t) ents.push_back({{"uid", uid("Team", "t" + std::to_string(t))}, {"attrs", json::object()}, {"parents", json::array()}});
  for (int c = 0; c < clusters; ++c)
    ents.push_back({{"uid", uid("Cluster", "c" + std::to_string(c))}, {"attrs", json::object()}, {"parents", json::array()}});
  for (int i = 0; i < workloads; ++i) {
    int a = pick(teams), b = pick(teams);
    ents.push_back({{"uid", uid("Workload", "w" + std::to_string(i))},
                    {"attrs", {{"clearance", 1 + pick(5)}}},
                    {"parents", json::array({uid("Team", "t" + std::to_string(a)), uid("Team", "t" + std::to_string(b))})}});
  }
  for (int n = 0; n < kNodes; ++n)
    ents.push_back({{"uid", uid("Node", "n" + std::to_string(n))},
                    {"attrs", json::object()},
                    {"parents", json::array({uid("Cluster", "c" + std::to_string(pick(clusters)))})}});
  w.entities = ents.dump();
  for (int r = 0; r < requests; ++r) {
    json req = {{"principal", uid("Workload", "w" + std::to_string(pick(workloads)))},
                {"action", uid("Action", kActions[pick(6)])},
                {"resource", uid("Node", "n" + std::to_string(pick(kNodes)))},
                {"context", {{"zone", kZones[pick(5)]}, {"trust", pick(10) == 0 ? "degraded" : "ok"}}}};
    w.requests.push_back(req.dump());
  }
  return w;
}

}  // namespace govmesh::bench
