// The JSON schema reader (Cedar's "schema JSON format"), following the serde definitions in
// cedar-policy-core/src/validator/json_schema.rs: which fields exist where, which are required,
// how `null` is treated, and how each `"type"` is read. Names are resolved afterwards by the
// shared resolver (schema.cpp).
//
// nlohmann keeps no positions for parsed values, so syntax errors carry line:column and
// semantic errors carry a JSON path ("/NS/entityTypes/User/shape") in their message instead.
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/errors.h"
#include "compiler/schema.h"
#include "compiler/schema_internal.h"

namespace govmesh::cedar {

namespace {

using namespace schema_internal;
using Json = nlohmann::json;

SourceLoc locOfByte(std::string_view text, size_t byte) {
  SourceLoc loc{1, 1};
  size_t end = std::min(byte, text.size());
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++loc.line;
      loc.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++loc.column;
    }
  }
  return loc;
}

/// JSON pointer escaping for one path segment.
std::string segment(const std::string& key) {
  std::string out = "/";
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

/// Parses the JSON text, refusing duplicate object keys (Cedar's schema reader rejects them;
/// nlohmann would keep the last) and nesting deeper than kMaxNestingDepth.
Json parseJsonText(std::string_view text, std::string_view file) {
  // One frame per open object or array, to name where a duplicate key is.
  struct Frame {
    bool isObject;
    std::set<std::string> keys;
    std::string lastKey;   // objects: the key being read
    size_t elements = 0;   // arrays: elements started so far
  };
  std::vector<Frame> frames;
  auto pathTo = [&frames]() {
    std::string path;
    for (const Frame& f : frames) {
      path += f.isObject ? segment(f.lastKey) : "/" + std::to_string(f.elements - 1);
    }
    return path;
  };
  auto countElement = [&frames]() {
    if (!frames.empty() && !frames.back().isObject) ++frames.back().elements;
  };
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxNestingDepth) {
          throw InputError(std::string(file), {},
                           "JSON nested deeper than " + std::to_string(kMaxNestingDepth) + " levels (at JSON pointer \"" +
                               pathTo() + "\")");
        }
        countElement();
        frames.push_back(Frame{event == Json::parse_event_t::object_start, {}, {}, 0});
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!frames.empty()) frames.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!frames.empty() && parsed.is_string()) {
          Frame& top = frames.back();
          top.lastKey = parsed.get<std::string>();
          if (!top.keys.insert(top.lastKey).second) {
            throw InputError(std::string(file), {},
                             "duplicate JSON object key (at JSON pointer \"" + pathTo() + "\")");
          }
        }
        break;
      case Json::parse_event_t::value: countElement(); break;
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    // nlohmann's text reads "[json.exception.parse_error.N] parse error at line L, column C: MSG".
    size_t col = what.find("column ");
    size_t colon = col == std::string::npos ? std::string::npos : what.find(": ", col);
    std::string msg = colon == std::string::npos ? what : what.substr(colon + 2);
    throw InputError(std::string(file), locOfByte(text, e.byte == 0 ? 0 : e.byte - 1), "malformed JSON: " + msg);
  } catch (const Json::exception& e) {
    throw InputError(std::string(file), {}, std::string("malformed JSON: ") + e.what());
  }
}

class JsonSchemaReader {
 public:
  explicit JsonSchemaReader(std::string_view file) : file_(file) {}

  RawSchema run(const Json& root) {
    RawSchema schema;
    if (!root.is_object()) fail("", "a JSON schema must be an object whose keys are namespace names");
    for (const auto& [name, body] : root.items()) {
      schema.namespaces.push_back(readNamespace(name, body, segment(name)));
    }
    return schema;
  }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& message) const {
    schema_internal::fail(file_, origin(path), message);
  }

  static Origin origin(const std::string& path) { return Origin{{}, path, true}; }

  /// Fails on keys of `obj` outside `allowed` (serde's deny_unknown_fields).
  void checkFields(const Json& obj, const std::string& path, std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, value] : obj.items()) {
      bool ok = false;
      for (std::string_view a : allowed) ok = ok || key == a;
      if (!ok) fail(path, "unknown field `" + key + "`");
    }
  }

  const Json& requireObject(const Json& j, const std::string& path, const std::string& what) const {
    if (!j.is_object()) fail(path, what + " must be a JSON object");
    return j;
  }

  std::string requireString(const Json& j, const std::string& path, const std::string& what) const {
    if (!j.is_string()) fail(path, what + " must be a string");
    return j.get<std::string>();
  }

  /// A name in Cedar's normalized syntax: `A::B::C`, identifiers, no spaces.
  std::string requireName(const Json& j, const std::string& path, const std::string& what) const {
    std::string s = requireString(j, path, what);
    if (!splitName(s)) fail(path, "`" + s + "` is not a valid " + what);
    return s;
  }

  /// An identifier that is not a reserved word (Cedar's `Id`).
  std::string requireIdent(const std::string& s, const std::string& path, const std::string& what) const {
    if (!isIdentifier(s) || isReservedWord(s)) fail(path, "`" + s + "` is not a valid " + what);
    return s;
  }

  void readAnnotations(const Json& j, const std::string& path) const {
    requireObject(j, path, "annotations");
    for (const auto& [key, value] : j.items()) {
      if (!isIdentifier(key)) fail(path, "`" + key + "` is not a valid annotation name");
      if (!value.is_string() && !value.is_null()) fail(path + segment(key), "an annotation value must be a string");
    }
  }

  RawNamespace readNamespace(const std::string& name, const Json& body, const std::string& path) {
    RawNamespace ns;
    ns.name = name;
    ns.origin = origin(path);
    if (!name.empty() && !splitName(name)) fail(path, "`" + name + "` is not a valid namespace name");
    requireObject(body, path, "a namespace definition");
    checkFields(body, path, {"commonTypes", "entityTypes", "actions", "annotations"});
    if (!body.contains("entityTypes")) fail(path, "missing field `entityTypes`");
    if (!body.contains("actions")) fail(path, "missing field `actions`");
    if (body.contains("annotations")) {
      if (name.empty()) fail(path, "annotations are not allowed on the empty namespace");
      readAnnotations(body["annotations"], path + "/annotations");
    }
    if (body.contains("commonTypes")) {
      std::string p = path + "/commonTypes";
      for (const auto& [typeName, def] : requireObject(body["commonTypes"], p, "commonTypes").items()) {
        std::string tp = p + segment(typeName);
        RawCommonType c;
        c.name = requireIdent(typeName, tp, "common type name");
        c.origin = origin(tp);
        c.type = readType(def, tp, 0, /*inAttribute=*/false, /*allowAnnotations=*/true);
        ns.commonTypes.push_back(std::move(c));
      }
    }
    std::string ep = path + "/entityTypes";
    for (const auto& [typeName, def] : requireObject(body["entityTypes"], ep, "entityTypes").items()) {
      ns.entityTypes.push_back(readEntityType(typeName, def, ep + segment(typeName)));
    }
    std::string ap = path + "/actions";
    for (const auto& [actionId, def] : requireObject(body["actions"], ap, "actions").items()) {
      ns.actions.push_back(readAction(actionId, def, ap + segment(actionId)));
    }
    return ns;
  }

  std::vector<RawTypeRef> readTypeRefs(const Json& j, const std::string& path, const std::string& what) const {
    if (!j.is_array()) fail(path, what + " must be an array of entity type names");
    std::vector<RawTypeRef> refs;
    for (size_t i = 0; i < j.size(); ++i) {
      std::string p = path + "/" + std::to_string(i);
      refs.push_back(RawTypeRef{requireName(j[i], p, "entity type name"), origin(p)});
    }
    return refs;
  }

  RawEntityType readEntityType(const std::string& name, const Json& def, const std::string& path) const {
    RawEntityType e;
    e.name = requireIdent(name, path, "entity type name");
    e.origin = origin(path);
    requireObject(def, path, "an entity type definition");
    checkFields(def, path, {"memberOfTypes", "shape", "tags", "enum", "annotations"});
    for (const auto& [key, value] : def.items()) {
      if (value.is_null()) fail(path + segment(key), "`" + key + "` cannot be null");
    }
    if (def.contains("annotations")) readAnnotations(def["annotations"], path + "/annotations");
    if (def.contains("enum")) {
      for (const char* other : {"memberOfTypes", "shape", "tags"}) {
        if (def.contains(other)) fail(path, std::string("unexpected field `") + other + "` in an enumerated entity type");
      }
      const Json& ids = def["enum"];
      if (!ids.is_array() || ids.empty()) fail(path + "/enum", "`enum` must be a non-empty array of strings");
      std::vector<std::string> values;
      for (size_t i = 0; i < ids.size(); ++i) {
        values.push_back(requireString(ids[i], path + "/enum/" + std::to_string(i), "an enum entity id"));
      }
      e.enumIds = std::move(values);
      return e;
    }
    if (def.contains("memberOfTypes")) e.memberOf = readTypeRefs(def["memberOfTypes"], path + "/memberOfTypes", "memberOfTypes");
    if (def.contains("shape")) e.shape = readType(def["shape"], path + "/shape", 0, false, false);
    if (def.contains("tags")) e.tags = readType(def["tags"], path + "/tags", 0, false, false);
    return e;
  }

  RawAction readAction(const std::string& id, const Json& def, const std::string& path) const {
    RawAction a;
    a.id = id;
    a.origin = origin(path);
    requireObject(def, path, "an action definition");
    checkFields(def, path, {"attributes", "appliesTo", "memberOf", "annotations"});
    if (def.contains("annotations")) readAnnotations(def["annotations"], path + "/annotations");
    if (def.contains("attributes") && !def["attributes"].is_null()) {
      fail(path + "/attributes", "action attributes are not supported");
    }
    if (def.contains("memberOf") && !def["memberOf"].is_null()) {
      const Json& parents = def["memberOf"];
      if (!parents.is_array()) fail(path + "/memberOf", "`memberOf` must be an array");
      for (size_t i = 0; i < parents.size(); ++i) {
        std::string p = path + "/memberOf/" + std::to_string(i);
        const Json& ref = requireObject(parents[i], p, "an action reference");
        checkFields(ref, p, {"id", "type"});
        if (!ref.contains("id")) fail(p, "missing field `id`");
        RawActionRef r;
        r.id = requireString(ref["id"], p + "/id", "an action id");
        if (ref.contains("type") && !ref["type"].is_null()) r.type = requireName(ref["type"], p + "/type", "action type name");
        r.origin = origin(p);
        a.memberOf.push_back(std::move(r));
      }
    }
    if (def.contains("appliesTo") && !def["appliesTo"].is_null()) {
      std::string p = path + "/appliesTo";
      const Json& spec = requireObject(def["appliesTo"], p, "`appliesTo`");
      checkFields(spec, p, {"principalTypes", "resourceTypes", "context"});
      if (!spec.contains("principalTypes")) fail(p, "missing field `principalTypes`");
      if (!spec.contains("resourceTypes")) fail(p, "missing field `resourceTypes`");
      a.principalTypes = readTypeRefs(spec["principalTypes"], p + "/principalTypes", "principalTypes");
      a.resourceTypes = readTypeRefs(spec["resourceTypes"], p + "/resourceTypes", "resourceTypes");
      if (spec.contains("context")) a.context = readType(spec["context"], p + "/context", 0, false, false);
    }
    return a;
  }

  /// Reads a type object. Attribute types may also carry `required` and `annotations`, common
  /// type definitions `annotations` (serde flattens those structs around the type).
  RawTypePtr readType(const Json& j, const std::string& path, int depth, bool inAttribute, bool allowAnnotations) const {
    if (depth > kMaxNestingDepth) fail(path, "type nested deeper than " + std::to_string(kMaxNestingDepth) + " levels");
    if (!j.is_object()) fail(path, "a type must be a JSON object with a `type` field");
    auto t = std::make_shared<RawType>();
    t->origin = origin(path);
    for (const auto& [key, value] : j.items()) {
      bool known = key == "type" || key == "element" || key == "attributes" || key == "additionalAttributes" ||
                   key == "name" || (inAttribute && key == "required") ||
                   ((inAttribute || allowAnnotations) && key == "annotations");
      if (!known) fail(path, "unknown field `" + key + "`");
    }
    if (j.contains("annotations")) readAnnotations(j["annotations"], path + "/annotations");
    if (!j.contains("type")) fail(path, "missing field `type`");
    std::string type = requireString(j["type"], path + "/type", "`type`");
    auto allowOnly = [&](std::initializer_list<std::string_view> fields) {
      for (const char* f : {"element", "attributes", "additionalAttributes", "name"}) {
        bool allowed = false;
        for (std::string_view a : fields) allowed = allowed || a == f;
        if (!allowed && j.contains(f)) fail(path, std::string("unexpected field `") + f + "` for type `" + type + "`");
      }
    };
    auto requireField = [&](const char* f) -> const Json& {
      if (!j.contains(f)) fail(path, std::string("missing field `") + f + "` for type `" + type + "`");
      return j[f];
    };
    if (type == "String" || type == "Long" || type == "Boolean") {
      allowOnly({});
      t->kind = type == "String" ? RawType::Kind::String : type == "Long" ? RawType::Kind::Long : RawType::Kind::Bool;
    } else if (type == "Set") {
      allowOnly({"element"});
      t->kind = RawType::Kind::Set;
      t->element = readType(requireField("element"), path + "/element", depth + 1, false, false);
    } else if (type == "Record") {
      allowOnly({"attributes", "additionalAttributes"});
      t->kind = RawType::Kind::Record;
      const Json& attrs = requireField("attributes");
      requireObject(attrs, path + "/attributes", "`attributes`");
      for (const auto& [name, attrType] : attrs.items()) {
        std::string p = path + "/attributes" + segment(name);
        RawAttribute a;
        a.name = name;
        a.type = readType(attrType, p, depth + 1, true, true);
        if (attrType.contains("required")) {
          if (!attrType["required"].is_boolean()) fail(p + "/required", "`required` must be true or false");
          a.required = attrType["required"].get<bool>();
        }
        t->attributes.push_back(std::move(a));
      }
      if (j.contains("additionalAttributes")) {
        if (!j["additionalAttributes"].is_boolean()) {
          fail(path + "/additionalAttributes", "`additionalAttributes` must be true or false");
        }
        t->additionalAttributes = j["additionalAttributes"].get<bool>();
      }
    } else if (type == "Entity" || type == "EntityOrCommon") {
      allowOnly({"name"});
      t->kind = type == "Entity" ? RawType::Kind::EntityRef : RawType::Kind::EntityOrCommonRef;
      t->name = requireName(requireField("name"), path + "/name", type == "Entity" ? "entity type name" : "type name");
    } else if (type == "Extension") {
      allowOnly({"name"});
      t->kind = RawType::Kind::Extension;
      t->name = requireString(requireField("name"), path + "/name", "an extension type name");
      requireIdent(t->name, path + "/name", "extension type name");
    } else {
      allowOnly({});
      if (!splitName(type)) fail(path + "/type", "`" + type + "` is not a valid common type name");
      t->kind = RawType::Kind::CommonRef;
      t->name = type;
    }
    return t;
  }

  std::string_view file_;
};

}  // namespace

Schema parseSchemaJson(std::string_view text, std::string_view fileName) {
  if (text.size() > kMaxInputBytes) throw InputError(std::string(fileName), {}, "schema JSON is too large");
  Json root = parseJsonText(text, fileName);
  RawSchema raw = JsonSchemaReader(fileName).run(root);
  return resolveSchema(raw, fileName);
}

}  // namespace govmesh::cedar
