#include "engine/crypto_ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <stdexcept>

#include "compiler/errors.h"
#include "engine/base64.h"

namespace govmesh::crypto {

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// OpenSSL keeps a per-thread error queue; drain it so that a stale entry never explains a
// later, unrelated failure.
std::string takeOpenSslError() {
  unsigned long code = ERR_get_error();
  std::string msg;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    msg = buf;
  }
  ERR_clear_error();
  return msg;
}

// A password callback that supplies none: without it OpenSSL would prompt on the terminal for
// an encrypted key, which a library must never do.
int noPassword(char*, int, int, void*) { return 0; }

Bio memoryBio(std::string_view text) {
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) throw std::bad_alloc();
  return bio;
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Ed25519PublicKey rawPublicKey(EVP_PKEY* pkey, const std::string& where) {
  Ed25519PublicKey out{};
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(pkey, out.data(), &len) != 1 || len != out.size())
    throw cedar::InputError(where, {}, "cannot read the Ed25519 public key: " + takeOpenSslError());
  return out;
}

void requireEd25519(EVP_PKEY* pkey, const std::string& where) {
  if (!EVP_PKEY_is_a(pkey, "ED25519"))
    throw cedar::InputError(where, {}, std::string("not an Ed25519 key (found ") + EVP_PKEY_get0_type_name(pkey) + ")");
}

Pkey readPrivateKey(std::string_view pem, const std::string& where) {
  if (pem.size() > (1u << 20)) throw cedar::InputError(where, {}, "key file too large");
  Bio bio = memoryBio(pem);
  Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassword, nullptr));
  if (!pkey) {
    std::string why = takeOpenSslError();
    throw cedar::InputError(where, {}, "not a PEM private key (encrypted keys are not supported)" + (why.empty() ? "" : ": " + why));
  }
  requireEd25519(pkey.get(), where);
  return pkey;
}

}  // namespace

Ed25519KeyPair generateEd25519() {
  Pkey pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!pkey) throw std::runtime_error("Ed25519 key generation failed: " + takeOpenSslError());
  Ed25519KeyPair out;
  Bio priv(BIO_new(BIO_s_mem())), pub(BIO_new(BIO_s_mem()));
  if (!priv || !pub) throw std::bad_alloc();
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted.
  if (PEM_write_bio_PrivateKey(priv.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), pkey.get()) != 1)
    throw std::runtime_error("cannot write the key as PEM: " + takeOpenSslError());
  out.privatePem = bioText(priv.get());
  out.publicPem = bioText(pub.get());
  out.publicKey = rawPublicKey(pkey.get(), "generated key");
  return out;
}

Ed25519PublicKey publicKeyFromPem(std::string_view pem, const std::string& where) {
  if (pem.find("PRIVATE KEY-----") != std::string_view::npos) {
    Pkey pkey = readPrivateKey(pem, where);
    return rawPublicKey(pkey.get(), where);
  }
  if (pem.size() > (1u << 20)) throw cedar::InputError(where, {}, "key file too large");
  Bio bio = memoryBio(pem);
  Pkey pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, noPassword, nullptr));
  if (!pkey) {
    std::string why = takeOpenSslError();
    throw cedar::InputError(where, {}, "not a PEM public key" + (why.empty() ? "" : ": " + why));
  }
  requireEd25519(pkey.get(), where);
  return rawPublicKey(pkey.get(), where);
}

Ed25519Signature signEd25519(std::string_view privatePem, std::string_view message, const std::string& where) {
  Pkey pkey = readPrivateKey(privatePem, where);
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::bad_alloc();
  Ed25519Signature sig{};
  size_t len = sig.size();
  // Ed25519 is a one-shot scheme: no digest name, the whole message at once.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != sig.size())
    throw std::runtime_error("Ed25519 signing failed: " + takeOpenSslError());
  return sig;
}

bool verifyEd25519(const Ed25519PublicKey& key, std::string_view message, std::string_view signature) {
  if (signature.size() != sizeof(Ed25519Signature)) return false;
  Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
  if (!pkey) {  // not a valid curve point
    takeOpenSslError();
    return false;
  }
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::bad_alloc();
  bool ok = EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  takeOpenSslError();
  return ok;
}

Sha256Digest sha256(std::string_view bytes) {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 || len != out.size())
    throw std::runtime_error("SHA-256 failed: " + takeOpenSslError());
  return out;
}

std::string toHex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string toBase64(std::string_view bytes) { return base64Encode(bytes); }

std::optional<std::string> fromBase64(std::string_view text) { return base64Decode(text); }

std::string fingerprint(const Ed25519PublicKey& key) {
  Sha256Digest d = sha256(bytesView(key));
  std::string b64 = toBase64(bytesView(d));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return "SHA256:" + b64;
}

}  // namespace govmesh::crypto
