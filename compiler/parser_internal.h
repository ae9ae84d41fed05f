// Internal to the parser (parser.cpp, parser_expr.cpp): the recursive-descent Parser class.
//
// Cedar's own parser builds a concrete syntax tree with an LR grammar and then converts it,
// rejecting there what the grammar lets through (reserved identifiers, `/`, chained relations,
// names used as variables, ...). This parser does both in one pass; the contexts where Cedar
// accepts only a bare token (the right-hand side of `has`, `like` and `is`, record keys, `[...]`
// indexes, scope entities) are parsed at the token level so that exactly the same texts pass.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ast.h"
#include "compiler/errors.h"
#include "compiler/lexer.h"

namespace govmesh::cedar::detail {

/// An expression under construction with its height (a leaf is 1); heights above
/// kMaxNestingDepth are refused so that recursive walks of the AST stay bounded.
struct Node {
  ExprPtr expr;
  int depth = 1;
};

/// A primary with its member accesses applied, before it is known to be used as a value.
/// Cedar's "ExprOrSpecial": names, variables and literals are kept apart because a bare
/// number may absorb a leading '-' and a bare name is only valid as a function name.
struct Operand {
  enum class Kind : uint8_t { Expr, Var, Name, Str, Bool, Num } kind = Kind::Expr;
  Node node;           // Expr
  Var var = Var::Principal;
  std::string name;    // Name: "A::B"
  bool qualified = false;
  std::string_view raw;  // Str: undecoded body
  bool boolValue = false;
  uint64_t num = 0;
  SourceLoc loc;
};

/// The parser over one text. Every method throws InputError on bad input.
class Parser {
 public:
  Parser(std::string_view text, std::string_view fileName);

  /// A whole policy file.
  PolicySet parsePolicySet();
  /// One expression filling the text (slots allowed).
  ExprPtr parseWholeExpression();
  /// One entity reference filling the text.
  EntityUid parseWholeEntityUid();

 private:
  friend struct RecursionGuard;

  // Tokens.
  const Token& peek(size_t k = 0);
  Token take();
  bool at(Tok k, size_t k2 = 0) { return peek(k2).kind == k; }
  bool atWord(std::string_view w, size_t k = 0) {
    const Token& t = peek(k);
    return t.kind == Tok::Ident && t.text == w;
  }
  Token expect(Tok k, std::string_view what);
  void expectWord(std::string_view w);
  [[noreturn]] void fail(SourceLoc loc, const std::string& message) const;
  [[noreturn]] void unexpected(std::string_view expected);

  // Names and literals.
  /// Checks that `w` may be an identifier: not a reserved word, not `__cedar`.
  void checkIdent(const Token& t) const;
  std::string decodeString(const Token& t) const;
  EntityUid finishEntityRef(std::vector<Token> path, const Token& id);
  EntityUid parseEntityRef();
  std::string parseTypeName();
  /// Cedar parses the right-hand sides of `has`, `like` and `is` as additive expressions and
  /// then insists on a bare token; refuses a member access, `::` or arithmetic after one.
  void rejectTrailingOperand(std::string_view context);

  // Expressions (parser_expr.cpp).
  std::shared_ptr<Expr> newExpr(ExprKind kind, SourceLoc loc);
  /// Gives `e` its children and checks the resulting height against kMaxNestingDepth.
  Node attach(std::shared_ptr<Expr> e, std::vector<Node> kids);
  Node mk(ExprKind kind, SourceLoc loc, std::vector<Node> kids);
  Node mkNamed(ExprKind kind, SourceLoc loc, std::string name, std::vector<Node> kids);
  Node literal(Value v, SourceLoc loc);
  Node toExpr(Operand&& op);
  Node parseExpr();
  Node parseOr();
  Node parseAnd();
  Node parseRelation();
  Node parseAdd();
  Node parseMult();
  Node parseUnary();
  Operand parsePrimary();
  Operand parseMember(Operand op);
  Node applyAccessor(Node head, SourceLoc loc);
  std::vector<Node> parseArgs();
  Node makeMethod(Node receiver, const Token& name, std::vector<Node> args);
  Node makeFunction(const Operand& name, std::vector<Node> args);
  std::vector<std::string> parseHasRhs();
  Node parseRecord(SourceLoc loc);

  // Policies (parser.cpp).
  Policy parsePolicy(size_t index);
  ScopeConstraint parseScopeVar(std::string_view var, SlotId slot);
  ActionConstraint parseActionVar();
  EntityOrSlot parseScopeTarget(SlotId slot);
  std::vector<EntityUid> parseActionTargets(bool allowList, bool& isList);

  Lexer lexer_;
  std::deque<Token> lookahead_;
  std::string file_;
  int recursion_ = 0;
  bool allowSlots_ = false;
};

/// Counts recursive descents (nested parentheses, brackets, braces, `if`s) and refuses more
/// than kMaxNestingDepth before the stack is at risk.
struct RecursionGuard {
  RecursionGuard(Parser& p, SourceLoc loc);
  ~RecursionGuard() { --parser.recursion_; }
  Parser& parser;
};

/// True for the words Cedar reserves (`true false if then else in is like has`).
bool isReservedWord(std::string_view w);
/// True for `principal action resource context`; sets `v`.
bool varFromWord(std::string_view w, Var& v);

}  // namespace govmesh::cedar::detail
