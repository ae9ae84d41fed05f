// Batch replay of a lineage log (engine/replay.h).
#include "engine/replay.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "compiler/archive.h"
#include "engine/bundle.h"
#include "engine/ed25519_verify.h"
#include "engine/evaluator.h"
#include "engine/merkle.h"
#include "engine/sha256_batch.h"

namespace govmesh::engine {

namespace ln = lineage;

namespace {

constexpr size_t kHeaderBytes = 16, kFrameHeader = 8;
constexpr size_t kMaxDivergences = 1000, kMaxSeqsPerBundle = 100, kMaxFindings = 100;

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

uint32_t le32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

std::string fileHeader(std::string_view magic) {
  std::string h(magic);
  h.append("\x01\0\0\0\0\0\0\0", 8);
  return h;
}

// A read-only mapping of a whole file (replay reads every byte once, in order).
struct Mapped {
  const char* data = nullptr;
  size_t size = 0;
  void* base = MAP_FAILED;
  bool open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return false;
    }
    size = static_cast<size_t>(st.st_size);
    if (size > 0) {
      base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (base == MAP_FAILED) {
        ::close(fd);
        return false;
      }
      ::madvise(base, size, MADV_SEQUENTIAL);
      data = static_cast<const char*>(base);
    }
    ::close(fd);
    return true;
  }
  ~Mapped() {
    if (base != MAP_FAILED) ::munmap(base, size);
  }
};

// One frame read from a segment, at its log position.
struct RawRecord {
  uint64_t seq;  // position (1-based)
  std::string_view bytes;
};

struct Replayer {
  Replayer(const ReplayOptions& o, ReplayReport& r) : opt(o), rep(r) {}

  const ReplayOptions& opt;
  ReplayReport& rep;
  std::unordered_map<std::string, std::shared_ptr<const Bundle>> bundles;  // by raw digest bytes
  std::unordered_map<std::string, std::unique_ptr<FlatTable>> tables;
  std::map<std::string, MissingBundle> missing;
  ln::Hash lastDigest{};
  const Bundle* lastBundle = nullptr;
  FlatTable* lastFlat = nullptr;
  std::unique_ptr<Evaluator> evaluator;
  ln::MerkleTree tree;
  std::string arena;       // a batch's rebuilt signing bytes, reused
  std::string shaBackend;  // the best multi-buffer SHA-256 backend here
  Mapped leavesFile;
  bool haveLeavesFile = false;

  void tamper(uint64_t seq, std::string why) {
    if (!rep.firstTamperedSeq || seq < *rep.firstTamperedSeq) {
      rep.firstTamperedSeq = seq;
      rep.tamperReason = why;
    }
    if (rep.tamperFindings.size() < kMaxFindings) rep.tamperFindings.push_back("seq " + std::to_string(seq) + ": " + why);
  }
  void diverge(uint64_t seq, std::string what) {
    ++rep.divergenceCount;
    if (rep.divergences.size() < kMaxDivergences) rep.divergences.push_back({seq, std::move(what)});
  }

  void loadBundles() {
    rep.bundlesAuthenticated = !opt.trusted.empty();
    DIR* d = ::opendir(opt.bundlesDir.c_str());
    if (!d) {
      rep.bundleProblems.push_back(opt.bundlesDir + ": cannot open the bundles directory: " + std::strerror(errno));
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string path = opt.bundlesDir + "/" + n;
      struct stat st;
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      try {
        std::string bytes = cedar::readFile(path);
        SignedEnvelope env = readEnvelope(bytes, path);
        Bundle b = opt.trusted.empty() ? Bundle{} : loadBundle(bytes, opt.trusted, path);
        if (opt.trusted.empty()) {
          auto dg = crypto::sha256One({reinterpret_cast<const uint8_t*>(env.content.data()), env.content.size()});
          if (env.digest != std::string(reinterpret_cast<const char*>(dg.data()), dg.size())) {
            throw std::runtime_error(path + ": the content does not match its digest (altered bundle)");
          }
          b = decodeBundleContent(env.content, path);
        }
        bundles[env.digest] = std::make_shared<const Bundle>(std::move(b));
      } catch (const std::exception& e) {
        rep.bundleProblems.push_back(e.what());
      }
    }
  }

  const Bundle* bundleFor(const ln::Record& r, FlatTable** flat) {
    // Consecutive records nearly always name the same bundle: skip the map (and the key's
    // allocation) then.
    if (lastBundle && r.bundleDigest == lastDigest) {
      *flat = lastFlat;
      return lastBundle;
    }
    std::string key(reinterpret_cast<const char*>(r.bundleDigest.data()), r.bundleDigest.size());
    auto it = bundles.find(key);
    if (it == bundles.end()) {
      MissingBundle& m = missing[key];
      if (m.digestHex.empty()) m.digestHex = hex(r.bundleDigest.data(), r.bundleDigest.size());
      ++m.records;
      if (m.seqs.size() < kMaxSeqsPerBundle) m.seqs.push_back(r.seq);
      return nullptr;
    }
    auto& t = tables[key];
    if (!t) t = std::make_unique<FlatTable>(it->second->table);
    *flat = t.get();
    lastDigest = r.bundleDigest;
    lastBundle = it->second.get();
    lastFlat = t.get();
    return it->second.get();
  }

  static bool needsBundle(DenyCode c) {
    switch (c) {
      case DenyCode::kNoBundle:
      case DenyCode::kMalformed:
      case DenyCode::kOverloaded:
      case DenyCode::kShuttingDown:
      case DenyCode::kLineageUnavailable: return false;
      default: return true;
    }
  }

  // Steps 3 and 4 for one batch of decoded records.
  void rederive(std::vector<ln::Record>& recs) {
    struct Item {
      size_t rec;
      const Bundle* bundle;
      FlatTable* flat;
      const WorkloadKey* key;
      size_t msgAt, msgLen;  // the rebuilt signing bytes, in `arena`
    };
    std::vector<Item> items;
    items.reserve(recs.size());
    arena.clear();
    std::string one;
    for (size_t i = 0; i < recs.size(); ++i) {
      ln::Record& r = recs[i];
      if (r.denyCode != DenyCode::kNone && (r.allow || !r.reasons.empty())) {
        diverge(r.seq, "fail-closed " + std::string(denyCodeName(r.denyCode)) + " recorded with an allow or reasons");
        continue;
      }
      if (!r.evidence) {
        ++rep.notRederivable;
        continue;
      }
      if (!needsBundle(r.denyCode)) {
        ++rep.acceptedAsRecorded;
        continue;
      }
      FlatTable* flat = nullptr;
      const Bundle* b = bundleFor(r, &flat);
      if (!b) continue;
      Item it{i, b, flat, nullptr, arena.size(), 0};
      if (opt.verifySignatures) {
        rebuildSigningBytes(r, one);
        arena += one;
        it.msgLen = one.size();
      }
      for (const WorkloadKey& k : b->keys) {
        if (k.keyId == r.evidence->keyId) it.key = &k;
      }
      items.push_back(it);
    }
    // The evidence must be what the digests name: SHA-256 of the signing bytes and of the
    // context, in one multi-buffer batch. Only with signature checks: without them the leaf hash
    // (checked against the signed checkpoints) already covers evidence and digests alike, and
    // this check would only catch a node that recorded inconsistent evidence in the first place.
    if (opt.verifySignatures) {
      std::vector<crypto::ByteView> msgs;
      msgs.reserve(2 * items.size());
      const auto* base = reinterpret_cast<const uint8_t*>(arena.data());
      for (const Item& it : items) msgs.push_back({base + it.msgAt, it.msgLen});
      for (const Item& it : items) {
        const std::string& c = recs[it.rec].evidence->context;
        msgs.push_back({reinterpret_cast<const uint8_t*>(c.data()), c.size()});
      }
      std::vector<crypto::Sha256Digest> dg(msgs.size());
      if (!crypto::sha256Batch(shaBackend, msgs, dg)) {
        for (size_t k = 0; k < msgs.size(); ++k) dg[k] = crypto::sha256One(msgs[k]);
      }
      size_t keep = 0;
      for (size_t j = 0; j < items.size(); ++j) {
        const ln::Record& r = recs[items[j].rec];
        if (dg[j] != r.requestDigest || dg[items.size() + j] != r.contextDigest) {
          diverge(r.seq, "the request evidence does not match requestDigest/contextDigest");
          continue;
        }
        items[keep++] = items[j];
      }
      items.resize(keep);
    }
    // Step 3: signatures, one batch.
    std::vector<uint8_t> valid(items.size(), 0);
    if (opt.verifySignatures) {
      std::vector<crypto::SigInput> in;
      std::vector<size_t> where;
      for (size_t j = 0; j < items.size(); ++j) {
        if (!items[j].key) continue;
        const ln::Record& r = recs[items[j].rec];
        crypto::SigInput s;
        s.pk = {items[j].key->publicKey.data(), items[j].key->publicKey.size()};
        s.sig = {r.signature.data(), r.signature.size()};
        s.msg = {reinterpret_cast<const uint8_t*>(arena.data()) + items[j].msgAt, items[j].msgLen};
        in.push_back(s);
        where.push_back(j);
      }
      std::vector<uint8_t> out(in.size(), 0);
      if (!in.empty() && !crypto::ed25519Verify(rep.ed25519Backend, in, out)) {
        for (size_t k = 0; k < in.size(); ++k) out[k] = crypto::ed25519VerifyOne(in[k]) ? 1 : 0;  // reference fallback
      }
      for (size_t k = 0; k < where.size(); ++k) valid[where[k]] = out[k];
      rep.signaturesVerified += in.size();
    }
    // Step 4: evaluation of the NONE records, grouped by bundle (batches rarely span bundles).
    std::vector<size_t> toEval;
    for (size_t j = 0; j < items.size(); ++j) {
      const ln::Record& r = recs[items[j].rec];
      const WorkloadKey* k = items[j].key;
      const int64_t tsMs = r.timestampNs / 1'000'000;
      switch (r.denyCode) {
        case DenyCode::kNone:
          if (!k || k->principal != cedar::EntityUid{r.principal.type, r.principal.id} || (k->notAfterMs && tsMs >= *k->notAfterMs)) {
            diverge(r.seq, "evaluated, but key \"" + r.evidence->keyId + "\" is not registered for the principal in the bundle");
          } else if (opt.verifySignatures && !valid[j]) {
            diverge(r.seq, "evaluated, but the request signature does not verify");
          } else {
            toEval.push_back(j);
          }
          break;
        case DenyCode::kBadSignature:
          if (opt.verifySignatures && k && valid[j]) diverge(r.seq, "recorded BAD_SIGNATURE, but the signature verifies");
          else ++rep.acceptedAsRecorded;
          break;
        case DenyCode::kUnknownKey:
          if (k && !k->notAfterMs) diverge(r.seq, "recorded UNKNOWN_KEY, but key \"" + r.evidence->keyId + "\" is registered");
          else ++rep.acceptedAsRecorded;
          break;
        case DenyCode::kKeyNotPrincipal:
          if (k && k->principal == cedar::EntityUid{r.principal.type, r.principal.id}) diverge(r.seq, "recorded KEY_NOT_PRINCIPAL, but the key is the principal's");
          else ++rep.acceptedAsRecorded;
          break;
        default: ++rep.acceptedAsRecorded; break;
      }
    }
    if (!opt.reevaluate) return;
    for (size_t start = 0; start < toEval.size();) {
      FlatTable* flat = items[toEval[start]].flat;
      size_t end = start;
      std::vector<cedar::Request> reqs;
      std::vector<size_t> idx;
      for (; end < toEval.size() && items[toEval[end]].flat == flat; ++end) {
        ln::Record& r = recs[items[toEval[end]].rec];
        auto ctx = decodeCanonicalValue(r.evidence->context);
        if (!ctx) {
          diverge(r.seq, "the recorded context does not decode");
          continue;
        }
        // The entity names move into the request: nothing reads them from the record after this.
        reqs.push_back({{std::move(r.principal.type), std::move(r.principal.id)},
                        {std::move(r.action.type), std::move(r.action.id)},
                        {std::move(r.resource.type), std::move(r.resource.id)},
                        std::move(*ctx)});
        idx.push_back(items[toEval[end]].rec);
      }
      auto resp = authorizeBatch(*flat, *evaluator, reqs);
      for (size_t k = 0; k < resp.size(); ++k) {
        const ln::Record& r = recs[idx[k]];
        ++rep.decisionsReevaluated;
        std::vector<std::string> errs;
        for (const auto& e : resp[k].errors) errs.push_back(e.policyId + ": " + e.message);
        bool allow = resp[k].decision == cedar::Decision::Allow;
        if (allow != r.allow || resp[k].reasons != r.reasons || errs != r.errors) {
          auto list = [](const std::vector<std::string>& v) {
            std::string s = "[";
            for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
            return s + "]";
          };
          diverge(r.seq, std::string("recorded ") + (r.allow ? "ALLOW " : "DENY ") + list(r.reasons) + ", re-evaluated " +
                             (allow ? "ALLOW " : "DENY ") + list(resp[k].reasons));
        }
      }
      start = end;
    }
  }

  // Steps 1, 3, 4 for a batch of raw records.
  void processBatch(std::vector<RawRecord>& batch) {
    std::vector<std::string_view> views(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) views[i] = batch[i].bytes;
    std::vector<ln::Hash> hashes(batch.size());
    if (!ln::leafHashBatch(views, hashes)) {
      for (size_t i = 0; i < batch.size(); ++i) hashes[i] = ln::leafHash(views[i]);
    }
    const uint64_t first = tree.size();
    tree.append(hashes);
    if (haveLeavesFile) {
      for (size_t i = 0; i < batch.size(); ++i) {
        uint64_t at = (first + i) * sizeof(ln::Hash);
        if (at + sizeof(ln::Hash) > leavesFile.size || std::memcmp(leavesFile.data + at, hashes[i].data(), sizeof(ln::Hash)) != 0) {
          tamper(batch[i].seq, "the record's leaf hash differs from leaves.hash");
          break;  // later mismatches follow from the same edit or are found by the checkpoints
        }
      }
    }
    std::vector<ln::Record> recs;
    recs.reserve(batch.size());
    for (const RawRecord& raw : batch) {
      auto r = ln::decodeRecord(raw.bytes);
      if (!r) {
        tamper(raw.seq, "the record does not decode");
        continue;
      }
      if (r->seq != raw.seq) continue;  // reported by the scan; its outcome is not trusted
      recs.push_back(std::move(*r));
    }
    if (opt.verifySignatures || opt.reevaluate) rederive(recs);
    else {
      for (const ln::Record& r : recs) {
        if (r.denyCode != DenyCode::kNone && (r.allow || !r.reasons.empty())) {
          diverge(r.seq, "fail-closed record with an allow or reasons");
        }
      }
    }
  }

  void run() {
    rep.ed25519Backend = crypto::ed25519DefaultBackend();
    if (opt.verifySignatures && !crypto::ed25519BackendEnforcesCriterion(rep.ed25519Backend)) {
      rep.fatal = "the Ed25519 backend \"" + rep.ed25519Backend + "\" does not enforce govmesh's criterion";
      return;
    }
    if (opt.reevaluate) {
      try {
        evaluator = opt.backend.empty() ? bestEvaluator(false) : makeEvaluator(opt.backend);
      } catch (const std::exception& e) {
        rep.fatal = std::string("evaluation backend: ") + e.what();
        return;
      }
      rep.evalBackend = std::string(evaluator->name());
    }
    auto shas = crypto::sha256AvailableBackends();
    shaBackend = shas.empty() ? std::string() : shas.front();
    loadBundles();
    haveLeavesFile = leavesFile.open(opt.logDir + "/leaves.hash");

    DIR* d = ::opendir(opt.logDir.c_str());
    if (!d) {
      rep.fatal = opt.logDir + ": cannot open the lineage directory: " + std::strerror(errno);
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() == 28 && n.starts_with("seg-") && n.ends_with(".log")) names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());

    // Total for the progress bar: every segment's bytes, estimated in records from the first.
    uint64_t totalBytes = 0, doneBytes = 0;
    for (const auto& n : names) {
      struct stat st;
      if (::stat((opt.logDir + "/" + n).c_str(), &st) == 0) totalBytes += static_cast<uint64_t>(st.st_size);
    }
    uint64_t pos = 1;  // the next position
    std::vector<RawRecord> batch;
    const size_t B = std::max<size_t>(opt.batchSize, 1);
    for (size_t si = 0; si < names.size(); ++si) {
      std::string path = opt.logDir + "/" + names[si];
      Mapped m;
      if (!m.open(path)) {
        tamper(pos, path + ": cannot read the segment");
        break;
      }
      uint64_t firstSeq = std::strtoull(names[si].c_str() + 4, nullptr, 10);
      if (firstSeq != pos) tamper(pos, names[si] + " starts at seq " + std::to_string(firstSeq) + ", expected " + std::to_string(pos));
      if (m.size < kHeaderBytes || std::string_view(m.data, kHeaderBytes) != fileHeader("GMLINSEG")) {
        if (m.size >= kHeaderBytes || si + 1 != names.size()) tamper(pos, names[si] + ": bad segment header");
        continue;
      }
      size_t off = kHeaderBytes;
      const bool last = si + 1 == names.size();
      while (off < m.size) {
        if (m.size - off < kFrameHeader) {
          if (!last) tamper(pos, names[si] + ": partial frame at offset " + std::to_string(off));
          break;  // a torn tail of the newest segment: crash residue, never acknowledged
        }
        uint32_t len = le32(m.data + off), crc = le32(m.data + off + 4);
        if (len == 0 || len > ln::kMaxRecordBytes || len > m.size - off - kFrameHeader) {
          if (!last || len == 0 || len > ln::kMaxRecordBytes) tamper(pos, names[si] + ": bad frame length at offset " + std::to_string(off));
          break;
        }
        std::string_view body(m.data + off + kFrameHeader, len);
        if (ln::crc32c(body, ln::crc32c(std::string_view(m.data + off, 4))) != crc) {
          tamper(pos, names[si] + ": CRC mismatch at offset " + std::to_string(off));
        }
        uint64_t seq = 0;
        if (len >= 12) {
          for (int b = 0; b < 8; ++b) seq |= uint64_t{static_cast<uint8_t>(body[4 + b])} << (8 * b);
        }
        if (seq != pos) tamper(pos, "the record at this position holds seq " + std::to_string(seq) + " (removed or reordered records)");
        batch.push_back({pos, body});
        ++pos;
        off += kFrameHeader + len;
        if (batch.size() == B) {
          processBatch(batch);
          batch.clear();
          if (opt.progress) opt.progress(pos - 1, totalBytes ? (pos - 1) * totalBytes / std::max<uint64_t>(doneBytes + off, 1) : pos - 1);
        }
      }
      if (!batch.empty()) processBatch(batch);  // the mapping ends with this segment
      batch.clear();
      doneBytes += m.size;
      if (opt.progress) opt.progress(pos - 1, pos - 1 + (totalBytes - doneBytes) * (pos - 1) / std::max<uint64_t>(doneBytes, 1));
    }
    rep.records = pos - 1;
    if (haveLeavesFile && leavesFile.size / sizeof(ln::Hash) < rep.records && !rep.firstTamperedSeq) {
      // A crash between the two fdatasyncs can leave leaves.hash short; the checkpoints decide.
    }
    checkCheckpoints();
    for (auto& [k, m] : missing) rep.missingBundles.push_back(std::move(m));
  }

  void checkCheckpoints() {
    Mapped m;
    if (!m.open(opt.logDir + "/checkpoints.log")) return;
    if (m.size < kHeaderBytes || std::string_view(m.data, kHeaderBytes) != fileHeader("GMLINCKP")) {
      tamper(1, "checkpoints.log: bad header");
      return;
    }
    rep.checkpointSignaturesChecked = opt.nodeVerifier || opt.nodePublicKey;
    uint64_t goodUpTo = 0;  // every leaf up to here matches a verified checkpoint
    size_t off = kHeaderBytes;
    while (m.size - off >= kFrameHeader) {
      uint32_t len = le32(m.data + off), crc = le32(m.data + off + 4);
      if (len == 0 || len > m.size - off - kFrameHeader) break;  // torn tail: never acknowledged
      std::string_view note(m.data + off + kFrameHeader, len);
      off += kFrameHeader + len;
      ++rep.checkpoints;
      std::string which = "checkpoint " + std::to_string(rep.checkpoints);
      if (ln::crc32c(note, ln::crc32c(std::string_view(note.data() - kFrameHeader, 4))) != crc) {
        tamper(goodUpTo + 1, which + ": CRC mismatch");
        continue;
      }
      auto parts = ln::splitNote(note);
      auto c = parts ? ln::parseCheckpointBody(parts->first) : std::nullopt;
      if (!c) {
        tamper(goodUpTo + 1, which + ": malformed note");
        continue;
      }
      which += " (size " + std::to_string(c->size) + ")";
      if (rep.checkpointSignaturesChecked) {
        std::vector<ln::NoteVerifier> vs;
        if (opt.nodeVerifier) vs.push_back(*opt.nodeVerifier);
        else {
          for (const auto& name : parts->second) {
            if (auto v = ln::NoteVerifier::fromKey(name, *opt.nodePublicKey)) vs.push_back(*v);
          }
        }
        bool ok = false;
        ln::NoteStatus st = ln::NoteStatus::kNoSignature;
        for (const auto& v : vs) ok = ok || ln::openCheckpoint(note, v, &st).has_value();
        if (!ok) {
          tamper(goodUpTo + 1, which + ": signature " + std::string(ln::noteStatusName(st)) + " under the node key");
          continue;
        }
      }
      if (c->size > rep.records) {
        tamper(rep.records + 1, which + " covers more records than the log holds (" + std::to_string(rep.records) + ")");
        continue;
      }
      auto root = tree.root(c->size);
      if (!root || *root != c->root) {
        std::string why = which + ": the records do not match its signed root (tampered among seqs " +
                          std::to_string(goodUpTo + 1) + ".." + std::to_string(c->size) + ")";
        // A record-level finding inside the range is more precise than the range: keep it first.
        if (rep.firstTamperedSeq && *rep.firstTamperedSeq > goodUpTo && *rep.firstTamperedSeq <= c->size) {
          if (rep.tamperFindings.size() < kMaxFindings) rep.tamperFindings.push_back(why);
        } else {
          tamper(goodUpTo + 1, why);
        }
        continue;
      }
      ++rep.checkpointsVerified;
      goodUpTo = std::max(goodUpTo, c->size);
      rep.coveredRecords = goodUpTo;
    }
  }
};

}  // namespace

ReplayReport replay(const ReplayOptions& options) {
  ReplayReport rep;
  const auto t0 = std::chrono::steady_clock::now();
  Replayer r(options, rep);
  try {
    r.run();
  } catch (const std::exception& e) {
    rep.fatal = e.what();
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

ln::RequestEvidence requestEvidence(const SignedRequest& r, const std::optional<crypto::Sha256Digest>& payloadDigest) {
  ln::RequestEvidence e;
  e.keyId = r.keyId;
  e.nonce = r.nonce;
  e.payloadDigest = payloadDigest;
  appendCanonicalValue(r.context, e.context);
  return e;
}

bool rebuildSigningBytes(const ln::Record& r, std::string& out) {
  out.clear();
  if (!r.evidence) return false;
  auto putStr = [&](std::string_view s) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((s.size() >> (8 * i)) & 0xff));
    out.append(s);
  };
  // The layout of engine/request.h, field for field.
  out.append(kRequestSigningPrefix);
  for (const ln::EntityRef* e : {&r.principal, &r.action, &r.resource}) {
    putStr(e->type);
    putStr(e->id);
  }
  out.append(r.evidence->context);
  putStr(r.evidence->keyId);
  const auto ts = static_cast<uint64_t>(r.timestampNs);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((ts >> (8 * i)) & 0xff));
  out.append(reinterpret_cast<const char*>(r.evidence->nonce.data()), r.evidence->nonce.size());
  out.push_back(r.evidence->payloadDigest ? 1 : 0);
  if (r.evidence->payloadDigest) out.append(reinterpret_cast<const char*>(r.evidence->payloadDigest->data()), 32);
  return true;
}

}  // namespace govmesh::engine
