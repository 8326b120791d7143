import CTorchShim

/// Gaussian splat rasterization on the GPU (the shim's CUDA kernels: gsplat 1.5.3 `rasterization` in classic mode,
/// RGB, packed=False).
public enum GaussianRasterization {
    /// Whether libtorchshim holds the CUDA rasterization kernels (a CUDA build compiled with nvcc).
    public static var hasCUDAKernels: Bool { ts_render_has_cuda_kernels() != 0 }

    /// Draws `means.size(0)` Gaussians from `viewmats.size(0)` cameras in one launch sequence.
    ///
    /// - Parameters:
    ///   - means: [N, 3] world positions.
    ///   - quats: [N, 4] rotations (w, x, y, z), normalised again inside.
    ///   - scales: [N, 3] activated (linear) scales.
    ///   - opacities: [N] activated opacities.
    ///   - colors: [N, 3] RGB.
    ///   - viewmats: [C, 4, 4] world-to-camera matrices, row-major; the camera looks along +Z with +Y down.
    ///   - intrinsics: [C, 3, 3] pixel intrinsics.
    ///   - background: [3] colour blended in with the remaining transmittance.
    ///   All on one CUDA device, any floating dtype (computed in float32).
    /// - Returns: colour [C, H, W, 3] float32 (not clipped) and alpha [C, H, W], on the inputs' device.
    public static func render(means: Tensor, quats: Tensor, scales: Tensor, opacities: Tensor, colors: Tensor,
                              viewmats: Tensor, intrinsics: Tensor, width: Int, height: Int,
                              near: Double, far: Double, background: Tensor) throws -> (rgb: Tensor, alpha: Tensor) {
        var alphaHandle: OpaquePointer? = nil
        let rgb = try tensorCall {
            ts_render_gaussians(means.handle, quats.handle, scales.handle, opacities.handle, colors.handle,
                                viewmats.handle, intrinsics.handle, Int64(width), Int64(height), near, far,
                                background.handle, &alphaHandle, $0)
        }
        guard let alphaHandle else { throw TorchError("ts_render_gaussians returned no alpha") }
        return (rgb, Tensor(handle: alphaHandle))
    }
}
