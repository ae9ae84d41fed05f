// The Cedar parser: policies, scopes, annotations and the public entry points (parser.h).
// Expressions live in parser_expr.cpp; the design is explained in parser_internal.h.
#include "compiler/parser.h"

#include <unordered_set>

#include "compiler/parser_internal.h"

namespace govmesh::cedar {

namespace detail {

bool isReservedWord(std::string_view w) {
  return w == "true" || w == "false" || w == "if" || w == "then" || w == "else" || w == "in" || w == "is" ||
         w == "like" || w == "has";
}

bool varFromWord(std::string_view w, Var& v) {
  if (w == "principal") v = Var::Principal;
  else if (w == "action") v = Var::Action;
  else if (w == "resource") v = Var::Resource;
  else if (w == "context") v = Var::Context;
  else return false;
  return true;
}

RecursionGuard::RecursionGuard(Parser& p, SourceLoc loc) : parser(p) {
  if (++parser.recursion_ > kMaxNestingDepth) {
    --parser.recursion_;
    parser.fail(loc, "expression is nested too deeply (more than " + std::to_string(kMaxNestingDepth) + " levels)");
  }
}

Parser::Parser(std::string_view text, std::string_view fileName) : lexer_(text, fileName), file_(fileName) {
  if (text.size() > kMaxInputBytes)
    fail({}, "input of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                 std::to_string(kMaxInputBytes) + " bytes");
}

const Token& Parser::peek(size_t k) {
  while (lookahead_.size() <= k) lookahead_.push_back(lexer_.next());
  return lookahead_[k];
}

Token Parser::take() {
  peek();
  Token t = lookahead_.front();
  lookahead_.pop_front();
  return t;
}

Token Parser::expect(Tok k, std::string_view what) {
  if (!at(k)) unexpected(what);
  return take();
}

void Parser::expectWord(std::string_view w) {
  if (!atWord(w)) unexpected("`" + std::string(w) + "`");
  take();
}

void Parser::fail(SourceLoc loc, const std::string& message) const { throw InputError(file_, loc, message); }

void Parser::unexpected(std::string_view expected) {
  const Token& t = peek();
  fail(t.loc, "expected " + std::string(expected) + ", found " + describeToken(t));
}

void Parser::checkIdent(const Token& t) const {
  if (isReservedWord(t.text))
    fail(t.loc, "`" + std::string(t.text) + "` is a reserved word and cannot be used as an identifier");
  if (t.text == "__cedar") fail(t.loc, "`__cedar` is reserved and cannot be used as an identifier");
}

std::string Parser::decodeString(const Token& t) const {
  auto s = unescapeCedarString(t.text);
  if (!s) fail(t.loc, "invalid escape sequence in string literal");
  return std::move(*s);
}

EntityUid Parser::finishEntityRef(std::vector<Token> path, const Token& id) {
  EntityUid uid;
  for (const Token& p : path) {
    checkIdent(p);
    if (!uid.type.empty()) uid.type += "::";
    uid.type += p.text;
  }
  uid.id = decodeString(id);
  return uid;
}

// Ref := IDENT {'::' IDENT} '::' STR
EntityUid Parser::parseEntityRef() {
  std::vector<Token> path{expect(Tok::Ident, "an entity reference such as `Type::\"id\"`")};
  while (at(Tok::ColonColon)) {
    if (at(Tok::String, 1)) {
      take();
      return finishEntityRef(std::move(path), take());
    }
    if (at(Tok::LBrace, 1)) fail(peek(1).loc, "entity literals of the form `Type::{...}` are not supported");
    take();
    path.push_back(expect(Tok::Ident, "an identifier or a string after `::`"));
  }
  unexpected("`::` and a quoted entity id");
}

// The entity type after `is`: a bare name `A::B` (a lone variable word names a type too).
std::string Parser::parseTypeName() {
  std::vector<Token> path{expect(Tok::Ident, "an entity type name after `is`")};
  while (at(Tok::ColonColon)) {
    if (at(Tok::String, 1)) fail(peek(1).loc, "expected an entity type after `is`, found an entity reference");
    take();
    path.push_back(expect(Tok::Ident, "an identifier after `::`"));
  }
  std::string type;
  for (const Token& p : path) {
    checkIdent(p);
    if (!type.empty()) type += "::";
    type += p.text;
  }
  rejectTrailingOperand("an entity type after `is`");
  return type;
}

void Parser::rejectTrailingOperand(std::string_view context) {
  switch (peek().kind) {
    case Tok::Dot: case Tok::LBracket: case Tok::LParen: case Tok::ColonColon:
    case Tok::Star: case Tok::Slash: case Tok::Percent: case Tok::Plus: case Tok::Minus:
      fail(peek().loc, std::string(context) + " must be a single name or literal, found " + describeToken(peek()));
    default:
      break;
  }
}

// A scope entity for principal or resource: `Type::"id"` or the matching slot, possibly
// parenthesized.
EntityOrSlot Parser::parseScopeTarget(SlotId slot) {
  const Token& t = peek();
  RecursionGuard guard(*this, t.loc);
  EntityOrSlot target;
  if (t.kind == Tok::LParen) {
    take();
    target = parseScopeTarget(slot);
    expect(Tok::RParen, "`)`");
  } else if (t.kind == Tok::Slot) {
    const Token s = take();
    const std::string_view want = slot == SlotId::Principal ? "principal" : "resource";
    if (s.text != want) fail(s.loc, "expected `?" + std::string(want) + "` here, found `?" + std::string(s.text) + "`");
    target.isSlot = true;
    target.slot = slot;
  } else if (t.kind == Tok::Ident) {
    target.uid = parseEntityRef();
  } else if (t.kind == Tok::LBracket) {
    fail(t.loc, "a set of entities is only allowed after `action in`");
  } else {
    unexpected("an entity or a template slot");
  }
  return target;
}

// The entities after `action ==` / `action in`: one `Type::"id"`, or (when `allowList`) a
// set `[...]` of them; parentheses allowed around either, slots and nested sets not.
std::vector<EntityUid> Parser::parseActionTargets(bool allowList, bool& isList) {
  const Token& t = peek();
  RecursionGuard guard(*this, t.loc);
  std::vector<EntityUid> out;
  if (t.kind == Tok::LParen) {
    take();
    out = parseActionTargets(allowList, isList);
    expect(Tok::RParen, "`)`");
  } else if (t.kind == Tok::LBracket) {
    if (!allowList) fail(t.loc, "a set of entities is only allowed after `action in`");
    take();
    isList = true;
    while (!at(Tok::RBracket)) {
      bool nested = false;
      out.push_back(std::move(parseActionTargets(false, nested).front()));
      if (!at(Tok::Comma)) break;
      take();
    }
    expect(Tok::RBracket, "`,` or `]`");
  } else if (t.kind == Tok::Slot) {
    fail(t.loc, "template slots are not allowed in the action scope");
  } else if (t.kind == Tok::Ident) {
    out.push_back(parseEntityRef());
  } else {
    unexpected("an action entity");
  }
  return out;
}

ScopeConstraint Parser::parseScopeVar(std::string_view var, SlotId slot) {
  expectWord(var);
  if (at(Tok::Colon)) fail(peek().loc, "type constraints with `:` are not supported; use `is`");
  ScopeConstraint c;
  if (atWord("is")) {
    take();
    c.op = ScopeConstraint::Op::Is;
    c.entityType = parseTypeName();
  }
  const Token& op = peek();
  if (op.kind == Tok::EqEq) {
    if (c.op == ScopeConstraint::Op::Is) fail(op.loc, "`is` cannot be combined with `==` in the scope");
    take();
    c.op = ScopeConstraint::Op::Eq;
    c.target = parseScopeTarget(slot);
  } else if (atWord("in")) {
    take();
    c.op = c.op == ScopeConstraint::Op::Is ? ScopeConstraint::Op::IsIn : ScopeConstraint::Op::In;
    c.target = parseScopeTarget(slot);
  } else if (op.kind == Tok::NotEq || op.kind == Tok::Lt || op.kind == Tok::Le || op.kind == Tok::Gt ||
             op.kind == Tok::Ge || op.kind == Tok::Eq) {
    fail(op.loc, "the policy scope only supports `==`, `in` and `is`");
  }
  return c;
}

ActionConstraint Parser::parseActionVar() {
  expectWord("action");
  if (at(Tok::Colon)) fail(peek().loc, "type constraints with `:` are not supported");
  if (atWord("is")) fail(peek().loc, "`is` is not allowed for `action` in the scope");
  ActionConstraint c;
  const Token op = peek();
  if (op.kind == Tok::EqEq || atWord("in")) {
    take();
    bool isList = false;
    c.targets = parseActionTargets(op.kind != Tok::EqEq, isList);
    c.op = isList ? ActionConstraint::Op::InSet
                  : op.kind == Tok::EqEq ? ActionConstraint::Op::Eq : ActionConstraint::Op::In;
    // Cedar requires action entities to have type `Action` (in any namespace).
    for (const EntityUid& u : c.targets) {
      const size_t sep = u.type.rfind("::");
      if ((sep == std::string::npos ? u.type : u.type.substr(sep + 2)) != "Action")
        fail(op.loc, "`" + toString(u) + "` is not an action: action entities must have type `Action`");
    }
  } else if (op.kind == Tok::NotEq || op.kind == Tok::Lt || op.kind == Tok::Le || op.kind == Tok::Gt ||
             op.kind == Tok::Ge || op.kind == Tok::Eq) {
    fail(op.loc, "the action scope only supports `==` and `in`");
  }
  return c;
}

// Policy := {Annotation} ('permit' | 'forbid') '(' Scope ')' {Condition} ';'
Policy Parser::parsePolicy(size_t index) {
  Policy p;
  p.id = "policy" + std::to_string(index);
  p.loc = peek().loc;
  std::unordered_set<std::string> keys;
  while (at(Tok::At)) {
    take();
    const Token key = expect(Tok::Ident, "an annotation name after `@`");
    Annotation a;
    a.key = std::string(key.text);
    if (at(Tok::LParen)) {
      take();
      a.value = decodeString(expect(Tok::String, "a string literal annotation value"));
      expect(Tok::RParen, "`)`");
    }
    if (!keys.insert(a.key).second) fail(key.loc, "duplicate annotation `@" + a.key + "`");
    p.annotations.push_back(std::move(a));
  }
  if (atWord("permit")) p.effect = Effect::Permit;
  else if (atWord("forbid")) p.effect = Effect::Forbid;
  else unexpected("`permit` or `forbid`");
  take();
  expect(Tok::LParen, "`(`");
  // The scope is a comma-separated list (a trailing comma is allowed) of exactly principal,
  // action and resource, in that order.
  int count = 0;
  while (!at(Tok::RParen)) {
    switch (count++) {
      case 0: p.principal = parseScopeVar("principal", SlotId::Principal); break;
      case 1: p.action = parseActionVar(); break;
      case 2: p.resource = parseScopeVar("resource", SlotId::Resource); break;
      default: fail(peek().loc, "the scope has only principal, action and resource");
    }
    if (!at(Tok::Comma)) break;
    take();
  }
  if (count < 3) {
    static constexpr const char* kNames[] = {"`principal`", "`action`", "`resource`"};
    if (at(Tok::RParen)) fail(peek().loc, std::string("the scope is missing ") + kNames[count]);
  }
  expect(Tok::RParen, "`,` or `)`");
  while (at(Tok::Ident)) {
    const Token w = take();
    if (w.text != "when" && w.text != "unless")
      fail(w.loc, "expected `when`, `unless` or `;`, found " + describeToken(w));
    expect(Tok::LBrace, "`{`");
    if (at(Tok::RBrace)) fail(peek().loc, "empty `" + std::string(w.text) + "` condition");
    Condition cond;
    cond.isWhen = w.text == "when";
    cond.body = parseExpr().expr;
    expect(Tok::RBrace, "`}`");
    p.conditions.push_back(std::move(cond));
  }
  expect(Tok::Semi, "`when`, `unless` or `;`");
  return p;
}

PolicySet Parser::parsePolicySet() {
  PolicySet set;
  allowSlots_ = false;
  for (size_t i = 0; !at(Tok::End); ++i) {
    Policy p = parsePolicy(i);
    (p.isTemplate() ? set.templates : set.policies).push_back(std::move(p));
  }
  return set;
}

ExprPtr Parser::parseWholeExpression() {
  allowSlots_ = true;
  ExprPtr e = parseExpr().expr;
  expect(Tok::End, "end of expression");
  return e;
}

EntityUid Parser::parseWholeEntityUid() {
  EntityUid u = parseEntityRef();
  expect(Tok::End, "end of entity reference");
  return u;
}

}  // namespace detail

PolicySet parsePolicies(std::string_view text, std::string_view fileName) {
  return detail::Parser(text, fileName).parsePolicySet();
}

ExprPtr parseExpression(std::string_view text, std::string_view fileName) {
  return detail::Parser(text, fileName).parseWholeExpression();
}

EntityUid parseEntityUid(std::string_view text, std::string_view what) {
  return detail::Parser(text, what).parseWholeEntityUid();
}

}  // namespace govmesh::cedar
