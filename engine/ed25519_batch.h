// The `batch` backend of engine/ed25519_verify.h: random linear combination of the signatures'
// equations checked by one multi-scalar multiplication, bad signatures pinpointed by bisection.
// Private to the engine (and its tests); callers use ed25519Verify("batch", ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/ed25519_msm.h"
#include "engine/ed25519_verify.h"

namespace govmesh::crypto {

/// Signatures per batch equation; longer inputs are cut into chunks of this size (and chunks run
/// on TBB worker threads once there are several).
inline constexpr size_t kEd25519BatchChunk = 1024;

/// out[i] = the `single` verdict on in[i] (a batch that holds a bad signature passes with
/// probability about 2^-128 over the coefficients, then every signature of it is checked).
/// `method` forces the MSM algorithm (tests); out.size() must equal in.size().
void ed25519VerifyBatch(std::span<const SigInput> in, std::span<uint8_t> out, MsmMethod method = MsmMethod::kAuto);

/// What the last ed25519VerifyBatch call on this thread did, for tests (complete only for calls of
/// at most kEd25519BatchChunk signatures: longer ones count only chunks run on this thread).
struct Ed25519BatchStats {
  size_t msms = 0;     ///< multi-scalar multiplications run (1 when the whole batch passed)
  size_t singles = 0;  ///< signatures checked one by one after a failed batch
};

/// The statistics of this thread's last ed25519VerifyBatch call.
Ed25519BatchStats ed25519LastBatchStats();

/// Empties the cache of decoded public keys (tests measure cold and warm runs).
void ed25519ClearKeyCache();

}  // namespace govmesh::crypto
