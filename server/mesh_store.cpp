// Signed policy bundles in etcd: layout, publishing and reading (see mesh_store.h).
#include "server/mesh_store.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/errors.h"
#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"

namespace govmesh::mesh {

namespace {

// Bytes of a request that are not chunk payload: the key, the gRPC framing, the pointer and the
// compare of the transaction. Generous on purpose: etcd refuses the whole request past its limit.
constexpr uint64_t kRequestOverhead = 4096;

std::string padded(uint64_t n, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(n));
  return buf;
}

std::string sha256Hex(std::string_view bytes) { return crypto::toHex(crypto::sha256(bytes)); }

std::string bundlesRoot(const std::string& prefix) { return prefix + "/bundles/"; }

// Writes the chunks and then the pointer, guarded by the pointer's mod revision as read.
PublishResult publish(etcd::Client& client, std::string_view bytes, ActivePointer pointer, const PublishOptions& o) {
  if (o.maxRequestBytes <= 2 * kRequestOverhead)
    throw std::invalid_argument("max request bytes " + std::to_string(o.maxRequestBytes) + " leaves no room for a chunk");
  const uint64_t chunkBytes = o.maxRequestBytes - kRequestOverhead;
  const bool single = bytes.size() + kRequestOverhead <= o.maxRequestBytes;
  pointer.size = bytes.size();
  pointer.chunks = single ? 1 : (bytes.size() + chunkBytes - 1) / chunkBytes;
  pointer.fileSha256 = sha256Hex(bytes);

  const std::string key = pointerKey(o.prefix);
  etcd::RangeResult current = client.get(key);
  int64_t currentMod = 0;
  if (!current.kvs.empty()) {
    currentMod = current.kvs.front().modRevision;
    if (o.requireNewer) {
      ActivePointer published;
      try {
        published = decodePointer(current.kvs.front().value);
      } catch (const std::invalid_argument&) {
        published.revision = 0;  // an unreadable pointer is replaced by a good one
      }
      if (published.revision >= pointer.revision)
        throw std::invalid_argument("revision " + std::to_string(pointer.revision) + " is not newer than the published revision " +
                                    std::to_string(published.revision));
    }
  }

  PublishResult result;
  std::vector<etcd::TxnOp> ops;
  if (single) {
    ops.push_back({etcd::TxnOp::Kind::kPut, chunkKey(o.prefix, pointer.revision, pointer.fileSha256, 0), std::string(bytes), {}});
  } else {
    for (uint64_t i = 0; i < pointer.chunks; ++i) {
      const std::string_view part = bytes.substr(i * chunkBytes, chunkBytes);
      client.put(chunkKey(o.prefix, pointer.revision, pointer.fileSha256, i), std::string(part));
      ++result.requests;
    }
  }
  ops.push_back({etcd::TxnOp::Kind::kPut, key, encodePointer(pointer), {}});
  if (o.keepRevisions > 0 && pointer.revision > o.keepRevisions) {
    // Revision keys are zero-padded, so "older than R - keep" is one lexicographic range.
    ops.push_back({etcd::TxnOp::Kind::kDeleteRange, bundlesRoot(o.prefix), {}, revisionPrefix(o.prefix, pointer.revision - o.keepRevisions)});
  }
  etcd::Compare guard{key, etcd::Compare::Target::kModRevision, etcd::Compare::Op::kEqual, currentMod, {}};
  const etcd::TxnResult txn = client.txn({guard}, ops);
  ++result.requests;
  int64_t etcdRevision = txn.revision;
  if (!txn.succeeded) {
    // The client re-sends a write that timed out to the next endpoint, so a failed compare may
    // mean our own first attempt won: then the pointer is exactly ours.
    const etcd::RangeResult now = client.get(key);
    bool ours = false;
    if (!now.kvs.empty()) {
      try {
        const ActivePointer p = decodePointer(now.kvs.front().value);
        ours = p.revision == pointer.revision && p.digestHex == pointer.digestHex && p.fileSha256 == pointer.fileSha256;
      } catch (const std::invalid_argument&) {
      }
    }
    if (!ours) throw etcd::Error(etcd::ErrorKind::kRejected, "another publisher changed " + key + " meanwhile; nothing was activated, publish again");
    etcdRevision = now.kvs.front().modRevision;
  }
  result.pointer = std::move(pointer);
  result.etcdRevision = etcdRevision;
  result.chunks = result.pointer.chunks;
  return result;
}

}  // namespace

std::string encodePointer(const ActivePointer& p) {
  nlohmann::json j = {{"revision", p.revision}, {"digest", p.digestHex}, {"size", p.size}, {"chunks", p.chunks}, {"sha256", p.fileSha256}};
  return j.dump();
}

ActivePointer decodePointer(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("active pointer: not a JSON object");
  auto number = [&](const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_unsigned()) throw std::invalid_argument(std::string("active pointer: \"") + name + "\" is missing or not a number");
    return it->get<uint64_t>();
  };
  auto hex = [&](const char* name) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) throw std::invalid_argument(std::string("active pointer: \"") + name + "\" is missing or not a string");
    std::string s = it->get<std::string>();
    if (s.size() != 64 || !std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
      throw std::invalid_argument(std::string("active pointer: \"") + name + "\" is not 64 lower-case hex digits");
    return s;
  };
  ActivePointer p;
  p.revision = number("revision");
  p.digestHex = hex("digest");
  p.size = number("size");
  p.chunks = number("chunks");
  p.fileSha256 = hex("sha256");
  if (p.chunks == 0 || p.size == 0 || p.chunks > p.size || p.size > engine::kMaxBundleBytes)
    throw std::invalid_argument("active pointer: " + std::to_string(p.size) + " bytes in " + std::to_string(p.chunks) + " chunks is not a bundle");
  return p;
}

std::string pointerKey(const std::string& prefix) { return prefix + "/active"; }
std::string revisionPrefix(const std::string& prefix, uint64_t revision) { return bundlesRoot(prefix) + padded(revision, 20) + "/"; }
std::string chunkPrefix(const std::string& prefix, uint64_t revision, const std::string& fileSha256) {
  return revisionPrefix(prefix, revision) + fileSha256 + "/";
}
std::string chunkKey(const std::string& prefix, uint64_t revision, const std::string& fileSha256, uint64_t index) {
  return chunkPrefix(prefix, revision, fileSha256) + padded(index, 6);
}

PublishResult publishBundle(etcd::Client& client, std::string_view bytes, const PublishOptions& options) {
  ActivePointer p;
  try {
    const engine::SignedEnvelope env = engine::readEnvelope(bytes, "bundle");
    if (!env.isSigned()) throw std::invalid_argument("the bundle is not signed (govmesh sign)");
    if (sha256Hex(env.content) != crypto::toHex(env.digest))
      throw std::invalid_argument("the bundle's content does not match its digest: it was altered after signing");
    p.revision = engine::decodeBundleContent(env.content, "bundle").revision;
    p.digestHex = crypto::toHex(env.digest);
  } catch (const cedar::InputError& e) {
    throw std::invalid_argument(std::string("not a govmesh bundle: ") + e.what());
  }
  return publish(client, bytes, std::move(p), options);
}

PublishResult publishRaw(etcd::Client& client, std::string_view bytes, uint64_t revision, std::string digestHex,
                         const PublishOptions& options) {
  ActivePointer p;
  p.revision = revision;
  p.digestHex = std::move(digestHex);
  return publish(client, bytes, std::move(p), options);
}

std::optional<ActivePointer> readPointer(etcd::Client& client, const std::string& prefix, int64_t* modRevision,
                                         int64_t* headerRevision) {
  const etcd::RangeResult r = client.get(pointerKey(prefix));
  if (headerRevision) *headerRevision = r.revision;
  if (r.kvs.empty()) return std::nullopt;
  if (modRevision) *modRevision = r.kvs.front().modRevision;
  return decodePointer(r.kvs.front().value);
}

std::string fetchChunks(etcd::Client& client, const std::string& prefix, const ActivePointer& pointer) {
  const std::string where = "bundle revision " + std::to_string(pointer.revision) + " in etcd";
  const etcd::RangeResult r = client.getPrefix(chunkPrefix(prefix, pointer.revision, pointer.fileSha256));
  if (r.kvs.size() != pointer.chunks)
    throw std::invalid_argument(where + ": " + std::to_string(r.kvs.size()) + " chunks found, the pointer names " +
                                std::to_string(pointer.chunks));
  std::string bytes;
  bytes.reserve(pointer.size);
  for (uint64_t i = 0; i < pointer.chunks; ++i) {
    // etcd returns a range in key order and the indices are zero-padded: chunk i is kvs[i].
    if (r.kvs[i].key != chunkKey(prefix, pointer.revision, pointer.fileSha256, i)) throw std::invalid_argument(where + ": chunk " + std::to_string(i) + " is missing");
    bytes += r.kvs[i].value;
  }
  if (bytes.size() != pointer.size)
    throw std::invalid_argument(where + ": " + std::to_string(bytes.size()) + " bytes reassembled, the pointer says " + std::to_string(pointer.size));
  if (sha256Hex(bytes) != pointer.fileSha256) throw std::invalid_argument(where + ": the reassembled file does not match the pointer's SHA-256");
  std::string contentDigest;
  try {
    contentDigest = crypto::toHex(engine::readEnvelope(bytes, where).digest);
  } catch (const cedar::InputError& e) {
    throw std::invalid_argument(e.what());
  }
  if (contentDigest != pointer.digestHex)
    throw std::invalid_argument(where + ": the bundle's digest " + contentDigest.substr(0, 16) + "... is not the pointer's " +
                                pointer.digestHex.substr(0, 16) + "...");
  return bytes;
}

std::optional<FetchedBundle> fetchActive(etcd::Client& client, const std::string& prefix) {
  FetchedBundle f;
  std::optional<ActivePointer> p = readPointer(client, prefix, &f.pointerModRevision, &f.headerRevision);
  if (!p) return std::nullopt;
  f.pointer = std::move(*p);
  f.bytes = fetchChunks(client, prefix, f.pointer);
  return f;
}

}  // namespace govmesh::mesh
