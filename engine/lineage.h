// The lineage log: every decision, allow or deny, as a leaf of an RFC 9162 Merkle tree, stored
// append-only, group-committed, and periodically signed as a C2SP checkpoint (ARCHITECTURE.md,
// decision 7; issue 7 items 1-3).
//
// Record, format version 1 (integers little-endian; str = u32 byte length, then the bytes):
//
//   u8  version            1; a reader refuses any other (a new field means a new version)
//   u8  flags              bit 0 allow, bit 1 etcdRevision present, bit 2 request evidence
//                          present; other bits must be 0
//   u8  denyCode           engine::DenyCode value
//   u8  reserved           0
//   u64 seq                1-based position in the log (leaf index + 1; 0 means "no record")
//   i64 timestampNs        the request's timestamp
//   u64 bundleRevision
//   32  bundleDigest       SHA-256 of the policy bundle that decided
//   32  requestDigest      SHA-256 of the request's canonical signing bytes (engine/request.h)
//   32  contextDigest      SHA-256 of the canonical context encoding
//   64  signature          the request's Ed25519 signature (zeros for an unsigned request)
//   u64 etcdRevision       only when flags bit 1 is set (issue 8)
//   str nodeId
//   str principal.type str principal.id str action.type str action.id str resource.type
//   str resource.id
//   u32 count, str each    reasons (policy ids)
//   u32 count, str each    errors
//   -- request evidence, only when flags bit 2 is set (added for batch replay, issue 7 item 4;
//      records without it still decode, and their encoding is unchanged) --
//   str keyId              the WorkloadKey that signed the request
//   16  nonce
//   u8  0 | u8 1, 32       the payload digest the signature covers (engine/request.h)
//   str context            value(context): the canonical context encoding (engine/request.h),
//                          so contextDigest = SHA-256(context)
//
// With the evidence, the canonical signing bytes are rebuilt exactly as engine/request.h lays
// them out (prefix, principal, action, resource, context, keyId, timestampNs, nonce, payload)
// and replay re-verifies the signature and re-evaluates the decision (engine/replay.h).
//
// The encoding is canonical (one byte string per record; the decoder refuses trailing bytes,
// unknown flags and a non-zero reserved byte), so the leaf hash names the record.
//
// Directory layout:
//
//   LOCK                   flock()ed by the one writer
//   seg-<first seq, 20 digits>.log
//                          16-byte header "GMLINSEG" u32 1 u32 0, then frames
//                          [u32 length][u32 CRC32C(length ‖ record)][record]; a batch never
//                          spans two segments, a new segment starts past segmentBytes
//   leaves.hash            leaf hash of record i at offset 32·i (the tree's level 0; interior
//                          nodes are recomputed on demand, see engine/merkle.h)
//   checkpoints.log        16-byte header "GMLINCKP" u32 1 u32 0, then frames
//                          [u32 length][u32 CRC32C(length ‖ note)][signed checkpoint note]
//
// Durability. append() writes every record and leaf hash of the batch, then fdatasync()s both
// files (and the directory when it created a file) before it returns: a record whose append
// returned kOk survives kill -9 and power loss. A checkpoint is written only after the records
// it covers are durable, so on open: records are scanned and CRC-checked, a torn tail (a partial
// or corrupt last frame) is truncated, leaf hashes past the last checkpoint are recomputed from
// the records (those before it were durable when it was signed), and the tree's root at the
// checkpoint's size must equal the signed root, else the log is kCorrupt. A corrupt frame below
// the checkpointed size is never truncated away: that is tampering or media loss, kCorrupt.
//
// Faults. A failed write (ENOSPC, EIO) truncates the batch away and returns kNoSpace/kIoError:
// the caller denies with LINEAGE_UNAVAILABLE and the log stays usable. A failed fdatasync or a
// failed rollback leaves the on-disk state unknown (the kernel may have dropped dirty pages), so
// the log turns kFailed and refuses every later append until it is reopened (and recovered).
//
// Thread-safety: every member function of Log may be called from any thread; one mutex
// serializes them (a batch is the unit of work, so contention is per batch, not per record).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/crypto_types.h"
#include "engine/deny_code.h"
#include "engine/merkle.h"

namespace govmesh::lineage {

/// The record format version this code writes and reads.
inline constexpr uint8_t kRecordVersion = 1;
/// The largest encoded record (a record past it is refused with kInvalidArgument).
inline constexpr size_t kMaxRecordBytes = size_t{1} << 20;

/// An entity reference as the request named it (Cedar type and id text).
struct EntityRef {
  std::string type;  ///< e.g. "Workload"
  std::string id;    ///< e.g. "ci-bot"
  bool operator==(const EntityRef&) const = default;
};

/// What replay needs beyond the digests to rebuild the request's canonical signing bytes and
/// re-evaluate it (layout above). Filled by the service for every request it decoded (use
/// engine::requestEvidence in engine/replay.h); absent for a request that never decoded.
struct RequestEvidence {
  std::string keyId;                      ///< the signing WorkloadKey's id
  std::array<uint8_t, 16> nonce{};        ///< the request's nonce
  std::optional<Hash> payloadDigest;      ///< the payload digest the signature covers, if any
  std::string context;                    ///< value(context), canonical bytes (engine/request.h)
  bool operator==(const RequestEvidence&) const = default;
};

/// One decision as the log keeps it (see the layout above).
struct Record {
  uint64_t seq = 0;                           ///< assigned by Log::append (ignored on input)
  int64_t timestampNs = 0;                    ///< the request's timestamp
  std::string nodeId;                         ///< the deciding node
  Hash bundleDigest{};                        ///< SHA-256 of the deciding bundle
  uint64_t bundleRevision = 0;                ///< its revision
  EntityRef principal, action, resource;      ///< what was asked
  Hash requestDigest{};                       ///< SHA-256 of the canonical signing bytes
  Hash contextDigest{};                       ///< SHA-256 of the canonical context
  crypto::Ed25519Signature signature{};       ///< the request's signature
  bool allow = false;                         ///< the decision
  std::vector<std::string> reasons;           ///< determining policy ids
  std::vector<std::string> errors;            ///< policy evaluation errors
  engine::DenyCode denyCode = engine::DenyCode::kNone;  ///< fault code of a fail-closed deny
  std::optional<uint64_t> etcdRevision;       ///< the etcd revision of the bundle (issue 8)
  /// Filled by the service: the signed fields the digests alone cannot give back (replay).
  std::optional<RequestEvidence> evidence;
  bool operator==(const Record&) const = default;
};

/// Appends the canonical encoding of `r` to `out`, with `seq` in place of r.seq.
void encodeRecord(const Record& r, uint64_t seq, std::string& out);
/// The canonical encoding of `r` (with r.seq).
std::string encodeRecord(const Record& r);
/// Decodes a record; nullopt when the bytes are not exactly one canonical version-1 record.
std::optional<Record> decodeRecord(std::string_view bytes);

/// CRC32C (Castagnoli) of `bytes`, continuing from `crc` (0 to start); hardware-accelerated
/// with SSE4.2 where the CPU has it.
uint32_t crc32c(std::string_view bytes, uint32_t crc = 0);

/// The outcome of a log operation.
enum class LogStatus : uint8_t {
  kOk = 0,
  kIoError = 1,          ///< a read, write or sync failed (errno in lastError())
  kNoSpace = 2,          ///< the disk is full (ENOSPC/EDQUOT); the batch was rolled back
  kCorrupt = 3,          ///< the files contradict themselves or the signed checkpoint
  kFailed = 4,           ///< an earlier fault left the state unknown: reopen to recover
  kReadOnly = 5,         ///< opened read-only
  kInvalidArgument = 6,  ///< a record too large, a bad option, a seq or size out of range
  kLocked = 7,           ///< another writer holds the log
  kClosed = 8,           ///< close() was called
};

/// A short name for a LogStatus ("ok", "io_error", ...).
std::string_view logStatusName(LogStatus s);

/// Fault injection for tests: replaces pwrite(2) and fdatasync(2) on the log's files. A hook
/// returns what the system call would (bytes written or -1 with errno set).
struct LogIoHooks {
  std::function<ssize_t(int fd, const void* buf, size_t n, off_t offset)> pwrite;  ///< default ::pwrite
  std::function<int(int fd)> fdatasync;                                           ///< default ::fdatasync
};

/// How a log is opened.
struct LogOptions {
  /// The checkpoint origin line (C2SP: a schema-less URL naming the log), e.g.
  /// "govmesh.example/lineage/node-1". Required to write.
  std::string origin;
  /// The node key that signs checkpoints. Required to write; a read-only open uses its
  /// verifier when set.
  std::optional<NoteSigner> signer;
  /// Read-only: verify checkpoints with this key (when no signer is given).
  std::optional<NoteVerifier> verifier;
  /// Open without writing anything: no lock, no truncation, recomputed leaf hashes kept in
  /// memory. Reading a log that a writer is appending to sees a consistent prefix.
  bool readOnly = false;
  /// fdatasync every batch before append() returns. Off only for benchmarks and tests that
  /// measure the rest: without it nothing survives a power loss.
  bool sync = true;
  /// Sign a checkpoint once this many records were appended since the last one.
  uint64_t checkpointEvery = 65536;
  /// ...or once this many milliseconds passed since the last one (checked on append and by
  /// maybeCheckpoint(), which a service calls from a timer).
  uint64_t checkpointIntervalMs = 1000;
  /// Start a new segment file once the current one reaches this size.
  uint64_t segmentBytes = uint64_t{256} << 20;
  /// SHA-256 backend for leaf hashes (sha256Batch's names); empty: the best available.
  std::string hashBackend;
  /// Fault injection (tests only).
  LogIoHooks hooks;
};

/// A checkpoint and the signed note it came from.
struct SignedCheckpoint {
  Checkpoint checkpoint;  ///< origin, size, root
  std::string note;       ///< the signed note text, as stored
};

/// The append-only lineage log of one node.
class Log {
 public:
  /// Opens (creating when writable and absent) the log in `dir`, recovering it as described
  /// above. On failure returns nullptr with *status and *error (when given) saying why.
  static std::unique_ptr<Log> open(const std::string& dir, LogOptions options, LogStatus* status = nullptr,
                                   std::string* error = nullptr);
  /// Closes the log (final checkpoint) unless close() was called.
  ~Log();
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  /// Appends a batch as one group commit: seqs size()+1 .. size()+batch.size() in order (the
  /// records' own seq fields are ignored), durable before it returns kOk; *firstSeq (when given)
  /// receives the first. On any other status nothing of the batch is kept and the caller must
  /// deny every decision of the batch with LINEAGE_UNAVAILABLE.
  [[nodiscard]] LogStatus append(std::span<const Record> batch, uint64_t* firstSeq = nullptr);
  /// Signs and stores a checkpoint of the current tree now (nothing to do when the last
  /// checkpoint already covers it).
  [[nodiscard]] LogStatus checkpoint();
  /// Signs a checkpoint when checkpointIntervalMs has passed and records were appended since.
  [[nodiscard]] LogStatus maybeCheckpoint();
  /// Final checkpoint, then releases the files; later appends return kClosed.
  LogStatus close();

  /// Records in the log (the last seq).
  uint64_t size() const;
  /// The newest checkpoint (nullopt when none was signed yet).
  std::optional<SignedCheckpoint> latestCheckpoint() const;
  /// Every stored checkpoint, oldest first (replay verifies each).
  [[nodiscard]] LogStatus checkpoints(std::vector<SignedCheckpoint>& out) const;
  /// Reads up to `max` records from `firstSeq` on (raw encoded bytes, in order) into `out`
  /// (cleared first). kInvalidArgument when firstSeq is 0 or past size() + 1.
  [[nodiscard]] LogStatus readRecords(uint64_t firstSeq, size_t max, std::vector<std::string>& out) const;
  /// Calls fn(firstSeq, records) for consecutive batches of at most `batch` raw records from
  /// `firstSeq` to the end; stops early (kOk) when fn returns false. Replay's entry point.
  [[nodiscard]] LogStatus forEachBatch(uint64_t firstSeq, size_t batch,
                                       const std::function<bool(uint64_t, std::span<const std::string>)>& fn) const;

  /// MTH of the first `size` records; nullopt when size > size() or on an I/O error.
  std::optional<Hash> root(uint64_t size) const;
  /// The leaf hash of the record at `seq`.
  std::optional<Hash> leafHashAt(uint64_t seq) const;
  /// Inclusion proof of the record at `seq` in the tree of `size` records.
  std::optional<std::vector<Hash>> inclusionProof(uint64_t seq, uint64_t size) const;
  /// Consistency proof between the trees of size1 and size2 records.
  std::optional<std::vector<Hash>> consistencyProof(uint64_t size1, uint64_t size2) const;

  /// A description of the last failure (file, operation, errno text).
  std::string lastError() const;

 private:
  struct Impl;
  explicit Log(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace govmesh::lineage
