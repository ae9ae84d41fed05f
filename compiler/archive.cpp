#include "compiler/archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "compiler/errors.h"

namespace govmesh::cedar {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, {}, "cannot open file: " + std::string(std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path, {}, "cannot read file");
  return ss.str();
}

void writeFileAtomic(const std::string& path, const std::string& bytes, unsigned mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) throw InputError(path, {}, std::string("cannot write file: ") + std::strerror(errno));
  int err = ::fchmod(fd, static_cast<mode_t>(mode)) == 0 ? 0 : errno;
  for (size_t done = 0; err == 0 && done < bytes.size();) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) err = n < 0 ? errno : EIO;
    else done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw InputError(path, {}, std::string("cannot write file: ") + std::strerror(err));
  }
}

namespace {

std::string gunzip(const std::string& path, size_t maxBytes) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw InputError(path, {}, "cannot open archive");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      throw InputError(path, {}, "corrupt gzip data: " + msg);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > maxBytes) {
      gzclose(f);
      throw InputError(path, {}, "archive larger than " + std::to_string(maxBytes) + " bytes once decompressed");
    }
  }
  gzclose(f);
  return out;
}

// Tar numbers are octal text, NUL- or space-terminated.
size_t octal(const char* p, size_t n) {
  size_t v = 0;
  for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + static_cast<size_t>(p[i] - '0');
  return v;
}

std::string field(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

}  // namespace

std::map<std::string, std::string> readTarGz(const std::string& path, size_t maxBytes) {
  std::string tar = gunzip(path, maxBytes);
  std::map<std::string, std::string> files;
  std::string longName;  // GNU 'L' records carry the next entry's long name
  size_t pos = 0;
  while (pos + 512 <= tar.size()) {
    const char* h = tar.data() + pos;
    if (h[0] == '\0') break;  // end-of-archive block
    size_t size = octal(h + 124, 12);
    char type = h[156];
    std::string name = field(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      std::string prefix = field(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    size_t dataPos = pos + 512;
    if (dataPos + size > tar.size()) throw InputError(path, {}, "truncated tar entry `" + name + "`");
    if (type == 'L') {
      longName = field(tar.data() + dataPos, size);
    } else {
      if (!longName.empty()) name = std::move(longName), longName.clear();
      if (name.rfind("./", 0) == 0) name.erase(0, 2);
      if (type == '0' || type == '\0') files[name] = tar.substr(dataPos, size);
    }
    pos = dataPos + (size + 511) / 512 * 512;
  }
  return files;
}

}  // namespace govmesh::cedar
