#include <chrono>
#include <iostream>
#include <memory>

#include "compiler/conformance.h"
#include "compiler/decision_table.h"
#include "server/cli/commands.h"

namespace govmesh::cli {

void addCedarTest(CLI::App& app, int& exitCode) {
  struct Args {
    std::vector<std::string> paths;
    std::string engine = "reference";
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("cedar-test", "Run Cedar integration tests (a test .json, a folder, or a corpus .tar.gz)");
  cmd->add_option("paths", args->paths, "Test files, folders or .tar.gz corpora")->required();
  cmd->add_option("--engine", args->engine, "Evaluator to check: reference (tree walk) or table (compiled decision table)")
      ->check(CLI::IsMember({"reference", "table"}));
  cmd->callback([args, &exitCode] {
    auto start = std::chrono::steady_clock::now();
    cedar::TestAuthorizer engine = cedar::referenceAuthorizer;
    if (args->engine == "table") {
      engine = [](const cedar::IntegrationTest& t) -> std::function<cedar::Response(const cedar::Request&)> {
        auto table = std::make_shared<table::DecisionTable>(table::compileTable(t.policies, t.entities));
        return [table](const cedar::Request& r) { return table::authorizeWithTable(*table, r); };
      };
    }
    cedar::ConformanceReport r = cedar::runConformance(args->paths, engine, std::cout);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "engine " << args->engine << ": " << r.tests << " tests (" << r.testsNotLoaded << " did not load), "
              << (r.passed + r.failed) << " requests in " << secs << " s\n";
    std::cout << r.passed << " passed, " << r.failed << " failed\n";
    // Finding no test at all is a failure too: a run that checked nothing must not pass.
    if (r.tests == 0) std::cerr << "error: no integration tests found in the given paths\n";
    exitCode = (r.failed == 0 && r.tests > 0) ? 0 : 1;
  });
}

}  // namespace govmesh::cli
