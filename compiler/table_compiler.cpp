// Compilation of a policy set into a decision table (see decision_table.h for the layout).
#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include "compiler/decision_table.h"

namespace govmesh::table {

using namespace govmesh::cedar;

namespace {

constexpr const char* kUnknownType = "\x01govmesh-unknown-type";

enum class TriState : uint8_t { True, False, Error };

TriState triOf(const EvalResult& r) {
  if (!r.ok() || !r.value->isBool()) return TriState::Error;
  return r.value->asBool() ? TriState::True : TriState::False;
}

// Which request variables an expression reads.
struct VarUse {
  bool principal = false, action = false, resource = false, context = false;
  int count() const { return principal + action + resource + context; }
};

void collectVars(const Expr& e, VarUse& u) {
  if (e.kind == ExprKind::Variable) {
    switch (e.var) {
      case Var::Principal: u.principal = true; break;
      case Var::Action: u.action = true; break;
      case Var::Resource: u.resource = true; break;
      case Var::Context: u.context = true; break;
    }
  }
  for (const ExprPtr& k : e.kids) collectVars(*k, u);
}

void collectUids(const Expr& e, std::vector<EntityUid>& out, std::set<std::string>& types) {
  if (e.kind == ExprKind::Literal && e.literal.isEntity()) out.push_back(e.literal.asEntity());
  if (e.kind == ExprKind::Is) types.insert(e.name);
  for (const ExprPtr& k : e.kids) collectUids(*k, out, types);
}

void collectValueUids(const Value& v, std::vector<EntityUid>& out) {
  switch (v.kind()) {
    case ValueKind::Entity: out.push_back(v.asEntity()); break;
    case ValueKind::Set:
      for (const Value& x : v.asSet()) collectValueUids(x, out);
      break;
    case ValueKind::Record:
      for (const auto& [k, x] : v.asRecord()) collectValueUids(x, out);
      break;
    default: break;
  }
}

// Splits a policy's conditions into atoms, in evaluation order: `when { a && b }` gives a, b;
// `unless { c }` gives !c. Splitting an && chain keeps Cedar's semantics: the chain is true
// iff every part is, and otherwise its outcome is that of the first part that is not true
// (false, or an error, a non-boolean value being a type error either way).
void flattenAnd(const ExprPtr& e, std::vector<ExprPtr>& out) {
  if (e->kind == ExprKind::And) {
    flattenAnd(e->kids[0], out);
    flattenAnd(e->kids[1], out);
  } else {
    out.push_back(e);
  }
}

std::vector<ExprPtr> atomsOf(const Policy& p) {
  std::vector<ExprPtr> atoms;
  for (const Condition& c : p.conditions) {
    if (c.isWhen) {
      flattenAnd(c.body, atoms);
    } else {
      auto neg = std::make_shared<Expr>();
      neg->kind = ExprKind::Not;
      neg->loc = c.body->loc;
      neg->kids.push_back(c.body);
      atoms.push_back(neg);
    }
  }
  return atoms;
}

// `context.a.b` as a path, or nullopt when `e` is not a plain attribute chain on context.
std::optional<std::vector<std::string>> contextPath(const Expr& e) {
  std::vector<std::string> path;
  const Expr* cur = &e;
  while (cur->kind == ExprKind::GetAttr) {
    path.push_back(cur->name);
    cur = cur->kids[0].get();
  }
  if (cur->kind != ExprKind::Variable || cur->var != Var::Context || path.empty()) return std::nullopt;
  std::reverse(path.begin(), path.end());
  return path;
}

// An atom `context.path == literal` (either side, or !=): tabulated on a context feature.
struct ContextCompare {
  std::vector<std::string> path;
  Value constant;
};

std::optional<ContextCompare> contextCompare(const Expr& e) {
  if (e.kind != ExprKind::Eq && e.kind != ExprKind::Ne) return std::nullopt;
  for (int side = 0; side < 2; ++side) {
    auto path = contextPath(*e.kids[side]);
    const Expr& other = *e.kids[1 - side];
    if (path && other.kind == ExprKind::Literal) return ContextCompare{*path, other.literal};
  }
  return std::nullopt;
}

// An atom's place: which feature reads it.
struct AtomRef {
  uint32_t policy;
  ExprPtr atom;
};

// Builds rows with deduplication: identical rows share one index. Rows are found by a hash of
// their words and compared with the stored copy, so each distinct row is held once.
class RowBuilder {
 public:
  uint32_t add(const std::vector<Word>& row) {
    const size_t len = row.size();
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    for (Word w : row) h = (h ^ w) * 0x100000001b3ULL + (h >> 29);
    std::vector<uint32_t>& bucket = index_[h];
    for (uint32_t r : bucket)
      if (std::equal(row.begin(), row.end(), rows_.begin() + static_cast<std::ptrdiff_t>(size_t{r} * len))) return r;
    uint32_t r = static_cast<uint32_t>(count_++);
    rows_.insert(rows_.end(), row.begin(), row.end());
    bucket.push_back(r);
    return r;
  }
  std::vector<Word> take() { return std::move(rows_); }

 private:
  size_t count_ = 0;
  std::vector<Word> rows_;
  std::unordered_map<uint64_t, std::vector<uint32_t>> index_;
};

void setBit(Word* bits, uint32_t i) { bits[i / 64] |= Word{1} << (i % 64); }
void clearBit(Word* bits, uint32_t i) { bits[i / 64] &= ~(Word{1} << (i % 64)); }

// Writes a policy's combined outcome of its atoms on one feature into a row's T and E.
void applyOutcome(Word* t, Word* e, uint32_t policy, TriState s) {
  if (s == TriState::True) return;  // T stays 1, E stays 0
  clearBit(t, policy);
  if (s == TriState::Error) setBit(e, policy);
}

class Compiler {
 public:
  Compiler(std::vector<Policy> policies, const EntityStore& store) : store_(store) {
    t_.policies = std::move(policies);
    t_.store = &store;
    t_.policyCount = static_cast<uint32_t>(t_.policies.size());
    t_.words = (t_.policyCount + 63) / 64;
  }

  DecisionTable run() {
    const uint32_t w = t_.words;
    t_.permitMask.assign(w, 0);
    t_.forbidMask.assign(w, 0);
    for (uint32_t i = 0; i < t_.policyCount; ++i)
      setBit((t_.policies[i].effect == Effect::Permit ? t_.permitMask : t_.forbidMask).data(), i);
    buildUniverse();
    classifyAtoms();
    for (Var v : {Var::Principal, Var::Action, Var::Resource}) buildEntityFeature(v);
    for (auto& [key, refs] : contextAtoms_) buildContextFeature(contextPaths_[key], refs);
    for (auto& [text, refs] : derivedAtoms_) buildDerivedFeature(text, refs);
    return std::move(t_);
  }

 private:
  void addUid(const EntityUid& u) {
    if (t_.entityIndex.emplace(u, static_cast<uint32_t>(t_.entities.size())).second) {
      t_.entities.push_back(u);
      types_.insert(u.type);
    }
  }

  void buildUniverse() {
    for (const auto& [uid, e] : store_.all()) {
      addUid(uid);
      for (const EntityUid& p : e.parents) addUid(p);
      std::vector<EntityUid> refs;
      collectValueUids(e.attrs, refs);
      collectValueUids(e.tags, refs);
      for (const EntityUid& r : refs) addUid(r);
    }
    for (const Policy& p : t_.policies) {
      for (const ScopeConstraint* c : {&p.principal, &p.resource}) {
        if (c->op == ScopeConstraint::Op::Eq || c->op == ScopeConstraint::Op::In || c->op == ScopeConstraint::Op::IsIn)
          addUid(c->target.uid);
        if (!c->entityType.empty()) types_.insert(c->entityType);
      }
      for (const EntityUid& a : p.action.targets) addUid(a);
      std::vector<EntityUid> refs;
      for (const Condition& c : p.conditions) collectUids(*c.body, refs, types_);
      for (const EntityUid& r : refs) addUid(r);
    }
    // Descendants-or-self of every universe uid, for `in` scopes.
    for (uint32_t i = 0; i < t_.entities.size(); ++i) {
      descendants_[t_.entities[i]].push_back(i);
      for (const EntityUid& a : store_.ancestors(t_.entities[i])) descendants_[a].push_back(i);
    }
  }

  void classifyAtoms() {
    for (uint32_t i = 0; i < t_.policyCount; ++i) {
      for (const ExprPtr& atom : atomsOf(t_.policies[i])) {
        VarUse u;
        collectVars(*atom, u);
        if (u.count() == 0 || (u.count() == 1 && u.principal)) {
          // Constant atoms ride on the principal feature: every row gets the same outcome.
          entityAtoms_[0].push_back({i, atom});
        } else if (u.count() == 1 && u.action) {
          entityAtoms_[1].push_back({i, atom});
        } else if (u.count() == 1 && u.resource) {
          entityAtoms_[2].push_back({i, atom});
        } else if (auto cc = u.count() == 1 ? contextCompare(*atom) : std::nullopt) {
          std::string key;
          for (const std::string& s : cc->path) key += escapeCedarString(s) + "\n";
          contextPaths_[key] = cc->path;
          contextAtoms_[key].push_back({i, atom});
          contextConstantValues_[key].push_back(cc->constant);
        } else {
          derivedAtoms_[toCedarText(*atom)].push_back({i, atom});
        }
      }
    }
  }

  static bool scopeAny(const ScopeConstraint& c) { return c.op == ScopeConstraint::Op::Any; }

  // The entity feature of `var`: rows for every universe uid and for unknown uids by type.
  void buildEntityFeature(Var var) {
    const uint32_t w = t_.words, n = static_cast<uint32_t>(t_.entities.size());
    const int slot = var == Var::Principal ? 0 : var == Var::Action ? 1 : 2;
    Feature f;
    f.kind = var == Var::Principal ? FeatureKind::Principal : var == Var::Action ? FeatureKind::Action : FeatureKind::Resource;
    // Scope bits common to all codes (Any), by type (Is), and per uid (==, in, is-in).
    std::vector<Word> anyScope(w, 0);
    std::unordered_map<std::string, std::vector<uint32_t>> byType;
    std::vector<std::vector<uint32_t>> specific(n);
    for (uint32_t p = 0; p < t_.policyCount; ++p) {
      const Policy& pol = t_.policies[p];
      if (var == Var::Action) {
        const ActionConstraint& c = pol.action;
        switch (c.op) {
          case ActionConstraint::Op::Any: setBit(anyScope.data(), p); break;
          case ActionConstraint::Op::Eq: specific[t_.entityIndex.at(c.targets[0])].push_back(p); break;
          case ActionConstraint::Op::In:
          case ActionConstraint::Op::InSet: {
            std::set<uint32_t> codes;
            for (const EntityUid& target : c.targets)
              for (uint32_t d : descendants_[target]) codes.insert(d);
            for (uint32_t d : codes) specific[d].push_back(p);
            break;
          }
        }
        continue;
      }
      const ScopeConstraint& c = var == Var::Principal ? pol.principal : pol.resource;
      switch (c.op) {
        case ScopeConstraint::Op::Any: setBit(anyScope.data(), p); break;
        case ScopeConstraint::Op::Is: byType[c.entityType].push_back(p); break;
        case ScopeConstraint::Op::Eq: specific[t_.entityIndex.at(c.target.uid)].push_back(p); break;
        case ScopeConstraint::Op::In:
          for (uint32_t d : descendants_[c.target.uid]) specific[d].push_back(p);
          break;
        case ScopeConstraint::Op::IsIn:
          for (uint32_t d : descendants_[c.target.uid])
            if (t_.entities[d].type == c.entityType) specific[d].push_back(p);
          break;
      }
    }
    const std::vector<AtomRef>& atoms = entityAtoms_[slot];
    // Atom outcomes are cached by atom text per uid, so a condition shared by many policies
    // is evaluated once per uid.
    // Equal atoms (by text) share one outcome per uid: textId numbers the distinct texts.
    std::vector<uint32_t> textId;
    {
      std::unordered_map<std::string, uint32_t> ids;
      for (const AtomRef& a : atoms) textId.push_back(ids.emplace(toCedarText(*a.atom), static_cast<uint32_t>(ids.size())).first->second);
    }
    std::vector<TriState> outcome(atoms.size());
    std::vector<uint32_t> outcomeStamp(atoms.size(), 0);
    uint32_t stamp = 0;
    // Which policies have atoms here, and their atoms in order, so each uid visits only the
    // policies both in its scope and with atoms, not every atom.
    std::vector<Word> hasAtoms(w, 0);
    std::unordered_map<uint32_t, std::vector<uint32_t>> atomsOfPolicy;
    for (uint32_t k = 0; k < atoms.size(); ++k) {
      setBit(hasAtoms.data(), atoms[k].policy);
      atomsOfPolicy[atoms[k].policy].push_back(k);
    }
    RowBuilder rows;
    std::vector<Word> row(3 * size_t{w});
    auto makeRow = [&](const EntityUid& uid, const std::vector<uint32_t>* spec) {
      Word* s = row.data();
      Word* t = s + w;
      Word* e = t + w;
      std::copy(anyScope.begin(), anyScope.end(), s);
      std::fill(t, t + w, ~Word{0});
      std::fill(e, e + w, 0);
      if (auto it = byType.find(uid.type); it != byType.end())
        for (uint32_t p : it->second) setBit(s, p);
      if (spec)
        for (uint32_t p : *spec) setBit(s, p);
      if (!atoms.empty()) {
        Request req;
        req.principal = req.action = req.resource = uid;
        // Per policy in scope, the outcome of its first atom here that is not true. Atoms of
        // policies out of scope are irrelevant (the S bit already rules the policy out).
        ++stamp;  // forget the previous uid's outcomes
        for (uint32_t k = 0; k < w; ++k) {
          for (Word b = s[k] & hasAtoms[k]; b; b &= b - 1) {
            uint32_t p = k * 64 + static_cast<uint32_t>(__builtin_ctzll(b));
            TriState st = TriState::True;
            for (uint32_t ai : atomsOfPolicy[p]) {
              uint32_t id = textId[ai];
              if (outcomeStamp[id] != stamp) {
                outcome[id] = triOf(evaluate(*atoms[ai].atom, req, store_));
                outcomeStamp[id] = stamp;
              }
              st = outcome[id];
              if (st != TriState::True) break;  // the first atom that is not true decides
            }
            applyOutcome(t, e, p, st);
          }
        }
      }
      return rows.add(row);
    };
    f.entityRows.resize(n);
    for (uint32_t i = 0; i < n; ++i) f.entityRows[i] = makeRow(t_.entities[i], &specific[i]);
    // Unknown uids: a representative id that no universe uid has, per known type.
    for (const std::string& type : types_) {
      EntityUid rep{type, "\x01govmesh-unknown"};
      while (t_.entityIndex.count(rep)) rep.id += "\x01";
      f.unknownTypeRows[type] = makeRow(rep, nullptr);
    }
    f.unknownAnyTypeRow = makeRow(EntityUid{kUnknownType, "\x01govmesh-unknown"}, nullptr);
    f.rows = rows.take();
    t_.features.push_back(std::move(f));
  }

  void buildContextFeature(const std::vector<std::string>& path, const std::vector<AtomRef>& refs) {
    const uint32_t w = t_.words;
    Feature f;
    f.kind = FeatureKind::Context;
    f.path = path;
    RowBuilder rows;
    std::vector<Word> row(3 * size_t{w});
    // A context holding `value` at `path` (or nothing there when value is null).
    auto contextWith = [&](const Value* value) {
      if (!value) return Value::record({});
      Value v = *value;
      for (size_t i = path.size(); i-- > 0;) v = Value::record({{path[i], v}});
      return v;
    };
    auto makeRow = [&](const Value* value) {
      Word* s = row.data();
      Word* t = s + w;
      Word* e = t + w;
      std::fill(s, s + w, ~Word{0});
      std::fill(t, t + w, ~Word{0});
      std::fill(e, e + w, 0);
      Request req;
      req.context = contextWith(value);
      std::unordered_map<uint32_t, TriState> combined;
      for (const AtomRef& a : refs) {
        auto it = combined.find(a.policy);
        if (it != combined.end() && it->second != TriState::True) continue;
        combined[a.policy] = triOf(evaluate(*a.atom, req, store_));
      }
      for (const auto& [p, st] : combined) applyOutcome(t, e, p, st);
      return rows.add(row);
    };
    std::string key;
    for (const std::string& s : path) key += escapeCedarString(s) + "\n";
    std::set<std::string> seen;
    for (const Value& c : contextConstantValues_[key]) {
      std::string text = toString(c);
      if (!seen.insert(text).second) continue;
      f.valueRows[text] = makeRow(&c);
    }
    // Any other present value: a string no constant equals (== and != only look at equality).
    Value other = Value::string("\x01govmesh-other");
    while (seen.count(toString(other))) other = Value::string(other.asString() + "\x01");
    f.otherRow = makeRow(&other);
    f.errorRow = makeRow(nullptr);
    f.rows = rows.take();
    t_.features.push_back(std::move(f));
  }

  void buildDerivedFeature(const std::string& text, const std::vector<AtomRef>& refs) {
    const uint32_t w = t_.words;
    Feature f;
    f.kind = FeatureKind::Derived;
    f.atom = refs[0].atom;
    f.atomText = text;
    std::vector<Word> all(3 * size_t{w} * 3);
    for (uint32_t code = 0; code < 3; ++code) {
      Word* s = all.data() + size_t{code} * 3 * w;
      Word* t = s + w;
      Word* e = t + w;
      std::fill(s, s + w, ~Word{0});
      std::fill(t, t + w, ~Word{0});
      std::fill(e, e + w, 0);
      TriState st = code == kDerivedTrue ? TriState::True : code == kDerivedFalse ? TriState::False : TriState::Error;
      for (const AtomRef& a : refs) applyOutcome(t, e, a.policy, st);
    }
    f.rows = std::move(all);
    t_.features.push_back(std::move(f));
  }

  const EntityStore& store_;
  DecisionTable t_;
  std::set<std::string> types_;
  std::unordered_map<EntityUid, std::vector<uint32_t>, EntityUidHash> descendants_;
  std::vector<AtomRef> entityAtoms_[3];
  std::map<std::string, std::vector<AtomRef>> contextAtoms_;
  std::map<std::string, std::vector<std::string>> contextPaths_;
  std::map<std::string, std::vector<Value>> contextConstantValues_;
  std::map<std::string, std::vector<AtomRef>> derivedAtoms_;
};

}  // namespace

DecisionTable compileTable(std::vector<Policy> policies, const EntityStore& store) {
  return Compiler(std::move(policies), store).run();
}

}  // namespace govmesh::table
