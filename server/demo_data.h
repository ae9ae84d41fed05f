// The example governance world of `govmesh demo`: an authority, a handful of autonomous
// workloads with their signing keys, a Cedar policy set for deploys and data access, the
// entities it reads, and the requests each workload sends. Everything is built in, so the demo
// runs from a fresh clone with no external file.
//
// The world in one paragraph. Workloads belong to teams (platform, data-eng, ml) and carry a
// trust zone (prod, staging), a clearance (1-4) and an attested trust level. Services belong to
// a team and a zone; datasets to a steward team and a zone, with a classification (1-4).
// Workloads deploy and roll back services of their own zone and team, prod deploys only inside
// the 08:00-18:00 UTC change window and never in the year-end freeze, critical services need
// clearance 4; the platform autoscaler scales within a service's replica limit; data is read
// by clearance within the zone, written by its steward, restricted data (4) needs a hardware
// attestation, and data is reached from the mesh network (10.0.0.0/8) only. Anything from a
// degraded workload, or with a degraded attestation in its context, is forbidden. The request
// templates mix allows, forbids and default denies (see kDemo* below and tests/demo_data_test.cpp).
//
// The key directory (writeDemoDirectory) is the format `govmesh loadgen --keys DIR` reads:
//   DIR/workloads.json          {"bundle": "bundles/<revision>.bundle", "authority":
//                               "authority.pub", "workloads": [{"keyId",
//                               "principal", "key": "keys/<keyId>.key", "requests": [{"action",
//                               "resource", "context", "weight"}]}]}
//   DIR/keys/<keyId>.key|.pub   each workload's PKCS#8 private key (mode 0600) and public key
//   DIR/authority.key|.pub      the policy authority's key pair (the .key mode 0600)
//   DIR/node.key|.pub           the demo node's key pair, which signs its lineage checkpoints
//   DIR/lineage/                the node's lineage log (written by `govmesh demo`, not here)
//   DIR/bundles/<rev>.bundle    the signed bundle
//   DIR/policy/                 the bundle's sources (policies.cedar, governance.cedarschema,
//                               entities.json, workload-keys.json), so that `govmesh compile`
//                               and `govmesh sign` can rebuild it
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"

namespace govmesh::server {

/// One kind of request a demo workload sends, in the key directory's template form.
struct DemoRequestTemplate {
  std::string action;       ///< Cedar uid text, e.g. `Action::"deploy"`
  std::string resource;     ///< Cedar uid text, e.g. `Service::"checkout-api"`
  nlohmann::json context;   ///< Cedar entities-JSON record (extension values as __extn escapes)
  int weight = 1;           ///< relative frequency among the workload's templates
  bool expectAllow = false; ///< what the policies answer (checked by tests/demo_data_test.cpp)
  std::string story;        ///< one line for humans: what the workload asks
  /// The @id of the policy that decides it: the permit of an allow, the forbid of a forbidden
  /// request; empty for a default deny (no permit applies).
  std::string because;
  /// The context reads the sender's clock ("$now"), so the answer depends on the time of day
  /// and `expectAllow` / `because` do not apply.
  bool live = false;
};

/// A demo workload: its signing key and what it asks.
struct DemoWorkload {
  std::string keyId;      ///< the key's id in the bundle's workload registry
  std::string principal;  ///< Cedar uid text, e.g. `Workload::"ci-bot"`
  crypto::Ed25519KeyPair key;
  std::vector<DemoRequestTemplate> requests;
};

/// The whole demo world, keys generated fresh, bundle compiled and signed.
struct DemoWorld {
  std::string policyText;    ///< Cedar policies, each with an @id
  std::string schemaText;    ///< Cedar schema (human-readable format)
  std::string entitiesJson;  ///< Cedar entities JSON
  crypto::Ed25519KeyPair authority;
  crypto::Ed25519KeyPair node;  ///< the demo node's key: signs its lineage checkpoints
  std::vector<DemoWorkload> workloads;
  engine::Bundle bundle;     ///< as compiled (also what the signed bytes hold)
  std::string bundleBytes;   ///< the signed bundle file
};

/// The bundle's sources for `world` (policies, schema, entities, one WorkloadKey per workload).
engine::BundleSources demoBundleSources(const DemoWorld& world);

/// Builds the demo world: generates the authority and workload keys, compiles the policies,
/// schema, entities and workload registry into a bundle of `revision`, issued at `nowMs` and
/// fresh for `ttlMs`, and signs it with the authority key. Throws cedar::InputError only if the
/// built-in data were broken (a bug, caught by tests/demo_data_test.cpp).
DemoWorld makeDemoWorld(int64_t nowMs, int64_t ttlMs, uint64_t revision = 1);

/// The key directory's workloads.json for `world`; `bundlePath` (relative to the directory)
/// is stored as "bundle", with "authority": "authority.pub", when not empty.
nlohmann::json demoWorkloadsJson(const DemoWorld& world, const std::string& bundlePath);

/// Where writeDemoDirectory() put things (absolute paths).
struct DemoPaths {
  std::filesystem::path dir, authorityPub, authorityKey, keysDir, bundle, workloadsJson, policyDir;
  std::filesystem::path nodeKey, nodePub;  ///< node.key (0600) and node.pub
  std::filesystem::path lineage;           ///< where the node keeps its lineage log (not created here)
};

/// Writes the key directory described at the top of this file into `dir` (created if needed;
/// files of an earlier run are replaced). Private keys are written with mode 0600, every file
/// through a temporary and a rename. Throws cedar::InputError naming the path on failure.
DemoPaths writeDemoDirectory(const DemoWorld& world, const std::filesystem::path& dir);

}  // namespace govmesh::server
