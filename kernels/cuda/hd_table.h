// Constant tables readable from GOVMESH_HD code. A namespace-scope array is host memory, which
// device code cannot read, and nvcc lets device code use only *scalar* constexpr variables; so
// under nvcc each table exists twice (a host copy and a device copy from the same initializer),
// and GOVMESH_HD_TABLE_REF picks the copy of the side being compiled.
#pragma once

#include "kernels/cuda/host_device.h"

#if defined(__CUDACC__)
/// Defines `static constexpr Type nameHost[]` and `static <space> const Type nameDevice[]` with
/// one initializer; `space` is __constant__ (lanes read the same entry at once, e.g. round
/// constants) or __device__ (lanes read different entries, e.g. point tables).
#define GOVMESH_HD_TABLE(Type, name, space, ...)        \
  static constexpr Type name##Host[] = __VA_ARGS__;     \
  static space const Type name##Device[] = __VA_ARGS__
#else
#define GOVMESH_HD_TABLE(Type, name, space, ...) static constexpr Type name##Host[] = __VA_ARGS__
#endif

#if defined(__CUDA_ARCH__)
/// The copy of table `name` that the code being compiled (host or device) can read.
#define GOVMESH_HD_TABLE_REF(name) name##Device
#else
#define GOVMESH_HD_TABLE_REF(name) name##Host
#endif
