#include "compiler/errors.h"

namespace govmesh::cedar {

namespace {
std::string render(const std::string& file, SourceLoc loc, const std::string& message) {
  std::string s = file.empty() ? std::string("<input>") : file;
  if (loc.line > 0) s += ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
  return s + ": " + message;
}
}  // namespace

InputError::InputError(std::string file, SourceLoc loc, std::string message)
    : std::runtime_error(render(file, loc, message)), file_(std::move(file)), loc_(loc), message_(std::move(message)) {}

}  // namespace govmesh::cedar
