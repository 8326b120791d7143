import Foundation
import Models
import NN
import Tokenizers
import TorchShim

/// One prompt against the rendered views, as `TextVSImageMetric.score_text_alignment` computes it with the
/// validator's arguments (mean_op "geometric_mean", use_filter_outliers True), then / 0.35.
public struct TextAlignmentResult: Sendable {
    /// Per-view cosine of L2-normalised image and text features (the validator's [N, 1] `clip_scores`).
    public let cosines: [Float]
    public let aggregate: AlignmentAggregate
    /// gm / 0.35: what enters the final score (and the 0.3 cut-off).
    public var alignment: Double { aggregate.alignment }
}

/// The validator's text-alignment scorer over an open_clip convnext_large_d model.
///
/// Precision: with fp32 weights everything is fp32 (the fixtures). With fp16 weights the model runs as the
/// validator's `torch.autocast` does (matmuls/convs fp16, norms and residuals fp32) and the preprocessing casts to
/// fp16 before the resize like the validator. The final feature normalisation and cosine are computed in fp32
/// here, where the validator divides fp16 features in place; that difference is below the fp16 noise.
public final class TextAlignmentScorer {
    public let model: OpenCLIPConvNeXt
    public let resolution: Int
    public let halfPrecisionPreprocessing: Bool

    /// `halfPrecisionPreprocessing` nil: fp16 exactly when the model's matmul weights are fp16/bf16.
    public init(model: OpenCLIPConvNeXt, resolution: Int = ValidatorPreprocessing.clipResolution,
                halfPrecisionPreprocessing: Bool? = nil) {
        self.model = model
        self.resolution = resolution
        self.halfPrecisionPreprocessing = halfPrecisionPreprocessing ?? (model.text.computeDType != .float32)
    }

    /// Normalised image features [N, E], normalised text features [1, E] and cosines [N, 1], all fp32.
    /// `views`: [N, H, W, 3] uint8 (any device; moved to the model's); `tokenIDs`: [1, context_length] int64.
    public func features(views: Tensor, tokenIDs: Tensor) throws
        -> (image: Tensor, text: Tensor, cosines: Tensor) {
        guard tokenIDs.ndim == 2, tokenIDs.size(0) == 1 else {
            throw ValidatorInputError("text alignment scores one prompt: token ids must be [1, context], got \(tokenIDs.shape)")
        }
        let device = model.device
        let pixels = try ValidatorPreprocessing.clipPixels(views.to(device), resolution: resolution,
                                                           halfPrecision: halfPrecisionPreprocessing)
        let image = try model.encodeImage(pixels, normalize: true)
        let text = try model.encodeText(tokenIDs.to(device), normalize: true)
        return (image, text, try image.matmul(text.transpose(0, 1)))
    }

    public func score(views: Tensor, tokenIDs: Tensor) throws -> TextAlignmentResult {
        let cosines = try features(views: views, tokenIDs: tokenIDs).cosines.toArray(Float.self)
        return TextAlignmentResult(cosines: cosines, aggregate: try ValidatorAggregation.textAlignment(cosines: cosines))
    }

    /// The same with a prompt already tokenised (open_clip SimpleTokenizer ids, at most context_length).
    public func score(views: Tensor, promptTokenIDs: [Int]) throws -> TextAlignmentResult {
        try score(views: views, tokenIDs: model.text.idTensor([promptTokenIDs]))
    }

    /// The same with the prompt text, tokenised like the validator (`open_clip.get_tokenizer("convnext_large_d")`:
    /// `CLIPTokenizer.openCLIP()`, context 77, truncated with the EOT kept).
    public func score(views: Tensor, prompt: String, tokenizer: CLIPTokenizer) throws -> TextAlignmentResult {
        let ids = try tokenizer.encode(prompt, contextLength: model.text.config.contextLength).map { Int64($0) }
        return try score(views: views, tokenIDs: Tensor(ids, shape: [1, ids.count]))
    }
}
