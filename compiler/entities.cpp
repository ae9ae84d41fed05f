#include "compiler/entities.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "compiler/errors.h"
#include "compiler/evaluator.h"
#include "compiler/extensions.h"

namespace govmesh::cedar {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& message) { throw InputError(where, {}, message); }

std::string jsonKindName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a floating-point number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unsupported JSON value";
  }
}

// Cedar's schema names an extension type by its type name; the constructor has another name.
std::string_view constructorFor(std::string_view extType) {
  if (extType == "ipaddr") return "ip";
  return extType;  // decimal, datetime, duration
}

Value readExtension(const json& j, const std::string& where) {
  // {"fn": "ip", "arg": "1.2.3.4"} or {"fn": "offset", "args": [...]}
  if (!j.is_object() || !j.contains("fn") || !j["fn"].is_string())
    fail(where, "expected an extension value {\"fn\": ..., \"arg\": ...}, found " + jsonKindName(j));
  std::string fn = j["fn"].get<std::string>();
  std::vector<Value> args;
  if (j.contains("arg")) {
    args.push_back(jsonToValue(j["arg"], nullptr, where + ".arg", 1));
  } else if (j.contains("args") && j["args"].is_array()) {
    for (size_t i = 0; i < j["args"].size(); ++i)
      args.push_back(jsonToValue(j["args"][i], nullptr, where + ".args[" + std::to_string(i) + "]", 1));
  } else {
    fail(where, "extension value for `" + fn + "` has no \"arg\"");
  }
  // Cedar writes values it cannot express with one constructor as a method call, e.g. a
  // datetime outside 0000-9999 as {"fn": "offset", "args": [datetime, duration]}.
  if (!isExtensionFunction(fn) && !isExtensionMethod(fn)) fail(where, "unknown extension function `" + fn + "`");
  ExtResult r = callExtension(fn, args);
  if (!r.value) fail(where, "invalid extension value: " + r.error);
  return *r.value;
}

bool isEscape(const json& j, const char* key) { return j.is_object() && j.size() == 1 && j.contains(key); }

std::string describeExpected(const SchemaType& t) {
  switch (t.kind) {
    case SchemaType::Kind::Bool: return "a boolean";
    case SchemaType::Kind::Long: return "a long";
    case SchemaType::Kind::String: return "a string";
    case SchemaType::Kind::Entity: return "an entity of type " + t.name;
    case SchemaType::Kind::Set: return "a set";
    case SchemaType::Kind::Record: return "a record";
    case SchemaType::Kind::Extension: return "a value of type " + t.name;
  }
  return "a value";
}

Value readRecord(const json& j, const SchemaType* expected, const std::string& where, int depth) {
  ValueRecord fields;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const SchemaType* fieldType = nullptr;
    if (expected) {
      auto decl = expected->attributes.find(it.key());
      if (decl == expected->attributes.end()) {
        if (!expected->additionalAttributes) fail(where, "attribute `" + it.key() + "` is not declared in the schema");
      } else {
        fieldType = decl->second.type.get();
      }
    }
    fields.emplace_back(it.key(), jsonToValue(it.value(), fieldType, where + "." + it.key(), depth + 1));
  }
  if (expected) {
    for (const auto& [name, attr] : expected->attributes)
      if (attr.required && !j.contains(name)) fail(where, "required attribute `" + name + "` is missing");
  }
  return Value::record(std::move(fields));
}

}  // namespace

EntityUid uidFromJson(const json& j, const std::string& where) {
  const json* body = &j;
  if (isEscape(j, "__entity")) body = &j["__entity"];
  if (!body->is_object() || !body->contains("type") || !body->contains("id") || !(*body)["type"].is_string() ||
      !(*body)["id"].is_string())
    fail(where, "expected an entity reference {\"type\": ..., \"id\": ...}, found " + jsonKindName(j));
  return EntityUid{(*body)["type"].get<std::string>(), (*body)["id"].get<std::string>()};
}

Value jsonToValue(const json& j, const SchemaType* expected, const std::string& where, int depth) {
  if (depth > kMaxNestingDepth) fail(where, "value nested deeper than " + std::to_string(kMaxNestingDepth) + " levels");
  if (expected) {
    using K = SchemaType::Kind;
    switch (expected->kind) {
      case K::Bool:
        if (!j.is_boolean()) break;
        return Value::boolean(j.get<bool>());
      case K::Long:
        if (!j.is_number_integer()) break;
        if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(INT64_MAX)) fail(where, "integer out of range");
        return Value::integer(j.get<int64_t>());
      case K::String:
        if (!j.is_string()) break;
        return Value::string(j.get<std::string>());
      case K::Entity: {
        if (!j.is_object()) break;
        EntityUid u = uidFromJson(j, where);
        if (u.type != expected->name) fail(where, "expected an entity of type " + expected->name + ", found " + toString(u));
        return Value::entity(std::move(u));
      }
      case K::Set: {
        if (!j.is_array()) break;
        ValueSet elems;
        for (size_t i = 0; i < j.size(); ++i)
          elems.push_back(jsonToValue(j[i], expected->element.get(), where + "[" + std::to_string(i) + "]", depth + 1));
        return Value::set(std::move(elems));
      }
      case K::Record:
        if (!j.is_object() || isEscape(j, "__entity") || isEscape(j, "__extn")) break;
        return readRecord(j, expected, where, depth);
      case K::Extension: {
        Value v;
        if (j.is_string()) {
          ExtResult r = callExtension(constructorFor(expected->name), {Value::string(j.get<std::string>())});
          if (!r.value) fail(where, "invalid " + expected->name + " value: " + r.error);
          v = *r.value;
        } else if (isEscape(j, "__extn")) {
          v = readExtension(j["__extn"], where);
        } else if (j.is_object()) {
          v = readExtension(j, where);
        } else {
          break;
        }
        if (kindName(v.kind()) != expected->name) fail(where, "expected " + describeExpected(*expected) + ", found " + std::string(kindName(v.kind())));
        return v;
      }
    }
    fail(where, "expected " + describeExpected(*expected) + ", found " + jsonKindName(j));
  }
  switch (j.type()) {
    case json::value_t::boolean: return Value::boolean(j.get<bool>());
    case json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case json::value_t::number_unsigned:
      if (j.get<uint64_t>() > uint64_t(INT64_MAX)) fail(where, "integer out of range for a Cedar long");
      return Value::integer(j.get<int64_t>());
    case json::value_t::string: return Value::string(j.get<std::string>());
    case json::value_t::array: {
      ValueSet elems;
      for (size_t i = 0; i < j.size(); ++i) elems.push_back(jsonToValue(j[i], nullptr, where + "[" + std::to_string(i) + "]", depth + 1));
      return Value::set(std::move(elems));
    }
    case json::value_t::object:
      if (isEscape(j, "__entity")) return Value::entity(uidFromJson(j, where));
      if (isEscape(j, "__extn")) return readExtension(j["__extn"], where);
      if (j.contains("__expr")) fail(where, "the `__expr` escape is not supported (Cedar removed it)");
      return readRecord(j, nullptr, where, depth);
    default: fail(where, "expected a Cedar value, found " + jsonKindName(j));
  }
}

Value contextFromJson(const json& j, const Schema* schema, const EntityUid& action, const std::string& where) {
  if (j.is_null()) return Value::record({});
  if (!j.is_object()) fail(where, "context must be a JSON object, found " + jsonKindName(j));
  const SchemaType* type = nullptr;
  if (schema) {
    if (const ActionDecl* decl = schema->findAction(action)) type = decl->context.get();
  }
  if (type && type->kind == SchemaType::Kind::Record) return readRecord(j, type, where, 0);
  return readRecord(j, nullptr, where, 0);
}

std::optional<std::string> validateRequestTypes(const Schema& schema, const EntityUid& principal, const EntityUid& action,
                                                const EntityUid& resource) {
  const ActionDecl* decl = schema.findAction(action);
  if (!decl) return "action " + toString(action) + " is not declared in the schema";
  auto check = [&](const EntityUid& uid, const std::vector<std::string>& allowed, const char* role) -> std::optional<std::string> {
    if (std::find(allowed.begin(), allowed.end(), uid.type) == allowed.end())
      return std::string(role) + " " + toString(uid) + " is not of a type that action " + toString(action) + " applies to";
    const EntityTypeDecl* type = schema.findEntityType(uid.type);
    if (type && type->enumIds && std::find(type->enumIds->begin(), type->enumIds->end(), uid.id) == type->enumIds->end())
      return std::string(role) + " " + toString(uid) + " is not one of the enumerated ids of " + uid.type;
    return std::nullopt;
  };
  if (auto e = check(principal, decl->principalTypes, "principal")) return e;
  return check(resource, decl->resourceTypes, "resource");
}

Request requestFromJson(const json& j, const Schema* schema, const std::string& where) {
  if (!j.is_object()) fail(where, "a request must be a JSON object, found " + jsonKindName(j));
  auto uid = [&](const char* key) {
    if (!j.contains(key) || j[key].is_null())
      fail(where + "." + key, "missing entity (unknown request variables are not supported)");
    return uidFromJson(j[key], where + "." + key);
  };
  Request r;
  r.principal = uid("principal");
  r.action = uid("action");
  r.resource = uid("resource");
  r.context = contextFromJson(j.value("context", json::object()), schema, r.action, where + ".context");
  return r;
}

json valueToJson(const Value& v) {
  switch (v.kind()) {
    case ValueKind::Bool: return v.asBool();
    case ValueKind::Long: return v.asLong();
    case ValueKind::String: return v.asString();
    case ValueKind::Entity: return json{{"__entity", {{"type", v.asEntity().type}, {"id", v.asEntity().id}}}};
    case ValueKind::Set: {
      json a = json::array();
      for (const Value& e : v.asSet()) a.push_back(valueToJson(e));
      return a;
    }
    case ValueKind::Record: {
      json o = json::object();
      for (const auto& [k, e] : v.asRecord()) o[k] = valueToJson(e);
      return o;
    }
    case ValueKind::Decimal: return json{{"__extn", {{"fn", "decimal"}, {"arg", toString(v.asDecimal())}}}};
    case ValueKind::Ip: return json{{"__extn", {{"fn", "ip"}, {"arg", toString(v.asIp())}}}};
    case ValueKind::Datetime: return json{{"__extn", {{"fn", "datetime"}, {"arg", toString(v.asDatetime())}}}};
    case ValueKind::Duration: return json{{"__extn", {{"fn", "duration"}, {"arg", toString(v.asDuration())}}}};
  }
  return nullptr;
}

json parseJsonText(std::string_view text, const std::string& fileName) {
  if (text.size() > kMaxInputBytes) throw InputError(fileName, {}, "input larger than " + std::to_string(kMaxInputBytes) + " bytes");
  // Refuse deep nesting before parsing, so no later recursive walk can exhaust the stack.
  int depth = 0;
  bool inString = false;
  uint32_t line = 1, col = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    ++col;
    if (c == '\n') { ++line; col = 0; }
    if (inString) {
      if (c == '\\') { ++i; ++col; }
      else if (c == '"') inString = false;
      continue;
    }
    if (c == '"') inString = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxNestingDepth)
        throw InputError(fileName, {line, col}, "JSON nested deeper than " + std::to_string(kMaxNestingDepth) + " levels");
    } else if (c == ']' || c == '}') --depth;
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // Convert the byte offset into a line and column.
    uint32_t l = 1, c = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') { ++l; c = 1; } else ++c;
    }
    std::string msg = e.what();
    auto pos = msg.find("syntax error");
    throw InputError(fileName, {l, c}, "invalid JSON: " + (pos == std::string::npos ? msg : msg.substr(pos)));
  }
}

}  // namespace govmesh::cedar
