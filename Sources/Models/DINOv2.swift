import Foundation
import NN
import TorchShim

/// DINOv2 ViT in the Hugging Face format (`Dinov2Model`, `Dinov2WithRegistersModel`): config.json +
/// model.safetensors with HF key names (`embeddings.*`, `encoder.layer.{i}.*`, `layernorm.*`).
///
///     tokens = [CLS, patches] + pos_embed (interpolated when the grid differs), registers inserted after CLS
///     tokens = layers(tokens)          pre-norm blocks with layer scale: x += ls1*attn(n1(x)); x += ls2*mlp(n2(x))
///     hidden_states[-1] = tokens;  last_hidden_state = layernorm(tokens);  pooled = last_hidden_state[:, 0]
///
/// TRELLIS conditions on `layer_norm(hidden_states[-1])` without affine (eps 1e-5): `trellisCondition`.
public final class DINOv2 {
    public struct Config: Decodable, Sendable {
        public var hiddenSize: Int
        public var numHiddenLayers: Int
        public var numAttentionHeads: Int
        public var mlpRatio: Double
        public var patchSize: Int
        public var imageSize: Int
        public var numChannels: Int
        public var layerNormEps: Double
        public var qkvBias: Bool
        public var useSwigluFfn: Bool
        public var hiddenAct: String
        /// 0 for `Dinov2Model`.
        public var numRegisterTokens: Int
        public var modelType: String?
        public var architectures: [String]?

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers",
                 numAttentionHeads = "num_attention_heads", mlpRatio = "mlp_ratio", patchSize = "patch_size",
                 imageSize = "image_size", numChannels = "num_channels", layerNormEps = "layer_norm_eps",
                 qkvBias = "qkv_bias", useSwigluFfn = "use_swiglu_ffn", hiddenAct = "hidden_act",
                 numRegisterTokens = "num_register_tokens", modelType = "model_type", architectures
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 768
            numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? 12
            numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? 12
            mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? 4
            patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? 14
            imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? 518
            numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? 3
            layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? 1e-6
            qkvBias = try c.decodeIfPresent(Bool.self, forKey: .qkvBias) ?? true
            useSwigluFfn = try c.decodeIfPresent(Bool.self, forKey: .useSwigluFfn) ?? false
            hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
            numRegisterTokens = try c.decodeIfPresent(Int.self, forKey: .numRegisterTokens) ?? 0
            modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
            architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        }

        public init(hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, mlpRatio: Double = 4,
                    patchSize: Int = 14, imageSize: Int = 518, numChannels: Int = 3, layerNormEps: Double = 1e-6,
                    qkvBias: Bool = true, hiddenAct: String = "gelu", numRegisterTokens: Int = 0) {
            self.hiddenSize = hiddenSize
            self.numHiddenLayers = numHiddenLayers
            self.numAttentionHeads = numAttentionHeads
            self.mlpRatio = mlpRatio
            self.patchSize = patchSize
            self.imageSize = imageSize
            self.numChannels = numChannels
            self.layerNormEps = layerNormEps
            self.qkvBias = qkvBias
            self.useSwigluFfn = false
            self.hiddenAct = hiddenAct
            self.numRegisterTokens = numRegisterTokens
            self.modelType = numRegisterTokens > 0 ? "dinov2_with_registers" : "dinov2"
            self.architectures = nil
        }

        /// The `Dinov2WithRegistersModel` family (its position interpolation is antialiased; plain Dinov2's is not).
        public var withRegisters: Bool {
            modelType == "dinov2_with_registers" || numRegisterTokens > 0
                || (architectures ?? []).contains { $0.hasPrefix("Dinov2WithRegisters") }
        }

        /// Patches per side of the checkpoint's own position grid.
        public var positionGrid: Int { imageSize / patchSize }
        public var mlpHidden: Int { Int(Double(hiddenSize) * mlpRatio) }
    }

    public struct Output {
        /// Tokens entering layer 0 [B, 1 + R + P, C].
        public let embeddings: Tensor
        /// HF `hidden_states[-1]` = torch-hub `x_prenorm`: tokens after the last layer, before the final norm.
        public let hiddenStatesLast: Tensor
        /// After the final `layernorm`.
        public let lastHiddenState: Tensor
        /// Every layer's output when requested (HF `hidden_states[1...]`), else empty.
        public let layerOutputs: [Tensor]

        /// The CLS token of `lastHiddenState` [B, C] (HF `pooler_output`).
        public var pooled: Tensor { get throws { try lastHiddenState.select(1, 0) } }
    }

    struct Layer {
        let norm1: LayerNorm
        let qkv: Linear          // query, key, value fused at load time
        let proj: Linear
        let layerScale1: Tensor
        let norm2: LayerNorm
        let fc1: Linear
        let fc2: Linear
        let layerScale2: Tensor
        let activation: Activation
        let heads: Int

        init(_ w: WeightLoader, config c: Config, activation: Activation) throws {
            let dim = c.hiddenSize
            norm1 = try LayerNorm(w.pp("norm1"), dim: dim, eps: c.layerNormEps)
            let attn = w.pp("attention").pp("attention")
            let parts = try ["query", "key", "value"].map {
                try Linear(attn.pp($0), inFeatures: dim, outFeatures: dim, bias: c.qkvBias)
            }
            qkv = Linear(weight: try Tensor.cat(parts.map(\.weight), dim: 0),
                         bias: c.qkvBias ? try Tensor.cat(parts.compactMap(\.bias), dim: 0) : nil)
            proj = try Linear(w.pp("attention").pp("output").pp("dense"), inFeatures: dim, outFeatures: dim)
            layerScale1 = try w.pp("layer_scale1").tensor("lambda1", shape: [dim])
            norm2 = try LayerNorm(w.pp("norm2"), dim: dim, eps: c.layerNormEps)
            fc1 = try Linear(w.pp("mlp").pp("fc1"), inFeatures: dim, outFeatures: c.mlpHidden)
            fc2 = try Linear(w.pp("mlp").pp("fc2"), inFeatures: c.mlpHidden, outFeatures: dim)
            layerScale2 = try w.pp("layer_scale2").tensor("lambda1", shape: [dim])
            self.activation = activation
            heads = c.numAttentionHeads
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let (b, l) = (x.size(0), x.size(1))
            let qkvHeads = try qkv(norm1(x)).view([b, l, 3, heads, -1]).permute([2, 0, 3, 1, 4])  // [3, B, H, L, Dh]
            let o = try F.scaledDotProductAttention(qkvHeads.select(0, 0), qkvHeads.select(0, 1),
                                                    qkvHeads.select(0, 2))
            let attn = try proj(o.transpose(1, 2).reshape([b, l, -1]))
            let h = try x.addcmul(attn, layerScale1)
            return try h.addcmul(fc2(activation(fc1(norm2(h)))), layerScale2)
        }
    }

    public let config: Config
    let clsToken: Tensor          // [1, 1, C]
    let registerTokens: Tensor?   // [1, R, C]
    let positionEmbeddings: Tensor  // [1, 1 + G*G, C]
    let patchEmbedding: Conv
    let layers: [Layer]
    let layernorm: LayerNorm
    /// The dtype of the weights (inputs are cast to it).
    public let dtype: DType

    public init(config: Config, weights w: WeightLoader) throws {
        let c = config
        guard !c.useSwigluFfn else {
            throw WeightError.badConfig("DINOv2 with use_swiglu_ffn (the giant variant) is not implemented")
        }
        guard let activation = Activation(rawValue: c.hiddenAct) else {
            throw WeightError.badConfig("DINOv2 hidden_act '\(c.hiddenAct)' is not supported")
        }
        guard c.hiddenSize % c.numAttentionHeads == 0 else {
            throw WeightError.badConfig("hidden_size \(c.hiddenSize) does not split into \(c.numAttentionHeads) heads")
        }
        self.config = c
        let dim = c.hiddenSize
        let e = w.pp("embeddings")
        clsToken = try e.tensor("cls_token", shape: [1, 1, dim])
        registerTokens = c.numRegisterTokens > 0
            ? try e.tensor("register_tokens", shape: [1, c.numRegisterTokens, dim]) : nil
        let grid = c.positionGrid
        positionEmbeddings = try e.tensor("position_embeddings", shape: [1, 1 + grid * grid, dim])
        patchEmbedding = try Conv(e.pp("patch_embeddings").pp("projection"), spatialDims: 2, inChannels: c.numChannels,
                                  outChannels: dim, kernel: [c.patchSize], stride: [c.patchSize])
        e.ignore(["mask_token"])   // used only for masked-image pre-training
        layers = try (0..<c.numHiddenLayers).map {
            try Layer(w.pp("encoder").pp("layer").pp($0), config: c, activation: activation)
        }
        layernorm = try LayerNorm(w.pp("layernorm"), dim: dim, eps: c.layerNormEps)
        dtype = clsToken.dtype
    }

    /// Loads an HF model folder: `config.json` plus `model.safetensors` (or `model.safetensors.index.json`).
    /// Keys may carry a prefix (e.g. `dinov2.` from a task model); unused keys outside it are not checked.
    public static func load(folder: URL, device: Device = .cpu, dtype: DType? = nil) throws -> DINOv2 {
        let config = try ConfigFile.decode(Config.self, from: folder.appendingPathComponent("config.json"))
        let single = folder.appendingPathComponent("model.safetensors")
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        let source: WeightSource
        if FileManager.default.fileExists(atPath: single.path) {
            source = try SafeTensorsFile(url: single)
        } else if FileManager.default.fileExists(atPath: index.path) {
            source = try ShardedSafeTensors(indexURL: index)
        } else {
            throw WeightError.badConfig("no model.safetensors or model.safetensors.index.json in \(folder.path)")
        }
        var loader = WeightLoader(source, device: device, dtype: dtype)
        if !source.keys.contains("embeddings.cls_token"),
           let key = source.keys.first(where: { $0.hasSuffix(".embeddings.cls_token") }) {
            loader = loader.pp(String(key.dropLast(".embeddings.cls_token".count)))
        }
        let model = try DINOv2(config: config, weights: loader)
        try loader.checkAllUsed()
        return model
    }

    /// Position embeddings for a `height` x `width` pixel input: the stored ones when the patch grid matches the
    /// checkpoint's (square input), else the patch part resized bicubically in fp32 to the new grid — antialiased
    /// for the with-registers family, plain for Dinov2 (as HF transformers does).
    func positionEmbedding(height: Int, width: Int) throws -> Tensor {
        let numPositions = positionEmbeddings.size(1) - 1
        let (gh, gw) = (height / config.patchSize, width / config.patchSize)
        if gh * gw == numPositions && height == width { return positionEmbeddings }
        let grid = config.positionGrid
        let dim = config.hiddenSize
        let cls = try positionEmbeddings.narrow(1, start: 0, length: 1)
        let patches = try positionEmbeddings.narrow(1, start: 1, length: numPositions)
            .reshape([1, grid, grid, dim]).permute([0, 3, 1, 2]).cast(.float32)
        let resized = try F.interpolate(patches, size: [gh, gw], mode: .bicubic, alignCorners: false,
                                        antialias: config.withRegisters)
        let flat = try resized.cast(positionEmbeddings.dtype).permute([0, 2, 3, 1]).reshape([1, gh * gw, dim])
        return try Tensor.cat([cls, flat], dim: 1)
    }

    /// pixelValues [B, 3, H, W] (ImageNet-normalised) -> tokens entering layer 0.
    public func embed(_ pixelValues: Tensor) throws -> Tensor {
        guard pixelValues.ndim == 4, pixelValues.size(1) == config.numChannels else {
            throw WeightError.badConfig("DINOv2 expects pixels [B, \(config.numChannels), H, W], got \(pixelValues.shape)")
        }
        let (b, height, width) = (pixelValues.size(0), pixelValues.size(2), pixelValues.size(3))
        guard height >= config.patchSize, width >= config.patchSize else {
            throw WeightError.badConfig("DINOv2 input \(height)x\(width) is smaller than one \(config.patchSize)px patch")
        }
        let patches = try patchEmbedding(pixelValues.cast(dtype)).flatten(2).transpose(1, 2)   // [B, P, C]
        var tokens = try Tensor.cat([clsToken.expand([b, 1, config.hiddenSize]), patches], dim: 1)
        tokens = try tokens + positionEmbedding(height: height, width: width)
        if let registerTokens {
            let registers = try registerTokens.expand([b, config.numRegisterTokens, config.hiddenSize])
            tokens = try Tensor.cat([tokens.narrow(1, start: 0, length: 1), registers,
                                     tokens.narrow(1, start: 1, length: tokens.size(1) - 1)], dim: 1)
        }
        return tokens
    }

    public func callAsFunction(_ pixelValues: Tensor, keepLayerOutputs: Bool = false) throws -> Output {
        let embeddings = try embed(pixelValues)
        var h = embeddings
        var outputs: [Tensor] = []
        for layer in layers {
            h = try layer(h)
            if keepLayerOutputs { outputs.append(h) }
        }
        return Output(embeddings: embeddings, hiddenStatesLast: h, lastHiddenState: try layernorm(h),
                      layerOutputs: outputs)
    }

    /// TRELLIS image conditioning tokens: layer_norm(hidden_states[-1]) over channels, no affine, eps 1e-5, fp32.
    public static func trellisCondition(_ hiddenStatesLast: Tensor) throws -> Tensor {
        let x = try hiddenStatesLast.cast(.float32)
        return try F.layerNorm(x, shape: [x.size(-1)], eps: 1e-5)
    }

    /// The TRELLIS conditioning of already-normalised pixels [B, 3, H, W].
    public func trellisCondition(pixelValues: Tensor) throws -> Tensor {
        try DINOv2.trellisCondition(self(pixelValues).hiddenStatesLast)
    }

    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// (x - mean) / std per channel of RGB in [0, 1] [B, 3, H, W], fp32 (torchvision `Normalize`).
    public static func imagenetNormalize(_ rgb01: Tensor) throws -> Tensor {
        let mean = try Tensor(imagenetMean, shape: [1, 3, 1, 1]).to(rgb01.device)
        let std = try Tensor(imagenetStd, shape: [1, 3, 1, 1]).to(rgb01.device)
        return try (rgb01.cast(.float32) - mean) / std
    }
}
