// Seeded random generator of Cedar integration tests, for differential testing of the
// evaluator against the reference engine (tests/oracle/cedar_oracle.mjs fills in the expected
// results).
//
// Every generated test is a policy set, an entity store (Cedar's entity JSON format, with
// explicit "__entity"/"__extn" escapes), optionally a schema, and a handful of requests. The
// output is deliberately varied: all scope forms, deep multi-parent hierarchies, references to
// absent entities, every operator and extension function, and constructs that raise evaluation
// errors (missing attributes and tags, type errors, overflow, bad extension literals), so that
// both decisions and per-policy error reporting are exercised.
//
// Generation is fully deterministic: the same options and test index give byte-identical
// output on every platform (own PRNG, no std::*_distribution).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace govmesh::gen {

/// Knobs of the generator. Defaults give small tests (a few policies, around a dozen
/// entities) that evaluate quickly yet cover the whole language.
struct GenOptions {
  /// Master seed; test n of a run is generated from (seed, n) alone.
  uint64_t seed = 1;
  /// Number of policies per test, drawn uniformly from [minPolicies, maxPolicies].
  int minPolicies = 1;
  int maxPolicies = 6;
  /// Number of (non-action) entities in the store, drawn from [minEntities, maxEntities].
  int minEntities = 4;
  int maxEntities = 14;
  /// Requests written per test.
  int requestsPerTest = 8;
  /// Levels of the entity hierarchy (1 = no parents at all).
  int hierarchyDepth = 4;
  /// Maximum nesting depth of generated policy condition expressions.
  int maxExprDepth = 3;
  /// Fraction of tests that come with a schema (entities and contexts then conform to it).
  double schemaFraction = 0.15;
  /// Scales the probability of deliberately erroring constructs (0 = only accidental ones).
  double errorBias = 1.0;
  /// Fraction of policies that are permits (the rest are forbids). Large policy sets need a
  /// high fraction, or some forbid matches almost every request and nothing is ever allowed.
  double permitFraction = 0.7;
  /// Chance that a policy gets an extra condition comparing context attributes with constants
  /// (`context.s == "eu"`, `context.n != 3`, ...), the shape decision tables tabulate per
  /// context path. 0 (the default) draws nothing, leaving the output of other options as it was.
  double contextCompareBias = 0.0;
};

/// One generated test, as text ready to be written to files.
struct GeneratedTest {
  /// Cedar policy set; policies are named policy0, policy1, ... in text order.
  std::string policiesText;
  /// Entity store in Cedar's entity JSON format (a JSON array).
  std::string entitiesJson;
  /// Cedar schema text; empty when the test has no schema.
  std::string schemaText;
  /// Each a JSON object {"principal","action","resource","context"} (plus "validateRequest"
  /// when the test has a schema), without expected results.
  std::vector<std::string> requestsJson;
};

/// Generates test number `testIndex` of the run seeded by `options.seed`.
GeneratedTest generateTest(const GenOptions& options, uint64_t testIndex);

/// Writes `count` tests generated with `seed` (overriding options.seed) as DIR/tests/<n>.json
/// plus <n>.cedar, <n>.entities.json and, for tests with a schema, <n>.cedarschema, where n is
/// the test index zero-padded to 5 digits. Paths inside the .json files are relative to DIR
/// (the layout of Cedar's corpus); tests without a schema have no "schema" field. Requests
/// carry no decision/reason/errors: the oracle fills them in (and shouldValidate, written as
/// false here). Throws std::runtime_error when a file cannot be written.
void writeIntegrationTests(const std::string& dir, uint64_t seed, int count, const GenOptions& options);

}  // namespace govmesh::gen
