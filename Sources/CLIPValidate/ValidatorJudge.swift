import Foundation
import TorchShim

/// Everything the validator measured on one set of renders, and the score it gives.
public struct ValidatorJudgement: Sendable {
    public let alignment: TextAlignmentResult
    public let qualityScores: [Double]
    public let ssimPairs: [Double]
    public let lpipsPairs: [Double]
    public let scores: ValidatorScoreBreakdown
}

/// The validator's text-task scoring (`ValidationEngine.validate_text_to_gs`) over the 16 rendered views:
/// CLIP alignment, DINOv2 quality, SSIM and LPIPS between consecutive views, and the final score.
public final class ValidatorJudge {
    public let alignment: TextAlignmentScorer
    public let quality: QualityScorer
    public let ssim: ValidatorSSIM
    public let lpips: ValidatorLPIPS

    public init(alignment: TextAlignmentScorer, quality: QualityScorer, ssim: ValidatorSSIM = ValidatorSSIM(),
                lpips: ValidatorLPIPS) {
        self.alignment = alignment
        self.quality = quality
        self.ssim = ssim
        self.lpips = lpips
    }

    /// `views`: [N, H, W, 3] uint8 renders (the validator's 16 at 518 px); `tokenIDs`: [1, 77] prompt ids.
    public func judge(views: Tensor, tokenIDs: Tensor) throws -> ValidatorJudgement {
        let text = try alignment.score(views: views, tokenIDs: tokenIDs)
        let qualityScores = try quality.scores(views: views)
        let ssimPairs = try ssim.pairScores(views: views)
        let lpipsPairs = try lpips.pairScores(views: views)
        let scores = try ValidatorAggregation.scores(alignment: text.alignment, qualityScores: qualityScores,
                                                       ssimPairs: ssimPairs, lpipsPairs: lpipsPairs)
        return ValidatorJudgement(alignment: text, qualityScores: qualityScores, ssimPairs: ssimPairs,
                                  lpipsPairs: lpipsPairs, scores: scores)
    }
}
