// The Cedar policy lexer: text -> tokens, plus the decoding of string literal bodies.
//
// Mirrors the token set of Cedar's grammar (cedar-policy-core/src/parser/grammar.lalrpop):
// whitespace is Unicode White_Space, comments run from `//` to the end of the line,
// identifiers are ASCII `[_a-zA-Z][_a-zA-Z0-9]*` (keywords are identifiers here; the parser
// tells them apart by text), numbers are unsigned decimal (a leading '-' is an operator), and
// string literals are `"` ... `"` where a backslash escapes any character but a newline.
// Escapes inside a literal are only checked when the parser decodes it, as in Cedar.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ast.h"

namespace govmesh::cedar {

/// Token kinds. Words (identifiers and keywords alike) are `Ident`.
enum class Tok : uint8_t {
  End,         // end of input
  Ident,       // `text` is the word
  Number,      // `number` holds the value (always fits in uint64)
  String,      // `text` is the raw body between the quotes, escapes undecoded
  Slot,        // `text` is the name after '?': "principal", "resource" or anything else
  At, Dot, Comma, Semi, Colon, ColonColon,
  LParen, RParen, LBrace, RBrace, LBracket, RBracket,
  EqEq, NotEq, Lt, Le, Gt, Ge, OrOr, AndAnd,
  Plus, Minus, Star, Slash, Percent, Bang,
  Eq,          // a single '=': never valid Cedar, kept so that the parser can say so
};

/// One token. `text` points into the lexed source, which must outlive the token.
struct Token {
  Tok kind = Tok::End;
  std::string_view text;
  uint64_t number = 0;
  SourceLoc loc;
};

/// Human-readable description of a token for error messages ("`foo`", "end of input", ...).
std::string describeToken(const Token& t);

/// Produces tokens one at a time. Throws InputError on characters no token starts with,
/// malformed UTF-8, unterminated strings and integer literals beyond uint64.
class Lexer {
 public:
  /// `text` must outlive the lexer and every token it returns.
  Lexer(std::string_view text, std::string_view fileName);
  /// The next token; `Tok::End` (repeatedly) once the input is exhausted.
  Token next();

 private:
  [[noreturn]] void fail(SourceLoc loc, const std::string& message) const;
  /// Decodes the code point at pos_ (validating UTF-8); sets `len` to its byte length.
  char32_t peekCodePoint(size_t& len) const;
  /// Moves past `n` bytes, keeping line and column (columns count code points).
  void advance(size_t n);
  void skipTrivia();
  Token lexString(SourceLoc start);
  Token lexNumber(SourceLoc start);

  std::string_view text_;
  std::string file_;
  size_t pos_ = 0;
  uint32_t line_ = 1;
  uint32_t column_ = 1;
};

/// Decodes the body of a `like` pattern literal: Cedar's string escapes, where an unescaped
/// `*` (or any escape decoding to `*`, such as `\u{2a}`) is a wildcard and `\*` is a literal
/// star. nullopt when an escape is invalid.
std::optional<std::vector<PatternElem>> unescapeCedarPattern(std::string_view body);

/// Appends the UTF-8 encoding of the Unicode scalar `c` to `out`.
void appendUtf8(std::string& out, char32_t c);

}  // namespace govmesh::cedar
