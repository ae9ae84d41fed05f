// Shared by the per-backend tests (CPU and GPU): seeded random decision tables and batches,
// and a bit-for-bit comparison of a backend's output with the scalar reference.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/evaluator.h"

namespace govmesh::testing {

/// A synthetic table: random S/T/E rows for `features` features of `rowsPerFeature` rows over
/// `policies` policies, with random effects. Dense enough that every flag occurs.
inline table::DecisionTable randomTable(uint32_t policies, uint32_t features, uint32_t rowsPerFeature, uint64_t seed) {
  std::mt19937_64 rng(seed);
  table::DecisionTable t;
  t.policyCount = policies;
  t.words = (policies + 63) / 64;
  t.policies.resize(policies);
  for (uint32_t p = 0; p < policies; ++p) {
    t.policies[p].id = "policy" + std::to_string(p);
    t.policies[p].effect = rng() % 4 == 0 ? cedar::Effect::Forbid : cedar::Effect::Permit;
  }
  t.permitMask.assign(t.words, 0);
  t.forbidMask.assign(t.words, 0);
  for (uint32_t p = 0; p < policies; ++p)
    (t.policies[p].effect == cedar::Effect::Permit ? t.permitMask : t.forbidMask)[p / 64] |= uint64_t{1} << (p % 64);
  for (uint32_t f = 0; f < features; ++f) {
    table::Feature feat;
    feat.kind = table::FeatureKind::Derived;
    feat.rows.resize(size_t{rowsPerFeature} * 3 * t.words);
    for (uint32_t r = 0; r < rowsPerFeature; ++r) {
      uint64_t* row = feat.rows.data() + size_t{r} * 3 * t.words;
      for (uint32_t k = 0; k < t.words; ++k) {
        row[k] = rng() | rng() | rng();              // S: mostly ones
        uint64_t e = rng() & rng() & rng() & rng();  // E: sparse
        row[t.words + k] = (rng() | rng() | rng()) & ~e;  // T: mostly ones, never with E
        row[2 * t.words + k] = e;
      }
    }
    t.features.push_back(std::move(feat));
  }
  return t;
}

/// Random codes, feature-major, for n requests.
inline std::vector<uint32_t> randomCodes(uint32_t features, uint32_t rowsPerFeature, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> codes(size_t{features} * n);
  for (uint32_t& c : codes) c = static_cast<uint32_t>(rng() % rowsPerFeature);
  return codes;
}

/// Runs `backend` and `scalar` on the same input and requires identical flags and bits.
inline void requireSameAsScalar(engine::Evaluator& backend, const engine::FlatTable& ft, const std::vector<uint32_t>& codes, size_t n,
                                const std::string& config) {
  auto scalar = engine::makeEvaluator("scalar");
  engine::BatchResult want, got;
  REQUIRE(scalar->evaluate(ft, codes.data(), n, want));
  REQUIRE_MESSAGE(backend.evaluate(ft, codes.data(), n, got), "backend " << backend.name() << " failed: " << config);
  REQUIRE(got.flags.size() == want.flags.size());
  REQUIRE(got.bits.size() == want.bits.size());
  for (size_t i = 0; i < n; ++i) {
    if (got.flags[i] != want.flags[i]) FAIL("flags differ at request " << i << ": " << config);
  }
  // Bitsets of requests with no flag set are unspecified (backends may skip writing them).
  const size_t per = 3 * size_t{ft.table.words};
  for (size_t k = 0; k < want.bits.size(); ++k) {
    if (want.flags[k / per] == 0) continue;
    if (got.bits[k] != want.bits[k]) FAIL("bits differ at word " << k << " (request " << k / per << "): " << config);
  }
}

}  // namespace govmesh::testing
