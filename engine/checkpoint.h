// Signed checkpoints of the lineage log, in the C2SP formats the transparency-log ecosystem
// shares (so that standard witnesses and verifiers can read them):
//
//   tlog-checkpoint body   "<origin>\n<tree size, decimal>\n<base64(root hash)>\n"
//   signed-note            body, a blank line, then one line per signature:
//                          "— <key name> <base64(key id ‖ Ed25519 signature)>\n"
//                          (U+2014 em dash, then a space); the signature covers the body
//                          including its final newline
//   key id                 the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key),
//                          0x01 being the Ed25519 signature type
//   verifier key           "<key name>+<hex(key id), 8 digits>+<base64(0x01 ‖ public key)>",
//                          the text form golang.org/x/mod/sumdb/note reads
//
// Signatures are made with OpenSSL and checked with govmesh's own Ed25519 criterion
// (engine/ed25519_verify.h, ARCHITECTURE.md decision 6).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base64.h"
#include "engine/crypto_types.h"
#include "engine/merkle.h"

namespace govmesh::lineage {

/// A checkpoint: the log's origin line, tree size and root hash.
struct Checkpoint {
  std::string origin;   ///< names the log (C2SP: a schema-less URL); no newline
  uint64_t size = 0;    ///< leaves in the tree
  Hash root{};          ///< MTH of the first `size` leaves
};

/// The outcome of reading a signed note or checkpoint.
enum class NoteStatus : uint8_t {
  kOk = 0,             ///< well-formed and signed by the verifier's key
  kMalformed = 1,      ///< not a signed note or not a checkpoint (layout, base64, size, key name)
  kNoSignature = 2,    ///< well-formed, but no signature line carries the verifier's name and key id
  kBadSignature = 3,   ///< the verifier's signature line is there and does not verify
};

/// A short name for a NoteStatus ("ok", "malformed", ...).
std::string_view noteStatusName(NoteStatus s);

/// The checkpoint body: "origin\nsize\nbase64(root)\n".
std::string checkpointBody(const Checkpoint& c);
/// Parses a checkpoint body (extension lines after the root are allowed and ignored); nullopt
/// when the first three lines are not origin, a canonical decimal size and a 32-byte base64 root.
std::optional<Checkpoint> parseCheckpointBody(std::string_view body);

/// The C2SP key id of an Ed25519 key named `name`: the first 4 bytes of
/// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key), big-endian.
uint32_t noteKeyId(std::string_view name, const crypto::Ed25519PublicKey& key);

/// True for a valid key name: non-empty, no whitespace, no '+' (the verifier-key separator).
bool validKeyName(std::string_view name);

/// Who may have signed a note: a key name and its Ed25519 public key.
struct NoteVerifier {
  std::string name;               ///< the key name signature lines carry
  uint32_t keyId = 0;             ///< noteKeyId(name, key)
  crypto::Ed25519PublicKey key{}; ///< the raw public key

  /// A verifier for `key` named `name`; nullopt when the name is not valid.
  static std::optional<NoteVerifier> fromKey(std::string_view name, const crypto::Ed25519PublicKey& key);
  /// Parses a verifier key "name+hex8+base64(0x01‖key)"; nullopt when malformed or when the key
  /// id does not match the name and key.
  static std::optional<NoteVerifier> parse(std::string_view vkey);
  /// The verifier key text (the inverse of parse).
  std::string text() const;
};

/// Signs notes with an Ed25519 private key under a key name. Copies share the key.
class NoteSigner {
 public:
  /// A signer from a 32-byte Ed25519 seed (RFC 8032 private key); nullopt on a bad name.
  static std::optional<NoteSigner> fromSeed(std::string_view name, const std::array<uint8_t, 32>& seed);
  /// A signer from a PEM Ed25519 private key (PKCS#8, as `govmesh keygen` writes it); nullopt when
  /// the PEM is not an Ed25519 private key or the name is not valid.
  static std::optional<NoteSigner> fromPem(std::string_view name, std::string_view pem);

  /// The key name.
  const std::string& name() const { return verifier_.name; }
  /// The matching verifier.
  const NoteVerifier& verifier() const { return verifier_; }
  /// The signature line for `body` ("— name base64(keyid‖sig)\n"); empty if signing failed
  /// (OpenSSL error), which callers treat as an I/O-class fault.
  std::string signatureLine(std::string_view body) const;
  /// The signed note: body, blank line, signature line; empty if signing failed. `body` must end
  /// in a newline.
  std::string sign(std::string_view body) const;

 private:
  struct Key;
  std::shared_ptr<Key> key_;
  NoteVerifier verifier_;
};

/// Checks a signed note against one verifier. On kOk, *body (when given) receives the signed
/// text. Signature lines of other keys are ignored, as C2SP requires.
NoteStatus openNote(std::string_view note, const NoteVerifier& verifier, std::string* body = nullptr);

/// Splits a signed note into its body and the key names of its signature lines, without
/// checking any signature; nullopt when malformed. Lets a tool find which key name to use.
std::optional<std::pair<std::string, std::vector<std::string>>> splitNote(std::string_view note);

/// A checkpoint note checked against `verifier`: its checkpoint on kOk, else nullopt with *status
/// (when given) saying why.
std::optional<Checkpoint> openCheckpoint(std::string_view note, const NoteVerifier& verifier, NoteStatus* status = nullptr);

// Base64 as notes carry it (engine/base64.h).
using govmesh::base64Decode;
using govmesh::base64Encode;

}  // namespace govmesh::lineage
