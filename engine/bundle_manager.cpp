// The node's active policy bundle and its verified hot reload (see bundle_manager.h).
#include "engine/bundle_manager.h"

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>

#include "compiler/errors.h"
#include "engine/crypto_ed25519.h"
#include "engine/wall_clock.h"

namespace govmesh::engine {

namespace {

LoadOutcome refused(LoadRefusal reason, std::string message, uint64_t revision = 0) {
  LoadOutcome out;
  out.reason = reason;
  out.message = std::move(message);
  out.revision = revision;
  return out;
}

LoadOutcome acceptedOutcome(uint64_t revision, bool swapped, std::string message) {
  LoadOutcome out;
  out.accepted = true;
  out.swapped = swapped;
  out.revision = revision;
  out.message = std::move(message);
  return out;
}

// verifyEnvelope() is the one place that decides trust; when it refuses, this only names the
// reason for the caller, re-deriving which of its checks failed in the same order it runs them.
LoadRefusal classifyTrustFailure(const SignedEnvelope& env, const std::vector<crypto::Ed25519PublicKey>& trusted) {
  if (env.digest != crypto::bytesView(crypto::sha256(env.content))) return LoadRefusal::kBadDigest;
  crypto::Ed25519PublicKey signer{};
  if (!env.isSigned() || env.signerPublicKey.size() != signer.size()) return LoadRefusal::kUntrustedSigner;
  std::memcpy(signer.data(), env.signerPublicKey.data(), signer.size());
  if (std::find(trusted.begin(), trusted.end(), signer) == trusted.end()) return LoadRefusal::kUntrustedSigner;
  return LoadRefusal::kBadSignature;
}

std::string describeRevision(uint64_t revision, const std::string& digestHex) {
  return "revision " + std::to_string(revision) + " (digest " + digestHex.substr(0, 16) + ")";
}

}  // namespace

const char* loadRefusalName(LoadRefusal r) {
  switch (r) {
    case LoadRefusal::kNone: return "none";
    case LoadRefusal::kNotABundle: return "not_a_bundle";
    case LoadRefusal::kUnreadable: return "unreadable";
    case LoadRefusal::kBadDigest: return "bad_digest";
    case LoadRefusal::kUntrustedSigner: return "untrusted_signer";
    case LoadRefusal::kBadSignature: return "bad_signature";
    case LoadRefusal::kMalformedContent: return "malformed_content";
    case LoadRefusal::kExpired: return "expired";
    case LoadRefusal::kNotNewer: return "not_newer";
  }
  return "unknown";
}

std::optional<DenyCode> denyCodeFor(BundleState state) {
  switch (state) {
    case BundleState::kFresh: return std::nullopt;
    case BundleState::kStale: return DenyCode::kPolicyStale;
    case BundleState::kNoBundle: break;
  }
  return DenyCode::kNoBundle;  // fail closed on any value, even one outside the enum
}

BundleManager::BundleManager(std::vector<crypto::Ed25519PublicKey> trusted, Clock clock)
    : trusted_(std::move(trusted)), clock_(clock ? std::move(clock) : Clock(wallClockMs)) {}

LoadOutcome BundleManager::offer(std::string_view bytes, std::string_view source) { return offer(bytes, source, std::nullopt); }

LoadOutcome BundleManager::offer(std::string_view bytes, std::string_view source, std::optional<uint64_t> etcdRevision) {
  std::string where(source.empty() ? std::string_view("bundle") : source);
  // The checks throw InputError on bad input; anything else (bad_alloc, a kj::Exception from a
  // path that should have converted it) is still a refusal: the active bundle must survive
  // whatever is offered.
  try {
    return offerChecked(bytes, where, etcdRevision);
  } catch (const cedar::InputError& e) {
    return refused(LoadRefusal::kMalformedContent, e.what());
  } catch (const std::exception& e) {
    return refused(LoadRefusal::kMalformedContent, where + ": " + e.what());
  } catch (...) {
    return refused(LoadRefusal::kMalformedContent, where + ": unexpected error while loading the bundle");
  }
}

LoadOutcome BundleManager::offerChecked(std::string_view bytes, const std::string& where, std::optional<uint64_t> etcdRevision) {
  if (bytes.empty()) return refused(LoadRefusal::kNotABundle, where + ": empty file, not a govmesh bundle");
  if (bytes.size() > kMaxBundleBytes)
    return refused(LoadRefusal::kNotABundle, where + ": " + std::to_string(bytes.size()) + " bytes is larger than any bundle");

  SignedEnvelope env;
  try {
    env = readEnvelope(bytes, where);
  } catch (const cedar::InputError& e) {
    return refused(LoadRefusal::kNotABundle, e.what());
  } catch (const std::exception& e) {
    return refused(LoadRefusal::kNotABundle, where + ": not a govmesh bundle: " + e.what());
  }

  crypto::Ed25519PublicKey signer{};
  try {
    signer = verifyEnvelope(env, trusted_, where);
  } catch (const cedar::InputError& e) {
    return refused(classifyTrustFailure(env, trusted_), e.what());
  }
  // From here the digest is SHA-256 of the content and the authority vouches for it.
  const std::string digestHex = crypto::toHex(env.digest);

  // Re-offering the active content (SIGHUP with an unchanged file) skips the costly decode.
  if (std::shared_ptr<const ActiveBundle> cur = active_.load(); cur && cur->digest == env.digest) {
    const Bundle& b = cur->bundle;
    if (!isFresh(b, nowMs()))
      return refused(LoadRefusal::kExpired,
                     where + ": " + describeRevision(b.revision, digestHex) + " is the active bundle and expired at " + isoTime(b.freshUntilMs),
                     b.revision);
    return acceptedOutcome(b.revision, false, where + ": " + describeRevision(b.revision, digestHex) + " is already active");
  }

  auto next = std::make_shared<ActiveBundle>();
  try {
    next->bundle = decodeBundleContent(env.content, where);
  } catch (const cedar::InputError& e) {
    return refused(LoadRefusal::kMalformedContent, e.what());
  }
  next->digest = std::move(env.digest);
  next->digestHex = digestHex;
  next->signer = signer;
  next->source = where;
  next->etcdRevision = etcdRevision;
  const uint64_t revision = next->bundle.revision;
  const std::string what = describeRevision(revision, digestHex);

  const int64_t now = nowMs();
  if (!isFresh(next->bundle, now))
    return refused(LoadRefusal::kExpired,
                   where + ": " + what + " expired at " + isoTime(next->bundle.freshUntilMs) + " (now " + isoTime(now) + ")", revision);
  next->loadedAtMs = now;

  {
    // Compare and publish under one lock: two offers racing with revisions 5 and 6 end on 6
    // whichever reaches this point first.
    std::lock_guard lock(swapMutex_);
    std::shared_ptr<const ActiveBundle> cur = active_.load();
    if (cur) {
      const uint64_t activeRevision = cur->bundle.revision;
      if (revision == activeRevision && cur->digest == next->digest)
        return acceptedOutcome(revision, false, where + ": " + what + " is already active");
      if (revision == activeRevision)
        return refused(LoadRefusal::kNotNewer,
                       where + ": " + what + " has the active revision but different content (active digest " + cur->digestHex.substr(0, 16) +
                           "); an authority must issue a new revision",
                       revision);
      if (revision < activeRevision)
        return refused(LoadRefusal::kNotNewer,
                       where + ": " + what + " is older than the active revision " + std::to_string(activeRevision), revision);
    }
    active_.store(std::move(next));
  }
  notify();
  return acceptedOutcome(revision, true, where + ": " + what + " is now active");
}

LoadOutcome BundleManager::loadFile(const std::string& path) {
  try {
    // stdio rather than iostreams: fread reports EISDIR and I/O errors through ferror().
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return refused(LoadRefusal::kUnreadable, path + ": cannot open: " + std::strerror(errno));
    std::string bytes;
    char buf[1 << 16];
    bool tooLarge = false;
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
      bytes.append(buf, n);
      if (bytes.size() > kMaxBundleBytes) {
        tooLarge = true;
        break;
      }
    }
    const bool failed = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    if (failed) return refused(LoadRefusal::kUnreadable, path + ": cannot read: " + std::strerror(err));
    if (tooLarge) return refused(LoadRefusal::kNotABundle, path + ": larger than any bundle");
    return offer(bytes, path);
  } catch (const std::exception& e) {
    return refused(LoadRefusal::kUnreadable, path + ": cannot read: " + e.what());
  }
}

std::shared_ptr<const Bundle> BundleManager::active() const {
  std::shared_ptr<const ActiveBundle> cur = active_.load();
  if (!cur) return nullptr;
  // Aliasing: the Bundle pointer owns the whole ActiveBundle, so it stays valid across swaps.
  return std::shared_ptr<const Bundle>(cur, &cur->bundle);
}

std::shared_ptr<const ActiveBundle> BundleManager::current() const { return active_.load(); }

BundleState BundleManager::state(int64_t nowMs) const {
  std::shared_ptr<const ActiveBundle> cur = active_.load();
  if (!cur) return BundleState::kNoBundle;
  if (syncLease_ && !syncLease_->valid(nowMs)) return BundleState::kStale;
  return isFresh(cur->bundle, nowMs) ? BundleState::kFresh : BundleState::kStale;
}

void BundleManager::setSyncLease(std::shared_ptr<const SyncLease> lease) { syncLease_ = std::move(lease); }

std::optional<double> BundleManager::secondsToDeadline(int64_t nowMs) const {
  std::shared_ptr<const ActiveBundle> cur = active_.load();
  if (!cur) return std::nullopt;
  return static_cast<double>(cur->bundle.freshUntilMs - nowMs) / 1000.0;
}

uint64_t BundleManager::revision() const {
  std::shared_ptr<const ActiveBundle> cur = active_.load();
  return cur ? cur->bundle.revision : 0;
}

std::string BundleManager::digestHex() const {
  std::shared_ptr<const ActiveBundle> cur = active_.load();
  return cur ? cur->digestHex : std::string();
}

void BundleManager::onChange(ChangeCallback callback) {
  std::lock_guard lock(notifyMutex_);
  callback_ = std::move(callback);
}

void BundleManager::notify() {
  std::lock_guard lock(notifyMutex_);
  // Re-read rather than pass the swapped bundle: when swaps race, the callback sees the newest
  // one and never goes back to an older revision.
  std::shared_ptr<const ActiveBundle> cur = active_.load();
  if (!cur || (notifiedRevision_ && cur->bundle.revision <= *notifiedRevision_)) return;
  notifiedRevision_ = cur->bundle.revision;
  if (!callback_) return;
  try {
    callback_(cur);
  } catch (...) {
    // The swap has happened and offer() never throws; the callback's owner handles its own
    // failures (the pipeline keeps its previous table, which still fails closed when stale).
  }
}

}  // namespace govmesh::engine
