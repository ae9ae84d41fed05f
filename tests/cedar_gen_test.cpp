// Unit tests of the seeded random Cedar test generator (tests/support/cedar_gen.h). Whether its
// output is valid Cedar is checked by the reference engine in the differential test; these
// tests pin down determinism, the options, the file layout and the breadth of the output.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/cedar_gen.h"

namespace {

using govmesh::gen::GeneratedTest;
using govmesh::gen::GenOptions;
using govmesh::gen::generateTest;
using nlohmann::json;

int countPolicies(const std::string& text) {
  int n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("permit (", 0) == 0 || line.rfind("forbid (", 0) == 0) ++n;
  return n;
}

std::string uidKey(const json& uid) { return uid.at("type").get<std::string>() + "::" + uid.at("id").get<std::string>(); }

/// Longest parent chain in an entity store (edges to absent entities count as one step), or -1
/// when the hierarchy has a cycle.
int hierarchyHeight(const json& entities) {
  std::map<std::string, std::vector<std::string>> parents;
  for (auto& e : entities)
    for (auto& p : e.at("parents")) parents[uidKey(e.at("uid"))].push_back(uidKey(p));
  std::map<std::string, int> height;  // -2 while on the DFS stack
  bool cycle = false;
  std::function<int(const std::string&)> visit = [&](const std::string& u) -> int {
    auto it = height.find(u);
    if (it != height.end()) {
      if (it->second == -2) cycle = true;
      return it->second < 0 ? 0 : it->second;
    }
    height[u] = -2;
    int h = 0;
    for (auto& p : parents[u]) h = std::max(h, 1 + visit(p));
    height[u] = h;
    return h;
  };
  int best = 0;
  for (auto& e : entities) best = std::max(best, visit(uidKey(e.at("uid"))));
  return cycle ? -1 : best;
}

}  // namespace

TEST_CASE("generator: same seed and index give the same test, others differ") {
  GenOptions opts;
  opts.seed = 99;
  GeneratedTest a = generateTest(opts, 5), b = generateTest(opts, 5), c = generateTest(opts, 6);
  CHECK(a.policiesText == b.policiesText);
  CHECK(a.entitiesJson == b.entitiesJson);
  CHECK(a.schemaText == b.schemaText);
  CHECK(a.requestsJson == b.requestsJson);
  CHECK(a.policiesText != c.policiesText);
  opts.seed = 100;
  CHECK(generateTest(opts, 5).policiesText != a.policiesText);
}

TEST_CASE("generator: output respects the options and is well-formed JSON") {
  GenOptions opts;
  opts.seed = 7;
  opts.minPolicies = 2;
  opts.maxPolicies = 4;
  opts.requestsPerTest = 5;
  opts.schemaFraction = 0.0;
  for (uint64_t i = 0; i < 40; ++i) {
    GeneratedTest t = generateTest(opts, i);
    int n = countPolicies(t.policiesText);
    CHECK(n >= 2);
    CHECK(n <= 4);
    CHECK(t.schemaText.empty());
    json entities = json::parse(t.entitiesJson);
    REQUIRE(entities.is_array());
    for (auto& e : entities) {
      CHECK(e.contains("uid"));
      CHECK(e.at("attrs").is_object());
      CHECK(e.at("parents").is_array());
    }
    REQUIRE(t.requestsJson.size() == 5);
    for (auto& r : t.requestsJson) {
      json req = json::parse(r);
      CHECK(req.at("principal").contains("type"));
      CHECK(req.at("action").contains("id"));
      CHECK(req.at("resource").contains("id"));
      CHECK(req.at("context").is_object());
      CHECK_FALSE(req.contains("validateRequest"));
      CHECK_FALSE(req.contains("decision"));
    }
  }
  opts.schemaFraction = 1.0;
  for (uint64_t i = 0; i < 10; ++i) {
    GeneratedTest t = generateTest(opts, i);
    CHECK(t.schemaText.find("appliesTo") != std::string::npos);
    for (auto& r : t.requestsJson) CHECK(json::parse(r).contains("validateRequest"));
  }
}

TEST_CASE("generator: hierarchies are acyclic, deep and have multiple parents") {
  GenOptions opts;
  opts.seed = 3;
  opts.hierarchyDepth = 4;
  int deepest = 0;
  bool multiParent = false;
  for (uint64_t i = 0; i < 60; ++i) {
    json entities = json::parse(generateTest(opts, i).entitiesJson);
    int h = hierarchyHeight(entities);
    REQUIRE(h >= 0);
    CHECK(h <= opts.hierarchyDepth);  // levels below the top, plus one step to an action group or absent parent
    deepest = std::max(deepest, h);
    for (auto& e : entities) multiParent = multiParent || e.at("parents").size() >= 2;
  }
  CHECK(deepest >= 3);
  CHECK(multiParent);
}

TEST_CASE("generator: a run covers the language broadly") {
  GenOptions opts;
  opts.seed = 11;
  std::string all, data;
  for (uint64_t i = 0; i < 150; ++i) {
    GeneratedTest t = generateTest(opts, i);
    all += t.policiesText;
    data += t.entitiesJson;
    for (auto& r : t.requestsJson) data += r;
  }
  for (const char* feature :
       {"forbid (", "permit (", "\nwhen {", "\nunless {", " like ", " is ", " in [", "if ", " has ", " && ", " || ", "(!",
        " * ", " + ", " - ", " < ", " >= ", " != ", ".contains(", ".containsAll(", ".containsAny(", ".isEmpty()",
        ".hasTag(", ".getTag(", "decimal(", ".lessThan(", "ip(", ".isInRange(", ".isIpv4()", ".isLoopback()",
        "datetime(", "duration(", ".offset(", ".durationSince(", ".toDate()", ".toTime()", ".toMilliseconds()",
        "9223372036854775807", "\\u{", "action in [", "principal is ", "context.", "resource.", "::\""})
    CHECK_MESSAGE(all.find(feature) != std::string::npos, "never generated: " << feature);
  for (const char* feature : {"\"__entity\"", "\"__extn\"", "\"ip\"", "\"decimal\"", "\"datetime\"", "\"duration\"",
                              "\"tags\"", "9223372036854775807"})
    CHECK_MESSAGE(data.find(feature) != std::string::npos, "never in data: " << feature);
}

TEST_CASE("generator: writeIntegrationTests lays out the integration-test format") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "govmesh_cedar_gen_test";
  fs::remove_all(dir);
  GenOptions opts;
  govmesh::gen::writeIntegrationTests(dir.string(), 5, 30, opts);
  int withSchema = 0;
  for (int n = 0; n < 30; ++n) {
    char stem[16];
    std::snprintf(stem, sizeof stem, "%05d", n);
    fs::path jsonPath = dir / "tests" / (std::string(stem) + ".json");
    REQUIRE(fs::exists(jsonPath));
    std::ifstream in(jsonPath);
    json test = json::parse(in);
    CHECK(test.at("policies") == "tests/" + std::string(stem) + ".cedar");
    CHECK(fs::exists(dir / test.at("policies").get<std::string>()));
    CHECK(fs::exists(dir / test.at("entities").get<std::string>()));
    bool schemaFile = fs::exists(dir / "tests" / (std::string(stem) + ".cedarschema"));
    CHECK(test.contains("schema") == schemaFile);
    withSchema += schemaFile ? 1 : 0;
    CHECK(test.at("shouldValidate") == false);
    REQUIRE(test.at("requests").size() == static_cast<size_t>(opts.requestsPerTest));
    for (auto& r : test.at("requests")) {
      CHECK(r.contains("description"));
      CHECK_FALSE(r.contains("decision"));
    }
  }
  CHECK(withSchema > 0);
  CHECK(withSchema < 30);
  fs::remove_all(dir);
}
