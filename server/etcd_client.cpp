// etcd's JSON gateway over libcurl (see etcd_client.h).
#include "server/etcd_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/base64.h"

namespace govmesh::etcd {

using nlohmann::json;

namespace {

// curl_global_init is not thread-safe and must run before any other curl call; do it once.
void initCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The gateway writes Go's encoding/base64.StdEncoding: padded, canonical (engine/base64.h).
// Throws kBadResponse naming `what` for anything else.
std::string base64Decode(const std::string& in, const char* what) {
  std::optional<std::string> out = govmesh::base64Decode(in);
  if (!out) throw Error(ErrorKind::kBadResponse, std::string("etcd: bad base64 in ") + what);
  return std::move(*out);
}

// The gateway writes 64-bit numbers as JSON strings (proto3 JSON); accept numbers too.
template <class T>
T number(const json& obj, const char* name) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<T>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    T v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
  }
  throw Error(ErrorKind::kBadResponse, std::string("etcd: field '") + name + "' is not an integer: " + it->dump());
}

int64_t headerRevision(const json& j) {
  auto it = j.find("header");
  return it == j.end() ? 0 : number<int64_t>(*it, "revision");
}

std::string bytesField(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_string()) throw Error(ErrorKind::kBadResponse, std::string("etcd: field '") + name + "' is not a string");
  return base64Decode(it->get_ref<const std::string&>(), name);
}

KeyValue decodeKv(const json& j) {
  if (!j.is_object()) throw Error(ErrorKind::kBadResponse, "etcd: a key-value is not an object");
  KeyValue kv;
  kv.key = bytesField(j, "key");
  kv.value = bytesField(j, "value");
  kv.createRevision = number<int64_t>(j, "create_revision");
  kv.modRevision = number<int64_t>(j, "mod_revision");
  kv.version = number<int64_t>(j, "version");
  return kv;
}

std::string trimEndpoint(std::string e) {
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

// An etcd error answer ({"error":..., "code":N, "message":...}) as an Error of the right kind.
Error etcdError(const json& j, const std::string& where) {
  int64_t code = number<int64_t>(j, "code");
  std::string msg;
  if (auto it = j.find("message"); it != j.end() && it->is_string()) msg = *it;
  else if (auto e = j.find("error"); e != j.end() && e->is_string()) msg = *e;
  else msg = j.dump();
  ErrorKind kind = ErrorKind::kRejected;
  if (msg.find("request is too large") != std::string::npos ||
      (code == 8 && msg.find("larger than max") != std::string::npos))
    kind = ErrorKind::kTooLarge;  // 8: gRPC RESOURCE_EXHAUSTED, past the gRPC message limit
  else if (msg.find("required revision has been compacted") != std::string::npos)
    kind = ErrorKind::kCompacted;
  return Error(kind, "etcd " + where + ": " + msg + " (code " + std::to_string(code) + ")");
}

bool isErrorAnswer(const json& j) { return j.is_object() && (j.contains("error") || j.contains("code")) && !j.contains("header"); }

constexpr int64_t kGrpcUnavailable = 14;

// One POST on one easy handle.
struct Attempt {
  CURLcode code = CURLE_OK;
  long http = 0;
  bool connected = false;
  std::string body;
  std::string error;
};

size_t appendToString(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

void setCommon(CURL* h, const std::string& url, const ClientOptions& o, curl_slist* headers, char* errbuf) {
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(h, CURLOPT_PROXY, "");     // etcd is reached directly, whatever http_proxy says
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, long(std::max(1, o.connectTimeoutMs)));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  errbuf[0] = 0;
}

// "Content-Type: application/json", and no "Expect: 100-continue" (a round trip saved on big
// puts).
curl_slist* jsonHeaders() {
  curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
  return curl_slist_append(h, "Expect:");
}

std::string curlWhy(CURLcode code, const char* errbuf) {
  return errbuf[0] != 0 ? std::string(errbuf) : std::string(curl_easy_strerror(code));
}

}  // namespace

Error::Error(ErrorKind kind, std::string msg) : std::runtime_error(std::move(msg)), kind_(kind) {}

const char* errorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kCompacted: return "compacted";
    case ErrorKind::kTooLarge: return "too large";
    case ErrorKind::kRejected: return "rejected";
    case ErrorKind::kBadResponse: return "bad response";
  }
  return "unknown";
}

std::string prefixEnd(std::string prefix) {
  while (!prefix.empty() && uint8_t(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::string(1, '\0');  // etcd: range_end "\0" means "to the end"
  prefix.back() = char(uint8_t(prefix.back()) + 1);
  return prefix;
}

// Idle easy handles: reusing one keeps its connection to etcd open for the next call.
struct Client::Pool {
  std::mutex mu;
  std::vector<CURL*> idle;
  curl_slist* headers = jsonHeaders();
  static constexpr size_t kMaxIdle = 8;

  ~Pool() {
    for (CURL* h : idle) curl_easy_cleanup(h);
    curl_slist_free_all(headers);
  }
  CURL* acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        CURL* h = idle.back();
        idle.pop_back();
        return h;
      }
    }
    CURL* h = curl_easy_init();
    if (h == nullptr) throw Error(ErrorKind::kUnavailable, "etcd: cannot create a curl handle");
    return h;
  }
  void release(CURL* h) {
    curl_easy_reset(h);  // keeps the connection cache
    std::lock_guard<std::mutex> lock(mu);
    if (idle.size() < kMaxIdle) idle.push_back(h);
    else curl_easy_cleanup(h);
  }

  Attempt post(const std::string& url, const std::string& body, const ClientOptions& o) {
    CURL* h = acquire();
    Attempt a;
    char errbuf[CURL_ERROR_SIZE];
    setCommon(h, url, o, headers, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, long(std::max(1, o.requestTimeoutMs)));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, appendToString);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a.body);
    a.code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a.http);
    curl_off_t connectUs = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connectUs);
    a.connected = connectUs > 0 || a.http != 0;
    if (a.code != CURLE_OK) a.error = curlWhy(a.code, errbuf);
    release(h);
    return a;
  }
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  initCurl();
  for (auto& e : options_.endpoints) e = trimEndpoint(e);
  pool_ = std::make_unique<Pool>();
}

Client::~Client() = default;

json Client::call(const std::string& path, const json& body) {
  const auto& eps = options_.endpoints;
  if (eps.empty()) throw Error(ErrorKind::kUnavailable, "etcd: no endpoints configured for POST " + path);
  const std::string payload = body.dump();
  const size_t n = eps.size();
  const size_t start = preferred_.load() % n;
  std::string failures;
  bool anyTimeout = false;
  for (size_t i = 0; i < n; ++i) {
    const size_t idx = (start + i) % n;
    Attempt a = pool_->post(eps[idx] + path, payload, options_);
    std::string why;
    if (a.code != CURLE_OK) {
      // A request that reached etcd and timed out may have been applied: say so (kTimeout).
      bool timedOut = a.code == CURLE_OPERATION_TIMEDOUT && a.connected;
      anyTimeout = anyTimeout || timedOut;
      why = (timedOut ? "no answer in " + std::to_string(options_.requestTimeoutMs) + " ms (" : "unreachable (") + a.error + ")";
    } else {
      json j = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) {
        // Not etcd speaking (a proxy's 502 page, a half-dead member): another endpoint may be
        // fine. Only a 2xx that is not JSON is etcd's own fault.
        if (a.http < 500) throw Error(ErrorKind::kBadResponse, "etcd POST " + eps[idx] + path + ": HTTP " + std::to_string(a.http) +
                                                                   ", not a JSON object: " + a.body.substr(0, 200));
        failures += (failures.empty() ? "" : "; ") + eps[idx] + ": HTTP " + std::to_string(a.http) + ", not etcd's answer";
        continue;
      }
      if (!isErrorAnswer(j)) {
        preferred_.store(idx);
        return j;
      }
      if (number<int64_t>(j, "code") != kGrpcUnavailable) throw etcdError(j, "POST " + eps[idx] + path);
      // UNAVAILABLE: this member cannot serve now (no leader, stopping, timed out): next one.
      why = etcdError(j, "said").what();
      if (why.find("timed out") != std::string::npos) anyTimeout = true;
    }
    failures += (failures.empty() ? "" : "; ") + eps[idx] + ": " + why;
  }
  throw Error(anyTimeout ? ErrorKind::kTimeout : ErrorKind::kUnavailable,
              "etcd: no endpoint answered POST " + path + ": " + failures);
}

namespace {

json rangeRequest(const std::string& key, const std::string& rangeEnd, bool serializable, int64_t limit) {
  json r = {{"key", base64Encode(key)}};
  if (!rangeEnd.empty()) r["range_end"] = base64Encode(rangeEnd);
  if (serializable) r["serializable"] = true;
  if (limit > 0) r["limit"] = std::to_string(limit);
  return r;
}

RangeResult decodeRange(const json& j) {
  RangeResult r;
  r.revision = headerRevision(j);
  r.count = number<int64_t>(j, "count");
  if (auto it = j.find("more"); it != j.end() && it->is_boolean()) r.more = *it;
  if (auto it = j.find("kvs"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw Error(ErrorKind::kBadResponse, "etcd: 'kvs' is not an array");
    r.kvs.reserve(it->size());
    for (const auto& kv : *it) r.kvs.push_back(decodeKv(kv));
  }
  return r;
}

json txnOp(const TxnOp& op) {
  json body = {{"key", base64Encode(op.key)}};
  switch (op.kind) {
    case TxnOp::Kind::kPut:
      body["value"] = base64Encode(op.value);
      return {{"request_put", body}};
    case TxnOp::Kind::kDeleteRange:
      if (!op.rangeEnd.empty()) body["range_end"] = base64Encode(op.rangeEnd);
      return {{"request_delete_range", body}};
    case TxnOp::Kind::kRange:
      if (!op.rangeEnd.empty()) body["range_end"] = base64Encode(op.rangeEnd);
      return {{"request_range", body}};
  }
  throw Error(ErrorKind::kRejected, "etcd txn: unknown operation kind");
}

json txnCompare(const Compare& c) {
  json j = {{"key", base64Encode(c.key)}};
  switch (c.op) {
    case Compare::Op::kEqual: j["result"] = "EQUAL"; break;
    case Compare::Op::kGreater: j["result"] = "GREATER"; break;
    case Compare::Op::kLess: j["result"] = "LESS"; break;
    case Compare::Op::kNotEqual: j["result"] = "NOT_EQUAL"; break;
  }
  switch (c.target) {
    case Compare::Target::kModRevision: j["target"] = "MOD"; j["mod_revision"] = std::to_string(c.number); break;
    case Compare::Target::kVersion: j["target"] = "VERSION"; j["version"] = std::to_string(c.number); break;
    case Compare::Target::kCreateRevision: j["target"] = "CREATE"; j["create_revision"] = std::to_string(c.number); break;
    case Compare::Target::kValue: j["target"] = "VALUE"; j["value"] = base64Encode(c.value); break;
  }
  return j;
}

}  // namespace

RangeResult Client::get(const std::string& key, bool serializable) {
  return decodeRange(call("/v3/kv/range", rangeRequest(key, "", serializable, 0)));
}

RangeResult Client::getPrefix(const std::string& prefix, bool serializable, int64_t limit) {
  return decodeRange(call("/v3/kv/range", rangeRequest(prefix, prefixEnd(prefix), serializable, limit)));
}

RangeResult Client::getRange(const std::string& key, const std::string& rangeEnd, bool serializable) {
  return decodeRange(call("/v3/kv/range", rangeRequest(key, rangeEnd, serializable, 0)));
}

int64_t Client::put(const std::string& key, const std::string& value) {
  return headerRevision(call("/v3/kv/put", {{"key", base64Encode(key)}, {"value", base64Encode(value)}}));
}

TxnResult Client::txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                      const std::vector<TxnOp>& failure) {
  json body = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) body["compare"].push_back(txnCompare(c));
  for (const auto& op : success) body["success"].push_back(txnOp(op));
  for (const auto& op : failure) body["failure"].push_back(txnOp(op));
  json j = call("/v3/kv/txn", body);
  TxnResult r;
  r.revision = headerRevision(j);
  if (auto it = j.find("succeeded"); it != j.end() && it->is_boolean()) r.succeeded = *it;
  return r;
}

int64_t Client::deletePrefix(const std::string& prefix) {
  return headerRevision(call("/v3/kv/deleterange",
                             {{"key", base64Encode(prefix)}, {"range_end", base64Encode(prefixEnd(prefix))}}));
}

void Client::compact(int64_t revision, bool physical) {
  json body = {{"revision", std::to_string(revision)}};
  if (physical) body["physical"] = true;
  call("/v3/kv/compaction", body);
}

Client::Status Client::status(const std::string& endpoint) {
  const std::string ep = trimEndpoint(endpoint);
  Attempt a = pool_->post(ep + "/v3/maintenance/status", "{}", options_);
  if (a.code != CURLE_OK) {
    bool timedOut = a.code == CURLE_OPERATION_TIMEDOUT && a.connected;
    throw Error(timedOut ? ErrorKind::kTimeout : ErrorKind::kUnavailable, "etcd status of " + ep + ": " + a.error);
  }
  json j = json::parse(a.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(ErrorKind::kBadResponse, "etcd status of " + ep + ": not a JSON object: " + a.body.substr(0, 200));
  if (isErrorAnswer(j)) {
    Error e = etcdError(j, "status of " + ep);
    if (number<int64_t>(j, "code") == kGrpcUnavailable) throw Error(ErrorKind::kUnavailable, e.what());
    throw e;
  }
  Status s;
  s.endpoint = ep;
  const json& header = j.contains("header") ? j["header"] : json::object();
  s.memberId = number<uint64_t>(header, "member_id");
  s.revision = number<int64_t>(header, "revision");
  s.leaderId = number<uint64_t>(j, "leader");
  // The gateway of 3.4 writes this message's own fields in camelCase; accept either spelling.
  s.raftTerm = j.contains("raftTerm") ? number<int64_t>(j, "raftTerm") : number<int64_t>(j, "raft_term");
  return s;
}

// ---------------------------------------------------------------------------------------------
// Watch

struct Watch::State {
  ClientOptions options;
  std::string key;
  bool prefix = false;
  int64_t startRevision = 0;
  WatchCallbacks cb;

  std::atomic<bool> stopRequested{false};
  std::atomic<bool> running{true};
  CURLM* multi = nullptr;  // created before the thread, freed with the State; wakeup is thread-safe
  std::thread thread;
  std::atomic<std::thread::id> threadId{};  // set by the thread itself, first thing
  std::mutex joinMu;

  // The stream being read.
  std::string buffer;
  size_t scanFrom = 0;     // buffer[0, scanFrom) holds no '\n'
  bool finished = false;   // a terminal callback (onError, onCompacted) has run
  long http = -1;          // the answer's HTTP status, once known
  CURL* currentEasy = nullptr;  // the stream's easy handle (for its status code)
  std::string errorBody;   // the body of a non-200 answer
  std::chrono::steady_clock::time_point lastData;

  static constexpr size_t kMaxMessage = size_t(512) << 20;  // far above any etcd response

  ~State() {
    if (multi != nullptr) curl_multi_cleanup(multi);
  }

  void run();
  enum class Outcome { kDone, kNoConnect };
  Outcome stream(const std::string& endpoint, std::string& why);
  size_t onData(CURL* h, const char* data, size_t n);
  void handleMessage(const std::string& text);

  // Terminal callbacks: running() is false before they run, and at most one runs.
  void fail(const std::string& why) {
    if (finished || stopRequested) return;
    finished = true;
    running = false;
    if (cb.onError) try { cb.onError(why); } catch (...) {}
  }
  void compacted(int64_t revision) {
    if (finished || stopRequested) return;
    finished = true;
    running = false;
    if (cb.onCompacted) try { cb.onCompacted(revision); } catch (...) {}
  }
};

void Watch::State::run() {
  std::string failures;
  for (const auto& ep : options.endpoints) {
    if (stopRequested) break;
    std::string why;
    if (stream(trimEndpoint(ep), why) == Outcome::kDone) {
      running = false;
      return;
    }
    failures += (failures.empty() ? "" : "; ") + trimEndpoint(ep) + ": " + why;
  }
  if (options.endpoints.empty()) failures = "no endpoints configured";
  fail("etcd watch: no endpoint connected: " + failures);
  running = false;
}

size_t Watch::State::onData(CURL* h, const char* data, size_t n) {
  if (stopRequested || finished) return 0;  // aborts the transfer
  lastData = std::chrono::steady_clock::now();
  if (http < 0) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
  if (http != 200) {
    errorBody.append(data, std::min(n, size_t(4096) - std::min(errorBody.size(), size_t(4096))));
    return n;
  }
  buffer.append(data, n);
  // The gateway ends every message with '\n'; JSON escapes any newline inside a string.
  size_t consumed = 0;
  for (;;) {
    size_t nl = buffer.find('\n', scanFrom);
    if (nl == std::string::npos) break;
    std::string line = buffer.substr(consumed, nl - consumed);
    consumed = nl + 1;
    scanFrom = consumed;
    handleMessage(line);
    if (finished || stopRequested) return 0;
  }
  buffer.erase(0, consumed);
  scanFrom = buffer.size();
  if (buffer.size() > kMaxMessage) {
    fail("etcd watch: a message over " + std::to_string(kMaxMessage) + " bytes");
    return 0;
  }
  return n;
}

void Watch::State::handleMessage(const std::string& text) {
  if (text.find_first_not_of(" \t\r") == std::string::npos) return;
  try {
    json j = json::parse(text);
    if (auto e = j.find("error"); e != j.end()) {
      std::string msg = e->is_object() && e->contains("message") && (*e)["message"].is_string()
                            ? (*e)["message"].get<std::string>() : e->dump();
      fail("etcd watch: the stream failed: " + msg);
      return;
    }
    auto r = j.find("result");
    if (r == j.end() || !r->is_object()) throw Error(ErrorKind::kBadResponse, "no 'result'");
    const int64_t rev = headerRevision(*r);
    if (auto c = r->find("canceled"); c != r->end() && c->is_boolean() && c->get<bool>()) {
      int64_t compact = number<int64_t>(*r, "compact_revision");
      if (compact > 0) {
        compacted(compact);
      } else {
        std::string reason = r->contains("cancel_reason") ? r->at("cancel_reason").dump() : std::string("no reason given");
        fail("etcd watch: etcd canceled the watch: " + reason);
      }
      return;
    }
    std::vector<WatchEvent> events;
    if (auto ev = r->find("events"); ev != r->end() && ev->is_array()) {
      events.reserve(ev->size());
      for (const auto& e : *ev) {
        WatchEvent we;
        std::string type = e.contains("type") && e["type"].is_string() ? e["type"].get<std::string>() : "PUT";
        if (type == "PUT") we.type = WatchEvent::Type::kPut;
        else if (type == "DELETE") we.type = WatchEvent::Type::kDelete;
        else throw Error(ErrorKind::kBadResponse, "unknown event type " + type);
        we.kv = decodeKv(e.contains("kv") ? e["kv"] : json::object());
        events.push_back(std::move(we));
      }
    }
    if (!events.empty()) {
      if (cb.onEvents) cb.onEvents(rev, events);
    } else if (cb.onProgress) {
      // The "created" answer of a watch that starts in the past comes before the old events,
      // so it may only vouch for what precedes the start revision.
      bool created = r->contains("created") && (*r)["created"].is_boolean() && (*r)["created"].get<bool>();
      cb.onProgress(created && startRevision > 0 ? std::min(rev, startRevision - 1) : rev);
    }
  } catch (const std::exception& e) {
    fail(std::string("etcd watch: bad message (") + e.what() + "): " + text.substr(0, 200));
  }
}

Watch::State::Outcome Watch::State::stream(const std::string& endpoint, std::string& why) {
  buffer.clear();
  scanFrom = 0;
  http = -1;
  errorBody.clear();
  CURL* h = curl_easy_init();
  if (h == nullptr || multi == nullptr) {
    if (h != nullptr) curl_easy_cleanup(h);
    why = "cannot create a curl handle";
    return Outcome::kNoConnect;
  }
  json create = {{"key", base64Encode(key)}, {"progress_notify", true}};
  if (prefix) create["range_end"] = base64Encode(prefixEnd(key));
  if (startRevision > 0) create["start_revision"] = std::to_string(startRevision);
  const std::string body = json{{"create_request", create}}.dump();
  const std::string url = endpoint + "/v3/watch";
  curl_slist* headers = jsonHeaders();
  char errbuf[CURL_ERROR_SIZE];
  setCommon(h, url, options, headers, errbuf);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* u) -> size_t {
    auto* st = static_cast<State*>(u);
    return st->onData(st->currentEasy, d, s * n);
  });
  curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
  currentEasy = h;
  curl_multi_add_handle(multi, h);

  lastData = std::chrono::steady_clock::now();
  CURLcode result = CURLE_OK;
  bool done = false, idleOut = false;
  while (!stopRequested && !finished) {
    int still = 0;
    if (CURLMcode mc = curl_multi_perform(multi, &still); mc != CURLM_OK) {
      why = std::string("curl: ") + curl_multi_strerror(mc);
      break;
    }
    int queued = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &queued)) {
      if (m->msg == CURLMSG_DONE) {
        result = m->data.result;
        done = true;
      }
    }
    if (done || stopRequested || finished) break;
    if (options.watchIdleTimeoutMs > 0 &&
        std::chrono::steady_clock::now() - lastData > std::chrono::milliseconds(options.watchIdleTimeoutMs)) {
      idleOut = true;
      break;
    }
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }
  long httpNow = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &httpNow);
  curl_multi_remove_handle(multi, h);
  curl_easy_cleanup(h);
  curl_slist_free_all(headers);
  currentEasy = nullptr;

  if (stopRequested || finished) return Outcome::kDone;
  if (idleOut) {
    fail("etcd watch on " + endpoint + ": no data for " + std::to_string(options.watchIdleTimeoutMs) + " ms");
    return Outcome::kDone;
  }
  if (!done) {  // a multi error
    fail("etcd watch on " + endpoint + ": " + why);
    return Outcome::kDone;
  }
  if (httpNow == 0 && result != CURLE_OK) {  // never answered: try the next endpoint
    why = curlWhy(result, errbuf);
    return Outcome::kNoConnect;
  }
  if (httpNow != 200) {
    fail("etcd watch on " + endpoint + ": HTTP " + std::to_string(httpNow) + ": " + errorBody);
    return Outcome::kDone;
  }
  if (!buffer.empty()) handleMessage(buffer);  // a last message without its '\n'
  fail("etcd watch on " + endpoint + ": the stream ended (" +
       (result == CURLE_OK ? std::string("closed by etcd") : curlWhy(result, errbuf)) + ")");
  return Outcome::kDone;
}

Watch::Watch(ClientOptions options, std::string key, bool prefix, int64_t startRevision, WatchCallbacks callbacks)
    : state_(std::make_shared<State>()) {
  initCurl();
  state_->options = std::move(options);
  state_->key = std::move(key);
  state_->prefix = prefix;
  state_->startRevision = startRevision;
  state_->cb = std::move(callbacks);
  state_->multi = curl_multi_init();
  // The thread holds the State too, so a Watch destroyed on its own thread cannot free it.
  state_->thread = std::thread([s = state_] {
    s->threadId = std::this_thread::get_id();
    s->run();
  });
}

Watch::~Watch() {
  stop();
  std::lock_guard<std::mutex> lock(state_->joinMu);
  if (state_->thread.joinable()) state_->thread.detach();  // only when destroyed on its own thread
}

void Watch::stop() {
  state_->stopRequested = true;
  if (state_->multi != nullptr) curl_multi_wakeup(state_->multi);
  // From a callback (the watch's own thread): cancel only; the thread ends after the callback.
  if (state_->threadId.load() == std::this_thread::get_id()) return;
  std::lock_guard<std::mutex> lock(state_->joinMu);
  if (state_->thread.joinable()) state_->thread.join();
  state_->running = false;
}

bool Watch::running() const { return state_->running; }

}  // namespace govmesh::etcd
