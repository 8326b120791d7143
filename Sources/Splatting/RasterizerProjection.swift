import Foundation

/// One Gaussian on the image plane, as gsplat's fused EWA projection writes it.
public struct ProjectedGaussian: Sendable, Equatable {
    /// Centre in pixels; pixel (i, j) has its centre at (j + 0.5, i + 0.5).
    public var mean: SIMD2<Float>
    /// Upper triangle (a, b, c) of the inverse of the dilated 2D covariance.
    public var conic: SIMD3<Float>
    /// Camera-space z of the centre.
    public var depth: Float
    /// Half-size in pixels of the box that holds every pixel the Gaussian can touch.
    public var radius: SIMD2<Int32>
}

/// gsplat 1.5.3 `projection_ewa_3dgs_fused_fwd_kernel` for a pinhole camera, written as a pure function of
/// one Gaussian and one camera so that any backend can share it. Float32 throughout, like the kernel.
public enum GaussianProjection {
    /// Classic-mode dilation added to the 2D covariance diagonal (no opacity compensation).
    public static let eps2d: Float = 0.3
    /// Alpha below this is skipped, and a Gaussian whose opacity is below it is culled.
    public static let alphaThreshold: Float = 1.0 / 255.0
    /// Largest bounding-box half-size in standard deviations.
    public static let maxExtendSigmas: Float = 3.33

    /// - Parameters:
    ///   - rotation: quaternion (w, x, y, z), normalised here again as gsplat does.
    ///   - opacity: activated opacity; it tightens the bounding box (gsplat 1.5 "opacity-aware" radius).
    /// - Returns: nil when gsplat would give the Gaussian radius 0 (culled): outside [near, far],
    ///   degenerate covariance, opacity below 1/255, or wholly off-screen.
    @inline(__always)
    public static func project(position: SIMD3<Float>, scale: SIMD3<Float>, rotation: SIMD4<Float>,
                               opacity: Float, camera: Camera, eps2d: Float = eps2d) -> ProjectedGaussian? {
        let pc = camera.toCamera(position)
        if pc.z < camera.near || pc.z > camera.far { return nil }

        // Rotation matrix columns from the quaternion.
        let invNorm = 1 / (rotation * rotation).sum().squareRoot()
        let w = rotation[0] * invNorm, x = rotation[1] * invNorm, y = rotation[2] * invNorm, z = rotation[3] * invNorm
        let x2 = x * x, y2 = y * y, z2 = z * z
        let xy = x * y, xz = x * z, yz = y * z
        let wx = w * x, wy = w * y, wz = w * z
        let c0 = SIMD3<Float>(1 - 2 * (y2 + z2), 2 * (xy + wz), 2 * (xz - wy))
        let c1 = SIMD3<Float>(2 * (xy - wz), 1 - 2 * (x2 + z2), 2 * (yz + wx))
        let c2 = SIMD3<Float>(2 * (xz + wy), 2 * (yz - wx), 1 - 2 * (x2 + y2))
        // M = R S; world covariance = M M^T (symmetric, kept as six values).
        let m0 = c0 * scale.x, m1 = c1 * scale.y, m2 = c2 * scale.z
        let w00 = m0.x * m0.x + m1.x * m1.x + m2.x * m2.x
        let w01 = m0.x * m0.y + m1.x * m1.y + m2.x * m2.y
        let w02 = m0.x * m0.z + m1.x * m1.z + m2.x * m2.z
        let w11 = m0.y * m0.y + m1.y * m1.y + m2.y * m2.y
        let w12 = m0.y * m0.z + m1.y * m1.z + m2.y * m2.z
        let w22 = m0.z * m0.z + m1.z * m1.z + m2.z * m2.z

        // Camera covariance V R_w R^T: rows of (V R) then times R^T.
        let (r0, r1, r2) = camera.rotationRows
        let sr0 = SIMD3<Float>(w00, w01, w02), sr1 = SIMD3<Float>(w01, w11, w12), sr2 = SIMD3<Float>(w02, w12, w22)
        @inline(__always) func vs(_ r: SIMD3<Float>) -> SIMD3<Float> { sr0 * r.x + sr1 * r.y + sr2 * r.z }
        let a0 = vs(r0), a1 = vs(r1), a2 = vs(r2)
        let v00 = (a0 * r0).sum(), v01 = (a0 * r1).sum(), v02 = (a0 * r2).sum()
        let v11 = (a1 * r1).sum(), v12 = (a1 * r2).sum(), v22 = (a2 * r2).sum()

        // Perspective Jacobian with the centre clamped to 1.3x the frustum (gsplat persp_proj).
        let fx = camera.fx, fy = camera.fy, cx = camera.cx, cy = camera.cy
        let width = Float(camera.width), height = Float(camera.height)
        let tanFovX = 0.5 * width / fx
        let tanFovY = 0.5 * height / fy
        let limXPos = (width - cx) / fx + 0.3 * tanFovX
        let limXNeg = cx / fx + 0.3 * tanFovX
        let limYPos = (height - cy) / fy + 0.3 * tanFovY
        let limYNeg = cy / fy + 0.3 * tanFovY
        let rz = 1 / pc.z
        let rz2 = rz * rz
        let tx = pc.z * min(limXPos, max(-limXNeg, pc.x * rz))
        let ty = pc.z * min(limYPos, max(-limYNeg, pc.y * rz))
        let j00 = fx * rz, j02 = -fx * tx * rz2
        let j11 = fy * rz, j12 = -fy * ty * rz2
        // cov2d = J V J^T with J = [[j00, 0, j02], [0, j11, j12]].
        let jv0 = SIMD3<Float>(j00 * v00 + j02 * v02, j00 * v01 + j02 * v12, j00 * v02 + j02 * v22)
        let jv1 = SIMD3<Float>(j11 * v01 + j12 * v02, j11 * v11 + j12 * v12, j11 * v12 + j12 * v22)
        var cov00 = jv0.x * j00 + jv0.z * j02
        let cov01 = jv0.y * j11 + jv0.z * j12
        var cov11 = jv1.y * j11 + jv1.z * j12
        let mean = SIMD2<Float>(fx * pc.x * rz + cx, fy * pc.y * rz + cy)

        cov00 += eps2d
        cov11 += eps2d
        let det = cov00 * cov11 - cov01 * cov01
        if !(det > 0) { return nil }
        let invDet = 1 / det
        let conic = SIMD3<Float>(cov11 * invDet, -cov01 * invDet, cov00 * invDet)

        if !(opacity >= alphaThreshold) { return nil }
        let extend = min(maxExtendSigmas, (2 * log(opacity / alphaThreshold)).squareRoot())
        let radiusX = (extend * cov00.squareRoot()).rounded(.up)
        let radiusY = (extend * cov11.squareRoot()).rounded(.up)
        // A NaN anywhere ends up as radius 0 in gsplat (float -> int of NaN), i.e. culled.
        guard radiusX.isFinite, radiusY.isFinite, mean.x.isFinite, mean.y.isFinite,
              conic.x.isFinite, conic.y.isFinite, conic.z.isFinite else { return nil }
        if radiusX <= 0 && radiusY <= 0 { return nil }
        if mean.x + radiusX <= 0 || mean.x - radiusX >= width || mean.y + radiusY <= 0 || mean.y - radiusY >= height {
            return nil
        }
        guard radiusX < Float(Int32.max), radiusY < Float(Int32.max) else { return nil }
        return ProjectedGaussian(mean: mean, conic: conic, depth: pc.z, radius: SIMD2(Int32(radiusX), Int32(radiusY)))
    }

    /// Tiles a projected Gaussian is binned into, as gsplat's `intersect_tile_kernel`: x in
    /// `min.x ..< max.x`, y in `min.y ..< max.y` (empty when a radius is 0).
    @inline(__always)
    public static func tileRange(of g: ProjectedGaussian, tileSize: Int, tilesX: Int, tilesY: Int)
        -> (min: SIMD2<Int>, max: SIMD2<Int>) {
        if g.radius.x <= 0 || g.radius.y <= 0 { return (.zero, .zero) }
        let size = Float(tileSize)
        let tileX = g.mean.x / size, tileY = g.mean.y / size
        let rx = Float(g.radius.x) / size, ry = Float(g.radius.y) / size
        // Float -> uint32 saturates at 0 on the GPU.
        @inline(__always) func clamp(_ v: Float, _ upper: Int) -> Int {
            v <= 0 ? 0 : min(Int(v), upper)
        }
        return (SIMD2(clamp((tileX - rx).rounded(.down), tilesX), clamp((tileY - ry).rounded(.down), tilesY)),
                SIMD2(clamp((tileX + rx).rounded(.up), tilesX), clamp((tileY + ry).rounded(.up), tilesY)))
    }
}
