// Shared by the Ed25519 vector, differential and fuzz tests: hex and file reading, OpenSSL as the
// independent signer and verifier, and the byte-level facts about encodings that explain every
// documented difference between our criterion (engine/ed25519_verify.h) and OpenSSL's.
//
// Nothing here calls the code under test except verifyWith(), which only forwards to the public
// API; the classifications below read bytes only, so an expected verdict derived from them does
// not depend on our curve arithmetic.
#pragma once

#include <openssl/bn.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/crypto_types.h"
#include "engine/ed25519_verify.h"
#include "tests/support/hex.h"

namespace govmesh::testing {

/// Lower-case hex of `n` bytes.
inline std::string toHex(const uint8_t* data, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = digits[data[i] >> 4];
    s[2 * i + 1] = digits[data[i] & 15];
  }
  return s;
}

/// The shared crypto test data directory ("../shared/testdata/crypto" from the project root,
/// where ctest runs us), or $GOVMESH_CRYPTO_TESTDATA when set.
inline std::string cryptoTestData(std::string_view relative) {
  const char* env = std::getenv("GOVMESH_CRYPTO_TESTDATA");
  std::string base = env && *env ? env : "../shared/testdata/crypto";
  return base + "/" + std::string(relative);
}

/// The whole file; throws std::runtime_error naming the path when it cannot be read.
inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (run from the project root)");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// One signature check from a vector file, owning its bytes.
struct SigCase {
  std::string label;  ///< where it came from, e.g. "wycheproof tcId 42"
  std::vector<uint8_t> pk;
  std::vector<uint8_t> sig;
  std::vector<uint8_t> msg;

  /// A view for the verifier API (valid while this case lives and is not modified).
  crypto::SigInput input() const {
    return {{pk.data(), pk.size()}, {sig.data(), sig.size()}, {msg.data(), msg.size()}};
  }
};

/// Views of every case, in order.
inline std::vector<crypto::SigInput> inputsOf(const std::vector<SigCase>& cases) {
  std::vector<crypto::SigInput> in;
  in.reserve(cases.size());
  for (const SigCase& c : cases) in.push_back(c.input());
  return in;
}

/// The verdicts of `backend` over `in` in one call, or nullopt when the backend refused the call.
inline std::optional<std::vector<uint8_t>> verifyWith(std::string_view backend, std::span<const crypto::SigInput> in) {
  std::vector<uint8_t> out(in.size(), 0xAA);  // neither 0 nor 1, so an unwritten slot shows
  if (!crypto::ed25519Verify(backend, in, out)) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------------------------------------
// OpenSSL as an independent signer and verifier.

/// Frees an EVP_PKEY.
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
/// Frees an EVP_MD_CTX.
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

/// EVP_DigestVerify's verdict (Ed25519, pure). A key OpenSSL refuses to load, or a key or
/// signature of the wrong length, is a rejection, as it is for us.
inline bool opensslVerify(crypto::ByteView pk, crypto::ByteView sig, crypto::ByteView msg) {
  if (pk.size != 32 || sig.size != 64) return false;
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, pk.data, 32));
  if (!key) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
  static const uint8_t empty = 0;  // OpenSSL wants a non-null pointer even for an empty message
  return EVP_DigestVerify(ctx.get(), sig.data, 64, msg.size ? msg.data : &empty, msg.size) == 1;
}

/// opensslVerify over a SigInput.
inline bool opensslVerify(const crypto::SigInput& in) { return opensslVerify(in.pk, in.sig, in.msg); }

/// An Ed25519 private key held by OpenSSL, made from a 32-byte seed (RFC 8032 private key), so
/// that seeded tests make the same keys every run.
class OpensslSigner {
 public:
  /// Loads the key; throws std::runtime_error when OpenSSL refuses (it never should).
  explicit OpensslSigner(const std::array<uint8_t, 32>& seed)
      : key_(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size())), seed_(seed) {
    size_t n = publicKey_.size();
    if (!key_ || EVP_PKEY_get_raw_public_key(key_.get(), publicKey_.data(), &n) != 1 || n != 32)
      throw std::runtime_error("OpenSSL refused an Ed25519 seed");
  }

  /// The public key A.
  const crypto::Ed25519PublicKey& publicKey() const { return publicKey_; }

  /// The seed (RFC 8032 private key) the key was made from.
  const std::array<uint8_t, 32>& seed() const { return seed_; }

  /// RFC 8032 signature of `msg` (deterministic); throws std::runtime_error on an OpenSSL failure.
  crypto::Ed25519Signature sign(const uint8_t* msg, size_t n) const {
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    crypto::Ed25519Signature sig{};
    size_t len = sig.size();
    static const uint8_t empty = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig.data(), &len, n ? msg : &empty, n) != 1 || len != 64)
      throw std::runtime_error("OpenSSL failed to sign");
    return sig;
  }

 private:
  std::unique_ptr<EVP_PKEY, PkeyFree> key_;
  std::array<uint8_t, 32> seed_{};
  crypto::Ed25519PublicKey publicKey_{};
};

/// A signature by `signer` of `msg` whose R is forced to the 32 bytes `r`: S = k·a mod L with a
/// the key's secret scalar (RFC 8032 §5.1.5: the first half of SHA-512(seed), clamped) and
/// k = SHA-512(r ‖ A ‖ msg) mod L. Then [S]B − R − [k]A = −R, so for a small-order R the
/// cofactored equation holds while the cofactorless one holds only for R = identity: the one way
/// to make signatures that our criterion and OpenSSL's judge differently under an honest key.
/// Throws std::runtime_error on an OpenSSL failure.
inline crypto::Ed25519Signature signWithForcedR(const OpensslSigner& signer, const uint8_t* r, const uint8_t* msg, size_t n) {
  struct BnFree {
    void operator()(BIGNUM* b) const { BN_free(b); }
  };
  struct BnCtxFree {
    void operator()(BN_CTX* c) const { BN_CTX_free(c); }
  };
  using Bn = std::unique_ptr<BIGNUM, BnFree>;
  auto sha512 = [](const std::vector<uint8_t>& bytes) {
    std::array<uint8_t, 64> d{};
    if (EVP_Digest(bytes.data(), bytes.size(), d.data(), nullptr, EVP_sha512(), nullptr) != 1) throw std::runtime_error("SHA-512 failed");
    return d;
  };
  std::array<uint8_t, 64> h = sha512(std::vector<uint8_t>(signer.seed().begin(), signer.seed().end()));
  h[0] &= 248;
  h[31] &= 127;
  h[31] |= 64;
  std::vector<uint8_t> hashed(r, r + 32);
  hashed.insert(hashed.end(), signer.publicKey().begin(), signer.publicKey().end());
  hashed.insert(hashed.end(), msg, msg + n);
  const std::array<uint8_t, 64> kHash = sha512(hashed);

  BIGNUM* lRaw = nullptr;
  if (BN_hex2bn(&lRaw, "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed") <= 0) throw std::runtime_error("BN_hex2bn failed");
  Bn l(lRaw), a(BN_lebin2bn(h.data(), 32, nullptr)), k(BN_lebin2bn(kHash.data(), 64, nullptr)), s(BN_new());
  std::unique_ptr<BN_CTX, BnCtxFree> ctx(BN_CTX_new());
  crypto::Ed25519Signature sig{};
  std::memcpy(sig.data(), r, 32);
  if (!l || !a || !k || !s || !ctx || BN_mod_mul(s.get(), k.get(), a.get(), l.get(), ctx.get()) != 1 ||
      BN_bn2lebinpad(s.get(), sig.data() + 32, 32) != 32)
    throw std::runtime_error("OpenSSL bignum arithmetic failed");
  return sig;
}

/// SHA-256 by OpenSSL (the reference for our SHA-256 backends).
inline crypto::Sha256Digest opensslSha256(crypto::ByteView msg) {
  crypto::Sha256Digest d{};
  static const uint8_t empty = 0;
  if (EVP_Digest(msg.size ? msg.data : &empty, msg.size, d.data(), nullptr, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("OpenSSL failed to hash");
  return d;
}

// ---------------------------------------------------------------------------------------------
// Byte-level facts about point encodings (little-endian y, bit 255 = sign of x).

/// One of the 14 encodings of the 8 small-order points of edwards25519 that fit in 32 bytes:
/// the 8 canonical ones and 6 non-canonical ones (y ≥ p, or x = 0 with the sign bit set).
/// Derived by hand: the small-order points are the identity (0, 1), (0, −1) of order 2,
/// (±√−1, 0) of order 4 and four points of order 8; a y < 19 also has the encoding y + p; a
/// point with x = 0 also has an encoding with the sign bit set.
struct SmallOrderEncoding {
  const char* hex;    ///< the 32 bytes
  const char* point;  ///< which point, and its order
  bool canonical;     ///< y < p and not (x = 0 with the sign bit set)
};

/// The table of SmallOrderEncoding, identity first.
inline const std::vector<SmallOrderEncoding>& smallOrderEncodings() {
  static const std::vector<SmallOrderEncoding> table = {
      {"0100000000000000000000000000000000000000000000000000000000000000", "identity (order 1)", true},
      {"0100000000000000000000000000000000000000000000000000000000000080", "identity, x=0 with sign bit set", false},
      {"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "identity, y=p+1 (y>=p)", false},
      {"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "identity, y=p+1 (y>=p) and x=0 with sign bit set", false},
      {"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "(0,-1) (order 2)", true},
      {"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "(0,-1), x=0 with sign bit set", false},
      {"0000000000000000000000000000000000000000000000000000000000000000", "(+sqrt(-1),0) (order 4)", true},
      {"0000000000000000000000000000000000000000000000000000000000000080", "(-sqrt(-1),0) (order 4)", true},
      {"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "order-4 point, y=p (y>=p)", false},
      {"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", "order-4 point, y=p (y>=p)", false},
      {"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", "order-8 point", true},
      {"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", "order-8 point", true},
      {"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "order-8 point", true},
      {"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "order-8 point", true},
  };
  return table;
}

/// The entry of smallOrderEncodings() that `enc` (32 bytes) equals, or nullptr.
inline const SmallOrderEncoding* smallOrderEncoding(const uint8_t* enc) {
  std::string hex = toHex(enc, 32);
  for (const SmallOrderEncoding& e : smallOrderEncodings())
    if (hex == e.hex) return &e;
  return nullptr;
}

/// True when the 255-bit y of `enc` is ≥ p = 2^255 − 19 (a non-canonical field element).
inline bool encodesYAtLeastP(const uint8_t* enc) {
  // p little-endian is ed ff .. ff 7f, so y ≥ p exactly when bytes 1..30 are ff, byte 31 without
  // the sign bit is 7f and byte 0 is ≥ ed.
  if ((enc[31] & 0x7f) != 0x7f || enc[0] < 0xed) return false;
  for (int i = 1; i < 31; ++i)
    if (enc[i] != 0xff) return false;
  return true;
}

/// True when `enc` has the sign bit set on a y whose x is 0: y ≡ ±1 (mod p), i.e. y ∈ {1, p−1,
/// p+1} among 255-bit values (the curve equation gives x² = (y² − 1)/(dy² + 1) = 0 only there).
inline bool encodesNegativeZeroX(const uint8_t* enc) {
  if ((enc[31] & 0x80) == 0) return false;
  std::array<uint8_t, 32> y;
  std::memcpy(y.data(), enc, 32);
  y[31] &= 0x7f;
  std::string hex = toHex(y.data(), 32);
  return hex == "0100000000000000000000000000000000000000000000000000000000000000" ||
         hex == "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f" ||
         hex == "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
}

/// When our verdict `ours` and OpenSSL's differ on `in`, the documented criterion difference
/// that explains it, or nullopt when none does (a bug in one of the two). Only these are
/// documented (engine/ed25519_verify.h; speccheck results.md, row OpenSSL-3.0):
///   we reject, OpenSSL accepts: A non-canonical (y ≥ p, reduced by OpenSSL), A = "−0" (x = 0
///     with the sign bit set, ignored by OpenSSL), or A of small order (OpenSSL accepts it);
///   we accept, OpenSSL rejects: R a small-order point other than the identity (OpenSSL's
///     equation is cofactorless, so it needs R = [S]B − [k]A exactly).
/// R encodings never explain an OpenSSL accept: OpenSSL compares R's bytes with the canonical
/// encoding of the point it computes. Mixed-order R or A accepted only by the cofactored
/// equation cannot be recognised from bytes; the speccheck table lists those cases by hand.
inline std::optional<std::string> explainOpensslDifference(const crypto::SigInput& in, bool ours, bool openssl) {
  if (ours == openssl) return std::string("no difference");
  if (in.pk.size != 32 || in.sig.size != 64) return std::nullopt;  // both must reject
  if (!ours) {
    if (encodesYAtLeastP(in.pk.data)) return std::string("A is non-canonical (y >= p): OpenSSL reduces it, we reject");
    if (encodesNegativeZeroX(in.pk.data)) return std::string("A has x = 0 with the sign bit set: OpenSSL ignores the bit, we reject");
    if (smallOrderEncoding(in.pk.data)) return std::string("A has small order: OpenSSL accepts it, we reject");
    return std::nullopt;
  }
  const SmallOrderEncoding* r = smallOrderEncoding(in.sig.data);
  if (r && r->canonical && r != &smallOrderEncodings()[0])
    return std::string("R is a small-order point other than the identity: the cofactored equation holds, OpenSSL's cofactorless one fails");
  return std::nullopt;
}

}  // namespace govmesh::testing
