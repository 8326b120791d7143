import PLY

public struct RasterizerError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One rendered image, row-major from the top-left pixel.
public struct RenderedView: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Composited colour, height * width * 3, background included, not clipped.
    public let rgb: [Float]
    /// Accumulated opacity 1 - T, height * width.
    public let alpha: [Float]

    public init(width: Int, height: Int, rgb: [Float], alpha: [Float]) throws {
        guard width > 0, height > 0, rgb.count == width * height * 3, alpha.count == width * height else {
            throw RasterizerError("a \(width)x\(height) view needs \(max(0, width * height * 3)) colour and "
                                  + "\(max(0, width * height)) alpha values, got \(rgb.count) and \(alpha.count)")
        }
        self.width = width
        self.height = height
        self.rgb = rgb
        self.alpha = alpha
    }

    /// The validator's 8-bit image: colour clipped to [0, 1], times 255 in float32, truncated
    /// (`(img.clip(0, 1) * 255).to(torch.uint8)`), height * width * 3.
    public var rgb8: [UInt8] {
        rgb.map { value in
            let clipped = value.isNaN ? 0 : min(max(value, 0), 1)
            return UInt8(clipped * 255)
        }
    }
}

/// Draws prepared Gaussians from a set of cameras. Implementations must match gsplat 1.5.3 `rasterization`
/// in classic mode as the validator calls it (RGB, SH degree 0 colours given, packed=False).
public protocol Rasterizer {
    func render(splat: PreparedSplat, cameras: [Camera], background: SIMD3<Float>) throws -> [RenderedView]
}

extension Rasterizer {
    /// The validator's whole path from a stored splat: activate, normalise, build the orbit cameras, render.
    /// The data checks are separate (`SplatChecks`), as in the validator.
    public func render(splat: GaussianSplat, settings: RenderSettings) throws -> [RenderedView] {
        let cameras = try ValidatorCameras.make(settings)
        let prepared = try ValidatorNormalization.prepare(try ActivatedSplat(activating: splat),
                                                          targetExtent: settings.targetExtent)
        return try render(splat: prepared, cameras: cameras, background: settings.background)
    }
}
