// The per-request core of decision-table evaluation, written once for every backend: the
// scalar backend runs it directly, the SIMD backends run the same steps on vectors of words
// (and this code for the leftover words), and the CUDA kernel runs it per GPU thread. Plain
// arrays only; see compiler/decision_table.h for what S, T and E mean.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/host_device.h"

namespace govmesh::kernels {

/// A decision table flattened for kernels. Feature f's row r starts at
/// rows[featureOffset[f] + r * 3 * words] and holds S, T, E (each `words` words).
struct TableView {
  uint32_t words = 0;
  uint32_t featureCount = 0;
  const uint64_t* rows = nullptr;
  const uint64_t* featureOffset = nullptr;  // featureCount entries, in words
  const uint64_t* permitMask = nullptr;     // words
  const uint64_t* forbidMask = nullptr;     // words
  const uint64_t* validMask = nullptr;      // words: bits of real policies
};

/// Per-request summary bits written by the kernels.
enum RequestFlags : uint8_t {
  kFlagPermitSat = 1,  // some satisfied permit
  kFlagForbidSat = 2,  // some satisfied forbid
  kFlagError = 4,      // some policy errored
  kFlagAmbiguous = 8,  // some policy needs the reference evaluator (see decision_table.h)
};

/// Evaluates words [wBegin, wEnd) of request i (of n; codes are feature-major: codes[f*n+i])
/// and writes its sat/err/amb words to out (3 * words words for this request: sat, err, amb;
/// nothing is written when out is null, for callers that want the flags first).
/// Returns the flags these words contribute. `static`: each translation unit keeps its own copy,
/// so the copy compiled with AVX-512 flags can never be the one the scalar path links to.
GOVMESH_HD static inline uint8_t evalRequestWords(const TableView& t, const uint32_t* codes, size_t n, size_t i, uint32_t wBegin,
                                           uint32_t wEnd, uint64_t* out) {
  uint8_t flags = 0;
  for (uint32_t k = wBegin; k < wEnd; ++k) {
    uint64_t s = t.validMask[k], tt = ~uint64_t{0}, anyE = 0, anyF = 0;
    for (uint32_t f = 0; f < t.featureCount; ++f) {
      const uint64_t* row = t.rows + t.featureOffset[f] + uint64_t{codes[f * n + i]} * 3 * t.words;
      s &= row[k];
      tt &= row[t.words + k];
      uint64_t e = row[2 * t.words + k];
      anyE |= e;
      anyF |= ~(row[t.words + k] | e);
    }
    uint64_t sat = s & tt, err = s & anyE & ~anyF, amb = s & anyE & anyF;
    if (out) {
      out[k] = sat;
      out[t.words + k] = err;
      out[2 * t.words + k] = amb;
    }
    if (sat & t.permitMask[k]) flags |= kFlagPermitSat;
    if (sat & t.forbidMask[k]) flags |= kFlagForbidSat;
    if (err) flags |= kFlagError;
    if (amb) flags |= kFlagAmbiguous;
  }
  return flags;
}

}  // namespace govmesh::kernels
