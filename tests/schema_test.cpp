// Tests for the schema readers (compiler/schema.h): both formats, Cedar's name resolution and
// the errors Cedar reports when it builds a schema.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "compiler/errors.h"
#include "compiler/schema.h"

using namespace govmesh::cedar;

namespace {

Schema text(const std::string& s) { return parseSchemaText(s, "test.cedarschema"); }
Schema schemaJson(const std::string& s) { return parseSchemaJson(s, "test.json"); }

/// The InputError a text schema raises (fails the test when it parses).
InputError textError(const std::string& s) {
  try {
    text(s);
  } catch (const InputError& e) {
    return e;
  }
  FAIL("schema was accepted: " << s);
  return InputError("", {}, "");
}

InputError jsonError(const std::string& s) {
  try {
    schemaJson(s);
  } catch (const InputError& e) {
    return e;
  }
  FAIL("schema was accepted: " << s);
  return InputError("", {}, "");
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

const SchemaType& attr(const SchemaTypePtr& record, const std::string& name) {
  REQUIRE(record);
  REQUIRE(record->kind == SchemaType::Kind::Record);
  auto it = record->attributes.find(name);
  REQUIRE(it != record->attributes.end());
  return *it->second.type;
}

const char* kPhotoApp = R"(
// A small photo-sharing app.
type Meta = { created: datetime, "tag list"?: Set<String> };
entity User in [Group] = {
  name: String,
  age?: Long,
  meta: Meta,
  friends: Set<User>,
};
entity Group;
entity Photo in Album { owner: User, ip: ipaddr, score: __cedar::decimal, ttl: duration };
entity Album tags Set<String>;
entity Color enum ["red", "green"];
action view, "edit" appliesTo {
  principal: [User, Group],
  resource: Photo,
  context: { authenticated: Bool, level: __cedar::Long }
};
action all;
action "delete" in [all, "edit"] appliesTo { principal: User, resource: [Photo], };
)";

}  // namespace

TEST_CASE("schema text: declarations, shapes and appliesTo") {
  Schema s = text(kPhotoApp);
  REQUIRE(s.entityTypes.size() == 5);
  const EntityTypeDecl* user = s.findEntityType("User");
  REQUIRE(user);
  CHECK(user->memberOfTypes == std::vector<std::string>{"Group"});
  CHECK(attr(user->shape, "name").kind == SchemaType::Kind::String);
  CHECK_FALSE(user->shape->attributes.at("age").required);
  CHECK(user->shape->attributes.at("name").required);
  const SchemaType& meta = attr(user->shape, "meta");
  CHECK(attr(std::make_shared<SchemaType>(meta), "created").kind == SchemaType::Kind::Extension);
  CHECK_FALSE(meta.attributes.at("tag list").required);
  const SchemaType& friends = attr(user->shape, "friends");
  REQUIRE(friends.kind == SchemaType::Kind::Set);
  CHECK(friends.element->kind == SchemaType::Kind::Entity);
  CHECK(friends.element->name == "User");

  const EntityTypeDecl* photo = s.findEntityType("Photo");
  REQUIRE(photo);
  CHECK(attr(photo->shape, "ip").name == "ipaddr");
  CHECK(attr(photo->shape, "score").name == "decimal");
  CHECK(attr(photo->shape, "ttl").name == "duration");
  CHECK_FALSE(photo->tags);
  CHECK(s.findEntityType("Group")->shape->attributes.empty());
  REQUIRE(s.findEntityType("Album")->tags);
  CHECK(describe(*s.findEntityType("Album")->tags) == "Set<String>");
  REQUIRE(s.findEntityType("Color")->enumIds);
  CHECK(*s.findEntityType("Color")->enumIds == std::vector<std::string>{"red", "green"});

  const ActionDecl* view = s.findAction({"Action", "view"});
  REQUIRE(view);
  CHECK(view->principalTypes == std::vector<std::string>{"User", "Group"});
  CHECK(view->resourceTypes == std::vector<std::string>{"Photo"});
  CHECK(attr(view->context, "authenticated").kind == SchemaType::Kind::Bool);
  CHECK(attr(view->context, "level").kind == SchemaType::Kind::Long);
  CHECK(s.findAction({"Action", "edit"}));
  const ActionDecl* all = s.findAction({"Action", "all"});
  REQUIRE(all);
  CHECK(all->principalTypes.empty());  // Cedar 4: no appliesTo applies to nothing
  CHECK(all->resourceTypes.empty());
  CHECK(all->context->attributes.empty());
  CHECK_FALSE(all->appliesToAnything);
  const ActionDecl* del = s.findAction({"Action", "delete"});
  REQUIRE(del);
  CHECK(del->memberOf == std::vector<EntityUid>{{"Action", "all"}, {"Action", "edit"}});
  CHECK(s.isActionType("Action"));
  CHECK_FALSE(s.isActionType("User"));
  CHECK_FALSE(s.findEntityType("Nope"));
}

TEST_CASE("schema text: namespaces and name resolution") {
  Schema s = text(R"(
    entity Shared;
    namespace a::b::c {
      type T = { x: Long };
      entity E in [Shared] { t: T, s: Shared, own: a::b::c::E };
      action "x" appliesTo { principal: E, resource: [Shared], context: T };
    }
    namespace Other {
      entity String;                          // shadows the builtin inside Other
      entity F { s: String, p: __cedar::String, e: a::b::c::E };
      action "y" in [a::b::c::Action::"x", "z"];
      action "z";
    }
  )");
  const EntityTypeDecl* e = s.findEntityType("a::b::c::E");
  REQUIRE(e);
  CHECK(e->memberOfTypes == std::vector<std::string>{"Shared"});
  CHECK(attr(e->shape, "t").kind == SchemaType::Kind::Record);  // common type inlined
  CHECK(attr(e->shape, "s").name == "Shared");
  CHECK(attr(e->shape, "own").name == "a::b::c::E");
  const ActionDecl* x = s.findAction({"a::b::c::Action", "x"});
  REQUIRE(x);
  CHECK(x->principalTypes == std::vector<std::string>{"a::b::c::E"});
  CHECK(attr(x->context, "x").kind == SchemaType::Kind::Long);
  const EntityTypeDecl* f = s.findEntityType("Other::F");
  REQUIRE(f);
  CHECK(attr(f->shape, "s").kind == SchemaType::Kind::Entity);
  CHECK(attr(f->shape, "s").name == "Other::String");
  CHECK(attr(f->shape, "p").kind == SchemaType::Kind::String);
  const ActionDecl* y = s.findAction({"Other::Action", "y"});
  REQUIRE(y);
  CHECK(y->memberOf == std::vector<EntityUid>{{"a::b::c::Action", "x"}, {"Other::Action", "z"}});
  CHECK(s.isActionType("Other::Action"));
  CHECK(s.isActionType("a::b::c::Action"));
  CHECK_FALSE(s.isActionType("Action"));
}

TEST_CASE("schema text: common types win over entity types, namespace before empty namespace") {
  Schema s = text(R"(
    entity Thing;
    namespace N {
      entity Thing2;
      type Thing2 = String;       // same namespace: the common type wins
      entity A { a: Thing2, b: Long };
      entity B in [Thing2];       // memberOfTypes only name entity types
    }
  )");
  const EntityTypeDecl* a = s.findEntityType("N::A");
  REQUIRE(a);
  CHECK(attr(a->shape, "a").kind == SchemaType::Kind::String);
  CHECK(s.findEntityType("N::B")->memberOfTypes == std::vector<std::string>{"N::Thing2"});
  // A user declaration in the empty namespace replaces the builtin alias.
  Schema t = text("entity Long; entity A { a: Long, b: __cedar::Long };");
  CHECK(attr(t.findEntityType("A")->shape, "a").kind == SchemaType::Kind::Entity);
  CHECK(attr(t.findEntityType("A")->shape, "b").kind == SchemaType::Kind::Long);
}

TEST_CASE("schema text: annotations, comments, escapes and odd names") {
  Schema s = text(R"(
    @doc("the namespace")
    @other
    namespace fn::fn::fnBB::mB::f::c::bj {
      @doc("entity") entity tags in [tags] {
        @doc("attr") @in("") "in": Bool,   // a quoted name may be a reserved word
        principal: Long,
        @x entity?: String
      } tags __cedar::Bool;
      @doc("action")
      action "\u{17}\u{1F600}\n\"q\"", principal appliesTo { principal: [tags], resource: [tags], context: {} } attributes {};
    }
  )");
  const std::string ns = "fn::fn::fnBB::mB::f::c::bj";
  const EntityTypeDecl* e = s.findEntityType(ns + "::tags");
  REQUIRE(e);
  CHECK(e->memberOfTypes == std::vector<std::string>{ns + "::tags"});
  CHECK(attr(e->shape, "in").kind == SchemaType::Kind::Bool);
  CHECK_FALSE(e->shape->attributes.at("entity").required);
  CHECK(e->tags->kind == SchemaType::Kind::Bool);
  CHECK(s.findAction({ns + "::Action", "\x17\xF0\x9F\x98\x80\n\"q\""}));
  CHECK(s.findAction({ns + "::Action", "principal"}));
}

TEST_CASE("schema text: syntax errors carry file, line and column") {
  InputError e = textError("entity A;\nentity B {\n  x: Long\n  y: Long };");
  CHECK(e.file() == "test.cedarschema");
  CHECK(e.loc().line == 4);
  CHECK(e.loc().column == 3);
  CHECK(std::string(e.what()).find("test.cedarschema:4:3:") == 0);
  CHECK(textError("entity A").message().find("expected `;`") != std::string::npos);
  CHECK(textError("entity in;").message().find("reserved") != std::string::npos);
  CHECK(textError("action \"a\\q\";").loc().column == 8);  // invalid escape
  CHECK(textError("action \"\\u{D800}\";").message().find("escape") != std::string::npos);
  textError("action \"\\u{1234567}\";");
  textError("action \"\\x80\";");
  CHECK(text("action \"\\x7f\\u{1_0}\\t\\0\\x41\";").findAction({"Action", std::string("\x7f\x10\t\0A", 5)}));
  textError("action \"abc;");
  textError("entity A = ;");
  textError("entity A { a: Long,, };");
  textError("entity A in [B,];");
  textError("@doc(\"x\") @doc(\"y\") entity A;");  // duplicate annotation
  textError("namespace A { namespace B { } }");
  textError("entity A; action a appliesTo { };");
  textError("entity A; action a appliesTo { principal: A, principal: A, resource: A };");
  textError("entity A; action a appliesTo { principal: A };");           // no resource
  textError("entity A; action a appliesTo { principal: [], resource: A };");
  textError("entity A; action a attributes { x: Long };");
  textError("entity A; action a in [];");
  textError("entity A; action a in [B::C];");  // a qualified parent needs a string id
  textError("entity A #;");
  textError("entity A; \xff");
}

TEST_CASE("schema text: semantic errors") {
  InputError unknown = textError("entity A {\n  b: Missing };");
  CHECK(unknown.loc().line == 2);
  CHECK(unknown.loc().column == 6);
  CHECK(unknown.message().find("Missing") != std::string::npos);
  textError("namespace N { entity A { b: Missing }; }");
  textError("entity A in [Missing];");
  textError("entity A; action a appliesTo { principal: Missing, resource: A };");
  textError("entity A; entity A;");
  textError("type T = Long; type T = String;");
  textError("action a; action a;");
  textError("entity A; entity B; action a, a;");
  textError("namespace N { entity A; } namespace N { entity B; }");
  textError("type Long = String;");  // reserved common type name
  textError("type Set = String;");
  textError("entity Action;");
  textError("entity __cedar;");
  textError("namespace __cedar { entity A; }");
  textError("type A = B; type B = A;");                 // cycle
  textError("type A = { a: Set<A> };");                 // cycle
  textError("entity A; action a in [b];");              // undeclared parent action
  textError("entity A; action a in [b]; action b in [a];");  // action cycle
  textError("entity A; action a in [a];");
  textError("type C = Long; entity A; action a appliesTo { principal: A, resource: A, context: C };");
  textError("entity A; action a appliesTo { principal: A, resource: A, context: A };");  // not a common type
  textError("entity A { x: Set<Action> };");
  // RFC 70: a named namespace cannot redeclare an empty-namespace basename.
  textError("entity User; namespace N { entity User; }");
  textError("type T = Long; namespace N { entity T; }");
  textError("action read; namespace N { action read; }");
  // But an entity and a common type may share a name within one namespace.
  text("entity T; type T = Long; namespace N { entity U; type U = Long; }");
}

TEST_CASE("schema text: nesting is limited") {
  std::string deep;
  for (int i = 0; i < kMaxNestingDepth + 5; ++i) deep += "Set<";
  deep += "Long";
  for (int i = 0; i < kMaxNestingDepth + 5; ++i) deep += ">";
  textError("type T = " + deep + ";");
  std::string ok;
  for (int i = 0; i < 50; ++i) ok += "{ a: ";
  ok += "Long";
  for (int i = 0; i < 50; ++i) ok += " }";
  text("type T = " + ok + ";");
  // Chains of common types cannot build an over-deep type either.
  std::string chain = "type T0 = Long;\n";
  for (int i = 1; i <= kMaxNestingDepth + 5; ++i) {
    chain += "type T" + std::to_string(i) + " = Set<T" + std::to_string(i - 1) + ">;\n";
  }
  textError(chain);
}

TEST_CASE("schema JSON: all type forms") {
  Schema s = schemaJson(R"({
    "": {
      "commonTypes": {
        "Ctx": { "type": "Record", "attributes": { "ok": { "type": "Boolean" } } }
      },
      "entityTypes": {
        "User": {
          "memberOfTypes": ["Group"],
          "shape": {
            "type": "Record",
            "attributes": {
              "name": { "type": "String" },
              "age": { "type": "Long", "required": false },
              "boss": { "type": "Entity", "name": "User" },
              "group": { "type": "EntityOrCommon", "name": "Group" },
              "ip": { "type": "Extension", "name": "ipaddr" },
              "when": { "type": "datetime" },
              "flag": { "type": "Bool" },
              "tags": { "type": "Set", "element": { "type": "String" }, "annotations": { "doc": "x" } },
              "open": { "type": "Record", "attributes": {}, "additionalAttributes": true }
            }
          },
          "tags": { "type": "Long" },
          "annotations": { "doc": "a user" }
        },
        "Group": {},
        "Color": { "enum": ["red"] }
      },
      "actions": {
        "read": {
          "appliesTo": { "principalTypes": ["User"], "resourceTypes": ["Group"], "context": { "type": "Ctx" } }
        },
        "write": { "memberOf": [{ "id": "read" }, { "id": "read", "type": "Action" }], "appliesTo": null },
        "none": {}
      }
    },
    "NS": {
      "entityTypes": { "E": { "memberOfTypes": ["User"] } },
      "actions": { "act": { "memberOf": [{ "id": "read", "type": "Action" }] } },
      "annotations": { "doc": "ns" }
    }
  })");
  const EntityTypeDecl* user = s.findEntityType("User");
  REQUIRE(user);
  CHECK(user->memberOfTypes == std::vector<std::string>{"Group"});
  CHECK(attr(user->shape, "name").kind == SchemaType::Kind::String);
  CHECK_FALSE(user->shape->attributes.at("age").required);
  CHECK(attr(user->shape, "boss").name == "User");
  CHECK(attr(user->shape, "group").name == "Group");
  CHECK(attr(user->shape, "ip").name == "ipaddr");
  CHECK(attr(user->shape, "when").name == "datetime");
  CHECK(attr(user->shape, "flag").kind == SchemaType::Kind::Bool);
  CHECK(describe(attr(user->shape, "tags")) == "Set<String>");
  CHECK(attr(user->shape, "open").additionalAttributes);
  CHECK(user->tags->kind == SchemaType::Kind::Long);
  CHECK(s.findEntityType("Color")->enumIds->size() == 1);
  const ActionDecl* read = s.findAction({"Action", "read"});
  REQUIRE(read);
  CHECK(attr(read->context, "ok").kind == SchemaType::Kind::Bool);
  CHECK(s.findAction({"Action", "write"})->memberOf == std::vector<EntityUid>{{"Action", "read"}});
  CHECK(s.findAction({"Action", "none"})->principalTypes.empty());
  CHECK(s.findEntityType("NS::E")->memberOfTypes == std::vector<std::string>{"User"});
  CHECK(s.findAction({"NS::Action", "act"})->memberOf == std::vector<EntityUid>{{"Action", "read"}});
}

TEST_CASE("schema JSON: errors") {
  InputError syntax = jsonError("{\n  \"\": {\n    \"entityTypes\": {,\n");
  CHECK(syntax.loc().line == 3);
  CHECK(syntax.message().find("malformed JSON") != std::string::npos);
  CHECK(jsonError(R"({"": {"entityTypes": {}}})").message().find("actions") != std::string::npos);
  jsonError(R"({"": {"entityTypes": {}, "actions": {}, "extra": 1}})");
  jsonError(R"({"": {"entityTypes": {}, "actions": {}, "annotations": {"doc": "x"}}})");
  jsonError(R"({"": {"entityTypes": {"A": {}, "A": {}}, "actions": {}}})");  // duplicate key
  jsonError(R"({"": {"entityTypes": {"A": {"shape": {"type": "Long"}}}, "actions": {}}})");  // shape not a record
  jsonError(R"({"": {"entityTypes": {"A": {"enum": ["x"], "memberOfTypes": []}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"enum": []}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"memberOfTypes": null}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {}, "actions": {"a": {"attributes": {}}}}})");
  jsonError(R"({"": {"entityTypes": {}, "actions": {"a": {"appliesTo": {"principalTypes": []}}}}})");
  jsonError(R"({"": {"entityTypes": {}, "actions": {"a": {"memberOf": [{"id": "b"}]}}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"shape": {"type": "Record", "attributes": {"x": {"type": "Entity"}}}}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"shape": {"type": "Record", "attributes": {"x": {"type": "Long", "requiredd": true}}}}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"shape": {"type": "Record", "attributes": {"x": {"type": "Set", "element": {"type": "Long", "required": true}}}}}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"tags": {"type": "Extension", "name": "money"}}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"tags": {"type": "Entity", "name": "Missing"}}}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"A": {"tags": {"type": "Entity", "name": "A :: B"}}}, "actions": {}}})");
  jsonError(R"({"": {"commonTypes": {"Long": {"type": "String"}}, "entityTypes": {}, "actions": {}}})");
  jsonError(R"({"bad name": {"entityTypes": {}, "actions": {}}})");
  jsonError(R"({"": {"entityTypes": {"in": {}}, "actions": {}}})");
  jsonError("[]");
  InputError where = jsonError(R"({"N": {"entityTypes": {"A": {"memberOfTypes": ["Nope"]}}, "actions": {}}})");
  CHECK(where.message().find("/N/entityTypes/A/memberOfTypes/0") != std::string::npos);
  std::string deep = R"({"": {"entityTypes": {"A": {"tags": )";
  for (int i = 0; i < kMaxNestingDepth; ++i) deep += R"({"type": "Set", "element": )";
  deep += R"({"type": "Long"})";
  for (int i = 0; i < kMaxNestingDepth; ++i) deep += "}";
  deep += "}}, \"actions\": {}}}";
  jsonError(deep);
}

TEST_CASE("schema: describe") {
  Schema s = text(R"(entity E { r: { a: Long, "b c"?: Set<E>, d: decimal }, e: {} };)");
  CHECK(describe(attr(s.findEntityType("E")->shape, "r")) == R"({ a: Long, "b c"?: Set<E>, d: decimal })");
  CHECK(describe(attr(s.findEntityType("E")->shape, "e")) == "{}");
  Schema j = schemaJson(R"({"": {"entityTypes": {"E": {"shape": {"type": "Record", "attributes": {}, "additionalAttributes": true}}}, "actions": {}}})");
  CHECK(describe(*j.findEntityType("E")->shape) == "{ ... }");
}

TEST_CASE("schema: sample-data schemas parse") {
  const std::filesystem::path dir = "../shared/testdata/cedar/sample-data";
  if (!std::filesystem::exists(dir)) return;
  int count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".cedarschema") continue;
    CAPTURE(entry.path().string());
    CHECK_NOTHROW(parseSchemaFile(entry.path().string()));
    ++count;
  }
  CHECK(count > 0);
  Schema a = parseSchemaFile((dir / "sandbox_a" / "schema.cedarschema").string());
  REQUIRE(a.findAction({"Action", "view"}));
  CHECK(contains(a.findAction({"Action", "view"})->resourceTypes, "Video"));
}

TEST_CASE("schema: every corpus schema parses (when GOVMESH_CEDAR_CORPUS names the extracted corpus-tests)") {
  const char* env = std::getenv("GOVMESH_CEDAR_CORPUS");
  if (!env || !std::filesystem::is_directory(env)) return;
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(env)) {
    if (entry.path().extension() != ".cedarschema") continue;
    CAPTURE(entry.path().string());
    CHECK_NOTHROW(parseSchemaFile(entry.path().string()));
    ++count;
  }
  MESSAGE("corpus schemas parsed: " << count);
}
