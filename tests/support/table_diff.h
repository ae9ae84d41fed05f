// Helpers shared by the decision-table differential test and the table-vs-reference fuzzer:
// loading a generated Cedar test into the front end's structures, turning static policies into
// templates plus links, and comparing answers of the table with the reference evaluator's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/ast.h"
#include "compiler/entities.h"
#include "compiler/evaluator.h"
#include "compiler/schema.h"
#include "tests/support/cedar_gen.h"

namespace govmesh::tablediff {

/// A generated test loaded into parsed policies, an entity store and requests. Held by pointer:
/// a decision table keeps a pointer to `store`, which therefore must not move.
struct LoadedTest {
  std::optional<cedar::Schema> schema;
  cedar::PolicySet policySet;            // as parsed (templates, if any, and no links)
  std::vector<cedar::Policy> policies;   // static and linked policies, ready to compile
  cedar::EntityStore store;
  std::vector<cedar::Request> requests;
  std::vector<std::string> requestJson;  // parallel to `requests`
  size_t skippedRequests = 0;            // requests whose JSON the front end refused
};

/// Parses a generated test. Throws (InputError) when the policies, the schema or the entities
/// do not load; a request that does not load is skipped and counted instead, so that one odd
/// request does not hide a whole test.
std::unique_ptr<LoadedTest> loadGenerated(const gen::GeneratedTest& g);

/// Reads one request JSON object {principal, action, resource, context}; throws InputError.
cedar::Request parseRequest(const std::string& json, const cedar::Schema* schema);

/// Deterministically turns some static policies with an entity in their principal or resource
/// scope (==, in, is-in) into templates (the entity replaced by a slot) and links each such
/// template one to three times: to its original entity, to another entity of the store, or to
/// an entity absent from the store. Replaces `t.policies` by the remaining static policies plus
/// the linked ones (PolicySet::linkAll), and records the templates and links in `t.policySet`.
/// Returns the number of links made.
size_t templatize(LoadedTest& t, uint64_t seed, double fraction);

/// The part of an answer the table must reproduce exactly: the decision, the determining
/// policies and the erroring policies, both sorted.
struct Answer {
  cedar::Decision decision = cedar::Decision::Deny;
  std::vector<std::string> reasons;
  std::vector<std::string> errors;  // policy ids
  bool operator==(const Answer&) const = default;
};

/// The canonical Answer of a response.
Answer canonical(const cedar::Response& r);

/// Renders an answer as `allow reasons=[..] errors=[..]`.
std::string describe(const Answer& a);

/// True when both responses carry the same error messages per policy (after sorting by id).
bool sameErrorMessages(const cedar::Response& a, const cedar::Response& b);

}  // namespace govmesh::tablediff
