// The `.cedarschema` reader: Cedar 4.x's human-readable schema grammar
// (cedar-policy-core/src/validator/cedar_schema/grammar.lalrpop), parsed by recursive descent
// into the unresolved model of schema_internal.h.
//
//   Schema    := {Annotation* (Namespace | Decl)}
//   Namespace := 'namespace' Path '{' {Annotation* Decl} '}'
//   Decl      := Entity | Action | TypeDecl
//   Entity    := 'entity' Idents ['in' EntTypes] [['='] RecType] ['tags' Type] ';'
//              | 'entity' Idents 'enum' '[' STR {',' STR} ']' ';'
//   Action    := 'action' Names ['in' (QualName | '[' QualName {',' QualName} ']')]
//                ['appliesTo' '{' AppDecls '}'] ['attributes' '{' '}'] ';'
//   TypeDecl  := 'type' Ident '=' Type ';'
//   AppDecls  := ('principal' | 'resource') ':' EntTypes | 'context' ':' (Path | RecType),
//                comma separated, optional trailing comma, at least one
//   Type      := Path | 'Set' '<' Type '>' | RecType
//   RecType   := '{' [AttrDecl {',' AttrDecl} [',']] '}'
//   AttrDecl  := Annotation* Name ['?'] ':' Type
//   QualName  := Name | Path '::' STR          Name := Ident | STR
//   EntTypes  := Path | '[' [Path {',' Path}] ']'
//   Annotation:= '@' AnyIdent ['(' STR ')']
// Keywords are contextual: any of them may be used where an identifier is expected, except
// Cedar's reserved words (`true`, `false`, `if`, `then`, `else`, `in`, `is`, `like`, `has`),
// which only annotation keys may use.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/errors.h"
#include "compiler/parser.h"
#include "compiler/schema.h"
#include "compiler/schema_internal.h"

namespace govmesh::cedar {

namespace {

using namespace schema_internal;

enum class SchemaTokKind : uint8_t { Ident, String, Number, Punct, End };

struct SchemaToken {
  SchemaTokKind kind = SchemaTokKind::End;
  std::string text;  // Ident: the word; String: the decoded value; Punct/Number: as written
  SourceLoc loc;
};

/// Decodes one UTF-8 sequence at `i`; returns its length, 0 when malformed (overlong forms,
/// surrogates and values past U+10FFFF included).
size_t decodeUtf8At(std::string_view s, size_t i, uint32_t& cp) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t len;
  if (b < 0x80) {
    cp = b;
    return 1;
  } else if (b >= 0xC2 && b <= 0xDF) {
    len = 2, cp = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3, cp = b & 0x0F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4, cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

/// Unicode White_Space, which the grammar's `\s` skips.
bool isUnicodeSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

/// Splits the text into tokens, skipping whitespace and `//` comments.
class SchemaLexer {
 public:
  SchemaLexer(std::string_view text, std::string_view file) : text_(text), file_(file) {}

  std::vector<SchemaToken> run() {
    std::vector<SchemaToken> tokens;
    while (true) {
      skipSpace();
      SchemaToken t;
      t.loc = here();
      if (i_ >= text_.size()) {
        t.kind = SchemaTokKind::End;
        tokens.push_back(std::move(t));
        return tokens;
      }
      char c = text_[i_];
      if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        size_t start = i_;
        while (i_ < text_.size() && isWordChar(text_[i_])) advance();
        t.kind = SchemaTokKind::Ident;
        t.text = std::string(text_.substr(start, i_ - start));
      } else if (c >= '0' && c <= '9') {
        size_t start = i_;
        while (i_ < text_.size() && text_[i_] >= '0' && text_[i_] <= '9') advance();
        t.kind = SchemaTokKind::Number;
        t.text = std::string(text_.substr(start, i_ - start));
      } else if (c == '"') {
        t.kind = SchemaTokKind::String;
        t.text = lexString(t.loc);
      } else if (c == ':' && i_ + 1 < text_.size() && text_[i_ + 1] == ':') {
        t.kind = SchemaTokKind::Punct;
        t.text = "::";
        advance();
        advance();
      } else if (std::string_view(",;:{}[]<>=?@()").find(c) != std::string_view::npos) {
        t.kind = SchemaTokKind::Punct;
        t.text = std::string(1, c);
        advance();
      } else {
        throw InputError(std::string(file_), t.loc, "unexpected character `" + currentChar() + "`");
      }
      tokens.push_back(std::move(t));
    }
  }

 private:
  static bool isWordChar(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  }

  SourceLoc here() const { return SourceLoc{line_, column_}; }

  /// Moves past one byte, counting lines and (code point) columns.
  void advance() {
    char c = text_[i_++];
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++column_;
    }
  }

  std::string currentChar() const {
    uint32_t cp;
    size_t len = decodeUtf8At(text_, i_, cp);
    return std::string(text_.substr(i_, len == 0 ? 1 : len));
  }

  void skipSpace() {
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (c == '/' && i_ + 1 < text_.size() && text_[i_ + 1] == '/') {
        while (i_ < text_.size() && text_[i_] != '\n' && text_[i_] != '\r') advance();
        continue;
      }
      uint32_t cp;
      size_t len = decodeUtf8At(text_, i_, cp);
      if (len == 0) throw InputError(std::string(file_), here(), "invalid UTF-8");
      if (!isUnicodeSpace(cp)) return;
      for (size_t k = 0; k < len; ++k) advance();
    }
  }

  /// Lexes `"(\\.|[^"\\])*"` (where `.` is any character but a newline) and decodes it.
  std::string lexString(SourceLoc start) {
    advance();  // opening quote
    size_t bodyStart = i_;
    while (true) {
      if (i_ >= text_.size()) throw InputError(std::string(file_), start, "unterminated string literal");
      char c = text_[i_];
      if (c == '"') break;
      if (c == '\\') {
        advance();
        if (i_ >= text_.size() || text_[i_] == '\n') {
          throw InputError(std::string(file_), start, "unterminated string literal");
        }
      }
      uint32_t cp;
      size_t len = decodeUtf8At(text_, i_, cp);
      if (len == 0) throw InputError(std::string(file_), here(), "invalid UTF-8");
      for (size_t k = 0; k < len; ++k) advance();
    }
    std::string_view body = text_.substr(bodyStart, i_ - bodyStart);
    advance();  // closing quote
    // The schema grammar's strings take exactly the policy grammar's escapes.
    std::optional<std::string> out = unescapeCedarString(body);
    if (!out) throw InputError(std::string(file_), start, "invalid escape sequence in string literal");
    return *std::move(out);
  }

  std::string_view text_;
  std::string_view file_;
  size_t i_ = 0;
  uint32_t line_ = 1;
  uint32_t column_ = 1;
};

/// Recursive descent over the tokens; recursion only follows type nesting, bounded by
/// kMaxNestingDepth.
class SchemaTextParser {
 public:
  SchemaTextParser(std::vector<SchemaToken> tokens, std::string_view file) : toks_(std::move(tokens)), file_(file) {}

  RawSchema run() {
    RawSchema schema;
    RawNamespace empty;
    bool haveEmpty = false;
    while (peek().kind != SchemaTokKind::End) {
      parseAnnotations();
      if (isWord("namespace")) {
        schema.namespaces.push_back(parseNamespace());
      } else {
        if (!haveEmpty) empty.origin.loc = peek().loc;
        haveEmpty = true;
        parseDecl(empty, true);
      }
    }
    if (haveEmpty) schema.namespaces.push_back(std::move(empty));
    return schema;
  }

 private:
  // ---- token helpers ----

  const SchemaToken& peek(size_t ahead = 0) const {
    size_t k = pos_ + ahead;
    return k < toks_.size() ? toks_[k] : toks_.back();
  }
  const SchemaToken& next() {
    const SchemaToken& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool isWord(std::string_view w, size_t ahead = 0) const {
    return peek(ahead).kind == SchemaTokKind::Ident && peek(ahead).text == w;
  }
  bool isPunct(std::string_view p, size_t ahead = 0) const {
    return peek(ahead).kind == SchemaTokKind::Punct && peek(ahead).text == p;
  }
  bool acceptPunct(std::string_view p) {
    if (!isPunct(p)) return false;
    next();
    return true;
  }
  bool acceptWord(std::string_view w) {
    if (!isWord(w)) return false;
    next();
    return true;
  }

  static std::string describeToken(const SchemaToken& t) {
    switch (t.kind) {
      case SchemaTokKind::Ident: return "`" + t.text + "`";
      case SchemaTokKind::String: return "a string literal";
      case SchemaTokKind::Number: return "the number `" + t.text + "`";
      case SchemaTokKind::Punct: return "`" + t.text + "`";
      case SchemaTokKind::End: return "the end of the input";
    }
    return "?";
  }

  [[noreturn]] void expected(const std::string& what) const {
    throw InputError(std::string(file_), peek().loc, "expected " + what + ", found " + describeToken(peek()));
  }

  void expectPunct(std::string_view p) {
    if (!acceptPunct(p)) expected("`" + std::string(p) + "`");
  }

  static Origin originOf(const SchemaToken& t) { return Origin{t.loc, {}}; }

  // ---- names ----

  /// An identifier that is not a reserved word.
  std::string parseIdent(const std::string& what) {
    if (peek().kind != SchemaTokKind::Ident) expected(what);
    if (isReservedWord(peek().text)) {
      throw InputError(std::string(file_), peek().loc,
                       "`" + peek().text + "` is a reserved identifier and cannot be used as " + what);
    }
    return next().text;
  }

  /// Name := Ident | STR
  std::string parseName(const std::string& what) {
    if (peek().kind == SchemaTokKind::String) return next().text;
    return parseIdent(what);
  }

  /// Path := Ident {'::' Ident}; stops before a `::` that is not followed by an identifier.
  std::string parsePath(const std::string& what) {
    std::string path = parseIdent(what);
    while (isPunct("::") && peek(1).kind == SchemaTokKind::Ident) {
      next();
      path += "::" + parseIdent("a name component");
    }
    return path;
  }

  /// Annotation := '@' AnyIdent ['(' STR ')'], repeated; keys must be distinct. Annotations
  /// are checked and dropped: nothing in this engine reads schema annotations.
  void parseAnnotations() {
    std::set<std::string> keys;
    while (isPunct("@")) {
      next();
      if (peek().kind != SchemaTokKind::Ident) expected("an annotation name");
      const SchemaToken& key = next();
      if (!keys.insert(key.text).second) {
        throw InputError(std::string(file_), key.loc, "duplicate annotation `@" + key.text + "`");
      }
      if (acceptPunct("(")) {
        if (peek().kind != SchemaTokKind::String) expected("a string literal");
        next();
        expectPunct(")");
      }
    }
  }

  // ---- declarations ----

  RawNamespace parseNamespace() {
    next();  // `namespace`
    RawNamespace ns;
    ns.origin = originOf(peek());
    ns.name = parsePath("a namespace name");
    expectPunct("{");
    while (!isPunct("}")) {
      if (peek().kind == SchemaTokKind::End) expected("`}`");
      parseAnnotations();
      parseDecl(ns, false);
    }
    next();
    return ns;
  }

  void parseDecl(RawNamespace& ns, bool topLevel) {
    if (acceptWord("entity")) {
      parseEntity(ns);
    } else if (acceptWord("action")) {
      parseAction(ns);
    } else if (acceptWord("type")) {
      parseTypeDecl(ns);
    } else {
      expected(topLevel ? "`namespace`, `entity`, `action` or `type`" : "`entity`, `action`, `type` or `}`");
    }
  }

  /// EntTypes := Path | '[' [Path {',' Path}] ']'
  std::vector<RawTypeRef> parseEntTypes() {
    std::vector<RawTypeRef> refs;
    if (acceptPunct("[")) {
      if (acceptPunct("]")) return refs;
      do {
        Origin o = originOf(peek());
        refs.push_back(RawTypeRef{parsePath("an entity type"), o});
      } while (acceptPunct(","));
      expectPunct("]");
    } else {
      Origin o = originOf(peek());
      refs.push_back(RawTypeRef{parsePath("an entity type or `[`"), o});
    }
    return refs;
  }

  void parseEntity(RawNamespace& ns) {
    std::vector<std::pair<std::string, Origin>> names;
    do {
      Origin o = originOf(peek());
      names.emplace_back(parseIdent("an entity type name"), o);
    } while (acceptPunct(","));
    RawEntityType proto;
    if (acceptWord("enum")) {
      expectPunct("[");
      std::vector<std::string> ids;
      do {
        if (peek().kind != SchemaTokKind::String) expected("a string literal");
        ids.push_back(next().text);
      } while (acceptPunct(","));
      expectPunct("]");
      proto.enumIds = std::move(ids);
    } else {
      if (acceptWord("in")) proto.memberOf = parseEntTypes();
      if (acceptPunct("=")) {
        if (!isPunct("{")) expected("`{`");
        proto.shape = parseRecord(0);
      } else if (isPunct("{")) {
        proto.shape = parseRecord(0);
      }
      if (acceptWord("tags")) proto.tags = parseType(0);
    }
    expectPunct(";");
    for (auto& [name, origin] : names) {
      RawEntityType e = proto;
      e.name = name;
      e.origin = origin;
      ns.entityTypes.push_back(std::move(e));
    }
  }

  /// QualName := Name | Path '::' STR
  RawActionRef parseQualName() {
    RawActionRef ref;
    ref.origin = originOf(peek());
    if (peek().kind == SchemaTokKind::String) {
      ref.id = next().text;
      return ref;
    }
    std::string first = parseIdent("an action name");
    if (!isPunct("::")) {
      ref.id = first;
      return ref;
    }
    std::string path = first;
    while (acceptPunct("::")) {
      if (peek().kind == SchemaTokKind::String) {
        ref.type = path;
        ref.id = next().text;
        return ref;
      }
      path += "::" + parseIdent("a name component or an action id string");
    }
    expected("`::` and an action id string");
  }

  void parseAction(RawNamespace& ns) {
    std::vector<std::pair<std::string, Origin>> names;
    do {
      Origin o = originOf(peek());
      names.emplace_back(parseName("an action name"), o);
    } while (acceptPunct(","));
    RawAction proto;
    if (acceptWord("in")) {
      if (acceptPunct("[")) {
        do {
          proto.memberOf.push_back(parseQualName());
        } while (acceptPunct(","));
        expectPunct("]");
      } else {
        proto.memberOf.push_back(parseQualName());
      }
    }
    if (isWord("appliesTo")) {
      SchemaToken kw = next();
      parseAppliesTo(proto, kw);
    }
    if (acceptWord("attributes")) {
      expectPunct("{");
      if (!isPunct("}")) expected("`}` (action attributes are not supported)");
      next();
    }
    expectPunct(";");
    for (auto& [name, origin] : names) {
      RawAction a = proto;
      a.id = name;
      a.origin = origin;
      ns.actions.push_back(std::move(a));
    }
  }

  void parseAppliesTo(RawAction& action, const SchemaToken& keyword) {
    expectPunct("{");
    bool havePrincipal = false, haveResource = false, haveContext = false;
    if (isPunct("}")) expected("`principal`, `resource` or `context`");
    while (true) {
      const SchemaToken& key = peek();
      if (isWord("principal") || isWord("resource")) {
        bool isPrincipal = key.text == "principal";
        bool& seen = isPrincipal ? havePrincipal : haveResource;
        if (seen) throw InputError(std::string(file_), key.loc, "duplicate `" + key.text + "` in appliesTo");
        seen = true;
        SourceLoc keyLoc = key.loc;
        std::string keyText = key.text;
        next();
        expectPunct(":");
        std::vector<RawTypeRef> refs = parseEntTypes();
        if (refs.empty()) {
          throw InputError(std::string(file_), keyLoc,
                           "`" + keyText + ": []` is not allowed; leave the action without appliesTo instead");
        }
        (isPrincipal ? action.principalTypes : action.resourceTypes) = std::move(refs);
      } else if (isWord("context")) {
        if (haveContext) throw InputError(std::string(file_), key.loc, "duplicate `context` in appliesTo");
        haveContext = true;
        next();
        expectPunct(":");
        if (isPunct("{")) {
          action.context = parseRecord(0);
        } else {
          auto ref = std::make_shared<RawType>();
          ref->kind = RawType::Kind::CommonRef;
          ref->origin = originOf(peek());
          ref->name = parsePath("a record type or a common type name");
          action.context = ref;
        }
      } else {
        expected("`principal`, `resource` or `context`");
      }
      if (acceptPunct(",")) {
        if (isPunct("}")) break;
        continue;
      }
      break;
    }
    expectPunct("}");
    if (!havePrincipal) throw InputError(std::string(file_), keyword.loc, "appliesTo must declare `principal`");
    if (!haveResource) throw InputError(std::string(file_), keyword.loc, "appliesTo must declare `resource`");
  }

  void parseTypeDecl(RawNamespace& ns) {
    RawCommonType c;
    c.origin = originOf(peek());
    c.name = parseIdent("a common type name");
    expectPunct("=");
    c.type = parseType(0);
    expectPunct(";");
    ns.commonTypes.push_back(std::move(c));
  }

  // ---- types ----

  void checkDepth(int depth) const {
    if (depth > kMaxNestingDepth) {
      throw InputError(std::string(file_), peek().loc,
                       "type nested deeper than " + std::to_string(kMaxNestingDepth) + " levels");
    }
  }

  /// Type := Path | 'Set' '<' Type '>' | RecType
  RawTypePtr parseType(int depth) {
    checkDepth(depth);
    if (isPunct("{")) return parseRecord(depth);
    auto t = std::make_shared<RawType>();
    t->origin = originOf(peek());
    if (isWord("Set") && isPunct("<", 1)) {
      next();
      next();
      t->kind = RawType::Kind::Set;
      t->element = parseType(depth + 1);
      expectPunct(">");
      return t;
    }
    if (peek().kind != SchemaTokKind::Ident) expected("a type");
    t->kind = RawType::Kind::EntityOrCommonRef;
    t->name = parsePath("a type name");
    return t;
  }

  /// RecType := '{' [AttrDecl {',' AttrDecl} [',']] '}'
  RawTypePtr parseRecord(int depth) {
    checkDepth(depth);
    auto t = std::make_shared<RawType>();
    t->kind = RawType::Kind::Record;
    t->origin = originOf(peek());
    expectPunct("{");
    while (!isPunct("}")) {
      parseAnnotations();
      RawAttribute a;
      a.name = parseName("an attribute name");
      a.required = !acceptPunct("?");
      expectPunct(":");
      a.type = parseType(depth + 1);
      t->attributes.push_back(std::move(a));
      if (!acceptPunct(",")) break;
    }
    expectPunct("}");
    return t;
  }

  std::vector<SchemaToken> toks_;
  size_t pos_ = 0;
  std::string_view file_;
};

}  // namespace

Schema parseSchemaText(std::string_view text, std::string_view fileName) {
  if (text.size() > kMaxInputBytes) throw InputError(std::string(fileName), {}, "schema text is too large");
  // Cedar reads schema files as UTF-8 text, so any malformed byte (even in a comment) is refused.
  SourceLoc loc{1, 1};
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t len = decodeUtf8At(text, i, cp);
    if (len == 0) throw InputError(std::string(fileName), loc, "invalid UTF-8");
    if (cp == '\n') {
      ++loc.line;
      loc.column = 1;
    } else {
      ++loc.column;
    }
    i += len;
  }
  std::vector<SchemaToken> tokens = SchemaLexer(text, fileName).run();
  RawSchema raw = SchemaTextParser(std::move(tokens), fileName).run();
  return resolveSchema(raw, fileName);
}

}  // namespace govmesh::cedar
