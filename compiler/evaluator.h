// The reference evaluator: a tree-walking interpreter with Cedar's exact semantics (the Lean
// specification, cedar-lean/Cedar/Spec/Evaluator.lean and Authorizer.lean, is the reference).
// Every other evaluator in govmesh (decision tables, SIMD, CUDA) must agree with it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/ast.h"
#include "compiler/entities.h"

namespace govmesh::cedar {

/// An authorization request.
struct Request {
  EntityUid principal;
  EntityUid action;
  EntityUid resource;
  Value context = Value::record({});
};

/// Reads a request {principal, action, resource, context?} as the integration tests and the
/// workloads write it; with a schema the context is read by the action's declared type.
/// Throws InputError naming `where` when a field is missing or malformed.
Request requestFromJson(const nlohmann::json& j, const Schema* schema, const std::string& where);

/// The outcome of evaluating one expression: a value or an evaluation error.
struct EvalResult {
  std::optional<Value> value;
  std::string error;  // why evaluation failed, when !value
  bool ok() const { return value.has_value(); }
};

/// Evaluates `e` for `request` over `entities`. Slots are errors (link templates first).
EvalResult evaluate(const Expr& e, const Request& request, const EntityStore& entities);

/// Evaluates a whole policy (scope, then conditions in order, short-circuiting):
/// true/false, or an error.
EvalResult evaluatePolicy(const Policy& p, const Request& request, const EntityStore& entities);

/// An erroring policy and why it errored.
struct PolicyError {
  std::string policyId;
  std::string message;
};

enum class Decision : uint8_t { Deny, Allow };

/// Cedar's authorization answer: decision, determining policies and erroring policies.
struct Response {
  Decision decision = Decision::Deny;
  std::vector<std::string> reasons;  // ids of satisfied forbids (deny) or permits (allow)
  std::vector<PolicyError> errors;   // every policy whose evaluation raised an error
};

/// Authorizes `request` against `policies`: forbid wins, default deny, erroring policies are
/// skipped and reported.
Response authorize(const std::vector<Policy>& policies, const Request& request, const EntityStore& entities);

}  // namespace govmesh::cedar
