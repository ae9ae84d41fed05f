#include "compiler/conformance.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "compiler/archive.h"
#include "compiler/errors.h"
#include "compiler/parser.h"

namespace govmesh::cedar {

namespace fs = std::filesystem;
using nlohmann::json;

std::function<Response(const Request&)> referenceAuthorizer(const IntegrationTest& t) {
  return [&t](const Request& r) { return authorize(t.policies, r, t.entities); };
}

namespace {

/// Where a test's files come from: the disk, or the files of an archive held in memory.
class FileSource {
 public:
  virtual ~FileSource() = default;
  /// Reads `relative`, resolved against `base` and then each of base's ancestors in turn (the
  /// integration tests name files relative to the folder above their own, at varying depth).
  virtual std::string read(const fs::path& base, const std::string& relative) const = 0;
};

class DiskSource : public FileSource {
 public:
  std::string read(const fs::path& base, const std::string& relative) const override {
    for (fs::path dir = base;; dir = dir.parent_path()) {
      fs::path p = dir / relative;
      if (fs::exists(p)) return readFile(p.string());
      if (dir.empty() || dir == dir.parent_path()) break;
    }
    throw InputError(relative, {}, "file not found (looked relative to " + base.string() + " and the folders above it)");
  }
};

class ArchiveSource : public FileSource {
 public:
  explicit ArchiveSource(std::map<std::string, std::string> files) : files_(std::move(files)) {}
  std::string read(const fs::path& base, const std::string& relative) const override {
    for (fs::path dir = base;; dir = dir.parent_path()) {
      std::string key = (dir / relative).lexically_normal().generic_string();
      if (auto it = files_.find(key); it != files_.end()) return it->second;
      if (dir.empty()) break;
    }
    throw InputError(relative, {}, "file not found in the archive");
  }
  const std::map<std::string, std::string>& files() const { return files_; }

 private:
  std::map<std::string, std::string> files_;
};

std::vector<std::string> sortedIds(const json& j, const std::string& where) {
  std::vector<std::string> ids;
  if (!j.is_array()) throw InputError(where, {}, "expected an array of policy ids");
  for (const json& x : j) {
    // Newer test files give errors as {"policyId": ..., ...}.
    if (x.is_string()) ids.push_back(x.get<std::string>());
    else if (x.is_object() && x.contains("policyId")) ids.push_back(x["policyId"].get<std::string>());
    else throw InputError(where, {}, "expected a policy id");
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

IntegrationTest loadTest(const std::string& name, const std::string& text, const FileSource& src) {
  json doc = parseJsonText(text, name);
  fs::path base = fs::path(name).parent_path();
  IntegrationTest t;
  t.name = name;
  auto str = [&](const char* key) -> std::string {
    if (!doc.contains(key) || !doc[key].is_string()) throw InputError(name, {}, std::string("missing string field \"") + key + "\"");
    return doc[key].get<std::string>();
  };
  std::string policyFile = str("policies");
  PolicySet ps = parsePolicies(src.read(base, policyFile), policyFile);
  t.policies = ps.policies;
  if (auto e = ps.linkAll(t.policies)) throw InputError(policyFile, {}, *e);
  if (doc.contains("schema") && doc["schema"].is_string()) {
    std::string schemaFile = doc["schema"].get<std::string>();
    std::string schemaText = src.read(base, schemaFile);
    t.schema = schemaFile.size() >= 5 && schemaFile.ends_with(".json") ? parseSchemaJson(schemaText, schemaFile)
                                                                        : parseSchemaText(schemaText, schemaFile);
  }
  std::string entitiesFile = str("entities");
  t.entities = parseEntitiesJson(src.read(base, entitiesFile), entitiesFile, t.schema ? &*t.schema : nullptr);
  if (!doc.contains("requests") || !doc["requests"].is_array()) throw InputError(name, {}, "missing \"requests\" array");
  for (size_t i = 0; i < doc["requests"].size(); ++i) {
    const json& rj = doc["requests"][i];
    std::string where = name + ": requests[" + std::to_string(i) + "]";
    IntegrationTest::Case c;
    c.description = rj.value("description", "request " + std::to_string(i));
    c.request = requestFromJson(rj, t.schema ? &*t.schema : nullptr, where);
    // Like Cedar's test harness: with a schema, requests are validated unless the test says not to.
    if (t.schema && rj.value("validateRequest", true)) {
      if (auto e = validateRequestTypes(*t.schema, c.request.principal, c.request.action, c.request.resource))
        throw InputError(where, {}, "invalid request: " + *e);
    }
    std::string d = rj.value("decision", "");
    if (d != "allow" && d != "deny" && d != "Allow" && d != "Deny") throw InputError(where, {}, "decision must be \"allow\" or \"deny\"");
    c.decision = (d == "allow" || d == "Allow") ? Decision::Allow : Decision::Deny;
    c.reasons = sortedIds(rj.value("reason", json::array()), where + ".reason");
    c.errors = sortedIds(rj.value("errors", json::array()), where + ".errors");
    t.cases.push_back(std::move(c));
  }
  return t;
}

std::string joinIds(const std::vector<std::string>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + ids[i];
  return s + "]";
}

const char* decisionName(Decision d) { return d == Decision::Allow ? "allow" : "deny"; }

struct TestOutcome {
  size_t passed = 0, failed = 0;
  bool loaded = true;
  std::string log;
};

TestOutcome runOne(const std::string& name, const std::string& text, const FileSource& src, const TestAuthorizer& authorize) {
  TestOutcome out;
  IntegrationTest t;
  try {
    t = loadTest(name, text, src);
  } catch (const std::exception& e) {
    // A test that does not load fails all of its requests (counted from the raw JSON).
    size_t n = 1;
    try {
      json doc = json::parse(text);
      if (doc.contains("requests") && doc["requests"].is_array()) n = doc["requests"].size();
    } catch (...) {
    }
    out.loaded = false;
    out.failed = n;
    out.log = "FAIL " + name + ": could not load: " + e.what() + "\n";
    return out;
  }
  std::function<Response(const Request&)> answer;
  try {
    answer = authorize(t);
  } catch (const std::exception& e) {
    out.loaded = false;
    out.failed = t.cases.size();
    out.log = "FAIL " + name + ": engine could not prepare the test: " + e.what() + "\n";
    return out;
  }
  for (const auto& c : t.cases) {
    Response r = answer(c.request);
    std::vector<std::string> reasons = r.reasons, errors;
    std::sort(reasons.begin(), reasons.end());
    for (const auto& e : r.errors) errors.push_back(e.policyId);
    std::sort(errors.begin(), errors.end());
    if (r.decision == c.decision && reasons == c.reasons && errors == c.errors) {
      ++out.passed;
      continue;
    }
    ++out.failed;
    std::ostringstream m;
    m << "FAIL " << name << ": " << c.description << "\n"
      << "  request: principal=" << toString(c.request.principal) << " action=" << toString(c.request.action)
      << " resource=" << toString(c.request.resource) << " context=" << toString(c.request.context) << "\n"
      << "  expected: " << decisionName(c.decision) << " reason=" << joinIds(c.reasons) << " errors=" << joinIds(c.errors) << "\n"
      << "  actual:   " << decisionName(r.decision) << " reason=" << joinIds(reasons) << " errors=" << joinIds(errors) << "\n";
    for (const auto& e : r.errors) m << "    " << e.policyId << ": " << e.message << "\n";
    out.log += m.str();
  }
  return out;
}

bool looksLikeTest(const std::string& text) { return text.find("\"requests\"") != std::string::npos; }

}  // namespace

ConformanceReport runConformance(const std::vector<std::string>& paths, const TestAuthorizer& authorizer, std::ostream& out) {
  ConformanceReport report;
  // Gather (name, text, source) for every test first, then run them in parallel.
  struct Item {
    std::string name;
    std::string text;
    const FileSource* src;
  };
  std::vector<Item> items;
  std::vector<std::unique_ptr<FileSource>> sources;
  auto disk = std::make_unique<DiskSource>();
  const FileSource* diskPtr = disk.get();
  sources.push_back(std::move(disk));
  for (const std::string& p : paths) {
    if (p.ends_with(".tar.gz") || p.ends_with(".tgz")) {
      auto arch = std::make_unique<ArchiveSource>(readTarGz(p));
      for (const auto& [name, text] : arch->files())
        if (name.ends_with(".json") && !name.ends_with(".entities.json") && looksLikeTest(text))
          items.push_back({name, text, arch.get()});
      sources.push_back(std::move(arch));
    } else if (fs::is_directory(p)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file() && e.path().extension() == ".json" && !e.path().string().ends_with(".entities.json"))
          found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      for (const std::string& f : found) {
        std::string text = readFile(f);
        if (looksLikeTest(text)) items.push_back({f, std::move(text), diskPtr});
      }
    } else {
      items.push_back({p, readFile(p), diskPtr});
    }
  }
  std::vector<TestOutcome> outcomes(items.size());
  tbb::parallel_for(size_t{0}, items.size(), [&](size_t i) { outcomes[i] = runOne(items[i].name, items[i].text, *items[i].src, authorizer); });
  for (const TestOutcome& o : outcomes) {
    out << o.log;
    report.passed += o.passed;
    report.failed += o.failed;
    report.tests += 1;
    if (!o.loaded) report.testsNotLoaded += 1;
  }
  return report;
}

}  // namespace govmesh::cedar
