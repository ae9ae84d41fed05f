// Bundle envelopes: writing, reading, signing and verifying SignedBundle messages, and
// loading a bundle only after its digest and signature check out.
#include "engine/bundle.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>

#include "compiler/errors.h"
#include "compiler/extensions.h"
#include "engine/bundle.capnp.h"
#include "engine/bundle_internal.h"

namespace govmesh::engine {

using cedar::InputError;

namespace {

capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string bytes(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }
size_t wordsFor(size_t n) { return (n + 7) / 8; }

// Domain separation: the authority's key signs only this label followed by a digest, so a
// bundle signature cannot be replayed as a signature over anything else, nor the reverse.
constexpr char kSignatureLabel[] = "govmesh policy bundle";  // + its terminating NUL: 22 bytes

}  // namespace

std::string encodeEnvelope(const SignedEnvelope& env) {
  // One segment of exactly the right size: root pointer, the struct (1 data word, 4 pointers)
  // and the four blobs. The layout then depends on the field values alone.
  size_t words = 1 + 5 + wordsFor(env.content.size()) + wordsFor(env.digest.size()) + wordsFor(env.signature.size()) +
                 wordsFor(env.signerPublicKey.size());
  if (words > (size_t{1} << 29)) throw InputError("", {}, "bundle too large");
  capnp::MallocMessageBuilder message(static_cast<unsigned>(words), capnp::AllocationStrategy::FIXED_SIZE);
  auto root = message.initRoot<wire::SignedBundle>();
  root.setFormatVersion(env.formatVersion);
  root.setContent(data(env.content));
  root.setDigest(data(env.digest));
  root.setSignature(data(env.signature));
  root.setSignerPublicKey(data(env.signerPublicKey));
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> out = flat.asBytes();
  return std::string(reinterpret_cast<const char*>(out.begin()), out.size());
}

SignedEnvelope readEnvelope(std::string_view fileBytes, const std::string& where) {
  SignedEnvelope env;
  try {
    kj::Array<capnp::word> words = alignedWords(fileBytes, where);
    capnp::FlatArrayMessageReader reader(words, readerOptions(words.size()));
    auto r = reader.getRoot<wire::SignedBundle>();
    env.formatVersion = r.getFormatVersion();
    // First, so that a newer bundle is refused by name rather than as "malformed".
    checkFormatVersion(env.formatVersion, where);
    env.content = bytes(r.getContent());
    env.digest = bytes(r.getDigest());
    env.signature = bytes(r.getSignature());
    env.signerPublicKey = bytes(r.getSignerPublicKey());
  } catch (const kj::Exception& e) {
    throw InputError(where, {}, "not a govmesh bundle (malformed Cap'n Proto message: " + std::string(e.getDescription().cStr()) + ")");
  }
  // Only the exact bytes encodeEnvelope() writes are accepted: no padding, unused pointer,
  // alternative encoding or trailing data can carry a change the checks below would not see.
  if (encodeEnvelope(env) != fileBytes) throw InputError(where, {}, "bundle envelope is not in canonical form (altered or corrupt)");
  return env;
}

std::string signedMessage(std::string_view digest) {
  std::string m(kSignatureLabel, sizeof kSignatureLabel);
  m.append(digest);
  return m;
}

crypto::Ed25519PublicKey verifyEnvelope(const SignedEnvelope& env, const std::vector<crypto::Ed25519PublicKey>& trusted,
                                        const std::string& where) {
  crypto::Sha256Digest actual = crypto::sha256(env.content);
  if (env.digest != crypto::bytesView(actual))
    throw InputError(where, {}, "digest does not match the content: the bundle was altered or is corrupt");
  if (!env.isSigned()) throw InputError(where, {}, "bundle is not signed (sign it with `govmesh sign`)");
  crypto::Ed25519PublicKey signer{};
  if (env.signerPublicKey.size() != signer.size() || env.signature.size() != sizeof(crypto::Ed25519Signature))
    throw InputError(where, {}, "malformed signature or signer key");
  std::memcpy(signer.data(), env.signerPublicKey.data(), signer.size());
  if (std::find(trusted.begin(), trusted.end(), signer) == trusted.end())
    throw InputError(where, {}, "signed by key " + crypto::fingerprint(signer) + ", which is not a trusted authority key");
  if (!crypto::verifyEd25519(signer, signedMessage(env.digest), env.signature))
    throw InputError(where, {}, "signature does not verify: the bundle was altered or is corrupt");
  return signer;
}

std::string writeUnsignedBundle(const Bundle& b) {
  SignedEnvelope env;
  env.formatVersion = b.formatVersion;
  env.content = encodeBundleContent(b);
  env.digest = std::string(crypto::bytesView(crypto::sha256(env.content)));
  return encodeEnvelope(env);
}

std::string signBundle(std::string_view bundleBytes, std::string_view privatePem, const std::string& where,
                       const std::string& keyWhere) {
  SignedEnvelope env = readEnvelope(bundleBytes, where);
  if (env.digest != crypto::bytesView(crypto::sha256(env.content)))
    throw InputError(where, {}, "digest does not match the content: refusing to sign an altered or corrupt bundle");
  decodeBundleContent(env.content, where);  // never sign what no decision point could load
  crypto::Ed25519PublicKey pub = crypto::publicKeyFromPem(privatePem, keyWhere);
  crypto::Ed25519Signature sig = crypto::signEd25519(privatePem, signedMessage(env.digest), keyWhere);
  env.signature = std::string(crypto::bytesView(sig));
  env.signerPublicKey = std::string(crypto::bytesView(pub));
  return encodeEnvelope(env);
}

Bundle loadBundle(std::string_view fileBytes, const std::vector<crypto::Ed25519PublicKey>& trusted, const std::string& where) {
  SignedEnvelope env = readEnvelope(fileBytes, where);
  verifyEnvelope(env, trusted, where);
  return decodeBundleContent(env.content, where);
}

bool isFresh(const Bundle& b, int64_t nowMs) { return nowMs < b.freshUntilMs; }

const WorkloadKey* findWorkloadKey(const Bundle& b, std::string_view keyId, int64_t nowMs) {
  for (const WorkloadKey& k : b.keys)
    if (k.keyId == keyId) return k.notAfterMs && nowMs >= *k.notAfterMs ? nullptr : &k;
  return nullptr;
}

BundleCounts countBundle(const Bundle& b) {
  BundleCounts c;
  c.policies = b.table.policies.size();
  c.links = b.links.size();
  c.features = b.table.features.size();
  for (const table::Feature& f : b.table.features) c.dictionaryEntries += f.valueRows.size() + f.entityRows.size() + f.unknownTypeRows.size();
  c.entities = b.store ? b.store->size() : 0;
  c.keys = b.keys.size();
  return c;
}

std::string isoTime(int64_t ms) { return cedar::toString(cedar::Datetime{ms}); }

}  // namespace govmesh::engine
