// Lineage proofs from the command line (issue 7 item 3): `govmesh prove` and `govmesh
// verify-proof`. The node key is a `govmesh keygen` key pair (BASE.key signs, BASE.pub verifies).
//
// Proof files are JSON (hashes and bytes in standard base64):
//
//   {"type": "inclusion", "origin": O, "seq": N, "index": N-1, "treeSize": S,
//    "record": base64(record bytes), "leafHash": base64(SHA-256(0x00 ‖ record)),
//    "path": [base64, ...], "checkpoint": "<the signed checkpoint note of size S>"}
//
//   {"type": "consistency", "origin": O, "size1": S1, "size2": S2, "root1": b64, "root2": b64,
//    "path": [...], "checkpoint2": "<signed note of size S2>",
//    "checkpoint1": "<signed note of size S1, when the log signed one>"}
//
// verify-proof checks the proof with the RFC 9162 algorithms and the checkpoint's signature
// against the node key (PEM from keygen, or a C2SP verifier key "name+id+base64"). With
// --checkpoint, a checkpoint the caller already trusts replaces (inclusion) or must match one end
// (consistency) of the proof: "is my old checkpoint a prefix of today's log?".
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "compiler/archive.h"
#include "compiler/entities.h"
#include "compiler/errors.h"
#include "engine/checkpoint.h"
#include "engine/crypto_ed25519.h"
#include "engine/lineage.h"
#include "server/cli/commands.h"

namespace govmesh::cli {

namespace {

using cedar::InputError;
using nlohmann::json;
namespace ln = lineage;

std::string b64(const ln::Hash& h) { return ln::base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size())); }

ln::Hash hashField(const json& j, const std::string& where) {
  auto raw = j.is_string() ? ln::base64Decode(j.get<std::string>()) : std::nullopt;
  if (!raw || raw->size() != 32) throw InputError(where, {}, "expected the base64 of a 32-byte hash");
  ln::Hash h;
  std::memcpy(h.data(), raw->data(), 32);
  return h;
}

std::vector<ln::Hash> pathField(const json& doc, const std::string& file) {
  if (!doc.contains("path") || !doc["path"].is_array()) throw InputError(file, {}, "missing field \"path\" (an array)");
  std::vector<ln::Hash> out;
  for (size_t i = 0; i < doc["path"].size(); ++i) out.push_back(hashField(doc["path"][i], file + ": path[" + std::to_string(i) + "]"));
  return out;
}

uint64_t sizeField(const json& doc, const char* name, const std::string& file) {
  if (!doc.contains(name) || !doc[name].is_number_unsigned()) throw InputError(file, {}, std::string("missing field \"") + name + "\" (a non-negative integer)");
  return doc[name].get<uint64_t>();
}

std::unique_ptr<ln::Log> openForReading(const std::string& dir) {
  ln::LogOptions o;
  o.readOnly = true;
  ln::LogStatus st;
  std::string err;
  auto log = ln::Log::open(dir, o, &st, &err);
  if (!log) throw InputError(dir, {}, "cannot read the lineage log (" + std::string(ln::logStatusName(st)) + "): " + err);
  return log;
}

// The node key as verify-proof takes it: a PEM public (or private) key, whose key name comes
// from the note's signature lines, or a C2SP verifier key that names itself.
struct NodeKey {
  std::optional<crypto::Ed25519PublicKey> pem;
  std::optional<ln::NoteVerifier> vkey;
  std::string file;
};

NodeKey readNodeKey(const std::string& file) {
  std::string text = cedar::readFile(file);
  NodeKey k;
  k.file = file;
  if (text.find("-----BEGIN") != std::string::npos) {
    k.pem = crypto::publicKeyFromPem(text, file);
    return k;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  k.vkey = ln::NoteVerifier::parse(text);
  if (!k.vkey) throw InputError(file, {}, "not a PEM Ed25519 key nor a C2SP verifier key (name+hex8+base64)");
  return k;
}

// Opens a checkpoint note under the node key; throws a verification failure (exit 2) otherwise.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::pair<ln::Checkpoint, std::string> openWithKey(const std::string& note, const NodeKey& key, const std::string& what) {
  std::vector<ln::NoteVerifier> candidates;
  if (key.vkey) {
    candidates.push_back(*key.vkey);
  } else if (auto parts = ln::splitNote(note)) {
    for (const auto& name : parts->second) {
      if (auto v = ln::NoteVerifier::fromKey(name, *key.pem)) candidates.push_back(*v);
    }
  }
  ln::NoteStatus last = ln::NoteStatus::kMalformed;
  for (const auto& v : candidates) {
    auto c = ln::openCheckpoint(note, v, &last);
    if (c) return {*c, v.name};
    if (last == ln::NoteStatus::kBadSignature) break;
  }
  if (candidates.empty() && ln::splitNote(note)) last = ln::NoteStatus::kNoSignature;
  throw Failure(what + ": " + std::string(ln::noteStatusName(last)) + " (node key " + key.file + ")");
}

const ln::SignedCheckpoint* findCheckpoint(const std::vector<ln::SignedCheckpoint>& all, uint64_t size) {
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->checkpoint.size == size) return &*it;
  }
  return nullptr;
}

void emit(const json& doc, const std::string& out) {
  std::string text = doc.dump(2) + "\n";
  if (out.empty()) {
    std::cout << text;
    return;
  }
  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  if (!(f << text)) throw InputError(out, {}, "cannot write file");
  std::cerr << "wrote " << out << "\n";
}

json proveInclusion(const ln::Log& log, uint64_t seq, const std::string& dir) {
  auto c = log.latestCheckpoint();
  if (!c) throw InputError(dir, {}, "the log has no signed checkpoint yet");
  uint64_t size = c->checkpoint.size;
  if (seq == 0 || seq > size) {
    throw InputError(dir, {}, "seq " + std::to_string(seq) + " is not covered by the latest checkpoint (size " + std::to_string(size) + ")");
  }
  std::vector<std::string> rec;
  if (log.readRecords(seq, 1, rec) != ln::LogStatus::kOk || rec.size() != 1) throw InputError(dir, {}, "cannot read record " + std::to_string(seq));
  auto path = log.inclusionProof(seq, size);
  auto leaf = log.leafHashAt(seq);
  if (!path || !leaf) throw InputError(dir, {}, "cannot read the tree: " + log.lastError());
  json p = json::array();
  for (const auto& h : *path) p.push_back(b64(h));
  return {{"type", "inclusion"}, {"origin", c->checkpoint.origin}, {"seq", seq}, {"index", seq - 1}, {"treeSize", size},
          {"record", ln::base64Encode(rec[0])}, {"leafHash", b64(*leaf)}, {"path", p}, {"checkpoint", c->note}};
}

json proveConsistency(const ln::Log& log, uint64_t size1, std::optional<uint64_t> size2, const std::string& dir) {
  std::vector<ln::SignedCheckpoint> all;
  if (log.checkpoints(all) != ln::LogStatus::kOk) throw InputError(dir, {}, "cannot read checkpoints: " + log.lastError());
  if (all.empty()) throw InputError(dir, {}, "the log has no signed checkpoint yet");
  uint64_t to = size2.value_or(all.back().checkpoint.size);
  const ln::SignedCheckpoint* c2 = findCheckpoint(all, to);
  if (!c2) throw InputError(dir, {}, "no signed checkpoint of size " + std::to_string(to) + " (the latest is " + std::to_string(all.back().checkpoint.size) + ")");
  if (size1 > to) throw InputError(dir, {}, "--from " + std::to_string(size1) + " is past --to " + std::to_string(to));
  auto path = log.consistencyProof(size1, to);
  auto root1 = log.root(size1);
  if (!path || !root1) throw InputError(dir, {}, "cannot read the tree: " + log.lastError());
  json p = json::array();
  for (const auto& h : *path) p.push_back(b64(h));
  json doc = {{"type", "consistency"}, {"origin", c2->checkpoint.origin}, {"size1", size1}, {"size2", to}, {"root1", b64(*root1)},
              {"root2", b64(c2->checkpoint.root)}, {"path", p}, {"checkpoint2", c2->note}};
  if (const auto* c1 = findCheckpoint(all, size1)) doc["checkpoint1"] = c1->note;
  return doc;
}

std::string describe(const ln::Record& r) {
  std::string s = r.allow ? "ALLOW" : "DENY";
  if (r.denyCode != engine::DenyCode::kNone) s += " " + std::string(engine::denyCodeName(r.denyCode));
  return s + " " + r.principal.type + "::\"" + r.principal.id + "\" " + r.action.type + "::\"" + r.action.id + "\" " +
         r.resource.type + "::\"" + r.resource.id + "\"";
}

void verifyInclusionProof(const json& doc, const std::string& file, const std::optional<std::string>& ckptText, const NodeKey& key) {
  uint64_t seq = sizeField(doc, "seq", file), index = sizeField(doc, "index", file), size = sizeField(doc, "treeSize", file);
  if (seq != index + 1) throw InputError(file, {}, "\"seq\" must be \"index\" + 1");
  std::string note = ckptText ? *ckptText : doc.value("checkpoint", std::string());
  if (note.empty()) throw InputError(file, {}, "missing field \"checkpoint\" (or give --checkpoint)");
  auto [c, signer] = openWithKey(note, key, "checkpoint");
  if (c.size != size) throw Failure("the checkpoint has size " + std::to_string(c.size) + ", the proof " + std::to_string(size));
  std::optional<ln::Record> rec;
  ln::Hash leaf;
  if (doc.contains("record")) {
    auto bytes = doc["record"].is_string() ? ln::base64Decode(doc["record"].get<std::string>()) : std::nullopt;
    if (!bytes) throw InputError(file, {}, "field \"record\": not base64");
    leaf = ln::leafHash(*bytes);
    if (doc.contains("leafHash") && hashField(doc["leafHash"], file + ": leafHash") != leaf) throw Failure("\"leafHash\" is not the hash of \"record\"");
    rec = ln::decodeRecord(*bytes);
    if (!rec) throw Failure("\"record\" is not a version-1 lineage record");
    if (rec->seq != seq) throw Failure("the record says seq " + std::to_string(rec->seq) + ", the proof " + std::to_string(seq));
  } else {
    leaf = hashField(doc.value("leafHash", json()), file + ": leafHash");
  }
  if (!ln::verifyInclusion(index, size, leaf, pathField(doc, file), c.root)) throw Failure("the inclusion proof does not verify against the checkpoint");
  std::cout << "OK: record seq " << seq << " is in " << c.origin << " at size " << size << " (checkpoint signed by " << signer << ")\n";
  if (rec) std::cout << "  " << describe(*rec) << "\n";
}

void verifyConsistencyProof(const json& doc, const std::string& file, const std::optional<std::string>& ckptText, const NodeKey& key) {
  uint64_t size1 = sizeField(doc, "size1", file), size2 = sizeField(doc, "size2", file);
  ln::Hash root1 = hashField(doc.value("root1", json()), file + ": root1"), root2 = hashField(doc.value("root2", json()), file + ": root2");
  auto [c2, signer] = openWithKey(doc.value("checkpoint2", std::string()), key, "checkpoint2");
  if (c2.size != size2 || c2.root != root2) throw Failure("checkpoint2 does not match size2/root2");
  bool signed1 = false;
  if (doc.contains("checkpoint1")) {
    auto [c1, s1] = openWithKey(doc["checkpoint1"].get<std::string>(), key, "checkpoint1");
    if (c1.size != size1 || c1.root != root1) throw Failure("checkpoint1 does not match size1/root1");
    signed1 = true;
  }
  if (ckptText) {
    auto [mine, s] = openWithKey(*ckptText, key, "--checkpoint");
    bool matches = (mine.size == size1 && mine.root == root1) || (mine.size == size2 && mine.root == root2);
    if (!matches) throw Failure("--checkpoint (size " + std::to_string(mine.size) + ") matches neither end of the proof");
    signed1 = signed1 || mine.size == size1;
  }
  if (!ln::verifyConsistency(size1, size2, root1, root2, pathField(doc, file))) throw Failure("the consistency proof does not verify");
  std::cout << "OK: the tree of size " << size1 << (signed1 ? " (signed)" : " (root given by the proof, not signed)")
            << " is a prefix of " << c2.origin << " at size " << size2 << " (checkpoint signed by " << signer << ")\n";
}

}  // namespace

void addLineageCommands(CLI::App& app, int& exitCode) {
  {
    struct Args {
      std::string log, out;
      std::optional<uint64_t> seq, from, to;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("prove", "Print an inclusion proof (--seq) or a consistency proof (--from/--to) from a lineage log");
    cmd->add_option("--log", a->log, "Lineage log directory")->required();
    auto* seq = cmd->add_option("--seq", a->seq, "Record to prove (1-based), against the latest checkpoint");
    auto* from = cmd->add_option("--from", a->from, "Older tree size of a consistency proof");
    cmd->add_option("--to", a->to, "Newer tree size (a checkpointed size; default: the latest checkpoint)")->needs(from);
    seq->excludes(from);
    cmd->add_option("--out", a->out, "Write the proof to this file instead of stdout");
    cmd->callback([a, &exitCode] {
      if (!a->seq && !a->from) throw InputError("prove", {}, "give --seq N or --from SIZE1 [--to SIZE2]");
      auto log = openForReading(a->log);
      emit(a->seq ? proveInclusion(*log, *a->seq, a->log) : proveConsistency(*log, *a->from, a->to, a->log), a->out);
      exitCode = 0;
    });
  }
  {
    struct Args {
      std::string proof, nodeKey;
      std::optional<std::string> checkpoint;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("verify-proof", "Check a proof from `govmesh prove` against a checkpoint and the node's public key");
    cmd->add_option("--proof", a->proof, "Proof file (JSON)")->required();
    cmd->add_option("--checkpoint", a->checkpoint, "A signed checkpoint you trust (note text file)");
    cmd->add_option("--node-key", a->nodeKey, "The node's public key: PEM (govmesh keygen) or a C2SP verifier key")->required();
    cmd->callback([a, &exitCode] {
      json doc = cedar::parseJsonText(cedar::readFile(a->proof), a->proof);
      if (!doc.is_object()) throw InputError(a->proof, {}, "expected a JSON object");
      NodeKey key = readNodeKey(a->nodeKey);
      std::optional<std::string> ckpt;
      if (a->checkpoint) ckpt = cedar::readFile(*a->checkpoint);
      std::string type = doc.value("type", std::string());
      try {
        if (type == "inclusion") verifyInclusionProof(doc, a->proof, ckpt, key);
        else if (type == "consistency") verifyConsistencyProof(doc, a->proof, ckpt, key);
        else throw InputError(a->proof, {}, "field \"type\" must be \"inclusion\" or \"consistency\"");
        exitCode = 0;
      } catch (const Failure& f) {
        std::cout << "FAILED: " << a->proof << ": " << f.what() << "\n";
        exitCode = 2;
      }
    });
  }
}

}  // namespace govmesh::cli
