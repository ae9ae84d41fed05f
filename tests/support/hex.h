// Hex decoding for test data (vectors, expected digests): strict, since test data that does not
// parse is a broken test, not a verdict.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace govmesh::testing {

/// Decodes lower- or upper-case hex; throws std::invalid_argument on an odd length or a non-hex
/// character.
inline std::vector<uint8_t> fromHex(std::string_view hex) {
  auto nibble = [&](char c) -> uint8_t {
    if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return static_cast<uint8_t>(c - 'A' + 10);
    throw std::invalid_argument("bad hex character in \"" + std::string(hex.substr(0, 80)) + "\"");
  };
  if (hex.size() % 2 != 0) throw std::invalid_argument("odd-length hex \"" + std::string(hex.substr(0, 80)) + "\"");
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  return out;
}

}  // namespace govmesh::testing
