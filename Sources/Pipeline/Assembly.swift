import Foundation
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
    public var generators: [String]
    /// The text route of jobs that name none, for generators that have it (LGM): flux or mvdream.
    public var textRoute: TextRoute
    /// Timing mode: every model at its real size with RANDOM weights from the manifests in this folder (TRELLIS's,
    /// and BiRefNet's `manifest_BiRefNet_general.json`). Nothing it outputs is meaningful.
    public var randomWeightsManifests: URL?
    /// How the models share the GPU (nil: chosen from the card's size).
    public var memoryPlan: MemoryPlan?

    public init(device: Device, modelsDirectories: [String] = [], smokeDirectory: URL? = nil, forceSmoke: Bool = false,
                requireReal: Bool = false, fluxSize: Int = 512, fluxFloat8: Bool = false,
                generators: [String] = [GeneratorName.trellis], textRoute: TextRoute = .flux) {
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
    public static func parseGenerators(_ list: String) throws -> [String] {
        let names = list.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.allSatisfy({ GeneratorName.all.contains($0) }) else {
            throw PipelineError.badInput("--generator takes \(GeneratorName.all.joined(separator: ", ")) or a comma list of them, got '\(list)'")
        }
        guard Set(names).count == names.count else { throw PipelineError.badInput("--generator lists a generator twice: '\(list)'") }
        return names
    }
}

public struct AssembledPipeline {
    public var pipeline: GenerationPipeline
    public var name: String
    public var isSmoke: Bool
    /// Loaded stage -> where its weights came from.
    public var loaded: [String: String]
    /// What is missing, each with the command that fetches it.
    public var missing: [String]
    public var memoryPlan: MemoryPlan
    /// Measured GPU memory of each model as it loaded (empty on the CPU).
    public var residentSizes: ResidentSizes
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
        var resident = ResidentSizes(device: options.device)
        let (admitted, dropped) = plan.admit(generators: options.generators)
        let notAdmitted = dropped.map(plan.notAdmitted)
        var options = options
        options.generators = admitted
        if let dir = options.randomWeightsManifests {
            var random = try RandomRealSizePipeline.build(manifests: dir, device: options.device, fluxSize: options.fluxSize,
                                                          generators: options.generators, textRoute: options.textRoute, plan: plan)
            random.missing += notAdmitted
            return random
        }
        // A directory where a weights file belongs is a broken install: fail loudly rather than fall back to smoke.
        for spec in models(generators: options.generators) where store.locate(model: spec) == nil {
            try store.checkNoDirectoryInPlaceOfFiles(model: spec)
        }
        let report = store.check(models: models(generators: options.generators))
        let missing = report.models.filter { !$0.present }.map { "\($0.name): \($0.fetchCommand ?? "gen3d fetch --model \($0.name)")" }
            + notAdmitted
        func location(_ name: String) -> URL? {
            guard let spec = ModelRegistry.model(named: name), let loc = store.locate(model: spec) else { return nil }
            return URL(fileURLWithPath: loc.path)
        }
        let device = options.device
        let halfDType: DType = device.isCUDA ? .float16 : .float32
        let fluxDType: DType = device.isCUDA ? .bfloat16 : .float32

        var loaded: [String: String] = [:]
        var generators: [String: GaussianStage] = [:]
        var lgmModel: LGM? = nil
        if !options.forceSmoke {
            for name in options.generators {
                switch name {
                case GeneratorName.lgm:
                    guard let lgm = location("lgm"), let imageDream = location("imagedream") else { continue }
                    let checkpoint = lgm.appendingPathComponent("model_fp16_fixrot.safetensors")
                    let stage = try resident.measure("imagedream + lgm") {
                        try LGMGaussianStage.load(imageDream: imageDream, lgmCheckpoint: checkpoint, device: device, dtype: halfDType)
                    }
                    generators[name] = stage
                    lgmModel = stage.model
                    loaded["lgm"] = checkpoint.path
                    loaded["imagedream"] = imageDream.path
                default:
                    guard let trellis = location("trellis-image-large"), let dino = location("dinov2-large-reg") else { continue }
                    let model = try resident.measure("trellis + dinov2") {
                        try TrellisImageTo3D.load(folder: trellis, dinov2Folder: dino, device: device, dtype: halfDType)
                    }
                    generators[name] = TrellisGaussianStage(model: model)
                    loaded["trellis"] = trellis.path
                    loaded["dinov2"] = dino.path
                }
            }
        }
        // The default is the first listed generator that loaded.
        if let defaultGenerator = options.generators.first(where: { generators[$0] != nil }) {
            var textToImage: TextToImageStage? = nil
            var missing = missing
            if let flux = location("flux1-schnell"), !plan.loadsTextToImage {
                missing.append("flux1-schnell: present at \(flux.path) but not loaded under the \(plan.tier.rawValue) memory plan "
                               + "(\(plan.reason)); text prompts answer 503")
            } else if let flux = location("flux1-schnell") {
                let format: FluxWeightFormat = options.fluxFloat8 || plan.fluxFloat8 ? .float8(Float8Options()) : .dense
                let pipe = try resident.measure("flux.1-schnell") {
                    try FluxPipeline.load(folder: flux, device: device, dtype: fluxDType, transformerFormat: format,
                                          t5Residency: plan.t5StreamedFromHost ? .streamedFromHost : .device)
                }
                textToImage = FluxTextToImageStage(pipeline: pipe, tokenizer: try FluxFolderTokenizer(folder: flux),
                                                   device: device, size: options.fluxSize)
                loaded["flux"] = flux.path
            }
            var remover: BackgroundRemovalStage? = nil
            if let birefnet = location("birefnet") {
                // BiRefNet's reference runs fp16 on GPU; fp32 on the CPU.
                remover = try resident.measure("birefnet") {
                    try BiRefNetRemover(checkpoint: birefnet, device: device, dtype: halfDType,
                                        options: BiRefNetRemoverOptions(maxBatch: plan.backgroundBatch))
                }
                loaded["birefnet"] = birefnet.path
            }
            var directText: [String: TextToGaussianStage] = [:]
            if let lgmModel, let mvdream = location("mvdream") {
                directText[GeneratorName.lgm] = try resident.measure("mvdream") {
                    try MVDreamLGMStage.load(mvdream: mvdream, model: lgmModel, backgroundRemoval: remover, device: device,
                                             dtype: halfDType)
                }
                loaded["mvdream"] = mvdream.path
            }
            let gate = try resident.measure("validator scorers") { try loadValidator(device: device, locate: location) }
            for (k, v) in gate.loaded { loaded[k] = v }
            let pipeline = try GenerationPipeline(
                textToImage: textToImage, backgroundRemoval: remover, generators: generators,
                defaultGenerator: defaultGenerator, directText: directText, defaultTextRoute: options.textRoute,
                validator: gate.gate, missingAdvice: advice(missing))
            return AssembledPipeline(pipeline: pipeline, name: describe(pipeline), isSmoke: false, loaded: loaded,
                                     missing: missing, memoryPlan: plan, residentSizes: resident)
        }
        if options.requireReal {
            throw PipelineError.missingStage("real weights are required but missing:\n  " + missing.joined(separator: "\n  "))
        }
        guard let smoke = options.smokeDirectory else {
            throw PipelineError.missingStage("no real weights and no smoke assets (assets/smoke) found; missing:\n  "
                + missing.joined(separator: "\n  "))
        }
        var smokePipeline = try buildSmoke(smoke, device: device, missing: missing)
        smokePipeline.memoryPlan = plan
        return smokePipeline
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
                                 isSmoke: true, loaded: ["smoke": dir.path], missing: missing,
                                 memoryPlan: try MemoryPlan.forDevice(device), residentSizes: ResidentSizes(device: device))
    }

    /// The validator gate: the data checks always; the text-alignment and quality scorers when their weights are
    /// present (open_clip convnext_large_d; DINOv2-small + the 404-Gen quality head). Scorers run fp16 on the GPU
    /// as the validators do (autocast), fp32 on the CPU.
    static func loadValidator(device: Device, locate: (String) -> URL?) throws -> (gate: ValidatorGate, loaded: [String: String]) {
        var loaded: [String: String] = [:]
        let dtype: DType = device.isCUDA ? .float16 : .float32
        func file(_ dir: URL, _ names: [String]) -> URL? {
            names.map { dir.appendingPathComponent($0) }.first { FileManager.default.fileExists(atPath: $0.path) }
        }
        func weights(_ url: URL) throws -> WeightSource {
            url.pathExtension == "safetensors" ? try SafeTensors.open(url) : try TorchCheckpoint(url: url)
        }
        var alignment: TextAlignmentScorer? = nil
        var tokenizer: CLIPTokenizer? = nil
        if let dir = locate("clip-convnext-large-d"),
           let f = file(dir, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]) {
            let model = try OpenCLIPConvNeXt.load(config: .convnextLargeD, source: weights(f), device: device, dtype: dtype)
            alignment = TextAlignmentScorer(model: model)
            tokenizer = try CLIPTokenizer.openCLIP()
            loaded["clip-convnext-large-d"] = f.path
        }
        var quality: QualityScorer? = nil
        if let dino = locate("dinov2-small"), let head = locate("quality-scorer"),
           let headFile = file(head, ["quality_scorer.safetensors", "quality_scorer.pth"]),
           let backbone = file(dino, ["model.safetensors", "pytorch_model.bin"]) {
            let config = try ConfigFile.decode(DINOv2.Config.self, from: dino.appendingPathComponent("config.json"))
            quality = try QualityScorer.load(config: config, pretrainedBackbone: weights(backbone),
                                             headCheckpoint: weights(headFile), device: device, dtype: dtype)
            loaded["quality-scorer"] = headFile.path
        }
        let gate = ValidatorGate(rasterizer: makeRasterizer(device: device), alignment: alignment, quality: quality, lpips: nil,
                                 tokenizer: tokenizer, device: device)
        return (gate, loaded)
    }

    /// The registry entries a pipeline with `generators` loads, in registry order: FLUX.1-schnell, BiRefNet and the
    /// validator scorers always, plus each generator's own models.
    public static func models(generators: [String]) -> [ModelSpec] {
        var names: Set = ["flux1-schnell", "birefnet", "clip-convnext-large-d", "dinov2-small", "quality-scorer"]
        if generators.contains(GeneratorName.trellis) { names.formUnion(["trellis-image-large", "dinov2-large-reg"]) }
        if generators.contains(GeneratorName.lgm) { names.formUnion(["lgm", "imagedream", "mvdream"]) }
        return ModelRegistry.models(for: .all).filter { names.contains($0.name) }
    }

    /// "trellis-image-large + lgm (mvdream text route) + flux.1-schnell": the generators (default first) and the front end.
    public static func describe(_ pipeline: GenerationPipeline) -> String {
        let generators = pipeline.generatorNames.map { name -> String in
            let label = name == GeneratorName.trellis ? "trellis-image-large" : name == GeneratorName.lgm ? "imagedream + lgm" : name
            return pipeline.directText[name] == nil ? label : label + " (+ mvdream text route)"
        }
        return generators.joined(separator: ", ") + (pipeline.textToImage == nil ? "" : " + flux.1-schnell")
    }

    static func advice(_ missing: [String]) -> [String: String] {
        func find(_ name: String) -> String? { missing.first { $0.hasPrefix(name + ":") } }
        var a: [String: String] = [:]
        if let m = find("mvdream") { a["mvdream"] = "text route 'mvdream' needs MVDream, which is not present (\(m))" }
        if let m = find("lgm") ?? find("imagedream") { a["generator-lgm"] = "generator 'lgm' needs LGM and ImageDream (\(m))" }
        if let m = find("trellis-image-large") ?? find("dinov2-large-reg") {
            a["generator-trellis"] = "generator 'trellis' needs TRELLIS-image-large and DINOv2 (\(m))"
        }
        if let m = find("flux1-schnell") { a["text-to-image"] = "text prompts need FLUX.1-schnell, which is not present (\(m))" }
        if let m = find("birefnet") {
            a["background-removal"] = "this image has no transparency and BiRefNet is not present (\(m)); "
                + "send an RGBA image with the object cut out"
        }
        a["validation"] = "the validator scorers are not loaded"
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
