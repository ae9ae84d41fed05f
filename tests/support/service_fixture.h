// What the pipeline, service, lineage and console tests share: a fixed clock origin, the test
// keys (an authority, a stranger, the workload "alice", a node key), a small policy world in
// which alice deploys, signed bundles of it, alice's signed requests with process-unique nonces,
// and a temporary directory. Header-only: each test executable includes it where it needs it.
#pragma once

#include <stdlib.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "compiler/value.h"
#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"
#include "engine/request.h"

namespace govmesh::testing {

inline constexpr int64_t kSecond = 1'000'000'000;
inline constexpr int64_t kStart = int64_t{1'800'000'000} * kSecond;  ///< the tests' "now", Unix ns
inline constexpr int64_t kStartMs = kStart / 1'000'000;
inline constexpr int64_t kHourMs = 3600 * 1000;

/// The policy authority every test node trusts.
inline const crypto::Ed25519KeyPair& authorityKey() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}
/// A key nobody trusts.
inline const crypto::Ed25519KeyPair& strangerKey() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}
/// The workload "alice"'s signing key (keyId "alice" in every bundle below).
inline const crypto::Ed25519KeyPair& aliceKey() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}
/// The node key that signs lineage checkpoints.
inline const crypto::Ed25519KeyPair& nodeKey() {
  static const crypto::Ed25519KeyPair k = crypto::generateEd25519();
  return k;
}

inline cedar::EntityUid uid(std::string type, std::string id) { return {std::move(type), std::move(id)}; }

/// Sources of `policies` with alice's key registered for Workload::"alice".
inline engine::BundleSources aliceSources(std::string policies) {
  engine::BundleSources src;
  src.policyText = std::move(policies);
  src.policyFileName = "p.cedar";
  src.keys.push_back({"alice", aliceKey().publicKey, uid("Workload", "alice"), std::nullopt});
  return src;
}

/// A compiled bundle of `policies` (alice registered), issued at `issuedAtMs`.
inline engine::Bundle aliceBundle(std::string policies, uint64_t revision, int64_t issuedAtMs = kStartMs - 1000,
                                  int64_t freshUntilMs = kStartMs + kHourMs) {
  return engine::compileBundle(aliceSources(std::move(policies)), revision, issuedAtMs, freshUntilMs);
}

/// The signed bundle file (the bytes `govmesh sign` writes) of aliceBundle(...), signed by `signer`.
inline std::string signedAliceBundle(std::string policies, uint64_t revision, int64_t freshUntilMs = kStartMs + kHourMs,
                                     const crypto::Ed25519KeyPair& signer = authorityKey()) {
  const engine::Bundle b = aliceBundle(std::move(policies), revision, kStartMs - 1000, freshUntilMs);
  return engine::signBundle(engine::writeUnsignedBundle(b), signer.privatePem, "b.bundle", "a.key");
}

/// A nonce never returned before in this process.
inline std::array<uint8_t, engine::kNonceBytes> freshNonce() {
  static std::atomic<uint64_t> counter{1};
  std::array<uint8_t, engine::kNonceBytes> nonce{};
  const uint64_t n = counter.fetch_add(1);
  for (size_t i = 0; i < 8; ++i) nonce[i] = static_cast<uint8_t>(n >> (8 * i));
  return nonce;
}

/// A request by alice on Service::"payments" at `timestampNs`, with a fresh nonce, signed by
/// alice unless `sign` is false.
inline engine::SignedRequest aliceRequest(const std::string& action, cedar::Value context, int64_t timestampNs, bool sign = true) {
  engine::SignedRequest r;
  r.principal = uid("Workload", "alice");
  r.action = uid("Action", action);
  r.resource = uid("Service", "payments");
  r.context = std::move(context);
  r.keyId = "alice";
  r.timestampNs = timestampNs;
  r.nonce = freshNonce();
  if (sign) engine::signRequest(r, aliceKey().privatePem);
  return r;
}

/// {zone: "eu-1"}, and the same with trust "degraded".
inline cedar::Value euContext() { return cedar::Value::record({{"zone", cedar::Value::string("eu-1")}}); }
inline cedar::Value degradedContext() {
  return cedar::Value::record({{"zone", cedar::Value::string("eu-1")}, {"trust", cedar::Value::string("degraded")}});
}

/// A fresh directory under the system temp dir, removed with everything in it at the end.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& stem = "govmesh-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (stem + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create a temporary directory " + tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// The lineage log directory inside it.
  std::string log() const { return (path / "lineage").string(); }
};

}  // namespace govmesh::testing
