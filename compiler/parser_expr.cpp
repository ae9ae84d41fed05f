// Cedar expressions: precedence climbing from `if` down to primaries, with Cedar's
// desugarings (`has a.b`, `is T in x`) and its conversion-time checks (see parser_internal.h).
#include <algorithm>
#include <limits>
#include <unordered_set>

#include "compiler/extensions.h"
#include "compiler/parser_internal.h"

namespace govmesh::cedar::detail {

namespace {

bool isBuiltinMethod(std::string_view n) {
  return n == "contains" || n == "containsAll" || n == "containsAny" || n == "isEmpty" || n == "getTag" ||
         n == "hasTag";
}

}  // namespace

std::shared_ptr<Expr> Parser::newExpr(ExprKind kind, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->kind = kind;
  e->loc = loc;
  return e;
}

Node Parser::attach(std::shared_ptr<Expr> e, std::vector<Node> kids) {
  int depth = 0;
  e->kids.reserve(kids.size());
  for (Node& k : kids) {
    depth = std::max(depth, k.depth);
    e->kids.push_back(std::move(k.expr));
  }
  if (depth + 1 > kMaxNestingDepth)
    fail(e->loc, "expression is nested too deeply (more than " + std::to_string(kMaxNestingDepth) + " levels)");
  return Node{std::move(e), depth + 1};
}

Node Parser::mk(ExprKind kind, SourceLoc loc, std::vector<Node> kids) {
  return attach(newExpr(kind, loc), std::move(kids));
}

Node Parser::mkNamed(ExprKind kind, SourceLoc loc, std::string name, std::vector<Node> kids) {
  auto e = newExpr(kind, loc);
  e->name = std::move(name);
  return attach(std::move(e), std::move(kids));
}

Node Parser::literal(Value v, SourceLoc loc) {
  auto e = newExpr(ExprKind::Literal, loc);
  e->literal = std::move(v);
  return Node{std::move(e), 1};
}

Node Parser::toExpr(Operand&& op) {
  switch (op.kind) {
    case Operand::Kind::Expr:
      return std::move(op.node);
    case Operand::Kind::Var: {
      auto e = newExpr(ExprKind::Variable, op.loc);
      e->var = op.var;
      return Node{std::move(e), 1};
    }
    case Operand::Kind::Name:
      fail(op.loc, "invalid variable `" + op.name +
                       "`: the variables are principal, action, resource and context (a string needs quotes)");
    case Operand::Kind::Str: {
      Token t;
      t.kind = Tok::String;
      t.text = op.raw;
      t.loc = op.loc;
      return literal(Value::string(decodeString(t)), op.loc);
    }
    case Operand::Kind::Bool:
      return literal(Value::boolean(op.boolValue), op.loc);
    case Operand::Kind::Num:
      if (op.num > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(op.loc, "integer literal `" + std::to_string(op.num) + "` is too large");
      return literal(Value::integer(static_cast<int64_t>(op.num)), op.loc);
  }
  fail(op.loc, "internal error: unknown operand");
}

// Expr := 'if' Expr 'then' Expr 'else' Expr | Or
Node Parser::parseExpr() {
  const SourceLoc loc = peek().loc;
  RecursionGuard guard(*this, loc);
  if (!atWord("if")) return parseOr();
  take();
  Node cond = parseExpr();
  expectWord("then");
  Node thenBranch = parseExpr();
  expectWord("else");
  Node elseBranch = parseExpr();
  return mk(ExprKind::If, loc, {std::move(cond), std::move(thenBranch), std::move(elseBranch)});
}

// Or := And {'||' And}   (left-associative, like every binary chain below)
Node Parser::parseOr() {
  const SourceLoc loc = peek().loc;
  Node lhs = parseAnd();
  while (at(Tok::OrOr)) {
    take();
    Node rhs = parseAnd();
    lhs = mk(ExprKind::Or, loc, {std::move(lhs), std::move(rhs)});
  }
  return lhs;
}

// And := Relation {'&&' Relation}
Node Parser::parseAnd() {
  const SourceLoc loc = peek().loc;
  Node lhs = parseRelation();
  while (at(Tok::AndAnd)) {
    take();
    Node rhs = parseRelation();
    lhs = mk(ExprKind::And, loc, {std::move(lhs), std::move(rhs)});
  }
  return lhs;
}

// Relation := Add [RelOp Add] | Add 'has' HasRhs | Add 'like' STR | Add 'is' Name ['in' Add]
// At most one relational operator: Cedar rejects `a < b < c` and `a == b == c`.
Node Parser::parseRelation() {
  const SourceLoc loc = peek().loc;
  Node lhs = parseAdd();
  const Token& op = peek();
  ExprKind kind;
  switch (op.kind) {
    case Tok::EqEq: kind = ExprKind::Eq; break;
    case Tok::NotEq: kind = ExprKind::Ne; break;
    case Tok::Lt: kind = ExprKind::Lt; break;
    case Tok::Le: kind = ExprKind::Le; break;
    case Tok::Gt: kind = ExprKind::Gt; break;
    case Tok::Ge: kind = ExprKind::Ge; break;
    case Tok::Eq: fail(op.loc, "`=` is not an operator; use `==` for equality");
    case Tok::Ident:
      if (op.text == "in") {
        kind = ExprKind::In;
        break;
      }
      if (op.text == "has") {
        take();
        std::vector<std::string> path = parseHasRhs();
        // `e has a.b.c` -> `e has a && e.a has b && e.a.b has c` (left fold, as Cedar).
        Node target = lhs;
        Node result;
        for (size_t i = 0; i < path.size(); ++i) {
          Node has = mkNamed(ExprKind::HasAttr, loc, path[i], {target});
          result = i == 0 ? has : mk(ExprKind::And, loc, {std::move(result), std::move(has)});
          if (i + 1 < path.size()) target = mkNamed(ExprKind::GetAttr, loc, path[i], {std::move(target)});
        }
        return result;
      }
      if (op.text == "like") {
        take();
        const Token pat = expect(Tok::String, "a string literal pattern after `like`");
        rejectTrailingOperand("a `like` pattern");
        auto elems = unescapeCedarPattern(pat.text);
        if (!elems) fail(pat.loc, "invalid escape sequence in pattern");
        auto like = newExpr(ExprKind::Like, loc);
        like->pattern = std::move(*elems);
        return attach(std::move(like), {std::move(lhs)});
      }
      if (op.text == "is") {
        take();
        Node is = mkNamed(ExprKind::Is, loc, parseTypeName(), {lhs});
        if (!atWord("in")) return is;
        take();
        Node in = mk(ExprKind::In, loc, {std::move(lhs), parseAdd()});
        return mk(ExprKind::And, loc, {std::move(is), std::move(in)});
      }
      return lhs;
    default:
      return lhs;
  }
  take();
  Node rhs = parseAdd();
  const Token& after = peek();
  if (after.kind == Tok::EqEq || after.kind == Tok::NotEq || after.kind == Tok::Lt || after.kind == Tok::Le ||
      after.kind == Tok::Gt || after.kind == Tok::Ge || after.kind == Tok::Eq || atWord("in") || atWord("has") ||
      atWord("like") || atWord("is"))
    fail(after.loc, "ambiguous chain of relational operators; add parentheses");
  return mk(kind, loc, {std::move(lhs), std::move(rhs)});
}

// Add := Mult {('+' | '-') Mult}
Node Parser::parseAdd() {
  const SourceLoc loc = peek().loc;
  Node lhs = parseMult();
  while (at(Tok::Plus) || at(Tok::Minus)) {
    const ExprKind kind = take().kind == Tok::Plus ? ExprKind::Add : ExprKind::Sub;
    Node rhs = parseMult();
    lhs = mk(kind, loc, {std::move(lhs), std::move(rhs)});
  }
  return lhs;
}

// Mult := Unary {'*' Unary}   (`/` and `%` are tokens Cedar reserves but does not support)
Node Parser::parseMult() {
  const SourceLoc loc = peek().loc;
  Node lhs = parseUnary();
  while (at(Tok::Star) || at(Tok::Slash) || at(Tok::Percent)) {
    const Token op = take();
    if (op.kind != Tok::Star)
      fail(op.loc, std::string("Cedar does not support `") + (op.kind == Tok::Slash ? "/" : "%") + "`");
    Node rhs = parseUnary();
    lhs = mk(ExprKind::Mul, loc, {std::move(lhs), std::move(rhs)});
  }
  return lhs;
}

// Unary := ['!'{1,4} | '-'{1,4}] Member. A '-' directly before a bare number literal is folded
// into it (so -9223372036854775808 is a literal); `- -1` and `--1` are `-(-1)`, `-(1)` negates.
Node Parser::parseUnary() {
  const SourceLoc loc = peek().loc;
  if (!at(Tok::Bang) && !at(Tok::Minus)) return toExpr(parseMember(parsePrimary()));
  const Tok opKind = peek().kind;
  int count = 0;
  while (at(opKind)) {
    take();
    ++count;
  }
  if (count > 4)
    fail(loc, std::string("too many `") + (opKind == Tok::Bang ? "!" : "-") + "` in a row (Cedar allows at most 4)");
  Operand operand = parseMember(parsePrimary());
  Node node;
  if (opKind == Tok::Minus && operand.kind == Operand::Kind::Num) {
    constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;
    if (operand.num > kMinMagnitude)
      fail(operand.loc, "integer literal `-" + std::to_string(operand.num) + "` is too small");
    const int64_t value = operand.num == kMinMagnitude ? std::numeric_limits<int64_t>::min()
                                                       : -static_cast<int64_t>(operand.num);
    node = literal(Value::integer(value), operand.loc);
    --count;
  } else {
    node = toExpr(std::move(operand));
  }
  for (int i = 0; i < count; ++i)
    node = mk(opKind == Tok::Bang ? ExprKind::Not : ExprKind::Neg, loc, {std::move(node)});
  return node;
}

Operand Parser::parsePrimary() {
  const Token& t = peek();
  Operand op;
  op.loc = t.loc;
  switch (t.kind) {
    case Tok::Number:
      op.kind = Operand::Kind::Num;
      op.num = take().number;
      return op;
    case Tok::String:
      op.kind = Operand::Kind::Str;
      op.raw = take().text;
      return op;
    case Tok::Slot: {
      const Token s = take();
      if (s.text != "principal" && s.text != "resource") fail(s.loc, "invalid slot `?" + std::string(s.text) + "`");
      if (!allowSlots_)
        fail(s.loc, "template slots are not allowed in policy conditions (found `?" + std::string(s.text) + "`)");
      auto e = newExpr(ExprKind::Slot, s.loc);
      e->slot = s.text == "principal" ? SlotId::Principal : SlotId::Resource;
      op.node = Node{std::move(e), 1};
      return op;
    }
    case Tok::LParen: {
      take();
      op.node = parseExpr();
      expect(Tok::RParen, "`)`");
      return op;
    }
    case Tok::LBracket: {
      take();
      std::vector<Node> elems;
      while (!at(Tok::RBracket)) {
        elems.push_back(parseExpr());
        if (!at(Tok::Comma)) break;
        take();
      }
      expect(Tok::RBracket, "`,` or `]`");
      op.node = mk(ExprKind::SetLit, op.loc, std::move(elems));
      return op;
    }
    case Tok::LBrace:
      take();
      op.node = parseRecord(op.loc);
      return op;
    case Tok::Ident:
      break;
    default:
      unexpected("an expression");
  }
  if (t.text == "true" || t.text == "false") {
    op.kind = Operand::Kind::Bool;
    op.boolValue = take().text == "true";
    return op;
  }
  if (t.text == "if") unexpected("an expression (an `if` here needs parentheses)");
  // A name `A::B`, or an entity reference `A::B::"id"`.
  std::vector<Token> path{take()};
  while (at(Tok::ColonColon)) {
    if (at(Tok::String, 1)) {
      take();
      op.node = literal(Value::entity(finishEntityRef(std::move(path), take())), op.loc);
      return op;
    }
    if (at(Tok::LBrace, 1)) fail(peek(1).loc, "entity literals of the form `Type::{...}` are not supported");
    take();
    if (!at(Tok::Ident)) unexpected("an identifier or a string after `::`");
    path.push_back(take());
  }
  if (path.size() == 1 && varFromWord(path[0].text, op.var)) {
    op.kind = Operand::Kind::Var;
    return op;
  }
  op.kind = Operand::Kind::Name;
  op.qualified = path.size() > 1;
  for (const Token& p : path) {
    checkIdent(p);
    if (!op.name.empty()) op.name += "::";
    op.name += p.text;
  }
  return op;
}

// Member := Primary {'.' IDENT ['(' Args ')'] | '[' STR ']' | '(' Args ')'}
// What may follow depends on the primary: a name only a call (an extension function), a
// variable or value any access; a call on anything but a name is an error.
Operand Parser::parseMember(Operand op) {
  if (!at(Tok::Dot) && !at(Tok::LBracket) && !at(Tok::LParen)) return op;
  const SourceLoc loc = op.loc;
  Node head;
  if (op.kind == Operand::Kind::Name) {
    if (!at(Tok::LParen))
      fail(peek().loc, "`" + op.name + "` has no attributes or methods; it is not a variable");
    std::vector<Node> args = parseArgs();
    head = makeFunction(op, std::move(args));
  } else {
    if (op.kind == Operand::Kind::Var && at(Tok::LParen)) fail(peek().loc, "variables cannot be called as functions");
    head = toExpr(std::move(op));
  }
  while (at(Tok::Dot) || at(Tok::LBracket) || at(Tok::LParen)) head = applyAccessor(std::move(head), loc);
  Operand result;
  result.kind = Operand::Kind::Expr;
  result.node = std::move(head);
  result.loc = loc;
  return result;
}

Node Parser::applyAccessor(Node head, SourceLoc loc) {
  const Token t = take();
  if (t.kind == Tok::LParen) fail(t.loc, "only extension functions and methods can be called");
  if (t.kind == Tok::LBracket) {
    const Token key = expect(Tok::String, "a string literal attribute name inside `[...]`");
    expect(Tok::RBracket, "`]`");
    return mkNamed(ExprKind::GetAttr, loc, decodeString(key), {std::move(head)});
  }
  const Token name = expect(Tok::Ident, "an attribute or method name after `.`");
  checkIdent(name);
  if (at(Tok::LParen)) return makeMethod(std::move(head), name, parseArgs());
  return mkNamed(ExprKind::GetAttr, loc, std::string(name.text), {std::move(head)});
}

std::vector<Node> Parser::parseArgs() {
  expect(Tok::LParen, "`(`");
  std::vector<Node> args;
  while (!at(Tok::RParen)) {
    args.push_back(parseExpr());
    if (!at(Tok::Comma)) break;
    take();
  }
  expect(Tok::RParen, "`,` or `)`");
  return args;
}

// Builtin methods have their arity checked here, as Cedar does; extension methods are checked
// when called (an evaluation error in Cedar).
Node Parser::makeMethod(Node receiver, const Token& name, std::vector<Node> args) {
  const std::string n(name.text);
  if (isBuiltinMethod(n)) {
    const size_t want = n == "isEmpty" ? 0 : 1;
    if (args.size() != want)
      fail(name.loc, "method `" + n + "` takes " + std::to_string(want) + " argument(s), found " +
                         std::to_string(args.size()));
  } else if (!isExtensionMethod(n)) {
    if (isExtensionFunction(n)) fail(name.loc, "`" + n + "` is a function, not a method; call it as `" + n + "(...)`");
    fail(name.loc, "unknown method `" + n + "`");
  }
  const SourceLoc loc = receiver.expr->loc;
  args.insert(args.begin(), std::move(receiver));
  return mkNamed(ExprKind::Method, loc, n, std::move(args));
}

Node Parser::makeFunction(const Operand& name, std::vector<Node> args) {
  if (!name.qualified && (isBuiltinMethod(name.name) || isExtensionMethod(name.name)))
    fail(name.loc, "`" + name.name + "` is a method, not a function; call it as `x." + name.name + "(...)`");
  if (name.qualified || !isExtensionFunction(name.name)) fail(name.loc, "unknown function `" + name.name + "`");
  return mkNamed(ExprKind::Call, name.loc, name.name, std::move(args));
}

// The right-hand side of `has`: a string literal, or an identifier path `a.b.c` (each part an
// unreserved identifier; the first may be a variable word). Nothing else may follow it at the
// additive/multiplicative level, since Cedar parses the right-hand side as an `Add`.
std::vector<std::string> Parser::parseHasRhs() {
  std::vector<std::string> path;
  if (at(Tok::String)) {
    path.push_back(decodeString(take()));
  } else if (at(Tok::Ident)) {
    const Token first = take();
    Var v;
    if (!varFromWord(first.text, v)) checkIdent(first);
    path.emplace_back(first.text);
    while (at(Tok::Dot)) {
      take();
      const Token part = expect(Tok::Ident, "an attribute name after `.`");
      checkIdent(part);
      path.emplace_back(part.text);
    }
  } else {
    unexpected("an attribute name or a string literal after `has`");
  }
  rejectTrailingOperand("the right-hand side of `has`");
  return path;
}

// Record := '{' [Key ':' Expr {',' Key ':' Expr} [',']] '}', keys identifiers or strings.
Node Parser::parseRecord(SourceLoc loc) {
  std::vector<Node> values;
  std::vector<std::string> keys;
  std::unordered_set<std::string> seen;
  while (!at(Tok::RBrace)) {
    const Token key = peek();
    std::string name;
    if (key.kind == Tok::String) {
      name = decodeString(take());
    } else if (key.kind == Tok::Ident) {
      take();
      Var v;
      if (!varFromWord(key.text, v)) checkIdent(key);
      name = std::string(key.text);
    } else {
      unexpected("a record key (an identifier or a string literal)");
    }
    expect(Tok::Colon, "`:` after a record key");
    if (!seen.insert(name).second) fail(key.loc, "duplicate key `" + name + "` in record literal");
    keys.push_back(std::move(name));
    values.push_back(parseExpr());
    if (!at(Tok::Comma)) break;
    take();
  }
  expect(Tok::RBrace, "`,` or `}`");
  auto rec = newExpr(ExprKind::RecordLit, loc);
  rec->fieldNames = std::move(keys);
  return attach(std::move(rec), std::move(values));
}

}  // namespace govmesh::cedar::detail
