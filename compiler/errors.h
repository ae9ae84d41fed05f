// Errors for bad input (as opposed to bugs): each names what was wrong and where.
#pragma once

#include <stdexcept>
#include <string>

#include "compiler/ast.h"

namespace govmesh::cedar {

/// Bad input in a file or string: policy text, schema, entities JSON, a request.
/// `what()` reads "FILE:LINE:COLUMN: MESSAGE" (line and column omitted when unknown).
class InputError : public std::runtime_error {
 public:
  InputError(std::string file, SourceLoc loc, std::string message);
  const std::string& file() const { return file_; }
  SourceLoc loc() const { return loc_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  SourceLoc loc_;
  std::string message_;
};

/// Input nesting deeper than this (expressions, JSON values, schema types) is refused with an
/// InputError instead of risking the stack.
inline constexpr int kMaxNestingDepth = 200;
/// Input text larger than this is refused with an InputError.
inline constexpr size_t kMaxInputBytes = size_t{256} << 20;

}  // namespace govmesh::cedar
