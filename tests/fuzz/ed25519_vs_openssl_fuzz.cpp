// libFuzzer target: our Ed25519 verifier on every CPU backend against the reference entry point
// (ed25519VerifyOne), and the reference against OpenSSL. Aborts (a crash for libFuzzer) when a
// backend's verdict differs from ed25519VerifyOne's, or when ed25519VerifyOne differs from
// OpenSSL's EVP_DigestVerify in a way no documented criterion difference explains
// (tests/support/crypto_vectors.h, explainOpensslDifference).
//
// Input format. The low two bits of the first byte pick the mode:
//   0  raw: the next 32 bytes are A, the 64 after them R ‖ S, the rest the message (a short
//      input gives a short key or signature, which must be rejected without reading past it);
//   1  raw with lengths: byte 1 mod 48 is A's length, byte 2 mod 80 the signature's, then A,
//      the signature and the message;
//   2, 3  mutation: byte 1 picks one of four fixed keys, byte 2 mod 8 is a number n of edits,
//      then n edits of two bytes (where, value), then the message. OpenSSL signs the message and
//      each edit changes the honest (A, R ‖ S): where < 96 XORs `value` into that byte of
//      A ‖ R ‖ S; 96..109 replaces R and 110..123 replaces A with a small-order encoding (the
//      14 of crypto_vectors.h); 124 adds L to S; 125 adds value·2^248 to S; 126 re-signs with R
//      forced to small-order encoding number value mod 14 (signWithForcedR: the cofactored
//      equation holds, the cofactorless one only for the identity); others do nothing.
//      Explores the edges (small order, non-canonical encodings, S ≥ L) that random bytes miss.
// Each input is verified in a batch of three, {input, honest signature, input}, so the batch
// paths must pinpoint a bad member next to a good one.
//
// Build and run (clang only): configure with -DGOVMESH_FUZZ=ON (see README.md, "Fuzzing"), then
//   build/tests/govmesh_fuzz_ed25519_vs_openssl -max_total_time=600 tests/fuzz/corpus_ed25519
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/ed25519_verify.h"
#include "tests/support/crypto_vectors.h"

using govmesh::crypto::SigInput;
using namespace govmesh::testing;

namespace {

/// The fixed keys of mutation mode and the honest member of every batch.
struct Fixture {
  std::vector<std::unique_ptr<OpensslSigner>> keys;
  std::array<uint8_t, 64> honestSig{};
  std::vector<uint8_t> honestMsg = {'g', 'o', 'v', 'm', 'e', 's', 'h'};
  std::vector<std::string> backends;  // every available CPU backend ("openssl" and "cuda" left out)

  Fixture() {
    for (uint8_t k = 0; k < 4; ++k) {
      std::array<uint8_t, 32> seed{};
      for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<uint8_t>(k * 64 + i * 7 + 1);
      keys.push_back(std::make_unique<OpensslSigner>(seed));
    }
    honestSig = keys[0]->sign(honestMsg.data(), honestMsg.size());
    for (const std::string& b : govmesh::crypto::ed25519AvailableBackends())
      if (b != "openssl" && b != "cuda") backends.push_back(b);
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

[[noreturn]] void die(const char* what, const std::string& backend, const SigInput& in, int got, int want) {
  std::fprintf(stderr, "ed25519 fuzz: %s (%s gave %d, expected %d)\n  pk=%s\n  sig=%s\n  msg=%s\n", what, backend.c_str(), got, want,
               toHex(in.pk.data, in.pk.size).c_str(), toHex(in.sig.data, in.sig.size).c_str(), toHex(in.msg.data, in.msg.size).c_str());
  std::abort();
}

/// Adds the 32-byte little-endian `addend` to S (bytes 32..63 of `sig`), dropping the carry out.
void addToS(std::vector<uint8_t>& sig, const std::array<uint8_t, 32>& addend) {
  unsigned carry = 0;
  for (size_t i = 0; i < 32; ++i) {
    carry += sig[32 + i] + addend[i];
    sig[32 + i] = static_cast<uint8_t>(carry);
    carry >>= 8;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Fixture& fx = fixture();
  const uint8_t mode = data[0] & 3;
  size_t at = 1;
  auto take = [&](size_t n) {
    n = std::min(n, size - at);
    std::vector<uint8_t> v(data + at, data + at + n);
    at += n;
    return v;
  };
  std::vector<uint8_t> pk, sig, msg;
  if (mode == 0) {
    pk = take(32);
    sig = take(64);
    msg = take(size);
  } else if (mode == 1) {
    if (size < 3) return 0;
    const size_t pkLen = data[1] % 48, sigLen = data[2] % 80;
    at = 3;
    pk = take(pkLen);
    sig = take(sigLen);
    msg = take(size);
  } else {
    if (size < 3) return 0;
    const OpensslSigner& key = *fx.keys[data[1] % 4];
    const size_t edits = data[2] % 8;
    at = 3;
    std::vector<uint8_t> ops = take(2 * edits);
    msg = take(size);
    const auto honest = key.sign(msg.data(), msg.size());
    pk.assign(key.publicKey().begin(), key.publicKey().end());
    sig.assign(honest.begin(), honest.end());
    static const std::array<uint8_t, 32> kL = [] {
      std::array<uint8_t, 32> l{};
      auto v = fromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");  // L, little-endian
      std::copy(v.begin(), v.end(), l.begin());
      return l;
    }();
    const auto& small = smallOrderEncodings();
    for (size_t e = 0; e + 1 < ops.size(); e += 2) {
      const uint8_t where = ops[e], value = ops[e + 1];
      if (where < 32) {
        pk[where] ^= value;
      } else if (where < 96) {
        sig[where - 32] ^= value;
      } else if (where < 96 + small.size()) {
        auto r = fromHex(small[where - 96].hex);
        std::copy(r.begin(), r.end(), sig.begin());
      } else if (where < 96 + 2 * small.size()) {
        pk = fromHex(small[where - 96 - small.size()].hex);
      } else if (where == 124) {
        addToS(sig, kL);
      } else if (where == 126) {
        const auto forced = signWithForcedR(key, fromHex(small[value % small.size()].hex).data(), msg.data(), msg.size());
        sig.assign(forced.begin(), forced.end());
      } else if (where == 125) {
        std::array<uint8_t, 32> high{};
        high[31] = value;
        addToS(sig, high);
      }
    }
  }

  const SigInput in{{pk.data(), pk.size()}, {sig.data(), sig.size()}, {msg.data(), msg.size()}};
  const SigInput honest{{fx.keys[0]->publicKey().data(), 32}, {fx.honestSig.data(), 64}, {fx.honestMsg.data(), fx.honestMsg.size()}};
  const bool reference = govmesh::crypto::ed25519VerifyOne(in);

  const std::array<SigInput, 3> batch = {in, honest, in};
  for (const std::string& backend : fx.backends) {
    std::array<uint8_t, 3> out = {0xAA, 0xAA, 0xAA};
    if (!govmesh::crypto::ed25519Verify(backend, batch, out)) die("backend refused a batch of 3", backend, in, -1, reference);
    if (out[1] != 1) die("honest batch member rejected", backend, honest, out[1], 1);
    if (out[0] != reference || out[2] != reference) die("backend differs from ed25519VerifyOne", backend, in, out[0] != reference ? out[0] : out[2], reference);
  }

  const bool openssl = opensslVerify(in);
  if (openssl != reference && !explainOpensslDifference(in, reference, openssl))
    die("ed25519VerifyOne differs from OpenSSL and no documented criterion difference explains it", "ed25519VerifyOne", in, reference, openssl);
  return 0;
}
