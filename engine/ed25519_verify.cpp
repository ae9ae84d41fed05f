// Backend selection and the per-backend loops of Ed25519 verification (engine/ed25519_verify.h).
//
// Priority order, fastest first on one core of the machines we run: avx512 (eight signatures per
// IFMA vector, no shared work), batch (one MSM per batch; cheapest when keys repeat), single
// (the reference, always runnable). cuda comes after single so that it is used only when asked
// for by name: a GPU pays off only for large batches, and its availability alone should not
// move small requests off the CPU. openssl is last: it is for comparison and has another
// criterion.
#include "engine/ed25519_verify.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include <tbb/parallel_for.h>

#include "engine/ed25519_batch.h"
#include "kernels/cuda/ed25519_core.h"
#include "kernels/simd/ed25519_ifma.h"

#ifdef GOVMESH_WITH_CUDA
#include "kernels/cuda/cuda_runtime_probe.h"
#include "kernels/cuda/ed25519_cuda.h"
#endif

namespace govmesh::crypto {

namespace {

// Inputs at least this long are cut into chunks of kParallelChunk verified on TBB worker
// threads; below it a call stays on the calling thread (per-core figures are what the benchmarks
// report, and a request batch is usually far smaller).
constexpr size_t kParallelFrom = 4096;
constexpr size_t kParallelChunk = 1024;

bool cudaAvailable() {
#ifdef GOVMESH_WITH_CUDA
  return kernels::cudaDeviceCount() > 0;
#else
  return false;
#endif
}

/// Runs body(begin, end) over [0, n), on TBB threads when n is large.
template <class Body>
void forChunks(size_t n, const Body& body) {
  if (n < kParallelFrom) {
    body(size_t{0}, n);
    return;
  }
  const size_t chunks = (n + kParallelChunk - 1) / kParallelChunk;
  tbb::parallel_for(size_t{0}, chunks, [&](size_t c) {
    const size_t begin = c * kParallelChunk;
    body(begin, std::min(n, begin + kParallelChunk));
  });
}

void verifySingle(std::span<const SigInput> in, std::span<uint8_t> out) {
  forChunks(in.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) out[i] = ed25519VerifyOne(in[i]) ? 1 : 0;
  });
}

void verifyAvx512(std::span<const SigInput> in, std::span<uint8_t> out) {
  forChunks(in.size(), [&](size_t begin, size_t end) {
    // Only signatures that pass the cheap checks go to the vector lanes; the rest stay 0.
    std::vector<kernels::Ed25519Prepared> prepared;
    std::vector<size_t> index;
    prepared.reserve(end - begin);
    index.reserve(end - begin);
    for (size_t i = begin; i < end; ++i) {
      out[i] = 0;
      kernels::Ed25519Prepared p;
      const SigInput& s = in[i];
      if (kernels::ed25519Prepare(s.pk.data, s.pk.size, s.sig.data, s.sig.size, s.msg.data, s.msg.size, p)) {
        prepared.push_back(p);
        index.push_back(i);
      }
    }
    std::vector<uint8_t> verdicts(prepared.size());
    simd::ed25519VerifyPreparedIfma(prepared.data(), prepared.size(), verdicts.data());
    for (size_t j = 0; j < index.size(); ++j) out[index[j]] = verdicts[j] ? 1 : 0;
  });
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

bool opensslVerifyOne(const SigInput& s) {
  if (s.pk.size != 32 || s.sig.size != 64) return false;
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, s.pk.data, 32));
  if (!key) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
  static const uint8_t kEmpty = 0;  // EVP wants a non-null pointer even for an empty message
  const uint8_t* msg = s.msg.size == 0 ? &kEmpty : s.msg.data;
  return EVP_DigestVerify(ctx.get(), s.sig.data, 64, msg, s.msg.size) == 1;
}

void verifyOpenssl(std::span<const SigInput> in, std::span<uint8_t> out) {
  forChunks(in.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) out[i] = opensslVerifyOne(in[i]) ? 1 : 0;
  });
}

#ifdef GOVMESH_WITH_CUDA
bool verifyCuda(std::span<const SigInput> in, std::span<uint8_t> out) {
  std::vector<kernels::CudaSigInput> cudaIn(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    cudaIn[i] = kernels::CudaSigInput{in[i].pk.data, in[i].pk.size, in[i].sig.data,
                                      in[i].sig.size, in[i].msg.data, in[i].msg.size};
  }
  std::vector<uint8_t> verdicts(in.size());
  if (!kernels::ed25519VerifyCuda(cudaIn.data(), cudaIn.size(), verdicts.data())) return false;
  std::copy(verdicts.begin(), verdicts.end(), out.begin());
  return true;
}
#endif

}  // namespace

const std::vector<std::string>& ed25519Backends() {
  static const std::vector<std::string> names = {"avx512", "batch", "single", "cuda", "openssl"};
  return names;
}

bool ed25519BackendAvailable(std::string_view name) {
  if (name == "avx512") return simd::cpuHasIfma();
  if (name == "batch" || name == "single" || name == "openssl") return true;
  if (name == "cuda") return cudaAvailable();
  return false;
}

std::vector<std::string> ed25519AvailableBackends() {
  std::vector<std::string> names;
  for (const std::string& name : ed25519Backends()) {
    if (ed25519BackendAvailable(name)) names.push_back(name);
  }
  return names;
}

bool ed25519BackendEnforcesCriterion(std::string_view name) { return name != "openssl"; }

std::string ed25519DefaultBackend() {
  if (const char* forced = std::getenv("GOVMESH_ED25519_BACKEND"); forced && *forced) return forced;
  for (const std::string& name : ed25519Backends()) {
    if (ed25519BackendAvailable(name)) return name;
  }
  return "single";  // unreachable: single is always available
}

bool ed25519Verify(std::string_view backend, std::span<const SigInput> in, std::span<uint8_t> out) {
  if (out.size() != in.size() || !ed25519BackendAvailable(backend)) return false;
  if (backend == "avx512") {
    verifyAvx512(in, out);
  } else if (backend == "batch") {
    ed25519VerifyBatch(in, out);
  } else if (backend == "single") {
    verifySingle(in, out);
  } else if (backend == "openssl") {
    verifyOpenssl(in, out);
  } else {
#ifdef GOVMESH_WITH_CUDA
    // Results go to a scratch buffer first: on a CUDA fault `out` stays untouched.
    return verifyCuda(in, out);
#else
    return false;
#endif
  }
  return true;
}

bool ed25519VerifyOne(const SigInput& in) {
  return kernels::ed25519VerifySingle(in.pk.data, in.pk.size, in.sig.data, in.sig.size, in.msg.data, in.msg.size);
}

}  // namespace govmesh::crypto
