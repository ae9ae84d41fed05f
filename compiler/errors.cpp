#include "compiler/errors.h"

namespace govmesh::cedar {

namespace {
std::string render(const std::string& file, SourceLoc loc, const std::string& message) {
  // Built with append() alone: GCC 12 warns falsely (-Wrestrict) on `"literal" + std::string`.
  std::string s = file.empty() ? std::string("<input>") : file;
  if (loc.line > 0) {
    s.append(":").append(std::to_string(loc.line));
    s.append(":").append(std::to_string(loc.column));
  }
  s.append(": ").append(message);
  return s;
}
}  // namespace

InputError::InputError(std::string file, SourceLoc loc, std::string message)
    : std::runtime_error(render(file, loc, message)), file_(std::move(file)), loc_(loc), message_(std::move(message)) {}

}  // namespace govmesh::cedar
