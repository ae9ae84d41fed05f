#include "engine/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "engine/ed25519_verify.h"
#include "engine/sha256_batch.h"

namespace govmesh::lineage {

namespace {

constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";  // U+2014 em dash, then a space
constexpr uint8_t kEd25519Type = 0x01;
// C2SP signed-note: valid UTF-8 and no control character but newline. A structural check of
// UTF-8 lead/continuation bytes is enough: the text is only compared and hashed, never decoded.
bool validNoteText(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 && c != '\n') return false;
    if (c == 0x7F) return false;
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t j = 1; j < n; ++j) {
      if ((static_cast<uint8_t>(s[i + j]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

}  // namespace

struct NoteSigner::Key {
  Pkey pkey;
};

std::string_view noteStatusName(NoteStatus s) {
  switch (s) {
    case NoteStatus::kOk: return "ok";
    case NoteStatus::kMalformed: return "malformed";
    case NoteStatus::kNoSignature: return "no signature by the key";
    case NoteStatus::kBadSignature: return "bad signature";
  }
  return "unknown";
}


std::string checkpointBody(const Checkpoint& c) {
  return c.origin + "\n" + std::to_string(c.size) + "\n" + base64Encode(std::string_view(reinterpret_cast<const char*>(c.root.data()), c.root.size())) + "\n";
}

std::optional<Checkpoint> parseCheckpointBody(std::string_view body) {
  std::string_view lines[3];
  size_t at = 0;
  for (auto& line : lines) {
    size_t nl = body.find('\n', at);
    if (nl == std::string_view::npos) return std::nullopt;
    line = body.substr(at, nl - at);
    at = nl + 1;
  }
  Checkpoint c;
  if (lines[0].empty()) return std::nullopt;
  c.origin = std::string(lines[0]);
  // Canonical decimal: no sign, no leading zero (except "0"), fits in 64 bits.
  std::string_view s = lines[1];
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), c.size);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  auto root = base64Decode(lines[2]);
  if (!root || root->size() != 32) return std::nullopt;
  std::memcpy(c.root.data(), root->data(), 32);
  return c;
}

bool validKeyName(std::string_view name) {
  if (name.empty()) return false;
  for (char ch : name) {
    auto c = static_cast<uint8_t>(ch);
    if (c <= 0x20 || c == '+' || c == 0x7F) return false;
  }
  return validNoteText(name);
}

uint32_t noteKeyId(std::string_view name, const crypto::Ed25519PublicKey& key) {
  std::string buf(name);
  buf += '\n';
  buf += static_cast<char>(kEd25519Type);
  buf.append(reinterpret_cast<const char*>(key.data()), key.size());
  auto h = crypto::sha256One({reinterpret_cast<const uint8_t*>(buf.data()), buf.size()});
  return (uint32_t{h[0]} << 24) | (uint32_t{h[1]} << 16) | (uint32_t{h[2]} << 8) | h[3];
}

std::optional<NoteVerifier> NoteVerifier::fromKey(std::string_view name, const crypto::Ed25519PublicKey& key) {
  if (!validKeyName(name)) return std::nullopt;
  return NoteVerifier{std::string(name), noteKeyId(name, key), key};
}

std::optional<NoteVerifier> NoteVerifier::parse(std::string_view vkey) {
  size_t p1 = vkey.find('+');
  if (p1 == std::string_view::npos) return std::nullopt;
  size_t p2 = vkey.find('+', p1 + 1);
  if (p2 == std::string_view::npos || p2 - p1 - 1 != 8) return std::nullopt;
  std::string_view name = vkey.substr(0, p1), hex = vkey.substr(p1 + 1, 8);
  uint32_t id = 0;
  for (char c : hex) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    id = (id << 4) | static_cast<uint32_t>(d);
  }
  auto raw = base64Decode(vkey.substr(p2 + 1));
  if (!raw || raw->size() != 33 || static_cast<uint8_t>((*raw)[0]) != kEd25519Type) return std::nullopt;
  crypto::Ed25519PublicKey key;
  std::memcpy(key.data(), raw->data() + 1, 32);
  auto v = fromKey(name, key);
  if (!v || v->keyId != id) return std::nullopt;
  return v;
}

std::string NoteVerifier::text() const {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", keyId);
  std::string raw(1, static_cast<char>(kEd25519Type));
  raw.append(reinterpret_cast<const char*>(key.data()), key.size());
  return name + "+" + hex + "+" + base64Encode(raw);
}

std::optional<NoteSigner> NoteSigner::fromSeed(std::string_view name, const std::array<uint8_t, 32>& seed) {
  if (!validKeyName(name)) return std::nullopt;
  Pkey pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!pkey) return std::nullopt;
  crypto::Ed25519PublicKey pub;
  size_t len = pub.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), pub.data(), &len) != 1 || len != pub.size()) return std::nullopt;
  NoteSigner s;
  s.key_ = std::make_shared<Key>();
  s.key_->pkey = std::move(pkey);
  s.verifier_ = *NoteVerifier::fromKey(name, pub);
  return s;
}

std::optional<NoteSigner> NoteSigner::fromPem(std::string_view name, std::string_view pem) {
  if (pem.size() > (1u << 20)) return std::nullopt;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio) return std::nullopt;
  Pkey pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey || EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) return std::nullopt;
  std::array<uint8_t, 32> seed;
  size_t len = seed.size();
  if (EVP_PKEY_get_raw_private_key(pkey.get(), seed.data(), &len) != 1 || len != seed.size()) return std::nullopt;
  auto s = fromSeed(name, seed);
  OPENSSL_cleanse(seed.data(), seed.size());
  return s;
}

std::string NoteSigner::signatureLine(std::string_view body) const {
  if (!key_) return {};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  crypto::Ed25519Signature sig;
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &len, reinterpret_cast<const unsigned char*>(body.data()), body.size()) != 1 ||
      len != sig.size()) {
    return {};
  }
  std::string raw(4, '\0');
  uint32_t id = verifier_.keyId;
  for (int i = 0; i < 4; ++i) raw[i] = static_cast<char>(id >> (24 - 8 * i));
  raw.append(reinterpret_cast<const char*>(sig.data()), sig.size());
  return std::string(kSigPrefix) + verifier_.name + " " + base64Encode(raw) + "\n";
}

std::string NoteSigner::sign(std::string_view body) const {
  if (body.empty() || body.back() != '\n' || !validNoteText(body)) return {};
  std::string line = signatureLine(body);
  if (line.empty()) return {};
  return std::string(body) + "\n" + line;
}

namespace {

struct SigLine {
  std::string_view name;
  std::string raw;  // key id ‖ signature
};

// Splits per C2SP: the body ends at the last "\n\n" (its newline included), then only well-formed
// signature lines follow, at least one, at most 100 (the bound Go's note package keeps).
bool split(std::string_view note, std::string_view& body, std::vector<SigLine>& sigs) {
  if (note.size() > (1u << 20) || !validNoteText(note) || note.empty() || note.back() != '\n') return false;
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) return false;
  body = note.substr(0, split + 1);
  std::string_view rest = note.substr(split + 2);
  if (rest.empty()) return false;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix) return false;
    line.remove_prefix(kSigPrefix.size());
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return false;
    SigLine s;
    s.name = line.substr(0, sp);
    auto raw = base64Decode(line.substr(sp + 1));
    if (!validKeyName(s.name) || !raw || raw->size() < 5) return false;
    s.raw = std::move(*raw);
    sigs.push_back(std::move(s));
    if (sigs.size() > 100) return false;
  }
  return true;
}

}  // namespace

std::optional<std::pair<std::string, std::vector<std::string>>> splitNote(std::string_view note) {
  std::string_view body;
  std::vector<SigLine> sigs;
  if (!split(note, body, sigs)) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& s : sigs) names.emplace_back(s.name);
  return std::make_pair(std::string(body), std::move(names));
}

NoteStatus openNote(std::string_view note, const NoteVerifier& verifier, std::string* body) {
  std::string_view text;
  std::vector<SigLine> sigs;
  if (!split(note, text, sigs)) return NoteStatus::kMalformed;
  for (const auto& s : sigs) {
    if (s.name != verifier.name) continue;
    uint32_t id = (uint32_t{static_cast<uint8_t>(s.raw[0])} << 24) | (uint32_t{static_cast<uint8_t>(s.raw[1])} << 16) |
                  (uint32_t{static_cast<uint8_t>(s.raw[2])} << 8) | static_cast<uint8_t>(s.raw[3]);
    if (id != verifier.keyId) continue;
    // The first line of this key decides, as in Go's note.Open: a bad one rejects the note.
    if (s.raw.size() != 4 + 64) return NoteStatus::kBadSignature;
    crypto::SigInput in{{verifier.key.data(), verifier.key.size()},
                        {reinterpret_cast<const uint8_t*>(s.raw.data() + 4), 64},
                        {reinterpret_cast<const uint8_t*>(text.data()), text.size()}};
    if (!crypto::ed25519VerifyOne(in)) return NoteStatus::kBadSignature;
    if (body) *body = std::string(text);
    return NoteStatus::kOk;
  }
  return NoteStatus::kNoSignature;
}

std::optional<Checkpoint> openCheckpoint(std::string_view note, const NoteVerifier& verifier, NoteStatus* status) {
  std::string body;
  NoteStatus st = openNote(note, verifier, &body);
  std::optional<Checkpoint> c;
  if (st == NoteStatus::kOk) {
    c = parseCheckpointBody(body);
    if (!c) st = NoteStatus::kMalformed;
  }
  if (status) *status = st;
  return c;
}

}  // namespace govmesh::lineage
