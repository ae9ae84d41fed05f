// CUDA device discovery, for backend selection and reports. Built only when GOVMESH_WITH_CUDA.
#pragma once

#include <string>

namespace govmesh::kernels {

/// Number of usable CUDA devices; 0 when there is no driver or no device (never throws).
int cudaDeviceCount();

/// Name and compute capability of device 0, for reports ("NVIDIA H100 80GB HBM3, sm_90").
std::string cudaDeviceDescription();

}  // namespace govmesh::kernels
