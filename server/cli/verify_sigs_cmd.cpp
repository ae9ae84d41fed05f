// `govmesh verify-sigs`: Ed25519 verdicts for JSON lines {"pk": hex, "msg": hex, "sig": hex}, one
// `1` (valid) or `0` (invalid) per input line, in input order. Lines are verified in batches so
// that the batch, AVX-512 and CUDA backends see many signatures at once while memory stays bounded
// on inputs of any length (stdin included).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "compiler/entities.h"
#include "compiler/errors.h"
#include "engine/ed25519_verify.h"
#include "server/cli/commands.h"

namespace govmesh::cli {

using cedar::InputError;
using nlohmann::json;

namespace {

// Enough signatures per call for the batched backends to reach their full rate (the batch
// backend's multi-scalar multiplication and a GPU launch both amortise over thousands), while a
// batch of ordinary lines stays well under a megabyte.
constexpr size_t kBatchLines = 4096;

struct VerifySigsArgs {
  std::string backend;
  std::string file;
  bool listBackends = false;
};

std::string joinNames(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s.append(s.empty() ? "" : ", ").append(n);
  return s;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One decoded input line; its bytes live here until the batch holding it is verified.
struct SigLine {
  std::vector<uint8_t> pk, msg, sig;
};

// Decodes field `name` of `obj` (a hex string) into `out`. Wrong lengths are not checked here:
// a 31-byte key is a well-formed input whose signature is simply invalid.
void decodeHexField(const json& obj, const char* name, std::vector<uint8_t>& out, const std::string& file, uint32_t line) {
  auto it = obj.find(name);
  if (it == obj.end()) throw InputError(file, {line, 1}, std::string("missing field \"") + name + "\"");
  if (!it->is_string()) throw InputError(file, {line, 1}, std::string("field \"") + name + "\" must be a hex string, not " + it->type_name());
  const std::string& hex = it->get_ref<const std::string&>();
  if (hex.size() % 2 != 0)
    throw InputError(file, {line, 1}, std::string("field \"") + name + "\": odd-length hex (" + std::to_string(hex.size()) + " digits)");
  out.resize(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = hexDigit(hex[2 * i]), lo = hexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      size_t at = hi < 0 ? 2 * i : 2 * i + 1;
      throw InputError(file, {line, 1},
                       std::string("field \"") + name + "\": non-hex character '" + hex[at] + "' at digit " + std::to_string(at + 1));
    }
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
}

// Parses one input line (line number `lineNo` of `file`) into `out`; throws InputError naming
// FILE:LINE on anything but a JSON object with hex-string fields pk, msg and sig.
void parseLine(const std::string& text, const std::string& file, uint32_t lineNo, SigLine& out) {
  json obj;
  try {
    // parseJsonText refuses deep nesting before parsing and reports the column of a syntax
    // error; it sees one line, so its line number is replaced by ours.
    obj = cedar::parseJsonText(text, file);
  } catch (const InputError& e) {
    throw InputError(file, {lineNo, std::max<uint32_t>(e.loc().column, 1)}, e.message());
  }
  if (!obj.is_object()) throw InputError(file, {lineNo, 1}, std::string("expected a JSON object {\"pk\", \"msg\", \"sig\"}, not ") + obj.type_name());
  decodeHexField(obj, "pk", out.pk, file, lineNo);
  decodeHexField(obj, "msg", out.msg, file, lineNo);
  decodeHexField(obj, "sig", out.sig, file, lineNo);
}

// Verifies `lines` with `backend` and prints one verdict per line. A backend fault at run time
// (a CUDA error, say) is not the input's fault: the batch is verified again with the reference
// backend, so a fault never turns into a wrong verdict.
void verifyAndPrint(const std::string& backend, const std::vector<SigLine>& lines, std::string& outBuf) {
  std::vector<crypto::SigInput> in(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    in[i].pk = {lines[i].pk.data(), lines[i].pk.size()};
    in[i].msg = {lines[i].msg.data(), lines[i].msg.size()};
    in[i].sig = {lines[i].sig.data(), lines[i].sig.size()};
  }
  std::vector<uint8_t> verdicts(lines.size(), 0);
  if (!crypto::ed25519Verify(backend, in, verdicts)) {
    std::cerr << "warning: backend " << backend << " failed at run time; verifying this batch with single\n";
    for (size_t i = 0; i < in.size(); ++i) verdicts[i] = crypto::ed25519VerifyOne(in[i]) ? 1 : 0;
  }
  outBuf.clear();
  for (uint8_t v : verdicts) outBuf.append(v ? "1\n" : "0\n");
  std::cout << outBuf;
}

int runVerifySigs(const VerifySigsArgs& a) {
  if (a.listBackends) {
    for (const std::string& name : crypto::ed25519AvailableBackends()) std::cout << name << "\n";
    return 0;
  }
  if (a.file.empty()) throw InputError("verify-sigs", {}, "missing FILE (a path, or - for standard input)");
  std::string backend = a.backend.empty() ? crypto::ed25519DefaultBackend() : a.backend;
  if (a.backend.empty() && !crypto::ed25519BackendEnforcesCriterion(backend)) {
    throw InputError("GOVMESH_ED25519_BACKEND", {},
                     "'" + backend + "' is for comparison only (another criterion); name it with --backend to use it");
  }
  if (!crypto::ed25519BackendAvailable(backend)) {
    const std::vector<std::string>& known = crypto::ed25519Backends();
    bool isKnown = std::find(known.begin(), known.end(), backend) != known.end();
    std::string where = a.backend.empty() ? " (from GOVMESH_ED25519_BACKEND)" : "";
    throw InputError("--backend", {},
                     (isKnown ? "backend '" + backend + "'" + where + " cannot run on this machine"
                              : "unknown backend '" + backend + "'" + where) +
                         "; available: " + joinNames(crypto::ed25519AvailableBackends()));
  }
  std::ifstream fileStream;
  std::istream* input = &std::cin;
  std::string name = a.file == "-" ? "<stdin>" : a.file;
  if (a.file != "-") {
    std::error_code ec;
    if (std::filesystem::is_directory(a.file, ec)) throw InputError(a.file, {}, "is a directory, not a file of JSON lines");
    fileStream.open(a.file, std::ios::binary);
    if (!fileStream) throw InputError(a.file, {}, "cannot open");
    input = &fileStream;
  }
  std::vector<SigLine> batch;
  batch.reserve(kBatchLines);
  std::string text, outBuf;
  uint32_t lineNo = 0, firstBlank = 0;
  // Verdicts of earlier batches are already printed when a later line turns out to be bad; the
  // exit status 1 tells the caller that the output is incomplete.
  while (std::getline(*input, text)) {
    ++lineNo;
    if (!text.empty() && text.back() == '\r') text.pop_back();  // CRLF files
    // Blank lines at the end of the file are tolerated; one before another input would shift
    // every later verdict off its line, so it is an error.
    if (text.find_first_not_of(" \t") == std::string::npos) {
      if (firstBlank == 0) firstBlank = lineNo;
      continue;
    }
    if (firstBlank != 0) throw InputError(name, {firstBlank, 1}, "empty line (expected a JSON object {\"pk\", \"msg\", \"sig\"})");
    batch.emplace_back();
    parseLine(text, name, lineNo, batch.back());
    if (batch.size() == kBatchLines) {
      verifyAndPrint(backend, batch, outBuf);
      batch.clear();
    }
  }
  if (input->bad()) throw InputError(name, {}, "read error");
  if (!batch.empty()) verifyAndPrint(backend, batch, outBuf);
  std::cout.flush();
  return 0;
}

}  // namespace

void addVerifySigs(CLI::App& app, int& exitCode) {
  auto args = std::make_shared<VerifySigsArgs>();
  CLI::App* cmd = app.add_subcommand("verify-sigs", "Verify Ed25519 signatures given as JSON lines {\"pk\",\"msg\",\"sig\"} (hex); prints 1 or 0 per line");
  cmd->add_option("--backend,-b", args->backend,
                  "Verification backend (default: GOVMESH_ED25519_BACKEND, else the fastest this machine runs; see --list-backends)");
  cmd->add_flag("--list-backends", args->listBackends, "Print the backends this machine can run, one per line, and exit");
  cmd->add_option("file", args->file, "JSON-lines file, or - for standard input");
  cmd->callback([args, &exitCode] { exitCode = runVerifySigs(*args); });
}

}  // namespace govmesh::cli
