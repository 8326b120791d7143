import Foundation
import Splatting
import Imaging
import Models
import ModelStore
import NN
import TorchShim
import Tokenizers
import CLIPValidate

/// How to build the pipeline of one worker.
public struct AssemblyOptions {
    public var device: Device
    /// Folders searched for models already present, besides the Hugging Face cache.
    public var modelsDirectories: [String]
    /// Where the tiny random-weight smoke networks live (assets/smoke of the repository).
    public var smokeDirectory: URL?
    /// Use the smoke networks even when real weights are present.
    public var forceSmoke: Bool
    /// Refuse to fall back to the smoke networks (fail instead).
    public var requireReal: Bool
    public var fluxSize: Int
    public var fluxFloat8: Bool
    /// The image -> 3D generators to load, the default first: "trellis" and/or "lgm" (ImageDream + LGM, and MVDream
    /// for the text route when present).
    public var generators: [GeneratorID]
    /// The text route of jobs that name none, for generators that have it (LGM): flux or mvdream.
    public var textRoute: TextRoute
    /// How the models share the GPU (nil: chosen from the card's size).
    public var memoryPlan: MemoryPlan?

    public init(device: Device, modelsDirectories: [String] = [], smokeDirectory: URL? = nil, forceSmoke: Bool = false,
                requireReal: Bool = false, fluxSize: Int = 512, fluxFloat8: Bool = false,
                generators: [GeneratorID] = [.trellis], textRoute: TextRoute = .flux) {
        self.generators = generators
        self.textRoute = textRoute
        self.device = device
        self.modelsDirectories = modelsDirectories
        self.smokeDirectory = smokeDirectory
        self.forceSmoke = forceSmoke
        self.requireReal = requireReal
        self.fluxSize = fluxSize
        self.fluxFloat8 = fluxFloat8
    }

    /// The generators of `--generator trellis,lgm`: known names, no repeats, at least one.
    public static func parseGenerators(_ list: String) throws -> [GeneratorID] {
        let names = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, let generators = try? names.map(GeneratorID.named) else {
            throw PipelineError.badInput("--generator takes \(GeneratorID.allCases.map(\.rawValue).joined(separator: ", ")) "
                                         + "or a comma list of them, got '\(list)'")
        }
        guard Set(generators).count == generators.count else {
            throw PipelineError.badInput("--generator lists a generator twice: '\(list)'")
        }
        return generators
    }
}

/// A model a pipeline loaded: its public id and where its weights came from on this host.
public struct LoadedModel: Sendable, Equatable {
    /// The hub repository ("microsoft/TRELLIS-image-large") or a label for built-in weights: safe to show anyone.
    public var id: String
    /// The file or folder it was read from: for the operator's log only (it reveals the host's layout).
    public var path: String

    public init(id: String, path: String) {
        self.id = id
        self.path = path
    }

    /// The registry model `name`, read from `url`.
    static func registry(_ model: ModelID, at url: URL) -> LoadedModel {
        LoadedModel(id: ModelRegistry.model(model)?.repo ?? model.rawValue, path: url.path)
    }
}

public struct AssembledPipeline {
    public var pipeline: GenerationPipeline
    public var name: String
    public var isSmoke: Bool
    /// Loaded stage -> its id and where its weights came from.
    public var loaded: [String: LoadedModel]
    /// What is missing, each with the command that fetches it.
    public var missing: [String]
    public var memoryPlan: MemoryPlan
    /// Measured GPU memory of each model as it loaded (empty on the CPU).
    public var residentSizes: ResidentSizes

    public init(pipeline: GenerationPipeline, name: String, isSmoke: Bool, loaded: [String: LoadedModel], missing: [String],
                memoryPlan: MemoryPlan, residentSizes: ResidentSizes) {
        self.pipeline = pipeline
        self.name = name
        self.isSmoke = isSmoke
        self.loaded = loaded
        self.missing = missing
        self.memoryPlan = memoryPlan
        self.residentSizes = residentSizes
    }
}

/// Builds the generation pipeline from the models that are present: real weights from the model store where
/// found, otherwise (when TRELLIS itself is missing) the clearly labelled smoke pipeline of tiny random networks.
public enum PipelineAssembly {
    /// Finds assets/smoke by walking up from `start` (the working directory, then the executable's folder).
    public static func findSmokeDirectory(from starts: [URL]) -> URL? {
        for start in starts {
            var dir = start.standardizedFileURL
            for _ in 0..<6 {
                let candidate = dir.appendingPathComponent("assets/smoke")
                if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("trellis/pipeline.json").path) {
                    return candidate
                }
                dir.deleteLastPathComponent()
            }
        }
        return nil
    }

    public static func build(_ options: AssemblyOptions, store: ModelStore) throws -> AssembledPipeline {
        let plan = try options.memoryPlan ?? MemoryPlan.forDevice(options.device)
        let (admitted, dropped) = plan.admit(generators: options.generators)
        let specs = models(generators: admitted)
        // A directory where a weights file belongs is a broken install: fail loudly rather than fall back to smoke.
        for spec in specs where store.locate(model: spec) == nil {
            try store.checkNoDirectoryInPlaceOfFiles(model: spec)
        }
        let report = store.check(models: specs)
        var missing = report.models.filter { !$0.present }.map { "\($0.name): \($0.fetchCommand ?? "gen3d fetch --model \($0.name)")" }
            + dropped.map(plan.notAdmitted)
        var loader = ModelLoader(store: store, device: options.device)
        var generators: [GeneratorID: GaussianStage] = [:]
        if !options.forceSmoke {
            for generator in admitted { generators[generator] = try loader.loadGenerator(generator) }
        }
        // The default is the first listed generator that loaded.
        guard let defaultGenerator = admitted.first(where: { generators[$0] != nil }) else {
            if options.requireReal {
                throw PipelineError.missingStage("real weights are required but missing:\n  " + missing.joined(separator: "\n  "))
            }
            guard let smoke = options.smokeDirectory else {
                throw PipelineError.missingStage("no real weights and no smoke assets (assets/smoke) found; missing:\n  "
                    + missing.joined(separator: "\n  "))
            }
            var smokePipeline = try buildSmoke(smoke, device: options.device, missing: missing)
            smokePipeline.memoryPlan = plan
            return smokePipeline
        }
        var textToImage: TextToImageStage? = nil
        if loader.location(.flux1Schnell) != nil, !plan.loadsTextToImage {
            missing.append("flux1-schnell: present but not loaded under the \(plan.tier.rawValue) memory plan "
                         + "(\(plan.reason)); text prompts answer 503")
        } else {
            textToImage = try loader.loadFlux(plan: plan, float8: options.fluxFloat8, size: options.fluxSize)
        }
        let remover = try loader.loadBiRefNet(plan: plan)
        var directText: [GeneratorID: TextToGaussianStage] = [:]
        if let lgm = loader.lgm {
            directText[.lgm] = try loader.loadMVDreamRoute(lgm: lgm, backgroundRemoval: remover)
        }
        let gate = try loader.loadValidator()
        let pipeline = try GenerationPipeline(
            textToImage: textToImage, backgroundRemoval: remover, generators: generators,
            defaultGenerator: defaultGenerator, directText: directText, defaultTextRoute: options.textRoute,
            validator: gate, missingAdvice: advice(missing))
        return AssembledPipeline(pipeline: pipeline, name: describe(pipeline), isSmoke: false, loaded: loader.loaded,
                                 missing: missing, memoryPlan: plan, residentSizes: loader.resident)
    }

    /// The smoke pipeline: every stage runs (tiny FLUX, tiny BiRefNet at 256 px, tiny TRELLIS) on random weights, fp32.
    public static func buildSmoke(_ dir: URL, device: Device, missing: [String] = []) throws -> AssembledPipeline {
        let model = try TrellisImageTo3D.load(folder: dir.appendingPathComponent("trellis"),
                                              dinov2Folder: dir.appendingPathComponent("dinov2"), device: device, dtype: .float32)
        let fluxDir = dir.appendingPathComponent("flux")
        let flux = try FluxPipeline.load(folder: fluxDir, device: device, dtype: .float32)
        let textToImage = FluxTextToImageStage(pipeline: flux, tokenizer: SmokeTokenizer(clipVocab: 1000, t5Vocab: 100),
                                               device: device, template: .disabled, size: 32, name: "smoke-flux")
        textToImage.truncatePooledEmbedding = true
        let remover = try BiRefNetRemover(checkpoint: dir.appendingPathComponent("birefnet"), device: device, dtype: .float32,
                                          options: BiRefNetRemoverOptions(inputWidth: 256, inputHeight: 256))
        let pipeline = GenerationPipeline(textToImage: textToImage, backgroundRemoval: remover,
                                          gaussians: TrellisGaussianStage(model: model, name: "smoke-trellis"),
                                          validator: nil, missingAdvice: advice(missing))
        return AssembledPipeline(pipeline: pipeline, name: "smoke (tiny random-weight networks; NOT real generation)",
                                 isSmoke: true, loaded: ["smoke": LoadedModel(id: "assets/smoke (tiny random-weight networks)",
                                                                               path: dir.path)],
                                 missing: missing,
                                 memoryPlan: try MemoryPlan.forDevice(device), residentSizes: ResidentSizes(device: device))
    }

    /// The registry entries a pipeline with `generators` loads, in registry order: FLUX.1-schnell, BiRefNet and the
    /// validator scorers always, plus each generator's own models.
    public static func models(generators: [GeneratorID]) -> [ModelSpec] {
        let always: [ModelID] = [.flux1Schnell, .birefnet, .clipConvnextLargeD, .dinov2Small, .qualityScorer]
        let ids = Set((always + generators.flatMap(\.models)).map(\.rawValue))
        return ModelRegistry.models(for: .all).filter { ids.contains($0.name) }
    }

    /// "trellis-image-large + lgm (mvdream text route) + flux.1-schnell": the generators (default first) and the front end.
    public static func describe(_ pipeline: GenerationPipeline) -> String {
        let generators = pipeline.loadedGenerators.map { generator -> String in
            pipeline.directText[generator] == nil ? generator.label : generator.label + " (+ mvdream text route)"
        }
        return generators.joined(separator: ", ") + (pipeline.textToImage == nil ? "" : " + flux.1-schnell")
    }

    /// What to tell a job that needs a missing part, from the lines of `missing` ("name: how to fetch it").
    static func advice(_ missing: [String]) -> [MissingPart: String] {
        func find(_ id: ModelID) -> String? { missing.first { $0.hasPrefix(id.rawValue + ":") } }
        var a: [MissingPart: String] = [:]
        if let m = find(.mvdream) { a[.mvdreamRoute] = "text route 'mvdream' needs MVDream, which is not present (\(m))" }
        if let m = find(.lgm) ?? find(.imagedream) {
            a[.generator(.lgm)] = "generator 'lgm' needs LGM and ImageDream (\(m))"
        }
        if let m = find(.trellisImageLarge) ?? find(.dinov2LargeReg) {
            a[.generator(.trellis)] = "generator 'trellis' needs TRELLIS-image-large and DINOv2 (\(m))"
        }
        if let m = find(.flux1Schnell) { a[.textToImage] = "text prompts need FLUX.1-schnell, which is not present (\(m))" }
        if let m = find(.birefnet) {
            a[.backgroundRemoval] = "this image has no transparency and BiRefNet is not present (\(m)); "
                + "send an RGBA image with the object cut out"
        }
        a[.validation] = "the validator scorers are not loaded"
        return a
    }
}

/// Token ids for the smoke FLUX: bytes of the prompt folded into the tiny vocabularies (there are no tokenizer files
/// for random networks). Only the smoke pipeline uses it.
public struct SmokeTokenizer: FluxPromptTokenizer {
    public let clipVocab: Int
    public let t5Vocab: Int
    public let t5Length: Int

    public init(clipVocab: Int, t5Vocab: Int, t5Length: Int = 24) {
        self.clipVocab = clipVocab
        self.t5Vocab = t5Vocab
        self.t5Length = t5Length
    }

    public func ids(_ text: String) throws -> (clip: [Int32], t5: [Int32]) {
        let bytes = Array(text.utf8)
        func fold(_ n: Int, _ vocab: Int) -> [Int32] {
            (0..<n).map { i in i < bytes.count ? Int32(2 + Int(bytes[i]) % Swift.max(vocab - 2, 1)) : 0 }
        }
        var clip = fold(77, clipVocab)
        clip[Swift.min(bytes.count, 76)] = 2 // the tiny CLIP pools at argmax(ids); make it the end of the text
        return (clip, fold(t5Length, t5Vocab))
    }
}
