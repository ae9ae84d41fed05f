// SHA-256 over many messages at once, on several backends that must give the same digest:
//   shani    single-buffer, x86 SHA extensions (one message at a time)
//   avx512   multi-buffer, 16 messages per vector
//   avx2     multi-buffer, 8 messages per vector
//   scalar   portable code (the reference; the same __host__ __device__ code the GPU runs)
//   cuda     one message per GPU thread (needs a CUDA device)
//   openssl  OpenSSL's EVP_Digest, for comparison
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/crypto_types.h"

namespace govmesh::crypto {

/// Every backend name, in priority order for batches of short messages.
const std::vector<std::string>& sha256Backends();

/// The backends this machine can run, in priority order.
std::vector<std::string> sha256AvailableBackends();

/// True when `name` is a known backend that this machine can run.
bool sha256BackendAvailable(std::string_view name);

/// Hashes each of `msgs` with `backend` into out[i]. Returns false, writing nothing, when the
/// backend is unknown or not runnable here, when out.size() != msgs.size(), or on a backend fault.
[[nodiscard]] bool sha256Batch(std::string_view backend, std::span<const ByteView> msgs, std::span<Sha256Digest> out);

/// SHA-256 of one message with the fastest single-buffer code this CPU has (SHA-NI or scalar).
Sha256Digest sha256One(ByteView msg);

}  // namespace govmesh::crypto
