// Shared by the lineage tests and the crash-test writer: a fixed node key, and records whose
// every field derives from their seq, so that a checker can tell an intact record from a torn
// or misplaced one without keeping a copy.
#pragma once

#include <array>
#include <string>

#include "engine/lineage.h"

namespace govmesh::lineage::testing {

/// The origin line of test logs.
inline const std::string kTestOrigin = "govmesh.test/lineage";

/// A deterministic node key (seed 0x42…) named like the origin.
inline NoteSigner testSigner() {
  std::array<uint8_t, 32> seed;
  seed.fill(0x42);
  return *NoteSigner::fromSeed(kTestOrigin, seed);
}

/// The record the tests append at `seq`: sizes vary with seq (about 200-400 bytes).
inline Record recordFor(uint64_t seq) {
  Record r;
  r.seq = seq;
  r.timestampNs = static_cast<int64_t>(seq) * 1000 + 17;
  r.nodeId = "node-1";
  r.bundleDigest.fill(static_cast<uint8_t>(seq % 3));
  r.bundleRevision = 1 + seq / 1000;
  r.principal = {"Workload", "bot-" + std::to_string(seq % 97)};
  r.action = {"Action", seq % 2 ? "deploy" : "read"};
  r.resource = {"Node", "n" + std::to_string(seq) + std::string(seq % 128, 'x')};
  for (size_t i = 0; i < 32; ++i) {
    r.requestDigest[i] = static_cast<uint8_t>(seq >> (i % 8) * 8);
    r.contextDigest[i] = static_cast<uint8_t>(seq * 31 + i);
  }
  for (size_t i = 0; i < 64; ++i) r.signature[i] = static_cast<uint8_t>(seq + i);
  r.allow = seq % 3 != 0;
  if (r.allow) r.reasons = {"policy" + std::to_string(seq % 5)};
  if (seq % 11 == 0) r.errors = {"policy9: attribute `zone` not found"};
  r.denyCode = seq % 13 == 0 ? engine::DenyCode::kBadSignature : engine::DenyCode::kNone;
  if (seq % 13 == 0) {
    r.allow = false;
    r.reasons.clear();
  }
  if (seq % 7 == 0) r.etcdRevision = seq * 2;
  return r;
}

}  // namespace govmesh::lineage::testing
