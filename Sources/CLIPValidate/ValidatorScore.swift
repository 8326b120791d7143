import Foundation

/// The text-alignment aggregate: cosines -> outlier filter -> clip to [0, 1] -> geometric mean -> / 0.35
/// (alignment_scorer.py:89-95, validation_engine.py:102).
public struct AlignmentAggregate: Sendable {
    public let filter: OutlierFilterResult<Float>
    /// What the geometric mean saw (`kept`, clipped to [0, 1] on the text path, unchanged on the image path).
    public let meanInput: [Float]
    /// fp32, as the validator's `compute_mean` returns it.
    public let geometricMean: Float
    /// Text: `float(gm) / 0.35` (no upper clip, it can pass 1). Image: `float(gm)`.
    public let alignment: Double
}

/// SSIM or LPIPS over consecutive view pairs: fp64 values -> outlier filter -> geometric mean
/// (similarity_scorer.py at commit 5fc61f1b). `value` is the gm for SSIM and `1 - gm` for LPIPS.
public struct PairAggregate: Sendable {
    public let filter: OutlierFilterResult<Double>
    public let geometricMean: Double
    public let value: Double
}

/// The four metrics and the final score of `ValidationEngine._compute_final_score`.
public struct ValidatorScoreBreakdown: Sendable, CustomStringConvertible {
    public let iqa: Double
    public let alignment: Double
    public let ssim: Double
    public let lpips: Double
    /// 0 when `alignment < 0.3`; otherwise fp32-rounded like the validator's tensor arithmetic.
    public let score: Double

    public var passesAlignmentCutoff: Bool { !(alignment < ValidatorAggregation.alignmentCutoff) }

    public var description: String {
        String(format: "score %.6f (iqa %.6f, alignment %.6f, ssim %.6f, lpips %.6f)", score, iqa, alignment, ssim, lpips)
    }
}

/// How the subnet-17 validator (three-gen-subnet `validation/engine`, commit 5fc61f1b) turns per-view numbers
/// into its score, reproduced operation by operation.
public enum ValidatorAggregation {
    /// validation_engine.py:102 ("artificial normalization for current clip version").
    public static let alignmentDivisor = 0.35
    /// validation_engine.py:51: below this alignment the score is 0.
    public static let alignmentCutoff = 0.3

    /// Text task: per-view CLIP cosines ([16, 1] in the validator, so the outlier filter does not sort).
    public static func textAlignment(cosines: [Float]) throws -> AlignmentAggregate {
        let filter = try ValidatorStatistics.filterOutliers(cosines, sortFirst: false, what: "text alignment")
        let clipped = filter.kept.map(ValidatorStatistics.clip01)
        let gm = ValidatorStatistics.geometricMean(clipped)
        return AlignmentAggregate(filter: filter, meanInput: clipped, geometricMean: gm,
                                  alignment: Double(gm) / alignmentDivisor)
    }

    /// Image task (LLM2CLIP image-to-image similarities): the filter sorts, no clip, no / 0.35
    /// (alignment_scorer.py:172-181). A negative kept value makes the mean NaN, as in the validator.
    public static func imageAlignment(similarities: [Float]) throws -> AlignmentAggregate {
        let filter = try ValidatorStatistics.filterOutliers(similarities, sortFirst: true, what: "image alignment")
        let gm = ValidatorStatistics.geometricMean(filter.kept)
        return AlignmentAggregate(filter: filter, meanInput: filter.kept, geometricMean: gm, alignment: Double(gm))
    }

    /// IQA: plain fp64 mean of the per-view quality scores, no outlier filter (validation_engine.py:43).
    public static func iqa(qualityScores: [Double]) -> Double { ValidatorStatistics.mean(qualityScores) }

    /// SSIM of pairs (view i, view i+1 mod N): filtered geometric mean.
    public static func ssim(pairScores: [Double]) throws -> PairAggregate {
        let filter = try ValidatorStatistics.filterOutliers(pairScores, sortFirst: true, what: "SSIM")
        let gm = ValidatorStatistics.geometricMean(filter.kept)
        return PairAggregate(filter: filter, geometricMean: gm, value: gm)
    }

    /// LPIPS of pairs: 1 - filtered geometric mean (a similarity: higher is more alike).
    public static func lpips(pairScores: [Double]) throws -> PairAggregate {
        let filter = try ValidatorStatistics.filterOutliers(pairScores, sortFirst: true, what: "LPIPS")
        let gm = ValidatorStatistics.geometricMean(filter.kept)
        return PairAggregate(filter: filter, geometricMean: gm, value: 1 - gm)
    }

    /// gs_data_checker_utils.sigmoid on a 0-d float32 tensor: `1 / (1 + exp(-slope * (x - shift)))`, each step
    /// rounded to float32 (python scalars are cast to the tensor's dtype).
    public static func sigmoid(_ x: Float, slope: Double, shift: Double) -> Float {
        let shifted = x - Float(shift)
        let scaled = Float(-slope) * shifted
        let denominator = 1 + expf(scaled)
        return 1 / denominator
    }

    /// `ValidationEngine._compute_final_score`: 0 if alignment < 0.3, else
    /// `0.75*iqa + 0.2*alignment + 0.025*sigmoid(ssim; 35, 0.83) + 0.025*lpips*sigmoid(lpips; 30, 0.7)`.
    /// The first two terms are python floats; adding the float32 tensor terms rounds the sum to float32 step by
    /// step, which is what this reproduces. NaN inputs give NaN (the cut-off comparison is false for NaN).
    public static func finalScore(iqa: Double, alignment: Double, ssim: Double, lpips: Double) -> Double {
        if alignment < alignmentCutoff { return 0 }
        let head = 0.75 * iqa + 0.2 * alignment
        let ssimTerm = Float(0.025) * sigmoid(Float(ssim), slope: 35, shift: 0.83)
        let lpipsTerm = Float(0.025 * lpips) * sigmoid(Float(lpips), slope: 30, shift: 0.7)
        let partial = Float(head) + ssimTerm
        return Double(partial + lpipsTerm)
    }

    /// The whole text-task score breakdown from per-view numbers (16 views, 16 pairs each for SSIM and LPIPS).
    public static func textScores(cosines: [Float], qualityScores: [Double], ssimPairs: [Double],
                                   lpipsPairs: [Double]) throws -> ValidatorScoreBreakdown {
        let alignment = try textAlignment(cosines: cosines).alignment
        return try scores(alignment: alignment, qualityScores: qualityScores, ssimPairs: ssimPairs,
                           lpipsPairs: lpipsPairs)
    }

    /// The image-task score breakdown (`validate_image_to_gs`): same final formula, alignment from `imageAlignment`.
    public static func imageScores(similarities: [Float], qualityScores: [Double], ssimPairs: [Double],
                                    lpipsPairs: [Double]) throws -> ValidatorScoreBreakdown {
        let alignment = try imageAlignment(similarities: similarities).alignment
        return try scores(alignment: alignment, qualityScores: qualityScores, ssimPairs: ssimPairs,
                           lpipsPairs: lpipsPairs)
    }

    /// The score breakdown for an alignment already computed (text or image path) and the per-view image metrics.
    public static func scores(alignment: Double, qualityScores: [Double], ssimPairs: [Double],
                        lpipsPairs: [Double]) throws -> ValidatorScoreBreakdown {
        guard !qualityScores.isEmpty else { throw ValidatorScoreError.tooFewValues("IQA", got: 0, needed: 1) }
        let iqa = self.iqa(qualityScores: qualityScores)
        let ssim = try self.ssim(pairScores: ssimPairs).value
        let lpips = try self.lpips(pairScores: lpipsPairs).value
        return ValidatorScoreBreakdown(iqa: iqa, alignment: alignment, ssim: ssim, lpips: lpips,
                                score: finalScore(iqa: iqa, alignment: alignment, ssim: ssim, lpips: lpips))
    }
}
