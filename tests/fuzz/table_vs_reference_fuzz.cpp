// libFuzzer target: decision tables against the reference evaluator. Aborts (a crash for
// libFuzzer) when the table's decision, reasons or erroring policies differ from
// cedar::authorize's for any request, or when a batch answer differs from a one-at-a-time one.
//
// Input format. The first byte picks the mode:
//   < 0xC0  generator mode: the next 8 bytes are a seed and the 8 after them the generator's
//           knobs (policy and entity counts, hierarchy depth, schemas, error bias, share of
//           permits and of context comparisons, requests, templates); missing bytes read as 0.
//           Explores the generator's whole language over random hierarchies.
//   >= 0xC0 text mode: the rest, up to a NUL byte, is a Cedar policy set (templates are linked
//           to a few fixed entities); after the NUL, an optional JSON request context. The
//           requests are every combination of a few principals, actions and resources of a
//           fixed deep entity hierarchy (plus absent entities). Explores policy text the
//           generator never writes.
// Input the front end refuses (InputError) is uninteresting and skipped; any other exception
// escapes and is reported by libFuzzer.
//
// Build and run: see README.md, "Fuzzing".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/decision_table.h"
#include "compiler/entities.h"
#include "compiler/errors.h"
#include "compiler/parser.h"
#include "tests/support/cedar_gen.h"
#include "tests/support/table_diff.h"

using namespace govmesh;

namespace {

/// Reads byte `i` of the input, or 0 past its end.
struct Bytes {
  const uint8_t* data;
  size_t size;
  uint8_t operator[](size_t i) const { return i < size ? data[i] : 0; }
};

[[noreturn]] void fail(const std::string& what, const std::string& context) {
  std::fprintf(stderr, "\n==== table vs reference: %s\n%s\n", what.c_str(), context.c_str());
  std::abort();
}

/// Checks every request one at a time against the reference, then as one batch.
void check(const std::vector<cedar::Policy>& policies, const cedar::EntityStore& store, const std::vector<cedar::Request>& requests,
           const std::function<std::string(size_t)>& describeInput) {
  table::DecisionTable t = table::compileTable(policies, store);
  std::vector<cedar::Response> single;
  for (size_t i = 0; i < requests.size(); ++i) {
    tablediff::Answer ref = tablediff::canonical(cedar::authorize(policies, requests[i], store));
    single.push_back(table::authorizeWithTable(t, requests[i]));
    tablediff::Answer tab = tablediff::canonical(single.back());
    if (!(ref == tab))
      fail("MISMATCH", describeInput(i) + "\nreference: " + tablediff::describe(ref) + "\ntable:     " + tablediff::describe(tab));
  }
  std::vector<uint32_t> codes;
  std::vector<cedar::Response> batch;
  table::featurize(t, requests, codes);
  table::evaluateBatch(t, requests, codes, batch);
  if (batch.size() != requests.size()) fail("batch size", describeInput(0));
  for (size_t i = 0; i < requests.size(); ++i)
    if (!(tablediff::canonical(batch[i]) == tablediff::canonical(single[i])) || !tablediff::sameErrorMessages(batch[i], single[i]))
      fail("BATCH MISMATCH", describeInput(i) + "\nbatch:  " + tablediff::describe(tablediff::canonical(batch[i])) +
                                 "\nsingle: " + tablediff::describe(tablediff::canonical(single[i])));
}

int generatorMode(Bytes in) {
  gen::GenOptions o;
  o.seed = 0;
  for (size_t i = 0; i < 8; ++i) o.seed |= uint64_t{in[1 + i]} << (8 * i);
  size_t k = 9;
  o.minPolicies = 1 + in[k] % 8;
  o.maxPolicies = o.minPolicies + (in[k + 1] % 8 == 0 ? in[k + 1] % 160 : in[k + 1] % 16);
  o.minEntities = 2 + in[k + 2] % 16;
  o.maxEntities = o.minEntities + in[k + 3] % 48;
  o.hierarchyDepth = 1 + in[k + 4] % 9;
  o.maxExprDepth = 1 + (in[k + 4] >> 4) % 4;
  o.schemaFraction = (in[k + 5] & 3) / 3.0;
  o.errorBias = ((in[k + 5] >> 2) & 3) * 0.75;
  o.permitFraction = 0.5 + (in[k + 6] % 6) * 0.1;
  o.contextCompareBias = (in[k + 6] >> 4) / 15.0;
  o.requestsPerTest = 1 + in[k + 7] % 24;
  double templateFraction = (in[k + 7] >> 5) / 7.0;
  gen::GeneratedTest g = gen::generateTest(o, 0);
  std::unique_ptr<tablediff::LoadedTest> t;
  try {
    t = tablediff::loadGenerated(g);
    if (templateFraction > 0) tablediff::templatize(*t, o.seed, templateFraction);
  } catch (const cedar::InputError&) {
    return 0;  // (the differential test insists that generated tests load; the fuzzer does not)
  }
  auto describeInput = [&](size_t i) {
    char opts[256];
    std::snprintf(opts, sizeof opts,
                  "generator seed %llu policies %d..%d entities %d..%d depth %d exprDepth %d schema %.2f errorBias %.2f "
                  "permits %.2f contextCompares %.2f requests %d templates %.2f",
                  static_cast<unsigned long long>(o.seed), o.minPolicies, o.maxPolicies, o.minEntities, o.maxEntities,
                  o.hierarchyDepth, o.maxExprDepth, o.schemaFraction, o.errorBias, o.permitFraction, o.contextCompareBias,
                  o.requestsPerTest, templateFraction);
    return std::string(opts) + "\npolicies:\n" + g.policiesText + "\nentities:\n" + g.entitiesJson +
           (g.schemaText.empty() ? "" : "\nschema:\n" + g.schemaText) +
           "\nrequest: " + (i < t->requestJson.size() ? t->requestJson[i] : "-");
  };
  check(t->policies, t->store, t->requests, describeInput);
  return 0;
}

/// The fixed store of text mode: groups g1..g7 in a chain with a second parent gX halfway,
/// users under them (with attributes), folders f1..f6 in a chain, documents, actions in groups.
const cedar::EntityStore& textModeStore() {
  static const cedar::EntityStore store = cedar::parseEntitiesJson(R"([
    {"uid":{"type":"Group","id":"gX"},"attrs":{"tier":1},"parents":[]},
    {"uid":{"type":"Group","id":"g1"},"attrs":{"tier":1},"parents":[]},
    {"uid":{"type":"Group","id":"g2"},"attrs":{"tier":2},"parents":[{"type":"Group","id":"g1"}]},
    {"uid":{"type":"Group","id":"g3"},"attrs":{"tier":3},"parents":[{"type":"Group","id":"g2"},{"type":"Group","id":"gX"}]},
    {"uid":{"type":"Group","id":"g4"},"attrs":{"tier":4},"parents":[{"type":"Group","id":"g3"}]},
    {"uid":{"type":"Group","id":"g5"},"attrs":{},"parents":[{"type":"Group","id":"g4"}]},
    {"uid":{"type":"Group","id":"g6"},"attrs":{},"parents":[{"type":"Group","id":"g5"},{"type":"Group","id":"gX"}]},
    {"uid":{"type":"Group","id":"g7"},"attrs":{},"parents":[{"type":"Group","id":"g6"}]},
    {"uid":{"type":"User","id":"alice"},"attrs":{"clearance":5,"name":"alice","tags":["a","b"],"manager":{"__entity":{"type":"User","id":"bob"}}},
     "parents":[{"type":"Group","id":"g7"}],"tags":{"env":"prod"}},
    {"uid":{"type":"User","id":"bob"},"attrs":{"clearance":2,"name":"bob","ip":{"__extn":{"fn":"ip","arg":"10.1.2.3"}}},
     "parents":[{"type":"Group","id":"g3"},{"type":"Group","id":"g6"}]},
    {"uid":{"type":"User","id":"carol"},"attrs":{"clearance":"high"},"parents":[]},
    {"uid":{"type":"Folder","id":"f1"},"attrs":{},"parents":[]},
    {"uid":{"type":"Folder","id":"f2"},"attrs":{},"parents":[{"type":"Folder","id":"f1"}]},
    {"uid":{"type":"Folder","id":"f3"},"attrs":{},"parents":[{"type":"Folder","id":"f2"}]},
    {"uid":{"type":"Folder","id":"f4"},"attrs":{},"parents":[{"type":"Folder","id":"f3"}]},
    {"uid":{"type":"Folder","id":"f5"},"attrs":{},"parents":[{"type":"Folder","id":"f4"}]},
    {"uid":{"type":"Folder","id":"f6"},"attrs":{},"parents":[{"type":"Folder","id":"f5"}]},
    {"uid":{"type":"Doc","id":"d1"},"attrs":{"owner":{"__entity":{"type":"User","id":"alice"}},"size":10},"parents":[{"type":"Folder","id":"f6"}]},
    {"uid":{"type":"Doc","id":"d2"},"attrs":{"owner":{"__entity":{"type":"User","id":"bob"}}},"parents":[{"type":"Folder","id":"f3"},{"type":"Doc","id":"d1"}]},
    {"uid":{"type":"Action","id":"read"},"attrs":{},"parents":[{"type":"Action","id":"any"}]},
    {"uid":{"type":"Action","id":"edit"},"attrs":{},"parents":[{"type":"Action","id":"any"},{"type":"Action","id":"write"}]},
    {"uid":{"type":"Action","id":"write"},"attrs":{},"parents":[{"type":"Action","id":"any"}]},
    {"uid":{"type":"Action","id":"any"},"attrs":{},"parents":[]}
  ])",
                                                                   "fuzz.entities.json", nullptr);
  return store;
}

int textMode(Bytes in) {
  const char* begin = reinterpret_cast<const char*>(in.data) + 1;
  const char* end = reinterpret_cast<const char*>(in.data) + in.size;
  const char* nul = static_cast<const char*>(std::memchr(begin, 0, static_cast<size_t>(end - begin)));
  std::string policyText(begin, nul ? nul : end);
  std::string contextText = nul ? std::string(nul + 1, end) : std::string();
  const cedar::EntityStore& store = textModeStore();
  cedar::PolicySet ps;
  std::vector<cedar::Policy> policies;
  std::vector<cedar::Value> contexts;
  try {
    ps = cedar::parsePolicies(policyText, "fuzz.cedar");
    // Every template linked twice, to a deep group or folder and to an absent entity.
    int n = 0;
    for (const cedar::Policy& t : ps.templates) {
      bool p = t.principal.target.isSlot, r = t.resource.target.isSlot;
      ps.links.push_back({"link" + std::to_string(n++), t.id, p ? std::optional(cedar::EntityUid{"Group", "g3"}) : std::nullopt,
                          r ? std::optional(cedar::EntityUid{"Folder", "f2"}) : std::nullopt});
      ps.links.push_back({"link" + std::to_string(n++), t.id, p ? std::optional(cedar::EntityUid{"User", "nobody"}) : std::nullopt,
                          r ? std::optional(cedar::EntityUid{"Doc", "d1"}) : std::nullopt});
    }
    policies = ps.policies;
    if (ps.linkAll(policies)) return 0;
    if (!contextText.empty()) {
      contexts.push_back(cedar::contextFromJson(cedar::parseJsonText(contextText, "fuzz.context.json"), nullptr,
                                                cedar::EntityUid{"Action", "read"}, "fuzz.context.json"));
    }
  } catch (const cedar::InputError&) {
    return 0;
  }
  if (policies.empty()) return 0;
  if (contexts.empty()) {
    contexts.push_back(cedar::Value::record({}));
    contexts.push_back(cedar::Value::record({{"zone", cedar::Value::string("eu")}, {"n", cedar::Value::integer(3)}}));
  }
  std::vector<cedar::Request> requests;
  const char* principals[][2] = {{"User", "alice"}, {"User", "bob"}, {"User", "carol"}, {"User", "zed"}, {"Group", "g4"}, {"Other", "x"}};
  const char* actions[][2] = {{"Action", "read"}, {"Action", "edit"}, {"Action", "any"}, {"Action", "gone"}};
  const char* resources[][2] = {{"Doc", "d1"}, {"Doc", "d2"}, {"Folder", "f3"}, {"Doc", "zz"}, {"User", "alice"}};
  for (auto& p : principals)
    for (auto& a : actions)
      for (auto& r : resources)
        for (const cedar::Value& c : contexts)
          requests.push_back({cedar::EntityUid{p[0], p[1]}, cedar::EntityUid{a[0], a[1]}, cedar::EntityUid{r[0], r[1]}, c});
  auto describeInput = [&](size_t i) {
    const cedar::Request& r = requests[i < requests.size() ? i : 0];
    return "text mode\npolicies:\n" + policyText + "\ncontext: " + cedar::toString(r.context) + "\nrequest: " +
           cedar::toString(r.principal) + " " + cedar::toString(r.action) + " " + cedar::toString(r.resource);
  };
  check(policies, store, requests, describeInput);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Bytes in{data, size};
  return data[0] < 0xC0 ? generatorMode(in) : textMode(in);
}
