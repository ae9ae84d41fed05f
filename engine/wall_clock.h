// The wall clock as the engine reads it: Unix time in milliseconds (bundle freshness, expiry,
// lineage timestamps) and nanoseconds (request signatures' timestamps). One definition, so that
// every part of the system agrees on what "now" means.
#pragma once

#include <chrono>
#include <cstdint>

namespace govmesh::engine {

/// Milliseconds since the Unix epoch (system clock).
inline int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Nanoseconds since the Unix epoch (system clock).
inline int64_t wallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace govmesh::engine
