// Reading a key directory's workloads.json (format in server/workload.h).
#include "server/workload.h"

#include <filesystem>

#include "compiler/archive.h"
#include "compiler/entities.h"
#include "compiler/errors.h"
#include "compiler/parser.h"
#include "engine/crypto_ed25519.h"

namespace govmesh::server {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& file, const std::string& field, const std::string& message) {
  throw cedar::InputError(file, {}, field + ": " + message);
}

std::string resolve(const std::string& baseDir, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_absolute() || baseDir.empty()) return path;
  return (std::filesystem::path(baseDir) / p).string();
}

const json& member(const json& obj, const char* key, const std::string& file, const std::string& field) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(file, field, std::string("missing field \"") + key + "\"");
  return *it;
}

std::string stringField(const json& obj, const char* key, const std::string& file, const std::string& field) {
  const json& v = member(obj, key, file, field);
  if (!v.is_string()) fail(file, field + "." + key, "expected a string");
  return v.get<std::string>();
}

std::optional<std::string> optionalString(const json& obj, const char* key, const std::string& file) {
  auto it = obj.find(key);
  if (it == obj.end()) return std::nullopt;
  if (!it->is_string()) fail(file, key, "expected a string");
  return it->get<std::string>();
}

cedar::EntityUid uidField(const json& obj, const char* key, const std::string& file, const std::string& field) {
  std::string text = stringField(obj, key, file, field);
  try {
    return cedar::parseEntityUid(text, key);
  } catch (const cedar::InputError& e) {
    fail(file, field + "." + key, "not an entity uid like Type::\"id\" (" + e.message() + ")");
  }
}

// Replaces placeholder strings in place (see workload.h).
void substitute(json& j, int64_t nowMs) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s == "$now") {
      j = json{{"__extn", {{"fn", "datetime"}, {"arg", engine::isoTime(nowMs)}}}};
    } else if (s == "$nowMs") {
      j = nowMs;
    } else if (s == "$hourUtc") {
      j = (nowMs / 3'600'000) % 24;
    }
  } else if (j.is_array() || j.is_object()) {
    for (auto& e : j) substitute(e, nowMs);
  }
}

}  // namespace

bool hasPlaceholder(const json& j) {
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    return s == "$now" || s == "$nowMs" || s == "$hourUtc";
  }
  if (j.is_array() || j.is_object()) {
    for (const auto& e : j) {
      if (hasPlaceholder(e)) return true;
    }
  }
  return false;
}

cedar::Value materializeContext(const RequestTemplate& t, const cedar::Schema* schema, int64_t nowMs) {
  if (t.fixedContext) return *t.fixedContext;
  json j = t.contextJson;
  substitute(j, nowMs);
  return cedar::contextFromJson(j, schema, t.action, t.where + ".context");
}

WorkloadSet parseWorkloads(std::string_view text, const std::string& fileName, const std::string& baseDir,
                           const cedar::Schema* schema) {
  json root = cedar::parseJsonText(text, fileName);
  if (!root.is_object()) fail(fileName, "(top level)", "expected an object with a \"workloads\" array");
  WorkloadSet set;
  set.file = fileName;
  if (auto b = optionalString(root, "bundle", fileName)) set.bundlePath = resolve(baseDir, *b);
  if (auto a = optionalString(root, "authority", fileName)) set.authorityPath = resolve(baseDir, *a);
  const json& list = member(root, "workloads", fileName, "(top level)");
  if (!list.is_array() || list.empty()) fail(fileName, "workloads", "expected a non-empty array");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& w = list[i];
    std::string field = "workloads[" + std::to_string(i) + "]";
    if (!w.is_object()) fail(fileName, field, "expected an object");
    WorkloadSpec spec;
    spec.keyId = stringField(w, "keyId", fileName, field);
    if (spec.keyId.empty()) fail(fileName, field + ".keyId", "must not be empty");
    for (const WorkloadSpec& other : set.workloads) {
      if (other.keyId == spec.keyId) fail(fileName, field + ".keyId", "duplicate keyId \"" + spec.keyId + "\"");
    }
    spec.principal = uidField(w, "principal", fileName, field);
    spec.keyPath = resolve(baseDir, stringField(w, "key", fileName, field));
    try {
      spec.privatePem = cedar::readFile(spec.keyPath);
      spec.publicKey = crypto::publicKeyFromPem(spec.privatePem, spec.keyPath);
    } catch (const cedar::InputError& e) {
      fail(fileName, field + ".key", e.what());
    }
    if (spec.privatePem.find("PRIVATE KEY") == std::string::npos) {
      fail(fileName, field + ".key", spec.keyPath + " holds no private key");
    }
    const json& reqs = member(w, "requests", fileName, field);
    if (!reqs.is_array() || reqs.empty()) fail(fileName, field + ".requests", "expected a non-empty array");
    for (size_t j = 0; j < reqs.size(); ++j) {
      const json& r = reqs[j];
      std::string rf = field + ".requests[" + std::to_string(j) + "]";
      if (!r.is_object()) fail(fileName, rf, "expected an object");
      RequestTemplate t;
      t.where = fileName + ": " + rf;
      t.action = uidField(r, "action", fileName, rf);
      t.resource = uidField(r, "resource", fileName, rf);
      if (auto it = r.find("context"); it != r.end()) {
        if (!it->is_object()) fail(fileName, rf + ".context", "expected an object (a Cedar record)");
        t.contextJson = *it;
      }
      if (auto it = r.find("weight"); it != r.end()) {
        if (!it->is_number() || !(it->get<double>() > 0)) fail(fileName, rf + ".weight", "expected a number > 0");
        t.weight = it->get<double>();
      }
      // Read the context now, so that a bad one is reported before any load is sent; with a
      // placeholder, read it once with a sample time for the same reason.
      try {
        cedar::Value v = materializeContext(t, schema, 0);
        if (!hasPlaceholder(t.contextJson)) t.fixedContext = std::move(v);
      } catch (const cedar::InputError& e) {
        fail(fileName, rf + ".context", e.message());
      }
      spec.requests.push_back(std::move(t));
    }
    set.workloads.push_back(std::move(spec));
  }
  return set;
}

WorkloadSet loadWorkloads(const std::string& dir) {
  std::string file = (std::filesystem::path(dir) / "workloads.json").string();
  std::string text = cedar::readFile(file);
  // The bundle is loaded first: its schema directs how contexts are read, as on the node.
  json root = cedar::parseJsonText(text, file);
  std::shared_ptr<const engine::Bundle> bundle;
  std::optional<std::string> bundlePath;
  if (root.is_object()) {
    if (auto b = optionalString(root, "bundle", file)) {
      bundlePath = resolve(dir, *b);
      std::string bytes = cedar::readFile(*bundlePath);
      std::vector<crypto::Ed25519PublicKey> trusted;
      if (auto a = optionalString(root, "authority", file)) {
        std::string path = resolve(dir, *a);
        trusted.push_back(crypto::publicKeyFromPem(cedar::readFile(path), path));
      } else {
        engine::SignedEnvelope env = engine::readEnvelope(bytes, *bundlePath);
        if (env.signerPublicKey.size() != crypto::Ed25519PublicKey{}.size()) {
          fail(file, "bundle", *bundlePath + " is not signed");
        }
        crypto::Ed25519PublicKey k{};
        std::copy(env.signerPublicKey.begin(), env.signerPublicKey.end(), k.begin());
        trusted.push_back(k);
      }
      bundle = std::make_shared<const engine::Bundle>(engine::loadBundle(bytes, trusted, *bundlePath));
    }
  }
  WorkloadSet set = parseWorkloads(text, file, dir, bundle ? bundle->schema.get() : nullptr);
  set.bundle = std::move(bundle);
  return set;
}

}  // namespace govmesh::server
