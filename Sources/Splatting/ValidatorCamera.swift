import Foundation

/// A pinhole camera in the convention gsplat takes: world-to-camera rotation and translation with the
/// camera looking along +Z, +X right and +Y down in the image; intrinsics in pixels.
public struct Camera: Sendable, Equatable {
    /// Rows of the 3x3 world-to-camera rotation.
    public var rotationRows: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>)
    public var translation: SIMD3<Float>
    public var fx: Float
    public var fy: Float
    public var cx: Float
    public var cy: Float
    public var width: Int
    public var height: Int
    public var near: Float
    public var far: Float

    public init(rotationRows: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>), translation: SIMD3<Float>,
                fx: Float, fy: Float, cx: Float, cy: Float, width: Int, height: Int, near: Float, far: Float) {
        self.rotationRows = rotationRows
        self.translation = translation
        self.fx = fx
        self.fy = fy
        self.cx = cx
        self.cy = cy
        self.width = width
        self.height = height
        self.near = near
        self.far = far
    }

    public static func == (lhs: Camera, rhs: Camera) -> Bool {
        lhs.rotationRows.0 == rhs.rotationRows.0 && lhs.rotationRows.1 == rhs.rotationRows.1
            && lhs.rotationRows.2 == rhs.rotationRows.2 && lhs.translation == rhs.translation
            && lhs.fx == rhs.fx && lhs.fy == rhs.fy && lhs.cx == rhs.cx && lhs.cy == rhs.cy
            && lhs.width == rhs.width && lhs.height == rhs.height && lhs.near == rhs.near && lhs.far == rhs.far
    }

    /// World point to camera space.
    @inline(__always)
    public func toCamera(_ p: SIMD3<Float>) -> SIMD3<Float> {
        SIMD3((rotationRows.0 * p).sum(), (rotationRows.1 * p).sum(), (rotationRows.2 * p).sum()) + translation
    }

    /// The camera centre in world space, -R^T t.
    public var position: SIMD3<Float> {
        -(rotationRows.0 * translation.x + rotationRows.1 * translation.y + rotationRows.2 * translation.z)
    }

    /// Viewing direction (camera +Z) in world space.
    public var forward: SIMD3<Float> { rotationRows.2 }
    /// Image-up direction (camera -Y) in world space.
    public var up: SIMD3<Float> { -rotationRows.1 }
    /// Image-right direction (camera +X) in world space.
    public var right: SIMD3<Float> { rotationRows.0 }

    /// 4x4 world-to-camera matrix, row-major (gsplat's `viewmats`).
    public var viewMatrix: [Float] {
        let r = rotationRows
        return [r.0.x, r.0.y, r.0.z, translation.x,
                r.1.x, r.1.y, r.1.z, translation.y,
                r.2.x, r.2.y, r.2.z, translation.z,
                0, 0, 0, 1]
    }

    /// 3x3 intrinsics, row-major (gsplat's `Ks`).
    public var intrinsics: [Float] { [fx, 0, cx, 0, fy, cy, 0, 0, 1] }
}

/// The validator's orbit cameras (three-gen-subnet `OrbitCamera.compute_transform_orbit` with
/// `opengl_conv=True`, then `world_to_camera_transform` and `intrinsics`). The maths follows the
/// validator's precision: angles and positions in double, the look-at in float32.
public enum ValidatorCameras {
    public static func make(_ settings: RenderSettings) throws -> [Camera] {
        try settings.validate()
        let fovY = settings.fovYDegrees * (Double.pi / 180)
        let tanHalf = tan(0.5 * fovY)
        let fx = Float(Double(settings.width) / (2 * tanHalf))
        let fy = Float(Double(settings.height) / (2 * tanHalf))
        // The validator's principal point is the integer centre W // 2, H // 2.
        let cx = Float(settings.width / 2)
        let cy = Float(settings.height / 2)
        return zip(settings.thetasDegrees, settings.phisDegrees).map { theta, phi in
            var (rows, t) = orbitPose(elevationDegrees: phi, azimuthDegrees: theta, radius: settings.radius)
            if settings.orientation == .yDown {
                // W2C * diag(1, -1, -1): the yUp camera looking at the splat turned 180 degrees about X.
                rows.0 = SIMD3(rows.0.x, -rows.0.y, -rows.0.z)
                rows.1 = SIMD3(rows.1.x, -rows.1.y, -rows.1.z)
                rows.2 = SIMD3(rows.2.x, -rows.2.y, -rows.2.z)
            }
            return Camera(rotationRows: rows, translation: t, fx: fx, fy: fy, cx: cx, cy: cy,
                          width: settings.width, height: settings.height, near: settings.near, far: settings.far)
        }
    }

    /// World-to-camera rotation rows and translation of one orbit camera looking at the origin, +Y up.
    static func orbitPose(elevationDegrees: Double, azimuthDegrees: Double, radius: Double)
        -> ((SIMD3<Float>, SIMD3<Float>, SIMD3<Float>), SIMD3<Float>) {
        let elevation = elevationDegrees * (Double.pi / 180)
        let azimuth = azimuthDegrees * (Double.pi / 180)
        let campos = SIMD3<Float>(
            Float(radius * cos(elevation) * sin(azimuth)),
            Float(-radius * sin(elevation)),
            Float(radius * cos(elevation) * cos(azimuth)))

        // Look-at in the OpenGL convention (camera +Z points away from the target)...
        let forward = safeNormalize(campos)
        let right = safeNormalize(cross(SIMD3<Float>(0, 1, 0), forward))
        let up = safeNormalize(cross(forward, right))
        // ...then camera-to-world columns 1 and 2 are negated (OpenCV: y down, z into the scene).
        // World-to-camera is the transpose, so its rows are right, -up, -forward.
        let rows = (right, -up, -forward)
        let t = -SIMD3<Float>(dot(rows.0, campos), dot(rows.1, campos), dot(rows.2, campos))
        return (rows, t)
    }

    @inline(__always)
    static func dot(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float { a.x * b.x + a.y * b.y + a.z * b.z }

    @inline(__always)
    static func cross(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> SIMD3<Float> {
        SIMD3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
    }

    /// x / sqrt(max(x.x, 1e-20)), as the validator's `_safe_normalize`.
    @inline(__always)
    static func safeNormalize(_ v: SIMD3<Float>) -> SIMD3<Float> {
        v / max(dot(v, v), 1e-20).squareRoot()
    }
}
