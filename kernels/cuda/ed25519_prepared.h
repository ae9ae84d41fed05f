// One Ed25519 signature after the cheap, branchy checks (lengths, S < L) and the hash: what the
// point arithmetic of every backend (scalar, AVX-512 IFMA lanes, CUDA threads) starts from.
#pragma once

#include <cstdint>

namespace govmesh::kernels {

/// Little-endian encodings as in RFC 8032; `s` < L already checked, `k` = SHA-512(R ‖ A ‖ M) mod L.
struct Ed25519Prepared {
  uint8_t a[32];  ///< the public key A, as received (decoded strictly by the backend)
  uint8_t r[32];  ///< R, as received (decoded strictly by the backend)
  uint8_t s[32];  ///< S, canonical (< L)
  uint8_t k[32];  ///< k reduced mod L
};

}  // namespace govmesh::kernels
