import Foundation
import NN
import TorchShim

/// `args` of a TRELLIS `SLatFlowModel` / `ElasticSLatFlowModel` checkpoint JSON.
public struct SLatFlowConfig: Decodable, Sendable {
    public var resolution: Int
    public var inChannels: Int
    public var modelChannels: Int
    public var condChannels: Int
    public var outChannels: Int
    public var numBlocks: Int
    public var numHeads: Int?
    public var numHeadChannels: Int
    public var mlpRatio: Double
    public var patchSize: Int
    public var numIORes: Int
    public var ioBlockChannels: [Int]
    public var peMode: String
    public var useFP16: Bool
    public var useSkipConnection: Bool
    public var shareMod: Bool
    public var qkRMSNorm: Bool
    public var qkRMSNormCross: Bool

    enum CodingKeys: String, CodingKey {
        case resolution, inChannels = "in_channels", modelChannels = "model_channels", condChannels = "cond_channels"
        case outChannels = "out_channels", numBlocks = "num_blocks", numHeads = "num_heads"
        case numHeadChannels = "num_head_channels", mlpRatio = "mlp_ratio", patchSize = "patch_size"
        case numIORes = "num_io_res_blocks", ioBlockChannels = "io_block_channels", peMode = "pe_mode"
        case useFP16 = "use_fp16", useSkipConnection = "use_skip_connection", shareMod = "share_mod"
        case qkRMSNorm = "qk_rms_norm", qkRMSNormCross = "qk_rms_norm_cross"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        resolution = try c.decode(Int.self, forKey: .resolution)
        inChannels = try c.decode(Int.self, forKey: .inChannels)
        modelChannels = try c.decode(Int.self, forKey: .modelChannels)
        condChannels = try c.decode(Int.self, forKey: .condChannels)
        outChannels = try c.decode(Int.self, forKey: .outChannels)
        numBlocks = try c.decode(Int.self, forKey: .numBlocks)
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads)
        numHeadChannels = try c.decodeIfPresent(Int.self, forKey: .numHeadChannels) ?? 64
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? 4
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? 2
        numIORes = try c.decodeIfPresent(Int.self, forKey: .numIORes) ?? 2
        ioBlockChannels = try c.decode([Int].self, forKey: .ioBlockChannels)
        peMode = try c.decodeIfPresent(String.self, forKey: .peMode) ?? "ape"
        useFP16 = try c.decodeIfPresent(Bool.self, forKey: .useFP16) ?? false
        useSkipConnection = try c.decodeIfPresent(Bool.self, forKey: .useSkipConnection) ?? true
        shareMod = try c.decodeIfPresent(Bool.self, forKey: .shareMod) ?? false
        qkRMSNorm = try c.decodeIfPresent(Bool.self, forKey: .qkRMSNorm) ?? false
        qkRMSNormCross = try c.decodeIfPresent(Bool.self, forKey: .qkRMSNormCross) ?? false
    }

    public var heads: Int { numHeads ?? modelChannels / numHeadChannels }

    func validate() throws {
        guard peMode == "ape" else { throw WeightError.badConfig("SLat flow: pe_mode '\(peMode)' is not supported (only 'ape')") }
        guard !shareMod else { throw WeightError.badConfig("SLat flow: share_mod is not supported") }
        guard !ioBlockChannels.isEmpty, 1 << ioBlockChannels.count == patchSize else {
            throw WeightError.badConfig("SLat flow: patch_size \(patchSize) must be 2^len(io_block_channels) (\(ioBlockChannels))")
        }
        guard numIORes >= 1 else { throw WeightError.badConfig("SLat flow: num_io_res_blocks must be >= 1") }
        guard heads > 0, modelChannels % heads == 0 else {
            throw WeightError.badConfig("SLat flow: \(modelChannels) channels do not split into \(heads) heads")
        }
    }
}

/// Intermediate tensors of a forward pass, by name (e.g. "input_block0.feats", "block3.feats").
public typealias SLatCapture = (String, Tensor) -> Void

/// TRELLIS `SparseResBlock3d` (emb-modulated, optional 2x down/upsampling before norm1).
/// Keys: `norm1`, `conv1.conv`, `conv2.conv`, `emb_layers.1`, `skip_connection` (when channels change).
struct SLatSparseResBlock {
    enum Resample { case none, down, up }
    let norm1: TrellisLayerNorm
    let norm2: TrellisLayerNorm
    let conv1: SparseSubMConv3d
    let conv2: SparseSubMConv3d
    let embedding: Linear
    let skip: Linear?
    let resample: Resample
    let outChannels: Int

    init(_ w: WeightLoader, channels: Int, embChannels: Int, outChannels: Int, resample: Resample) throws {
        norm1 = try TrellisLayerNorm(w.pp("norm1"), dim: channels, eps: 1e-6, kernels: .reference)
        norm2 = TrellisLayerNorm(dim: outChannels, eps: 1e-6, kernels: .reference)
        conv1 = try SparseSubMConv3d(w.pp("conv1"), inChannels: channels, outChannels: outChannels)
        conv2 = try SparseSubMConv3d(w.pp("conv2"), inChannels: outChannels, outChannels: outChannels)
        embedding = try Linear(w.pp("emb_layers").pp(1), inFeatures: embChannels, outFeatures: 2 * outChannels)
        skip = channels != outChannels ? try Linear(w.pp("skip_connection"), inFeatures: channels, outFeatures: outChannels) : nil
        self.resample = resample
        self.outChannels = outChannels
    }

    func callAsFunction(_ input: SparseTensor, emb: Tensor) throws -> SparseTensor {
        let mod = try embedding(emb.silu()).chunk(2, dim: 1)
        var x = input
        switch resample {
        case .none: break
        case .down: x = try SparseResample.downsample(x)
        case .up: x = try SparseResample.upsample(x)
        }
        let scale = try x.layout.perRow(mod[0]), shift = try x.layout.perRow(mod[1])
        var h = try x.replacing(norm1(x.feats).silu())
        h = try conv1(h)
        h = try h.replacing((norm2(h.feats) * (scale + 1) + shift).silu())
        h = try conv2(h)
        let residual = try skip.map { try $0(x.feats) } ?? x.feats
        return try h.replacing(h.feats + residual)
    }
}

/// TRELLIS `SLatFlowModel` (and `ElasticSLatFlowModel`, same keys and maths): the structured-latent denoiser.
/// Sparse-conv res blocks at 64^3, one 2x downsampling, a stack of modulated cross-attention transformer blocks over
/// the 32^3 voxels (full attention per batch item), res blocks back up with skip connections.
///
/// Precision follows `use_fp16` in the reference: the loader's dtype (fp16/bf16 on GPU) for the torso (input/out
/// blocks and transformer blocks), float32 for the time embedder, input/out layers, norms and RMS gains.
public final class SLatFlowModel {
    public let config: SLatFlowConfig
    /// Compute dtype of the torso.
    public let dtype: DType
    public let device: Device
    let tEmbedder: TimestepEmbedder
    let inputLayer: Linear
    let inputBlocks: [SLatSparseResBlock]
    let blocks: [ModulatedTransformerCrossBlock]
    let outBlocks: [SLatSparseResBlock]
    let outLayer: Linear

    public init(_ w: WeightLoader, config: SLatFlowConfig) throws {
        try config.validate()
        self.config = config
        dtype = w.dtype ?? .float32
        device = w.device
        let torso = w.with(dtype: dtype)
        let w32 = w.with(dtype: .float32)
        let c = config.modelChannels
        tEmbedder = try TimestepEmbedder(w.pp("t_embedder"), hiddenSize: c)
        let io = config.ioBlockChannels
        inputLayer = try Linear(w32.pp("input_layer"), inFeatures: config.inChannels, outFeatures: io[0])

        var inputBlocks: [SLatSparseResBlock] = []
        for (chs, next) in zip(io, Array(io.dropFirst()) + [c]) {
            for _ in 0..<(config.numIORes - 1) {
                inputBlocks.append(try SLatSparseResBlock(torso.pp("input_blocks").pp(inputBlocks.count), channels: chs,
                                                          embChannels: c, outChannels: chs, resample: .none))
            }
            inputBlocks.append(try SLatSparseResBlock(torso.pp("input_blocks").pp(inputBlocks.count), channels: chs,
                                                      embChannels: c, outChannels: next, resample: .down))
        }
        self.inputBlocks = inputBlocks

        blocks = try (0..<config.numBlocks).map {
            try ModulatedTransformerCrossBlock(torso.pp("blocks").pp($0), channels: c, ctxChannels: config.condChannels,
                                               heads: config.heads, mlpRatio: config.mlpRatio, qkRMSNorm: config.qkRMSNorm,
                                               qkRMSNormCross: config.qkRMSNormCross, kernels: .reference)
        }

        var outBlocks: [SLatSparseResBlock] = []
        let skipFactor = config.useSkipConnection ? 2 : 1
        for (chs, prev) in zip(io.reversed(), [c] + Array(io.dropFirst().reversed())) {
            outBlocks.append(try SLatSparseResBlock(torso.pp("out_blocks").pp(outBlocks.count), channels: prev * skipFactor,
                                                    embChannels: c, outChannels: chs, resample: .up))
            for _ in 0..<(config.numIORes - 1) {
                outBlocks.append(try SLatSparseResBlock(torso.pp("out_blocks").pp(outBlocks.count), channels: chs * skipFactor,
                                                        embChannels: c, outChannels: chs, resample: .none))
            }
        }
        self.outBlocks = outBlocks
        outLayer = try Linear(w32.pp("out_layer"), inFeatures: io[0], outFeatures: config.outChannels)
    }

    /// Velocity for the noisy latent `x` ([N, in_channels] on the voxels), model time `t` ([B] = 1000 t) and image
    /// condition `cond` [B, Lc, cond_channels]. Returns float32 features in `x`'s voxel order.
    public func callAsFunction(_ x: SparseTensor, t: Tensor, cond: Tensor, capture: SLatCapture? = nil) throws -> SparseTensor {
        try self(x, t: t, condition: condition(cond), capture: capture)
    }

    /// The same with the condition prepared once by `condition(_:)` (reused across sampler steps).
    public func callAsFunction(_ x: SparseTensor, t: Tensor, condition: SLatFlowCondition,
                               capture: SLatCapture? = nil) throws -> SparseTensor {
        let b = x.layout.batchSize
        guard x.channels == config.inChannels else {
            throw SparseTensorError("SLat flow expects \(config.inChannels) latent channels, got \(x.channels)")
        }
        guard t.count == b else { throw SparseTensorError("SLat flow: \(t.count) timesteps for \(b) batch items") }
        guard condition.batchSize == b else {
            throw SparseTensorError("SLat flow: the condition has \(condition.batchSize) batch items, the voxels \(b)")
        }
        guard x.layout.extent <= config.resolution else {
            throw SparseTensorError("SLat flow: voxel coordinates reach \(x.layout.extent - 1), resolution is \(config.resolution)")
        }
        guard x.layout.device == device else {
            throw SparseTensorError("SLat flow: the voxel coordinates are on \(x.layout.device), the model on \(device)")
        }
        let tEmb = try timeEmbedding(t)
        let (coarse, skips) = try encode(x, tEmb: tEmb, capture: capture)
        let h = try transformer(coarse, tEmb: tEmb, condition: condition, capture: capture)
        return try decode(h, skips: skips, tEmb: tEmb, capture: capture)
    }

    /// The image condition [B, Lc, cond_channels] prepared for the transformer blocks: every block's cross-attention
    /// keys and values, in the torso dtype on the model's device.
    public func condition(_ cond: Tensor) throws -> SLatFlowCondition {
        guard cond.ndim == 3, cond.size(2) == config.condChannels else {
            throw SparseTensorError("SLat flow: cond must be [B, L, \(config.condChannels)], got \(cond.shape)")
        }
        let context = try cond.to(device, dtype: dtype)
        return SLatFlowCondition(batchSize: cond.size(0), keysValues: try blocks.map { try $0.crossAttn.keysValues(context) })
    }

    /// Time embedding [B, C] in the torso dtype.
    package func timeEmbedding(_ t: Tensor) throws -> Tensor { try tEmbedder(t.to(device, dtype: .float32)).to(dtype) }

    /// Input layer and input res blocks (down to the coarse voxels); returns the skip features of every block.
    package func encode(_ x: SparseTensor, tEmb: Tensor, capture: SLatCapture?) throws -> (SparseTensor, [Tensor]) {
        var h = try x.replacing(inputLayer(x.feats.to(device, dtype: .float32)).to(dtype))
        capture?("input_layer.feats", h.feats)
        var skips: [Tensor] = []
        for (i, block) in inputBlocks.enumerated() {
            let before = h.layout
            h = try block(h, emb: tEmb)
            skips.append(h.feats)
            if let capture {
                if block.resample == .down {
                    let map = try SparseResample.downsampleMap(before)
                    capture("downsample.coords", map.coarse.coords)
                    capture("downsample.fine_to_coarse", map.fineToCoarse)
                }
                capture("input_block\(i).feats", h.feats)
                capture("input_block\(i).coords", h.coords)
            }
        }
        return (h, skips)
    }

    /// Out res blocks with skip connections (back to the fine voxels), final norm and output layer (float32).
    package func decode(_ coarse: SparseTensor, skips: [Tensor], tEmb: Tensor, capture: SLatCapture?) throws -> SparseTensor {
        var h = coarse
        for (i, (block, skip)) in zip(outBlocks, skips.reversed()).enumerated() {
            let input = config.useSkipConnection ? try h.replacing(Tensor.cat([h.feats, skip], dim: 1)) : h
            h = try block(input, emb: tEmb)
            capture?("out_block\(i).feats", h.feats)
            capture?("out_block\(i).coords", h.coords)
        }
        let normed = try F.layerNorm(h.feats, shape: [h.channels], eps: 1e-5)
        return try h.replacing(outLayer(normed.to(.float32)))
    }

    /// Position embedding + transformer blocks on the coarse voxels, run packed as [B, L, C].
    package func transformer(_ h: SparseTensor, tEmb: Tensor, condition: SLatFlowCondition, capture: SLatCapture?) throws -> SparseTensor {
        let pos = try absolutePositionEmbedding(coords: h.coords.narrow(1, start: 1, length: 3),
                                                channels: config.modelChannels).to(dtype)
        let packing = try h.layout.batchPacking()
        var tokens = try packing.pack(h.feats + pos)
        for (k, (block, kv)) in zip(blocks, condition.keysValues).enumerated() {
            tokens = try block(tokens, mod: tEmb, keys: kv.keys, values: kv.values, keyMask: packing.keyMask)
            if let capture { capture("block\(k).feats", try packing.unpack(tokens)) }
        }
        return try h.replacing(packing.unpack(tokens))
    }
}

/// An image condition prepared for `SLatFlowModel`: the cross-attention keys and values of every block
/// ([B, H, Lc, D] each). The condition is the same at every sampler step, so one preparation serves them all.
public final class SLatFlowCondition {
    public let batchSize: Int
    let keysValues: [(keys: Tensor, values: Tensor)]

    init(batchSize: Int, keysValues: [(keys: Tensor, values: Tensor)]) {
        self.batchSize = batchSize
        self.keysValues = keysValues
    }
}

/// The released SLat flow checkpoint names this class; the Elastic mixin only changes training-time checkpointing.
public typealias ElasticSLatFlowModel = SLatFlowModel

/// One SLat flow evaluation per sampler step for a fixed voxel set: the conditional and unconditional passes of
/// classifier-free guidance run as ONE forward over the voxel set repeated twice (batch 2B), with cat(cond, negCond)
/// as the condition. Layouts (neighbour maps, downsampling, packing) and the conditions' cross-attention keys/values
/// are built on the first call that needs them and reused by every later step.
public final class SLatGuidedDenoiser {
    public let model: SLatFlowModel
    /// The B samples' voxels.
    public let layout: SparseLayout
    let doubled: SparseLayout
    let cond: Tensor
    let pairedCond: Tensor

    /// cond, negCond: [B, Lc, Cc] or [1, Lc, Cc] (broadcast to the B samples).
    public init(model: SLatFlowModel, layout: SparseLayout, cond: Tensor, negCond: Tensor) throws {
        guard layout.device == model.device else {
            throw SparseTensorError("SLat sampler: the voxel coordinates are on \(layout.device), the model on \(model.device)")
        }
        self.model = model
        self.layout = layout
        let b = layout.batchSize
        func perSample(_ c: Tensor, _ name: String) throws -> Tensor {
            guard c.ndim == 3, c.size(0) == b || c.size(0) == 1 else {
                throw SparseTensorError("SLat sampler: \(name) must be [\(b) or 1, L, C], got \(c.shape)")
            }
            let moved = try c.to(model.device, dtype: model.dtype)
            return c.size(0) == b ? moved : try moved.expand([b, c.size(1), c.size(2)]).contiguous()
        }
        self.cond = try perSample(cond, "cond")
        let neg = try perSample(negCond, "neg_cond")
        guard neg.shape == self.cond.shape else {
            throw SparseTensorError("SLat sampler: neg_cond \(neg.shape) does not match cond \(self.cond.shape)")
        }
        pairedCond = try Tensor.cat([self.cond, neg], dim: 0)
        doubled = try SparseLayout.repeated(layout, copies: 2)
    }

    /// cond alone and cat(cond, negCond), each prepared on its first use and kept for the remaining steps.
    private var singleCondition: SLatFlowCondition?
    private var pairedCondition: SLatFlowCondition?

    private func condition(paired: Bool) throws -> SLatFlowCondition {
        if paired {
            if let pairedCondition { return pairedCondition }
            let prepared = try model.condition(pairedCond)
            pairedCondition = prepared
            return prepared
        }
        if let singleCondition { return singleCondition }
        let prepared = try model.condition(cond)
        singleCondition = prepared
        return prepared
    }

    /// Velocity at sampler time `t` (the model sees 1000 t) for latents `x` [N, C]. Guided:
    /// (1 + s) v(x, cond) - s v(x, negCond) from one doubled forward; unguided: v(x, cond).
    public func velocity(_ x: Tensor, t: Double, cfgStrength: Double, guided: Bool) throws -> Tensor {
        let b = layout.batchSize
        if !guided {
            let tt = try Tensor.full([b], value: 1000 * t, dtype: .float32, device: model.device)
            return try model(SparseTensor(feats: x, layout: layout), t: tt, condition: condition(paired: false)).feats
        }
        let tt = try Tensor.full([2 * b], value: 1000 * t, dtype: .float32, device: model.device)
        let v = try model(SparseTensor(feats: Tensor.cat([x, x], dim: 0), layout: doubled), t: tt,
                          condition: condition(paired: true)).feats
        let n = layout.count
        let vCond = try v.narrow(0, start: 0, length: n), vUncond = try v.narrow(0, start: n, length: n)
        return try vCond * (1 + cfgStrength) - vUncond * cfgStrength
    }
}

/// `slat_normalization` of the pipeline config: the flow samples normalised latents; the decoder takes
/// samples * std + mean (per channel).
public struct SLatNormalization: Decodable, Sendable {
    public var mean: [Double]
    public var std: [Double]

    public init(mean: [Double], std: [Double]) {
        self.mean = mean
        self.std = std
    }

    /// feats [N, C] -> feats * std + mean, float32 on feats' device.
    public func denormalize(_ feats: Tensor) throws -> Tensor {
        guard mean.count == std.count, feats.ndim == 2, feats.size(1) == mean.count else {
            throw SparseTensorError("slat_normalization has \(mean.count) means and \(std.count) stds for features \(feats.shape)")
        }
        let s = try Tensor(std.map { Float($0) }).to(feats.device).unsqueeze(0)
        let m = try Tensor(mean.map { Float($0) }).to(feats.device).unsqueeze(0)
        return try feats.to(.float32) * s + m
    }
}
