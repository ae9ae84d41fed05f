// Decision tables: a Cedar policy set (plus its entity store) compiled into per-feature
// dictionaries of policy bitsets.
//
// Layout. Policies are numbered 0..P-1; a bitset over policies is `words` 64-bit words.
// Every feature has rows; a request selects one row per feature (its "code"). A row holds three
// bitsets over policies, stored contiguously as S, T, E:
//   S  scope: the request's principal/action/resource satisfies the policy's scope constraint
//      on this feature (entity features only; all ones elsewhere). Scopes never error.
//   T  the policy's condition atoms that read only this feature are all true, in policy order
//      (all ones for policies with no atom on this feature).
//   E  the first of those atoms that is not true raised an error.
//   (T = E = 0 means the first non-true atom was false.)
// Per request:
//   cand = AND S;  sat = cand & AND T;  anyE = OR E;  anyF = OR ~(T|E)
//   error     = cand & anyE & ~anyF           (every non-true atom errored, so the first did)
//   ambiguous = cand & anyE & anyF            (a false and an error on different features: which
//                                              came first decides; resolved per policy by the
//                                              reference evaluator, so the answer stays exact)
//   decision  = forbid wins over permit over default deny, as in Cedar.
//
// Features:
//   entity   principal, action, resource: a dictionary from entity uid to row, covering every
//            uid the store or the policies mention; any other uid gets the row of an unknown
//            entity of its type (or of an unknown type), which behaves alike for every such uid.
//            Condition atoms that read only this variable (`principal.clearance >= 3`,
//            `principal in Team::"x"` in a `when`) are folded into its rows.
//   context  one per context path compared with constants (`context.zone == "eu"`): a
//            dictionary from value to row, plus rows for any other value and for an access
//            error (missing attribute).
//   derived  one per remaining atom (cross-variable, `like`, arithmetic, extension calls...):
//            the atom is evaluated per request and selects row 0 (true), 1 (false) or 2 (error).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/ast.h"
#include "compiler/entities.h"
#include "compiler/evaluator.h"

namespace govmesh::table {

using Word = uint64_t;

enum class FeatureKind : uint8_t { Principal, Action, Resource, Context, Derived };

/// Codes of a derived feature's rows.
enum DerivedCode : uint32_t { kDerivedTrue = 0, kDerivedFalse = 1, kDerivedError = 2 };

/// One feature: its dictionary and its rows (rowCount x 3 x words words: S, T, E per row).
struct Feature {
  FeatureKind kind = FeatureKind::Principal;
  std::vector<std::string> path;  // Context: attribute names below `context`
  cedar::ExprPtr atom;            // Derived: the atom, evaluated per request
  std::string atomText;           // Derived: the atom as Cedar text
  // Context dictionary: canonical value text (cedar::toString) -> row.
  std::unordered_map<std::string, uint32_t> valueRows;
  uint32_t otherRow = 0;  // Context: a present value not in valueRows
  uint32_t errorRow = 0;  // Context: reading the path errors (missing attribute, not a record)
  // Entity features: entity index (DecisionTable::entityIndex) -> row; unknown uids by type.
  std::vector<uint32_t> entityRows;
  std::unordered_map<std::string, uint32_t> unknownTypeRows;
  uint32_t unknownAnyTypeRow = 0;
  std::vector<Word> rows;
  /// Number of rows, given the table's words per bitset.
  size_t rowCount(uint32_t words) const { return words ? rows.size() / (size_t{3} * words) : 0; }
};

/// A compiled policy set.
struct DecisionTable {
  uint32_t policyCount = 0;
  uint32_t words = 0;  // (policyCount + 63) / 64
  std::vector<cedar::Policy> policies;  // static and linked, in order; bit i is policies[i]
  std::vector<Word> permitMask, forbidMask;
  std::vector<Feature> features;
  // The entity universe of the entity features: every uid of the store, of the policies, and
  // of the store's attribute values and parents.
  std::unordered_map<cedar::EntityUid, uint32_t, cedar::EntityUidHash> entityIndex;
  std::vector<cedar::EntityUid> entities;
  const cedar::EntityStore* store = nullptr;  // for resolving ambiguous policies and derived atoms

  const Word* row(const Feature& f, uint32_t r) const { return f.rows.data() + size_t{r} * 3 * words; }
  /// Bytes held by rows, masks and dictionaries (an estimate of the dictionaries' overhead).
  size_t tableBytes() const;
};

/// Compiles linked, static policies over `store` (which must outlive the table).
DecisionTable compileTable(std::vector<cedar::Policy> policies, const cedar::EntityStore& store);

/// Codes of one request, one per feature, in feature order.
using RequestCodes = std::vector<uint32_t>;

/// Featurizes a batch of requests: codes[f * n + i] is request i's code for feature f
/// (struct of arrays, so a backend streams one feature's codes at a time).
void featurize(const DecisionTable& t, const std::vector<cedar::Request>& requests, std::vector<uint32_t>& codes);

/// Evaluates featurized requests with the scalar reference table evaluator: decision, reasons
/// and errors per request, equal to the reference evaluator's.
void evaluateBatch(const DecisionTable& t, const std::vector<cedar::Request>& requests, const std::vector<uint32_t>& codes,
                   std::vector<cedar::Response>& out);

/// Summary bits of one request's evaluation (the same values as the kernels' RequestFlags).
enum BatchFlags : uint8_t { kBatchPermitSat = 1, kBatchForbidSat = 2, kBatchError = 4, kBatchAmbiguous = 8 };

/// Turns per-request flags and sat/err/amb bitsets (3 * words words per request; unread when
/// the request's flags are 0) into Cedar answers, settling ambiguous policies with the
/// reference evaluator. Shared by the scalar evaluator and every backend.
void finishBatch(const DecisionTable& t, const std::vector<cedar::Request>& requests, const uint8_t* flags, const Word* bits,
                 std::vector<cedar::Response>& out);

/// Convenience: featurize and evaluate one request.
cedar::Response authorizeWithTable(const DecisionTable& t, const cedar::Request& request);

}  // namespace govmesh::table
