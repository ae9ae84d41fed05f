// Statistics of a compiled decision table that its evaluators do not expose: how many
// policies a request leaves ambiguous (a false atom and an erroring atom on different features,
// settled by the reference evaluator at run time). Shared by the compile benchmark and the
// table differential test, which reports it to show that the slow path is exercised.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "compiler/decision_table.h"

namespace govmesh::bench {

/// Number of ambiguous policies of request `i` in a batch of `n` featurized requests (codes as
/// written by table::featurize), following the row algebra of compiler/decision_table.h.
inline size_t ambiguousPolicies(const table::DecisionTable& t, const std::vector<uint32_t>& codes, size_t n, size_t i) {
  using table::Word;
  const uint32_t w = t.words;
  size_t count = 0;
  for (uint32_t k = 0; k < w; ++k) {
    Word s = ~Word{0}, anyE = 0, anyF = 0;
    for (size_t f = 0; f < t.features.size(); ++f) {
      const Word* row = t.row(t.features[f], codes[f * n + i]);
      s &= row[k];
      anyE |= row[2 * w + k];
      anyF |= ~(row[w + k] | row[2 * w + k]);
    }
    if (k + 1 == w && t.policyCount % 64 != 0) s &= (Word{1} << (t.policyCount % 64)) - 1;
    count += static_cast<size_t>(std::popcount(s & anyE & anyF));
  }
  return count;
}

}  // namespace govmesh::bench
