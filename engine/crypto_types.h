// Fixed-size byte types shared by govmesh's crypto code (OpenSSL wrappers and our own verifiers).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace govmesh::crypto {

/// A raw Ed25519 public key (RFC 8032 encoding).
using Ed25519PublicKey = std::array<uint8_t, 32>;
/// A raw Ed25519 signature (R ‖ S).
using Ed25519Signature = std::array<uint8_t, 64>;
/// A SHA-256 digest.
using Sha256Digest = std::array<uint8_t, 32>;

/// A read-only view of caller-owned bytes.
struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

}  // namespace govmesh::crypto
