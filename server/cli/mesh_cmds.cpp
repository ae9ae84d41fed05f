// The mesh commands (issue 8):
//   govmesh publish --etcd URLS --bundle B [--prefix /govmesh]  writes a signed bundle and the
//                   active pointer to etcd (server/mesh_store.h); every node watching the prefix
//                   verifies and activates it.
//   govmesh mesh-demo [--json]  runs the whole mesh scenario on this machine: a three-member
//                   etcd cluster and three decision nodes on loopback (server/mesh_demo.h).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/archive.h"
#include "compiler/errors.h"
#include "engine/bundle.h"
#include "engine/crypto_ed25519.h"
#include "server/cli/commands.h"
#include "server/etcd_client.h"
#include "server/mesh_demo.h"
#include "server/mesh_store.h"

namespace govmesh::cli {

namespace {

struct PublishArgs {
  std::string etcd, bundle, prefix = "/govmesh";
  uint64_t maxRequestBytes = 1572864;
  uint64_t keep = 4;
  std::vector<std::string> trust;
};

std::vector<std::string> endpointList(const std::string& list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : list + ",") {
    if (c != ',') {
      cur += c;
      continue;
    }
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  }
  return out;
}

int runPublish(const PublishArgs& a) {
  const std::string bytes = cedar::readFile(a.bundle);
  if (!a.trust.empty()) {
    // Optional, and only a convenience: every node verifies again before it activates anything.
    std::vector<crypto::Ed25519PublicKey> keys;
    for (const std::string& f : a.trust) keys.push_back(crypto::publicKeyFromPem(cedar::readFile(f), f));
    try {
      (void)engine::verifyEnvelope(engine::readEnvelope(bytes, a.bundle), keys, a.bundle);
    } catch (const cedar::InputError& e) {
      std::cerr << "govmesh publish: not published: " << e.what() << std::endl;
      return 1;
    }
  }
  etcd::ClientOptions co;
  co.endpoints = endpointList(a.etcd);
  etcd::Client client(co);
  mesh::PublishOptions po;
  po.prefix = a.prefix;
  po.maxRequestBytes = a.maxRequestBytes;
  po.keepRevisions = a.keep;
  mesh::PublishResult r;
  try {
    r = mesh::publishBundle(client, bytes, po);
  } catch (const std::invalid_argument& e) {
    std::cerr << "govmesh publish: " << a.bundle << ": " << e.what() << std::endl;
    return 1;
  } catch (const etcd::Error& e) {
    std::cerr << "govmesh publish: etcd: " << e.what() << std::endl;
    return 1;
  }
  std::cout << "published bundle revision " << r.pointer.revision << " (digest " << r.pointer.digestHex.substr(0, 16) << "..., "
            << r.pointer.size << " bytes in " << r.chunks << " chunk" << (r.chunks == 1 ? "" : "s") << ") at etcd revision "
            << r.etcdRevision << " under " << a.prefix << std::endl;
  return 0;
}

int runMeshDemo(bool json, const server::MeshDemoOptions& o) {
  server::MeshDemoReport r = server::runMeshDemo(o, json ? nullptr : &std::cerr);
  nlohmann::json j = server::meshDemoJson(r);
  if (json) {
    std::cout << j.dump() << std::endl;
  } else {
    std::cout << j.dump(2) << std::endl;
  }
  return r.passed() ? 0 : 2;
}

}  // namespace

void addMeshCommands(CLI::App& app, int& exitCode) {
  auto a = std::make_shared<PublishArgs>();
  CLI::App* pub = app.add_subcommand("publish", "Publish a signed bundle to the mesh through etcd (nodes verify it before enforcing)");
  pub->add_option("--etcd", a->etcd, "etcd client URLs, comma-separated")->required();
  pub->add_option("--bundle", a->bundle, "Signed bundle file (govmesh sign)")->required();
  pub->add_option("--prefix", a->prefix, "The mesh's etcd key prefix")->capture_default_str();
  pub->add_option("--max-request-bytes", a->maxRequestBytes, "etcd's --max-request-bytes: larger bundles are chunked below it")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{16384}, uint64_t{1} << 31));
  pub->add_option("--trust", a->trust, "Check the signature against these authority keys (PEM) before publishing; repeatable");
  pub->add_option("--keep", a->keep, "Older revisions whose chunks are kept")->capture_default_str();
  pub->callback([a, &exitCode] { exitCode = runPublish(*a); });

  auto d = std::make_shared<server::MeshDemoOptions>();
  auto json = std::make_shared<bool>(false);
  CLI::App* demo = app.add_subcommand("mesh-demo",
                                      "Run the mesh on this machine: 3 etcd members, 3 nodes; publish, tamper, partition, kill the leader");
  demo->add_flag("--json", *json, "Print one JSON object on stdout (progress goes nowhere)");
  demo->add_option("--nodes", d->nodes, "Decision nodes")->capture_default_str()->check(CLI::Range(2, 9));
  demo->add_option("--publishes", d->publishes, "Revisions published to time publish-to-enforce")->capture_default_str()->check(CLI::Range(1, 1000));
  demo->add_option("--sync-timeout-ms", d->syncTimeoutMs, "The nodes' sync timeout")->capture_default_str()->check(CLI::Range(500, 60000));
  demo->add_option("--bundle-pad-bytes", d->bundlePadBytes, "Policy-text padding, so that the bundle spans several etcd chunks")
      ->capture_default_str();
  demo->add_option("--max-request-bytes", d->maxRequestBytes, "The cluster's --max-request-bytes (bundles are chunked below it)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{65536}, uint64_t{1} << 26));
  demo->add_option("--etcd-binary", d->etcdBinary, "The etcd executable")->capture_default_str();
  demo->callback([d, json, &exitCode] { exitCode = runMeshDemo(*json, *d); });
}

}  // namespace govmesh::cli
