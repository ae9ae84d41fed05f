// The reference evaluator on hand-picked cases of Cedar's semantics: short-circuiting,
// overflow, missing attributes and entities, `in` over hierarchies, tags, forbid winning,
// erroring policies skipped and reported.
#include <doctest/doctest.h>

#include "compiler/entities.h"
#include "compiler/errors.h"
#include "compiler/evaluator.h"
#include "compiler/parser.h"

using namespace govmesh::cedar;

namespace {

const char* kEvalEntities = R"([
  {"uid": {"type": "User", "id": "alice"}, "attrs": {"age": 30, "tags": ["a", "b"], "boss": {"__entity": {"type": "User", "id": "bob"}}},
   "parents": [{"type": "Group", "id": "eng"}], "tags": {"level": 3}},
  {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Group", "id": "eng"}, "attrs": {}, "parents": [{"type": "Group", "id": "all"}]},
  {"uid": {"type": "Group", "id": "all"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "alice"}}}, "parents": []}
])";

struct Fixture {
  EntityStore store = parseEntitiesJson(kEvalEntities, "test-entities", nullptr);
  Request req{EntityUid{"User", "alice"}, EntityUid{"Action", "view"}, EntityUid{"Doc", "d"},
              Value::record({{"n", Value::integer(5)}, {"s", Value::string("hello")}})};

  EvalResult eval(const char* text) { return evaluate(*parseExpression(text, "expr"), req, store); }
  bool isTrue(const char* text) {
    EvalResult r = eval(text);
    INFO(text << " -> " << (r.ok() ? toString(*r.value) : "error: " + r.error));
    return r.ok() && r.value->isBool() && r.value->asBool();
  }
  bool errors(const char* text) { return !eval(text).ok(); }
};

}  // namespace

TEST_CASE_FIXTURE(Fixture, "boolean operators short-circuit and type-check") {
  CHECK(isTrue("(false && (1 + \"x\" == 2)) == false"));
  CHECK(isTrue("true || principal.nope"));
  CHECK(errors("true && 1"));
  CHECK(errors("1 && false"));
  CHECK(isTrue("if 1 == 1 then true else principal.nope"));
  CHECK(errors("if 1 then true else false"));
  CHECK(errors("!1"));
}

TEST_CASE_FIXTURE(Fixture, "Int64 arithmetic errors on overflow") {
  CHECK(isTrue("9223372036854775807 - 1 == 9223372036854775806"));
  CHECK(errors("9223372036854775807 + 1"));
  CHECK(errors("-9223372036854775808 - 1"));
  CHECK(errors("-(-9223372036854775808)"));
  CHECK(errors("4611686018427387904 * 2"));
  CHECK(isTrue("-9223372036854775808 < 0"));
  CHECK(errors("1 < \"2\""));
}

TEST_CASE_FIXTURE(Fixture, "equality is structural across kinds and never errors") {
  CHECK(isTrue("[1, 2, 2] == [2, 1]"));
  CHECK(isTrue("{a: 1, b: [true]} == {b: [true], a: 1}"));
  CHECK(isTrue("1 != \"1\""));
  CHECK(isTrue("decimal(\"1.0\") == decimal(\"1.0000\")"));
  CHECK(isTrue("User::\"alice\" != User::\"bob\""));
}

TEST_CASE_FIXTURE(Fixture, "attributes of records and entities") {
  CHECK(isTrue("principal.age == 30"));
  CHECK(errors("principal.height"));
  CHECK(isTrue("!(principal has height)"));
  CHECK(isTrue("principal has age"));
  CHECK(errors("User::\"ghost\".age"));
  CHECK(isTrue("!(User::\"ghost\" has age)"));
  CHECK(isTrue("context.n == 5 && context has s"));
  CHECK(isTrue("resource.owner == principal"));
  CHECK(isTrue("resource.owner.boss == User::\"bob\""));
  CHECK(errors("1.foo"));
  CHECK(errors("1 has foo"));
}

TEST_CASE_FIXTURE(Fixture, "`in` follows the transitive hierarchy") {
  CHECK(isTrue("principal in Group::\"all\""));
  CHECK(isTrue("principal in principal"));
  CHECK(isTrue("principal in [Group::\"x\", Group::\"eng\"]"));
  CHECK(isTrue("!(Group::\"all\" in Group::\"eng\")"));
  CHECK(isTrue("User::\"ghost\" in User::\"ghost\""));
  CHECK(errors("principal in [Group::\"eng\", 1]"));
  CHECK(errors("1 in Group::\"eng\""));
  CHECK(errors("principal in \"eng\""));
}

TEST_CASE_FIXTURE(Fixture, "sets, strings, like, is, tags") {
  CHECK(isTrue("principal.tags.contains(\"a\")"));
  CHECK(isTrue("principal.tags.containsAll([\"a\"]) && !principal.tags.containsAny([\"z\"])"));
  CHECK(isTrue("[].isEmpty()"));
  CHECK(errors("\"a\".contains(\"a\")"));
  CHECK(isTrue("context.s like \"h*o\""));
  CHECK(isTrue("!(context.s like \"h*x\")"));
  CHECK(isTrue("\"a*b\" like \"a\\*b\""));
  CHECK(isTrue("principal is User && !(principal is Group)"));
  CHECK(isTrue("principal.hasTag(\"level\") && principal.getTag(\"level\") == 3"));
  CHECK(errors("principal.getTag(\"nope\")"));
  CHECK(isTrue("!User::\"ghost\".hasTag(\"x\")"));
  CHECK(errors("User::\"ghost\".getTag(\"x\")"));
}

TEST_CASE_FIXTURE(Fixture, "datetime and duration compare with < and friends; decimal does not") {
  CHECK(isTrue("datetime(\"2024-01-01\") < datetime(\"2024-01-02\")"));
  CHECK(isTrue("duration(\"1h\") <= duration(\"60m\")"));
  CHECK(errors("decimal(\"1.0\") < decimal(\"2.0\")"));
  CHECK(errors("duration(\"1h\") < datetime(\"2024-01-01\")"));
}

TEST_CASE_FIXTURE(Fixture, "unknown() is accepted and errors, unless short-circuited away") {
  CHECK(errors("unknown(\"x\") == 1"));
  CHECK(isTrue("true || unknown(\"x\")"));
}

TEST_CASE("authorize: forbid wins, default deny, errors skipped and reported") {
  EntityStore store = parseEntitiesJson(kEvalEntities, "test-entities", nullptr);
  Request req{EntityUid{"User", "alice"}, EntityUid{"Action", "view"}, EntityUid{"Doc", "d"}, Value::record({})};
  auto run = [&](const char* text) { return authorize(parsePolicies(text, "p.cedar").policies, req, store); };

  Response r = run("permit(principal, action, resource);");
  CHECK(r.decision == Decision::Allow);
  CHECK(r.reasons == std::vector<std::string>{"policy0"});

  r = run("permit(principal, action, resource); forbid(principal in Group::\"all\", action, resource);");
  CHECK(r.decision == Decision::Deny);
  CHECK(r.reasons == std::vector<std::string>{"policy1"});

  r = run("permit(principal == User::\"bob\", action, resource);");
  CHECK(r.decision == Decision::Deny);
  CHECK(r.reasons.empty());

  r = run("forbid(principal, action, resource) when { principal.nope }; permit(principal, action, resource);");
  CHECK(r.decision == Decision::Allow);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].policyId == "policy0");

  r = run("permit(principal, action, resource) unless { context.missing }; permit(principal, action, resource) when { 7 };");
  CHECK(r.decision == Decision::Deny);
  CHECK(r.errors.size() == 2);

  r = run("permit(principal is User in Group::\"eng\", action in [Action::\"edit\", Action::\"view\"], resource is Doc);");
  CHECK(r.decision == Decision::Allow);
}
