// Policy bundle subcommands: keygen, compile, sign, inspect, verify-bundle (engine/bundle.h).
//
// Input formats:
//   --keys K.json    [{"keyId": "bot-1", "publicKey": "<base64 of the raw 32-byte Ed25519 key,
//                     as `govmesh keygen` prints it>", "principal": "Workload::\"bot\"",
//                     "notAfter": "2027-01-01T00:00:00Z" (optional; any Cedar datetime string,
//                     or Unix ms)}]
//   --links L.json   Cedar CLI's template-linked format: [{"template_id": "policy3",
//                     "link_id": "L1", "args": {"?principal": "User::\"a\"", "?resource": ...}}]
//   --ttl            a Cedar duration: 30s, 10m, 1h, 2d, 1h30m
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "compiler/archive.h"
#include "compiler/entities.h"
#include "compiler/errors.h"
#include "compiler/extensions.h"
#include "compiler/parser.h"
#include "engine/bundle.h"
#include "engine/wall_clock.h"
#include "server/cli/commands.h"

namespace govmesh::cli {

using cedar::InputError;
using nlohmann::json;

namespace {

cedar::EntityUid uidArg(const json& j, const std::string& where) {
  if (j.is_string()) return cedar::parseEntityUid(j.get<std::string>(), where);
  return cedar::uidFromJson(j, where);
}

std::vector<engine::WorkloadKey> parseKeys(const std::string& file) {
  json doc = cedar::parseJsonText(cedar::readFile(file), file);
  if (!doc.is_array()) throw InputError(file, {}, "expected a JSON array of workload keys");
  std::vector<engine::WorkloadKey> keys;
  for (size_t i = 0; i < doc.size(); ++i) {
    const json& k = doc[i];
    std::string where = file + ": key [" + std::to_string(i) + "]";
    if (!k.is_object()) throw InputError(where, {}, "expected an object");
    for (auto it = k.begin(); it != k.end(); ++it)
      if (it.key() != "keyId" && it.key() != "publicKey" && it.key() != "principal" && it.key() != "notAfter")
        throw InputError(where, {}, "unknown field \"" + it.key() + "\" (expected keyId, publicKey, principal, notAfter)");
    if (!k.contains("keyId") || !k["keyId"].is_string() || !k.contains("publicKey") || !k["publicKey"].is_string() ||
        !k.contains("principal"))
      throw InputError(where, {}, "needs \"keyId\" and \"publicKey\" strings and a \"principal\"");
    engine::WorkloadKey key;
    key.keyId = k["keyId"].get<std::string>();
    auto raw = crypto::fromBase64(k["publicKey"].get<std::string>());
    if (!raw || raw->size() != key.publicKey.size())
      throw InputError(where, {}, "\"publicKey\" must be the base64 of a raw 32-byte Ed25519 key (as `govmesh keygen` prints it)");
    std::memcpy(key.publicKey.data(), raw->data(), raw->size());
    key.principal = uidArg(k["principal"], where + ".principal");
    if (k.contains("notAfter")) {
      const json& n = k["notAfter"];
      if (n.is_number_integer()) {
        key.notAfterMs = n.get<int64_t>();
      } else if (auto d = n.is_string() ? cedar::parseDatetime(n.get<std::string>()) : std::nullopt) {
        key.notAfterMs = d->ms;
      } else {
        throw InputError(where, {}, "\"notAfter\" must be a datetime such as \"2027-01-01T00:00:00Z\" or Unix ms");
      }
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

std::vector<cedar::TemplateLink> parseLinks(const std::string& file) {
  json doc = cedar::parseJsonText(cedar::readFile(file), file);
  if (!doc.is_array()) throw InputError(file, {}, "expected a JSON array of template links");
  std::vector<cedar::TemplateLink> links;
  for (size_t i = 0; i < doc.size(); ++i) {
    const json& l = doc[i];
    std::string where = file + ": link [" + std::to_string(i) + "]";
    if (!l.is_object() || !l.contains("template_id") || !l["template_id"].is_string() || !l.contains("link_id") ||
        !l["link_id"].is_string())
      throw InputError(where, {}, "expected {\"template_id\": ..., \"link_id\": ..., \"args\": {...}}");
    cedar::TemplateLink link{l["link_id"].get<std::string>(), l["template_id"].get<std::string>(), std::nullopt, std::nullopt};
    if (l.contains("args")) {
      if (!l["args"].is_object()) throw InputError(where, {}, "\"args\" must be an object");
      for (auto it = l["args"].begin(); it != l["args"].end(); ++it) {
        if (it.key() == "?principal") link.principal = uidArg(it.value(), where + ".?principal");
        else if (it.key() == "?resource") link.resource = uidArg(it.value(), where + ".?resource");
        else throw InputError(where, {}, "unknown slot \"" + it.key() + "\" (expected ?principal or ?resource)");
      }
    }
    links.push_back(std::move(link));
  }
  return links;
}

std::vector<crypto::Ed25519PublicKey> trustedKeys(const std::vector<std::string>& files) {
  std::vector<crypto::Ed25519PublicKey> out;
  for (const std::string& f : files) out.push_back(crypto::publicKeyFromPem(cedar::readFile(f), f));
  return out;
}

std::string signerOf(const engine::SignedEnvelope& env) {
  if (env.signerPublicKey.size() != sizeof(crypto::Ed25519PublicKey)) return "(malformed key)";
  crypto::Ed25519PublicKey k{};
  std::memcpy(k.data(), env.signerPublicKey.data(), k.size());
  return crypto::fingerprint(k);
}

int runInspect(const std::string& file) {
  std::string bytes = cedar::readFile(file);
  engine::SignedEnvelope env = engine::readEnvelope(bytes, file);
  bool digestOk = env.digest == crypto::bytesView(crypto::sha256(env.content));
  std::cout << "bundle:           " << file << " (" << bytes.size() << " bytes)\n"
            << "format version:   " << env.formatVersion << "\n"
            << "digest (SHA-256): " << crypto::toHex(env.digest) << (digestOk ? "" : "  DOES NOT MATCH THE CONTENT") << "\n";
  if (!env.isSigned()) {
    std::cout << "signed:           no\n";
  } else {
    std::string verdict = "signature INVALID";
    if (env.signerPublicKey.size() == sizeof(crypto::Ed25519PublicKey)) {
      crypto::Ed25519PublicKey k{};
      std::memcpy(k.data(), env.signerPublicKey.data(), k.size());
      if (crypto::verifyEd25519(k, engine::signedMessage(env.digest), env.signature)) verdict = "signature valid for this key";
    }
    std::cout << "signed:           yes, by " << signerOf(env) << " (" << verdict << "; trust is checked by verify-bundle)\n";
  }
  engine::Bundle b = engine::decodeBundleContent(env.content, file);
  engine::BundleCounts c = engine::countBundle(b);
  int64_t now = engine::wallClockMs();
  std::cout << "revision:         " << b.revision << "\n"
            << "issued at:        " << engine::isoTime(b.issuedAtMs) << "\n"
            << "fresh until:      " << engine::isoTime(b.freshUntilMs) << (engine::isFresh(b, now) ? "" : "  (EXPIRED)") << "\n"
            << "policies:         " << c.policies << " (" << c.links << " template links)\n"
            << "schema:           " << (b.schemaText ? (b.schemaIsJson ? "yes (JSON)" : "yes") : "no") << "\n"
            << "entities:         " << c.entities << "\n"
            << "features:         " << c.features << "\n"
            << "dictionary entries: " << c.dictionaryEntries << "\n"
            << "table bytes:      " << b.table.tableBytes() << "\n"
            << "workload keys:    " << c.keys << "\n";
  for (const engine::WorkloadKey& k : b.keys)
    std::cout << "  " << k.keyId << ": " << cedar::toString(k.principal) << ", " << crypto::fingerprint(k.publicKey)
              << (k.notAfterMs ? ", not after " + engine::isoTime(*k.notAfterMs) : std::string()) << "\n";
  return 0;
}

}  // namespace

void addBundleCommands(CLI::App& app, int& exitCode) {
  {
    struct Args {
      std::string out;
      bool force = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("keygen", "Generate an Ed25519 key pair: BASE.key (PKCS#8 PEM, mode 0600) and BASE.pub");
    cmd->add_option("--out", a->out, "Base path of the key files")->required();
    cmd->add_flag("--force", a->force, "Overwrite existing key files");
    cmd->callback([a, &exitCode] {
      std::string keyPath = a->out + ".key", pubPath = a->out + ".pub";
      for (const std::string& p : {keyPath, pubPath})
        if (!a->force && std::filesystem::exists(p)) throw InputError(p, {}, "file exists (use --force to overwrite)");
      crypto::Ed25519KeyPair kp = crypto::generateEd25519();
      cedar::writeFileAtomic(keyPath, kp.privatePem, 0600);
      cedar::writeFileAtomic(pubPath, kp.publicPem, 0644);
      std::cout << "wrote " << keyPath << " (private: keep it secret) and " << pubPath << "\n"
                << "public key (base64): " << crypto::toBase64(crypto::bytesView(kp.publicKey)) << "\n"
                << "fingerprint: " << crypto::fingerprint(kp.publicKey) << "\n";
      exitCode = 0;
    });
  }
  {
    struct Args {
      std::string policies, entities, schema, keys, links, ttl, out;
      uint64_t revision = 0;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("compile", "Compile policies, entities and keys into an unsigned policy bundle");
    cmd->add_option("--policies,-p", a->policies, "Cedar policy file")->required();
    cmd->add_option("--entities", a->entities, "Entities JSON file");
    cmd->add_option("--schema,-s", a->schema, "Schema (.cedarschema text, or JSON when the name ends in .json)");
    cmd->add_option("--keys", a->keys, "Workload keys JSON: [{keyId, publicKey (base64), principal, notAfter?}]");
    cmd->add_option("--links", a->links, "Template links JSON: [{template_id, link_id, args: {?principal, ?resource}}]");
    cmd->add_option("--revision", a->revision, "Bundle revision (must increase with every bundle)")->required();
    cmd->add_option("--ttl", a->ttl, "Freshness: the bundle expires this long after now (30s, 10m, 1h, 2d)")->required();
    cmd->add_option("--out,-o", a->out, "Output bundle file")->required();
    cmd->callback([a, &exitCode] {
      auto ttl = cedar::parseDuration(a->ttl);
      if (!ttl || ttl->ms <= 0) throw InputError("--ttl", {}, "expected a positive duration such as 30s, 10m, 1h or 2d, got `" + a->ttl + "`");
      engine::BundleSources src;
      src.policyText = cedar::readFile(a->policies);
      src.policyFileName = a->policies;
      if (!a->entities.empty()) {
        src.entitiesJson = cedar::readFile(a->entities);
        src.entitiesFileName = a->entities;
      }
      if (!a->schema.empty()) {
        src.schemaText = cedar::readFile(a->schema);
        src.schemaFileName = a->schema;
        src.schemaIsJson = a->schema.size() >= 5 && a->schema.compare(a->schema.size() - 5, 5, ".json") == 0;
      }
      if (!a->keys.empty()) src.keys = parseKeys(a->keys);
      if (!a->links.empty()) src.links = parseLinks(a->links);
      int64_t now = engine::wallClockMs();
      if (ttl->ms > INT64_MAX - now) throw InputError("--ttl", {}, "duration too long");
      engine::Bundle b = engine::compileBundle(src, a->revision, now, now + ttl->ms);
      cedar::writeFileAtomic(a->out, engine::writeUnsignedBundle(b), 0644);
      std::cout << "wrote " << a->out << ": unsigned bundle, revision " << b.revision << ", " << b.table.policies.size()
                << " policies, fresh until " << engine::isoTime(b.freshUntilMs) << " (sign it with `govmesh sign`)\n";
      exitCode = 0;
    });
  }
  {
    struct Args {
      std::string key, bundle, out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("sign", "Sign a policy bundle with the policy authority's private key");
    cmd->add_option("--key,-k", a->key, "Authority private key (PEM, from `govmesh keygen`)")->required();
    cmd->add_option("bundle", a->bundle, "Bundle file")->required();
    cmd->add_option("--out,-o", a->out, "Output file (default: sign in place)");
    cmd->callback([a, &exitCode] {
      std::string pem = cedar::readFile(a->key);
      std::string signedBytes = engine::signBundle(cedar::readFile(a->bundle), pem, a->bundle, a->key);
      std::string out = a->out.empty() ? a->bundle : a->out;
      cedar::writeFileAtomic(out, signedBytes, 0644);
      std::cout << "signed " << out << " with key " << crypto::fingerprint(crypto::publicKeyFromPem(pem, a->key)) << "\n";
      exitCode = 0;
    });
  }
  {
    auto file = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("inspect", "Describe a policy bundle (trusts nothing; see verify-bundle)");
    cmd->add_option("bundle", *file, "Bundle file")->required();
    cmd->callback([file, &exitCode] { exitCode = runInspect(*file); });
  }
  {
    struct Args {
      std::vector<std::string> trust;
      std::string bundle;
      bool requireFresh = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("verify-bundle", "Verify a bundle's digest and signature against trusted authority keys");
    cmd->add_option("--trust,-t", a->trust, "Trusted authority public key (PEM); repeatable")->required();
    cmd->add_option("bundle", a->bundle, "Bundle file")->required();
    cmd->add_flag("--require-fresh", a->requireFresh, "Also fail (exit 3) when the freshness deadline has passed");
    cmd->callback([a, &exitCode] {
      std::vector<crypto::Ed25519PublicKey> trusted = trustedKeys(a->trust);
      std::string bytes = cedar::readFile(a->bundle);
      engine::Bundle b = engine::loadBundle(bytes, trusted, a->bundle);
      std::string signer = signerOf(engine::readEnvelope(bytes, a->bundle));
      std::cout << "OK: " << a->bundle << ": revision " << b.revision << ", signed by " << signer << ", "
                << b.table.policies.size() << " policies\n";
      if (engine::isFresh(b, engine::wallClockMs())) {
        std::cout << "fresh until " << engine::isoTime(b.freshUntilMs) << "\n";
        exitCode = 0;
      } else {
        std::cout << "warning: freshness deadline passed at " << engine::isoTime(b.freshUntilMs) << "\n";
        exitCode = a->requireFresh ? 3 : 0;
      }
    });
  }
}

}  // namespace govmesh::cli
