// Small wrappers over OpenSSL 3's EVP API for what policy bundles need: Ed25519 keys in PEM
// files, signatures, SHA-256, and the encodings keys travel in (hex, base64).
//
// Failures on bad input (a PEM that is not an Ed25519 key, a malformed base64 string) throw
// cedar::InputError naming `where`; a failed signature check is a `false`, not an exception.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/crypto_types.h"

namespace govmesh::crypto {

/// A freshly generated key pair as PEM text: PKCS#8 private key and SubjectPublicKeyInfo.
struct Ed25519KeyPair {
  std::string privatePem;
  std::string publicPem;
  Ed25519PublicKey publicKey{};
};

/// Generates an Ed25519 key pair from the system's CSPRNG.
Ed25519KeyPair generateEd25519();

/// The raw public key in a PEM text holding an Ed25519 public key or private key (the public
/// half is derived). Throws InputError naming `where` when it holds anything else.
Ed25519PublicKey publicKeyFromPem(std::string_view pem, const std::string& where);

/// Signs `message` with the Ed25519 private key in `privatePem` (PKCS#8 or traditional PEM).
/// Throws InputError naming `where` when the PEM is not an Ed25519 private key.
Ed25519Signature signEd25519(std::string_view privatePem, std::string_view message, const std::string& where);

/// True when `signature` is a valid Ed25519 signature of `message` under `key`.
bool verifyEd25519(const Ed25519PublicKey& key, std::string_view message, std::string_view signature);

/// SHA-256 of `bytes`.
Sha256Digest sha256(std::string_view bytes);

/// Lower-case hex of `bytes`.
std::string toHex(std::string_view bytes);
/// Lower-case hex of `bytes` (a digest, a key, a hash: any byte array).
inline std::string toHex(std::span<const uint8_t> bytes) {
  return toHex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}
/// Standard base64 (RFC 4648, with padding) of `bytes`.
std::string toBase64(std::string_view bytes);
/// Decodes standard base64 (padding required, no whitespace); nullopt when malformed.
std::optional<std::string> fromBase64(std::string_view text);

/// A key's fingerprint as OpenSSH prints them: "SHA256:" + unpadded base64 of SHA-256(key).
std::string fingerprint(const Ed25519PublicKey& key);

/// Views a fixed-size byte array as a string_view (for hashing and comparing).
template <size_t N>
std::string_view bytesView(const std::array<uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

}  // namespace govmesh::crypto
