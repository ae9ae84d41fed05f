// `govmesh replay` (issue 7 item 4): re-checks a lineage log from its files (engine/replay.h):
// checkpoints, leaf hashes, request signatures, decisions. Exit 0 when everything re-derives,
// 2 on any divergence, tampering or missing bundle, 1 on bad input.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "compiler/archive.h"
#include "compiler/errors.h"
#include "engine/crypto_ed25519.h"
#include "engine/replay.h"
#include "server/cli/commands.h"

namespace govmesh::cli {

namespace {

using cedar::InputError;
using nlohmann::json;

// A progress bar on stderr, redrawn at most 10 times a second: done/total, rate, ETA.
struct ProgressBar {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now(), last{};
  void operator()(uint64_t done, uint64_t total) {
    auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::milliseconds(100) && done < total) return;
    last = now;
    double secs = std::chrono::duration<double>(now - start).count();
    double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    double frac = total ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 1.0;
    int filled = static_cast<int>(frac * 30);
    double eta = rate > 0 && total > done ? static_cast<double>(total - done) / rate : 0;
    std::fprintf(stderr, "\r[%-30s] %llu/%llu records  %.0f rec/s  ETA %.0fs ", std::string(filled, '#').c_str(),
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), rate, eta);
  }
};

json toJson(const engine::ReplayReport& r) {
  json j;
  j["ok"] = r.ok();
  j["records"] = r.records;
  j["checkpoints"] = r.checkpoints;
  j["checkpointsVerified"] = r.checkpointsVerified;
  j["checkpointSignaturesChecked"] = r.checkpointSignaturesChecked;
  j["coveredRecords"] = r.coveredRecords;
  j["signaturesVerified"] = r.signaturesVerified;
  j["decisionsReevaluated"] = r.decisionsReevaluated;
  j["acceptedAsRecorded"] = r.acceptedAsRecorded;
  j["notRederivable"] = r.notRederivable;
  j["divergenceCount"] = r.divergenceCount;
  j["divergences"] = json::array();
  for (const auto& d : r.divergences) j["divergences"].push_back({{"seq", d.seq}, {"what", d.what}});
  j["missingBundles"] = json::array();
  for (const auto& m : r.missingBundles) j["missingBundles"].push_back({{"digest", m.digestHex}, {"records", m.records}, {"seqs", m.seqs}});
  j["bundleProblems"] = r.bundleProblems;
  j["bundlesAuthenticated"] = r.bundlesAuthenticated;
  j["firstTamperedSeq"] = r.firstTamperedSeq ? json(*r.firstTamperedSeq) : json(nullptr);
  j["tamperReason"] = r.tamperReason;
  j["tamperFindings"] = r.tamperFindings;
  j["ed25519Backend"] = r.ed25519Backend;
  j["evalBackend"] = r.evalBackend;
  j["seconds"] = r.seconds;
  j["recordsPerSecond"] = r.seconds > 0 ? static_cast<double>(r.records) / r.seconds : 0.0;
  if (!r.fatal.empty()) j["fatal"] = r.fatal;
  return j;
}

void printText(const engine::ReplayReport& r) {
  std::cout << "records: " << r.records << "  (" << static_cast<uint64_t>(r.seconds > 0 ? r.records / r.seconds : 0) << " records/s)\n"
            << "checkpoints verified: " << r.checkpointsVerified << "/" << r.checkpoints
            << (r.checkpointSignaturesChecked ? "" : " (roots only: no --node-key)") << ", records covered: " << r.coveredRecords
            << (r.coveredRecords < r.records ? " (the rest follow the last checkpoint, not yet signed)" : "") << "\n"
            << "signatures re-verified: " << r.signaturesVerified << " (" << r.ed25519Backend << ")\n"
            << "decisions re-evaluated: " << r.decisionsReevaluated << " (" << r.evalBackend << "), fail-closed accepted as recorded: "
            << r.acceptedAsRecorded << ", without evidence: " << r.notRederivable << "\n";
  if (!r.bundlesAuthenticated) std::cout << "note: bundles checked against their digests only (no --trust)\n";
  for (const auto& p : r.bundleProblems) std::cout << "bundle refused: " << p << "\n";
  std::cout << "divergent decisions: " << r.divergenceCount << "\n";
  for (const auto& d : r.divergences) std::cout << "  seq " << d.seq << ": " << d.what << "\n";
  for (const auto& m : r.missingBundles) {
    std::cout << "missing bundle " << m.digestHex << ": needed by " << m.records << " records (seqs";
    for (uint64_t s : m.seqs) std::cout << " " << s;
    std::cout << (m.records > m.seqs.size() ? " ...)\n" : ")\n");
  }
  if (r.firstTamperedSeq) std::cout << "TAMPERED: first tampered seq " << *r.firstTamperedSeq << ": " << r.tamperReason << "\n";
  for (const auto& t : r.tamperFindings) std::cout << "  " << t << "\n";
  if (!r.fatal.empty()) std::cout << "FAILED: " << r.fatal << "\n";
  std::cout << (r.ok() ? "OK: the log replays\n" : "FAILED: the log does not replay\n");
}

}  // namespace

void addReplay(CLI::App& app, int& exitCode) {
  struct Args {
    std::string log, bundles, nodeKey, backend;
    std::vector<std::string> trust;
    bool json = false, noVerify = false;
    size_t batch = 8192;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("replay", "Re-verify a lineage log: checkpoints, leaf hashes, request signatures, decisions");
  cmd->add_option("--log", a->log, "Lineage log directory")->required();
  cmd->add_option("--bundles", a->bundles, "Directory of the policy bundles the records name (by digest)")->required();
  cmd->add_option("--node-key", a->nodeKey, "The node's public key: PEM (govmesh keygen) or a C2SP verifier key");
  cmd->add_option("--trust", a->trust, "Trusted authority public key (PEM); repeatable");
  cmd->add_option("--backend", a->backend, "Evaluation backend (scalar, avx2, avx512, cuda; default: the best CPU one)");
  cmd->add_option("--batch", a->batch, "Records per batch");
  cmd->add_flag("--no-verify-signatures", a->noVerify, "Skip request signature re-verification");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  cmd->callback([a, &exitCode] {
    engine::ReplayOptions o;
    o.logDir = a->log;
    o.bundlesDir = a->bundles;
    o.backend = a->backend;
    o.batchSize = a->batch;
    o.verifySignatures = !a->noVerify;
    if (!a->nodeKey.empty()) {
      std::string text = cedar::readFile(a->nodeKey);
      if (text.find("-----BEGIN") != std::string::npos) {
        o.nodePublicKey = crypto::publicKeyFromPem(text, a->nodeKey);
      } else {
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
        o.nodeVerifier = lineage::NoteVerifier::parse(text);
        if (!o.nodeVerifier) throw InputError(a->nodeKey, {}, "not a PEM Ed25519 key nor a C2SP verifier key (name+hex8+base64)");
      }
    }
    for (const auto& t : a->trust) o.trusted.push_back(crypto::publicKeyFromPem(cedar::readFile(t), t));
    auto bar = std::make_shared<ProgressBar>();
    if (::isatty(2)) o.progress = [bar](uint64_t d, uint64_t t) { (*bar)(d, t); };
    engine::ReplayReport r = engine::replay(o);
    if (o.progress) std::fprintf(stderr, "\n");
    if (a->json) std::cout << toJson(r).dump() << "\n";
    else printText(r);
    exitCode = !r.fatal.empty() && r.records == 0 ? 1 : (r.ok() ? 0 : 2);
  });
}

}  // namespace govmesh::cli
