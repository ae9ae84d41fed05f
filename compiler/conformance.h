// Runs tests in the Cedar integration-test format (cedar-policy/cedar-integration-tests):
// a JSON file naming a policy file, an entities file and an optional schema, and a list of
// requests with the expected decision, reasons and erroring policies.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "compiler/ast.h"
#include "compiler/entities.h"
#include "compiler/evaluator.h"
#include "compiler/schema.h"

namespace govmesh::cedar {

/// One loaded test case: its policies, entities, schema, and the expected answers.
struct IntegrationTest {
  std::string name;  // the test file's path
  std::vector<Policy> policies;
  EntityStore entities;
  std::optional<Schema> schema;
  struct Case {
    std::string description;
    Request request;
    Decision decision = Decision::Deny;
    std::vector<std::string> reasons;  // sorted
    std::vector<std::string> errors;   // sorted policy ids
  };
  std::vector<Case> cases;
};

/// Prepares an engine for one loaded test (e.g. compiles its decision table) and returns the
/// function that answers its requests. Every engine (reference, decision tables, SIMD, GPU)
/// plugs in here to be checked against the same expectations.
using TestAuthorizer = std::function<std::function<Response(const Request&)>(const IntegrationTest&)>;

/// The reference evaluator as a TestAuthorizer.
std::function<Response(const Request&)> referenceAuthorizer(const IntegrationTest& t);

/// Totals of a conformance run; `passed` and `failed` count requests.
struct ConformanceReport {
  size_t passed = 0;
  size_t failed = 0;
  size_t tests = 0;
  size_t testsNotLoaded = 0;  // tests whose files did not load (all their requests failed)
};

/// Runs every test found at `paths`: a test .json file, a folder (searched recursively for
/// .json files holding "requests"), or a .tar.gz corpus (paths inside relative to its root).
/// Writes each mismatch (test, request, expected and actual) to `out`; threads over tests.
ConformanceReport runConformance(const std::vector<std::string>& paths, const TestAuthorizer& authorizer, std::ostream& out);

}  // namespace govmesh::cedar
