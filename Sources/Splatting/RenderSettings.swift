import PLY
public struct RenderSettingsError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything that decides how a splat is photographed: the camera orbit, the image size, the lens,
/// the background and the normalisation target. `RenderSettings()` is the validator's setup.
public struct RenderSettings: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Azimuth of each view in degrees (one view per entry).
    public var thetasDegrees: [Double]
    /// Elevation of each view in degrees, validator sign: negative puts the camera above the object.
    public var phisDegrees: [Double]
    /// Distance of every camera from the origin.
    public var radius: Double
    public var fovYDegrees: Double
    public var near: Float
    public var far: Float
    public var background: SIMD3<Float>
    public var orientation: SplatOrientation
    /// The largest bounding-box extent of the splat after normalisation.
    public var targetExtent: Double

    public static let validatorViewCount = 16
    public static let validatorSize = 518

    public init(
        width: Int = RenderSettings.validatorSize,
        height: Int = RenderSettings.validatorSize,
        thetasDegrees: [Double] = RenderSettings.linspace(0, 360, count: RenderSettings.validatorViewCount),
        phisDegrees: [Double]? = nil,
        radius: Double = 2.5,
        fovYDegrees: Double = 49.1,
        near: Float = 0.01,
        far: Float = 100,
        background: SIMD3<Float> = SIMD3(1, 1, 1),
        orientation: SplatOrientation = .yUp,
        targetExtent: Double = 1.5
    ) {
        self.width = width
        self.height = height
        self.thetasDegrees = thetasDegrees
        self.phisDegrees = phisDegrees ?? Array(repeating: -15, count: thetasDegrees.count)
        self.radius = radius
        self.fovYDegrees = fovYDegrees
        self.near = near
        self.far = far
        self.background = background
        self.orientation = orientation
        self.targetExtent = targetExtent
    }

    /// The validator's orbit with `views` cameras: theta = linspace(0, 360, views), phi = -15.
    public static func validator(views: Int = validatorViewCount, orientation: SplatOrientation = .yUp) -> RenderSettings {
        RenderSettings(thetasDegrees: linspace(0, 360, count: views), orientation: orientation)
    }

    public var viewCount: Int { thetasDegrees.count }

    /// numpy.linspace(start, stop, count) with its endpoint included, computed as numpy does
    /// (start + i * step, the last value set to `stop` exactly).
    public static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        guard count > 0 else { return [] }
        guard count > 1 else { return [start] }
        let step = (stop - start) / Double(count - 1)
        var values = (0..<count).map { start + Double($0) * step }
        values[count - 1] = stop
        return values
    }

    public func validate() throws {
        if width <= 0 || height <= 0 {
            throw RenderSettingsError("image size must be positive, got \(width)x\(height)")
        }
        if width > 16384 || height > 16384 {
            throw RenderSettingsError("image size \(width)x\(height) is larger than 16384 on a side")
        }
        if thetasDegrees.isEmpty {
            throw RenderSettingsError("no views: the theta list is empty")
        }
        if thetasDegrees.count != phisDegrees.count {
            throw RenderSettingsError(
                "theta and phi lists differ in length (\(thetasDegrees.count) vs \(phisDegrees.count))")
        }
        if !(thetasDegrees + phisDegrees).allSatisfy(\.isFinite) {
            throw RenderSettingsError("a theta or phi angle is not finite")
        }
        if !(radius.isFinite && radius > 0) {
            throw RenderSettingsError("camera radius must be a positive number, got \(radius)")
        }
        if !(fovYDegrees > 0 && fovYDegrees < 180) {
            throw RenderSettingsError("vertical field of view must be in (0, 180) degrees, got \(fovYDegrees)")
        }
        if !(near > 0 && far > near && far.isFinite) {
            throw RenderSettingsError("clip planes must satisfy 0 < near < far, got near \(near), far \(far)")
        }
        if !background.isFiniteVector {
            throw RenderSettingsError("background colour is not finite")
        }
        if !(targetExtent.isFinite && targetExtent > 0) {
            throw RenderSettingsError("target bounding-box size must be positive, got \(targetExtent)")
        }
    }
}

extension SIMD3 where Scalar == Float {
    var isFiniteVector: Bool { x.isFinite && y.isFinite && z.isFinite }
}
