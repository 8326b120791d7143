// Internal interface between cxx/render.cpp (the C ABI, compiled by g++) and cuda/rasterize.cu (the kernels,
// compiled by nvcc). Only ATen's core tensor type crosses it, so neither side needs the other's headers.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

namespace tsr {

struct RasterizeOptions {
    int64_t width;
    int64_t height;
    float near_plane;
    float far_plane;
};

// Every tensor contiguous float32 on one CUDA device with the shapes of ts_render_gaussians (checked by the
// caller). Returns colour [C,H,W,3] and alpha [C,H,W]; throws std::runtime_error on a CUDA failure.
std::pair<at::Tensor, at::Tensor> rasterize_gaussians_cuda(const at::Tensor &means, const at::Tensor &quats,
                                                           const at::Tensor &scales, const at::Tensor &opacities,
                                                           const at::Tensor &colors, const at::Tensor &viewmats,
                                                           const at::Tensor &Ks, const at::Tensor &background,
                                                           const RasterizeOptions &options);

} // namespace tsr
