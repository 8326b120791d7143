import Foundation
import NN
import TorchShim

/// `representation_config` of the Gaussian decoder.
public struct GaussianRepresentationConfig: Decodable, Sendable {
    public var lr: [String: Double]
    public var perturbOffset: Bool
    public var voxelSize: Double
    public var numGaussians: Int
    public var filter2DKernelSize: Double
    public var filter3DKernelSize: Double
    public var scalingBias: Double
    public var opacityBias: Double
    public var scalingActivation: String

    enum CodingKeys: String, CodingKey {
        case lr, perturbOffset = "perturb_offset", voxelSize = "voxel_size", numGaussians = "num_gaussians"
        case filter2DKernelSize = "2d_filter_kernel_size", filter3DKernelSize = "3d_filter_kernel_size"
        case scalingBias = "scaling_bias", opacityBias = "opacity_bias", scalingActivation = "scaling_activation"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lr = try c.decode([String: Double].self, forKey: .lr)
        perturbOffset = try c.decodeIfPresent(Bool.self, forKey: .perturbOffset) ?? false
        voxelSize = try c.decode(Double.self, forKey: .voxelSize)
        numGaussians = try c.decode(Int.self, forKey: .numGaussians)
        filter2DKernelSize = try c.decodeIfPresent(Double.self, forKey: .filter2DKernelSize) ?? 0.1
        filter3DKernelSize = try c.decodeIfPresent(Double.self, forKey: .filter3DKernelSize) ?? 0
        scalingBias = try c.decodeIfPresent(Double.self, forKey: .scalingBias) ?? 0.01
        opacityBias = try c.decodeIfPresent(Double.self, forKey: .opacityBias) ?? 0.1
        scalingActivation = try c.decodeIfPresent(String.self, forKey: .scalingActivation) ?? "exp"
    }

    /// Learning-rate multiplier of a field (`_xyz`, `_features_dc`, `_scaling`, `_rotation`, `_opacity`).
    func rate(_ field: String) throws -> Double {
        guard let r = lr[field] else { throw WeightError.badConfig("representation_config.lr has no '\(field)'") }
        return r
    }
}

/// `args` of a TRELLIS `SLatGaussianDecoder` / `ElasticSLatGaussianDecoder` checkpoint JSON.
public struct SLatGaussianDecoderConfig: Decodable, Sendable {
    public var resolution: Int
    public var modelChannels: Int
    public var latentChannels: Int
    public var numBlocks: Int
    public var numHeads: Int?
    public var numHeadChannels: Int
    public var mlpRatio: Double
    public var attnMode: String
    public var windowSize: Int
    public var peMode: String
    public var useFP16: Bool
    public var qkRMSNorm: Bool
    public var representation: GaussianRepresentationConfig

    enum CodingKeys: String, CodingKey {
        case resolution, modelChannels = "model_channels", latentChannels = "latent_channels", numBlocks = "num_blocks"
        case numHeads = "num_heads", numHeadChannels = "num_head_channels", mlpRatio = "mlp_ratio", attnMode = "attn_mode"
        case windowSize = "window_size", peMode = "pe_mode", useFP16 = "use_fp16", qkRMSNorm = "qk_rms_norm"
        case representation = "representation_config"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        resolution = try c.decode(Int.self, forKey: .resolution)
        modelChannels = try c.decode(Int.self, forKey: .modelChannels)
        latentChannels = try c.decode(Int.self, forKey: .latentChannels)
        numBlocks = try c.decode(Int.self, forKey: .numBlocks)
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads)
        numHeadChannels = try c.decodeIfPresent(Int.self, forKey: .numHeadChannels) ?? 64
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? 4
        attnMode = try c.decodeIfPresent(String.self, forKey: .attnMode) ?? "swin"
        windowSize = try c.decodeIfPresent(Int.self, forKey: .windowSize) ?? 8
        peMode = try c.decodeIfPresent(String.self, forKey: .peMode) ?? "ape"
        useFP16 = try c.decodeIfPresent(Bool.self, forKey: .useFP16) ?? false
        qkRMSNorm = try c.decodeIfPresent(Bool.self, forKey: .qkRMSNorm) ?? false
        representation = try c.decode(GaussianRepresentationConfig.self, forKey: .representation)
    }

    public var heads: Int { numHeads ?? modelChannels / numHeadChannels }

    /// Shift of the window grid in block i (`swin`: 0, w/2, 0, w/2, ...; `full`: no windows).
    public func windowShift(block i: Int) -> Int { windowSize / 2 * (i % 2) }

    /// 32 Gaussians x (3 + 3 + 3 + 4 + 1) channels per voxel, in the order of `GaussianFieldLayout`.
    public var outChannels: Int { representation.numGaussians * GaussianFieldLayout.channelsPerGaussian }

    func validate() throws {
        guard attnMode == "swin" || attnMode == "full" else {
            throw WeightError.badConfig("Gaussian decoder: attn_mode '\(attnMode)' is not supported (swin, full)")
        }
        guard peMode == "ape" else { throw WeightError.badConfig("Gaussian decoder: pe_mode '\(peMode)' is not supported") }
        guard heads > 0, modelChannels % heads == 0 else {
            throw WeightError.badConfig("Gaussian decoder: \(modelChannels) channels do not split into \(heads) heads")
        }
        guard ["exp", "softplus"].contains(representation.scalingActivation) else {
            throw WeightError.badConfig("Gaussian decoder: scaling_activation '\(representation.scalingActivation)' is not supported")
        }
        for field in GaussianFieldLayout.fields { _ = try representation.rate(field.name) }
    }
}

/// Channel layout of the decoder output per voxel: `_xyz` (G x 3), `_features_dc` (G x 3), `_scaling` (G x 3),
/// `_rotation` (G x 4), `_opacity` (G x 1), each block reshaped (G, k).
enum GaussianFieldLayout {
    static let fields: [(name: String, width: Int)] = [
        ("_xyz", 3), ("_features_dc", 3), ("_scaling", 3), ("_rotation", 4), ("_opacity", 1),
    ]
    static let channelsPerGaussian = 14
}

/// TRELLIS `SparseTransformerBlock` (MSA + FFN, norms without affine, eps 1e-6) with shifted-window or full
/// attention. Keys: `attn.to_qkv`, `attn.to_out` (+ `attn.q_rms_norm`/`k_rms_norm`), `mlp.mlp.0`, `mlp.mlp.2`.
struct SLatSwinBlock {
    let norm1: TrellisLayerNorm
    let norm2: TrellisLayerNorm
    let toQKV: Linear
    let toOut: Linear
    let qNorm: MultiHeadRMSNorm?
    let kNorm: MultiHeadRMSNorm?
    let mlp: TrellisFeedForward
    let heads: Int
    let channels: Int
    /// nil = full attention per batch item.
    let window: (size: Int, shift: Int)?

    init(_ w: WeightLoader, channels: Int, heads: Int, mlpRatio: Double, qkRMSNorm: Bool, window: (size: Int, shift: Int)?) throws {
        norm1 = TrellisLayerNorm(dim: channels, eps: 1e-6, kernels: .reference)
        norm2 = TrellisLayerNorm(dim: channels, eps: 1e-6, kernels: .reference)
        toQKV = try Linear(w.pp("attn").pp("to_qkv"), inFeatures: channels, outFeatures: 3 * channels)
        toOut = try Linear(w.pp("attn").pp("to_out"), inFeatures: channels, outFeatures: channels)
        let (d, dt) = (channels / heads, toQKV.weight.dtype)
        func rmsNorm(_ name: String) throws -> MultiHeadRMSNorm {
            try MultiHeadRMSNorm(w.pp("attn").pp(name), heads: heads, headDim: d, dtype: dt, kernels: .reference, headMajor: false)
        }
        qNorm = qkRMSNorm ? try rmsNorm("q_rms_norm") : nil
        kNorm = qkRMSNorm ? try rmsNorm("k_rms_norm") : nil
        mlp = try TrellisFeedForward(w.pp("mlp"), channels: channels, mlpRatio: mlpRatio)
        self.heads = heads
        self.channels = channels
        self.window = window
    }

    func callAsFunction(_ x: SparseTensor) throws -> SparseTensor {
        let n = x.layout.count, d = channels / heads
        var qkv = try toQKV(norm1(x.feats)).view([n, 3, heads, d])
        if let qNorm, let kNorm {
            qkv = try Tensor.stack([qNorm(qkv.select(1, 0)), kNorm(qkv.select(1, 1)), qkv.select(1, 2)], dim: 1)
        }
        let attended: Tensor
        if let window {
            attended = try SparseAttention.windowed(qkv: qkv, layout: x.layout, windowSize: window.size, shift: window.shift)
        } else {
            attended = try SparseAttention.full(q: qkv.select(1, 0), k: qkv.select(1, 1), v: qkv.select(1, 2), layout: x.layout)
        }
        let h = try x.feats + toOut(attended)
        return try x.replacing(h + mlp(norm2(h)))
    }
}

/// TRELLIS `SLatGaussianDecoder` (and `ElasticSLatGaussianDecoder`): structured latent -> 32 Gaussians per voxel.
/// Input layer + absolute position embedding of the 64^3 coordinates, swin transformer blocks (window 8, shift 4 on
/// odd blocks), float32 layer norm + output layer, then the representation maths of `to_representation`.
public final class SLatGaussianDecoder {
    public let config: SLatGaussianDecoderConfig
    public let dtype: DType
    public let device: Device
    let inputLayer: Linear
    let blocks: [SLatSwinBlock]
    let outLayer: Linear
    /// [G, 3] float32 (atanh of a scaled Hammersley sequence; a state_dict buffer).
    public let offsetPerturbation: Tensor

    public init(_ w: WeightLoader, config: SLatGaussianDecoderConfig) throws {
        try config.validate()
        self.config = config
        dtype = w.dtype ?? .float32
        device = w.device
        let torso = w.with(dtype: dtype)
        let w32 = w.with(dtype: .float32)
        let c = config.modelChannels
        inputLayer = try Linear(w32.pp("input_layer"), inFeatures: config.latentChannels, outFeatures: c)
        blocks = try (0..<config.numBlocks).map { i in
            let window = config.attnMode == "swin" ? (size: config.windowSize, shift: config.windowShift(block: i)) : nil
            return try SLatSwinBlock(torso.pp("blocks").pp(i), channels: c, heads: config.heads, mlpRatio: config.mlpRatio,
                                     qkRMSNorm: config.qkRMSNorm, window: window)
        }
        outLayer = try Linear(w32.pp("out_layer"), inFeatures: c, outFeatures: config.outChannels)
        offsetPerturbation = try w32.tensor("offset_perturbation", shape: [config.representation.numGaussians, 3])
    }

    /// The output layer's features [N, 448] float32 (before the representation maths).
    public func features(_ x: SparseTensor, capture: SLatCapture? = nil) throws -> Tensor {
        guard x.channels == config.latentChannels else {
            throw SparseTensorError("Gaussian decoder expects \(config.latentChannels) latent channels, got \(x.channels)")
        }
        guard x.layout.extent <= config.resolution else {
            throw SparseTensorError("Gaussian decoder: voxel coordinates reach \(x.layout.extent - 1), resolution is \(config.resolution)")
        }
        guard x.layout.device == device else {
            throw SparseTensorError("Gaussian decoder: the voxel coordinates are on \(x.layout.device), the model on \(device)")
        }
        let feats = try x.feats.to(device, dtype: .float32)
        let pos = try absolutePositionEmbedding(coords: x.coords.narrow(1, start: 1, length: 3), channels: config.modelChannels)
        var h = try x.replacing((inputLayer(feats) + pos).to(dtype))
        for (k, block) in blocks.enumerated() {
            h = try block(h)
            capture?("block\(k).feats", h.feats)
        }
        let normed = try F.layerNorm(h.feats.to(.float32), shape: [h.channels], eps: 1e-5)
        return try outLayer(normed)
    }

    /// Decodes the structured latent to Gaussians (all batch items; split with `TrellisGaussians.batch(_:)`).
    public func callAsFunction(_ x: SparseTensor, capture: SLatCapture? = nil) throws -> TrellisGaussians {
        let raw = try features(x, capture: capture)
        capture?("raw_feats", raw)
        return try representation(raw, layout: x.layout)
    }

    /// TRELLIS `to_representation` for every voxel at once. Gaussian g of voxel v is row v * G + g.
    public func representation(_ raw: Tensor, layout: SparseLayout) throws -> TrellisGaussians {
        let rep = config.representation
        let g = rep.numGaussians, n = layout.count
        guard raw.shape == [n, config.outChannels] else {
            throw SparseTensorError("Gaussian decoder features must be [\(n), \(config.outChannels)], got \(raw.shape)")
        }
        var start = 0
        var fields: [String: Tensor] = [:]
        for field in GaussianFieldLayout.fields {
            let width = g * field.width
            fields[field.name] = try raw.narrow(1, start: start, length: width).reshape([n, g, field.width]) * rep.rate(field.name)
            start += width
        }
        let resolution = Double(config.resolution)
        let centres = try (layout.coords.narrow(1, start: 1, length: 3).to(raw.device, dtype: .float32) + 0.5) / resolution
        var offset = fields["_xyz"]!
        if rep.perturbOffset { offset = try offset + offsetPerturbation.to(raw.device) }
        offset = try offset.tanh() / resolution * 0.5 * rep.voxelSize
        let xyz = try (centres.unsqueeze(1) + offset).reshape([n * g, 3])
        return try TrellisGaussians(
            xyz: xyz,
            featuresDC: fields["_features_dc"]!.reshape([n * g, 1, 3]),
            scaling: fields["_scaling"]!.reshape([n * g, 3]),
            rotation: fields["_rotation"]!.reshape([n * g, 4]),
            opacity: fields["_opacity"]!.reshape([n * g, 1]),
            activation: GaussianActivation(rep),
            gaussiansPerVoxel: g,
            voxelOffsets: layout.offsets)
    }
}

public typealias ElasticSLatGaussianDecoder = SLatGaussianDecoder
