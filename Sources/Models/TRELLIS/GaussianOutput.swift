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

    public init(minKernelSize: Double, scalingBias: Double, opacityBias: Double, softplusScaling: Bool) {
        self.minKernelSize = minKernelSize
        self.scalingBias = scalingBias
        self.opacityBias = opacityBias
        self.softplusScaling = softplusScaling
    }

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

extension SplatOrientation {
    /// TRELLIS's Z-up frame to the file, as a signed axis permutation: new[i] = sign[i] * old[source[i]].
    /// `yDown` is exactly `Gaussian.save_ply`, (x, y, z) -> (x, -z, y), a +90 degree turn about x. `yUp` is
    /// (x, y, z) -> (x, z, -y), a -90 degree turn about x: TRELLIS's up (+Z) becomes +Y and its front (-Y, as the
    /// Objaverse glTF training data arrives through Blender's default axis conversion; inferred from the dataset
    /// scripts, not checked against a render) becomes +Z, facing the legacy azimuth-0 camera.
    var trellisAxes: (source: [Int], sign: [Double]) {
        switch self {
        case .yDown: return ([0, 2, 1], [1, -1, 1])
        case .yUp: return ([0, 2, 1], [1, 1, -1])
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

    package func rotationWithBias() throws -> Tensor {
        try rotation + Tensor([Float(1), 0, 0, 0]).to(rotation.device)
    }

    // MARK: export

    /// logit of the smallest positive float32 and of the largest float32 below 1: where a float32 sigmoid saturates
    /// to exactly 0 or 1 the reference would write -inf/inf; we write the nearest finite logit instead.
    static let logitRange = (min: -103.27893, max: 16.635532)

    /// The PLY fields of `Gaussian.save_ply` as tensors on the Gaussians' device (one batched computation):
    /// positions [M, 3], f_dc [M, 3], opacity logit [M, 1], log scales [M, 3], quaternions [M, 4], all float32.
    /// Opacity and scale follow the reference's float32 arithmetic; quaternions follow its matrix round trip
    /// (see `GaussianOutputRotation`).
    public func plyFields(orientation: SplatOrientation = .yDown) throws
        -> (positions: Tensor, featuresDC: Tensor, opacity: Tensor, scales: Tensor, rotations: Tensor) {
        let device = xyz.device
        let axes = orientation.trellisAxes
        let source = try Tensor(axes.source.map { Int64($0) }).to(device)
        let sign = try Tensor(axes.sign.map { Float($0) }).to(device)
        let positions = try activatedXYZ().indexSelect(1, source) * sign

        let p = try activatedOpacity()
        let opacityLogit = try (p / (1 - p)).log()
            .nanToNum(nan: 0, posinf: TrellisGaussians.logitRange.max, neginf: TrellisGaussians.logitRange.min)
        let logScales = try activatedScaling().log()
            .nanToNum(nan: 0, posinf: Foundation.log(Double(Float.greatestFiniteMagnitude)), neginf: TrellisGaussians.logitRange.min)

        let rotations = try GaussianOutputRotation.savePlyQuaternions(rotationWithBias(), orientation: orientation)
        let fdc = try featuresDC.reshape([count, 3])
        return (positions, fdc, opacityLogit, logScales, rotations)
    }

    /// A `GaussianSplat` exactly as `save_ply` writes it (normals zero unless `includeNormals` is false, then
    /// omitted). All fields are computed on the device; each is then copied once, straight into its array.
    public func splat(orientation: SplatOrientation = .yDown, includeNormals: Bool = true) throws -> GaussianSplat {
        let f = try plyFields(orientation: orientation)
        return GaussianSplat(
            positions: try TrellisGaussians.hostFloats(f.positions),
            normals: includeNormals ? [Float](repeating: 0, count: 3 * count) : nil,
            shDC: try TrellisGaussians.hostFloats(f.featuresDC),
            shDegree: 0,
            opacities: try TrellisGaussians.hostFloats(f.opacity),
            scales: try TrellisGaussians.hostFloats(f.scales),
            rotations: try TrellisGaussians.hostFloats(f.rotations))
    }

    /// The float32 values of `t` in a Swift array, copied by the device straight into the array's storage (a tensor
    /// wrapping it), without the intermediate host tensor of `Tensor.floats()` (a second allocation and copy).
    static func hostFloats(_ t: Tensor) throws -> [Float] {
        let n = t.count
        var out = [Float](unsafeUninitializedCapacity: n) { _, initialized in initialized = n }
        guard n > 0 else { return out }
        let source = try t.to(.float32).reshape([n])
        try out.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            let owner = HostBufferOwner()
            try Tensor.wrapping(base, shape: [n], dtype: .float32, owner: owner).copy_(source)
        }
        return out
    }
}

/// Keeps nothing alive: the wrapped Swift array outlives the tensor that views it inside `withUnsafeMutableBytes`.
private final class HostBufferOwner {}

/// The rotation arithmetic of `save_ply`, operation for operation: utils3d `quaternion_to_matrix` on the float32
/// quaternions (normalise, I + 2(A + wB), all float32), the axis swap R applied in float64 (`np.matmul` with an
/// integer matrix), then utils3d `matrix_to_quaternion` in float64 (|components| from 0.5 sqrt(1 ± d0 ± d1 ± d2), signs
/// from off-diagonal sums relative to the largest, re-normalised; so the largest-magnitude component is positive).
/// Replicating the float32 matrix matters: the sqrt extraction turns one float32 rounding of M into up to ~2e-4 in a
/// component near zero, so a more exact formula (q_R ⊗ q) differs from the reference file by more than 1e-4.
package enum GaussianOutputRotation {
    /// q: [M, 4] float32 (w, x, y, z), not necessarily unit. Returns [M, 4] float32.
    package static func savePlyQuaternions(_ q: Tensor, orientation: SplatOrientation) throws -> Tensor {
        let c = try q.unbind(1)
        // numpy's float32 sqrt is correctly rounded; libtorch's vectorised CPU one can be 1 ulp off. sqrt in float64
        // rounded to float32 is the correctly rounded float32 sqrt.
        let squares = try ((c[0] * c[0] + c[1] * c[1]) + c[2] * c[2]) + c[3] * c[3]
        let norm = try squares.to(.float64).sqrt().to(.float32).clamp(min: 1e-12)
        let (w, x, y, z) = (try c[0] / norm, try c[1] / norm, try c[2] / norm, try c[3] / norm)
        let s = try (x * x + y * y) + z * z
        // Rows of M(q), float32, in utils3d's operation order.
        let m: [[Tensor]] = [
            [try 1 + 2 * (x * x - s), try 2 * (x * y - w * z), try 2 * (x * z + w * y)],
            [try 2 * (y * x + w * z), try 1 + 2 * (y * y - s), try 2 * (y * z - w * x)],
            [try 2 * (z * x - w * y), try 2 * (z * y + w * x), try 1 + 2 * (z * z - s)],
        ]
        // R M in float64: row i of R M is sign_i * row source_i of M (exact).
        let axes = orientation.trellisAxes
        let r: [[Tensor]] = try (0..<3).map { i in
            try m[axes.source[i]].map { try $0.to(.float64) * axes.sign[i] }
        }
        let (d0, d1, d2) = (r[0][0], r[1][1], r[2][2])
        func magnitude(_ a: Double, _ b: Double, _ c: Double) throws -> Tensor {
            try (((d0 * a + d1 * b) + d2 * c) + 1).clamp(min: 0).sqrt() * 0.5
        }
        let wxyz = try Tensor.stack([magnitude(1, 1, 1), magnitude(1, -1, -1), magnitude(-1, 1, -1), magnitude(-1, -1, 1)], dim: 1)
        let largest = try wxyz.argmax(1, keepDim: true)
        let xw = try (r[2][1] - r[1][2]).sign(), yw = try (r[0][2] - r[2][0]).sign(), zw = try (r[1][0] - r[0][1]).sign()
        let yz = try (r[2][1] + r[1][2]).sign(), xz = try (r[0][2] + r[2][0]).sign(), xy = try (r[0][1] + r[1][0]).sign()
        let one = try xw.onesLike()
        let table = try Tensor.stack([
            Tensor.stack([one, xw, yw, zw], dim: 1), Tensor.stack([xw, one, xy, xz], dim: 1),
            Tensor.stack([yw, xy, one, yz], dim: 1), Tensor.stack([zw, xz, yz, one], dim: 1),
        ], dim: 1)  // [M, 4 (largest), 4 (component)]
        let n = q.size(0)
        let sign = try table.gather(1, largest.unsqueeze(2).expand([n, 1, 4])).squeeze(1)
        let quat = try sign * wxyz
        let length = try quat.norm(2, dims: [1], keepDim: true).clamp(min: 1e-12)
        return try (quat / length).to(.float32)
    }
}
