import Pipeline
import Foundation

/// Which kind of prompt a configuration serves: text (legacy route: front end + 3D) or image (Competition 0: 3D only).
public enum BenchPromptKind: String, Codable, Sendable, CaseIterable {
    case text
    case image
}

/// One cell of the benchmark matrix: image generator x 3D generator x sampling preset.
public struct BenchConfiguration: Codable, Sendable, Equatable {
    /// Stable name used in tables, the chart, `--only` and the budget choice, e.g. "flux.1-schnell + trellis fast".
    public var id: String
    /// "flux.1-schnell", "sd3.5-large", or "none" for image prompts (no front end).
    public var imageGenerator: String
    /// "trellis" or "lgm".
    public var gaussianGenerator: String
    /// "fast", "quality" or "default".
    public var preset: String
    /// Steps of the 3D stage, e.g. "12/12" (structure/latent).
    public var steps: String
    public var promptKind: BenchPromptKind
    /// Names of the loaded stages that run it (e.g. "smoke-flux", "smoke-trellis"); empty when unavailable.
    public var stageNames: [String]
    /// Why it cannot run here (not implemented, weights not present); nil when it can.
    public var unavailable: String?

    public init(id: String, imageGenerator: String, gaussianGenerator: String, preset: String, steps: String,
                promptKind: BenchPromptKind, stageNames: [String], unavailable: String? = nil) {
        self.id = id
        self.imageGenerator = imageGenerator
        self.gaussianGenerator = gaussianGenerator
        self.preset = preset
        self.steps = steps
        self.promptKind = promptKind
        self.stageNames = stageNames
        self.unavailable = unavailable
    }
}

/// A configuration with the stages and settings that run it.
public struct PlannedConfiguration {
    public var configuration: BenchConfiguration
    /// nil when the configuration is unavailable.
    public var pipeline: GenerationPipeline?
    public var settings: GaussianSettings
}

/// The matrix of configurations the benchmark knows, resolved against the stages that are loaded.
public enum BenchCatalogue {
    struct FrontEnd {
        var name: String
        var kind: BenchPromptKind
    }

    static let frontEnds = [
        FrontEnd(name: "flux.1-schnell", kind: .text),
        FrontEnd(name: "sd3.5-large", kind: .text),
        // Text straight to four views (LGM only: the route ends in LGM).
        FrontEnd(name: "mvdream", kind: .text),
        FrontEnd(name: "none", kind: .image),
    ]

    /// A named sampling preset of a 3D generator.
    public struct Preset {
        public var name: String
        public var settings: GaussianSettings

        public init(name: String, settings: GaussianSettings) {
            self.name = name
            self.settings = settings
        }
    }

    /// TRELLIS's presets: the demo's 12/12 steps and the hub's 25/25.
    public static let trellisPresets = [Preset(name: "fast", settings: .fast), Preset(name: "quality", settings: .quality)]
    /// LGM samples its own multi-view diffusion; the preset only carries the step count it is handed.
    public static let lgmPresets = [Preset(name: "default", settings: .quality)]

    /// Every configuration, available or not. `gaussianStages` are the 3D stages that can be used (the pipeline's
    /// own by default); a stage serves the generator its name contains ("smoke-trellis", "random-lgm", ...).
    /// `trellisPresets` replaces TRELLIS's fast/quality pair (tests use tiny step counts).
    public static func plan(pipeline: GenerationPipeline, gaussianStages: [GaussianStage]? = nil,
                            trellisPresets: [Preset] = trellisPresets) -> [PlannedConfiguration] {
        let stages = gaussianStages ?? pipeline.loadedGenerators.compactMap { pipeline.generators[$0] }
        let generators = trellisPresets.map { (GeneratorID.trellis, $0) } + lgmPresets.map { (GeneratorID.lgm, $0) }
        var planned: [PlannedConfiguration] = []
        for front in frontEnds {
            let frontProblem = problem(of: front, pipeline: pipeline)
            for (generatorID, preset) in generators where front.name != "mvdream" || generatorID == .lgm {
                let generator = (name: generatorID.rawValue, preset: preset.name, settings: preset.settings)
                let stage = self.stage(for: generatorID, in: stages)
                var reasons: [String] = []
                if let frontProblem { reasons.append(frontProblem) }
                if stage == nil { reasons.append(missingGeneratorReason(generatorID)) }
                let steps = "\(generator.settings.structureSteps)/\(generator.settings.latentSteps)"
                let frontLabel = front.name == "none" ? "image prompt" : front.name
                var names: [String] = []
                let direct = front.name == "mvdream" ? pipeline.directText[.lgm] : nil
                if reasons.isEmpty {
                    if let direct {
                        names.append(direct.name)
                    } else {
                        if front.kind == .text, let t2i = pipeline.textToImage { names.append(t2i.name) }
                        if let remover = pipeline.backgroundRemoval { names.append(remover.name) }
                        names.append(stage!.name)
                    }
                }
                let configuration = BenchConfiguration(
                    id: "\(frontLabel) + \(generator.name) \(generator.preset)", imageGenerator: front.name,
                    gaussianGenerator: generator.name, preset: generator.preset, steps: steps, promptKind: front.kind,
                    stageNames: names, unavailable: reasons.isEmpty ? nil : reasons.joined(separator: "; "))
                // One generator per configuration, and the route the front end names.
                let runner = reasons.isEmpty ? try? GenerationPipeline(
                    textToImage: pipeline.textToImage, backgroundRemoval: pipeline.backgroundRemoval,
                    generators: [generatorID: stage!], defaultGenerator: generatorID,
                    directText: direct.map { [generatorID: $0] } ?? [:], defaultTextRoute: direct == nil ? .flux : .mvdream,
                    validator: pipeline.validator, missingAdvice: pipeline.missingAdvice) : nil
                planned.append(PlannedConfiguration(configuration: configuration, pipeline: runner,
                                                    settings: generator.settings))
            }
        }
        return planned
    }

    private static func problem(of front: FrontEnd, pipeline: GenerationPipeline) -> String? {
        switch front.name {
        case "flux.1-schnell":
            guard pipeline.textToImage == nil else { return nil }
            return pipeline.missingAdvice[.textToImage] ?? "FLUX.1-schnell is not loaded (gen3d fetch --model flux1-schnell)"
        case "sd3.5-large":
            return "SD3.5 is not implemented"
        case "mvdream":
            guard pipeline.directText[.lgm] == nil else { return nil }
            return pipeline.missingAdvice[.mvdreamRoute]
                ?? "MVDream is not loaded (gen3d fetch --model mvdream, and serve or bench with --generator ...,lgm)"
        default:
            return nil
        }
    }

    private static func stage(for generator: GeneratorID, in stages: [GaussianStage]) -> GaussianStage? {
        stages.first { GeneratorID.of($0) == generator }
    }

    private static func missingGeneratorReason(_ generator: GeneratorID) -> String {
        switch generator {
        case .lgm: return "LGM is not loaded (its weights are missing or another generator was chosen; see --generator lgm)"
        case .trellis: return "trellis is not loaded"
        }
    }
}
