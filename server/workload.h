// The workloads a load generator plays: who signs with which key, and the mix of requests each
// sends. `govmesh loadgen --keys DIR` and `govmesh demo` read them from a key directory.
//
// Key directory format: DIR/workloads.json is
//
//   {
//     "bundle": "bundles/current.bundle",      optional, relative to DIR: the bundle the node
//                                              serves. Needed by --check (offline evaluation);
//                                              when present its schema also directs how
//                                              contexts are read, as on the node's side.
//     "authority": "authority.pub",            optional, relative to DIR: the PEM public key the
//                                              bundle must verify against. Without it the
//                                              bundle is verified against the key that signed
//                                              it (enough to evaluate offline; trust is the
//                                              node's business).
//     "workloads": [
//       { "keyId": "ci-bot-1",                 the bundle's WorkloadKey id
//         "principal": "Workload::\"ci-bot\"", the principal this key may act as (Cedar uid text)
//         "key": "keys/ci-bot.key",            PKCS#8 PEM Ed25519 private key, relative to DIR
//         "requests": [                        at least one template
//           { "action": "Action::\"deploy\"",
//             "resource": "Service::\"api\"",
//             "context": {"zone": "eu", "at": "$now"},   optional; Cedar's JSON value format
//             "weight": 3 }                    optional, > 0, default 1: relative frequency
//         ] } ] }                              among this workload's templates
//
// The mix: each request comes from a workload drawn uniformly, then from one of its templates
// drawn with probability weight / (sum of that workload's weights).
//
// Contexts follow Cedar's JSON value format (compiler/entities.h): with
// the bundle's schema, the action's context type directs reading; without one, entities and
// extension values need their __entity / __extn escapes. Placeholders, substituted when a
// request is made, for time-window policies: a JSON string "$now" becomes the current time as
// a datetime value, "$nowMs" the current Unix ms as a long, "$hourUtc" the current UTC hour
// (0-23) as a long.
//
// Errors: anything wrong in the file (syntax, a missing or mistyped field, an unreadable key,
// a bad entity uid or context) throws cedar::InputError whose message names the file and the
// field, e.g. "DIR/workloads.json: workloads[1].requests[0].action: expected a string".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/value.h"
#include "engine/bundle.h"
#include "engine/crypto_types.h"

namespace govmesh::server {

/// One entry of a workload's request mix.
struct RequestTemplate {
  cedar::EntityUid action;
  cedar::EntityUid resource;
  nlohmann::json contextJson = nlohmann::json::object();  ///< as written (placeholders unsubstituted)
  std::optional<cedar::Value> fixedContext;               ///< read once when it holds no placeholder
  double weight = 1;
  std::string where;  ///< "FILE: workloads[i].requests[j]", for errors
};

/// A workload: a signing key, the principal it acts as, and its request mix.
struct WorkloadSpec {
  std::string keyId;
  cedar::EntityUid principal;
  std::string keyPath;     ///< resolved path of the PEM private key
  std::string privatePem;  ///< its contents
  crypto::Ed25519PublicKey publicKey{};
  std::vector<RequestTemplate> requests;
};

/// A parsed key directory.
struct WorkloadSet {
  std::string file;                            ///< path of workloads.json
  std::optional<std::string> bundlePath;       ///< resolved, when given
  std::optional<std::string> authorityPath;    ///< resolved, when given
  std::shared_ptr<const engine::Bundle> bundle;  ///< loaded and verified, when bundlePath is given
  std::vector<WorkloadSpec> workloads;
};

/// Parses a workloads.json text. Relative paths resolve against `baseDir`; `schema` (may be
/// null) directs context reading. Reads the key files; loads no bundle (see loadWorkloads).
/// Throws cedar::InputError naming `fileName` and the field.
WorkloadSet parseWorkloads(std::string_view text, const std::string& fileName, const std::string& baseDir,
                           const cedar::Schema* schema);

/// Reads DIR/workloads.json, loads and verifies the bundle it names (if any) and parses the
/// workloads with that bundle's schema. Throws cedar::InputError naming file and field.
WorkloadSet loadWorkloads(const std::string& dir);

/// The template's context at `nowMs` (placeholders substituted). Throws cedar::InputError
/// naming the template when the context does not read.
cedar::Value materializeContext(const RequestTemplate& t, const cedar::Schema* schema, int64_t nowMs);

/// True when `j` contains a placeholder string ("$now", "$nowMs", "$hourUtc") anywhere.
bool hasPlaceholder(const nlohmann::json& j);

}  // namespace govmesh::server
