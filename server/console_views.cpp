// The console's JSON views: lineage search, record detail, inclusion proofs, what-if evaluation,
// and the Cedar text of each policy of a bundle (see console_views.h).
#include "server/console_views.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "compiler/entities.h"
#include "compiler/errors.h"
#include "compiler/evaluator.h"
#include "compiler/lexer.h"
#include "compiler/parser.h"
#include "engine/crypto_ed25519.h"
#include "engine/merkle.h"
#include "engine/request.h"

namespace govmesh::server {

using nlohmann::json;

ApiReply ApiReply::error(unsigned status, std::string message) {
  ApiReply r;
  r.status = status;
  r.body = json{{"error", std::move(message)}};
  return r;
}

std::string dumpJson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

std::string hex(std::string_view bytes) { return crypto::toHex(bytes); }
template <size_t N>
std::string hex(const std::array<uint8_t, N>& a) {
  return crypto::toHex(a);
}

// floor(ns / 1e6): a time before 1970 still lands in the millisecond that holds it.
int64_t msOf(int64_t ns) { return ns / 1'000'000 - (ns % 1'000'000 < 0 ? 1 : 0); }

json entityJson(const lineage::EntityRef& e) { return json{{"type", e.type}, {"id", e.id}}; }

// ---- Policy texts ------------------------------------------------------------------------------

// Byte offsets of 1-based (line, column) positions in `text`, columns counting code points as the
// lexer does (compiler/lexer.cpp Lexer::advance).
class LocIndex {
 public:
  explicit LocIndex(std::string_view text) : text_(text) {
    lineStarts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i)
      if (text[i] == '\n') lineStarts_.push_back(i + 1);
  }
  size_t offset(cedar::SourceLoc loc) const {
    if (loc.line == 0 || loc.line > lineStarts_.size()) return text_.size();
    size_t pos = lineStarts_[loc.line - 1];
    for (uint32_t col = 1; col < loc.column && pos < text_.size() && text_[pos] != '\n';) {
      ++pos;
      if (pos >= text_.size() || (static_cast<unsigned char>(text_[pos]) & 0xC0) != 0x80) ++col;
    }
    return pos;
  }

 private:
  std::string_view text_;
  std::vector<size_t> lineStarts_;
};

// Each policy runs from its first token (Policy::loc, annotations included) to the `;` that ends
// it. A `;` appears in Cedar only there (never inside an expression; inside a string literal it
// is part of a String token), so the policy's end is the first `;` token after its start.
std::string_view cutPolicy(std::string_view text, const LocIndex& index, const std::vector<size_t>& semis,
                           cedar::SourceLoc start) {
  const size_t begin = index.offset(start);
  auto end = std::lower_bound(semis.begin(), semis.end(), begin);
  if (end == semis.end()) return text.substr(begin);
  return text.substr(begin, *end + 1 - begin);
}

const char* effectName(cedar::Effect e) { return e == cedar::Effect::Permit ? "permit" : "forbid"; }

}  // namespace

std::unordered_map<std::string, PolicySource> policySources(const engine::Bundle& bundle) {
  std::unordered_map<std::string, PolicySource> out;
  const std::string_view text = bundle.policyText;
  try {
    const cedar::PolicySet set = cedar::parsePolicies(text, bundle.policyFileName);
    const LocIndex index(text);
    std::vector<size_t> semis;
    cedar::Lexer lexer(text, bundle.policyFileName);
    for (cedar::Token t = lexer.next(); t.kind != cedar::Tok::End; t = lexer.next())
      if (t.kind == cedar::Tok::Semi) semis.push_back(index.offset(t.loc));
    for (const auto* list : {&set.policies, &set.templates})
      for (const cedar::Policy& p : *list)
        out[p.id] = PolicySource{p.id, effectName(p.effect), std::string(cutPolicy(text, index, semis, p.loc)), {}};
    for (const cedar::TemplateLink& link : bundle.links) {
      auto tmpl = out.find(link.templateId);
      if (tmpl == out.end()) continue;
      std::string line = "\n// template-linked policy " + link.id + " = " + link.templateId + " with";
      if (link.principal) line += " ?principal = " + cedar::toString(*link.principal);
      if (link.principal && link.resource) line += ",";
      if (link.resource) line += " ?resource = " + cedar::toString(*link.resource);
      out[link.id] = PolicySource{link.id, tmpl->second.effect, tmpl->second.text + line, link.templateId};
    }
  } catch (const cedar::InputError&) {
    out.clear();  // a loaded bundle's text parsed once already; no texts rather than wrong ones
  }
  return out;
}

json policiesJson(const BundleView* view, const std::vector<std::string>& reasons) {
  json out = json::array();
  if (!view) return out;
  for (const std::string& id : reasons) {
    auto it = view->policies.find(id);
    if (it == view->policies.end()) continue;
    json p{{"id", it->second.id}, {"effect", it->second.effect}, {"text", it->second.text}};
    if (!it->second.templateId.empty()) p["template"] = it->second.templateId;
    out.push_back(std::move(p));
  }
  return out;
}

// ---- Lineage search ----------------------------------------------------------------------------

namespace {

template <class T>
bool parseInt(const std::string& s, T& out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && p == end;
}

}  // namespace

std::optional<LineageQuery> parseLineageQuery(const std::map<std::string, std::string>& params, std::string* error) {
  LineageQuery q;
  auto fail = [&](std::string why) -> std::optional<LineageQuery> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  auto get = [&](const char* name) -> const std::string* {
    auto it = params.find(name);
    return it == params.end() || it->second.empty() ? nullptr : &it->second;
  };
  if (auto* v = get("principal")) q.principal = *v;
  if (auto* v = get("action")) q.action = *v;
  if (auto* v = get("resource")) q.resource = *v;
  if (auto* v = get("decision")) {
    if (*v == "allow") q.allow = true;
    else if (*v == "deny") q.allow = false;
    else return fail("decision: expected allow or deny, got '" + *v + "'");
  }
  if (auto* v = get("code")) {
    q.code = engine::denyCodeFromName(*v);
    if (!q.code) return fail("code: '" + *v + "' is not a deny code (NONE, BAD_SIGNATURE, REPLAYED_NONCE, ...)");
  }
  int64_t ms = 0;
  if (auto* v = get("from_ms")) {
    if (!parseInt(*v, ms)) return fail("from_ms: expected Unix milliseconds, got '" + *v + "'");
    q.fromMs = ms;
  }
  if (auto* v = get("to_ms")) {
    if (!parseInt(*v, ms)) return fail("to_ms: expected Unix milliseconds, got '" + *v + "'");
    q.toMs = ms;
  }
  if (auto* v = get("before_seq")) {
    uint64_t seq = 0;
    if (!parseInt(*v, seq) || seq == 0) return fail("before_seq: expected a positive record number, got '" + *v + "'");
    q.beforeSeq = seq;
  }
  if (auto* v = get("limit")) {
    size_t limit = 0;
    if (!parseInt(*v, limit) || limit == 0) return fail("limit: expected a positive count (at most 500), got '" + *v + "'");
    q.limit = std::min(limit, kMaxLineageLimit);
  }
  return q;
}

std::string entityText(const lineage::EntityRef& e) { return e.type + "::\"" + e.id + "\""; }

bool matchesQuery(const LineageQuery& q, const lineage::Record& r) {
  if (q.allow && *q.allow != r.allow) return false;
  if (q.code && (r.allow || *q.code != r.denyCode)) return false;
  const int64_t t = msOf(r.timestampNs);
  if (q.fromMs && t < *q.fromMs) return false;
  if (q.toMs && t > *q.toMs) return false;
  auto has = [](const lineage::EntityRef& e, const std::string& needle) {
    return needle.empty() || entityText(e).find(needle) != std::string::npos;
  };
  return has(r.principal, q.principal) && has(r.action, q.action) && has(r.resource, q.resource);
}

json recordSummaryJson(const lineage::Record& r) {
  return json{{"seq", r.seq},
              {"time_ms", msOf(r.timestampNs)},
              {"principal", entityJson(r.principal)},
              {"action", entityJson(r.action)},
              {"resource", entityJson(r.resource)},
              {"decision", r.allow ? "allow" : "deny"},
              {"deny_code", std::string(engine::denyCodeName(r.denyCode))},
              {"reasons", r.reasons},
              {"bundle_revision", r.bundleRevision}};
}

ApiReply searchLineage(const lineage::Log& log, const LineageQuery& q) {
  // Records are read in chunks, newest chunk first, and examined newest first within each.
  constexpr uint64_t kChunk = 4096;
  const uint64_t size = log.size();
  uint64_t hi = size;  // the highest seq not yet examined
  if (q.beforeSeq) hi = std::min(hi, *q.beforeSeq - 1);
  uint64_t scanned = 0;
  bool truncated = false;
  std::optional<uint64_t> next;
  json records = json::array();
  std::vector<std::string> chunk;
  bool full = false;
  while (hi >= 1 && !full) {
    if (scanned >= kMaxScanRecords) {
      truncated = true;
      next = hi + 1;
      break;
    }
    const uint64_t n = std::min({kChunk, hi, kMaxScanRecords - scanned});
    const uint64_t lo = hi - n + 1;
    const lineage::LogStatus st = log.readRecords(lo, static_cast<size_t>(n), chunk);
    if (st != lineage::LogStatus::kOk)
      return ApiReply::error(500, "lineage: reading records " + std::to_string(lo) + ".." + std::to_string(hi) + " failed (" +
                                      std::string(lineage::logStatusName(st)) + "): " + log.lastError());
    for (size_t i = chunk.size(); i-- > 0;) {
      const uint64_t seq = lo + i;
      ++scanned;
      std::optional<lineage::Record> r = lineage::decodeRecord(chunk[i]);
      if (!r) return ApiReply::error(500, "lineage: record " + std::to_string(seq) + " does not decode");
      if (!matchesQuery(q, *r)) continue;
      records.push_back(recordSummaryJson(*r));
      if (records.size() == q.limit) {
        full = true;
        if (seq > 1) next = seq;  // older records remain to be examined
        break;
      }
    }
    hi = lo - 1;
  }
  ApiReply out;
  out.body = json{{"size", size},
                  {"scanned", scanned},
                  {"truncated", truncated},
                  {"next_before_seq", next ? json(*next) : json(nullptr)},
                  {"records", std::move(records)}};
  return out;
}

// ---- One record and its proof ------------------------------------------------------------------

namespace {

// The raw bytes of record `seq`, or an error reply.
std::optional<std::string> readOne(const lineage::Log& log, uint64_t seq, ApiReply& err) {
  const uint64_t size = log.size();
  if (seq == 0 || seq > size) {
    err = ApiReply::error(404, "seq: no record " + std::to_string(seq) + " (the log holds records 1.." + std::to_string(size) + ")");
    return std::nullopt;
  }
  std::vector<std::string> raw;
  const lineage::LogStatus st = log.readRecords(seq, 1, raw);
  if (st != lineage::LogStatus::kOk || raw.size() != 1) {
    err = ApiReply::error(500, "lineage: reading record " + std::to_string(seq) + " failed (" +
                                   std::string(lineage::logStatusName(st)) + "): " + log.lastError());
    return std::nullopt;
  }
  return std::move(raw[0]);
}

}  // namespace

ApiReply recordDetail(const lineage::Log& log, uint64_t seq, const BundleLookup& lookup) {
  ApiReply err;
  std::optional<std::string> raw = readOne(log, seq, err);
  if (!raw) return err;
  std::optional<lineage::Record> r = lineage::decodeRecord(*raw);
  if (!r) return ApiReply::error(500, "lineage: record " + std::to_string(seq) + " does not decode");

  json j = recordSummaryJson(*r);
  j.erase("bundle_revision");  // detail names the bundle in full below
  j["node_id"] = r->nodeId;
  j["errors"] = r->errors;
  j["request_digest"] = hex(r->requestDigest);
  j["context_digest"] = hex(r->contextDigest);
  j["signature"] = hex(r->signature);
  j["etcd_revision"] = r->etcdRevision ? json(*r->etcdRevision) : json(nullptr);
  if (r->evidence) {
    const lineage::RequestEvidence& ev = *r->evidence;
    json e{{"key_id", ev.keyId},
           {"nonce", hex(ev.nonce)},
           {"payload_digest", ev.payloadDigest ? json(hex(*ev.payloadDigest)) : json(nullptr)}};
    // The canonical context encoding (engine/request.h value()) decodes back to the Cedar value
    // the request carried; shown as Cedar JSON (__entity / __extn escapes).
    if (std::optional<cedar::Value> ctx = engine::decodeCanonicalValue(ev.context)) {
      e["context"] = cedar::valueToJson(*ctx);
    } else {
      e["context"] = nullptr;
      e["context_error"] = "the recorded context does not decode; its canonical bytes: " + hex(ev.context);
    }
    j["evidence"] = std::move(e);
  } else {
    j["evidence"] = nullptr;
  }
  const std::string digest(r->bundleDigest.begin(), r->bundleDigest.end());
  std::shared_ptr<const BundleView> view = lookup ? lookup(digest) : nullptr;
  j["bundle"] = json{{"revision", r->bundleRevision}, {"digest", hex(digest)}, {"known", view != nullptr}};
  j["policies"] = policiesJson(view.get(), r->reasons);
  ApiReply out;
  out.body = std::move(j);
  return out;
}

ApiReply recordProof(lineage::Log& log, uint64_t seq, const lineage::NoteVerifier& nodeKey) {
  ApiReply err;
  std::optional<std::string> raw = readOne(log, seq, err);
  if (!raw) return err;
  std::optional<lineage::SignedCheckpoint> cp = log.latestCheckpoint();
  if (!cp || cp->checkpoint.size < seq) {
    // No signed checkpoint covers the record yet (the timer signs within its interval): sign one
    // now rather than make the user wait for it.
    const lineage::LogStatus st = log.checkpoint();
    cp = log.latestCheckpoint();
    if (!cp || cp->checkpoint.size < seq)
      return ApiReply::error(503, "lineage: no signed checkpoint covers record " + std::to_string(seq) + " (signing one failed: " +
                                      std::string(lineage::logStatusName(st)) + ")");
  }
  std::optional<std::vector<lineage::Hash>> path = log.inclusionProof(seq, cp->checkpoint.size);
  if (!path) return ApiReply::error(500, "lineage: the inclusion proof of record " + std::to_string(seq) + " could not be computed");
  json pathJson = json::array();
  for (const lineage::Hash& h : *path) pathJson.push_back(hex(h));
  char keyId[9];
  std::snprintf(keyId, sizeof keyId, "%08x", nodeKey.keyId);
  ApiReply out;
  out.body = json{{"seq", seq},
                  {"leaf_index", seq - 1},
                  {"record_b64", lineage::base64Encode(*raw)},
                  {"leaf_hash", hex(lineage::leafHash(*raw))},
                  {"tree_size", cp->checkpoint.size},
                  {"path", std::move(pathJson)},
                  {"checkpoint", json{{"note", cp->note},
                                      {"origin", cp->checkpoint.origin},
                                      {"size", cp->checkpoint.size},
                                      {"root", hex(cp->checkpoint.root)}}},
                  {"node_key", json{{"name", nodeKey.name}, {"public_key", hex(nodeKey.key)}, {"key_id", keyId}}}};
  return out;
}

// ---- What-if -----------------------------------------------------------------------------------

namespace {

// The entity reference in field `name` of the what-if body, or throws InputError naming it.
cedar::EntityUid uidField(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || !it->is_string())
    throw cedar::InputError(name, {}, std::string("expected a string such as Type::\"id\"") +
                                          (it == body.end() ? " (the field is missing)" : ""));
  return cedar::parseEntityUid(it->get<std::string>(), name);
}

}  // namespace

ApiReply whatIf(const BundleView* view, std::string_view body) {
  if (!view || !view->active) return ApiReply::error(503, "no verified bundle is active: nothing to evaluate against");
  const engine::Bundle& b = view->active->bundle;
  cedar::Request req;
  try {
    const json j = cedar::parseJsonText(body, "request body");
    if (!j.is_object()) return ApiReply::error(400, "request body: expected a JSON object {principal, action, resource, context}");
    req.principal = uidField(j, "principal");
    req.action = uidField(j, "action");
    req.resource = uidField(j, "resource");
    if (b.schema) {
      // As Cedar validates a request against the schema before evaluating it.
      if (auto why = cedar::validateRequestTypes(*b.schema, req.principal, req.action, req.resource))
        return ApiReply::error(400, "request does not match the bundle's schema: " + *why);
    }
    if (auto c = j.find("context"); c != j.end() && !c->is_null()) {
      if (!c->is_object()) return ApiReply::error(400, "context: expected a JSON object");
      req.context = cedar::contextFromJson(*c, b.schema.get(), req.action, "context");
    }
  } catch (const cedar::InputError& e) {
    return ApiReply::error(400, e.what());
  } catch (const std::exception& e) {
    // A value the JSON library refuses (a number out of range, ...): still the caller's input.
    return ApiReply::error(400, std::string("request body: ") + e.what());
  }
  if (!b.store) return ApiReply::error(503, "the active bundle has no entity store");
  const cedar::Response r = cedar::authorize(b.table.policies, req, *b.store);
  json errors = json::array();
  for (const cedar::PolicyError& e : r.errors) errors.push_back(e.policyId + ": " + e.message);
  ApiReply out;
  out.body = json{{"decision", r.decision == cedar::Decision::Allow ? "allow" : "deny"},
                  {"reasons", r.reasons},
                  {"errors", std::move(errors)},
                  {"policies", policiesJson(view, r.reasons)},
                  {"bundle", json{{"revision", b.revision}, {"digest", view->active->digestHex}}},
                  {"recorded", false}};
  return out;
}

}  // namespace govmesh::server
