import Foundation
import NN
import TorchShim

/// The width/depth/activation of a CLIP text transformer, independent of where it came from
/// (a transformers `config.json`, an open_clip model config, a hard-coded variant).
public struct CLIPTransformerConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var activation: Activation
    public var layerNormEps: Double

    public init(hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, activation: Activation,
                layerNormEps: Double) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.activation = activation
        self.layerNormEps = layerNormEps
    }
}

/// Self-attention of a CLIP layer. Keys: `q_proj`, `k_proj`, `v_proj`, `out_proj` (weight + bias).
public struct CLIPAttention {
    public let qProj: Linear
    public let kProj: Linear
    public let vProj: Linear
    public let outProj: Linear
    public let heads: Int

    public init(_ w: WeightLoader, config c: CLIPTransformerConfig) throws {
        guard c.heads > 0, c.hiddenSize % c.heads == 0 else {
            throw WeightError.badConfig("CLIP hidden size \(c.hiddenSize) is not divisible by \(c.heads) heads")
        }
        qProj = try Linear(w.pp("q_proj"), inFeatures: c.hiddenSize, outFeatures: c.hiddenSize)
        kProj = try Linear(w.pp("k_proj"), inFeatures: c.hiddenSize, outFeatures: c.hiddenSize)
        vProj = try Linear(w.pp("v_proj"), inFeatures: c.hiddenSize, outFeatures: c.hiddenSize)
        outProj = try Linear(w.pp("out_proj"), inFeatures: c.hiddenSize, outFeatures: c.hiddenSize)
        heads = c.heads
    }

    /// `mask`: nil with `causal` for the text tower's causal mask, or an explicit bool/additive mask.
    public func callAsFunction(_ x: Tensor, causal: Bool, mask: Tensor? = nil) throws -> Tensor {
        let (b, l, c) = (x.size(0), x.size(1), x.size(2))
        let d = c / heads
        let q = try qProj(x).view([b, l, heads, d]).transpose(1, 2)
        let k = try kProj(x).view([b, l, heads, d]).transpose(1, 2)
        let v = try vProj(x).view([b, l, heads, d]).transpose(1, 2)
        let o = try F.scaledDotProductAttention(q, k, v, mask: mask, isCausal: causal && mask == nil)
        return try outProj(o.transpose(1, 2).reshape([b, l, c]))
    }
}

/// One pre-norm CLIP encoder layer. Keys: `layer_norm1`, `self_attn.*`, `layer_norm2`, `mlp.fc1`, `mlp.fc2`.
public struct CLIPEncoderLayer {
    public let layerNorm1: LayerNorm
    public let selfAttn: CLIPAttention
    public let layerNorm2: LayerNorm
    public let fc1: Linear
    public let fc2: Linear
    public let activation: Activation

    public init(_ w: WeightLoader, config c: CLIPTransformerConfig) throws {
        layerNorm1 = try LayerNorm(w.pp("layer_norm1"), dim: c.hiddenSize, eps: c.layerNormEps)
        selfAttn = try CLIPAttention(w.pp("self_attn"), config: c)
        layerNorm2 = try LayerNorm(w.pp("layer_norm2"), dim: c.hiddenSize, eps: c.layerNormEps)
        fc1 = try Linear(w.pp("mlp").pp("fc1"), inFeatures: c.hiddenSize, outFeatures: c.intermediateSize)
        fc2 = try Linear(w.pp("mlp").pp("fc2"), inFeatures: c.intermediateSize, outFeatures: c.hiddenSize)
        activation = c.activation
    }

    public func callAsFunction(_ x: Tensor, causal: Bool, mask: Tensor? = nil) throws -> Tensor {
        let h = try x + selfAttn(layerNorm1(x), causal: causal, mask: mask)
        return try h + fc2(activation(fc1(layerNorm2(h))))
    }
}

/// The stack of CLIP encoder layers (`layers.N.*`), reusable by any CLIP-style text or image tower whose
/// checkpoint uses (or is renamed to) the transformers layer layout.
public struct CLIPEncoder {
    public let layers: [CLIPEncoderLayer]

    public init(_ w: WeightLoader, config c: CLIPTransformerConfig) throws {
        layers = try (0..<c.layers).map { try CLIPEncoderLayer(w.pp("layers").pp($0), config: c) }
    }

    /// Runs the first `count` layers (all by default); `collect` receives the input and each layer's output
    /// (the `hidden_states` tuple of transformers).
    public func callAsFunction(_ x: Tensor, causal: Bool, mask: Tensor? = nil, count: Int? = nil,
                               collect: ((Tensor) -> Void)? = nil) throws -> Tensor {
        var h = x
        collect?(h)
        for layer in layers.prefix(count ?? layers.count) {
            h = try layer(h, causal: causal, mask: mask)
            collect?(h)
        }
        return h
    }
}

/// transformers `CLIPTextModel` (the text tower of CLIP ViT-L/14 used by FLUX and Stable Diffusion).
/// Keys (transformers 5 layout): `embeddings.token_embedding`, `embeddings.position_embedding`,
/// `encoder.layers.N.*`, `final_layer_norm`; checkpoints saved by transformers 4 carry a `text_model.` prefix
/// (and sometimes the `embeddings.position_ids` buffer), which is accepted too.
public struct CLIPTextModel {
    public struct Config: Decodable, Sendable {
        public var vocabSize: Int
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var numHiddenLayers: Int
        public var numAttentionHeads: Int
        public var maxPositionEmbeddings: Int
        public var hiddenAct: Activation
        public var layerNormEps: Double
        /// 2 selects the legacy pooling rule (the token with the largest id, i.e. OpenAI's EOT 49407).
        public var eosTokenId: Int

        enum CodingKeys: String, CodingKey {
            case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
            case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
            case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act"
            case layerNormEps = "layer_norm_eps", eosTokenId = "eos_token_id"
        }

        /// transformers' CLIPTextConfig defaults (what a config.json that omits a field means).
        public init(vocabSize: Int = 49408, hiddenSize: Int = 512, intermediateSize: Int = 2048,
                    numHiddenLayers: Int = 12, numAttentionHeads: Int = 8, maxPositionEmbeddings: Int = 77,
                    hiddenAct: Activation = .quickGelu, layerNormEps: Double = 1e-5, eosTokenId: Int = 2) {
            self.vocabSize = vocabSize
            self.hiddenSize = hiddenSize
            self.intermediateSize = intermediateSize
            self.numHiddenLayers = numHiddenLayers
            self.numAttentionHeads = numAttentionHeads
            self.maxPositionEmbeddings = maxPositionEmbeddings
            self.hiddenAct = hiddenAct
            self.layerNormEps = layerNormEps
            self.eosTokenId = eosTokenId
        }

        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Config()
            vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
            hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
            intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
            numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
            numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
            maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
            hiddenAct = try c.decodeIfPresent(Activation.self, forKey: .hiddenAct) ?? d.hiddenAct
            layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
            eosTokenId = try c.decodeIfPresent(Int.self, forKey: .eosTokenId) ?? d.eosTokenId
        }

        /// CLIP ViT-L/14's text tower (FLUX text_encoder, SD 1.x).
        public static let vitL14 = Config(hiddenSize: 768, intermediateSize: 3072, numAttentionHeads: 12)

        public var transformer: CLIPTransformerConfig {
            CLIPTransformerConfig(hiddenSize: hiddenSize, intermediateSize: intermediateSize, layers: numHiddenLayers,
                                  heads: numAttentionHeads, activation: hiddenAct, layerNormEps: layerNormEps)
        }

        /// Every checkpoint key and shape (transformers 5 layout, no prefix).
        public func parameterShapes() -> [String: [Int]] {
            let d = hiddenSize, f = intermediateSize
            var s: [String: [Int]] = [
                "embeddings.token_embedding.weight": [vocabSize, d],
                "embeddings.position_embedding.weight": [maxPositionEmbeddings, d],
                "final_layer_norm.weight": [d], "final_layer_norm.bias": [d],
            ]
            for i in 0..<numHiddenLayers {
                let p = "encoder.layers.\(i)."
                for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    s[p + "self_attn.\(n).weight"] = [d, d]
                    s[p + "self_attn.\(n).bias"] = [d]
                }
                for n in ["layer_norm1", "layer_norm2"] {
                    s[p + "\(n).weight"] = [d]
                    s[p + "\(n).bias"] = [d]
                }
                s[p + "mlp.fc1.weight"] = [f, d]
                s[p + "mlp.fc1.bias"] = [f]
                s[p + "mlp.fc2.weight"] = [d, f]
                s[p + "mlp.fc2.bias"] = [d]
            }
            return s
        }
    }

    public struct Output {
        /// final_layer_norm(last layer) [B, L, D].
        public let lastHiddenState: Tensor
        /// The hidden state of the EOS token [B, D] (legacy rule when eos_token_id == 2).
        public let poolerOutput: Tensor
        /// Embeddings and every layer's output (before the final norm), when asked for.
        public let hiddenStates: [Tensor]
    }

    public let config: Config
    public let tokenEmbedding: Embedding
    public let positionEmbedding: Embedding
    public let encoder: CLIPEncoder
    public let finalLayerNorm: LayerNorm

    public init(_ root: WeightLoader, config: Config) throws {
        let w = root.contains("text_model.embeddings.token_embedding.weight") ? root.pp("text_model") : root
        let c = config.transformer
        self.config = config
        tokenEmbedding = try Embedding(w.pp("embeddings").pp("token_embedding"), count: config.vocabSize,
                                       dim: config.hiddenSize)
        positionEmbedding = try Embedding(w.pp("embeddings").pp("position_embedding"),
                                          count: config.maxPositionEmbeddings, dim: config.hiddenSize)
        w.pp("embeddings").ignore(["position_ids"])
        encoder = try CLIPEncoder(w.pp("encoder"), config: c)
        finalLayerNorm = try LayerNorm(w.pp("final_layer_norm"), dim: config.hiddenSize, eps: config.layerNormEps)
    }

    public var dtype: DType { tokenEmbedding.weight.dtype }
    public var device: Device { tokenEmbedding.weight.device }

    private func embed(_ inputIds: Tensor) throws -> Tensor {
        guard inputIds.ndim == 2 else {
            throw TextEncoderError("CLIP input_ids must be [batch, length], got \(inputIds.shape)")
        }
        guard !inputIds.dtype.isFloatingPoint else {
            throw TextEncoderError("CLIP input_ids must be integers, got \(inputIds.dtype)")
        }
        let length = inputIds.size(1)
        guard length >= 1, length <= config.maxPositionEmbeddings else {
            throw TextEncoderError("CLIP sequence length \(length) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        if inputIds.device == .cpu, inputIds.count > 0 {
            let (lo, hi) = (try inputIds.min().itemInt(), try inputIds.max().itemInt())
            guard lo >= 0, hi < config.vocabSize else {
                throw TextEncoderError("CLIP token id out of range 0..<\(config.vocabSize): min \(lo), max \(hi)")
            }
        }
        let ids = try inputIds.to(device, dtype: .int64)
        let positions = try Tensor.arange(0, Double(length), dtype: .int64, device: device)
        return try tokenEmbedding(ids) + positionEmbedding(positions).unsqueeze(0)
    }

    /// last_hidden_state and pooler_output (and the per-layer hidden states when `outputHiddenStates`).
    public func callAsFunction(_ inputIds: Tensor, outputHiddenStates: Bool = false) throws -> Output {
        var states: [Tensor] = []
        let h = try encoder(embed(inputIds), causal: true, collect: outputHiddenStates ? { states.append($0) } : nil)
        let last = try finalLayerNorm(h)
        return Output(lastHiddenState: last, poolerOutput: try pool(last, inputIds: inputIds), hiddenStates: states)
    }

    /// Stable Diffusion's `clip_skip`: final_layer_norm(hidden_states[-(clipSkip + 1)]), running only the layers
    /// needed (clipSkip 0 = last_hidden_state, 1 = the penultimate layer).
    public func hiddenState(_ inputIds: Tensor, clipSkip: Int) throws -> Tensor {
        guard clipSkip >= 0, clipSkip < config.numHiddenLayers else {
            throw TextEncoderError("clip_skip \(clipSkip) is outside 0..<\(config.numHiddenLayers)")
        }
        let h = try encoder(embed(inputIds), causal: true, count: config.numHiddenLayers - clipSkip)
        return try finalLayerNorm(h)
    }

    /// The EOS position of each row: argmax(input_ids) under the legacy rule, else the first eos_token_id.
    public func eosPositions(_ inputIds: Tensor) throws -> Tensor {
        let ids = try inputIds.to(device, dtype: .int64)
        if config.eosTokenId == 2 { return try ids.argmax(-1) }
        return try ids.eq(Double(config.eosTokenId)).to(.int32).argmax(-1)
    }

    private func pool(_ last: Tensor, inputIds: Tensor) throws -> Tensor {
        let (b, d) = (last.size(0), last.size(2))
        let index = try eosPositions(inputIds).view([b, 1, 1]).expand([b, 1, d])
        return try last.gather(1, index).squeeze(1)
    }
}
