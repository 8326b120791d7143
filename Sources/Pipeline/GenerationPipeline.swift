import Foundation
import Imaging
import PLY

/// Which way is up in the written PLY. TRELLIS's `save_ply` (and the Competition-0 validators) use -Y up;
/// the legacy subnet validators render +Y up.
public enum SplatOrientation: String, Sendable, CaseIterable {
    case yDown = "-y"
    case yUp = "y"
}

public struct SplatOutputOptions: Sendable, Equatable {
    public var orientation: SplatOrientation
    public var includeNormals: Bool

    public init(orientation: SplatOrientation = .yDown, includeNormals: Bool = true) {
        self.orientation = orientation
        self.includeNormals = includeNormals
    }
}

public enum PipelineError: Error, CustomStringConvertible {
    /// A stage the request needs has no model loaded; the message says how to get it.
    case missingStage(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .missingStage(let why): return why
        case .badInput(let why): return why
        }
    }
}

/// One generation request, as the pipeline sees it.
public struct GenerationJob {
    public var prompt: Prompt
    public var seed: UInt64
    public var settings: GaussianSettings
    public var output: SplatOutputOptions
    /// Predict the validators' score and gate on it.
    public var validate: Bool
    public var minScore: Double
    /// Seconds from the start of the job within which retries (new seeds) may start.
    public var timeBudget: Double
    public var maxAttempts: Int

    public init(prompt: Prompt, seed: UInt64 = 42, settings: GaussianSettings = .fast, output: SplatOutputOptions = .init(),
                validate: Bool = true, minScore: Double = 0.6, timeBudget: Double = 25, maxAttempts: Int = 4) {
        self.prompt = prompt
        self.seed = seed
        self.settings = settings
        self.output = output
        self.validate = validate
        self.minScore = minScore
        self.timeBudget = timeBudget
        self.maxAttempts = maxAttempts
    }
}

public struct GenerationAttempt: Sendable {
    public let seed: UInt64
    public let gaussians: Int
    public let score: Double?
    public let seconds: Double
}

public struct GenerationOutcome {
    /// The PLY bytes, or empty when the gate rejected the best attempt.
    public var ply: Data
    public var splat: GaussianSplat
    public var verdict: ValidationVerdict?
    public var gated: Bool
    public var attempts: [GenerationAttempt]
    public var timings: StageTimings
    /// The RGBA image the 3D stage saw (for debugging and `generate --image-out`).
    public var conditioningImage: Image
    public var notes: [String]
}

/// text -> image -> alpha -> Gaussians -> predicted score -> PLY (or an empty answer when it would score badly).
public final class GenerationPipeline {
    public let textToImage: TextToImageStage?
    public let backgroundRemoval: BackgroundRemovalStage?
    public let gaussians: GaussianStage
    public let validator: ValidationStage?
    /// Called when a stage the job needs is absent: explains how to get the weights.
    public let missingAdvice: [String: String]

    public init(textToImage: TextToImageStage?, backgroundRemoval: BackgroundRemovalStage?, gaussians: GaussianStage,
                validator: ValidationStage?, missingAdvice: [String: String] = [:]) {
        self.textToImage = textToImage
        self.backgroundRemoval = backgroundRemoval
        self.gaussians = gaussians
        self.validator = validator
        self.missingAdvice = missingAdvice
    }

    public func run(_ job: GenerationJob) throws -> GenerationOutcome {
        let start = Date()
        var timings = StageTimings()
        var notes: [String] = []

        let source: Image
        switch job.prompt {
        case .text(let text):
            guard let t2i = textToImage else {
                throw PipelineError.missingStage(missingAdvice["text-to-image"]
                    ?? "text prompts need the text-to-image model (FLUX.1-schnell), which is not loaded")
            }
            source = try timings.measure("text-to-image") { try t2i.generateImage(prompt: text, seed: job.seed) }
        case .image(let image):
            source = image
        }

        let rgba: Image
        if let remover = backgroundRemoval {
            rgba = try timings.measure("background") { try remover.removeBackground(source) }
        } else if source.hasTransparency {
            rgba = source
        } else {
            throw PipelineError.missingStage(missingAdvice["background-removal"]
                ?? "this image has no transparency and the background-removal model (BiRefNet) is not loaded: "
                + "send an RGBA image with the object cut out")
        }

        let validator = job.validate ? self.validator : nil
        if job.validate && validator == nil {
            notes.append("not validated: " + (missingAdvice["validation"] ?? "validator scorers not loaded"))
        }

        var attempts: [GenerationAttempt] = []
        var best: (splat: GaussianSplat, verdict: ValidationVerdict?)? = nil
        var seed = job.seed
        while true {
            let t0 = Date()
            let splat = try timings.measure("gaussians") {
                try gaussians.generate(image: rgba, seed: seed, settings: job.settings, output: job.output)
            }
            var verdict: ValidationVerdict? = nil
            if let validator {
                verdict = try timings.measure("validate") { try validator.evaluate(splat, prompt: job.prompt, orientation: job.output.orientation) }
            }
            let took = Date().timeIntervalSince(t0)
            attempts.append(GenerationAttempt(seed: seed, gaussians: splat.count, score: verdict?.score, seconds: took))
            if best == nil || (verdict?.rank ?? -1) > (best?.verdict?.rank ?? -1) { best = (splat, verdict) }
            if let v = verdict { notes.append(contentsOf: v.notes) }

            guard let v = verdict, !v.passes(minScore: job.minScore) else { break }
            let elapsed = Date().timeIntervalSince(start)
            // Retry only if another attempt of the same length still ends inside the budget.
            if attempts.count >= job.maxAttempts || elapsed + took > job.timeBudget { break }
            seed &+= 1
        }

        let chosen = best!
        let gated = chosen.verdict.map { !$0.passes(minScore: job.minScore) } ?? false
        var ply = Data()
        if !gated {
            ply = try timings.measure("ply") {
                try PLYWriter(includeNormals: job.output.includeNormals).encode(chosen.splat)
            }
        }
        return GenerationOutcome(ply: ply, splat: chosen.splat, verdict: chosen.verdict, gated: gated, attempts: attempts,
                                 timings: timings, conditioningImage: rgba, notes: notes)
    }
}
