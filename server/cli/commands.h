// Subcommands of the govmesh CLI. Each `add*` registers its options on `app` and returns the
// subcommand; the command runs from its callback and sets `exitCode`.
#pragma once

#include <CLI/CLI.hpp>

namespace govmesh::server {
struct LoadReport;
}

namespace govmesh::cli {

/// `govmesh authorize`: one request against policy, entity and schema files, like `cedar authorize`.
void addAuthorize(CLI::App& app, int& exitCode);
/// `govmesh cedar-test`: Cedar integration tests; ends with "N passed, M failed".
void addCedarTest(CLI::App& app, int& exitCode);
/// `govmesh demo`: the main job on built-in example governance data.
void addDemo(CLI::App& app, int& exitCode);
/// `govmesh bench tables`: backend throughput against the reference and cedar-wasm.
void addBench(CLI::App& app, int& exitCode);
/// `govmesh bench crypto` (registered under `bench`): Ed25519 and SHA-256 throughput per backend
/// against OpenSSL, measured in one run.
void addBenchCrypto(CLI::App& bench, int& exitCode);
/// `govmesh verify-sigs`: Ed25519 verdicts for JSON lines {"pk","msg","sig"} (hex), one per line.
void addVerifySigs(CLI::App& app, int& exitCode);
/// Prints a load report's human summary (throughput, latency, allows, denies by code, tampering,
/// offline mismatches), as `govmesh loadgen` and `govmesh demo` both show it.
void printLoadSummary(const server::LoadReport& r);
/// `govmesh gen-tests`: seeded random Cedar tests in the integration-test format.
void addGenTests(CLI::App& app, int& exitCode);

/// `govmesh keygen`, `compile`, `sign`, `inspect`, `verify-bundle`: signed policy bundles.
void addBundleCommands(CLI::App& app, int& exitCode);
/// `govmesh serve`: the decision service (Cap'n Proto RPC, metrics) until SIGTERM; SIGHUP reloads.
void addServe(CLI::App& app, int& exitCode);
/// `govmesh loadgen`: a signed (or unsigned) mixed load against a node, with tampered requests;
/// one JSON report at the end.
void addLoadgen(CLI::App& app, int& exitCode);

/// `govmesh prove`, `verify-proof`: inclusion and consistency proofs of the lineage log.
void addLineageCommands(CLI::App& app, int& exitCode);
/// `govmesh replay`: re-verifies a lineage log (checkpoints, leaves, signatures, decisions).
void addReplay(CLI::App& app, int& exitCode);
/// `govmesh publish` and `govmesh mesh-demo` (server/cli/mesh_cmds.cpp).
void addMeshCommands(CLI::App& app, int& exitCode);

}  // namespace govmesh::cli
