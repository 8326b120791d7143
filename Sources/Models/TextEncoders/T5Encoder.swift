import Foundation
import NN
import TorchShim

/// transformers `T5EncoderModel` (T5 v1.1 / T5-XXL as used by FLUX and SD3): pre-norm blocks with an RMS-style
/// T5LayerNorm, unscaled attention plus a relative-position bias computed once (by block 0) and shared by
/// every block, and a gated-GELU feed-forward.
///
/// Precision follows transformers: in fp16, `wo` stays in fp32 (`_keep_in_fp32_modules`) and every sub-layer's
/// output is clamped to the fp16 range (the residual stream of T5-XXL overflows fp16 otherwise). The FLUX
/// reference runs the encoder in bf16, which needs neither.
public struct T5EncoderModel {
    public struct Config: Decodable, Sendable {
        public var vocabSize: Int
        public var dModel: Int
        public var dKV: Int
        public var dFF: Int
        public var numLayers: Int
        public var numHeads: Int
        public var relativeAttentionNumBuckets: Int
        public var relativeAttentionMaxDistance: Int
        public var layerNormEpsilon: Double
        public var feedForwardProj: String

        enum CodingKeys: String, CodingKey {
            case vocabSize = "vocab_size", dModel = "d_model", dKV = "d_kv", dFF = "d_ff", numLayers = "num_layers"
            case numHeads = "num_heads", relativeAttentionNumBuckets = "relative_attention_num_buckets"
            case relativeAttentionMaxDistance = "relative_attention_max_distance"
            case layerNormEpsilon = "layer_norm_epsilon", feedForwardProj = "feed_forward_proj"
        }

        /// transformers' T5Config defaults (what a config.json that omits a field means).
        public init(vocabSize: Int = 32128, dModel: Int = 512, dKV: Int = 64, dFF: Int = 2048, numLayers: Int = 6,
                    numHeads: Int = 8, relativeAttentionNumBuckets: Int = 32, relativeAttentionMaxDistance: Int = 128,
                    layerNormEpsilon: Double = 1e-6, feedForwardProj: String = "relu") {
            self.vocabSize = vocabSize
            self.dModel = dModel
            self.dKV = dKV
            self.dFF = dFF
            self.numLayers = numLayers
            self.numHeads = numHeads
            self.relativeAttentionNumBuckets = relativeAttentionNumBuckets
            self.relativeAttentionMaxDistance = relativeAttentionMaxDistance
            self.layerNormEpsilon = layerNormEpsilon
            self.feedForwardProj = feedForwardProj
        }

        /// T5 v1.1 XXL encoder (FLUX/SD3 text_encoder_2).
        public static let v11XXL = Config(dModel: 4096, dFF: 10240, numLayers: 24, numHeads: 64,
                                          feedForwardProj: "gated-gelu")

        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Config()
            vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
            dModel = try c.decodeIfPresent(Int.self, forKey: .dModel) ?? d.dModel
            dKV = try c.decodeIfPresent(Int.self, forKey: .dKV) ?? d.dKV
            dFF = try c.decodeIfPresent(Int.self, forKey: .dFF) ?? d.dFF
            numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? d.numLayers
            numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? d.numHeads
            relativeAttentionNumBuckets = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionNumBuckets)
                ?? d.relativeAttentionNumBuckets
            relativeAttentionMaxDistance = try c.decodeIfPresent(Int.self, forKey: .relativeAttentionMaxDistance)
                ?? d.relativeAttentionMaxDistance
            layerNormEpsilon = try c.decodeIfPresent(Double.self, forKey: .layerNormEpsilon) ?? d.layerNormEpsilon
            feedForwardProj = try c.decodeIfPresent(String.self, forKey: .feedForwardProj) ?? d.feedForwardProj
        }

        /// `feed_forward_proj` as transformers reads it: "[gated-]ACT", with "gated-gelu" meaning gelu_new.
        public func feedForward() throws -> (gated: Bool, activation: Activation) {
            let parts = feedForwardProj.split(separator: "-").map(String.init)
            let gated = parts.count == 2 && parts[0] == "gated"
            guard parts.count == 1 || gated, let name = parts.last else {
                throw WeightError.badConfig("feed_forward_proj '\(feedForwardProj)' is not ACT or gated-ACT")
            }
            if feedForwardProj == "gated-gelu" { return (true, .newGelu) }
            guard let act = Activation(rawValue: name) else {
                throw WeightError.badConfig("unsupported T5 activation '\(name)'")
            }
            return (gated, act)
        }

        /// Every checkpoint key and shape (embeddings stored once as `shared.weight`).
        public func parameterShapes() throws -> [String: [Int]] {
            let inner = numHeads * dKV
            let gated = try feedForward().gated
            var s: [String: [Int]] = ["shared.weight": [vocabSize, dModel], "encoder.final_layer_norm.weight": [dModel]]
            for i in 0..<numLayers {
                let p = "encoder.block.\(i).layer."
                for n in ["q", "k", "v"] { s[p + "0.SelfAttention.\(n).weight"] = [inner, dModel] }
                s[p + "0.SelfAttention.o.weight"] = [dModel, inner]
                if i == 0 { s[p + "0.SelfAttention.relative_attention_bias.weight"] = [relativeAttentionNumBuckets, numHeads] }
                s[p + "0.layer_norm.weight"] = [dModel]
                for n in gated ? ["wi_0", "wi_1"] : ["wi"] { s[p + "1.DenseReluDense.\(n).weight"] = [dFF, dModel] }
                s[p + "1.DenseReluDense.wo.weight"] = [dModel, dFF]
                s[p + "1.layer_norm.weight"] = [dModel]
            }
            return s
        }
    }

    /// T5LayerNorm: x * rsqrt(mean(x^2) + eps) with the variance in fp32, cast to the weight's half type.
    struct LayerNormT5 {
        let weight: Tensor
        let eps: Double

        init(_ w: WeightLoader, dim: Int, eps: Double) throws {
            weight = try w.tensor("weight", shape: [dim])
            self.eps = eps
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let variance = try x.to(.float32).square().mean([-1], keepDim: true)
            var h = try x * (variance + eps).rsqrt()
            if weight.dtype == .float16 || weight.dtype == .bfloat16 { h = try h.to(weight.dtype) }
            return try weight * h
        }
    }

    struct SelfAttention {
        let q: Linear, k: Linear, v: Linear, o: Linear
        let heads: Int, dKV: Int

        init(_ w: WeightLoader, config c: Config) throws {
            let inner = c.numHeads * c.dKV
            q = try Linear(w.pp("q"), inFeatures: c.dModel, outFeatures: inner, bias: false)
            k = try Linear(w.pp("k"), inFeatures: c.dModel, outFeatures: inner, bias: false)
            v = try Linear(w.pp("v"), inFeatures: c.dModel, outFeatures: inner, bias: false)
            o = try Linear(w.pp("o"), inFeatures: inner, outFeatures: c.dModel, bias: false)
            heads = c.numHeads
            dKV = c.dKV
        }

        /// `bias`: the shared relative-position bias [1, H, L, L]. T5 does not scale q·k.
        func callAsFunction(_ x: Tensor, bias: Tensor) throws -> Tensor {
            let (b, l) = (x.size(0), x.size(1))
            let qh = try q(x).view([b, l, heads, dKV]).transpose(1, 2)
            let kh = try k(x).view([b, l, heads, dKV]).transpose(1, 2)
            let vh = try v(x).view([b, l, heads, dKV]).transpose(1, 2)
            let out = try F.scaledDotProductAttention(qh, kh, vh, mask: bias.to(qh.dtype), scale: 1.0)
            return try o(out.transpose(1, 2).reshape([b, l, heads * dKV]))
        }
    }

    struct FeedForward {
        let wi0: Linear
        let wi1: Linear?
        let wo: Linear
        let activation: Activation

        init(_ w: WeightLoader, config c: Config) throws {
            let (gated, act) = try c.feedForward()
            if gated {
                wi0 = try Linear(w.pp("wi_0"), inFeatures: c.dModel, outFeatures: c.dFF, bias: false)
                wi1 = try Linear(w.pp("wi_1"), inFeatures: c.dModel, outFeatures: c.dFF, bias: false)
            } else {
                wi0 = try Linear(w.pp("wi"), inFeatures: c.dModel, outFeatures: c.dFF, bias: false)
                wi1 = nil
            }
            // transformers keeps `wo` in fp32 when the model is loaded in fp16.
            let woLoader = w.dtype == .float16 ? w.with(dtype: .float32) : w
            wo = try Linear(woLoader.pp("wo"), inFeatures: c.dFF, outFeatures: c.dModel, bias: false)
            activation = act
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            var h = try activation(wi0(x))
            if let wi1 { h = try h * wi1(x) }
            if h.dtype != wo.weight.dtype { h = try h.to(wo.weight.dtype) }
            return try wo(h)
        }
    }

    struct Block {
        let attentionNorm: LayerNormT5
        let attention: SelfAttention
        let feedForwardNorm: LayerNormT5
        let feedForward: FeedForward

        init(_ w: WeightLoader, config c: Config) throws {
            attentionNorm = try LayerNormT5(w.pp("layer").pp(0).pp("layer_norm"), dim: c.dModel, eps: c.layerNormEpsilon)
            attention = try SelfAttention(w.pp("layer").pp(0).pp("SelfAttention"), config: c)
            feedForwardNorm = try LayerNormT5(w.pp("layer").pp(1).pp("layer_norm"), dim: c.dModel, eps: c.layerNormEpsilon)
            feedForward = try FeedForward(w.pp("layer").pp(1).pp("DenseReluDense"), config: c)
        }

        func callAsFunction(_ x: Tensor, bias: Tensor) throws -> Tensor {
            let h = try clampFP16(x + attention(attentionNorm(x), bias: bias))
            return try clampFP16(h + feedForward(feedForwardNorm(h)))
        }
    }

    /// Where the encoder blocks (95% of T5-XXL's 9 GiB) live between prompts.
    public enum BlockResidency: Sendable, Equatable {
        /// On the loader's device, like every other model.
        case device
        /// In pinned host memory; each block is copied to the loader's device for its turn and dropped after it
        /// (asynchronous copies on the compute stream: one block's weights on the GPU at a time). The 24 GB plan.
        case streamedFromHost
    }

    /// One block's weights in (pinned) host memory, with the keys the block reads.
    struct HostBlock {
        let weights: TensorDictionary
        let prefix: String
    }

    public let config: Config
    let embedTokens: Embedding
    let relativeAttentionBias: Embedding
    let blocks: [Block]
    let hostBlocks: [HostBlock]
    let finalLayerNorm: LayerNormT5
    public let blockResidency: BlockResidency

    /// `blockResidency` .streamedFromHost keeps the blocks in pinned host memory (pageable when CUDA is absent) and
    /// uploads each one to `w.device` as the forward pass reaches it.
    public init(_ w: WeightLoader, config: Config, blockResidency: BlockResidency = .device) throws {
        self.config = config
        guard config.numHeads > 0, config.numLayers > 0 else {
            throw WeightError.badConfig("T5 needs at least one layer and one head")
        }
        // Published checkpoints store the table once as `shared.weight` (tied with encoder.embed_tokens).
        let tableKey = w.contains("shared.weight") ? "shared" : "encoder.embed_tokens"
        embedTokens = try Embedding(w.pp(tableKey), count: config.vocabSize, dim: config.dModel)
        if tableKey == "shared" { w.pp("encoder").pp("embed_tokens").ignore(["weight"]) }
        let enc = w.pp("encoder")
        relativeAttentionBias = try Embedding(
            enc.pp("block").pp(0).pp("layer").pp(0).pp("SelfAttention").pp("relative_attention_bias"),
            count: config.relativeAttentionNumBuckets, dim: config.numHeads)
        self.blockResidency = blockResidency
        switch blockResidency {
        case .device:
            blocks = try (0..<config.numLayers).map { try Block(enc.pp("block").pp($0), config: config) }
            hostBlocks = []
        case .streamedFromHost:
            // Each block's tensors in host memory (pinned when CUDA is there), checked once by building the block.
            let pin = CUDA.isAvailable
            hostBlocks = try (0..<config.numLayers).map { i in
                let host = enc.pp("block").pp(i).with(device: .cpu)
                let prefix = host.prefix + "."
                var tensors: [String: Tensor] = [:]
                for key in w.source.keys where key.hasPrefix(prefix) {
                    let t = try host.tensor(String(key.dropFirst(prefix.count))).contiguous()
                    tensors[key] = pin ? try t.pinMemory() : t
                }
                let weights = TensorDictionary(tensors)
                _ = try Block(WeightLoader(weights, device: .cpu).pp(host.prefix), config: config)
                return HostBlock(weights: weights, prefix: host.prefix)
            }
            blocks = []
        }
        finalLayerNorm = try LayerNormT5(enc.pp("final_layer_norm"), dim: config.dModel, eps: config.layerNormEpsilon)
    }

    public var dtype: DType { embedTokens.weight.dtype }
    public var device: Device { embedTokens.weight.device }

    /// Bucket of each (query, key) offset, exactly as transformers' bidirectional `_relative_position_bucket`
    /// (the same float32 log arithmetic, run on the CPU once per sequence length). [L, L] int64.
    public static func relativePositionBuckets(length: Int, numBuckets: Int, maxDistance: Int) throws -> Tensor {
        // Small integers are exact in float32; truncation toward zero stands for the reference's `.to(long)`.
        let positions = try Tensor.arange(0, Double(length), dtype: .float32)
        let relative = try positions.unsqueeze(0) - positions.unsqueeze(1)  // memory - context
        let half = numBuckets / 2
        let maxExact = half / 2
        let direction = try relative.gt(0).to(.float32) * Double(half)
        let distance = try relative.abs()
        let logRatio = try (distance / Double(maxExact)).log()
        let scaled = try logRatio / Foundation.log(Double(maxDistance) / Double(maxExact)) * Double(half - maxExact)
        let large = try (scaled.trunc() + Double(maxExact)).clamp(max: Double(half - 1))
        return try (direction + Tensor.where(distance.lt(Double(maxExact)), distance, large)).to(.int64)
    }

    /// The relative-position bias [1, H, L, L] in the model's dtype (computed once, shared by all blocks).
    public func positionBias(length: Int) throws -> Tensor {
        let buckets = try T5EncoderModel.relativePositionBuckets(
            length: length, numBuckets: config.relativeAttentionNumBuckets, maxDistance: config.relativeAttentionMaxDistance)
        return try relativeAttentionBias(buckets.to(device)).permute([2, 0, 1]).unsqueeze(0)
    }

    /// last_hidden_state [B, L, d_model] for token ids [B, L] (no attention mask, as FLUX calls it).
    public func callAsFunction(_ inputIds: Tensor) throws -> Tensor {
        guard inputIds.ndim == 2, inputIds.size(1) >= 1 else {
            throw TextEncoderError("T5 input_ids must be [batch, length], got \(inputIds.shape)")
        }
        guard !inputIds.dtype.isFloatingPoint else {
            throw TextEncoderError("T5 input_ids must be integers, got \(inputIds.dtype)")
        }
        if inputIds.device == .cpu, inputIds.count > 0 {
            let (lo, hi) = (try inputIds.min().itemInt(), try inputIds.max().itemInt())
            guard lo >= 0, hi < config.vocabSize else {
                throw TextEncoderError("T5 token id out of range 0..<\(config.vocabSize): min \(lo), max \(hi)")
            }
        }
        let bias = try positionBias(length: inputIds.size(1))
        var h = try embedTokens(inputIds.to(device, dtype: .int64))
        for block in blocks { h = try block(h, bias: bias) }
        for host in hostBlocks {
            // Non-blocking copies from pinned memory, ordered on the stream before the block's kernels; the block's
            // device tensors are released when it goes out of scope, so the allocator reuses them for the next one.
            let uploads = try host.weights.tensors.mapValues { try $0.to(device, nonBlocking: true) }
            let block = try Block(WeightLoader(TensorDictionary(uploads), device: device, dtype: dtype).pp(host.prefix),
                                  config: config)
            h = try block(h, bias: bias)
        }
        return try finalLayerNorm(h)
    }
}

/// transformers' fp16 guard after each T5 sub-layer: clamp to ±(65504 - 1000) when the tensor holds an inf,
/// else ±65504 (decided on the device, without a host sync).
func clampFP16(_ x: Tensor) throws -> Tensor {
    guard x.dtype == .float16 else { return x }
    let hasInf = try x.abs().eq(Double.infinity).any()
    let maxValue = 65504.0
    let bound = try Tensor.where(hasInf, Tensor.full([], value: maxValue - 1000, dtype: .float16, device: x.device),
                                 Tensor.full([], value: maxValue, dtype: .float16, device: x.device))
    return try x.clamp(min: bound.neg(), max: bound)
}
