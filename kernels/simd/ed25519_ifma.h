// Ed25519 verification on AVX-512 IFMA lanes: eight signatures per vector, same criterion and
// verdicts as the scalar reference (engine/ed25519_verify.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/ed25519_prepared.h"

namespace govmesh::simd {

/// True when this CPU has AVX-512F and AVX-512 IFMA (checked at run time).
bool cpuHasIfma();

/// out[i] = 1 when A and R of in[i] decode strictly, A is not of small order and
/// [8]([s]B − R − [k]A) is the identity; else 0. Requires cpuHasIfma().
void ed25519VerifyPreparedIfma(const kernels::Ed25519Prepared* in, size_t n, uint8_t* out);

}  // namespace govmesh::simd
