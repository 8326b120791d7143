import Foundation
import PLY
import TorchShim

/// The activation constants of a TRELLIS `Gaussian` (aabb [-0.5, -0.5, -0.5, 1, 1, 1], SH degree 0).
public struct GaussianActivation: Sendable {
    public var aabbMin: [Double] = [-0.5, -0.5, -0.5]
    public var aabbSize: [Double] = [1, 1, 1]
    /// `mininum_kernel_size` (the 3D filter): scales are sqrt(s^2 + k^2).
    public var minKernelSize: Double
    public var scalingBias: Double
    public var opacityBias: Double
    public var softplusScaling: Bool

    public init(_ rep: GaussianRepresentationConfig) {
        minKernelSize = rep.filter3DKernelSize
        scalingBias = rep.scalingBias
        opacityBias = rep.opacityBias
        softplusScaling = rep.scalingActivation == "softplus"
    }

    /// inverse_scaling_activation(scaling_bias) computed in float32 like the reference (0-d tensor).
    func scaleBias(device: Device) throws -> Tensor {
        let b = try Tensor(scalar: scalingBias, dtype: .float32)
        let inverse = softplusScaling ? try b + b.neg().expm1().neg().log() : try b.log()
        return try inverse.to(device)
    }

    /// inverse_sigmoid(opacity_bias) = log(x / (1 - x)) in float32 (0-d tensor).
    func opacityBiasLogit(device: Device) throws -> Tensor {
        let b = try Tensor(scalar: opacityBias, dtype: .float32)
        return try (b / (1 - b)).log().to(device)
    }
}

/// Orientation of the exported splat.
public enum GaussianOrientation: Sendable {
    /// Exactly `Gaussian.save_ply`: (x, y, z) -> (x, -z, y), a +90 degree turn about x. TRELLIS objects are Z-up, so
    /// the file is -Y up (the 3DGS/COLMAP camera convention; Competition 0 validators render it upright).
    case trellis
    /// For the legacy validators, which render +Y up with the azimuth-0 camera on +Z looking at the origin, +X right:
    /// (x, y, z) -> (x, z, -y), a -90 degree turn about x (= `trellis` followed by a 180 degree turn about x).
    /// TRELLIS' up (+Z) becomes +Y, and its front (-Y, the Blender/Objaverse front that the training renders use)
    /// becomes +Z, facing the azimuth-0 camera. The front direction is inferred from the training data's convention,
    /// not checked against a render.
    case legacyYUp

    /// Signed axis permutation: new[i] = sign[i] * old[source[i]].
    var axes: (source: [Int], sign: [Double]) {
        switch self {
        case .trellis: return ([0, 2, 1], [1, -1, 1])
        case .legacyYUp: return ([0, 2, 1], [1, 1, -1])
        }
    }

    /// Unit quaternion (w, x, y, z) of the rotation matrix.
    var quaternion: [Double] {
        let h = 0.5.squareRoot()
        switch self {
        case .trellis: return [h, h, 0, 0]
        case .legacyYUp: return [h, -h, 0, 0]
        }
    }
}

/// The Gaussians of a decoded structured latent, as the fields a TRELLIS `Gaussian` stores (`_xyz`, `_features_dc`,
/// `_scaling`, `_rotation`, `_opacity`), float32 on the decoder's device. Gaussian g of voxel v is row v * G + g.
public struct TrellisGaussians {
    /// [M, 3] positions in the unit box (before the aabb maps them to [-0.5, 0.5]^3).
    public let xyz: Tensor
    /// [M, 1, 3] SH degree-0 coefficients.
    public let featuresDC: Tensor
    /// [M, 3] pre-activation scales.
    public let scaling: Tensor
    /// [M, 4] pre-activation rotations (w, x, y, z) without the identity bias.
    public let rotation: Tensor
    /// [M, 1] pre-activation opacities.
    public let opacity: Tensor
    public let activation: GaussianActivation
    public let gaussiansPerVoxel: Int
    /// First voxel of each batch item (+ total), from the sparse layout.
    public let voxelOffsets: [Int]

    public init(xyz: Tensor, featuresDC: Tensor, scaling: Tensor, rotation: Tensor, opacity: Tensor,
                activation: GaussianActivation, gaussiansPerVoxel: Int, voxelOffsets: [Int]) throws {
        let m = xyz.size(0)
        guard xyz.shape == [m, 3], featuresDC.shape == [m, 1, 3], scaling.shape == [m, 3], rotation.shape == [m, 4],
              opacity.shape == [m, 1] else {
            throw SparseTensorError("Gaussian fields disagree: xyz \(xyz.shape), features_dc \(featuresDC.shape), "
                                    + "scaling \(scaling.shape), rotation \(rotation.shape), opacity \(opacity.shape)")
        }
        guard voxelOffsets.last.map({ $0 * gaussiansPerVoxel }) == m else {
            throw SparseTensorError("Gaussian fields hold \(m) rows, the voxel layout \(voxelOffsets.last ?? 0) x \(gaussiansPerVoxel)")
        }
        self.xyz = xyz
        self.featuresDC = featuresDC
        self.scaling = scaling
        self.rotation = rotation
        self.opacity = opacity
        self.activation = activation
        self.gaussiansPerVoxel = gaussiansPerVoxel
        self.voxelOffsets = voxelOffsets
    }

    public var count: Int { xyz.size(0) }
    public var batchSize: Int { voxelOffsets.count - 1 }

    /// The Gaussians of batch item `b` (views).
    public func batch(_ b: Int) throws -> TrellisGaussians {
        guard b >= 0, b < batchSize else { throw SparseTensorError("batch item \(b) of \(batchSize)") }
        let start = voxelOffsets[b] * gaussiansPerVoxel
        let length = (voxelOffsets[b + 1] - voxelOffsets[b]) * gaussiansPerVoxel
        func rows(_ t: Tensor) throws -> Tensor { try t.narrow(0, start: start, length: length) }
        return try TrellisGaussians(xyz: rows(xyz), featuresDC: rows(featuresDC), scaling: rows(scaling),
                                    rotation: rows(rotation), opacity: rows(opacity), activation: activation,
                                    gaussiansPerVoxel: gaussiansPerVoxel,
                                    voxelOffsets: [0, voxelOffsets[b + 1] - voxelOffsets[b]])
    }

    // MARK: activated values (TRELLIS `Gaussian.get_*`)

    /// [M, 3] positions in the aabb: xyz * size + min.
    public func activatedXYZ() throws -> Tensor {
        let size = try Tensor(activation.aabbSize.map { Float($0) }).to(xyz.device)
        let lo = try Tensor(activation.aabbMin.map { Float($0) }).to(xyz.device)
        return try xyz * size + lo
    }

    /// [M, 3] sqrt(act(scaling + bias)^2 + k^2).
    public func activatedScaling() throws -> Tensor {
        let biased = try scaling + activation.scaleBias(device: scaling.device)
        let s = activation.softplusScaling ? try biased.softplus() : try biased.exp()
        return try (s.square() + activation.minKernelSize * activation.minKernelSize).sqrt()
    }

    /// [M, 1] sigmoid(opacity + logit(opacity_bias)).
    public func activatedOpacity() throws -> Tensor {
        try (opacity + activation.opacityBiasLogit(device: opacity.device)).sigmoid()
    }

    /// [M, 4] normalize(rotation + (1, 0, 0, 0)).
    public func activatedRotation() throws -> Tensor {
        try F.normalize(rotationWithBias(), dim: -1)
    }

    /// [M, 1, 3].
    public func activatedFeaturesDC() throws -> Tensor { featuresDC }

    func rotationWithBias() throws -> Tensor {
        try rotation + Tensor([Float(1), 0, 0, 0]).to(rotation.device)
    }

    // MARK: export

    /// logit of the smallest positive float32 and of the largest float32 below 1: where a float32 sigmoid saturates
    /// to exactly 0 or 1 the reference would write -inf/inf; we write the nearest finite logit instead.
    static let logitRange = (min: -103.27893, max: 16.635532)

    /// The PLY fields of `Gaussian.save_ply` as tensors on the Gaussians' device (one batched computation):
    /// positions [M, 3], f_dc [M, 3], opacity logit [M, 1], log scales [M, 3], quaternions [M, 4], all float32.
    /// Opacity and scale follow the reference's float32 arithmetic; the quaternion of R·M(q) is computed in float64
    /// as the product q_R ⊗ q/|q| (the same rotation as utils3d's matrix round trip), re-normalised, with the sign
    /// that makes its largest-magnitude component positive (utils3d's `matrix_to_quaternion` choice).
    public func plyFields(orientation: GaussianOrientation = .trellis) throws
        -> (positions: Tensor, featuresDC: Tensor, opacity: Tensor, scales: Tensor, rotations: Tensor) {
        let device = xyz.device
        let axes = orientation.axes
        let source = try Tensor(axes.source.map { Int64($0) }).to(device)
        let sign = try Tensor(axes.sign.map { Float($0) }).to(device)
        let positions = try activatedXYZ().indexSelect(1, source) * sign

        let p = try activatedOpacity()
        let opacityLogit = try (p / (1 - p)).log()
            .nanToNum(nan: 0, posinf: TrellisGaussians.logitRange.max, neginf: TrellisGaussians.logitRange.min)
        let logScales = try activatedScaling().log()
            .nanToNum(nan: 0, posinf: Foundation.log(Double(Float.greatestFiniteMagnitude)), neginf: TrellisGaussians.logitRange.min)

        let q = try rotationWithBias().to(.float64)
        let norm = try q.norm(2, dims: [1], keepDim: true)
        let identity = try Tensor([1.0, 0, 0, 0]).to(device).unsqueeze(0)
        // A zero quaternion gives the identity matrix in utils3d (normalise with eps, then I + 2(...)).
        let unit = try Tensor.where(norm.gt(0), q / norm.clamp(min: 1e-12), identity)
        let r = orientation.quaternion
        // Left multiplication by q_R as a 4x4 matrix: p = L(q_R) q, i.e. rows p = q L^T.
        let left: [Double] = [
            r[0], -r[1], -r[2], -r[3],
            r[1], r[0], -r[3], r[2],
            r[2], r[3], r[0], -r[1],
            r[3], -r[2], r[1], r[0],
        ]
        let leftT = try Tensor(left, shape: [4, 4]).to(device).transpose(0, 1)
        var rotated = try unit.matmul(leftT)
        rotated = try F.normalize(rotated, dim: -1, eps: 1e-12)
        let largest = try rotated.abs().argmax(1, keepDim: true)
        let signOfLargest = try rotated.gather(1, largest).sign()
        let rotations = try (rotated * signOfLargest).to(.float32)

        let fdc = try featuresDC.reshape([count, 3])
        return (positions, fdc, opacityLogit, logScales, rotations)
    }

    /// A `GaussianSplat` exactly as `save_ply` writes it (normals zero unless `includeNormals` is false, then
    /// omitted). The flat arrays are copied off the device once each.
    public func splat(orientation: GaussianOrientation = .trellis, includeNormals: Bool = true) throws -> GaussianSplat {
        let f = try plyFields(orientation: orientation)
        return GaussianSplat(
            positions: try f.positions.floats(),
            normals: includeNormals ? [Float](repeating: 0, count: 3 * count) : nil,
            shDC: try f.featuresDC.floats(),
            shDegree: 0,
            opacities: try f.opacity.floats(),
            scales: try f.scales.floats(),
            rotations: try f.rotations.floats())
    }
}
