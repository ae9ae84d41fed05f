#include <iostream>
#include <memory>

#include "server/cli/commands.h"
#include "tests/support/cedar_gen.h"

namespace govmesh::cli {

void addGenTests(CLI::App& app, int& exitCode) {
  struct Args {
    uint64_t seed = 1;
    int count = 100;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("gen-tests", "Write seeded random Cedar tests (integration-test format, no expected answers)");
  cmd->add_option("--seed", args->seed, "Seed");
  cmd->add_option("--count", args->count, "Number of tests")->check(CLI::Range(1, 1000000));
  cmd->add_option("--out", args->out, "Output folder")->required();
  cmd->callback([args, &exitCode] {
    gen::GenOptions opts;
    gen::writeIntegrationTests(args->out, args->seed, args->count, opts);
    std::cout << "wrote " << args->count << " tests to " << args->out << "/tests (seed " << args->seed << ")\n";
    exitCode = 0;
  });
}

}  // namespace govmesh::cli
