import Foundation
import NN
import TorchShim

/// transformers `CLIPVisionModel` (the image tower of CLIP; ImageDream uses laion CLIP-ViT-H-14): patch embedding
/// (conv without bias) + class token + learned positions, `pre_layrnorm`, the CLIP encoder layers, `post_layernorm`
/// on the class token. Keys under `vision_model.` (accepted with or without that prefix).
///
/// ImageDream reads `hidden_states[-2]` (the penultimate layer's output, before `post_layernorm`), so the model can be
/// built with `usesPenultimateLayerOnly`: the last layer and `post_layernorm` are then neither loaded nor required.
public struct CLIPVisionModel {
    public struct Config: Decodable, Sendable, Equatable {
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var numHiddenLayers: Int
        public var numAttentionHeads: Int
        public var numChannels: Int
        public var imageSize: Int
        public var patchSize: Int
        public var hiddenAct: Activation
        public var layerNormEps: Double

        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
            case numAttentionHeads = "num_attention_heads", numChannels = "num_channels", imageSize = "image_size"
            case patchSize = "patch_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
            case visionConfig = "vision_config"
        }

        public init(hiddenSize: Int = 768, intermediateSize: Int = 3072, numHiddenLayers: Int = 12, numAttentionHeads: Int = 12,
                    numChannels: Int = 3, imageSize: Int = 224, patchSize: Int = 32, hiddenAct: Activation = .quickGelu,
                    layerNormEps: Double = 1e-5) {
            self.hiddenSize = hiddenSize
            self.intermediateSize = intermediateSize
            self.numHiddenLayers = numHiddenLayers
            self.numAttentionHeads = numAttentionHeads
            self.numChannels = numChannels
            self.imageSize = imageSize
            self.patchSize = patchSize
            self.hiddenAct = hiddenAct
            self.layerNormEps = layerNormEps
        }

        /// laion CLIP-ViT-H-14 (ImageDream's image_encoder): 32 layers of width 1280, patch 14 at 224 px.
        public static let vitH14 = Config(hiddenSize: 1280, intermediateSize: 5120, numHiddenLayers: 32, numAttentionHeads: 16,
                                          imageSize: 224, patchSize: 14, hiddenAct: .gelu)

        /// A `CLIPVisionConfig` JSON, or a full `CLIPConfig` (its `vision_config`); missing fields take transformers' defaults.
        public init(from decoder: Swift.Decoder) throws {
            let outer = try decoder.container(keyedBy: CodingKeys.self)
            let c = outer.contains(.visionConfig) ? try outer.nestedContainer(keyedBy: CodingKeys.self, forKey: .visionConfig) : outer
            let d = Config()
            hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
            intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
            numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
            numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
            numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? d.numChannels
            imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? d.imageSize
            patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
            hiddenAct = try c.decodeIfPresent(Activation.self, forKey: .hiddenAct) ?? d.hiddenAct
            layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? d.layerNormEps
        }

        public var transformer: CLIPTransformerConfig {
            CLIPTransformerConfig(hiddenSize: hiddenSize, intermediateSize: intermediateSize, layers: numHiddenLayers,
                                  heads: numAttentionHeads, activation: hiddenAct, layerNormEps: layerNormEps)
        }

        public var tokens: Int { (imageSize / patchSize) * (imageSize / patchSize) + 1 }

        /// Every checkpoint key and shape under `vision_model.` (all layers and post_layernorm).
        public func parameterShapes() -> [String: [Int]] {
            let d = hiddenSize, f = intermediateSize, p = "vision_model."
            var s: [String: [Int]] = [
                p + "embeddings.class_embedding": [d],
                p + "embeddings.patch_embedding.weight": [d, numChannels, patchSize, patchSize],
                p + "embeddings.position_embedding.weight": [tokens, d],
                p + "pre_layrnorm.weight": [d], p + "pre_layrnorm.bias": [d],
                p + "post_layernorm.weight": [d], p + "post_layernorm.bias": [d],
            ]
            for i in 0..<numHiddenLayers {
                let l = p + "encoder.layers.\(i)."
                for n in ["q_proj", "k_proj", "v_proj", "out_proj"] { s[l + "self_attn.\(n).weight"] = [d, d]; s[l + "self_attn.\(n).bias"] = [d] }
                for n in ["layer_norm1", "layer_norm2"] { s[l + "\(n).weight"] = [d]; s[l + "\(n).bias"] = [d] }
                s[l + "mlp.fc1.weight"] = [f, d]; s[l + "mlp.fc1.bias"] = [f]
                s[l + "mlp.fc2.weight"] = [d, f]; s[l + "mlp.fc2.bias"] = [d]
            }
            return s
        }
    }

    public let config: Config
    public let classEmbedding: Tensor
    public let patchEmbedding: Conv
    public let positionEmbedding: Tensor
    public let preLayerNorm: LayerNorm
    public let encoder: CLIPEncoder
    /// nil when built for the penultimate layer only.
    public let postLayerNorm: LayerNorm?

    public init(_ root: WeightLoader, config: Config, usesPenultimateLayerOnly: Bool = false) throws {
        guard config.imageSize % config.patchSize == 0, config.numHiddenLayers >= 1 else {
            throw WeightError.badConfig("CLIP vision image_size \(config.imageSize) must be a multiple of patch_size \(config.patchSize), with >= 1 layer")
        }
        let w = root.contains("vision_model.embeddings.class_embedding") ? root.pp("vision_model") : root
        let d = config.hiddenSize
        self.config = config
        classEmbedding = try w.tensor("embeddings.class_embedding", shape: [d])
        patchEmbedding = try Conv(w.pp("embeddings").pp("patch_embedding"), spatialDims: 2, inChannels: config.numChannels,
                                  outChannels: d, kernel: [config.patchSize], stride: [config.patchSize], bias: false)
        positionEmbedding = try w.tensor("embeddings.position_embedding.weight", shape: [config.tokens, d])
        w.pp("embeddings").ignore(["position_ids"])
        preLayerNorm = try LayerNorm(w.pp("pre_layrnorm"), dim: d, eps: config.layerNormEps)
        var layers = config.transformer
        if usesPenultimateLayerOnly {
            layers.layers -= 1
            // Also a CLIPVisionModelWithProjection's `visual_projection` (beside `vision_model.`), which reads the pooled token.
            let unused = w.source.keys.filter {
                $0.hasPrefix(w.key("encoder.layers.\(config.numHiddenLayers - 1).")) || $0.hasPrefix(w.key("post_layernorm."))
            }
            root.ignore(["visual_projection.weight"])
            let prefix = w.prefix.isEmpty ? "" : w.prefix + "."
            w.ignore(unused.map { String($0.dropFirst(prefix.count)) })
            postLayerNorm = nil
        } else {
            postLayerNorm = try LayerNorm(w.pp("post_layernorm"), dim: d, eps: config.layerNormEps)
        }
        encoder = try CLIPEncoder(w.pp("encoder"), config: layers)
    }

    public var dtype: DType { positionEmbedding.dtype }
    public var device: Device { positionEmbedding.device }

    /// pixel values [B, C, S, S] -> pre_layrnorm(class token + patch tokens + positions) [B, tokens, D].
    func embed(_ pixelValues: Tensor) throws -> Tensor {
        let s = config.imageSize
        guard pixelValues.ndim == 4, pixelValues.size(1) == config.numChannels, pixelValues.size(2) == s, pixelValues.size(3) == s else {
            throw LGMError("CLIP vision pixel values must be [batch, \(config.numChannels), \(s), \(s)], got \(pixelValues.shape)")
        }
        let b = pixelValues.size(0), d = config.hiddenSize
        let patches = try patchEmbedding(pixelValues.to(device, dtype: dtype)).flatten(2).transpose(1, 2)
        let cls = try classEmbedding.view([1, 1, d]).expand([b, 1, d])
        return try preLayerNorm(Tensor.cat([cls, patches], dim: 1) + positionEmbedding.unsqueeze(0))
    }

    /// `hidden_states[-2]`: the penultimate layer's output (the embeddings when there is one layer) [B, tokens, D].
    public func penultimateHiddenState(_ pixelValues: Tensor) throws -> Tensor {
        try encoder(embed(pixelValues), causal: false, count: config.numHiddenLayers - 1)
    }

    /// last_hidden_state [B, tokens, D] and pooler_output = post_layernorm(class token) [B, D].
    public func callAsFunction(_ pixelValues: Tensor) throws -> (lastHiddenState: Tensor, poolerOutput: Tensor) {
        guard let postLayerNorm else { throw LGMError("this CLIPVisionModel was built for the penultimate layer only") }
        let h = try encoder(embed(pixelValues), causal: false)
        return (h, try postLayerNorm(h.select(1, 0)))
    }
}
