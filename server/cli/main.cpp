// govmesh: the runtime governance mesh CLI. CLI11 parses the command line (a well-kept,
// header-only library with subcommands, typed options and generated --help).
#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "server/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"govmesh: a runtime governance mesh (Cedar policies, decided at machine speed)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "govmesh 0.1.0");
  int exitCode = 0;
  govmesh::cli::addDemo(app, exitCode);
  govmesh::cli::addAuthorize(app, exitCode);
  govmesh::cli::addCedarTest(app, exitCode);
  govmesh::cli::addGenTests(app, exitCode);
  govmesh::cli::addVerifySigs(app, exitCode);
  govmesh::cli::addBench(app, exitCode);
  govmesh::cli::addBundleCommands(app, exitCode);
  govmesh::cli::addServe(app, exitCode);
  govmesh::cli::addLoadgen(app, exitCode);
  govmesh::cli::addLineageCommands(app, exitCode);
  govmesh::cli::addReplay(app, exitCode);
  govmesh::cli::addMeshCommands(app, exitCode);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // Bad input (files, policies, requests) ends here with its file:line:column message.
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return exitCode;
}
