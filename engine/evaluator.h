// Batch evaluation of decision tables on the best backend the machine has.
//
// Backends are listed once, in priority order (cuda, avx512, avx2, scalar); the first the
// machine supports wins, and GOVMESH_BACKEND=<name> forces one (an unknown or unsupported
// name is an error, never a silent fallback). Every backend produces, per request, the same
// flags and sat/err/amb bitsets as `scalar`; `finishResponses` turns those into Cedar answers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/decision_table.h"
#include "kernels/cuda/table_eval_core.h"

namespace govmesh::engine {

/// A decision table flattened into the arrays kernels read (rows of all features in one block).
struct FlatTable {
  explicit FlatTable(const table::DecisionTable& t);
  const table::DecisionTable& table;
  uint64_t generation;  // unique per FlatTable, so a device copy can tell tables apart
  std::vector<uint64_t> rows, featureOffset, validMask;
  kernels::TableView view() const;
};

/// What a backend writes for a batch of n requests.
struct BatchResult {
  std::vector<uint8_t> flags;  // n
  std::vector<uint64_t> bits;  // n * 3 * words: sat, err, amb per request (unspecified when flags are 0)
};

/// A table-evaluation backend.
class Evaluator {
 public:
  virtual ~Evaluator() = default;
  /// The backend's name: "scalar", "avx2", "avx512" or "cuda".
  virtual std::string_view name() const = 0;
  /// Evaluates n featurized requests (codes feature-major, as table::featurize writes them).
  /// Returns false when the backend failed (a GPU error, say): the caller must then use
  /// another backend or deny, never allow.
  [[nodiscard]] virtual bool evaluate(const FlatTable& t, const uint32_t* codes, size_t n, BatchResult& out) = 0;
};

/// The backends, in priority order, with whether this machine can run each.
struct BackendInfo {
  std::string name;
  bool available = false;
  std::string why;  // why not, when unavailable
};
std::vector<BackendInfo> listBackends();

/// Creates a backend by name; throws std::invalid_argument for an unknown name and
/// std::runtime_error for one this machine cannot run.
std::unique_ptr<Evaluator> makeEvaluator(std::string_view name);

/// The backend GOVMESH_BACKEND names, or else the first available in priority order. `cuda`
/// is chosen automatically only when a GPU is present (and `allowGpu`).
std::unique_ptr<Evaluator> bestEvaluator(bool allowGpu = true);

/// The CPU features this process detected, e.g. "avx512f avx512bw avx2".
std::string cpuFeatures();

/// Turns backend output into Cedar answers: decision, reasons and errors per request, settling
/// ambiguous policies with the reference evaluator.
void finishResponses(const table::DecisionTable& t, const std::vector<cedar::Request>& requests, const BatchResult& r,
                     std::vector<cedar::Response>& out);

/// Featurize + evaluate + finish on `ev`, falling back to the scalar backend when `ev` fails.
std::vector<cedar::Response> authorizeBatch(const FlatTable& t, Evaluator& ev, const std::vector<cedar::Request>& requests);

}  // namespace govmesh::engine
