// SHA-256 on x86 SIMD: single-buffer with the SHA extensions, multi-buffer (one message per
// lane) with AVX2 (8 lanes) and AVX-512 (16 lanes). Digests equal the scalar reference's.
#pragma once

#include <cstddef>
#include <cstdint>

namespace govmesh::simd {

/// True when this CPU has the SHA extensions (SHA-NI) and SSE4.1.
bool cpuHasShaNi();
/// True when this CPU has AVX2.
bool cpuHasAvx2();
/// True when this CPU has AVX-512F/BW/VL.
bool cpuHasAvx512();

/// SHA-256 of one message with SHA-NI into out[32]. Requires cpuHasShaNi().
void sha256ShaNi(const uint8_t* data, size_t len, uint8_t* out);
/// SHA-256 of n messages (any lengths), 8 per vector, into out + 32*i. Requires cpuHasAvx2().
void sha256MultiAvx2(const uint8_t* const* data, const size_t* lens, size_t n, uint8_t* out);
/// SHA-256 of n messages (any lengths), 16 per vector, into out + 32*i. Requires cpuHasAvx512().
void sha256MultiAvx512(const uint8_t* const* data, const size_t* lens, size_t n, uint8_t* out);

}  // namespace govmesh::simd
