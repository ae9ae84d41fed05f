#include "compiler/evaluator.h"

#include <algorithm>

#include "compiler/extensions.h"

namespace govmesh::cedar {

namespace {

// Evaluation errors carry a message; which policies error is what Cedar's answer reports.
EvalResult err(std::string m) { return EvalResult{std::nullopt, std::move(m)}; }
EvalResult ok(Value v) { return EvalResult{std::move(v), {}}; }

std::string typeError(std::string_view op, const Value& v) {
  return "type error: " + std::string(op) + " does not apply to a value of type " + std::string(kindName(v.kind()));
}

std::string typeError2(std::string_view op, const Value& a, const Value& b) {
  return "type error: " + std::string(op) + " does not apply to values of types " + std::string(kindName(a.kind())) +
         " and " + std::string(kindName(b.kind()));
}

bool setContains(const ValueSet& s, const Value& v) {
  return std::binary_search(s.begin(), s.end(), v, [](const Value& a, const Value& b) { return compareValues(a, b) < 0; });
}

// Cedar's `like`: `*` matches any sequence of Unicode scalars. Classic two-pointer glob match
// with backtracking to the last star, which is linear in practice and never recursive.
bool wildcardMatch(const std::string& text, const std::vector<PatternElem>& pattern) {
  // Split text into code points (UTF-8 sequences) so `*` and literals compare whole scalars.
  std::vector<std::string_view> cps;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    len = std::min(len, text.size() - i);
    cps.emplace_back(text.data() + i, len);
    i += len;
  }
  size_t t = 0, p = 0, starP = SIZE_MAX, starT = 0;
  while (t < cps.size()) {
    if (p < pattern.size() && !pattern[p].wildcard && pattern[p].literal == cps[t]) {
      ++t;
      ++p;
    } else if (p < pattern.size() && pattern[p].wildcard) {
      starP = p++;
      starT = t;
    } else if (starP != SIZE_MAX) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p].wildcard) ++p;
  return p == pattern.size();
}

class Evaluator {
 public:
  Evaluator(const Request& r, const EntityStore& es) : req_(r), es_(es) {}

  EvalResult eval(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Literal: return ok(e.literal);
      case ExprKind::Variable:
        switch (e.var) {
          case Var::Principal: return ok(Value::entity(req_.principal));
          case Var::Action: return ok(Value::entity(req_.action));
          case Var::Resource: return ok(Value::entity(req_.resource));
          case Var::Context: return ok(req_.context);
        }
        break;
      case ExprKind::Slot: return err("unlinked template slot");
      case ExprKind::If: {
        EvalResult c = evalBool(*e.kids[0], "if");
        if (!c.ok()) return c;
        return eval(c.value->asBool() ? *e.kids[1] : *e.kids[2]);
      }
      case ExprKind::And: {
        EvalResult l = evalBool(*e.kids[0], "&&");
        if (!l.ok() || !l.value->asBool()) return l;
        return evalBool(*e.kids[1], "&&");
      }
      case ExprKind::Or: {
        EvalResult l = evalBool(*e.kids[0], "||");
        if (!l.ok() || l.value->asBool()) return l;
        return evalBool(*e.kids[1], "||");
      }
      case ExprKind::Not: {
        EvalResult v = evalBool(*e.kids[0], "!");
        if (!v.ok()) return v;
        return ok(Value::boolean(!v.value->asBool()));
      }
      case ExprKind::Neg: {
        EvalResult v = eval(*e.kids[0]);
        if (!v.ok()) return v;
        if (!v.value->isLong()) return err(typeError("-", *v.value));
        if (v.value->asLong() == INT64_MIN) return err("integer overflow in negation");
        return ok(Value::integer(-v.value->asLong()));
      }
      case ExprKind::Like: {
        EvalResult v = eval(*e.kids[0]);
        if (!v.ok()) return v;
        if (!v.value->isString()) return err(typeError("like", *v.value));
        return ok(Value::boolean(wildcardMatch(v.value->asString(), e.pattern)));
      }
      case ExprKind::Is: {
        EvalResult v = eval(*e.kids[0]);
        if (!v.ok()) return v;
        if (!v.value->isEntity()) return err(typeError("is", *v.value));
        return ok(Value::boolean(v.value->asEntity().type == e.name));
      }
      case ExprKind::GetAttr:
      case ExprKind::HasAttr: return attr(e);
      case ExprKind::SetLit: {
        ValueSet elems;
        elems.reserve(e.kids.size());
        for (const ExprPtr& k : e.kids) {
          EvalResult v = eval(*k);
          if (!v.ok()) return v;
          elems.push_back(std::move(*v.value));
        }
        return ok(Value::set(std::move(elems)));
      }
      case ExprKind::RecordLit: {
        ValueRecord fields;
        fields.reserve(e.kids.size());
        for (size_t i = 0; i < e.kids.size(); ++i) {
          EvalResult v = eval(*e.kids[i]);
          if (!v.ok()) return v;
          fields.emplace_back(e.fieldNames[i], std::move(*v.value));
        }
        return ok(Value::record(std::move(fields)));
      }
      case ExprKind::Call:
      case ExprKind::Method: return call(e);
      default: return binary(e);
    }
    return err("unknown expression");
  }

 private:
  EvalResult evalBool(const Expr& e, std::string_view op) {
    EvalResult v = eval(e);
    if (v.ok() && !v.value->isBool()) return err(typeError(op, *v.value) + " (expected bool)");
    return v;
  }

  EvalResult attr(const Expr& e) {
    EvalResult v = eval(*e.kids[0]);
    if (!v.ok()) return v;
    bool has = e.kind == ExprKind::HasAttr;
    const Value* rec = nullptr;
    if (v.value->isRecord()) {
      rec = &*v.value;
    } else if (v.value->isEntity()) {
      const Entity* ent = es_.find(v.value->asEntity());
      if (!ent) {
        if (has) return ok(Value::boolean(false));
        return err("entity " + toString(v.value->asEntity()) + " does not exist");
      }
      rec = &ent->attrs;
    } else {
      return err(typeError(has ? "has" : "attribute access", *v.value));
    }
    const Value* f = rec->field(e.name);
    if (has) return ok(Value::boolean(f != nullptr));
    if (!f) return err("attribute `" + e.name + "` does not exist");
    return ok(*f);
  }

  EvalResult binary(const Expr& e) {
    EvalResult l = eval(*e.kids[0]);
    if (!l.ok()) return l;
    EvalResult r = eval(*e.kids[1]);
    if (!r.ok()) return r;
    const Value& a = *l.value;
    const Value& b = *r.value;
    switch (e.kind) {
      case ExprKind::Eq: return ok(Value::boolean(a == b));
      case ExprKind::Ne: return ok(Value::boolean(!(a == b)));
      case ExprKind::Lt: return compare(a, b, "<", [](int c) { return c < 0; });
      case ExprKind::Le: return compare(a, b, "<=", [](int c) { return c <= 0; });
      case ExprKind::Gt: return compare(a, b, ">", [](int c) { return c > 0; });
      case ExprKind::Ge: return compare(a, b, ">=", [](int c) { return c >= 0; });
      case ExprKind::Add:
      case ExprKind::Sub:
      case ExprKind::Mul: {
        if (!a.isLong() || !b.isLong()) return err(typeError2("arithmetic", a, b));
        int64_t out;
        bool overflow = e.kind == ExprKind::Add   ? __builtin_add_overflow(a.asLong(), b.asLong(), &out)
                        : e.kind == ExprKind::Sub ? __builtin_sub_overflow(a.asLong(), b.asLong(), &out)
                                                  : __builtin_mul_overflow(a.asLong(), b.asLong(), &out);
        if (overflow) return err("integer overflow");
        return ok(Value::integer(out));
      }
      case ExprKind::In: {
        if (!a.isEntity()) return err(typeError2("in", a, b));
        if (b.isEntity()) return ok(Value::boolean(es_.isDescendantOrSelf(a.asEntity(), b.asEntity())));
        if (!b.isSet()) return err(typeError2("in", a, b));
        for (const Value& x : b.asSet())
          if (!x.isEntity()) return err("type error: `in` set contains a " + std::string(kindName(x.kind())));
        for (const Value& x : b.asSet())
          if (es_.isDescendantOrSelf(a.asEntity(), x.asEntity())) return ok(Value::boolean(true));
        return ok(Value::boolean(false));
      }
      default: break;
    }
    return err("unknown binary operator");
  }

  template <class Pred>
  EvalResult compare(const Value& a, const Value& b, std::string_view op, Pred pred) {
    // Cedar orders longs, datetimes and durations; every other pairing is a type error.
    if (a.kind() != b.kind() ||
        (!a.isLong() && a.kind() != ValueKind::Datetime && a.kind() != ValueKind::Duration))
      return err(typeError2(op, a, b));
    return ok(Value::boolean(pred(compareValues(a, b))));
  }

  EvalResult call(const Expr& e) {
    std::vector<Value> args;
    args.reserve(e.kids.size());
    for (const ExprPtr& k : e.kids) {
      EvalResult v = eval(*k);
      if (!v.ok()) return v;
      args.push_back(std::move(*v.value));
    }
    if (e.kind == ExprKind::Method) {
      const std::string& m = e.name;
      if (m == "contains" || m == "containsAll" || m == "containsAny") {
        if (args.size() != 2) return err("`" + m + "` takes one argument");
        if (!args[0].isSet()) return err(typeError(m, args[0]));
        const ValueSet& s = args[0].asSet();
        if (m == "contains") return ok(Value::boolean(setContains(s, args[1])));
        if (!args[1].isSet()) return err(typeError(m, args[1]));
        const ValueSet& t = args[1].asSet();
        if (m == "containsAll")
          return ok(Value::boolean(std::all_of(t.begin(), t.end(), [&](const Value& x) { return setContains(s, x); })));
        return ok(Value::boolean(std::any_of(t.begin(), t.end(), [&](const Value& x) { return setContains(s, x); })));
      }
      if (m == "isEmpty") {
        if (args.size() != 1) return err("`isEmpty` takes no arguments");
        if (!args[0].isSet()) return err(typeError(m, args[0]));
        return ok(Value::boolean(args[0].asSet().empty()));
      }
      if (m == "hasTag" || m == "getTag") {
        if (args.size() != 2) return err("`" + m + "` takes one argument");
        if (!args[0].isEntity() || !args[1].isString()) return err(typeError2(m, args[0], args[1]));
        const Entity* ent = es_.find(args[0].asEntity());
        const Value* tag = ent ? ent->tags.field(args[1].asString()) : nullptr;
        if (m == "hasTag") return ok(Value::boolean(tag != nullptr));
        if (!tag) return err("tag `" + args[1].asString() + "` does not exist on " + toString(args[0].asEntity()));
        return ok(*tag);
      }
    }
    ExtResult r = callExtension(e.name, args);
    if (!r.value) return err(std::move(r.error));
    return ok(std::move(*r.value));
  }

  const Request& req_;
  const EntityStore& es_;
};

bool scopeMatches(const ScopeConstraint& c, const EntityUid& uid, const EntityStore& es) {
  switch (c.op) {
    case ScopeConstraint::Op::Any: return true;
    case ScopeConstraint::Op::Eq: return uid == c.target.uid;
    case ScopeConstraint::Op::In: return es.isDescendantOrSelf(uid, c.target.uid);
    case ScopeConstraint::Op::Is: return uid.type == c.entityType;
    case ScopeConstraint::Op::IsIn: return uid.type == c.entityType && es.isDescendantOrSelf(uid, c.target.uid);
  }
  return false;
}

bool actionMatches(const ActionConstraint& c, const EntityUid& uid, const EntityStore& es) {
  switch (c.op) {
    case ActionConstraint::Op::Any: return true;
    case ActionConstraint::Op::Eq: return uid == c.targets[0];
    case ActionConstraint::Op::In: return es.isDescendantOrSelf(uid, c.targets[0]);
    case ActionConstraint::Op::InSet:
      return std::any_of(c.targets.begin(), c.targets.end(), [&](const EntityUid& t) { return es.isDescendantOrSelf(uid, t); });
  }
  return false;
}

}  // namespace

EvalResult evaluate(const Expr& e, const Request& request, const EntityStore& entities) {
  return Evaluator(request, entities).eval(e);
}

EvalResult evaluatePolicy(const Policy& p, const Request& request, const EntityStore& entities) {
  // The scope never errors (its operands are entities), so it is checked first, as Cedar's
  // condition `principal-constraint && action-constraint && resource-constraint && ...` does.
  if (p.principal.target.isSlot || p.resource.target.isSlot) return err("unlinked template");
  if (!scopeMatches(p.principal, request.principal, entities) || !actionMatches(p.action, request.action, entities) ||
      !scopeMatches(p.resource, request.resource, entities))
    return ok(Value::boolean(false));
  Evaluator ev(request, entities);
  for (const Condition& c : p.conditions) {
    EvalResult v = ev.eval(*c.body);
    if (!v.ok()) return v;
    if (!v.value->isBool())
      return err("type error: " + std::string(c.isWhen ? "when" : "unless") + " condition is a " + std::string(kindName(v.value->kind())) +
                 ", expected bool");
    if (v.value->asBool() != c.isWhen) return ok(Value::boolean(false));
  }
  return ok(Value::boolean(true));
}

Response authorize(const std::vector<Policy>& policies, const Request& request, const EntityStore& entities) {
  Response r;
  std::vector<std::string> permits, forbids;
  for (const Policy& p : policies) {
    EvalResult v = evaluatePolicy(p, request, entities);
    if (!v.ok()) {
      r.errors.push_back({p.id, v.error});
      continue;
    }
    if (v.value->asBool()) (p.effect == Effect::Forbid ? forbids : permits).push_back(p.id);
  }
  if (!forbids.empty()) {
    r.decision = Decision::Deny;
    r.reasons = std::move(forbids);
  } else if (!permits.empty()) {
    r.decision = Decision::Allow;
    r.reasons = std::move(permits);
  } else {
    r.decision = Decision::Deny;
  }
  return r;
}

}  // namespace govmesh::cedar
