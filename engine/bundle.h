// Signed policy bundles: a compiled decision table with everything needed to use it (policies,
// entity store, schema, workload keys), serialized with Cap'n Proto and signed by the policy
// authority. The wire format is engine/bundle.capnp.
//
// Life of a bundle:
//   compileBundle()      sources -> Bundle (in memory, table compiled)
//   writeUnsignedBundle() Bundle -> bytes of an unsigned SignedBundle envelope (digest set)
//   signBundle()         unsigned (or signed) bytes + authority private key -> signed bytes
//   loadBundle()         bytes + trusted authority keys -> verified, rebuilt Bundle
// Nothing in the content is parsed until the digest and the signature have been checked
// against a trusted key; after that every size and index is still checked, so that a bundle
// from a faulty authority is an InputError, never a crash.
//
// What is stored how, and why:
//   policies   as Cedar source text (+ template links), re-parsed on load: the text is the
//              authority's statement, and the parser is the one hardened path into ASTs.
//   entities   as Cedar entities JSON text with explicit __entity/__extn escapes, re-parsed
//              without a schema: it reuses the hardened JSON reader (depth limits, ancestor
//              closure) and stays readable with standard tools; the table, not the store, is
//              the hot path, so its parse cost at load time is acceptable.
//   table      structurally (lists of words and parallel key/row lists), derived atoms as
//              their Cedar text: rows are the bulk of a bundle and must load without parsing.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ast.h"
#include "compiler/decision_table.h"
#include "compiler/entities.h"
#include "compiler/schema.h"
#include "engine/crypto_ed25519.h"

namespace govmesh::engine {

/// The bundle format this build writes and the newest it reads.
inline constexpr uint32_t kBundleFormatVersion = 1;
/// Bundles larger than this are refused before parsing.
inline constexpr size_t kMaxBundleBytes = size_t{1} << 30;

/// A workload signing key: requests signed with it may act as `principal` only.
struct WorkloadKey {
  std::string keyId;
  crypto::Ed25519PublicKey publicKey{};
  cedar::EntityUid principal;
  std::optional<int64_t> notAfterMs;  // Unix ms; the key is refused from this instant on
};

/// A policy bundle in memory. Copies share the (immutable) entity store and schema, so
/// `table.store` stays valid in every copy.
struct Bundle {
  uint32_t formatVersion = kBundleFormatVersion;
  uint64_t revision = 0;       // strictly increasing per authority
  int64_t issuedAtMs = 0;      // Unix ms
  int64_t freshUntilMs = 0;    // Unix ms: the freshness deadline
  std::string policyText;      // Cedar source of the policies and templates
  std::string policyFileName;  // named in parse errors
  std::vector<cedar::TemplateLink> links;
  std::optional<std::string> schemaText;
  bool schemaIsJson = false;
  std::vector<WorkloadKey> keys;
  std::shared_ptr<const cedar::EntityStore> store;  // table.store points to *store
  std::shared_ptr<const cedar::Schema> schema;      // parsed schemaText, if any
  table::DecisionTable table;
};

/// The inputs of compileBundle(): file contents and the names that error messages use.
struct BundleSources {
  std::string policyText, policyFileName;
  std::vector<cedar::TemplateLink> links;
  std::string entitiesJson, entitiesFileName;  // empty text: no entities
  std::optional<std::string> schemaText;
  std::string schemaFileName;
  bool schemaIsJson = false;
  std::vector<WorkloadKey> keys;
};

/// Parses the sources (entities checked against the schema when there is one), links the
/// templates and compiles the decision table. Throws InputError on bad input.
Bundle compileBundle(const BundleSources& sources, uint64_t revision, int64_t issuedAtMs, int64_t freshUntilMs);

/// The outer SignedBundle message, decoded but not yet trusted.
struct SignedEnvelope {
  uint64_t formatVersion = 0;
  std::string content;          // the serialized Bundle
  std::string digest;           // as stored: SHA-256(content) unless tampered with
  std::string signature;        // empty when unsigned
  std::string signerPublicKey;  // empty when unsigned
  bool isSigned() const { return !signature.empty() || !signerPublicKey.empty(); }
};

/// The serialized Bundle message (the bytes the digest covers).
std::string encodeBundleContent(const Bundle& b);
/// Rebuilds a Bundle from content bytes: re-parses policies, entities, schema and derived
/// atoms and checks every size and index of the table. Verifies nothing cryptographic (use
/// loadBundle for untrusted bytes). Throws InputError naming `where`.
Bundle decodeBundleContent(std::string_view content, const std::string& where);

/// Serializes a SignedBundle envelope (bytes of a bundle file).
std::string encodeEnvelope(const SignedEnvelope& env);
/// Reads a bundle file's envelope. Refuses format versions other than kBundleFormatVersion
/// (newer ones by name: "bundle format 3 is newer than this govmesh understands (2)") and any
/// bytes that are not exactly what encodeEnvelope() writes for the fields read, so no byte
/// of the file escapes the checks. Checks neither digest nor signature.
SignedEnvelope readEnvelope(std::string_view bytes, const std::string& where);

/// The bytes the authority signs: a context label and the digest (see bundle.capnp).
std::string signedMessage(std::string_view digest);
/// Checks the digest against the content and the signature against the trusted keys; throws
/// InputError naming `where` with the reason (altered content, unsigned, untrusted signer,
/// bad signature). Returns the signer's key.
crypto::Ed25519PublicKey verifyEnvelope(const SignedEnvelope& env, const std::vector<crypto::Ed25519PublicKey>& trusted,
                                        const std::string& where);

/// The bytes of an unsigned bundle file for `b`.
std::string writeUnsignedBundle(const Bundle& b);
/// Signs a bundle file (signed or not: an existing signature is replaced) with the authority's
/// PEM private key. Checks the digest and decodes the content first, so that a broken bundle
/// is never signed. `where` names the bundle, `keyWhere` the key in errors.
std::string signBundle(std::string_view bundleBytes, std::string_view privatePem, const std::string& where,
                       const std::string& keyWhere);
/// Verifies and loads a bundle file: envelope, digest and signature (by one of `trusted`) are
/// checked before the content is parsed. Throws InputError naming `where`.
Bundle loadBundle(std::string_view bytes, const std::vector<crypto::Ed25519PublicKey>& trusted, const std::string& where);

/// True while `nowMs` is before the bundle's freshness deadline.
bool isFresh(const Bundle& b, int64_t nowMs);
/// The workload key with `keyId`, unless absent or past its not-after instant at `nowMs`.
const WorkloadKey* findWorkloadKey(const Bundle& b, std::string_view keyId, int64_t nowMs);

/// Counts reported by `govmesh inspect`.
struct BundleCounts {
  size_t policies = 0, links = 0, features = 0, dictionaryEntries = 0, entities = 0, keys = 0;
};
/// Counts of a decoded bundle.
BundleCounts countBundle(const Bundle& b);

/// Renders Unix ms as ISO 8601 UTC ("2026-11-26T09:30:00.000Z").
std::string isoTime(int64_t ms);

}  // namespace govmesh::engine
