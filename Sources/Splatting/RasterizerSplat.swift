import Foundation
import PLY

public struct SplatInputError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Gaussians as the validator holds them after loading a PLY: opacity through a sigmoid, scale through
/// exp, the quaternion (w, x, y, z) normalised, colour = 0.5 + C0 * f_dc (not clamped). Flat,
/// Gaussian-major arrays like `GaussianSplat`.
public struct ActivatedSplat: Sendable, Equatable {
    public private(set) var positions: [Float]   // count * 3
    public private(set) var colors: [Float]      // count * 3
    public private(set) var opacities: [Float]   // count, in [0, 1]
    public private(set) var scales: [Float]      // count * 3, linear
    public private(set) var rotations: [Float]   // count * 4, unit (w, x, y, z); zero stays zero

    /// SH degree-0 basis constant used by the validator's loader.
    public static let shC0: Float = 0.28209479177387814

    public var count: Int { opacities.count }

    /// Already-activated values, checked for consistent lengths (used by tests and by callers that
    /// hold activated Gaussians).
    public init(positions: [Float], colors: [Float], opacities: [Float], scales: [Float], rotations: [Float]) throws {
        let n = opacities.count
        for (name, array, width) in [("positions", positions, 3), ("colors", colors, 3), ("scales", scales, 3),
                                     ("rotations", rotations, 4)] where array.count != n * width {
            throw SplatInputError("\(name) holds \(array.count) values, expected \(n * width) for \(n) Gaussians")
        }
        self.positions = positions
        self.colors = colors
        self.opacities = opacities
        self.scales = scales
        self.rotations = rotations
    }

    /// The validator's activations of a stored (pre-activation) splat. Only x y z, f_dc, opacity,
    /// scale and rot are read; normals and higher SH bands are ignored as the validator ignores them.
    public init(activating splat: GaussianSplat) throws {
        let n = splat.count
        for (name, array, width) in [("positions", splat.positions, 3), ("shDC", splat.shDC, 3),
                                     ("scales", splat.scales, 3), ("rotations", splat.rotations, 4)]
        where array.count != n * width {
            throw SplatInputError("\(name) holds \(array.count) values, expected \(n * width) for \(n) Gaussians")
        }
        positions = splat.positions
        opacities = splat.opacities.map { 1 / (1 + exp(-$0)) }
        scales = splat.scales.map { exp($0) }
        let c0 = Self.shC0
        colors = splat.shDC.map { 0.5 + c0 * $0 }
        var rotations = splat.rotations
        for i in 0..<n {
            let q = SIMD4<Float>(rotations[4 * i], rotations[4 * i + 1], rotations[4 * i + 2], rotations[4 * i + 3])
            // torch.nn.functional.normalize: q / max(|q|, 1e-12).
            let norm = max((q * q).sum().squareRoot(), 1e-12)
            for k in 0..<4 { rotations[4 * i + k] = q[k] / norm }
        }
        self.rotations = rotations
    }
}

/// Render-ready Gaussians: what a `Rasterizer` draws, as is.
public struct PreparedSplat: Sendable, Equatable {
    public let gaussians: ActivatedSplat
    /// Factor applied to positions and scales (opacity was multiplied by its inverse); 1 if not normalised.
    public let scaleFactor: Double
    /// The scalar subtracted from every coordinate before scaling; 0 if not normalised.
    public let centreOffset: Float

    public var count: Int { gaussians.count }

    /// Draw these Gaussians without any normalisation (hand-made scenes, other pipelines).
    public init(unnormalized gaussians: ActivatedSplat) {
        self.gaussians = gaussians
        scaleFactor = 1
        centreOffset = 0
    }

    init(gaussians: ActivatedSplat, scaleFactor: Double, centreOffset: Float) {
        self.gaussians = gaussians
        self.scaleFactor = scaleFactor
        self.centreOffset = centreOffset
    }
}

/// The validator's `transform_gs_data`: centre, scale to a fixed bounding-box size, and thin out
/// opacity for objects that had to be enlarged.
public enum ValidatorNormalization {
    /// - points -= mean of ALL coordinates (one scalar, not per axis);
    /// - factor = targetExtent / (largest axis-aligned bounding-box extent);
    /// - positions and scales *= factor;
    /// - opacity (already through the sigmoid) *= 1 / factor, clipped to [0, 1].
    public static func prepare(_ splat: ActivatedSplat, targetExtent: Double = 1.5) throws -> PreparedSplat {
        guard splat.count > 0 else { throw SplatInputError("the splat has no Gaussians") }
        guard targetExtent.isFinite && targetExtent > 0 else {
            throw SplatInputError("target bounding-box size must be positive, got \(targetExtent)")
        }
        let p = splat.positions
        var lo = SIMD3<Double>(repeating: .infinity)
        var hi = SIMD3<Double>(repeating: -.infinity)
        var sum = 0.0
        for i in 0..<splat.count {
            let v = SIMD3<Double>(Double(p[3 * i]), Double(p[3 * i + 1]), Double(p[3 * i + 2]))
            lo = pointwiseMin(lo, v)
            hi = pointwiseMax(hi, v)
            sum += v.sum()
        }
        guard sum.isFinite, lo.x.isFinite, lo.y.isFinite, lo.z.isFinite,
              hi.x.isFinite, hi.y.isFinite, hi.z.isFinite else {
            throw SplatInputError("a Gaussian position is not finite")
        }
        let extent = (hi - lo).max()
        guard extent > 0 else {
            throw SplatInputError("all Gaussians sit at one point: the bounding box has zero size")
        }
        let factor = targetExtent / extent
        // The validator works on float32 tensors: float32 mean, float32 arithmetic with the factor
        // rounded to float32.
        let mean = Float(sum / Double(3 * splat.count))
        let factorF = Float(factor)
        let inverseF = Float(1.0 / factor)
        let positions = p.map { ($0 - mean) * factorF }
        let scales = splat.scales.map { $0 * factorF }
        let opacities = splat.opacities.map { min(max($0 * inverseF, 0), 1) }
        let out = try ActivatedSplat(positions: positions, colors: splat.colors, opacities: opacities,
                                     scales: scales, rotations: splat.rotations)
        return PreparedSplat(gaussians: out, scaleFactor: factor, centreOffset: mean)
    }
}
