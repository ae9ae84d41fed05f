// Reading files of a .tar.gz archive into memory (used to run the Cedar corpus in place,
// without extracting it to disk).
#pragma once

#include <map>
#include <string>

namespace govmesh::cedar {

/// Every regular file of a gzip-compressed ustar/GNU tar archive, by path inside the archive
/// (a leading "./" removed). Throws InputError naming the archive when it is not a valid
/// .tar.gz or would exceed `maxBytes` once decompressed.
std::map<std::string, std::string> readTarGz(const std::string& path, size_t maxBytes = size_t{2} << 30);

/// Reads a whole file; throws InputError naming the file when it cannot be read.
std::string readFile(const std::string& path);

/// Writes `bytes` to `path` through a temporary file and a rename, so that a reader never sees
/// half a file, with permission bits `mode` applied by fchmod (the umask cannot widen a private
/// key's). Throws InputError naming the file when it cannot be written.
void writeFileAtomic(const std::string& path, const std::string& bytes, unsigned mode);

}  // namespace govmesh::cedar
