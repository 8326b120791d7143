import Foundation
import NN
import TorchShim

/// open_clip `CLIP` as `convnext_large_d` builds it (open_clip_torch 2.29.0): a timm ConvNeXt image tower with
/// an MLP projection head (`TimmModel`, `timm_pool: ""`, `timm_proj: "mlp"`) and the CLIP text transformer.
/// Keys as open_clip's state_dict: `visual.trunk.*`, `visual.head.*`, `token_embedding`, `positional_embedding`,
/// `transformer.resblocks.*`, `ln_final`, `text_projection`, `logit_scale`.
///
/// `encodeImage`/`encodeText` return unnormalised features, as open_clip's `encode_*` (normalize=False), which
/// is how the validator calls them before dividing each by its own L2 norm.
public final class OpenCLIPConvNeXt {
    public struct VisionConfig: Sendable, Equatable {
        public var timmModelName: String
        public var timmPool: String
        public var timmProj: String
        public var timmProjBias: Bool
        /// The config's nominal size (256 for convnext_large_d); the tower is fully convolutional and the validator
        /// feeds 224 px.
        public var imageSize: Int
        /// open_clip's `timm_model_kwargs` (newer open_clip; the fixture used it to shrink the model).
        public var depths: [Int]?
        public var dims: [Int]?

        public init(timmModelName: String, timmPool: String = "", timmProj: String = "mlp", timmProjBias: Bool = false,
                    imageSize: Int = 224, depths: [Int]? = nil, dims: [Int]? = nil) {
            self.timmModelName = timmModelName
            self.timmPool = timmPool
            self.timmProj = timmProj
            self.timmProjBias = timmProjBias
            self.imageSize = imageSize
            self.depths = depths
            self.dims = dims
        }
    }

    public struct TextConfig: Sendable, Equatable {
        public var contextLength: Int
        public var vocabSize: Int
        public var width: Int
        public var heads: Int
        public var layers: Int
        public var mlpRatio: Double

        public init(contextLength: Int = 77, vocabSize: Int = 49408, width: Int, heads: Int, layers: Int,
                    mlpRatio: Double = 4) {
            self.contextLength = contextLength
            self.vocabSize = vocabSize
            self.width = width
            self.heads = heads
            self.layers = layers
            self.mlpRatio = mlpRatio
        }
    }

    /// The open_clip model-config JSON (`convnext_large_d.json`, or the fixture's `args`).
    public struct Config: Decodable, Sendable, Equatable {
        public var embedDim: Int
        public var quickGelu: Bool
        public var vision: VisionConfig
        public var text: TextConfig

        public init(embedDim: Int, quickGelu: Bool = false, vision: VisionConfig, text: TextConfig) {
            self.embedDim = embedDim
            self.quickGelu = quickGelu
            self.vision = vision
            self.text = text
        }

        /// open_clip `model_configs/convnext_large_d.json`.
        public static let convnextLargeD = Config(
            embedDim: 768,
            vision: VisionConfig(timmModelName: "convnext_large", timmPool: "", timmProj: "mlp", timmProjBias: false,
                                 imageSize: 256, depths: nil, dims: nil),
            text: TextConfig(contextLength: 77, vocabSize: 49408, width: 768, heads: 12, layers: 16, mlpRatio: 4))

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ s: String) { stringValue = s }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            embedDim = try c.decode(Int.self, forKey: Key("embed_dim"))
            quickGelu = try c.decodeIfPresent(Bool.self, forKey: Key("quick_gelu")) ?? false
            let v = try c.nestedContainer(keyedBy: Key.self, forKey: Key("vision_cfg"))
            guard let name = try v.decodeIfPresent(String.self, forKey: Key("timm_model_name")) else {
                throw WeightError.badConfig("vision_cfg has no timm_model_name: only timm ConvNeXt towers are supported")
            }
            var imageSize = 224
            if let size = try? v.decode(Int.self, forKey: Key("image_size")) {
                imageSize = size
            } else if let sizes = try? v.decode([Int].self, forKey: Key("image_size")), let first = sizes.first {
                imageSize = first
            }
            var depths: [Int]? = nil, dims: [Int]? = nil
            if v.contains(Key("timm_model_kwargs")) {
                let kw = try v.nestedContainer(keyedBy: Key.self, forKey: Key("timm_model_kwargs"))
                depths = try kw.decodeIfPresent([Int].self, forKey: Key("depths"))
                dims = try kw.decodeIfPresent([Int].self, forKey: Key("dims"))
            }
            vision = VisionConfig(
                timmModelName: name,
                timmPool: try v.decodeIfPresent(String.self, forKey: Key("timm_pool")) ?? "avg",
                timmProj: try v.decodeIfPresent(String.self, forKey: Key("timm_proj")) ?? "linear",
                timmProjBias: try v.decodeIfPresent(Bool.self, forKey: Key("timm_proj_bias")) ?? false,
                imageSize: imageSize, depths: depths, dims: dims)
            let t = try c.nestedContainer(keyedBy: Key.self, forKey: Key("text_cfg"))
            text = TextConfig(
                contextLength: try t.decodeIfPresent(Int.self, forKey: Key("context_length")) ?? 77,
                vocabSize: try t.decodeIfPresent(Int.self, forKey: Key("vocab_size")) ?? 49408,
                width: try t.decodeIfPresent(Int.self, forKey: Key("width")) ?? 512,
                heads: try t.decodeIfPresent(Int.self, forKey: Key("heads")) ?? 8,
                layers: try t.decodeIfPresent(Int.self, forKey: Key("layers")) ?? 12,
                mlpRatio: try t.decodeIfPresent(Double.self, forKey: Key("mlp_ratio")) ?? 4)
        }

        public func trunkConfig() throws -> TimmConvNeXt.Config {
            try TimmConvNeXt.Config.timm(vision.timmModelName, depths: vision.depths, dims: vision.dims)
        }
    }

    public let config: Config
    public let visual: OpenCLIPTimmVision
    public let text: OpenCLIPTextTransformer
    /// The stored `logit_scale` (a log; the validator never uses it).
    public let logitScale: Tensor

    public init(config: Config, weights w: WeightLoader) throws {
        self.config = config
        visual = try OpenCLIPTimmVision(config: config, weights: w.pp("visual"))
        text = try OpenCLIPTextTransformer(config: config, weights: w)
        logitScale = try fp32Loader(w).tensor("logit_scale", shape: [])
        w.ignore(["attn_mask"])   // a non-persistent buffer; old exports may still carry it
    }

    /// Builds the model from `source` and checks that every tensor of the checkpoint was used.
    public static func load(config: Config, source: WeightSource, device: Device = .cpu,
                            dtype: DType? = nil) throws -> OpenCLIPConvNeXt {
        let loader = WeightLoader(source, device: device, dtype: dtype)
        let model = try OpenCLIPConvNeXt(config: config, weights: loader)
        try loader.checkAllUsed()
        return model
    }

    /// Image features [B, embed_dim] of CLIP-normalised pixels [B, 3, H, W].
    public func encodeImage(_ pixels: Tensor, normalize: Bool = false, tap: TensorTap? = nil) throws -> Tensor {
        let features = try visual(pixels, tap: tap)
        return normalize ? try F.normalize(features.to(.float32), dim: -1) : features
    }

    /// Text features [B, embed_dim] of token ids [B, context_length] (int64; pooled at argmax(ids) = EOT).
    public func encodeText(_ ids: Tensor, normalize: Bool = false, tap: TensorTap? = nil) throws -> Tensor {
        let features = try text(ids, tap: tap)
        return normalize ? try F.normalize(features.to(.float32), dim: -1) : features
    }

    /// Text features of token-id rows (each at most context_length long; zero-padded like open_clip's tokenizer).
    public func encodeText(tokenIDs: [[Int]], normalize: Bool = false) throws -> Tensor {
        try encodeText(text.idTensor(tokenIDs), normalize: normalize)
    }

    /// Where the weights live.
    public var device: Device { logitScale.device }

    /// exp(logit_scale).
    public func logitScaleExp() throws -> Tensor { try logitScale.exp() }

    /// Every key and shape of the open_clip state_dict this structure loads (the real convnext_large_d key set
    /// from `Config.convnextLargeD`).
    public static func expectedTensors(config: Config) throws -> [String: [Int]] {
        var out = TimmConvNeXt.expectedTensors(config: try config.trunkConfig(), prefix: "visual.trunk")
        for (k, v) in try OpenCLIPTimmVision.expectedHeadTensors(config: config) { out["visual.head.\(k)"] = v }
        for (k, v) in OpenCLIPTextTransformer.expectedTensors(config: config) { out[k] = v }
        out["logit_scale"] = []
        return out
    }
}

/// open_clip `TimmModel`: the timm trunk and a projection head (`head.mlp.{fc1,fc2}` for "mlp",
/// `head.proj` for "linear").
public final class OpenCLIPTimmVision {
    enum Head {
        case mlp(fc1: CastLinear, fc2: CastLinear)
        case linear(CastLinear)
    }

    public let trunk: TimmConvNeXt
    let head: Head

    init(config: OpenCLIPConvNeXt.Config, weights w: WeightLoader) throws {
        let v = config.vision
        guard v.timmPool == "" || v.timmPool == "avg" else {
            throw WeightError.badConfig("timm_pool '\(v.timmPool)' is not supported (only \"\" and \"avg\", which "
                + "keep ConvNeXt's average pool + norm head)")
        }
        trunk = try TimmConvNeXt(config: config.trunkConfig(), weights: w.pp("trunk"))
        let width = trunk.config.numFeatures
        let h = w.pp("head")
        switch v.timmProj {
        case "mlp":
            head = .mlp(fc1: try CastLinear(h.pp("mlp").pp("fc1"), inFeatures: width, outFeatures: 2 * config.embedDim),
                        fc2: try CastLinear(h.pp("mlp").pp("fc2"), inFeatures: 2 * config.embedDim,
                                            outFeatures: config.embedDim, bias: v.timmProjBias))
        case "linear":
            head = .linear(try CastLinear(h.pp("proj"), inFeatures: width, outFeatures: config.embedDim,
                                          bias: v.timmProjBias))
        default:
            throw WeightError.badConfig("timm_proj '\(v.timmProj)' is not supported (only \"mlp\" and \"linear\")")
        }
    }

    /// [B, 3, H, W] -> [B, embed_dim] (taps the trunk's and `vision_mlp_hidden`).
    public func callAsFunction(_ pixels: Tensor, tap: TensorTap? = nil) throws -> Tensor {
        let pooled = try trunk(pixels, tap: tap)
        switch head {
        case .mlp(let fc1, let fc2):
            let hidden = try fc1(pooled).gelu()
            try tap?("vision_mlp_hidden", hidden)
            return try fc2(hidden)
        case .linear(let proj):
            return try proj(pooled)
        }
    }

    static func expectedHeadTensors(config: OpenCLIPConvNeXt.Config) throws -> [String: [Int]] {
        let width = try config.trunkConfig().numFeatures
        let e = config.embedDim
        switch config.vision.timmProj {
        case "mlp":
            var out = ["mlp.fc1.weight": [2 * e, width], "mlp.fc1.bias": [2 * e], "mlp.fc2.weight": [e, 2 * e]]
            if config.vision.timmProjBias { out["mlp.fc2.bias"] = [e] }
            return out
        case "linear":
            var out = ["proj.weight": [e, width]]
            if config.vision.timmProjBias { out["proj.bias"] = [e] }
            return out
        default:
            throw WeightError.badConfig("timm_proj '\(config.vision.timmProj)' is not supported")
        }
    }
}

/// The CLIP text tower: token + positional embedding, pre-LN residual attention blocks with a causal mask,
/// `ln_final` on every token, the token at argmax(ids) (the EOT id is the largest), then `@ text_projection`.
public final class OpenCLIPTextTransformer {
    struct ResidualAttentionBlock {
        let ln1: Fp32LayerNorm
        let inProj: CastLinear
        let outProj: CastLinear
        let ln2: Fp32LayerNorm
        let cFc: CastLinear
        let cProj: CastLinear
        let heads: Int
        let quickGelu: Bool

        init(_ w: WeightLoader, width: Int, heads: Int, mlpWidth: Int, quickGelu: Bool) throws {
            ln1 = try Fp32LayerNorm(w.pp("ln_1"), dim: width, eps: 1e-5)
            let attn = w.pp("attn")
            inProj = CastLinear(weight: try attn.tensor("in_proj_weight", shape: [3 * width, width]),
                                bias: try attn.tensor("in_proj_bias", shape: [3 * width]))
            outProj = try CastLinear(attn.pp("out_proj"), inFeatures: width, outFeatures: width)
            ln2 = try Fp32LayerNorm(w.pp("ln_2"), dim: width, eps: 1e-5)
            cFc = try CastLinear(w.pp("mlp").pp("c_fc"), inFeatures: width, outFeatures: mlpWidth)
            cProj = try CastLinear(w.pp("mlp").pp("c_proj"), inFeatures: mlpWidth, outFeatures: width)
            self.heads = heads
            self.quickGelu = quickGelu
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let (b, l, width) = (x.size(0), x.size(1), x.size(2))
            let qkv = try inProj(ln1(x)).view([b, l, 3, heads, width / heads]).permute([2, 0, 3, 1, 4])
            let attended = try F.scaledDotProductAttention(qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2),
                                                           isCausal: true)
            let h = try x + outProj(attended.transpose(1, 2).reshape([b, l, width]))
            let hidden = try cFc(ln2(h))
            return try h + cProj(quickGelu ? hidden.quickGelu() : hidden.gelu())
        }
    }

    public let config: OpenCLIPConvNeXt.TextConfig
    let tokenEmbedding: Tensor
    let positionalEmbedding: Tensor
    let blocks: [ResidualAttentionBlock]
    let lnFinal: Fp32LayerNorm
    let textProjection: Tensor

    init(config c: OpenCLIPConvNeXt.Config, weights w: WeightLoader) throws {
        let t = c.text
        guard t.width % t.heads == 0 else {
            throw WeightError.badConfig("text width \(t.width) does not split into \(t.heads) heads")
        }
        config = t
        let w32 = fp32Loader(w)
        tokenEmbedding = try w32.pp("token_embedding").tensor("weight", shape: [t.vocabSize, t.width])
        positionalEmbedding = try w32.tensor("positional_embedding", shape: [t.contextLength, t.width])
        let mlpWidth = Int(Double(t.width) * t.mlpRatio)
        blocks = try (0..<t.layers).map {
            try ResidualAttentionBlock(w.pp("transformer").pp("resblocks").pp($0), width: t.width, heads: t.heads,
                                       mlpWidth: mlpWidth, quickGelu: c.quickGelu)
        }
        lnFinal = try Fp32LayerNorm(w.pp("ln_final"), dim: t.width, eps: 1e-5)
        textProjection = try w.tensor("text_projection", shape: [t.width, c.embedDim])
    }

    /// The dtype of the matmul weights (fp32, or fp16/bf16 for autocast-style inference).
    public var computeDType: DType { textProjection.dtype }

    /// ids [B, context_length] -> [B, embed_dim] (taps `text_embed`, `text_transformer_out`, `text_ln_final`,
    /// `text_eot`).
    public func callAsFunction(_ ids: Tensor, tap: TensorTap? = nil) throws -> Tensor {
        guard ids.ndim == 2, ids.size(1) == config.contextLength else {
            throw WeightError.badConfig("text ids must be [B, \(config.contextLength)], got \(ids.shape)")
        }
        guard ids.dtype == .int64 || ids.dtype == .int32 else {
            throw WeightError.badConfig("text ids must be integers, got \(ids.dtype)")
        }
        let device = tokenEmbedding.device
        let tokens = try ids.to(device, dtype: .int64)
        let b = tokens.size(0)
        var x = try tokenEmbedding.indexSelect(0, tokens.reshape([-1])).view([b, config.contextLength, config.width])
        x = try x + positionalEmbedding
        try tap?("text_embed", x)
        for block in blocks { x = try block(x) }
        try tap?("text_transformer_out", x)
        x = try lnFinal(x)
        try tap?("text_ln_final", x)
        let eot = try tokens.argmax(-1)
        let rows = try Tensor.arange(0, Double(b), device: device)
        let pooled = try x.index([rows, eot])
        try tap?("text_eot", pooled)
        return try pooled.to(textProjection.dtype).matmul(textProjection)
    }

    /// Token-id rows -> [B, context_length] int64, zero-padded; rejects rows that are too long or ids outside
    /// the vocabulary (which would otherwise fail deep inside the embedding lookup).
    public func idTensor(_ rows: [[Int]]) throws -> Tensor {
        guard !rows.isEmpty else { throw WeightError.badConfig("no token-id rows given") }
        var flat = [Int64](repeating: 0, count: rows.count * config.contextLength)
        for (r, row) in rows.enumerated() {
            guard !row.isEmpty, row.count <= config.contextLength else {
                throw WeightError.badConfig("token-id row \(r) has \(row.count) ids; 1...\(config.contextLength) allowed")
            }
            for (i, id) in row.enumerated() {
                guard id >= 0, id < config.vocabSize else {
                    throw WeightError.badConfig("token id \(id) in row \(r) is outside the vocabulary of \(config.vocabSize)")
                }
                flat[r * config.contextLength + i] = Int64(id)
            }
        }
        return try Tensor(flat, shape: [rows.count, config.contextLength])
    }

    static func expectedTensors(config c: OpenCLIPConvNeXt.Config) -> [String: [Int]] {
        let t = c.text
        let mlpWidth = Int(Double(t.width) * t.mlpRatio)
        var out: [String: [Int]] = [
            "token_embedding.weight": [t.vocabSize, t.width],
            "positional_embedding": [t.contextLength, t.width],
            "ln_final.weight": [t.width], "ln_final.bias": [t.width],
            "text_projection": [t.width, c.embedDim],
        ]
        for i in 0..<t.layers {
            let p = "transformer.resblocks.\(i)"
            out["\(p).ln_1.weight"] = [t.width]
            out["\(p).ln_1.bias"] = [t.width]
            out["\(p).attn.in_proj_weight"] = [3 * t.width, t.width]
            out["\(p).attn.in_proj_bias"] = [3 * t.width]
            out["\(p).attn.out_proj.weight"] = [t.width, t.width]
            out["\(p).attn.out_proj.bias"] = [t.width]
            out["\(p).ln_2.weight"] = [t.width]
            out["\(p).ln_2.bias"] = [t.width]
            out["\(p).mlp.c_fc.weight"] = [mlpWidth, t.width]
            out["\(p).mlp.c_fc.bias"] = [mlpWidth]
            out["\(p).mlp.c_proj.weight"] = [t.width, mlpWidth]
            out["\(p).mlp.c_proj.bias"] = [t.width]
        }
        return out
    }
}
