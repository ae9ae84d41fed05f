// The Cedar policy language parser: policy text -> AST (compiler/ast.h).
//
// Follows Cedar's grammar (cedar-policy/cedar grammar.lalrpop and the Lean spec): scopes with
// `==`, `in`, `is`, `is ... in`, `action in [...]`, `when`/`unless`, annotations, templates
// with ?principal/?resource, every operator, literal, string escape and extension function.
// Errors are InputError with file, line and column and what was expected.
#pragma once

#include <string_view>

#include "compiler/ast.h"
#include "compiler/errors.h"

namespace govmesh::cedar {

/// Parses a file of policies and templates. Each is named "policy<i>" by its position.
/// Throws InputError on any syntax error, on nesting deeper than kMaxNestingDepth and on text
/// larger than kMaxInputBytes.
PolicySet parsePolicies(std::string_view text, std::string_view fileName);

/// Parses one expression (used by tests and the CLI).
ExprPtr parseExpression(std::string_view text, std::string_view fileName);

/// Parses an entity reference such as `User::"alice"` or `A::B::"x"`.
EntityUid parseEntityUid(std::string_view text, std::string_view what);

/// Decodes the body of a Cedar string literal (between the quotes) with Cedar's escapes
/// (\n \r \t \\ \0 \' \" \u{XXXXXX}); nullopt when an escape is invalid.
std::optional<std::string> unescapeCedarString(std::string_view body);

}  // namespace govmesh::cedar
