import Foundation
import Imaging
import PLY

public struct SplatOutputOptions: Sendable, Equatable {
    public var orientation: SplatOrientation
    public var includeNormals: Bool

    public init(orientation: SplatOrientation = .yDown, includeNormals: Bool = true) {
        self.orientation = orientation
        self.includeNormals = includeNormals
    }
}

/// Whether whoever waits for a job has gone, and why: the job stops at its next stage boundary once `reason` is set.
/// The HTTP layer's `CancellationToken` is one (Service conforms it); Pipeline does not depend on HTTP.
public protocol CancellationSignal: AnyObject, Sendable {
    var reason: String? { get }
}

public enum PipelineError: Error, CustomStringConvertible {
    /// A stage the request needs has no model loaded; the message says how to get it.
    case missingStage(String)
    case badInput(String)
    /// The job's cancellation token fired; the job stopped after `stage` ("" before the first stage).
    case cancelled(after: String, reason: String)

    public var description: String {
        switch self {
        case .missingStage(let why): return why
        case .badInput(let why): return why
        case .cancelled(let stage, let reason):
            return (stage.isEmpty ? "stopped before its first stage" : "stopped after stage '\(stage)'") + ": \(reason)"
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
    /// The 3D generator ("trellis", "lgm"); nil = the pipeline's default.
    public var generator: String?
    /// How a text prompt reaches the generator; nil = the pipeline's default for that generator.
    public var textRoute: TextRoute?
    /// Text-to-image sampling steps; nil = the stage's own (FLUX.1-schnell: 4).
    public var imageSteps: Int?
    /// Checked between stages: once cancelled (the client left) the job stops at the next stage boundary.
    public var cancellation: CancellationSignal?

    public init(prompt: Prompt, seed: UInt64 = 42, settings: GaussianSettings = .fast, output: SplatOutputOptions = .init(),
                validate: Bool = true, minScore: Double = 0.6, timeBudget: Double = 25, maxAttempts: Int = 4,
                generator: String? = nil, textRoute: TextRoute? = nil, imageSteps: Int? = nil) {
        self.prompt = prompt
        self.seed = seed
        self.settings = settings
        self.output = output
        self.validate = validate
        self.minScore = minScore
        self.timeBudget = timeBudget
        self.maxAttempts = maxAttempts
        self.generator = generator
        self.textRoute = textRoute
        self.imageSteps = imageSteps
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
    /// The RGBA image the 3D stage saw (for the MVDream route: its views side by side), for debugging and
    /// `generate --image-out`.
    public var conditioningImage: Image
    /// The generator and route that made it, e.g. trellis, lgm and flux, mvdream (nil for image prompts).
    public var generator: GeneratorID
    public var textRoute: TextRoute?
    public var notes: [String]
}

/// text -> image -> alpha -> Gaussians -> predicted score -> PLY (or an empty answer when it would score badly).
/// Several 3D generators may be loaded; each job picks one (or the default), and text prompts for LGM may skip the
/// image stages through MVDream.
public final class GenerationPipeline {
    public let textToImage: TextToImageStage?
    public let backgroundRemoval: BackgroundRemovalStage?
    /// The image -> 3D generators that loaded.
    public let generators: [GeneratorID: GaussianStage]
    public let defaultGenerator: GeneratorID
    /// text -> 3D stages that skip the single image, by the generator they end in (lgm: MVDream -> LGM).
    public let directText: [GeneratorID: TextToGaussianStage]
    /// The text route of jobs that name none, where their generator has it (TRELLIS always takes the FLUX route).
    public let defaultTextRoute: TextRoute
    public let validator: ValidationStage?
    /// Called when a stage the job needs is absent: explains how to get the weights.
    public let missingAdvice: [MissingPart: String]

    /// The default generator's stage.
    public var gaussians: GaussianStage { generators[defaultGenerator]! }
    /// The loaded generators, the default first.
    public var loadedGenerators: [GeneratorID] { [defaultGenerator] + generators.keys.filter { $0 != defaultGenerator }.sorted() }

    public init(textToImage: TextToImageStage?, backgroundRemoval: BackgroundRemovalStage?, generators: [GeneratorID: GaussianStage],
                defaultGenerator: GeneratorID, directText: [GeneratorID: TextToGaussianStage] = [:],
                defaultTextRoute: TextRoute = .flux, validator: ValidationStage?,
                missingAdvice: [MissingPart: String] = [:]) throws {
        guard generators[defaultGenerator] != nil else {
            throw PipelineError.badInput("the default generator '\(defaultGenerator.rawValue)' is not among the loaded ones "
                                         + "(\(generators.keys.sorted().map(\.rawValue).joined(separator: ", ")))")
        }
        self.textToImage = textToImage
        self.backgroundRemoval = backgroundRemoval
        self.generators = generators
        self.defaultGenerator = defaultGenerator
        self.directText = directText
        self.defaultTextRoute = defaultTextRoute
        self.validator = validator
        self.missingAdvice = missingAdvice
    }

    /// One generator: `gaussians` answers as `generator`.
    public convenience init(textToImage: TextToImageStage?, backgroundRemoval: BackgroundRemovalStage?, gaussians: GaussianStage,
                            as generator: GeneratorID = .trellis, validator: ValidationStage?,
                            missingAdvice: [MissingPart: String] = [:]) {
        // Cannot throw: the only generator is the default.
        try! self.init(textToImage: textToImage, backgroundRemoval: backgroundRemoval, generators: [generator: gaussians],
                       defaultGenerator: generator, validator: validator, missingAdvice: missingAdvice)
    }

    /// The generator and text route a job runs with, or why it cannot run here.
    public func resolve(_ job: GenerationJob) throws -> (generator: GeneratorID, route: TextRoute?) {
        let generator = try job.generator.map(GeneratorID.named) ?? defaultGenerator
        guard generators[generator] != nil else {
            throw PipelineError.missingStage(missingAdvice[.generator(generator)]
                ?? "generator '\(generator.rawValue)' is not loaded here (loaded: "
                + loadedGenerators.map(\.rawValue).joined(separator: ", ") + ")")
        }
        guard case .text = job.prompt else { return (generator, nil) }
        if let asked = job.textRoute {
            if asked == .mvdream && directText[generator] == nil {
                guard generator == .lgm else {
                    throw PipelineError.badInput("text route 'mvdream' ends in LGM; generator '\(generator.rawValue)' takes the 'flux' route")
                }
                throw PipelineError.missingStage(missingAdvice[.mvdreamRoute]
                    ?? "text route 'mvdream' needs MVDream (ashawkey/mvdream-sd2.1-diffusers), which is not loaded")
            }
            return (generator, asked)
        }
        return (generator, defaultTextRoute == .mvdream && directText[generator] != nil ? .mvdream : .flux)
    }

    /// Throws `PipelineError.cancelled` when the job's token has fired; called between stages.
    private func stopIfCancelled(_ job: GenerationJob, after stage: String) throws {
        if let reason = job.cancellation?.reason { throw PipelineError.cancelled(after: stage, reason: reason) }
    }

    public func run(_ job: GenerationJob) throws -> GenerationOutcome {
        let start = Date()
        var timings = StageTimings()
        var notes: [String] = []
        let (generatorName, route) = try resolve(job)
        try stopIfCancelled(job, after: "")

        // One attempt: a seed -> a splat (and what the 3D stage saw).
        let attempt: (UInt64, inout StageTimings) throws -> (GaussianSplat, Image)
        if route == .mvdream, case .text(let text) = job.prompt, let direct = directText[generatorName] {
            attempt = { seed, timings in try direct.generate(text: text, seed: seed, output: job.output, timings: &timings) }
        } else {
            let rgba = try conditioningImage(job, timings: &timings)
            let stage = generators[generatorName]!
            attempt = { seed, timings in
                let splat = try timings.measure("gaussians") {
                    try stage.generate(image: rgba, seed: seed, settings: job.settings, output: job.output)
                }
                return (splat, rgba)
            }
        }

        let validator = job.validate ? self.validator : nil
        if job.validate && validator == nil {
            notes.append("not validated: " + (missingAdvice[.validation] ?? "validator scorers not loaded"))
        }

        var attempts: [GenerationAttempt] = []
        var best: (splat: GaussianSplat, verdict: ValidationVerdict?, seen: Image)? = nil
        var seed = job.seed
        while true {
            let t0 = Date()
            let (splat, seen) = try attempt(seed, &timings)
            try stopIfCancelled(job, after: timings.entries.last?.name ?? "gaussians")
            var verdict: ValidationVerdict? = nil
            if let validator {
                verdict = try timings.measure("validate") { try validator.evaluate(splat, prompt: job.prompt, orientation: job.output.orientation) }
                try stopIfCancelled(job, after: "validate")
            }
            let took = Date().timeIntervalSince(t0)
            attempts.append(GenerationAttempt(seed: seed, gaussians: splat.count, score: verdict?.score, seconds: took))
            if best == nil || (verdict?.rank ?? -1) > (best?.verdict?.rank ?? -1) { best = (splat, verdict, seen) }
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
                                 timings: timings, conditioningImage: chosen.seen, generator: generatorName, textRoute: route,
                                 notes: notes)
    }

    /// The cut-out RGBA image of the image route: the prompt image, or FLUX's picture of the text, after background
    /// removal (an image that already has transparency may skip it when BiRefNet is absent).
    private func conditioningImage(_ job: GenerationJob, timings: inout StageTimings) throws -> Image {
        let source: Image
        switch job.prompt {
        case .text(let text):
            guard let t2i = textToImage else {
                throw PipelineError.missingStage(missingAdvice[.textToImage]
                    ?? "text prompts need the text-to-image model (FLUX.1-schnell), which is not loaded")
            }
            source = try timings.measure("text-to-image") { try t2i.generateImage(prompt: text, seed: job.seed, steps: job.imageSteps) }
            try stopIfCancelled(job, after: "text-to-image")
        case .image(let image):
            source = image
        }
        if let remover = backgroundRemoval {
            let cutOut = try timings.measure("background") { try remover.removeBackground(source) }
            try stopIfCancelled(job, after: "background")
            return cutOut
        }
        guard source.hasTransparency else {
            throw PipelineError.missingStage(missingAdvice[.backgroundRemoval]
                ?? "this image has no transparency and the background-removal model (BiRefNet) is not loaded: "
                + "send an RGBA image with the object cut out")
        }
        return source
    }
}
