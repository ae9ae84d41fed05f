// The crash test's victim: appends batches of records (tests/support/lineage_fixture.h) to a
// lineage log as fast as group commit allows and prints "ack <last seq>" after each append
// returns, i.e. only for records that are durable. The driver (tests/lineage_crash_test.cpp)
// kills it with SIGKILL at random moments and checks every acknowledged record afterwards.
//
//   lineage_writer DIR [--seed S] [--records N] [--fail-after-bytes B] [--vkey-out FILE]
//
// --fail-after-bytes makes every write past B bytes (counted over the run) fail with ENOSPC,
// after a short write: the full-disk case. The writer then prints "error <status>" and exits 3;
// it must not crash, and the log must reopen with every acknowledged record.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/support/lineage_fixture.h"

using namespace govmesh::lineage;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: lineage_writer DIR [--seed S] [--records N] [--fail-after-bytes B]\n");
    return 2;
  }
  std::string dir = argv[1];
  uint64_t seed = 1, limit = UINT64_MAX;
  long long failAfter = -1;
  std::string vkeyOut;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--records") limit = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--fail-after-bytes") failAfter = std::strtoll(argv[i + 1], nullptr, 10);
    else if (a == "--vkey-out") vkeyOut = argv[i + 1];
  }
  LogOptions opt;
  opt.origin = testing::kTestOrigin;
  opt.signer = testing::testSigner();
  opt.checkpointEvery = 3000;
  opt.checkpointIntervalMs = 5;
  opt.segmentBytes = 1 << 20;  // many segments, so kills also land on segment creation
  long long written = 0;
  // Writes go out in 16 KiB pieces (the log loops over short writes), so that kills land inside
  // a batch's records far more often than one big pwrite would allow: torn tails get tested.
  opt.hooks.pwrite = [&written, failAfter](int fd, const void* buf, size_t n, off_t off) -> ssize_t {
    size_t allowed = std::min<size_t>(n, 16384);
    if (failAfter >= 0) {
      if (written >= failAfter) {
        errno = ENOSPC;
        return -1;
      }
      allowed = std::min<size_t>(allowed, static_cast<size_t>(failAfter - written));
    }
    ssize_t w = ::pwrite(fd, buf, allowed, off);
    if (w > 0) written += w;
    return w;
  };
  LogStatus st;
  std::string err;
  auto log = Log::open(dir, opt, &st, &err);
  if (!log) {
    std::printf("error open %s: %s\n", std::string(logStatusName(st)).c_str(), err.c_str());
    return 4;
  }
  if (!vkeyOut.empty()) {
    // The node's C2SP verifier key, for `govmesh verify-proof --node-key`.
    FILE* f = std::fopen(vkeyOut.c_str(), "w");
    if (!f) return 4;
    std::fprintf(f, "%s\n", opt.signer->verifier().text().c_str());
    std::fclose(f);
  }
  std::mt19937_64 rng(seed);
  std::vector<Record> batch;
  while (log->size() < limit) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(1 + rng() % 2048, limit - log->size()));
    uint64_t first = log->size() + 1;
    batch.clear();
    for (size_t i = 0; i < n; ++i) batch.push_back(testing::recordFor(first + i));
    uint64_t got = 0;
    st = log->append(batch, &got);
    if (st != LogStatus::kOk) {
      std::printf("error %s: %s\n", std::string(logStatusName(st)).c_str(), log->lastError().c_str());
      std::fflush(stdout);
      return 3;
    }
    if (got != first) {
      std::printf("error seq %llu, expected %llu\n", static_cast<unsigned long long>(got), static_cast<unsigned long long>(first));
      return 5;
    }
    std::printf("ack %llu\n", static_cast<unsigned long long>(first + n - 1));
    std::fflush(stdout);
  }
  return log->close() == LogStatus::kOk ? 0 : 6;
}
