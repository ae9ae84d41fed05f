// C2SP signed notes and checkpoints (engine/checkpoint.h): the Go sumdb/note test vector
// (key id, verifier key, a deterministic Ed25519 signature), body round trips, and refusals of
// tampered, foreign and malformed notes.
#include <doctest/doctest.h>

#include <cstring>

#include "engine/checkpoint.h"

using namespace govmesh::lineage;

namespace {

constexpr const char* kVkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr const char* kSeedB64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";  // 0x01 ‖ seed
constexpr const char* kText = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
constexpr const char* kSigLine =
    "\xE2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

NoteSigner peter() {
  auto raw = base64Decode(kSeedB64);
  REQUIRE(raw);
  REQUIRE(raw->size() == 33);
  std::array<uint8_t, 32> seed;
  std::memcpy(seed.data(), raw->data() + 1, 32);
  auto s = NoteSigner::fromSeed("PeterNeumann", seed);
  REQUIRE(s);
  return *s;
}

NoteSigner other(const char* name) {
  std::array<uint8_t, 32> seed{};
  seed.fill(7);
  return *NoteSigner::fromSeed(name, seed);
}

}  // namespace

TEST_CASE("checkpoint: Go sumdb/note vector: key id, verifier key and signature") {
  NoteSigner s = peter();
  CHECK(s.verifier().keyId == 0xc74f20a3u);
  CHECK(s.verifier().text() == kVkey);
  auto v = NoteVerifier::parse(kVkey);
  REQUIRE(v);
  CHECK(v->key == s.verifier().key);
  CHECK(s.sign(kText) == std::string(kText) + "\n" + kSigLine);
  std::string body;
  CHECK(openNote(std::string(kText) + "\n" + kSigLine, *v, &body) == NoteStatus::kOk);
  CHECK(body == kText);
}

TEST_CASE("checkpoint: verifier keys that do not parse") {
  std::string good = kVkey;
  CHECK_FALSE(NoteVerifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"));  // wrong id
  CHECK_FALSE(NoteVerifier::parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"));  // upper-case hex
  CHECK_FALSE(NoteVerifier::parse("PeterNeumann+c74f20a3+AhpcdQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"));  // type 2
  CHECK_FALSE(NoteVerifier::parse("PeterNeumann+c74f20a3"));
  CHECK_FALSE(NoteVerifier::parse("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"));
  CHECK_FALSE(NoteVerifier::fromKey("has space", {}));
  CHECK_FALSE(NoteVerifier::fromKey("a+b", {}));
}

TEST_CASE("checkpoint: body round trip and refusals") {
  Checkpoint c{"govmesh.example/lineage/node-1", 12345, {}};
  for (size_t i = 0; i < 32; ++i) c.root[i] = static_cast<uint8_t>(i * 7);
  std::string body = checkpointBody(c);
  CHECK(body.starts_with("govmesh.example/lineage/node-1\n12345\n"));
  auto p = parseCheckpointBody(body);
  REQUIRE(p);
  CHECK(p->origin == c.origin);
  CHECK(p->size == c.size);
  CHECK(p->root == c.root);
  CHECK(parseCheckpointBody(body + "extension line\n"));
  CHECK_FALSE(parseCheckpointBody("o\n012\n" + base64Encode(std::string(32, 'a')) + "\n"));  // leading zero
  CHECK_FALSE(parseCheckpointBody("o\n-1\n" + base64Encode(std::string(32, 'a')) + "\n"));
  CHECK_FALSE(parseCheckpointBody("o\n1\n" + base64Encode(std::string(31, 'a')) + "\n"));
  CHECK_FALSE(parseCheckpointBody("o\n1\n" + base64Encode(std::string(32, 'a'))));  // no final newline
  CHECK_FALSE(parseCheckpointBody("\n1\n" + base64Encode(std::string(32, 'a')) + "\n"));
  CHECK_FALSE(parseCheckpointBody("o\n18446744073709551616\n" + base64Encode(std::string(32, 'a')) + "\n"));
}

TEST_CASE("checkpoint: signed checkpoints open only under the right key and unchanged") {
  NoteSigner node = other("govmesh.example/node-1");
  NoteSigner foreign = peter();
  Checkpoint c{"govmesh.example/node-1", 42, {}};
  c.root.fill(0xAB);
  std::string note = node.sign(checkpointBody(c));
  REQUIRE_FALSE(note.empty());
  NoteStatus st;
  auto got = openCheckpoint(note, node.verifier(), &st);
  REQUIRE(got);
  CHECK(st == NoteStatus::kOk);
  CHECK(got->size == 42);
  CHECK(got->root == c.root);

  CHECK_FALSE(openCheckpoint(note, foreign.verifier(), &st));
  CHECK(st == NoteStatus::kNoSignature);
  std::string tampered = note;
  tampered[tampered.find("42")] = '5';
  CHECK_FALSE(openCheckpoint(tampered, node.verifier(), &st));
  CHECK(st == NoteStatus::kBadSignature);
  // A second signature by another key is ignored; the node's still decides.
  std::string cosigned = note + foreign.signatureLine(checkpointBody(c));
  CHECK(openCheckpoint(cosigned, node.verifier()));
  CHECK(openCheckpoint(cosigned, foreign.verifier()));
  // Same name, other key: the key id differs, so it is not the node's signature.
  NoteSigner impostor = peter();
  auto sameName = NoteSigner::fromSeed("govmesh.example/node-1", std::array<uint8_t, 32>{1});
  REQUIRE(sameName);
  CHECK_FALSE(openCheckpoint(sameName->sign(checkpointBody(c)), node.verifier(), &st));
  CHECK(st == NoteStatus::kNoSignature);

  for (std::string bad : {note.substr(0, note.size() - 1),           // no final newline
                          checkpointBody(c),                          // no signatures
                          checkpointBody(c) + "\n",                   // blank line, no signature
                          checkpointBody(c) + "\n- x y\n",            // not an em dash
                          std::string("a\tb\n") + note.substr(note.find("\n\n") + 1),  // control character
                          note + "trailing\n"}) {
    CHECK_MESSAGE(openNote(bad, node.verifier()) == NoteStatus::kMalformed, bad);
  }
  CHECK(node.sign("no newline").empty());
  CHECK(node.sign("two\n\nparagraphs\n").size() > 0);  // a body may hold a blank line: split is at the last
}

TEST_CASE("checkpoint: base64 is canonical") {
  for (size_t n = 0; n < 10; ++n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += static_cast<char>(0xF0 + i);
    CHECK(base64Decode(base64Encode(s)) == s);
  }
  CHECK(base64Encode("foobar") == "Zm9vYmFy");
  CHECK(base64Encode("fo") == "Zm8=");
  CHECK_FALSE(base64Decode("Zm9"));
  CHECK_FALSE(base64Decode("Zm9=Zm9v"));
  CHECK_FALSE(base64Decode("Zm9="));  // non-zero bits dropped by the padding
  CHECK_FALSE(base64Decode("Zm8*"));
  CHECK(base64Decode("Zm8=") == "fo");
}
