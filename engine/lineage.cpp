#include "engine/lineage.h"

#include <dirent.h>
#include <fcntl.h>
#include <nmmintrin.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

namespace govmesh::lineage {

// ---------------------------------------------------------------------------------------------
// CRC32C

namespace {

struct Crc32cTable {
  uint32_t t[256];
  Crc32cTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
  }
};

uint32_t crc32cPortable(const uint8_t* p, size_t n, uint32_t crc) {
  static const Crc32cTable table;
  for (size_t i = 0; i < n; ++i) crc = table.t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

__attribute__((target("sse4.2"))) uint32_t crc32cSse42(const uint8_t* p, size_t n, uint32_t crc) {
  uint64_t c = crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
  return c32;
}

}  // namespace

uint32_t crc32c(std::string_view bytes, uint32_t crc) {
  static const bool hw = __builtin_cpu_supports("sse4.2");
  auto p = reinterpret_cast<const uint8_t*>(bytes.data());
  crc = ~crc;
  crc = hw ? crc32cSse42(p, bytes.size(), crc) : crc32cPortable(p, bytes.size(), crc);
  return ~crc;
}

// ---------------------------------------------------------------------------------------------
// Record encoding

namespace {

constexpr uint8_t kFlagAllow = 1, kFlagEtcd = 2, kFlagEvidence = 4;

template <class T>
void putLe(std::string& out, T v) {
  char b[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<char>(static_cast<uint64_t>(v) >> (8 * i));
  out.append(b, sizeof(T));
}

void putStr(std::string& out, std::string_view s) {
  putLe<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

template <size_t N>
void putBytes(std::string& out, const std::array<uint8_t, N>& a) {
  out.append(reinterpret_cast<const char*>(a.data()), N);
}

struct Cursor {
  std::string_view s;
  bool ok = true;
  template <class T>
  T le() {
    if (s.size() < sizeof(T)) {
      ok = false;
      return T{};
    }
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{static_cast<uint8_t>(s[i])} << (8 * i);
    s.remove_prefix(sizeof(T));
    return static_cast<T>(v);
  }
  template <size_t N>
  void bytes(std::array<uint8_t, N>& a) {
    if (s.size() < N) {
      ok = false;
      return;
    }
    std::memcpy(a.data(), s.data(), N);
    s.remove_prefix(N);
  }
  std::string str() {
    uint32_t n = le<uint32_t>();
    if (!ok || s.size() < n) {
      ok = false;
      return {};
    }
    std::string out(s.substr(0, n));
    s.remove_prefix(n);
    return out;
  }
  void strs(std::vector<std::string>& out) {
    uint32_t n = le<uint32_t>();
    // Each string takes at least its 4-byte length: a count past that is malformed, and the
    // check keeps a hostile count from reserving memory.
    if (!ok || n > s.size() / 4) {
      ok = false;
      return;
    }
    out.reserve(n);
    for (uint32_t i = 0; i < n && ok; ++i) out.push_back(str());
  }
};

// The seq sits at a fixed offset so that recovery checks ordering without decoding records.
constexpr size_t kSeqOffset = 4;

}  // namespace

void encodeRecord(const Record& r, uint64_t seq, std::string& out) {
  out.push_back(static_cast<char>(kRecordVersion));
  out.push_back(static_cast<char>((r.allow ? kFlagAllow : 0) | (r.etcdRevision ? kFlagEtcd : 0) | (r.evidence ? kFlagEvidence : 0)));
  out.push_back(static_cast<char>(r.denyCode));
  out.push_back(0);
  putLe<uint64_t>(out, seq);
  putLe<int64_t>(out, r.timestampNs);
  putLe<uint64_t>(out, r.bundleRevision);
  putBytes(out, r.bundleDigest);
  putBytes(out, r.requestDigest);
  putBytes(out, r.contextDigest);
  putBytes(out, r.signature);
  if (r.etcdRevision) putLe<uint64_t>(out, *r.etcdRevision);
  putStr(out, r.nodeId);
  for (const EntityRef* e : {&r.principal, &r.action, &r.resource}) {
    putStr(out, e->type);
    putStr(out, e->id);
  }
  putLe<uint32_t>(out, static_cast<uint32_t>(r.reasons.size()));
  for (const auto& s : r.reasons) putStr(out, s);
  putLe<uint32_t>(out, static_cast<uint32_t>(r.errors.size()));
  for (const auto& s : r.errors) putStr(out, s);
  if (r.evidence) {
    putStr(out, r.evidence->keyId);
    putBytes(out, r.evidence->nonce);
    out.push_back(r.evidence->payloadDigest ? 1 : 0);
    if (r.evidence->payloadDigest) putBytes(out, *r.evidence->payloadDigest);
    putStr(out, r.evidence->context);
  }
}

std::string encodeRecord(const Record& r) {
  std::string out;
  encodeRecord(r, r.seq, out);
  return out;
}

std::optional<Record> decodeRecord(std::string_view bytes) {
  Cursor c{bytes};
  Record r;
  uint8_t version = c.le<uint8_t>(), flags = c.le<uint8_t>(), code = c.le<uint8_t>(), reserved = c.le<uint8_t>();
  if (!c.ok || version != kRecordVersion || (flags & ~(kFlagAllow | kFlagEtcd | kFlagEvidence)) != 0 || reserved != 0) return std::nullopt;
  if (code > static_cast<uint8_t>(engine::DenyCode::kLineageUnavailable)) return std::nullopt;
  r.allow = (flags & kFlagAllow) != 0;
  r.denyCode = static_cast<engine::DenyCode>(code);
  r.seq = c.le<uint64_t>();
  r.timestampNs = c.le<int64_t>();
  r.bundleRevision = c.le<uint64_t>();
  c.bytes(r.bundleDigest);
  c.bytes(r.requestDigest);
  c.bytes(r.contextDigest);
  c.bytes(r.signature);
  if ((flags & kFlagEtcd) != 0) r.etcdRevision = c.le<uint64_t>();
  r.nodeId = c.str();
  for (EntityRef* e : {&r.principal, &r.action, &r.resource}) {
    e->type = c.str();
    e->id = c.str();
  }
  c.strs(r.reasons);
  c.strs(r.errors);
  if ((flags & kFlagEvidence) != 0) {
    RequestEvidence& e = r.evidence.emplace();
    e.keyId = c.str();
    c.bytes(e.nonce);
    uint8_t hasPayload = c.le<uint8_t>();
    if (hasPayload > 1) return std::nullopt;  // canonical: exactly 0 or 1
    if (hasPayload == 1) c.bytes(e.payloadDigest.emplace());
    e.context = c.str();
  }
  if (!c.ok || !c.s.empty()) return std::nullopt;
  return r;
}

std::string_view logStatusName(LogStatus s) {
  switch (s) {
    case LogStatus::kOk: return "ok";
    case LogStatus::kIoError: return "io_error";
    case LogStatus::kNoSpace: return "no_space";
    case LogStatus::kCorrupt: return "corrupt";
    case LogStatus::kFailed: return "failed";
    case LogStatus::kReadOnly: return "read_only";
    case LogStatus::kInvalidArgument: return "invalid_argument";
    case LogStatus::kLocked: return "locked";
    case LogStatus::kClosed: return "closed";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Files

namespace {

constexpr size_t kHeaderBytes = 16;
constexpr size_t kFrameHeader = 8;
constexpr std::string_view kSegMagic = "GMLINSEG";
constexpr std::string_view kCkptMagic = "GMLINCKP";
constexpr size_t kMaxNoteBytes = size_t{1} << 20;

std::string fileHeader(std::string_view magic) {
  std::string h(magic);
  putLe<uint32_t>(h, 1);
  putLe<uint32_t>(h, 0);
  return h;
}

std::string errnoText(const std::string& what, const std::string& path, int err) {
  return what + " " + path + ": " + std::strerror(err);
}

// Reads frames [u32 len][u32 crc32c(len ‖ payload)][payload] sequentially through a buffer, so
// that recovery and replay read large sequential chunks, not one syscall per record.
class FrameReader {
 public:
  enum Result { kFrame, kEnd, kTorn, kIoFail };
  FrameReader(int fd, uint64_t start, uint64_t end, size_t maxPayload)
      : fd_(fd), pos_(start), end_(end), maxPayload_(maxPayload) {}

  Result next(std::string_view& payload) {
    if (pos_ == end_) return kEnd;
    if (!ensure(kFrameHeader)) return ioFail_ ? kIoFail : kTorn;
    const char* h = buf_.data() + (pos_ - bufStart_);
    uint32_t len = 0, crc = 0;
    for (int i = 0; i < 4; ++i) len |= uint32_t{static_cast<uint8_t>(h[i])} << (8 * i);
    for (int i = 0; i < 4; ++i) crc |= uint32_t{static_cast<uint8_t>(h[4 + i])} << (8 * i);
    if (len == 0 || len > maxPayload_) return kTorn;
    if (!ensure(kFrameHeader + len)) return ioFail_ ? kIoFail : kTorn;
    h = buf_.data() + (pos_ - bufStart_);
    std::string_view body(h + kFrameHeader, len);
    if (crc32c(body, crc32c(std::string_view(h, 4))) != crc) return kTorn;
    payload = body;
    pos_ += kFrameHeader + len;
    return kFrame;
  }
  /// Offset of the next frame (the end of the last good one).
  uint64_t pos() const { return pos_; }

 private:
  bool ensure(size_t n) {
    if (pos_ + n > end_) return false;
    if (pos_ >= bufStart_ && pos_ + n <= bufStart_ + buf_.size()) return true;
    size_t want = static_cast<size_t>(std::min<uint64_t>(std::max<size_t>(n, size_t{4} << 20), end_ - pos_));
    buf_.resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t r = ::pread(fd_, buf_.data() + got, want - got, static_cast<off_t>(pos_ + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        ioFail_ = true;
        return false;
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    buf_.resize(got);
    bufStart_ = pos_;
    return got >= n;
  }

  int fd_;
  uint64_t pos_, end_;
  size_t maxPayload_;
  std::string buf_;
  uint64_t bufStart_ = 0;
  bool ioFail_ = false;
};

void appendFrame(std::string& out, std::string_view payload) {
  size_t at = out.size();
  putLe<uint32_t>(out, static_cast<uint32_t>(payload.size()));
  putLe<uint32_t>(out, 0);
  out.append(payload);
  uint32_t crc = crc32c(std::string_view(out.data() + at + kFrameHeader, payload.size()),
                        crc32c(std::string_view(out.data() + at, 4)));
  for (int i = 0; i < 4; ++i) out[at + 4 + i] = static_cast<char>(crc >> (8 * i));
}

std::string segmentName(uint64_t firstSeq) {
  char name[64];
  std::snprintf(name, sizeof name, "seg-%020llu.log", static_cast<unsigned long long>(firstSeq));
  return name;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Log

struct Log::Impl {
  struct Segment {
    uint64_t firstSeq = 0;
    std::string path;
    int fd = -1;
    uint64_t bytes = 0;  // end of the last intact frame
  };
  struct Pos {
    uint32_t segment;
    uint64_t offset;
  };

  std::string dir;
  LogOptions opt;
  mutable std::mutex mu;
  int lockFd = -1, hashFd = -1, ckptFd = -1;
  uint64_t ckptBytes = 0;
  std::vector<Segment> segs;
  std::vector<Pos> index;  // index[k]: where record 256·k + 1 starts
  uint64_t count = 0;
  std::unique_ptr<MerkleTree> tree;
  uint64_t overrideStart = UINT64_MAX;  // read-only: leaf hashes from here on live in memory
  std::vector<Hash> overrideHashes;
  std::optional<SignedCheckpoint> latest;
  std::chrono::steady_clock::time_point lastCkptTime;
  bool failed = false, closed = false;
  std::string error;
  std::string arena;  // the batch's frames, reused between appends

  ~Impl() {
    for (auto& s : segs) {
      if (s.fd >= 0) ::close(s.fd);
    }
    for (int fd : {hashFd, ckptFd, lockFd}) {
      if (fd >= 0) ::close(fd);
    }
  }

  std::string path(const std::string& name) const { return dir + "/" + name; }

  LogStatus fail(LogStatus s, std::string msg) {
    error = std::move(msg);
    return s;
  }
  LogStatus ioFail(const std::string& what, const std::string& file, int err) {
    error = errnoText(what, file, err);
    return (err == ENOSPC || err == EDQUOT) ? LogStatus::kNoSpace : LogStatus::kIoError;
  }

  // 0 or errno. Loops over short writes: a short write followed by ENOSPC is the full-disk case.
  int writeAll(int fd, const char* p, size_t n, uint64_t off) {
    while (n > 0) {
      ssize_t w = opt.hooks.pwrite ? opt.hooks.pwrite(fd, p, n, static_cast<off_t>(off))
                                   : ::pwrite(fd, p, n, static_cast<off_t>(off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return errno;
      if (w == 0) return EIO;
      p += w;
      n -= static_cast<size_t>(w);
      off += static_cast<uint64_t>(w);
    }
    return 0;
  }
  int sync(int fd) {
    int r = opt.hooks.fdatasync ? opt.hooks.fdatasync(fd) : ::fdatasync(fd);
    return r == 0 ? 0 : (errno ? errno : EIO);
  }
  int syncDir(const std::string& d) {
    int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int r = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return r;
  }

  // Creates a file holding only `header`, durable (file and directory entry) on return.
  LogStatus createWithHeader(const std::string& file, std::string_view magic, int& fdOut) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ioFail("cannot create", file, errno);
    std::string h = fileHeader(magic);
    int err = writeAll(fd, h.data(), h.size(), 0);
    if (err == 0) err = sync(fd);
    if (err == 0) err = syncDir(dir);
    if (err != 0) {
      ::close(fd);
      ::unlink(file.c_str());
      return ioFail("cannot initialise", file, err);
    }
    fdOut = fd;
    return LogStatus::kOk;
  }

  bool readLeaves(uint64_t begin, uint64_t end, Hash* out) const {
    for (uint64_t i = begin; i < end && i >= overrideStart; ++i) out[i - begin] = overrideHashes[i - overrideStart];
    uint64_t fileEnd = std::min(end, overrideStart);
    if (begin >= fileEnd) return true;
    size_t want = static_cast<size_t>(fileEnd - begin) * sizeof(Hash);
    size_t got = 0;
    auto* p = reinterpret_cast<char*>(out);
    while (got < want) {
      ssize_t r = ::pread(hashFd, p + got, want - got, static_cast<off_t>(begin * sizeof(Hash) + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    if (end > fileEnd && fileEnd > begin) {
      for (uint64_t i = fileEnd; i < end; ++i) out[i - begin] = overrideHashes[i - overrideStart];
    }
    return true;
  }

  LogStatus openAll();
  LogStatus scanSegments(std::vector<std::string>& names, uint64_t& tornSeg, uint64_t& tornAt);
  LogStatus loadCheckpoints();
  LogStatus rebuildLeaves(uint64_t trustedUpTo);
  LogStatus read(uint64_t firstSeq, size_t max, std::vector<std::string>& out) const;
  LogStatus append(std::span<const Record> batch, uint64_t* firstSeq);
  LogStatus writeCheckpoint();
  LogStatus rollSegment();
  void rollback(size_t seg, uint64_t segBytes, uint64_t hashBytes);
};

LogStatus Log::Impl::scanSegments(std::vector<std::string>& names, uint64_t& tornSeg, uint64_t& tornAt) {
  tornSeg = UINT64_MAX;
  for (size_t i = 0; i < names.size(); ++i) {
    Segment s;
    s.path = path(names[i]);
    s.firstSeq = std::strtoull(names[i].c_str() + 4, nullptr, 10);
    s.fd = ::open(s.path.c_str(), (opt.readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (s.fd < 0) return ioFail("cannot open", s.path, errno);
    segs.push_back(s);
    Segment& seg = segs.back();
    bool last = i + 1 == names.size();
    if (seg.firstSeq != count + 1) return fail(LogStatus::kCorrupt, seg.path + ": starts at seq " + std::to_string(seg.firstSeq) + ", expected " + std::to_string(count + 1));
    struct stat st;
    if (::fstat(seg.fd, &st) != 0) return ioFail("cannot stat", seg.path, errno);
    auto size = static_cast<uint64_t>(st.st_size);
    char hdr[kHeaderBytes];
    if (size < kHeaderBytes || ::pread(seg.fd, hdr, kHeaderBytes, 0) != static_cast<ssize_t>(kHeaderBytes) ||
        std::string_view(hdr, kHeaderBytes) != fileHeader(kSegMagic)) {
      // A crash while creating the newest segment leaves it short; it holds no record yet.
      if (!last || size >= kHeaderBytes) return fail(LogStatus::kCorrupt, seg.path + ": bad segment header");
      if (!opt.readOnly) {
        std::string h = fileHeader(kSegMagic);
        int err = ::ftruncate(seg.fd, 0) == 0 ? writeAll(seg.fd, h.data(), h.size(), 0) : errno;
        if (err == 0) err = sync(seg.fd);
        if (err != 0) return ioFail("cannot repair header of", seg.path, err);
      }
      seg.bytes = kHeaderBytes;
      continue;
    }
    FrameReader fr(seg.fd, kHeaderBytes, size, kMaxRecordBytes);
    std::string_view rec;
    for (;;) {
      auto r = fr.next(rec);
      if (r == FrameReader::kFrame) {
        uint64_t seq = 0;
        if (rec.size() >= kSeqOffset + 8) {
          for (int b = 0; b < 8; ++b) seq |= uint64_t{static_cast<uint8_t>(rec[kSeqOffset + b])} << (8 * b);
        }
        if (seq != count + 1) {
          return fail(LogStatus::kCorrupt, seg.path + ": record at offset " + std::to_string(fr.pos() - rec.size() - kFrameHeader) +
                                               " has seq " + std::to_string(seq) + ", expected " + std::to_string(count + 1));
        }
        if (count % kTileLeaves == 0) index.push_back({static_cast<uint32_t>(segs.size() - 1), fr.pos() - rec.size() - kFrameHeader});
        ++count;
        continue;
      }
      if (r == FrameReader::kIoFail) return ioFail("cannot read", seg.path, errno ? errno : EIO);
      if (r == FrameReader::kTorn) {
        if (!last) return fail(LogStatus::kCorrupt, seg.path + ": corrupt frame at offset " + std::to_string(fr.pos()) + " before the last segment");
        tornSeg = segs.size() - 1;
        tornAt = fr.pos();
      }
      break;
    }
    seg.bytes = fr.pos();
  }
  return LogStatus::kOk;
}

LogStatus Log::Impl::loadCheckpoints() {
  std::string file = path("checkpoints.log");
  ckptFd = ::open(file.c_str(), (opt.readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (ckptFd < 0 && errno == ENOENT) {
    if (opt.readOnly) return LogStatus::kOk;
    LogStatus s = createWithHeader(file, kCkptMagic, ckptFd);
    ckptBytes = kHeaderBytes;
    return s;
  }
  if (ckptFd < 0) return ioFail("cannot open", file, errno);
  struct stat st;
  if (::fstat(ckptFd, &st) != 0) return ioFail("cannot stat", file, errno);
  char hdr[kHeaderBytes];
  if (st.st_size < static_cast<off_t>(kHeaderBytes) || ::pread(ckptFd, hdr, kHeaderBytes, 0) != static_cast<ssize_t>(kHeaderBytes) ||
      std::string_view(hdr, kHeaderBytes) != fileHeader(kCkptMagic)) {
    return fail(LogStatus::kCorrupt, file + ": bad header");
  }
  FrameReader fr(ckptFd, kHeaderBytes, static_cast<uint64_t>(st.st_size), kMaxNoteBytes);
  std::string_view note, lastNote;
  bool any = false;
  std::string keep;
  for (;;) {
    auto r = fr.next(note);
    if (r != FrameReader::kFrame) {
      if (r == FrameReader::kIoFail) return ioFail("cannot read", file, EIO);
      break;
    }
    keep.assign(note);
    any = true;
  }
  ckptBytes = fr.pos();
  if (!opt.readOnly && ckptBytes < static_cast<uint64_t>(st.st_size)) {
    // A torn checkpoint frame: the checkpoint was never acknowledged to anyone; drop it.
    if (::ftruncate(ckptFd, static_cast<off_t>(ckptBytes)) != 0) return ioFail("cannot truncate", file, errno);
    if (int err = sync(ckptFd)) return ioFail("cannot sync", file, err);
  }
  if (!any) return LogStatus::kOk;
  std::optional<NoteVerifier> verifier = opt.signer ? std::optional(opt.signer->verifier()) : opt.verifier;
  std::optional<Checkpoint> c;
  if (verifier) {
    NoteStatus ns;
    c = openCheckpoint(keep, *verifier, &ns);
    if (!c) return fail(LogStatus::kCorrupt, file + ": latest checkpoint: " + std::string(noteStatusName(ns)));
  } else {
    auto parts = splitNote(keep);
    if (parts) c = parseCheckpointBody(parts->first);
    if (!c) return fail(LogStatus::kCorrupt, file + ": latest checkpoint is malformed");
  }
  if (!opt.origin.empty() && c->origin != opt.origin) {
    return fail(LogStatus::kInvalidArgument, file + ": the log's origin is \"" + c->origin + "\", not \"" + opt.origin + "\"");
  }
  latest = SignedCheckpoint{*c, keep};
  return LogStatus::kOk;
}

LogStatus Log::Impl::rebuildLeaves(uint64_t trustedUpTo) {
  std::string file = path("leaves.hash");
  tree = std::make_unique<MerkleTree>([this](uint64_t b, uint64_t e, Hash* out) { return readLeaves(b, e, out); });
  // Leaf hashes below the checkpoint were durable when it was signed; load them as stored.
  std::vector<Hash> buf;
  for (uint64_t i = 0; i < trustedUpTo;) {
    uint64_t n = std::min<uint64_t>(trustedUpTo - i, 1 << 16);
    buf.resize(n);
    overrideStart = UINT64_MAX;
    if (!readLeaves(i, i + n, buf.data())) return ioFail("cannot read", file, errno ? errno : EIO);
    tree->append(buf);
    i += n;
  }
  // Past it, recompute from the records: a crash between the two fdatasyncs of a batch can leave
  // the hash file behind (or holding zeros) while the records survived.
  overrideStart = trustedUpTo;
  overrideHashes.clear();
  std::vector<std::string> recs;
  std::vector<std::string_view> views;
  for (uint64_t seq = trustedUpTo + 1; seq <= count;) {
    LogStatus s = read(seq, 4096, recs);
    if (s != LogStatus::kOk) return s;
    if (recs.empty()) return fail(LogStatus::kCorrupt, "records end before seq " + std::to_string(seq));
    views.assign(recs.begin(), recs.end());
    buf.resize(recs.size());
    if (!leafHashBatch(views, buf, opt.hashBackend)) return fail(LogStatus::kIoError, "leaf hashing failed (backend " + opt.hashBackend + ")");
    overrideHashes.insert(overrideHashes.end(), buf.begin(), buf.end());
    tree->append(buf);
    seq += recs.size();
  }
  if (!opt.readOnly) {
    int err = writeAll(hashFd, reinterpret_cast<const char*>(overrideHashes.data()), overrideHashes.size() * sizeof(Hash),
                       trustedUpTo * sizeof(Hash));
    if (err == 0 && ::ftruncate(hashFd, static_cast<off_t>(count * sizeof(Hash))) != 0) err = errno;
    if (err == 0) err = sync(hashFd);
    if (err != 0) return ioFail("cannot rewrite", file, err);
    overrideStart = UINT64_MAX;
    overrideHashes.clear();
    overrideHashes.shrink_to_fit();
  }
  return LogStatus::kOk;
}

LogStatus Log::Impl::openAll() {
  if (!opt.readOnly) {
    if (!opt.signer) return fail(LogStatus::kInvalidArgument, "a writable log needs a signer (the node key)");
    if (opt.origin.empty() || opt.origin.find('\n') != std::string::npos) return fail(LogStatus::kInvalidArgument, "a writable log needs a one-line origin");
    if (::mkdir(dir.c_str(), 0755) == 0) {
      std::string parent = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.find_last_of('/'));
      if (parent.empty()) parent = "/";
      if (int err = syncDir(parent)) return ioFail("cannot sync", parent, err);
    } else if (errno != EEXIST) {
      return ioFail("cannot create", dir, errno);
    }
    std::string lock = path("LOCK");
    lockFd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lockFd < 0) return ioFail("cannot open", lock, errno);
    if (::flock(lockFd, LOCK_EX | LOCK_NB) != 0) return fail(LogStatus::kLocked, dir + ": another process is writing this log");
  }
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ioFail("cannot open", dir, errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() == 28 && n.starts_with("seg-") && n.ends_with(".log")) names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());  // zero-padded: name order is seq order
  if (names.empty() && !opt.readOnly) {
    Segment s;
    s.firstSeq = 1;
    s.path = path(segmentName(1));
    if (LogStatus st = createWithHeader(s.path, kSegMagic, s.fd); st != LogStatus::kOk) return st;
    s.bytes = kHeaderBytes;
    segs.push_back(s);
  }
  uint64_t tornSeg = UINT64_MAX, tornAt = 0;
  if (LogStatus s = scanSegments(names, tornSeg, tornAt); s != LogStatus::kOk) return s;
  if (LogStatus s = loadCheckpoints(); s != LogStatus::kOk) return s;
  uint64_t ckptSize = latest ? latest->checkpoint.size : 0;
  if (ckptSize > count) {
    return fail(LogStatus::kCorrupt, "the signed checkpoint covers " + std::to_string(ckptSize) + " records but only " +
                                         std::to_string(count) + " are intact");
  }
  if (tornSeg != UINT64_MAX && !opt.readOnly) {
    Segment& s = segs[tornSeg];
    if (::ftruncate(s.fd, static_cast<off_t>(tornAt)) != 0) return ioFail("cannot truncate torn tail of", s.path, errno);
    if (int err = sync(s.fd)) return ioFail("cannot sync", s.path, err);
  }
  std::string hfile = path("leaves.hash");
  hashFd = ::open(hfile.c_str(), opt.readOnly ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  uint64_t stored = 0;
  if (hashFd >= 0) {
    struct stat st;
    if (::fstat(hashFd, &st) != 0) return ioFail("cannot stat", hfile, errno);
    stored = static_cast<uint64_t>(st.st_size) / sizeof(Hash);
    if (!opt.readOnly) {
      if (int err = syncDir(dir)) return ioFail("cannot sync", dir, err);
    }
  } else if (!(opt.readOnly && errno == ENOENT)) {
    return ioFail("cannot open", hfile, errno);
  }
  if (LogStatus s = rebuildLeaves(std::min({stored, ckptSize, count})); s != LogStatus::kOk) return s;
  if (latest) {
    auto r = tree->root(ckptSize);
    if (!r) return fail(LogStatus::kIoError, "cannot read leaf hashes of " + hfile);
    if (*r != latest->checkpoint.root) {
      return fail(LogStatus::kCorrupt, "the records do not match the signed checkpoint of size " + std::to_string(ckptSize) + " (tampered log?)");
    }
  }
  lastCkptTime = std::chrono::steady_clock::now();
  return LogStatus::kOk;
}

LogStatus Log::Impl::read(uint64_t firstSeq, size_t max, std::vector<std::string>& out) const {
  out.clear();
  if (firstSeq == 0 || firstSeq > count + 1) return LogStatus::kInvalidArgument;
  if (firstSeq == count + 1 || max == 0) return LogStatus::kOk;
  const Pos& p = index[(firstSeq - 1) / kTileLeaves];
  uint64_t seq = (firstSeq - 1) / kTileLeaves * kTileLeaves + 1;
  uint64_t want = std::min<uint64_t>(max, count - firstSeq + 1);
  out.reserve(want);
  uint64_t offset = p.offset;
  for (size_t si = p.segment; si < segs.size() && out.size() < want; ++si, offset = kHeaderBytes) {
    FrameReader fr(segs[si].fd, offset, segs[si].bytes, kMaxRecordBytes);
    std::string_view rec;
    while (out.size() < want) {
      auto r = fr.next(rec);
      if (r == FrameReader::kEnd) break;
      if (r != FrameReader::kFrame) return LogStatus::kIoError;  // the file changed under us
      if (seq >= firstSeq) out.emplace_back(rec);
      ++seq;
    }
  }
  return out.size() == want ? LogStatus::kOk : LogStatus::kIoError;
}

void Log::Impl::rollback(size_t seg, uint64_t segBytes, uint64_t hashBytes) {
  // Nothing of a failed batch may stay: a later batch would otherwise follow garbage. If the
  // truncation itself fails, the state is unknown and the log refuses work until reopened.
  if (::ftruncate(segs[seg].fd, static_cast<off_t>(segBytes)) != 0 || ::ftruncate(hashFd, static_cast<off_t>(hashBytes)) != 0) {
    failed = true;
  }
}

LogStatus Log::Impl::rollSegment() {
  Segment s;
  s.firstSeq = count + 1;
  s.path = path(segmentName(s.firstSeq));
  if (LogStatus st = createWithHeader(s.path, kSegMagic, s.fd); st != LogStatus::kOk) return st;
  s.bytes = kHeaderBytes;
  segs.push_back(s);
  return LogStatus::kOk;
}

LogStatus Log::Impl::append(std::span<const Record> batch, uint64_t* firstSeq) {
  if (closed) return LogStatus::kClosed;
  if (opt.readOnly) return LogStatus::kReadOnly;
  if (failed) return LogStatus::kFailed;
  if (firstSeq) *firstSeq = count + 1;
  if (batch.empty()) return LogStatus::kOk;
  arena.clear();
  std::vector<size_t> starts(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    size_t at = arena.size();
    arena.append(kFrameHeader, '\0');
    encodeRecord(batch[i], count + 1 + i, arena);
    size_t len = arena.size() - at - kFrameHeader;
    if (len > kMaxRecordBytes) return fail(LogStatus::kInvalidArgument, "record " + std::to_string(i) + " of the batch is larger than 1 MiB");
    for (int b = 0; b < 4; ++b) arena[at + b] = static_cast<char>(len >> (8 * b));
    uint32_t crc = crc32c(std::string_view(arena.data() + at + kFrameHeader, len), crc32c(std::string_view(arena.data() + at, 4)));
    for (int b = 0; b < 4; ++b) arena[at + 4 + b] = static_cast<char>(crc >> (8 * b));
    starts[i] = at;
  }
  std::vector<std::string_view> views(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    size_t end = i + 1 < batch.size() ? starts[i + 1] : arena.size();
    views[i] = std::string_view(arena.data() + starts[i] + kFrameHeader, end - starts[i] - kFrameHeader);
  }
  std::vector<Hash> hashes(batch.size());
  if (!leafHashBatch(views, hashes, opt.hashBackend)) return fail(LogStatus::kIoError, "leaf hashing failed (backend " + opt.hashBackend + ")");

  if (segs.back().bytes > kHeaderBytes && segs.back().bytes + arena.size() > opt.segmentBytes) {
    if (LogStatus s = rollSegment(); s != LogStatus::kOk) return s;
  }
  size_t si = segs.size() - 1;
  Segment& seg = segs[si];
  uint64_t hashBytes = count * sizeof(Hash);
  if (int err = writeAll(seg.fd, arena.data(), arena.size(), seg.bytes)) {
    rollback(si, seg.bytes, hashBytes);
    return ioFail("cannot append to", seg.path, err);
  }
  if (int err = writeAll(hashFd, reinterpret_cast<const char*>(hashes.data()), hashes.size() * sizeof(Hash), hashBytes)) {
    rollback(si, seg.bytes, hashBytes);
    return ioFail("cannot append to", path("leaves.hash"), err);
  }
  if (opt.sync) {
    int err = sync(seg.fd);
    std::string which = seg.path;
    if (err == 0) {
      err = sync(hashFd);
      which = path("leaves.hash");
    }
    if (err != 0) {
      // After a failed fdatasync the kernel may have dropped the dirty pages: what is on disk is
      // unknown, so stop appending until a reopen re-reads it.
      rollback(si, seg.bytes, hashBytes);
      failed = true;
      return ioFail("cannot sync", which, err);
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if ((count + i) % kTileLeaves == 0) index.push_back({static_cast<uint32_t>(si), seg.bytes + starts[i]});
  }
  seg.bytes += arena.size();
  count += batch.size();
  tree->append(hashes);

  uint64_t since = count - (latest ? latest->checkpoint.size : 0);
  bool due = since >= opt.checkpointEvery ||
             std::chrono::steady_clock::now() - lastCkptTime >= std::chrono::milliseconds(opt.checkpointIntervalMs);
  if (due) {
    // The batch is durable and is answered as such; a failed checkpoint stops the next batch.
    if (writeCheckpoint() != LogStatus::kOk) failed = true;
  }
  return LogStatus::kOk;
}

LogStatus Log::Impl::writeCheckpoint() {
  lastCkptTime = std::chrono::steady_clock::now();
  if (latest && latest->checkpoint.size == count) return LogStatus::kOk;
  auto root = tree->root(count);
  if (!root) return fail(LogStatus::kIoError, "cannot read leaf hashes for the checkpoint");
  Checkpoint c{opt.origin, count, *root};
  std::string note = opt.signer->sign(checkpointBody(c));
  if (note.empty()) return fail(LogStatus::kIoError, "signing the checkpoint failed");
  std::string frame;
  appendFrame(frame, note);
  std::string file = path("checkpoints.log");
  int err = writeAll(ckptFd, frame.data(), frame.size(), ckptBytes);
  if (err == 0 && opt.sync) err = sync(ckptFd);
  if (err != 0) {
    if (::ftruncate(ckptFd, static_cast<off_t>(ckptBytes)) != 0) failed = true;
    return ioFail("cannot write checkpoint to", file, err);
  }
  ckptBytes += frame.size();
  latest = SignedCheckpoint{c, std::move(note)};
  return LogStatus::kOk;
}

Log::Log(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Log::~Log() { close(); }

std::unique_ptr<Log> Log::open(const std::string& dir, LogOptions options, LogStatus* status, std::string* error) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->opt = std::move(options);
  if (impl->opt.segmentBytes < 4096) impl->opt.segmentBytes = 4096;
  LogStatus s = impl->openAll();
  if (status) *status = s;
  if (s != LogStatus::kOk) {
    if (error) *error = impl->error;
    return nullptr;
  }
  return std::unique_ptr<Log>(new Log(std::move(impl)));
}

LogStatus Log::append(std::span<const Record> batch, uint64_t* firstSeq) {
  std::lock_guard lock(impl_->mu);
  return impl_->append(batch, firstSeq);
}

LogStatus Log::checkpoint() {
  std::lock_guard lock(impl_->mu);
  if (impl_->closed) return LogStatus::kClosed;
  if (impl_->opt.readOnly) return LogStatus::kReadOnly;
  if (impl_->failed) return LogStatus::kFailed;
  LogStatus s = impl_->writeCheckpoint();
  if (s != LogStatus::kOk) impl_->failed = true;
  return s;
}

LogStatus Log::maybeCheckpoint() {
  {
    std::lock_guard lock(impl_->mu);
    if (std::chrono::steady_clock::now() - impl_->lastCkptTime < std::chrono::milliseconds(impl_->opt.checkpointIntervalMs)) {
      return LogStatus::kOk;
    }
  }
  return checkpoint();
}

LogStatus Log::close() {
  std::lock_guard lock(impl_->mu);
  if (impl_->closed) return LogStatus::kOk;
  LogStatus s = LogStatus::kOk;
  if (!impl_->opt.readOnly && !impl_->failed) s = impl_->writeCheckpoint();
  impl_->closed = true;
  return s;
}

uint64_t Log::size() const {
  std::lock_guard lock(impl_->mu);
  return impl_->count;
}

std::optional<SignedCheckpoint> Log::latestCheckpoint() const {
  std::lock_guard lock(impl_->mu);
  return impl_->latest;
}

LogStatus Log::checkpoints(std::vector<SignedCheckpoint>& out) const {
  std::lock_guard lock(impl_->mu);
  out.clear();
  if (impl_->ckptFd < 0) return LogStatus::kOk;
  FrameReader fr(impl_->ckptFd, kHeaderBytes, impl_->ckptBytes, kMaxNoteBytes);
  std::string_view note;
  for (;;) {
    auto r = fr.next(note);
    if (r == FrameReader::kEnd) return LogStatus::kOk;
    if (r != FrameReader::kFrame) return LogStatus::kIoError;
    auto parts = splitNote(note);
    std::optional<Checkpoint> c = parts ? parseCheckpointBody(parts->first) : std::nullopt;
    if (!c) return impl_->fail(LogStatus::kCorrupt, "a stored checkpoint is malformed");
    // Signatures are the caller's to check (replay verifies each against the node key).
    out.push_back({*c, std::string(note)});
  }
}

LogStatus Log::readRecords(uint64_t firstSeq, size_t max, std::vector<std::string>& out) const {
  std::lock_guard lock(impl_->mu);
  return impl_->read(firstSeq, max, out);
}

LogStatus Log::forEachBatch(uint64_t firstSeq, size_t batch, const std::function<bool(uint64_t, std::span<const std::string>)>& fn) const {
  std::vector<std::string> recs;
  for (uint64_t seq = firstSeq;;) {
    LogStatus s = readRecords(seq, std::max<size_t>(batch, 1), recs);  // the lock is not held while fn runs
    if (s != LogStatus::kOk) return s;
    if (recs.empty() || !fn(seq, recs)) return LogStatus::kOk;
    seq += recs.size();
  }
}

std::optional<Hash> Log::root(uint64_t size) const {
  std::lock_guard lock(impl_->mu);
  return impl_->tree->root(size);
}

std::optional<Hash> Log::leafHashAt(uint64_t seq) const {
  std::lock_guard lock(impl_->mu);
  if (seq == 0) return std::nullopt;
  return impl_->tree->leaf(seq - 1);
}

std::optional<std::vector<Hash>> Log::inclusionProof(uint64_t seq, uint64_t size) const {
  std::lock_guard lock(impl_->mu);
  if (seq == 0) return std::nullopt;
  return impl_->tree->inclusionProof(seq - 1, size);
}

std::optional<std::vector<Hash>> Log::consistencyProof(uint64_t size1, uint64_t size2) const {
  std::lock_guard lock(impl_->mu);
  return impl_->tree->consistencyProof(size1, size2);
}

std::string Log::lastError() const {
  std::lock_guard lock(impl_->mu);
  return impl_->error;
}

}  // namespace govmesh::lineage
