// The standard benchmark workloads of ../shared/design/WORKLOADS.md, generated from a seed as
// ordinary Cedar text and JSON, so the same files can be fed to other engines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace govmesh::bench {

/// One generated workload: Cedar policies, entities JSON, and requests (each a JSON object
/// {principal, action, resource, context} in the integration-test request format).
struct Workload {
  std::string policies;
  std::string entities;
  std::vector<std::string> requests;
};

/// The `gov` workload (RBAC + ABAC) with `policies` policies and `requests` requests, over
/// `workloads` Workload entities (principals; WORKLOADS.md's 2,000 by default, more to model
/// large deployments, e.g. the million-entity compile benchmark).
Workload makeGovWorkload(int policies, int requests, uint64_t seed, int workloads = 2000);

}  // namespace govmesh::bench
