// The governance console's JSON views (issue 9; the contract is docs/console.md): what
// /api/v1/lineage, /lineage/{seq}, /lineage/{seq}/proof and /whatif answer, built from the
// lineage log, the bundles and the reference evaluator. No HTTP here (server/console_api.cpp
// routes and authenticates); every function returns an ApiReply, so that bad input is a 4xx
// with a message naming the parameter, never an exception escaping to the server.
//
// Cost. A lineage search decodes records newest first and stops after kMaxScanRecords; a proof
// reads one record and O(log n) hashes; a what-if evaluates one request. The console runs these
// on its worker thread, never on the event loop (server/console_api.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/bundle.h"
#include "engine/bundle_manager.h"
#include "engine/checkpoint.h"
#include "engine/deny_code.h"
#include "engine/lineage.h"

namespace govmesh::server {

/// One answer of the console's JSON API: an HTTP status and its JSON body ({"error": "..."}
/// for 4xx and 5xx).
struct ApiReply {
  unsigned status = 200;
  nlohmann::json body;
  /// An error answer whose message names what was wrong (the parameter, the field).
  static ApiReply error(unsigned status, std::string message);
};

/// The JSON text of `j` for the wire: compact UTF-8; NUL and control characters escaped, invalid
/// UTF-8 replaced by U+FFFD (strings from requests and policies may hold any bytes).
std::string dumpJson(const nlohmann::json& j);

/// One policy as the console shows it.
struct PolicySource {
  std::string id;      ///< "policy3", or a template-linked policy's id
  std::string effect;  ///< "permit" or "forbid"
  /// The Cedar source of the policy, cut from Bundle::policyText (annotations included,
  /// comments around it not). A template-linked policy: its template's text, then a comment
  /// line naming the link and its slot values.
  std::string text;
  std::string templateId;  ///< the template a linked policy instantiates; empty otherwise
};

/// Every policy of `bundle` by id: static policies, templates and template-linked policies.
/// Empty when the text does not parse (never expected: a loaded bundle's text was parsed).
std::unordered_map<std::string, PolicySource> policySources(const engine::Bundle& bundle);

/// A bundle the node activated, with its policy texts (computed once).
struct BundleView {
  std::shared_ptr<const engine::ActiveBundle> active;
  std::unordered_map<std::string, PolicySource> policies;
};
/// Finds the view of the bundle whose raw 32-byte digest is given; null when the node no longer
/// holds it.
using BundleLookup = std::function<std::shared_ptr<const BundleView>(const std::string& digest)>;

/// The "policies" array of a record or what-if: {"id", "effect", "text"} for each reason the
/// bundle has a text for, in reason order.
nlohmann::json policiesJson(const BundleView* view, const std::vector<std::string>& reasons);

/// Records a lineage search examines at most per call.
inline constexpr uint64_t kMaxScanRecords = 200'000;
/// Most records a lineage search returns.
inline constexpr size_t kMaxLineageLimit = 500;

/// The filters of GET /api/v1/lineage (see docs/console.md).
struct LineageQuery {
  std::string principal, action, resource;  ///< substrings of `Type::"id"` (id raw); empty: any
  std::optional<bool> allow;                ///< decision=allow|deny
  std::optional<engine::DenyCode> code;     ///< code=NAME
  std::optional<int64_t> fromMs, toMs;      ///< from_ms <= time_ms <= to_ms
  std::optional<uint64_t> beforeSeq;        ///< only seq < before_seq
  size_t limit = 50;                        ///< 1..kMaxLineageLimit
};

/// Reads the query parameters (already percent-decoded; unknown names are ignored). On a bad
/// value returns nullopt with *error naming the parameter.
std::optional<LineageQuery> parseLineageQuery(const std::map<std::string, std::string>& params, std::string* error);

/// `Type::"id"` with the id raw (not escaped): what the search filters match.
std::string entityText(const lineage::EntityRef& e);

/// True when `r` passes every filter of `q` but beforeSeq (the scan applies that).
bool matchesQuery(const LineageQuery& q, const lineage::Record& r);

/// The summary of a record in search results.
nlohmann::json recordSummaryJson(const lineage::Record& r);

/// GET /api/v1/lineage: newest first, at most q.limit matches, at most kMaxScanRecords examined.
ApiReply searchLineage(const lineage::Log& log, const LineageQuery& q);

/// GET /api/v1/lineage/{seq}: every field of the record, its evidence with the context as JSON,
/// and the texts of its reasons from the deciding bundle when `lookup` still finds it.
ApiReply recordDetail(const lineage::Log& log, uint64_t seq, const BundleLookup& lookup);

/// GET /api/v1/lineage/{seq}/proof: the record's bytes, leaf hash and RFC 9162 inclusion path
/// against the newest signed checkpoint covering it (signing one first when none does), and the
/// node key that signed it.
ApiReply recordProof(lineage::Log& log, uint64_t seq, const lineage::NoteVerifier& nodeKey);

/// POST /api/v1/whatif: evaluates the request in `body` (JSON) with the reference evaluator
/// against `view`'s policies and entities. Records nothing, counts nothing. 400 naming the field
/// on bad input; 503 without a bundle (view null).
ApiReply whatIf(const BundleView* view, std::string_view body);

}  // namespace govmesh::server
