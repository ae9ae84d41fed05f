// The Cedar lexer and the decoding of string literal bodies (see lexer.h).
#include "compiler/lexer.h"

#include "compiler/errors.h"
#include "compiler/parser.h"

namespace govmesh::cedar {

namespace {

bool isIdentStart(unsigned char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isIdentChar(unsigned char c) { return isIdentStart(c) || (c >= '0' && c <= '9'); }
bool isDigit(unsigned char c) { return c >= '0' && c <= '9'; }

// Cedar's lexer skips `\s`, which in Rust's regex is the Unicode White_Space property.
bool isUnicodeWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Decodes one UTF-8 sequence at s[pos]; returns false when malformed (overlong forms,
// surrogates and values beyond U+10FFFF included).
bool decodeUtf8(std::string_view s, size_t pos, char32_t& cp, size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    cp = b0;
    len = 1;
    return true;
  }
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return false;
  }
  if (pos + len > s.size()) return false;
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (b & 0x3F);
  }
  return cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

int hexValue(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// One decoded element of a string body: a character, or the `\*` escape (which only `like`
// patterns accept; Cedar's unescaper reports it as an invalid escape and the pattern decoder
// recovers it).
struct Piece {
  char32_t c = 0;
  bool escapedStar = false;
};

// Decodes a string body with the escapes of the rustc_lexer 0.1 crate that Cedar uses
// (`unescape_str`): \n \r \t \\ \0 \' \" \xHH (at most 0x7F) \u{1-6 hex digits, '_' allowed
// after the first}, and backslash-newline skipping the following ASCII whitespace. A raw
// carriage return or a raw double quote is an error. Calls `emit` per piece; false on error.
template <class Emit>
bool decodeBody(std::string_view s, Emit&& emit) {
  size_t i = 0;
  auto next = [&](char32_t& c) -> bool {
    if (i >= s.size()) return false;
    size_t len;
    if (!decodeUtf8(s, i, c, len)) return false;
    i += len;
    return true;
  };
  while (i < s.size()) {
    char32_t c;
    if (!next(c)) return false;
    if (c == '\r' || c == '"') return false;
    if (c != '\\') {
      emit(Piece{c, false});
      continue;
    }
    if (i < s.size() && s[i] == '\n') {
      while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
      continue;
    }
    char32_t e;
    if (!next(e)) return false;  // a lone backslash
    switch (e) {
      case '"': emit(Piece{'"', false}); break;
      case 'n': emit(Piece{'\n', false}); break;
      case 'r': emit(Piece{'\r', false}); break;
      case 't': emit(Piece{'\t', false}); break;
      case '\\': emit(Piece{'\\', false}); break;
      case '\'': emit(Piece{'\'', false}); break;
      case '0': emit(Piece{0, false}); break;
      case '*': emit(Piece{'*', true}); break;
      case 'x': {
        char32_t h, l;
        if (!next(h) || !next(l)) return false;
        const int hv = hexValue(h), lv = hexValue(l);
        if (hv < 0 || lv < 0 || hv * 16 + lv > 0x7F) return false;
        emit(Piece{static_cast<char32_t>(hv * 16 + lv), false});
        break;
      }
      case 'u': {
        char32_t d;
        if (!next(d) || d != '{') return false;
        if (!next(d) || d == '_' || d == '}' || hexValue(d) < 0) return false;
        uint32_t value = static_cast<uint32_t>(hexValue(d));
        int digits = 1;
        for (;;) {
          if (!next(d)) return false;
          if (d == '_') continue;
          if (d == '}') break;
          const int v = hexValue(d);
          if (v < 0) return false;
          if (++digits <= 6) value = value * 16 + static_cast<uint32_t>(v);
        }
        if (digits > 6 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return false;
        emit(Piece{value, false});
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

std::string_view tokSpelling(Tok k) {
  switch (k) {
    case Tok::At: return "@";
    case Tok::Dot: return ".";
    case Tok::Comma: return ",";
    case Tok::Semi: return ";";
    case Tok::Colon: return ":";
    case Tok::ColonColon: return "::";
    case Tok::LParen: return "(";
    case Tok::RParen: return ")";
    case Tok::LBrace: return "{";
    case Tok::RBrace: return "}";
    case Tok::LBracket: return "[";
    case Tok::RBracket: return "]";
    case Tok::EqEq: return "==";
    case Tok::NotEq: return "!=";
    case Tok::Lt: return "<";
    case Tok::Le: return "<=";
    case Tok::Gt: return ">";
    case Tok::Ge: return ">=";
    case Tok::OrOr: return "||";
    case Tok::AndAnd: return "&&";
    case Tok::Plus: return "+";
    case Tok::Minus: return "-";
    case Tok::Star: return "*";
    case Tok::Slash: return "/";
    case Tok::Percent: return "%";
    case Tok::Bang: return "!";
    case Tok::Eq: return "=";
    default: return "";
  }
}

}  // namespace

void appendUtf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::optional<std::string> unescapeCedarString(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  bool escapedStar = false;  // `\*` is only an escape inside `like` patterns
  const bool ok = decodeBody(body, [&](Piece p) {
    escapedStar = escapedStar || p.escapedStar;
    appendUtf8(out, p.c);
  });
  if (!ok || escapedStar) return std::nullopt;
  return out;
}

std::optional<std::vector<PatternElem>> unescapeCedarPattern(std::string_view body) {
  std::vector<PatternElem> out;
  bool ok = decodeBody(body, [&](Piece p) {
    PatternElem e;
    if (p.c == '*' && !p.escapedStar) {
      e.wildcard = true;
    } else {
      appendUtf8(e.literal, p.c);
    }
    out.push_back(std::move(e));
  });
  if (!ok) return std::nullopt;
  return out;
}

std::string describeToken(const Token& t) {
  switch (t.kind) {
    case Tok::End: return "end of input";
    case Tok::Ident: return "`" + std::string(t.text) + "`";
    case Tok::Number: return "`" + std::string(t.text) + "`";
    case Tok::String: return "string literal";
    case Tok::Slot: return "`?" + std::string(t.text) + "`";
    default: return "`" + std::string(tokSpelling(t.kind)) + "`";
  }
}

Lexer::Lexer(std::string_view text, std::string_view fileName) : text_(text), file_(fileName) {}

void Lexer::fail(SourceLoc loc, const std::string& message) const { throw InputError(file_, loc, message); }

char32_t Lexer::peekCodePoint(size_t& len) const {
  char32_t cp;
  if (!decodeUtf8(text_, pos_, cp, len)) fail({line_, column_}, "invalid UTF-8 in input");
  return cp;
}

void Lexer::advance(size_t n) {
  for (size_t end = pos_ + n; pos_ < end; ++pos_) {
    const auto b = static_cast<unsigned char>(text_[pos_]);
    if (b == '\n') {
      ++line_;
      column_ = 1;
    } else if ((b & 0xC0) != 0x80) {
      ++column_;
    }
  }
}

void Lexer::skipTrivia() {
  while (pos_ < text_.size()) {
    const auto b = static_cast<unsigned char>(text_[pos_]);
    if (b == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
      size_t end = pos_;
      while (end < text_.size() && text_[end] != '\n' && text_[end] != '\r') ++end;
      // Comments may hold any text, but it must still be UTF-8 like the rest of the input.
      for (size_t p = pos_; p < end;) {
        char32_t cp;
        size_t len;
        if (!decodeUtf8(text_, p, cp, len)) fail({line_, column_}, "invalid UTF-8 in comment");
        p += len;
      }
      advance(end - pos_);
      continue;
    }
    if (b < 0x80) {
      if (!isUnicodeWhitespace(b)) return;
      advance(1);
      continue;
    }
    size_t len;
    const char32_t cp = peekCodePoint(len);
    if (!isUnicodeWhitespace(cp)) return;
    advance(len);
  }
}

Token Lexer::lexString(SourceLoc start) {
  const size_t open = pos_;
  advance(1);
  while (true) {
    if (pos_ >= text_.size()) fail(start, "unterminated string literal");
    const char c = text_[pos_];
    if (c == '"') break;
    if (c == '\\') {
      // Cedar's string token is `"(\\.|[^"\\])*"`, and `.` does not match a newline.
      if (pos_ + 1 >= text_.size()) fail(start, "unterminated string literal");
      if (text_[pos_ + 1] == '\n') fail({line_, column_}, "invalid string literal: backslash before a newline");
      advance(1);
    }
    size_t len;
    peekCodePoint(len);
    advance(len);
  }
  Token t;
  t.kind = Tok::String;
  t.text = text_.substr(open + 1, pos_ - open - 1);
  t.loc = start;
  advance(1);
  return t;
}

Token Lexer::lexNumber(SourceLoc start) {
  const size_t begin = pos_;
  uint64_t value = 0;
  bool overflow = false;
  while (pos_ < text_.size() && isDigit(static_cast<unsigned char>(text_[pos_]))) {
    const uint64_t d = static_cast<uint64_t>(text_[pos_] - '0');
    if (value > (UINT64_MAX - d) / 10) overflow = true;
    value = value * 10 + d;
    advance(1);
  }
  if (overflow) fail(start, "integer literal `" + std::string(text_.substr(begin, pos_ - begin)) + "` is too large");
  Token t;
  t.kind = Tok::Number;
  t.text = text_.substr(begin, pos_ - begin);
  t.number = value;
  t.loc = start;
  return t;
}

Token Lexer::next() {
  skipTrivia();
  Token t;
  t.loc = {line_, column_};
  if (pos_ >= text_.size()) return t;
  const auto c = static_cast<unsigned char>(text_[pos_]);
  const char n = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
  if (c == '"') return lexString(t.loc);
  if (isDigit(c)) return lexNumber(t.loc);
  if (isIdentStart(c) || (c == '?' && isIdentStart(static_cast<unsigned char>(n)))) {
    const size_t begin = c == '?' ? pos_ + 1 : pos_;
    size_t end = begin + 1;
    while (end < text_.size() && isIdentChar(static_cast<unsigned char>(text_[end]))) ++end;
    t.kind = c == '?' ? Tok::Slot : Tok::Ident;
    t.text = text_.substr(begin, end - begin);
    advance(end - pos_);
    return t;
  }
  auto one = [&](Tok k) {
    t.kind = k;
    advance(1);
    return t;
  };
  auto two = [&](Tok k) {
    t.kind = k;
    advance(2);
    return t;
  };
  switch (c) {
    case '@': return one(Tok::At);
    case '.': return one(Tok::Dot);
    case ',': return one(Tok::Comma);
    case ';': return one(Tok::Semi);
    case '(': return one(Tok::LParen);
    case ')': return one(Tok::RParen);
    case '{': return one(Tok::LBrace);
    case '}': return one(Tok::RBrace);
    case '[': return one(Tok::LBracket);
    case ']': return one(Tok::RBracket);
    case '+': return one(Tok::Plus);
    case '-': return one(Tok::Minus);
    case '*': return one(Tok::Star);
    case '/': return one(Tok::Slash);
    case '%': return one(Tok::Percent);
    case ':': return n == ':' ? two(Tok::ColonColon) : one(Tok::Colon);
    case '=': return n == '=' ? two(Tok::EqEq) : one(Tok::Eq);
    case '!': return n == '=' ? two(Tok::NotEq) : one(Tok::Bang);
    case '<': return n == '=' ? two(Tok::Le) : one(Tok::Lt);
    case '>': return n == '=' ? two(Tok::Ge) : one(Tok::Gt);
    case '|':
      if (n == '|') return two(Tok::OrOr);
      break;
    case '&':
      if (n == '&') return two(Tok::AndAnd);
      break;
    default:
      break;
  }
  size_t len;
  const char32_t cp = peekCodePoint(len);
  std::string shown;
  appendUtf8(shown, cp);
  fail(t.loc, "unexpected character `" + shown + "`");
}

}  // namespace govmesh::cedar
