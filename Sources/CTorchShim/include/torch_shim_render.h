/*
 * torch_shim_render.h: Gaussian splat rasterization on the GPU (gsplat 1.5.3 `rasterization` in classic mode,
 * RGB, packed=False, as the subnet-17 validator calls it). Conventions as in torch_shim.h.
 */
#ifndef TORCH_SHIM_RENDER_H
#define TORCH_SHIM_RENDER_H

#include <stdint.h>

#include "torch_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when libtorchshim holds the CUDA rasterization kernels (cuda/rasterize.cu compiled with nvcc). */
int ts_render_has_cuda_kernels(void);

/*
 * Draws N Gaussians from C pinhole cameras in one launch sequence, all on the GPU.
 *   means [N,3], quats [N,4] (w,x,y,z; normalised again here), scales [N,3] (activated), opacities [N] (activated),
 *   colors [N,3], viewmats [C,4,4] (world-to-camera, row-major, camera looks along +Z, +Y down),
 *   Ks [C,3,3] (pixel intrinsics), background [3]: floating tensors on ONE CUDA device (converted to float32).
 *   width, height: image size in pixels (1..16384); Gaussians with camera z outside [near, far] are culled.
 * Returns the composited colour [C,H,W,3] float32 (background blended, not clipped); *alpha_out (when non-NULL)
 * gets the accumulated opacity [C,H,W]. Kernel faults after a successful launch surface at the next sync.
 * Without the kernels the call fails with "... built without CUDA ...".
 */
ts_tensor ts_render_gaussians(ts_tensor means, ts_tensor quats, ts_tensor scales, ts_tensor opacities,
                              ts_tensor colors, ts_tensor viewmats, ts_tensor Ks, int64_t width, int64_t height,
                              double near_plane, double far_plane, ts_tensor background, ts_tensor *alpha_out,
                              char **err);

#ifdef __cplusplus
}
#endif
#endif
