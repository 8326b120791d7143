// C ABI of the Gaussian rasterizer: checks and converts the inputs, then runs the CUDA kernels of
// cuda/rasterize.cu. Those are compiled only where nvcc and a CUDA libtorch exist (scripts/build-shim.sh defines
// SHIM_CUDA_KERNELS then); elsewhere the call reports that the shim was built without them.
#include "shim_internal.h"

#include "../include/torch_shim_render.h"

#ifdef SHIM_CUDA_KERNELS
#include "../cuda/rasterize.h"
#endif

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

using namespace tsi;

namespace {

#ifdef SHIM_CUDA_KERNELS
std::string describe(const at::Tensor &t) {
    std::string s = "[";
    for (int64_t d = 0; d < t.dim(); d++) s += (d ? "," : "") + std::to_string(t.size(d));
    return s + "]";
}

// Checks `t` is a floating tensor of `shape` (-1 = any size) on `device`; returns it as contiguous float32.
at::Tensor prepared(const char *name, ts_tensor handle, std::initializer_list<int64_t> shape, const at::Device &device) {
    const at::Tensor &t = T(handle);
    bool ok = t.dim() == static_cast<int64_t>(shape.size());
    int64_t d = 0;
    for (int64_t s : shape) {
        if (ok && s >= 0 && t.size(d) != s) ok = false;
        d++;
    }
    if (!ok) {
        std::string want = "[";
        d = 0;
        for (int64_t s : shape) want += (d++ ? "," : "") + (s < 0 ? std::string("*") : std::to_string(s));
        throw std::invalid_argument(std::string("render: ") + name + " has shape " + describe(t) + ", expected " +
                                    want + "]");
    }
    if (!at::isFloatingType(t.scalar_type()))
        throw std::invalid_argument(std::string("render: ") + name + " must be a floating tensor, got " +
                                    std::string(c10::toString(t.scalar_type())));
    if (t.device() != device)
        throw std::invalid_argument(std::string("render: ") + name + " is on " + t.device().str() +
                                    ", expected every input on " + device.str());
    return t.to(at::kFloat).contiguous();
}

ts_tensor render(ts_tensor means, ts_tensor quats, ts_tensor scales, ts_tensor opacities, ts_tensor colors,
                 ts_tensor viewmats, ts_tensor Ks, int64_t width, int64_t height, double near_plane,
                 double far_plane, ts_tensor background, ts_tensor *alpha_out) {
    const at::Device device = T(means).device();
    if (!device.is_cuda())
        throw std::invalid_argument("render: the inputs must be CUDA tensors, means is on " + device.str());
    const int64_t n = T(means).dim() == 2 ? T(means).size(0) : -1;
    at::Tensor m = prepared("means", means, {n, 3}, device);
    at::Tensor q = prepared("quats", quats, {n, 4}, device);
    at::Tensor s = prepared("scales", scales, {n, 3}, device);
    at::Tensor o = prepared("opacities", opacities, {n}, device);
    at::Tensor c = prepared("colors", colors, {n, 3}, device);
    at::Tensor v = prepared("viewmats", viewmats, {-1, 4, 4}, device);
    const int64_t cameras = v.size(0);
    at::Tensor k = prepared("Ks", Ks, {cameras, 3, 3}, device);
    at::Tensor bg = prepared("background", background, {3}, device);
    if (cameras < 1 || cameras > 65535)
        throw std::invalid_argument("render: between 1 and 65535 cameras per call, got " + std::to_string(cameras));
    if (width < 1 || height < 1 || width > 16384 || height > 16384)
        throw std::invalid_argument("render: image size " + std::to_string(width) + "x" + std::to_string(height) +
                                    " is outside 1..16384");
    if (!(std::isfinite(near_plane) && std::isfinite(far_plane) && near_plane > 0 && far_plane > near_plane))
        throw std::invalid_argument("render: clip planes must satisfy 0 < near < far");
    if (n * cameras > std::numeric_limits<int32_t>::max())
        throw std::invalid_argument("render: " + std::to_string(n) + " Gaussians x " + std::to_string(cameras) +
                                    " cameras exceed 2^31 per call; render fewer cameras at once");
    auto out = tsr::rasterize_gaussians_cuda(
        m, q, s, o, c, v, k, bg,
        tsr::RasterizeOptions{width, height, static_cast<float>(near_plane), static_cast<float>(far_plane)});
    ts_tensor rgb = wrap(std::move(out.first));
    if (alpha_out) *alpha_out = wrap(std::move(out.second));
    return rgb;
}
#else
ts_tensor render(ts_tensor, ts_tensor, ts_tensor, ts_tensor, ts_tensor, ts_tensor, ts_tensor, int64_t, int64_t, double,
                 double, ts_tensor, ts_tensor *) {
#ifdef SHIM_WITH_CUDA
    throw std::runtime_error("the CUDA rasterizer is unavailable: libtorchshim was built without its CUDA kernels "
                             "(no nvcc when scripts/build-shim.sh ran)");
#else
    throw std::runtime_error("the CUDA rasterizer is unavailable: libtorchshim was built without CUDA");
#endif
}
#endif

} // namespace

extern "C" {

int ts_render_has_cuda_kernels(void) {
#ifdef SHIM_CUDA_KERNELS
    return 1;
#else
    return 0;
#endif
}

ts_tensor ts_render_gaussians(ts_tensor means, ts_tensor quats, ts_tensor scales, ts_tensor opacities,
                              ts_tensor colors, ts_tensor viewmats, ts_tensor Ks, int64_t width, int64_t height,
                              double near_plane, double far_plane, ts_tensor background, ts_tensor *alpha_out,
                              char **err) {
    TS_GUARD(nullptr, return render(means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane,
                                    far_plane, background, alpha_out);)
}

} // extern "C"
