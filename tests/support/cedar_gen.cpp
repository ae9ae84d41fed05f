// Cedar test generator: entry points (one test from a seed and an index, and writing a whole
// run of tests in the integration-test layout). See cedar_gen.h.
#include "tests/support/cedar_gen.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tests/support/cedar_gen_internal.h"

namespace govmesh::gen {

namespace {

/// Mixes the run seed and the test index so that neighbouring tests get unrelated streams.
uint64_t testSeed(uint64_t seed, uint64_t index) {
  uint64_t x = seed ^ (index * 0x9e3779b97f4a7c15ULL) ^ 0x5851f42d4c957f2dULL;
  x = (x ^ (x >> 33)) * 0xff51afd7ed558ccdULL;
  x = (x ^ (x >> 33)) * 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

GeneratedTest generateTest(const GenOptions& options, uint64_t testIndex) {
  Rng rng(testSeed(options.seed, testIndex));
  World world = buildWorld(rng, options);
  GeneratedTest t;
  std::vector<PolicyScope> scopes;
  t.policiesText = generatePolicies(rng, world, options, scopes);
  t.entitiesJson = entitiesJson(world);
  if (world.withSchema) t.schemaText = schemaText(world);
  for (int i = 0; i < options.requestsPerTest; ++i) t.requestsJson.push_back(randomRequest(rng, world, scopes).dump());
  return t;
}

void writeIntegrationTests(const std::string& dir, uint64_t seed, int count, const GenOptions& options) {
  namespace fs = std::filesystem;
  GenOptions opts = options;
  opts.seed = seed;
  fs::path testsDir = fs::path(dir) / "tests";
  std::error_code ec;
  fs::create_directories(testsDir, ec);
  if (ec) throw std::runtime_error("cannot create " + testsDir.string() + ": " + ec.message());
  for (int n = 0; n < count; ++n) {
    GeneratedTest t = generateTest(opts, static_cast<uint64_t>(n));
    char name[32];
    std::snprintf(name, sizeof name, "%05d", n);
    std::string stem = name;
    writeFile(testsDir / (stem + ".cedar"), t.policiesText);
    writeFile(testsDir / (stem + ".entities.json"), t.entitiesJson);
    nlohmann::ordered_json test;
    test["policies"] = "tests/" + stem + ".cedar";
    test["entities"] = "tests/" + stem + ".entities.json";
    if (!t.schemaText.empty()) {
      writeFile(testsDir / (stem + ".cedarschema"), t.schemaText);
      test["schema"] = "tests/" + stem + ".cedarschema";
    }
    test["shouldValidate"] = false;
    auto requests = nlohmann::ordered_json::array();
    for (size_t i = 0; i < t.requestsJson.size(); ++i) {
      auto req = nlohmann::ordered_json::parse(t.requestsJson[i]);
      nlohmann::ordered_json r;
      r["description"] = "Request " + std::to_string(i);
      for (auto& [k, v] : req.items()) r[k] = v;
      requests.push_back(r);
    }
    test["requests"] = requests;
    writeFile(testsDir / (stem + ".json"), test.dump(2) + "\n");
  }
}

}  // namespace govmesh::gen
