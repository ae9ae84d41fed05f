// The scalar decision-table evaluator: featurization of requests into codes, and evaluation
// of the codes against the table's rows. It is the reference for every SIMD and GPU backend.
#include <bit>

#include "compiler/decision_table.h"

namespace govmesh::table {

using namespace govmesh::cedar;

size_t DecisionTable::tableBytes() const {
  size_t bytes = (permitMask.size() + forbidMask.size()) * sizeof(Word);
  for (const Feature& f : features) {
    bytes += f.rows.size() * sizeof(Word) + f.entityRows.size() * sizeof(uint32_t);
    for (const auto& [k, v] : f.valueRows) bytes += k.size() + sizeof(v) + 32;  // node overhead, roughly
    for (const auto& [k, v] : f.unknownTypeRows) bytes += k.size() + sizeof(v) + 32;
  }
  bytes += entities.size() * (sizeof(EntityUid) + 48);  // uid strings and index node, roughly
  for (const EntityUid& u : entities) bytes += u.type.size() + u.id.size();
  return bytes;
}

namespace {

uint32_t entityCode(const DecisionTable& t, const Feature& f, const EntityUid& uid) {
  if (auto it = t.entityIndex.find(uid); it != t.entityIndex.end()) return f.entityRows[it->second];
  if (auto it = f.unknownTypeRows.find(uid.type); it != f.unknownTypeRows.end()) return it->second;
  return f.unknownAnyTypeRow;
}

// Reads `context.path` exactly as the evaluator does (entity steps go through the store),
// then looks the value up. TODO(perf): walk records directly and intern values.
uint32_t contextCode(const DecisionTable& t, const Feature& f, const Request& r) {
  const Value* cur = &r.context;
  for (const std::string& name : f.path) {
    const Value* rec = nullptr;
    if (cur->isRecord()) {
      rec = cur;
    } else if (cur->isEntity()) {
      const Entity* e = t.store->find(cur->asEntity());
      if (!e) return f.errorRow;
      rec = &e->attrs;
    } else {
      return f.errorRow;
    }
    cur = rec->field(name);
    if (!cur) return f.errorRow;
  }
  auto it = f.valueRows.find(toString(*cur));
  return it == f.valueRows.end() ? f.otherRow : it->second;
}

uint32_t derivedCode(const DecisionTable& t, const Feature& f, const Request& r) {
  EvalResult v = evaluate(*f.atom, r, *t.store);
  if (!v.ok() || !v.value->isBool()) return kDerivedError;
  return v.value->asBool() ? kDerivedTrue : kDerivedFalse;
}

template <class Fn>
void forEachBit(const Word* bits, uint32_t words, Fn fn) {
  for (uint32_t w = 0; w < words; ++w)
    for (Word b = bits[w]; b; b &= b - 1) fn(w * 64 + static_cast<uint32_t>(std::countr_zero(b)));
}

}  // namespace

void featurize(const DecisionTable& t, const std::vector<Request>& requests, std::vector<uint32_t>& codes) {
  const size_t n = requests.size();
  codes.resize(t.features.size() * n);
  for (size_t f = 0; f < t.features.size(); ++f) {
    const Feature& feat = t.features[f];
    uint32_t* out = codes.data() + f * n;
    for (size_t i = 0; i < n; ++i) {
      const Request& r = requests[i];
      switch (feat.kind) {
        case FeatureKind::Principal: out[i] = entityCode(t, feat, r.principal); break;
        case FeatureKind::Action: out[i] = entityCode(t, feat, r.action); break;
        case FeatureKind::Resource: out[i] = entityCode(t, feat, r.resource); break;
        case FeatureKind::Context: out[i] = contextCode(t, feat, r); break;
        case FeatureKind::Derived: out[i] = derivedCode(t, feat, r); break;
      }
    }
  }
}

void evaluateBatch(const DecisionTable& t, const std::vector<Request>& requests, const std::vector<uint32_t>& codes,
                   std::vector<Response>& out) {
  const size_t n = requests.size();
  const uint32_t w = t.words;
  std::vector<uint8_t> flags(n);
  std::vector<Word> bits(n * 3 * size_t{w});
  for (size_t i = 0; i < n; ++i) {
    Word* sat = bits.data() + i * 3 * size_t{w};
    Word* err = sat + w;
    Word* amb = err + w;
    uint8_t fl = 0;
    for (uint32_t k = 0; k < w; ++k) {
      Word s = ~Word{0}, tt = ~Word{0}, anyE = 0, anyF = 0;
      for (size_t f = 0; f < t.features.size(); ++f) {
        const Word* row = t.row(t.features[f], codes[f * n + i]);
        s &= row[k];
        tt &= row[w + k];
        anyE |= row[2 * w + k];
        anyF |= ~(row[w + k] | row[2 * w + k]);
      }
      // Bits past the last policy are cleared so that no phantom policy is reported.
      Word valid = (k + 1 < w || t.policyCount % 64 == 0) ? ~Word{0} : (Word{1} << (t.policyCount % 64)) - 1;
      s &= valid;
      sat[k] = s & tt;
      err[k] = s & anyE & ~anyF;
      amb[k] = s & anyE & anyF;
      if (sat[k] & t.permitMask[k]) fl |= kBatchPermitSat;
      if (sat[k] & t.forbidMask[k]) fl |= kBatchForbidSat;
      if (err[k]) fl |= kBatchError;
      if (amb[k]) fl |= kBatchAmbiguous;
    }
    flags[i] = fl;
  }
  finishBatch(t, requests, flags.data(), bits.data(), out);
}

void finishBatch(const DecisionTable& t, const std::vector<Request>& requests, const uint8_t* flags, const Word* bits,
                 std::vector<Response>& out) {
  const size_t n = requests.size();
  const uint32_t w = t.words;
  out.assign(n, Response{});
  std::vector<Word> sat(w), err(w);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t fl = flags[i];
    Response& resp = out[i];
    const Word* mine = bits + i * 3 * size_t{w};
    bool anyForbid = fl & kBatchForbidSat, anyPermit = fl & kBatchPermitSat;
    const Word* satBits = mine;
    const Word* errBits = mine + w;
    if (fl & kBatchAmbiguous) {
      // Ambiguous policies: a false atom and an erroring atom on different features; which came
      // first decides, so the reference evaluator settles each such policy exactly.
      std::copy(mine, mine + w, sat.begin());
      std::copy(mine + w, mine + 2 * w, err.begin());
      forEachBit(mine + 2 * w, w, [&](uint32_t p) {
        EvalResult v = evaluatePolicy(t.policies[p], requests[i], *t.store);
        if (!v.ok()) err[p / 64] |= Word{1} << (p % 64);
        else if (v.value->asBool()) sat[p / 64] |= Word{1} << (p % 64);
      });
      anyForbid = anyPermit = false;
      for (uint32_t k = 0; k < w; ++k) {
        anyForbid |= (sat[k] & t.forbidMask[k]) != 0;
        anyPermit |= (sat[k] & t.permitMask[k]) != 0;
      }
      satBits = sat.data();
      errBits = err.data();
    }
    resp.decision = (!anyForbid && anyPermit) ? Decision::Allow : Decision::Deny;
    if (anyForbid || anyPermit) {
      const std::vector<Word>& mask = anyForbid ? t.forbidMask : t.permitMask;
      for (uint32_t k = 0; k < w; ++k)
        for (Word b = satBits[k] & mask[k]; b; b &= b - 1) resp.reasons.push_back(t.policies[k * 64 + std::countr_zero(b)].id);
    }
    if ((fl & (kBatchError | kBatchAmbiguous)) == 0) continue;
    forEachBit(errBits, w, [&](uint32_t p) {
      // The message comes from the reference evaluator, for erroring policies only.
      resp.errors.push_back({t.policies[p].id, evaluatePolicy(t.policies[p], requests[i], *t.store).error});
    });
  }
}

Response authorizeWithTable(const DecisionTable& t, const Request& request) {
  std::vector<Request> batch{request};
  std::vector<uint32_t> codes;
  std::vector<Response> out;
  featurize(t, batch, codes);
  evaluateBatch(t, batch, codes, out);
  return out[0];
}

}  // namespace govmesh::table
