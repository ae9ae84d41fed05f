// Tests for the Cedar parser (compiler/parser.h, lexer.h) and template linking (ast.h).
// Expected shapes follow Cedar 4.x (cedar-policy-core's parser and its unit tests).
#include <doctest/doctest.h>

#include <string>

#include "compiler/errors.h"
#include "compiler/lexer.h"
#include "compiler/parser.h"

using namespace govmesh::cedar;

namespace {

// Renders an expression as an s-expression so that tests can state the exact tree.
std::string show(const ExprPtr& e) {
  auto kids = [&](size_t from = 0) {
    std::string s;
    for (size_t i = from; i < e->kids.size(); ++i) s += " " + show(e->kids[i]);
    return s;
  };
  switch (e->kind) {
    case ExprKind::Literal:
      switch (e->literal.kind()) {
        case ValueKind::Bool: return e->literal.asBool() ? "true" : "false";
        case ValueKind::Long: return std::to_string(e->literal.asLong());
        case ValueKind::String: return "\"" + e->literal.asString() + "\"";
        case ValueKind::Entity: return e->literal.asEntity().type + "::\"" + e->literal.asEntity().id + "\"";
        default: return "?";
      }
    case ExprKind::Variable: {
      static const char* names[] = {"principal", "action", "resource", "context"};
      return names[static_cast<int>(e->var)];
    }
    case ExprKind::Slot: return e->slot == SlotId::Principal ? "?principal" : "?resource";
    case ExprKind::If: return "(if" + kids() + ")";
    case ExprKind::And: return "(&&" + kids() + ")";
    case ExprKind::Or: return "(||" + kids() + ")";
    case ExprKind::Not: return "(!" + kids() + ")";
    case ExprKind::Neg: return "(neg" + kids() + ")";
    case ExprKind::Eq: return "(==" + kids() + ")";
    case ExprKind::Ne: return "(!=" + kids() + ")";
    case ExprKind::Lt: return "(<" + kids() + ")";
    case ExprKind::Le: return "(<=" + kids() + ")";
    case ExprKind::Gt: return "(>" + kids() + ")";
    case ExprKind::Ge: return "(>=" + kids() + ")";
    case ExprKind::Add: return "(+" + kids() + ")";
    case ExprKind::Sub: return "(-" + kids() + ")";
    case ExprKind::Mul: return "(*" + kids() + ")";
    case ExprKind::In: return "(in" + kids() + ")";
    case ExprKind::GetAttr: return "(." + kids() + " " + e->name + ")";
    case ExprKind::HasAttr: return "(has" + kids() + " " + e->name + ")";
    case ExprKind::Is: return "(is" + kids() + " " + e->name + ")";
    case ExprKind::Like: {
      std::string p;
      for (const PatternElem& el : e->pattern) p += el.wildcard ? "<*>" : el.literal;
      return "(like" + kids() + " \"" + p + "\")";
    }
    case ExprKind::SetLit: return "[" + (e->kids.empty() ? std::string() : kids().substr(1)) + "]";
    case ExprKind::RecordLit: {
      std::string s = "{";
      for (size_t i = 0; i < e->kids.size(); ++i) s += (i ? ", " : "") + e->fieldNames[i] + ": " + show(e->kids[i]);
      return s + "}";
    }
    case ExprKind::Call: return "(" + e->name + kids() + ")";
    case ExprKind::Method: return "(." + e->name + kids() + ")";
  }
  return "?";
}

std::string expr(const std::string& text) { return show(parseExpression(text, "test.cedar")); }

bool exprFails(const std::string& text) {
  try {
    parseExpression(text, "test.cedar");
    return false;
  } catch (const InputError&) {
    return true;
  }
}

bool policyFails(const std::string& text) {
  try {
    parsePolicies(text, "test.cedar");
    return false;
  } catch (const InputError&) {
    return true;
  }
}

// The condition of a one-policy file, rendered.
std::string when(const std::string& cond) {
  PolicySet ps = parsePolicies("permit(principal, action, resource) when { " + cond + " };", "test.cedar");
  REQUIRE(ps.policies.size() == 1);
  return show(ps.policies[0].conditions.at(0).body);
}

}  // namespace

TEST_CASE("parser: precedence and associativity") {
  CHECK(expr("1 + 2 * 3 == 7 && true || false") == "(|| (&& (== (+ 1 (* 2 3)) 7) true) false)");
  CHECK(expr("1 - 2 - 3") == "(- (- 1 2) 3)");
  CHECK(expr("1 * 2 * 3") == "(* (* 1 2) 3)");
  CHECK(expr("true || false || true") == "(|| (|| true false) true)");
  CHECK(expr("true && false && true") == "(&& (&& true false) true)");
  CHECK(expr("if true then 1 else 2 + 3") == "(if true 1 (+ 2 3))");
  CHECK(expr("if true then if false then 1 else 2 else 3") == "(if true (if false 1 2) 3)");
  CHECK(expr("!principal.a == false") == "(== (! (. principal a)) false)");
  CHECK(expr("-principal.a < 2") == "(< (neg (. principal a)) 2)");
  CHECK(expr("principal in resource") == "(in principal resource)");
  CHECK(expr("1 != 2") == "(!= 1 2)");
  CHECK(expr("1 >= 2") == "(>= 1 2)");
  CHECK(expr("1 > 2") == "(> 1 2)");
  CHECK(expr("1 <= 2") == "(<= 1 2)");
  CHECK(expr("(1 < 2) == true") == "(== (< 1 2) true)");
  CHECK(expr("3 >= (\"dad\" in \"dad\")") == "(>= 3 (in \"dad\" \"dad\"))");
  CHECK(expr("principal has a && principal.a") == "(&& (has principal a) (. principal a))");
  CHECK(when("principal has a || context.b") == "(|| (has principal a) (. context b))");
  // `if` only starts a whole expression.
  CHECK(exprFails("1 + if true then 1 else 2"));
  CHECK(exprFails("true || if true then 1 else 2"));
  CHECK(expr("1 + (if true then 1 else 2)") == "(+ 1 (if true 1 2))");
}

TEST_CASE("parser: chained relations, division, `=` are errors") {
  CHECK(exprFails("1 < 2 < 3"));
  CHECK(exprFails("1 == 2 == 3"));
  CHECK(exprFails("3 >= 2 >= 1"));
  CHECK(exprFails("principal in resource in resource"));
  CHECK(exprFails("principal in resource is User"));
  CHECK(exprFails("principal has a == true"));
  CHECK(exprFails("principal like \"a\" == true"));
  CHECK(exprFails("principal is User == true"));
  CHECK(exprFails("principal is User in resource in resource"));
  CHECK(exprFails("1 / 2"));
  CHECK(exprFails("7 % 3"));
  CHECK(exprFails("7 = 3"));
  CHECK(exprFails("1 & 2"));
  CHECK(exprFails("1 | 2"));
}

TEST_CASE("parser: unary operators and integer literals") {
  CHECK(expr("!!true") == "(! (! true))");
  CHECK(expr("!!!!true") == "(! (! (! (! true))))");
  CHECK(exprFails("!!!!!true"));
  CHECK(expr("----1") == "(neg (neg (neg -1)))");
  CHECK(exprFails("-----1"));
  CHECK(exprFails("!-1"));
  CHECK(exprFails("-!true"));
  // Cedar folds one '-' into a directly following number literal.
  CHECK(expr("-1") == "-1");
  CHECK(expr("--1") == "(neg -1)");
  CHECK(expr("- -1") == "(neg -1)");
  CHECK(expr("-(1)") == "(neg 1)");
  CHECK(expr("(-1)") == "-1");
  CHECK(expr("-(-1)") == "(neg -1)");
  CHECK(expr("--(--1)") == "(neg (neg (neg -1)))");
  CHECK(expr("2--1") == "(- 2 -1)");
  CHECK(expr("-1.foo") == "(neg (. 1 foo))");
  CHECK(expr("9223372036854775807") == "9223372036854775807");
  CHECK(expr("-9223372036854775808") == "-9223372036854775808");
  CHECK(expr("--9223372036854775808") == "(neg -9223372036854775808)");
  CHECK(expr("-(9223372036854775807)") == "(neg 9223372036854775807)");
  CHECK(exprFails("9223372036854775808"));
  CHECK(exprFails("-9223372036854775809"));
  CHECK(exprFails("-(9223372036854775808)"));
  CHECK(exprFails("-9223372036854775808.foo"));
  CHECK(exprFails("18446744073709551616"));
  CHECK(expr("007") == "7");
}

TEST_CASE("parser: member access, methods and functions") {
  CHECK(expr("principal.a.b") == "(. (. principal a) b)");
  CHECK(expr("context[\"x y\"]") == "(. context x y)");
  CHECK(expr("\"first\".some_ident") == "(. \"first\" some_ident)");
  CHECK(expr("1.some_ident") == "(. 1 some_ident)");
  CHECK(expr("User::\"jane\"[\"a+b\"]") == "(. User::\"jane\" a+b)");
  CHECK(expr("principal.permit") == "(. principal permit)");
  CHECK(expr("principal.contains(1)") == "(.contains principal 1)");
  CHECK(expr("[1, 2,].containsAll([1])") == "(.containsAll [1 2] [1])");
  CHECK(expr("[].isEmpty()") == "(.isEmpty [])");
  CHECK(expr("principal.getTag(\"t\")") == "(.getTag principal \"t\")");
  CHECK(expr("principal.hasTag(\"t\")") == "(.hasTag principal \"t\")");
  CHECK(expr("ip(\"1.2.3.4\").isIpv4()") == "(.isIpv4 (ip \"1.2.3.4\"))");
  CHECK(expr("decimal(\"1.0\").lessThan(decimal(\"2.0\"))") == "(.lessThan (decimal \"1.0\") (decimal \"2.0\"))");
  CHECK(expr("datetime(\"2024-01-01\").offset(duration(\"1h\"))") ==
        "(.offset (datetime \"2024-01-01\") (duration \"1h\"))");
  CHECK(expr("principal.a.contains(1).b") == "(. (.contains (. principal a) 1) b)");
  // Extension calls have their arity checked at evaluation, as in Cedar.
  CHECK(expr("decimal(\"1.0\", 2)") == "(decimal \"1.0\" 2)");
  CHECK(expr("decimal(\"1.0\").lessThan()") == "(.lessThan (decimal \"1.0\"))");
  // Builtin methods have theirs checked by the parser.
  CHECK(exprFails("[].contains()"));
  CHECK(exprFails("[].contains(1, 2)"));
  CHECK(exprFails("[].isEmpty([])"));
  CHECK(exprFails("[].containsAny()"));
  CHECK(exprFails("contains([], 1)"));
  CHECK(exprFails("greaterThan(1, 2)"));
  CHECK(exprFails("\"1.1.1.1\".ip()"));
  CHECK(exprFails("[].bar()"));
  CHECK(exprFails("bar([])"));
  CHECK(exprFails("Ip(\"1.1.1.1\")"));
  CHECK(exprFails("A::ip(\"1.1.1.1\")"));
  CHECK(exprFails("principal()"));
  CHECK(exprFails("(1+1)()"));
  CHECK(exprFails("principal[\"a\"](1)"));
  CHECK(exprFails("foo.bar()"));
  CHECK(exprFails("foo.attr"));
  CHECK(exprFails("foo[\"attr\"]"));
  CHECK(exprFails("principal[a]"));
  CHECK(exprFails("principal[0]"));
  CHECK(exprFails("principal[(\"a\")]"));
  CHECK(exprFails("principal[principal]"));
}

TEST_CASE("parser: literals, sets, records, entities, variables") {
  CHECK(expr("[]") == "[]");
  CHECK(expr("[1, [true, \"x\"],]") == "[1 [true \"x\"]]");
  CHECK(exprFails("[,]"));
  CHECK(expr("{}") == "{}");
  CHECK(expr("{a: 1, \"b c\": 2, principal: 3, permit: 4,}") == "{a: 1, b c: 2, principal: 3, permit: 4}");
  CHECK(exprFails("{a: 1, \"a\": 2}"));
  CHECK(exprFails("{if: 1}"));
  CHECK(exprFails("{true: 1}"));
  CHECK(exprFails("{in: 1}"));
  CHECK(exprFails("{then: 1}"));
  CHECK(exprFails("{__cedar: 1}"));
  CHECK(expr("{\"__cedar\": 1}") == "{__cedar: 1}");
  CHECK(exprFails("{a::b: 1}"));
  CHECK(exprFails("{(a): 1}"));
  CHECK(exprFails("{(\"a\"): 1}"));
  CHECK(exprFails("{1: 1}"));
  CHECK(expr("A::B::\"x\"") == "A::B::\"x\"");
  CHECK(expr("principal::\"alice\"") == "principal::\"alice\"");
  CHECK(expr("A :: \"x\"") == "A::\"x\"");
  CHECK(exprFails("A::{a: 1}"));
  CHECK(exprFails("if::A::\"x\""));
  CHECK(exprFails("A::true::\"x\""));
  CHECK(exprFails("__cedar::\"x\""));
  CHECK(exprFails("A::__cedar::B::\"x\""));
  CHECK(expr("__cedarX::\"x\"") == "__cedarX::\"x\"");
  CHECK(expr("principal") == "principal");
  CHECK(expr("action") == "action");
  CHECK(expr("resource") == "resource");
  CHECK(expr("context") == "context");
  CHECK(exprFails("foo"));
  CHECK(exprFails("foo::principal"));
  CHECK(exprFails("principal::foo"));
  CHECK(exprFails("in"));
  CHECK(exprFails("principal.if"));
  CHECK(exprFails("principal.true"));
  CHECK(exprFails("principal.in"));
  CHECK(exprFails("principal.__cedar"));
  CHECK(exprFails("ip(\"1\").__cedar()"));
  CHECK(expr("principal.__cedar1") == "(. principal __cedar1)");
  CHECK(expr("true") == "true");
  CHECK(expr("false") == "false");
}

TEST_CASE("parser: has, like, is") {
  CHECK(expr("principal has a") == "(has principal a)");
  CHECK(expr("principal has \"a b\"") == "(has principal a b)");
  CHECK(expr("principal has principal") == "(has principal principal)");
  CHECK(expr("principal has a.b.c") ==
        "(&& (&& (has principal a) (has (. principal a) b)) (has (. (. principal a) b) c))");
  CHECK(expr("1 + 2 has a") == "(has (+ 1 2) a)");
  CHECK(exprFails("principal has 1"));
  CHECK(exprFails("principal has if"));
  CHECK(exprFails("principal has true"));
  CHECK(exprFails("principal has in"));
  CHECK(exprFails("principal has a.if"));
  CHECK(exprFails("principal has a.__cedar"));
  CHECK(exprFails("principal has __cedar"));
  CHECK(exprFails("principal has a::b"));
  CHECK(exprFails("principal has A::\"\""));
  CHECK(exprFails("principal has a - 1"));
  CHECK(exprFails("principal has 3 * a"));
  CHECK(exprFails("principal has -a.b"));
  CHECK(exprFails("principal has !a"));
  CHECK(exprFails("principal has a.b()"));
  CHECK(exprFails("principal has a[\"b\"]"));
  CHECK(exprFails("principal has \"a\".b"));
  CHECK(exprFails("principal has (b).a"));
  CHECK(exprFails("principal has ?principal"));

  CHECK(expr("\"abc\" like \"a*c\"") == "(like \"abc\" \"a<*>c\")");
  CHECK(expr("\"abc\" like \"a\\*c\"") == "(like \"abc\" \"a*c\")");
  CHECK(expr("\"abc\" like \"a\\u{2a}c\"") == "(like \"abc\" \"a<*>c\")");
  CHECK(expr("\"abc\" like \"\\\\*\"") == "(like \"abc\" \"\\<*>\")");
  CHECK(exprFails("\"a\" like principal"));
  CHECK(exprFails("\"a\" like 354"));
  CHECK(exprFails("\"a\" like (\"a\")"));
  CHECK(exprFails("\"a\" like \"a\" + \"b\""));
  CHECK(exprFails("\"a\" like \"\\q\""));
  // `\*` is only an escape inside patterns.
  CHECK(exprFails("\"a\\*\" like \"a\""));

  CHECK(expr("principal is User") == "(is principal User)");
  CHECK(expr("principal is A::B::User") == "(is principal A::B::User)");
  CHECK(expr("principal::\"a\" is principal") == "(is principal::\"a\" principal)");
  CHECK(expr("principal is User in Group::\"g\"") ==
        "(&& (is principal User) (in principal Group::\"g\"))");
  CHECK(expr("principal is User in Group::\"g\" && true") ==
        "(&& (&& (is principal User) (in principal Group::\"g\")) true)");
  CHECK(expr("1 is User") == "(is 1 User)");
  CHECK(exprFails("principal is \"User\""));
  CHECK(exprFails("principal is User::\"a\""));
  CHECK(exprFails("principal is 1"));
  CHECK(exprFails("principal is if"));
  CHECK(exprFails("principal is User.a"));
  CHECK(exprFails("principal is (User)"));
  CHECK(exprFails("principal is ! User"));
  CHECK(exprFails("principal is User + User"));
  CHECK(exprFails("principal is __cedar::A"));
}

TEST_CASE("parser: string escapes") {
  CHECK(unescapeCedarString("a\\n\\r\\t\\\\\\0\\'\\\"") == std::string("a\n\r\t\\\0'\"", 8));
  CHECK(unescapeCedarString("\\x41\\x7f") == std::string("A\x7f"));
  CHECK_FALSE(unescapeCedarString("\\x80"));
  CHECK_FALSE(unescapeCedarString("\\x4"));
  CHECK_FALSE(unescapeCedarString("\\xg0"));
  CHECK(unescapeCedarString("\\u{41}\\u{0}\\u{1F600}\\u{10FFFF}") ==
        std::string("A\0\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF", 10));
  CHECK(unescapeCedarString("\\u{4_1}\\u{00_0041}") == "AA");
  CHECK(unescapeCedarString("\\u{000041}") == "A");
  CHECK_FALSE(unescapeCedarString("\\u{0000041}"));  // more than 6 digits
  CHECK_FALSE(unescapeCedarString("\\u{110000}"));
  CHECK_FALSE(unescapeCedarString("\\u{D800}"));
  CHECK_FALSE(unescapeCedarString("\\u{_41}"));
  CHECK_FALSE(unescapeCedarString("\\u{}"));
  CHECK_FALSE(unescapeCedarString("\\u{41"));
  CHECK_FALSE(unescapeCedarString("\\u41"));
  CHECK_FALSE(unescapeCedarString("\\q"));
  CHECK_FALSE(unescapeCedarString("\\*"));
  CHECK_FALSE(unescapeCedarString("\\"));
  CHECK_FALSE(unescapeCedarString("a\rb"));  // a raw carriage return (rustc_lexer's rule)
  CHECK(unescapeCedarString("a\nb\tc\x01 \xC3\xA9") == "a\nb\tc\x01 \xC3\xA9");
  CHECK(unescapeCedarString("") == "");
  auto pat = unescapeCedarPattern("a*\\*\\u{2A}");
  REQUIRE(pat);
  REQUIRE(pat->size() == 4);
  CHECK(pat->at(1).wildcard);
  CHECK_FALSE(pat->at(2).wildcard);
  CHECK(pat->at(2).literal == "*");
  CHECK(pat->at(3).wildcard);
  // In policy text: a backslash before a newline does not lex; raw control characters do.
  CHECK(exprFails("\"a\\\nb\""));
  CHECK(expr("\"a\nb\"") == "\"a\nb\"");
  CHECK(exprFails("\"abc"));
  CHECK(exprFails("\"a\\q\""));
  CHECK(expr("\"\\u{e9}\"") == "\"\xC3\xA9\"");
}

TEST_CASE("parser: lexical details") {
  CHECK(expr("// comment\n 1 // another\n + 2 // end") == "(+ 1 2)");
  CHECK(expr("1\xC2\xA0+\xE2\x80\x83" "2\xE3\x80\x80") == "(+ 1 2)");  // Unicode White_Space
  CHECK(exprFails("1 \xC3\xA9 2"));
  CHECK(exprFails("1 # 2"));
  CHECK(exprFails("\"\xFF\""));  // not UTF-8
  CHECK(exprFails("?foo"));
  CHECK(expr("?principal") == "?principal");
  CHECK(exprFails("principals"));  // an identifier, not the variable
}

TEST_CASE("parser: error positions") {
  try {
    parsePolicies("permit(principal, action, resource) when {\n  1 +\n};", "pol.cedar");
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(e.file() == "pol.cedar");
    CHECK(e.loc().line == 3);
    CHECK(e.loc().column == 1);
    CHECK(e.message().find("expected") != std::string::npos);
    CHECK(e.message().find("found `}`") != std::string::npos);
  }
  try {
    parsePolicies("permit(principal, action, resource) when { principal.if };", "p");
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(e.loc().line == 1);
    CHECK(e.loc().column == 54);
  }
  try {
    parseExpression("\"\xC3\xA9\xC3\xA9\" @", "e");  // columns count code points
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(e.loc().column == 6);
  }
}

TEST_CASE("parser: nesting limits") {
  auto nested = [](int n, const std::string& open, const std::string& close) {
    std::string s;
    for (int i = 0; i < n; ++i) s += open;
    s += "1";
    for (int i = 0; i < n; ++i) s += close;
    return s;
  };
  CHECK(expr(nested(150, "(", ")")) == "1");
  CHECK(exprFails(nested(100000, "(", ")")));
  CHECK(exprFails(nested(100000, "[", "]")));
  CHECK(exprFails(nested(100000, "{a:", "}")));
  CHECK(exprFails(nested(100000, "if true then ", " else 1")));
  CHECK(exprFails(nested(100000, "ip(", ")")));
  CHECK(policyFails("permit(principal == " + nested(100000, "(", ")") + ", action, resource);"));
  // Long operator chains build deep trees: bounded as well.
  std::string chain = "1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  CHECK(exprFails(chain));
  std::string shortChain = "1";
  for (int i = 0; i < 100; ++i) shortChain += " || 1";
  CHECK_FALSE(exprFails(shortChain));
  // The input size limit is checked before anything is read.
  const char tiny[] = " ";
  CHECK_THROWS_AS(parsePolicies(std::string_view(tiny, kMaxInputBytes + 1), "big"), InputError);
}

TEST_CASE("parser: policies, scopes and annotations") {
  PolicySet ps = parsePolicies(R"(
    // first
    @id("a") @note
    permit(principal == User::"alice", action in [Action::"r", NS::Action::"w",], resource in Folder::"f")
      when { context.ok } unless { context.blocked } when { true };
    forbid(principal is User in Group::"g", action == Action::"d", resource is Doc);
    permit(principal in ?principal, action, resource == ?resource);
    permit(principal, action in Action::"x", resource,);
  )", "ps.cedar");
  REQUIRE(ps.policies.size() == 3);
  REQUIRE(ps.templates.size() == 1);
  const Policy& p0 = ps.policies[0];
  CHECK(p0.id == "policy0");
  CHECK(p0.effect == Effect::Permit);
  REQUIRE(p0.annotations.size() == 2);
  CHECK(p0.annotations[0].key == "id");
  CHECK(p0.annotations[0].value == "a");
  CHECK(p0.annotations[1].key == "note");
  CHECK_FALSE(p0.annotations[1].value);
  CHECK(p0.principal.op == ScopeConstraint::Op::Eq);
  CHECK((p0.principal.target.uid == EntityUid{"User", "alice"}));
  CHECK(p0.action.op == ActionConstraint::Op::InSet);
  REQUIRE(p0.action.targets.size() == 2);
  CHECK((p0.action.targets[1] == EntityUid{"NS::Action", "w"}));
  CHECK(p0.resource.op == ScopeConstraint::Op::In);
  REQUIRE(p0.conditions.size() == 3);
  CHECK(p0.conditions[0].isWhen);
  CHECK_FALSE(p0.conditions[1].isWhen);
  CHECK(show(p0.conditions[1].body) == "(. context blocked)");
  CHECK(p0.loc.line == 3);
  const Policy& p1 = ps.policies[1];
  CHECK(p1.id == "policy1");
  CHECK(p1.effect == Effect::Forbid);
  CHECK(p1.principal.op == ScopeConstraint::Op::IsIn);
  CHECK(p1.principal.entityType == "User");
  CHECK((p1.principal.target.uid == EntityUid{"Group", "g"}));
  CHECK(p1.action.op == ActionConstraint::Op::Eq);
  CHECK(p1.resource.op == ScopeConstraint::Op::Is);
  CHECK(p1.resource.entityType == "Doc");
  const Policy& t = ps.templates[0];
  CHECK(t.id == "policy2");
  CHECK(t.isTemplate());
  CHECK(t.principal.target.isSlot);
  CHECK(t.principal.target.slot == SlotId::Principal);
  CHECK(t.resource.op == ScopeConstraint::Op::Eq);
  CHECK(t.resource.target.slot == SlotId::Resource);
  CHECK(ps.policies[2].id == "policy3");
  CHECK(ps.policies[2].action.op == ActionConstraint::Op::In);
  CHECK_FALSE(ps.policies[2].isTemplate());

  CHECK(parsePolicies("", "empty").policies.empty());
  CHECK(parsePolicies("// only a comment", "c").policies.empty());
  CHECK(parsePolicies("@if(\"x\") @true @__cedar(\"y\") permit(principal, action, resource);", "a").policies.size() ==
        1);
  CHECK(parsePolicies("permit(principal == (User::\"a\"), action in ([Action::\"a\", (Action::\"b\")]), "
                      "resource);",
                      "p")
            .policies.size() == 1);
  CHECK(parsePolicies("permit(principal, action in [], resource);", "p").policies[0].action.targets.empty());
  CHECK(parsePolicies("permit(principal is principal, action, resource is User in ?resource);", "p")
            .templates.size() == 1);
}

TEST_CASE("parser: invalid policies") {
  CHECK(policyFails("permit(principal, action, resource)"));
  CHECK(policyFails("permit();"));
  CHECK(policyFails("permit(principal);"));
  CHECK(policyFails("permit(principal, action);"));
  CHECK(policyFails("permit(principal, action, resource, context);"));
  CHECK(policyFails("permit(resource, action, principal);"));
  CHECK(policyFails("permit(principal, principal, resource);"));
  CHECK(policyFails("permit(foo, action, resource);"));
  CHECK(policyFails("allow(principal, action, resource);"));
  CHECK(policyFails("permit(principal: User, action, resource);"));
  CHECK(policyFails("permit(principal is User == User::\"a\", action, resource);"));
  CHECK(policyFails("permit(principal in Group::\"g\" is User, action, resource);"));
  CHECK(policyFails("permit(principal is User::\"a\", action, resource);"));
  CHECK(policyFails("permit(principal is User in User, action, resource);"));
  CHECK(policyFails("permit(principal == User, action, resource);"));
  CHECK(policyFails("permit(principal == \"alice\", action, resource);"));
  CHECK(policyFails("permit(principal > User::\"a\", action, resource);"));
  CHECK(policyFails("permit(principal = User::\"a\", action, resource);"));
  CHECK(policyFails("permit(principal in [User::\"a\"], action, resource);"));
  CHECK(policyFails("permit(principal == User::\"a\" || principal == User::\"b\", action, resource);"));
  CHECK(policyFails("permit(principal == name-with-dashes::\"a\", action, resource);"));
  CHECK(policyFails("permit(principal == ?resource, action, resource);"));
  CHECK(policyFails("permit(principal == ?foo, action, resource);"));
  CHECK(policyFails("permit(principal, action, resource in ?principal);"));
  CHECK(policyFails("permit(principal, action == ?action, resource);"));
  CHECK(policyFails("permit(principal, action in [?principal], resource);"));
  CHECK(policyFails("permit(principal, action is Action, resource);"));
  CHECK(policyFails("permit(principal, action == [Action::\"a\"], resource);"));
  CHECK(policyFails("permit(principal, action in [[Action::\"a\"]], resource);"));
  CHECK(policyFails("permit(principal, action == Foo::\"a\", resource);"));
  CHECK(policyFails("permit(principal, action in [Action::\"a\", Foo::\"b\"], resource);"));
  CHECK(policyFails("permit(principal, action == Action::Foo::\"a\", resource);"));
  CHECK(policyFails("permit(principal, action != Action::\"a\", resource);"));
  CHECK(policyFails("permit(principal, action, resource) when {};"));
  CHECK(policyFails("permit(principal, action, resource) unless {};"));
  CHECK(policyFails("permit(principal, action, resource) advice { true };"));
  CHECK(policyFails("permit(principal, action, resource) when { ?principal == principal };"));
  CHECK(policyFails("permit(principal == ?principal, action, resource) when { ?principal == principal };"));
  CHECK(policyFails("@a @a permit(principal, action, resource);"));
  CHECK(policyFails("@a(\"x\") @b @a(\"y\") permit(principal, action, resource);"));
  CHECK(policyFails("@a() permit(principal, action, resource);"));
  CHECK(policyFails("@a(\"\\q\") permit(principal, action, resource);"));
  CHECK(policyFails("permit(principal == User::\"\\q\", action, resource);"));
  CHECK(policyFails("permit(principal, action, resource); junk"));
}

TEST_CASE("parser: entity references") {
  CHECK((parseEntityUid("A::B::\"x\\ty\"", "uid") == EntityUid{"A::B", "x\ty"}));
  CHECK((parseEntityUid(" User :: \"\" // c", "uid") == EntityUid{"User", ""}));
  CHECK_THROWS_AS(parseEntityUid("A::\"x\" extra", "uid"), InputError);
  CHECK_THROWS_AS(parseEntityUid("A", "uid"), InputError);
  CHECK_THROWS_AS(parseEntityUid("(A::\"x\")", "uid"), InputError);
  CHECK_THROWS_AS(parseEntityUid("if::\"x\"", "uid"), InputError);
  CHECK_THROWS_AS(parseEntityUid("__cedar::\"x\"", "uid"), InputError);
}

TEST_CASE("ast: template linking") {
  PolicySet ps = parsePolicies(
      "@k(\"v\") permit(principal == ?principal, action, resource in ?resource) when { true };"
      "forbid(principal in ?principal, action, resource);",
      "t");
  REQUIRE(ps.templates.size() == 2);
  ps.links.push_back({"L1", "policy0", EntityUid{"User", "a"}, EntityUid{"Folder", "f"}});
  ps.links.push_back({"L2", "policy1", EntityUid{"Group", "g"}, std::nullopt});
  std::vector<Policy> out;
  CHECK_FALSE(ps.linkAll(out));
  REQUIRE(out.size() == 2);
  CHECK(out[0].id == "L1");
  CHECK_FALSE(out[0].isTemplate());
  CHECK((out[0].principal.target.uid == EntityUid{"User", "a"}));
  CHECK((out[0].resource.target.uid == EntityUid{"Folder", "f"}));
  CHECK(out[0].annotations.size() == 1);
  CHECK(out[0].conditions.size() == 1);
  CHECK(out[1].principal.op == ScopeConstraint::Op::In);
  CHECK((out[1].principal.target.uid == EntityUid{"Group", "g"}));

  auto fails = [&](TemplateLink link) {
    PolicySet copy = ps;
    copy.links = {std::move(link)};
    std::vector<Policy> o;
    return copy.linkAll(o).has_value();
  };
  CHECK(fails({"L3", "nope", EntityUid{"User", "a"}, std::nullopt}));
  CHECK(fails({"L3", "policy0", EntityUid{"User", "a"}, std::nullopt}));           // missing ?resource
  CHECK(fails({"L3", "policy1", EntityUid{"User", "a"}, EntityUid{"F", "f"}}));    // extra ?resource
  CHECK(fails({"policy0", "policy1", EntityUid{"User", "a"}, std::nullopt}));      // id taken
}
