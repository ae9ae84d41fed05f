// GOVMESH_HD marks functions compiled for both the CPU and the GPU: the per-element logic of
// every kernel, so that CPU tests exercise the very code the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define GOVMESH_HD __host__ __device__
#else
#define GOVMESH_HD
#endif
