import Foundation
import NN
import TorchShim

/// TRELLIS stage-1 denoiser (`SparseStructureFlowModel`, trellis/models/sparse_structure_flow.py): a DiT over the
/// dense R^3 x C occupancy latent with cross-attention to the image tokens.
///
///     tokens = input_layer(patchify(x)) + pos_emb            (fp32, x-major token order)
///     t_emb  = t_embedder(t)                                 (fp32)
///     tokens = blocks(tokens, t_emb, cond)                   (compute dtype)
///     out    = unpatchify(out_layer(layer_norm(tokens)))     (fp32, norm without affine, eps 1e-5)
///
/// The io layers, timestep embedder and `pos_emb` stay fp32 (as with the reference's `use_fp16`); the blocks use the
/// loader's dtype (the stored dtype when the loader has none).
public final class SparseStructureFlowModel {
    public struct Config: Decodable, Sendable {
        public var resolution: Int
        public var inChannels: Int
        public var modelChannels: Int
        public var condChannels: Int
        public var outChannels: Int
        public var numBlocks: Int
        public var numHeads: Int?
        public var numHeadChannels: Int?
        public var mlpRatio: Double?
        public var patchSize: Int?
        public var peMode: String?
        public var useFp16: Bool?
        public var shareMod: Bool?
        public var qkRmsNorm: Bool?
        public var qkRmsNormCross: Bool?

        enum CodingKeys: String, CodingKey {
            case resolution, inChannels = "in_channels", modelChannels = "model_channels",
                 condChannels = "cond_channels", outChannels = "out_channels", numBlocks = "num_blocks",
                 numHeads = "num_heads", numHeadChannels = "num_head_channels", mlpRatio = "mlp_ratio",
                 patchSize = "patch_size", peMode = "pe_mode", useFp16 = "use_fp16", shareMod = "share_mod",
                 qkRmsNorm = "qk_rms_norm", qkRmsNormCross = "qk_rms_norm_cross"
        }

        public init(resolution: Int, inChannels: Int, modelChannels: Int, condChannels: Int, outChannels: Int,
                    numBlocks: Int, numHeads: Int? = nil, numHeadChannels: Int? = 64, mlpRatio: Double? = 4,
                    patchSize: Int? = 2, peMode: String? = "ape", useFp16: Bool? = false, shareMod: Bool? = false,
                    qkRmsNorm: Bool? = false, qkRmsNormCross: Bool? = false) {
            self.resolution = resolution
            self.inChannels = inChannels
            self.modelChannels = modelChannels
            self.condChannels = condChannels
            self.outChannels = outChannels
            self.numBlocks = numBlocks
            self.numHeads = numHeads
            self.numHeadChannels = numHeadChannels
            self.mlpRatio = mlpRatio
            self.patchSize = patchSize
            self.peMode = peMode
            self.useFp16 = useFp16
            self.shareMod = shareMod
            self.qkRmsNorm = qkRmsNorm
            self.qkRmsNormCross = qkRmsNormCross
        }

        public var heads: Int { numHeads ?? modelChannels / (numHeadChannels ?? 64) }
        public var patch: Int { patchSize ?? 2 }
        /// Tokens per axis.
        public var gridSize: Int { resolution / patch }
    }

    public let config: Config
    public let tEmbedder: TimestepEmbedder
    public let inputLayer: Linear
    public let outLayer: Linear
    /// [tokens, modelChannels] fp32 absolute position embedding (a buffer of the checkpoint).
    public let posEmb: Tensor
    public let blocks: [ModulatedTransformerCrossBlock]
    /// The blocks' compute dtype.
    public let dtype: DType

    public init(config: Config, weights w: WeightLoader) throws {
        let c = config
        guard c.patch >= 1, c.resolution % c.patch == 0 else {
            throw TrellisError.unsupportedConfig("resolution \(c.resolution) is not a multiple of patch_size \(c.patch)")
        }
        guard (c.peMode ?? "ape") == "ape" else {
            throw TrellisError.unsupportedConfig("pe_mode '\(c.peMode ?? "")' (only 'ape' is implemented)")
        }
        guard !(c.shareMod ?? false) else {
            throw TrellisError.unsupportedConfig("share_mod true (no released checkpoint uses it)")
        }
        guard c.numBlocks > 0 else { throw TrellisError.unsupportedConfig("num_blocks must be positive") }
        self.config = c
        let w32 = w.with(dtype: .float32)
        let patchVolume = c.patch * c.patch * c.patch
        tEmbedder = try TimestepEmbedder(w32.pp("t_embedder"), hiddenSize: c.modelChannels)
        inputLayer = try Linear(w32.pp("input_layer"), inFeatures: c.inChannels * patchVolume, outFeatures: c.modelChannels)
        outLayer = try Linear(w32.pp("out_layer"), inFeatures: c.modelChannels, outFeatures: c.outChannels * patchVolume)
        let tokens = c.gridSize * c.gridSize * c.gridSize
        posEmb = try w32.tensor("pos_emb", shape: [tokens, c.modelChannels])
        blocks = try (0..<c.numBlocks).map { i in
            try ModulatedTransformerCrossBlock(w.pp("blocks").pp(i), channels: c.modelChannels,
                                               ctxChannels: c.condChannels, heads: c.heads,
                                               mlpRatio: c.mlpRatio ?? 4, qkRMSNorm: c.qkRmsNorm ?? false,
                                               qkRMSNormCross: c.qkRmsNormCross ?? false)
        }
        dtype = blocks[0].dtype
    }

    /// Loads a `{"name", "args"}` checkpoint JSON's args plus its weights.
    public convenience init(args: [String: Any], weights: WeightLoader) throws {
        let data = try JSONSerialization.data(withJSONObject: args)
        try self.init(config: JSONDecoder().decode(Config.self, from: data), weights: weights)
    }

    /// x [B, in, R, R, R], t [B] model times (1000·t), cond [B, Lc, condChannels] -> [B, out, R, R, R] fp32.
    /// `observe` receives intermediates ("t_emb", "block{k}") when given.
    public func callAsFunction(_ x: Tensor, t: Tensor, cond: Tensor,
                               observe: ((String, Tensor) throws -> Void)? = nil) throws -> Tensor {
        let b = x.size(0)
        guard cond.ndim == 3, cond.size(0) == b, cond.size(2) == config.condChannels else {
            throw TrellisError.badInput("cond has shape \(cond.shape), expected [\(b), L, \(config.condChannels)]")
        }
        return try self(x, t: t, condition: condition(cond), observe: observe)
    }

    /// The condition [B, Lc, condChannels] prepared for the blocks: every block's cross-attention keys and values.
    /// Sampler steps share one condition, so they share one preparation.
    public func condition(_ cond: Tensor) throws -> StructureFlowCondition {
        guard cond.ndim == 3, cond.size(2) == config.condChannels else {
            throw TrellisError.badInput("cond has shape \(cond.shape), expected [B, L, \(config.condChannels)]")
        }
        let context = try cond.cast(dtype)
        return StructureFlowCondition(batchSize: cond.size(0), keysValues: try blocks.map { try $0.crossAttn.keysValues(context) })
    }

    /// The forward with a prepared condition (see `condition(_:)`).
    public func callAsFunction(_ x: Tensor, t: Tensor, condition: StructureFlowCondition,
                               observe: ((String, Tensor) throws -> Void)? = nil) throws -> Tensor {
        let c = config
        let b = x.size(0)
        guard x.shape == [b, c.inChannels, c.resolution, c.resolution, c.resolution] else {
            throw TrellisError.badInput("x has shape \(x.shape), expected [B, \(c.inChannels), \(c.resolution), "
                                        + "\(c.resolution), \(c.resolution)]")
        }
        guard t.shape == [b] else { throw TrellisError.badInput("t has shape \(t.shape), expected [\(b)]") }
        guard condition.batchSize == b else {
            throw TrellisError.badInput("the condition has \(condition.batchSize) batch items, x has \(b)")
        }
        let x32 = try x.cast(.float32)
        var h = try patchify(x32, patch: c.patch)
        h = try h.reshape([b, h.size(1), -1]).transpose(1, 2)          // [B, N, C*p^3]
        h = try inputLayer(h) + posEmb.unsqueeze(0)
        let tEmb = try tEmbedder(t)
        try observe?("t_emb", tEmb)
        let mod = try tEmb.cast(dtype)
        h = try h.cast(dtype)
        for (k, (block, kv)) in zip(blocks, condition.keysValues).enumerated() {
            h = try block(h, mod: mod, keys: kv.keys, values: kv.values)
            try observe?("block\(k)", h)
        }
        h = try F.layerNorm(h.cast(.float32), shape: [c.modelChannels], eps: 1e-5)
        h = try outLayer(h)                                              // [B, N, out*p^3]
        let g = c.gridSize
        h = try h.transpose(1, 2).reshape([b, h.size(2), g, g, g])
        return try unpatchify(h, patch: c.patch).contiguous()
    }

    /// The same with a scalar model time broadcast over the batch (float32, on x's device).
    public func callAsFunction(_ x: Tensor, time: Double, cond: Tensor) throws -> Tensor {
        let t = try Tensor.full([x.size(0)], value: time, dtype: .float32, device: x.device)
        return try self(x, t: t, cond: cond)
    }

    /// The same with a prepared condition.
    public func callAsFunction(_ x: Tensor, time: Double, condition: StructureFlowCondition) throws -> Tensor {
        let t = try Tensor.full([x.size(0)], value: time, dtype: .float32, device: x.device)
        return try self(x, t: t, condition: condition)
    }

    /// The model closure for `FlowEulerGuidanceIntervalSampler`: the sampler passes the same cond and
    /// cat(cond, negCond) tensors at every step, so each is prepared (cross-attention keys and values) once.
    public func samplerModel() -> FlowEulerGuidanceIntervalSampler.Model {
        let conditions = PreparedConditions { [self] c in try self.condition(c) }
        return { [self] x, t, c in try self(x, time: t, condition: conditions(c)) }
    }
}

/// A condition prepared for `SparseStructureFlowModel`: every block's cross-attention keys and values
/// ([B, H, Lc, Dh] each), computed once and shared by all sampler steps.
public final class StructureFlowCondition {
    public let batchSize: Int
    let keysValues: [(keys: Tensor, values: Tensor)]

    init(batchSize: Int, keysValues: [(keys: Tensor, values: Tensor)]) {
        self.batchSize = batchSize
        self.keysValues = keysValues
    }
}

/// Prepared conditions by condition tensor (identity), for samplers that pass the same cond / cat(cond, negCond)
/// tensors to every step. Holds the tensors it was asked about, so an identity is never reused while cached.
final class PreparedConditions<Prepared> {
    private var entries: [(cond: Tensor, prepared: Prepared)] = []
    private let prepare: (Tensor) throws -> Prepared

    init(_ prepare: @escaping (Tensor) throws -> Prepared) { self.prepare = prepare }

    func callAsFunction(_ cond: Tensor) throws -> Prepared {
        if let hit = entries.first(where: { $0.cond === cond }) { return hit.prepared }
        let prepared = try prepare(cond)
        entries.append((cond, prepared))
        return prepared
    }
}

/// [B, C, X, Y, Z] -> [B, C*p^3, X/p, Y/p, Z/p] (channel index = c*p^3 + (i*p + j)*p + k).
func patchify(_ x: Tensor, patch p: Int) throws -> Tensor {
    if p == 1 { return x }
    let (b, c, sx, sy, sz) = (x.size(0), x.size(1), x.size(2), x.size(3), x.size(4))
    guard sx % p == 0, sy % p == 0, sz % p == 0 else {
        throw TrellisError.badInput("spatial shape \([sx, sy, sz]) is not divisible by patch \(p)")
    }
    return try x.reshape([b, c, sx / p, p, sy / p, p, sz / p, p]).permute([0, 1, 3, 5, 7, 2, 4, 6])
        .reshape([b, c * p * p * p, sx / p, sy / p, sz / p])
}

/// Inverse of `patchify`.
func unpatchify(_ x: Tensor, patch p: Int) throws -> Tensor {
    if p == 1 { return x }
    let (b, cp, gx, gy, gz) = (x.size(0), x.size(1), x.size(2), x.size(3), x.size(4))
    let c = cp / (p * p * p)
    return try x.reshape([b, c, p, p, p, gx, gy, gz]).permute([0, 1, 5, 2, 6, 3, 7, 4])
        .reshape([b, c, gx * p, gy * p, gz * p])
}
