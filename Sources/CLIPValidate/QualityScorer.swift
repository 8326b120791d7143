import Foundation
import Models
import NN
import TorchShim

/// The validator's image-quality score (IQA): its `DINOv2Net` (quality_model.py) on each rendered view.
///
///     feats = DINOv2-small(pixels).last_hidden_state[:, 0]     CLS token after the final layernorm
///     logit = score_head(feats)                                  Linear(384, 1)
///     score = sigmoid(logit) per view;  IQA = mean over views    (no outlier filter)
///
/// `emb_head` (Linear(384, 256), used in training only) is loaded and ignored, as in the validator.
/// Keys: `backbone.*` in Hugging Face `Dinov2Model` names, `score_head.{weight,bias}`, `emb_head.{weight,bias}`.
/// The validator runs this model in fp32 (no autocast); so should the daemon when it predicts the verdict.
public final class QualityScorer {
    public let backbone: DINOv2
    public let scoreWeight: Tensor   // [1, H]
    public let scoreBias: Tensor     // [1]
    public let resolution: Int
    /// Later validator commits resize with antialias (an identity for 518 px renders either way).
    public let antialias: Bool

    public init(config: DINOv2.Config, weights w: WeightLoader, embeddingDim: Int? = nil,
                resolution: Int = ValidatorPreprocessing.dinoResolution, antialias: Bool = false) throws {
        backbone = try DINOv2(config: config, weights: w.pp("backbone"))
        let hidden = config.hiddenSize
        scoreWeight = try w.pp("score_head").tensor("weight", shape: [1, hidden])
        scoreBias = try w.pp("score_head").tensor("bias", shape: [1])
        // emb_head is never used for scoring; its shape is still checked when the checkpoint carries it.
        let emb = w.pp("emb_head")
        if let embShape = emb.shape("weight") {
            guard embShape.count == 2, embShape[1] == hidden, embeddingDim.map({ $0 == embShape[0] }) ?? true else {
                throw WeightError.shapeMismatch(emb.key("weight"), expected: [embeddingDim ?? -1, hidden], found: embShape)
            }
            _ = try emb.tensor("weight", shape: embShape)
            _ = try emb.tensor("bias", shape: [embShape[0]])
        }
        self.resolution = resolution
        self.antialias = antialias
    }

    /// Builds the scorer from one source holding every key and checks that nothing is left over.
    public static func load(config: DINOv2.Config, source: WeightSource, device: Device = .cpu,
                            dtype: DType? = nil, embeddingDim: Int? = nil,
                            resolution: Int = ValidatorPreprocessing.dinoResolution,
                            antialias: Bool = false) throws -> QualityScorer {
        let loader = WeightLoader(source, device: device, dtype: dtype)
        let scorer = try QualityScorer(config: config, weights: loader, embeddingDim: embeddingDim,
                                       resolution: resolution, antialias: antialias)
        try loader.checkAllUsed()
        return scorer
    }

    /// The validator's deployment (commit 5fc61f1b): pretrained `facebook/dinov2-small` (HF keys, no prefix)
    /// with `quality_scorer.safetensors` loaded over it non-strictly, so any `backbone.*` tensors in the head
    /// checkpoint replace the pretrained ones. A torch-hub state dict (`backbone.blocks.N.attn.qkv`, the later
    /// `quality_scorer.pth`, read with `TorchZipCheckpoint`) is accepted too and mapped onto the HF names.
    public static func load(config: DINOv2.Config, pretrainedBackbone: WeightSource?, headCheckpoint: WeightSource,
                            device: Device = .cpu, dtype: DType? = nil,
                            antialias: Bool = false) throws -> QualityScorer {
        let isHub = headCheckpoint.keys.contains { $0.hasPrefix("backbone.blocks.") || $0 == "backbone.cls_token" }
        let head = isHub ? try DINOv2HubWeights(headCheckpoint) : headCheckpoint
        var layers: [WeightSource] = [head]
        if let pretrainedBackbone { layers.append(PrefixedWeights(pretrainedBackbone, prefix: "backbone.")) }
        return try load(config: config, source: OverlayWeights(layers), device: device, dtype: dtype,
                        antialias: antialias)
    }

    /// ImageNet-normalised pixels [N, 3, R, R] -> (CLS features [N, H], logits [N]).
    public func forward(pixels: Tensor) throws -> (cls: Tensor, logits: Tensor) {
        let cls = try backbone(pixels.to(backbone.dtype)).pooled
        let logits = try F.linear(cls, scoreWeight, scoreBias).squeeze(1)
        return (cls, logits)
    }

    /// Per-view quality scores in (0, 1) of views [N, H, W, 3] uint8 (any device; moved to the model's).
    public func scores(views: Tensor) throws -> [Double] {
        let pixels = try ValidatorPreprocessing.dinoPixels(views.to(scoreWeight.device), resolution: resolution,
                                                           antialias: antialias)
        return try forward(pixels: pixels).logits.to(.float32).sigmoid().toArray(Float.self).map(Double.init)
    }

    /// IQA: the mean of the per-view scores (`ImageQualityMetric.score_images_quality(views, "mean", False)`).
    public func iqa(views: Tensor) throws -> Double {
        ValidatorAggregation.iqa(qualityScores: try scores(views: views))
    }
}
