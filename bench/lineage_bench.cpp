// Lineage log append throughput (issue 7 item 6 targets: >= 1 M records/s per core without
// fsync, >= 200 k records/s with group commit). Each run appends batches of typical decision
// records (about 250 bytes; tests/support/lineage_fixture.h) to a fresh log in $TMPDIR, one
// thread. The baseline measured in the same run is encoding + leaf hashing alone (no I/O), so
// the ratio shows what storage costs. Reports records/s as items_per_second, and the SHA-256
// backend used for leaf hashes.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/lineage.h"
#include "engine/sha256_batch.h"
#include "tests/support/lineage_fixture.h"

using namespace govmesh::lineage;

namespace {

std::vector<Record> makeRecords(size_t n) {
  std::vector<Record> out;
  for (size_t i = 0; i < n; ++i) out.push_back(testing::recordFor(i + 1));
  return out;
}

std::string freshDir() {
  const char* t = std::getenv("TMPDIR");
  std::string tmpl = std::string(t ? t : "/tmp") + "/govmesh-lineage-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) std::abort();
  return tmpl;
}

void setLabel(benchmark::State& state) {
  auto avail = govmesh::crypto::sha256AvailableBackends();
  state.SetLabel("sha256=" + (avail.empty() ? std::string("scalar") : avail.front()));
}

// Encoding and batched leaf hashing only: the baseline.
void BM_EncodeAndHash(benchmark::State& state) {
  auto recs = makeRecords(static_cast<size_t>(state.range(0)));
  std::vector<std::string> bytes(recs.size());
  std::vector<std::string_view> views(recs.size());
  std::vector<Hash> hashes(recs.size());
  for (auto _ : state) {
    for (size_t i = 0; i < recs.size(); ++i) {
      bytes[i].clear();
      encodeRecord(recs[i], i + 1, bytes[i]);
      views[i] = bytes[i];
    }
    if (!leafHashBatch(views, hashes)) state.SkipWithError("leaf hashing failed");
    benchmark::DoNotOptimize(hashes.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  setLabel(state);
}

void appendBench(benchmark::State& state, bool sync) {
  auto recs = makeRecords(static_cast<size_t>(state.range(0)));
  std::string dir = freshDir();
  LogOptions o;
  o.origin = testing::kTestOrigin;
  o.signer = testing::testSigner();
  o.sync = sync;
  o.checkpointEvery = 1 << 20;
  o.checkpointIntervalMs = 1000;
  LogStatus st;
  auto log = Log::open(dir + "/log", o, &st);
  if (!log) {
    state.SkipWithError("cannot open the log");
    return;
  }
  for (auto _ : state) {
    if (log->append(recs) != LogStatus::kOk) {
      state.SkipWithError("append failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  log.reset();
  uintmax_t bytes = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  if (state.iterations() > 0) state.counters["bytes_per_record"] = static_cast<double>(bytes) / (state.iterations() * state.range(0));
  std::filesystem::remove_all(dir);
  setLabel(state);
}

void BM_AppendNoSync(benchmark::State& state) { appendBench(state, false); }
void BM_AppendGroupCommit(benchmark::State& state) { appendBench(state, true); }

}  // namespace

BENCHMARK(BM_EncodeAndHash)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AppendNoSync)->Arg(256)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond);
// Group commit waits on the disk, not the CPU: wall-clock time is what a caller sees.
BENCHMARK(BM_AppendGroupCommit)->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
