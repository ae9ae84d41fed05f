// SHA-256 backend selection and dispatch: each backend is listed once, in priority order, and
// every one of them must give the scalar reference's digest.
#include "engine/sha256_batch.h"

#include <openssl/evp.h>

#include <cstring>

#include "kernels/cuda/sha256_core.h"
#include "kernels/simd/sha256_simd.h"
#ifdef GOVMESH_WITH_CUDA
#include "kernels/cuda/cuda_runtime_probe.h"
#include "kernels/cuda/sha256_cuda.h"
#endif

namespace govmesh::crypto {

namespace {

static_assert(sizeof(Sha256Digest) == 32, "digests are written as a packed array of 32-byte blocks");

// Measured on one core (Xeon with AVX-512 and SHA-NI, batches of 1,024): avx512 is 2.2-2.5x
// shani on 64- to 256-byte messages; avx2 matches shani at 64-128 bytes and falls behind on
// longer ones, where SHA-NI's per-byte speed tells; scalar is far behind. The GPU pays a PCIe
// round trip per batch and OpenSSL is only for comparison, so neither is ever the default:
// scalar, always runnable, comes before them.
const std::vector<std::string> kBackends = {"avx512", "shani", "avx2", "scalar", "cuda", "openssl"};

bool cudaUsable() {
#ifdef GOVMESH_WITH_CUDA
  static const bool usable = kernels::cudaDeviceCount() > 0;
  return usable;
#else
  return false;
#endif
}

// Pointer and length arrays for the kernels' C interface, reused per thread so that a batch
// does not allocate once the thread has seen one of its size.
struct Scratch {
  std::vector<const uint8_t*> data;
  std::vector<size_t> lens;
};

Scratch& splitBatch(std::span<const ByteView> msgs) {
  thread_local Scratch s;
  s.data.resize(msgs.size());
  s.lens.resize(msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    s.data[i] = msgs[i].data;
    s.lens[i] = msgs[i].size;
  }
  return s;
}

bool opensslBatch(std::span<const ByteView> msgs, uint8_t* out) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    unsigned int outLen = 0;
    if (EVP_Digest(msgs[i].data, msgs[i].size, out + 32 * i, &outLen, EVP_sha256(), nullptr) != 1 || outLen != 32)
      return false;
  }
  return true;
}

}  // namespace

const std::vector<std::string>& sha256Backends() { return kBackends; }

bool sha256BackendAvailable(std::string_view name) {
  if (name == "avx512") return simd::cpuHasAvx512();
  if (name == "shani") return simd::cpuHasShaNi();
  if (name == "avx2") return simd::cpuHasAvx2();
  if (name == "scalar" || name == "openssl") return true;
  if (name == "cuda") return cudaUsable();
  return false;
}

std::vector<std::string> sha256AvailableBackends() {
  std::vector<std::string> out;
  for (const std::string& name : kBackends)
    if (sha256BackendAvailable(name)) out.push_back(name);
  return out;
}

bool sha256Batch(std::string_view backend, std::span<const ByteView> msgs, std::span<Sha256Digest> out) {
  if (out.size() != msgs.size() || !sha256BackendAvailable(backend)) return false;
  if (msgs.empty()) return true;
  // Sha256Digest is std::array<uint8_t, 32>, so out is n packed 32-byte blocks.
  uint8_t* dst = out.front().data();
  if (backend == "scalar") {
    for (size_t i = 0; i < msgs.size(); ++i) kernels::sha256(msgs[i].data, msgs[i].size, dst + 32 * i);
    return true;
  }
  if (backend == "shani") {
    for (size_t i = 0; i < msgs.size(); ++i) simd::sha256ShaNi(msgs[i].data, msgs[i].size, dst + 32 * i);
    return true;
  }
  if (backend == "avx512" || backend == "avx2") {
    Scratch& s = splitBatch(msgs);
    if (backend == "avx512")
      simd::sha256MultiAvx512(s.data.data(), s.lens.data(), msgs.size(), dst);
    else
      simd::sha256MultiAvx2(s.data.data(), s.lens.data(), msgs.size(), dst);
    return true;
  }
  // The backends that can fail part-way write into a scratch copy first: on failure `out` is
  // left untouched, as the contract says.
  std::vector<uint8_t> tmp(32 * msgs.size());
  bool ok = false;
  if (backend == "openssl") {
    ok = opensslBatch(msgs, tmp.data());
  } else if (backend == "cuda") {
#ifdef GOVMESH_WITH_CUDA
    Scratch& s = splitBatch(msgs);
    ok = kernels::sha256Cuda(s.data.data(), s.lens.data(), msgs.size(), tmp.data());
#endif
  }
  if (ok) std::memcpy(dst, tmp.data(), tmp.size());
  return ok;
}

Sha256Digest sha256One(ByteView msg) {
  static const bool shaNi = simd::cpuHasShaNi();
  Sha256Digest d;
  if (shaNi)
    simd::sha256ShaNi(msg.data, msg.size, d.data());
  else
    kernels::sha256(msg.data, msg.size, d.data());
  return d;
}

}  // namespace govmesh::crypto
