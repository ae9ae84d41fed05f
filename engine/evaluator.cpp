#include "engine/evaluator.h"

#include <tbb/parallel_for.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "kernels/simd/table_eval.h"
#ifdef GOVMESH_WITH_CUDA
#include "kernels/cuda/table_eval_cuda.h"
#endif


namespace govmesh::engine {

using table::Word;

namespace {
std::atomic<uint64_t> nextGeneration{1};
}

FlatTable::FlatTable(const table::DecisionTable& t) : table(t), generation(nextGeneration++) {
  for (const table::Feature& f : t.features) {
    featureOffset.push_back(rows.size());
    rows.insert(rows.end(), f.rows.begin(), f.rows.end());
  }
  validMask.assign(t.words, ~Word{0});
  if (t.policyCount % 64) validMask.back() = (Word{1} << (t.policyCount % 64)) - 1;
}

kernels::TableView FlatTable::view() const {
  kernels::TableView v;
  v.words = table.words;
  v.featureCount = static_cast<uint32_t>(table.features.size());
  v.rows = rows.data();
  v.featureOffset = featureOffset.data();
  v.permitMask = table.permitMask.data();
  v.forbidMask = table.forbidMask.data();
  v.validMask = validMask.data();
  return v;
}

namespace {

using KernelFn = void (*)(const kernels::TableView&, const uint32_t*, size_t, size_t, size_t, uint8_t*, uint64_t*);

// CPU backends split the batch over TBB workers in chunks; output is preallocated once per
// batch, so no allocation happens per request.
class CpuEvaluator : public Evaluator {
 public:
  CpuEvaluator(std::string name, KernelFn fn) : name_(std::move(name)), fn_(fn) {}
  std::string_view name() const override { return name_; }
  bool evaluate(const FlatTable& t, const uint32_t* codes, size_t n, BatchResult& out) override {
    out.flags.resize(n);
    out.bits.resize(n * 3 * size_t{t.table.words});
    kernels::TableView v = t.view();
    if (n < 2048) {
      fn_(v, codes, n, 0, n, out.flags.data(), out.bits.data());
      return true;
    }
    tbb::parallel_for(tbb::blocked_range<size_t>(0, n, 1024), [&](const tbb::blocked_range<size_t>& r) {
      fn_(v, codes, n, r.begin(), r.end(), out.flags.data(), out.bits.data());
    });
    return true;
  }

 private:
  std::string name_;
  KernelFn fn_;
};

#ifdef GOVMESH_WITH_CUDA
// The GPU backend keeps the last table it saw resident on the device (keyed by the table's
// generation number, so a new table at a reused address is still uploaded).
class CudaEvaluator : public Evaluator {
 public:
  std::string_view name() const override { return "cuda"; }
  bool evaluate(const FlatTable& t, const uint32_t* codes, size_t n, BatchResult& out) override {
    if (uploaded_ != t.generation) {
      if (!runner_.upload(t.view(), t.rows.size())) return false;
      uploaded_ = t.generation;
    }
    out.flags.resize(n);
    out.bits.resize(n * 3 * size_t{t.table.words});
    return runner_.run(codes, n, out.flags.data(), out.bits.data());
  }

 private:
  kernels::CudaTableRunner runner_;
  uint64_t uploaded_ = 0;
};

std::unique_ptr<Evaluator> makeCudaEvaluator() { return std::make_unique<CudaEvaluator>(); }
#endif

}  // namespace

std::vector<BackendInfo> listBackends() {
  std::vector<BackendInfo> out;
#ifdef GOVMESH_WITH_CUDA
  bool gpu = kernels::cudaDeviceCount() > 0;
  out.push_back({"cuda", gpu, gpu ? "" : "no CUDA device"});
#else
  out.push_back({"cuda", false, "built without CUDA"});
#endif
  out.push_back({"avx512", kernels::cpuHasAvx512(), kernels::cpuHasAvx512() ? "" : "CPU lacks AVX-512 F/CD/DQ/BW"});
  out.push_back({"avx2", kernels::cpuHasAvx2(), kernels::cpuHasAvx2() ? "" : "CPU lacks AVX2"});
  out.push_back({"scalar", true, ""});
  return out;
}

std::unique_ptr<Evaluator> makeEvaluator(std::string_view name) {
  for (const BackendInfo& b : listBackends()) {
    if (b.name != name) continue;
    if (!b.available) throw std::runtime_error("backend `" + b.name + "` cannot run here: " + b.why);
    if (name == "scalar") return std::make_unique<CpuEvaluator>("scalar", kernels::evalTableScalar);
    if (name == "avx2") return std::make_unique<CpuEvaluator>("avx2", kernels::evalTableAvx2);
    if (name == "avx512") return std::make_unique<CpuEvaluator>("avx512", kernels::evalTableAvx512);
#ifdef GOVMESH_WITH_CUDA
    if (name == "cuda") return makeCudaEvaluator();
#endif
  }
  throw std::invalid_argument("unknown backend `" + std::string(name) + "` (known: cuda, avx512, avx2, scalar)");
}

std::unique_ptr<Evaluator> bestEvaluator(bool allowGpu) {
  if (const char* forced = std::getenv("GOVMESH_BACKEND"); forced && *forced) return makeEvaluator(forced);
  for (const BackendInfo& b : listBackends()) {
    if (!b.available || (b.name == "cuda" && !allowGpu)) continue;
    return makeEvaluator(b.name);
  }
  return makeEvaluator("scalar");
}

std::string cpuFeatures() {
  std::string s;
  if (kernels::cpuHasAvx512()) s += "avx512f avx512cd avx512dq avx512bw ";
  if (kernels::cpuHasAvx2()) s += "avx2 ";
  return s.empty() ? "none" : s.substr(0, s.size() - 1);
}

void finishResponses(const table::DecisionTable& t, const std::vector<cedar::Request>& requests, const BatchResult& r,
                     std::vector<cedar::Response>& out) {
  static_assert(int{kernels::kFlagPermitSat} == int{table::kBatchPermitSat} && int{kernels::kFlagForbidSat} == int{table::kBatchForbidSat} &&
                    int{kernels::kFlagError} == int{table::kBatchError} && int{kernels::kFlagAmbiguous} == int{table::kBatchAmbiguous},
                "kernel flags and table flags must agree");
  table::finishBatch(t, requests, r.flags.data(), r.bits.data(), out);
}

std::vector<cedar::Response> authorizeBatch(const FlatTable& t, Evaluator& ev, const std::vector<cedar::Request>& requests) {
  std::vector<uint32_t> codes;
  table::featurize(t.table, requests, codes);
  BatchResult r;
  if (!ev.evaluate(t, codes.data(), requests.size(), r)) {
    // A failed backend (a GPU fault) falls back to the always-available scalar reference.
    auto scalar = makeEvaluator("scalar");
    if (!scalar->evaluate(t, codes.data(), requests.size(), r)) throw std::runtime_error("scalar backend failed");
  }
  std::vector<cedar::Response> out;
  finishResponses(t.table, requests, r, out);
  return out;
}

}  // namespace govmesh::engine
