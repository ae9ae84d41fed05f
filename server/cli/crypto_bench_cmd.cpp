// `govmesh bench crypto`: Ed25519 verification and SHA-256 throughput of each of our backends
// against OpenSSL, all measured in one run on one thread, one JSON object per line. Every
// measured call's output is checked too (all signatures valid, digests equal to OpenSSL's), so a
// fast but wrong backend shows "ok": false instead of a good number.
#include <openssl/evp.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ed25519_verify.h"
#include "engine/sha256_batch.h"
#include "server/cli/commands.h"
#ifdef GOVMESH_WITH_CUDA
#include "kernels/cuda/cuda_runtime_probe.h"
#endif

namespace govmesh::cli {

// Ordered, so that each line reads op, impl, size, rate, ratio first.
using Row = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMsgBytes = 100;  // a signed request is about this long
constexpr size_t kShaBatch = 1024;
const std::vector<size_t> kVerifyBatches = {1, 16, 64, 256, 1024};
// A GPU only reaches its rate with tens of thousands of signatures in flight; these sizes are
// measured for the cuda backend alone, on top of the common ones.
const std::vector<size_t> kCudaExtraBatches = {16384, 262144};
const std::vector<size_t> kShaBytes = {64, 128, 256};

struct CryptoBenchArgs {
  double seconds = 0.5;
  int keys = 16;
  uint64_t seed = 42;
};

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Items per second by two clocks. CPU backends are rated by this thread's CPU time: on a shared
// machine, wall time counts whatever else ran on the core, and since the measurements of one run
// happen at different moments, their ratios would measure the neighbours' load. A GPU backend is
// rated by wall time, since its thread mostly waits.
struct Rate {
  double cpu = 0;
  double wall = 0;
  double of(const std::string& impl) const { return impl == "cuda" ? wall : cpu; }
};

// Runs `step` (which handles `per` items) until `seconds` of wall time pass, after one warm-up
// call.
template <class Fn>
Rate rate(double seconds, size_t per, Fn step) {
  step();
  size_t done = 0;
  auto start = Clock::now();
  double cpuStart = threadCpuSeconds();
  do {
    step();
    done += per;
  } while (since(start) < seconds);
  double cpu = threadCpuSeconds() - cpuStart, wall = since(start);
  return {double(done) / std::max(cpu, 1e-9), double(done) / wall};
}

// The CPU features that decide which crypto code can run, as `/proc/cpuinfo` names them.
std::string cryptoCpuFeatures() {
  std::string s;
  auto add = [&s](bool has, const char* name) {
    if (has) s.append(s.empty() ? "" : " ").append(name);
  };
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("bmi2"), "bmi2");
  add(__builtin_cpu_supports("adx"), "adx");
  add(__builtin_cpu_supports("sha"), "sha_ni");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vl"), "avx512vl");
  add(__builtin_cpu_supports("avx512ifma"), "avx512ifma");
  add(__builtin_cpu_supports("avx512vbmi"), "avx512vbmi");
  return s.empty() ? "none" : s;
}

// What a backend of `op` runs on, for the report: the instruction set of CPU code, the device for
// CUDA.
std::string isaOf(const std::string& op, const std::string& impl) {
  if (impl == "avx512") return op == "sha256" ? "avx512f avx512bw" : "avx512ifma";
  if (impl == "shani") return "sha_ni";
  if (impl == "avx2") return "avx2";
#ifdef GOVMESH_WITH_CUDA
  if (impl == "cuda") return kernels::cudaDeviceDescription();
#endif
  if (impl == "openssl") return "openssl's own dispatch";
  return "scalar";
}

// Signatures made with OpenSSL over random messages from a few keys, as a node sees them
// (workload keys repeat).
struct SignedSet {
  std::vector<EVP_PKEY*> publicKeys;  // parsed once, so OpenSSL's baseline does not pay parsing
  std::vector<std::vector<uint8_t>> pk, msg, sig;
  std::vector<size_t> keyOf;
  ~SignedSet() {
    for (EVP_PKEY* k : publicKeys) EVP_PKEY_free(k);
  }
};

void makeSignatures(SignedSet& set, size_t count, int keys, std::mt19937_64& rng) {
  std::vector<EVP_PKEY*> secret;
  auto fail = [&](const char* what) {
    for (EVP_PKEY* k : secret) EVP_PKEY_free(k);
    throw std::runtime_error(std::string("bench crypto: OpenSSL failed to ") + what);
  };
  for (int i = 0; i < keys; ++i) {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (!k) fail("generate a key");
    secret.push_back(k);
    std::vector<uint8_t> raw(32);
    size_t len = raw.size();
    if (EVP_PKEY_get_raw_public_key(k, raw.data(), &len) != 1 || len != 32) fail("export a public key");
    EVP_PKEY* pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size());
    if (!pub) fail("import a public key");
    set.publicKeys.push_back(pub);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) fail("allocate a context");
  for (size_t i = 0; i < count; ++i) {
    size_t key = i % size_t(keys);
    std::vector<uint8_t> m(kMsgBytes), s(64), p(32);
    for (uint8_t& b : m) b = uint8_t(rng());
    size_t sigLen = s.size(), pkLen = p.size();
    // Without the reset, OpenSSL 3.0 re-initialising a used context keeps signing with the
    // first key it saw (checked: the signatures then fail under their own keys).
    EVP_MD_CTX_reset(ctx);
    bool ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, secret[key]) == 1 &&
              EVP_DigestSign(ctx, s.data(), &sigLen, m.data(), m.size()) == 1 && sigLen == 64 &&
              EVP_PKEY_get_raw_public_key(secret[key], p.data(), &pkLen) == 1;
    if (!ok) {
      EVP_MD_CTX_free(ctx);
      fail("sign");
    }
    set.pk.push_back(std::move(p));
    set.msg.push_back(std::move(m));
    set.sig.push_back(std::move(s));
    set.keyOf.push_back(key);
  }
  EVP_MD_CTX_free(ctx);
  for (EVP_PKEY* k : secret) EVP_PKEY_free(k);
}

// Prints one result line: the measured fields first, in the order given, then `context` (facts
// shared by the run: threads, CPU features, ...).
// A row with "ok": false (wrong verdicts or digests, or a backend fault) is counted in
// `failures`, so that the run exits 1 and a test of the bench catches a wrong backend.
void emit(Row row, const Row& context, int& failures) {
  for (const auto& [key, value] : context.items()) row[key] = value;
  if (!row["ok"].get<bool>()) ++failures;
  std::cout << row.dump() << std::endl;
}

void benchEd25519(const CryptoBenchArgs& a, const Row& common, std::mt19937_64& rng, int& failures) {
  SignedSet set;
  makeSignatures(set, kVerifyBatches.back(), a.keys, rng);
  const size_t pool = set.sig.size();
  std::vector<crypto::SigInput> all(pool);
  for (size_t i = 0; i < pool; ++i) all[i] = {{set.pk[i].data(), 32}, {set.sig[i].data(), 64}, {set.msg[i].data(), set.msg[i].size()}};
  Row context = {{"msg_bytes", kMsgBytes}, {"keys", a.keys}};
  context.update(common);

  // The baseline: EVP_DigestVerify one signature at a time, keys already parsed, one context.
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) throw std::runtime_error("bench crypto: OpenSSL failed to allocate a context");
  size_t next = 0, bad = 0;
  Rate openssl = rate(a.seconds, 1, [&] {
    size_t i = next++ % pool;
    EVP_MD_CTX_reset(ctx);  // as when signing: a reused context would keep its first key
    bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, set.publicKeys[set.keyOf[i]]) == 1 &&
              EVP_DigestVerify(ctx, set.sig[i].data(), 64, set.msg[i].data(), set.msg[i].size()) == 1;
    bad += !ok;
  });
  EVP_MD_CTX_free(ctx);
  const double opensslRate = openssl.cpu;
  emit({{"op", "ed25519_verify"}, {"impl", "openssl"}, {"batch", 1}, {"per_second", opensslRate}, {"ratio_vs_openssl", 1.0},
        {"ok", bad == 0}, {"isa", isaOf("ed25519_verify", "openssl")}, {"clock", "thread_cpu"}, {"per_second_wall", openssl.wall},
        {"api", "EVP_DigestVerify, keys parsed once"}},
       context, failures);

  for (const std::string& impl : crypto::ed25519AvailableBackends()) {
    if (impl == "openssl") continue;  // measured above, straight through EVP
    std::vector<size_t> batches = kVerifyBatches;
    if (impl == "cuda") batches.insert(batches.end(), kCudaExtraBatches.begin(), kCudaExtraBatches.end());
    for (size_t n : batches) {
      // Batches beyond the pool reuse its signatures cyclically (views, no copies).
      std::vector<crypto::SigInput> in(n);
      for (size_t i = 0; i < n; ++i) in[i] = all[i % pool];
      std::vector<uint8_t> out(n);
      bool callsOk = true;
      size_t invalid = 0;
      Rate measured = rate(a.seconds, n, [&] {
        std::fill(out.begin(), out.end(), uint8_t{0});
        callsOk = crypto::ed25519Verify(impl, in, out) && callsOk;
        for (uint8_t v : out) invalid += v != 1;
      });
      const double r = measured.of(impl);
      Row row = {{"op", "ed25519_verify"}, {"impl", impl}, {"batch", n}, {"per_second", r}, {"ratio_vs_openssl", r / opensslRate},
                 {"ok", callsOk && invalid == 0}, {"isa", isaOf("ed25519_verify", impl)},
                 {"clock", impl == "cuda" ? "wall" : "thread_cpu"}, {"per_second_wall", measured.wall}};
      if (!callsOk) row["error"] = "the backend reported a fault";
      emit(row, context, failures);
    }
  }
}

void benchSha256(const CryptoBenchArgs& a, const Row& common, std::mt19937_64& rng, int& failures) {
  // The digest is fetched once: an implicit fetch on every EVP_Digest call would make the
  // baseline slower than OpenSSL can be.
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(EVP_MD_fetch(nullptr, "SHA256", nullptr), &EVP_MD_free);
  if (!md) throw std::runtime_error("bench crypto: OpenSSL failed to fetch SHA256");
  for (size_t bytes : kShaBytes) {
    std::vector<std::vector<uint8_t>> data(kShaBatch, std::vector<uint8_t>(bytes));
    std::vector<crypto::ByteView> msgs(kShaBatch);
    for (size_t i = 0; i < kShaBatch; ++i) {
      for (uint8_t& b : data[i]) b = uint8_t(rng());
      msgs[i] = {data[i].data(), bytes};
    }
    std::vector<crypto::Sha256Digest> want(kShaBatch);
    bool opensslOk = true;
    Rate openssl = rate(a.seconds, kShaBatch, [&] {
      for (size_t i = 0; i < kShaBatch; ++i)
        opensslOk = EVP_Digest(msgs[i].data, msgs[i].size, want[i].data(), nullptr, md.get(), nullptr) == 1 && opensslOk;
    });
    const double opensslRate = openssl.cpu;
    emit({{"op", "sha256"}, {"impl", "openssl"}, {"bytes", bytes}, {"batch", kShaBatch}, {"per_second", opensslRate},
          {"ratio_vs_openssl", 1.0}, {"ok", opensslOk}, {"isa", isaOf("sha256", "openssl")}, {"clock", "thread_cpu"},
          {"per_second_wall", openssl.wall}, {"bytes_per_second", opensslRate * double(bytes)}, {"api", "EVP_Digest"}},
         common, failures);

    for (const std::string& impl : crypto::sha256AvailableBackends()) {
      if (impl == "openssl") continue;
      std::vector<crypto::Sha256Digest> out(kShaBatch);
      bool callsOk = true;
      Rate measured = rate(a.seconds, kShaBatch, [&] { callsOk = crypto::sha256Batch(impl, msgs, out) && callsOk; });
      const double r = measured.of(impl);
      Row row = {{"op", "sha256"}, {"impl", impl}, {"bytes", bytes}, {"batch", kShaBatch}, {"per_second", r},
                 {"ratio_vs_openssl", r / opensslRate}, {"ok", callsOk && out == want}, {"isa", isaOf("sha256", impl)},
                 {"clock", impl == "cuda" ? "wall" : "thread_cpu"}, {"per_second_wall", measured.wall},
                 {"bytes_per_second", r * double(bytes)}};
      if (!callsOk) row["error"] = "the backend reported a fault";
      emit(row, common, failures);
    }
  }
}

int runCryptoBench(const CryptoBenchArgs& a) {
  // One thread for every backend, so that ratios compare code, not core counts.
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, 1);
  std::mt19937_64 rng(a.seed);
  Row common = {{"threads", 1}, {"cpu_features", cryptoCpuFeatures()}, {"seconds_per_measurement", a.seconds}};
  int failures = 0;
  benchEd25519(a, common, rng, failures);
  benchSha256(a, common, rng, failures);
  if (failures > 0) {
    std::cerr << "error: " << failures << " measurement(s) gave wrong results (\"ok\": false)\n";
    return 1;
  }
  return 0;
}

}  // namespace

void addBenchCrypto(CLI::App& bench, int& exitCode) {
  auto args = std::make_shared<CryptoBenchArgs>();
  CLI::App* cmd = bench.add_subcommand("crypto", "Ed25519 verification and SHA-256 throughput per backend vs OpenSSL (one thread)");
  cmd->add_option("--seconds", args->seconds, "Seconds per measurement")->check(CLI::Range(0.001, 600.0));
  cmd->add_option("--keys", args->keys, "Distinct signing keys behind the signatures")->check(CLI::Range(1, 1024));
  cmd->add_option("--seed", args->seed, "Seed of the random messages");
  cmd->callback([args, &exitCode] { exitCode = runCryptoBench(*args); });
}

}  // namespace govmesh::cli
