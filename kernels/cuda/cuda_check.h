// GOVMESH_CUDA_CHECK: every CUDA runtime call is checked (STYLE.md, "Errors"). On failure the
// calling function returns false after clearing the sticky error, so its caller falls back to
// the CPU or denies: a CUDA fault never turns into an allow.
#pragma once

#include <cuda_runtime.h>

#define GOVMESH_CUDA_CHECK(call)  \
  do {                            \
    if ((call) != cudaSuccess) {  \
      cudaGetLastError();         \
      return false;               \
    }                             \
  } while (0)
