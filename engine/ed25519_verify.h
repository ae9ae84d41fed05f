// Ed25519 signature verification under govmesh's one criterion (ARCHITECTURE.md, decision 6),
// on several backends that must give the same verdict on every input:
//
//   1. the signature is 64 bytes and the key 32 (anything else is invalid, never read past);
//   2. S < L (canonical scalar, L = 2^252 + 27742317777372353535851937790883648493);
//   3. A and R decode strictly as in RFC 8032 §5.1.3: y < p, and x = 0 with the sign bit set is
//      rejected; a y with no square root x is rejected;
//   4. A is not of small order ([8]A ≠ identity); a small-order R is allowed;
//   5. k = SHA-512(R ‖ A ‖ M) mod L over the raw encodings, and the cofactored equation
//      [8]([S]B − R − [k]A) = identity holds (the 8 applied to points, not folded into scalars).
//
// Backends (names are what `govmesh verify-sigs --backend` takes):
//   single   portable scalar code, one signature at a time (the reference)
//   batch    random linear combination with 128-bit coefficients from RAND_bytes and one
//            multi-scalar multiplication (Straus / Pippenger); a failed batch pinpoints its bad
//            signatures
//   avx512   AVX-512 IFMA, eight signatures per vector (needs avx512ifma)
//   cuda     one signature per GPU thread (needs a CUDA device)
//   openssl  OpenSSL's EVP_DigestVerify, for comparison only: its criterion differs from ours
//            (cofactorless, accepts small-order A), so it is not expected to agree on edge cases
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/crypto_types.h"

namespace govmesh::crypto {

/// One signature to check; every pointer is caller-owned and read only within its length.
struct SigInput {
  ByteView pk;   ///< the public key A (valid only when 32 bytes)
  ByteView sig;  ///< R ‖ S (valid only when 64 bytes)
  ByteView msg;  ///< the message, any length
};

/// Every backend name, in priority order (the first runnable one is the default).
const std::vector<std::string>& ed25519Backends();

/// The backends this machine can run, in priority order ("openssl" last).
std::vector<std::string> ed25519AvailableBackends();

/// True when `name` is a known backend that this machine can run.
bool ed25519BackendAvailable(std::string_view name);

/// True for every backend that enforces the criterion above: all but "openssl", whose verdicts
/// differ on small-order keys and cofactored-only signatures. Enforcement points (admission,
/// replay) must refuse a backend for which this is false.
bool ed25519BackendEnforcesCriterion(std::string_view name);

/// The default backend: GOVMESH_ED25519_BACKEND when set (an unknown or unrunnable name there is
/// returned as is, so that ed25519Verify reports it), else the first runnable of ed25519Backends().
std::string ed25519DefaultBackend();

/// Verifies each of `in` with `backend`, writing out[i] = 1 (valid) or 0 (invalid).
/// Returns false, writing nothing, when the backend is unknown or not runnable here, or when
/// out.size() != in.size(). A backend fault at run time (e.g. a CUDA error) also returns false;
/// callers then fall back to "single" or deny, never allow.
[[nodiscard]] bool ed25519Verify(std::string_view backend, std::span<const SigInput> in, std::span<uint8_t> out);

/// The reference verdict for one signature (the `single` backend).
[[nodiscard]] bool ed25519VerifyOne(const SigInput& in);

}  // namespace govmesh::crypto
