import CLIPValidate
import Foundation
import Splatting
import Imaging
import Models
import PLY
import TorchShim
import Tokenizers

/// Predicts the subnet validators' verdict on a splat, the way they compute it: their data checks, their 16 renders
/// (cameras and normalisation of the orientation the route expects), then their scorers and formula.
///
/// What each part needs and what happens without it:
/// - data checks (>= 7000 Gaussians, opacity, rotations): always; a failure is a score of 0 (the validators reject).
/// - text alignment (open_clip convnext_large_d) and quality (DINOv2-small + head): without both, no score is
///   predicted (the gate then only applies the data checks).
/// - LPIPS (torchvision AlexNet + LPIPS linear layers): without it the LPIPS term (weight 0.025) is estimated as a
///   similarity of 0.7 (term 0.00875; the true term lies in [0, 0.025], so the estimate is off by at most 0.016).
/// - image prompts: the validators' image similarity model (LLM2CLIP-Openai-L-14-336) is not implemented, so image
///   prompts are gated on the data checks only and their score is not predicted.
/// The 16 renders use the CUDA rasterizer on a GPU (1.5 ms on an H100) and the CPU one elsewhere.
public final class ValidatorGate: ValidationStage {
    public let name = "validator"
    let rasterizer: any Rasterizer
    let alignment: TextAlignmentScorer?
    let quality: QualityScorer?
    let lpips: ValidatorLPIPS?
    let ssim = ValidatorSSIM()
    let tokenizer: CLIPTokenizer?
    let device: Device

    public init(rasterizer: any Rasterizer, alignment: TextAlignmentScorer?, quality: QualityScorer?, lpips: ValidatorLPIPS?,
                tokenizer: CLIPTokenizer?, device: Device) {
        self.rasterizer = rasterizer
        self.alignment = alignment
        self.quality = quality
        self.lpips = lpips
        self.tokenizer = tokenizer
        self.device = device
    }

    /// The LPIPS pair value used when LPIPS is not loaded: 1 - 0.3 = similarity 0.7 (see the type's comment).
    static let assumedLPIPSPair = 0.3

    public var canScore: Bool { alignment != nil && quality != nil && tokenizer != nil }

    public func evaluate(_ splat: GaussianSplat, prompt: Prompt, orientation: SplatOrientation) throws -> ValidationVerdict {
        let checks = SplatChecks.run(try ActivatedSplat(activating: splat))
        guard checks.passed else {
            return ValidationVerdict(score: 0, alignment: nil, passedChecks: false,
                                     notes: checks.failures.map { "validator data check fails: \($0)" })
        }
        guard case .text(let promptText) = prompt, canScore, let alignment, let quality, let tokenizer else {
            let why = prompt.kind == "image" ? "image prompts: the validators' image similarity model is not implemented"
                : "scorer weights not loaded"
            return ValidationVerdict(score: nil, alignment: nil, passedChecks: true, notes: ["score not predicted: \(why)"])
        }
        var settings = RenderSettings()
        settings.orientation = orientation
        let views = try rasterizer.render(splat: splat, settings: settings)
        let images = try views.map { try Image(width: $0.width, height: $0.height, channels: 3, pixels: $0.rgb8) }
        let stacked = try ValidatorPreprocessing.stack(images).to(device)
        let text = try alignment.score(views: stacked, prompt: promptText, tokenizer: tokenizer)
        let qualityScores = try quality.scores(views: stacked)
        let ssimPairs = try ssim.pairScores(views: stacked)
        var notes: [String] = []
        let lpipsPairs: [Double]
        if let lpips {
            lpipsPairs = try lpips.pairScores(views: stacked)
        } else {
            lpipsPairs = Array(repeating: Self.assumedLPIPSPair, count: ssimPairs.count)
            notes.append("LPIPS weights not loaded: LPIPS term estimated (error <= 0.016)")
        }
        let verdict = try ValidatorAggregation.scores(alignment: text.alignment, qualityScores: qualityScores,
                                                       ssimPairs: ssimPairs, lpipsPairs: lpipsPairs)
        return ValidationVerdict(score: verdict.score, alignment: text.alignment, passedChecks: true, notes: notes)
    }
}
