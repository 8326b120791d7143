import Foundation
import CLIPValidate
import Models
import ModelStore
import NN
import Splatting
import TorchShim
import Tokenizers

/// Loads each model of a real pipeline from the model store onto one device, one loader per model: it records where
/// each came from (`loaded`) and the GPU memory each took (`resident`). A loader whose weights are absent returns nil.
struct ModelLoader {
    let store: ModelStore
    let device: Device
    private(set) var loaded: [String: LoadedModel] = [:]
    private(set) var resident: ResidentSizes
    /// LGM once `loadGenerator(.lgm)` loaded it: the MVDream text route lifts its views with the same network.
    private(set) var lgm: LGM?

    /// Diffusion and 3D networks run fp16 on the GPU as their references do, fp32 on the CPU.
    var halfDType: DType { device.isCUDA ? .float16 : .float32 }

    init(store: ModelStore, device: Device) {
        self.store = store
        self.device = device
        resident = ResidentSizes(device: device)
    }

    func location(_ id: ModelID) -> URL? {
        guard let spec = ModelRegistry.model(id), let found = store.locate(model: spec) else { return nil }
        return URL(fileURLWithPath: found.path)
    }

    private mutating func record(_ key: String, _ id: ModelID, at url: URL) {
        loaded[key] = .registry(id, at: url)
    }

    mutating func loadGenerator(_ generator: GeneratorID) throws -> GaussianStage? {
        switch generator {
        case .trellis: return try loadTrellis()
        case .lgm: return try loadLGM()
        }
    }

    /// TRELLIS-image-large conditioned by DINOv2-L/14 with registers.
    mutating func loadTrellis() throws -> GaussianStage? {
        guard let trellis = location(.trellisImageLarge), let dino = location(.dinov2LargeReg) else { return nil }
        let (device, dtype) = (self.device, halfDType)
        let model = try resident.measure("trellis + dinov2") {
            try TrellisImageTo3D.load(folder: trellis, dinov2Folder: dino, device: device, dtype: dtype)
        }
        record("trellis", .trellisImageLarge, at: trellis)
        record("dinov2", .dinov2LargeReg, at: dino)
        return TrellisGaussianStage(model: model)
    }

    /// ImageDream's four views lifted by LGM.
    mutating func loadLGM() throws -> GaussianStage? {
        guard let lgmFolder = location(.lgm), let imageDream = location(.imagedream) else { return nil }
        let checkpoint = lgmFolder.appendingPathComponent("model_fp16_fixrot.safetensors")
        let (device, dtype) = (self.device, halfDType)
        let stage = try resident.measure("imagedream + lgm") {
            try LGMGaussianStage.load(imageDream: imageDream, lgmCheckpoint: checkpoint, device: device, dtype: dtype)
        }
        lgm = stage.model
        record("lgm", .lgm, at: checkpoint)
        record("imagedream", .imagedream, at: imageDream)
        return stage
    }

    /// FLUX.1-schnell, bf16 on the GPU (its transformer fp8 and T5 streamed from the host where the plan says so).
    mutating func loadFlux(plan: MemoryPlan, float8: Bool, size: Int) throws -> TextToImageStage? {
        guard let flux = location(.flux1Schnell) else { return nil }
        let device = self.device
        let dtype: DType = device.isCUDA ? .bfloat16 : .float32
        let format: FluxWeightFormat = float8 || plan.fluxFloat8 ? .float8(Float8Options()) : .dense
        let pipe = try resident.measure("flux.1-schnell") {
            try FluxPipeline.load(folder: flux, device: device, dtype: dtype, transformerFormat: format,
                                  t5Residency: plan.t5StreamedFromHost ? .streamedFromHost : .device)
        }
        record("flux", .flux1Schnell, at: flux)
        return FluxTextToImageStage(pipeline: pipe, tokenizer: try FluxFolderTokenizer(folder: flux), device: device, size: size)
    }

    /// BiRefNet, in batches as large as the plan allows.
    mutating func loadBiRefNet(plan: MemoryPlan) throws -> BackgroundRemovalStage? {
        guard let birefnet = location(.birefnet) else { return nil }
        let (device, dtype) = (self.device, halfDType)
        let remover = try resident.measure("birefnet") {
            try BiRefNetRemover(checkpoint: birefnet, device: device, dtype: dtype,
                                options: BiRefNetRemoverOptions(maxBatch: plan.backgroundBatch))
        }
        record("birefnet", .birefnet, at: birefnet)
        return remover
    }

    /// MVDream's text -> four views -> `lgm`, when MVDream is present.
    mutating func loadMVDreamRoute(lgm: LGM, backgroundRemoval: BackgroundRemovalStage?) throws -> TextToGaussianStage? {
        guard let mvdream = location(.mvdream) else { return nil }
        let (device, dtype) = (self.device, halfDType)
        let stage = try resident.measure("mvdream") {
            try MVDreamLGMStage.load(mvdream: mvdream, model: lgm, backgroundRemoval: backgroundRemoval, device: device,
                                     dtype: dtype)
        }
        record("mvdream", .mvdream, at: mvdream)
        return stage
    }

    /// The validator gate: the data checks always; the text-alignment and quality scorers when their weights are
    /// present (open_clip convnext_large_d; DINOv2-small + the 404-Gen quality head). Scorers run fp16 on the GPU
    /// as the validators do (autocast), fp32 on the CPU.
    mutating func loadValidator() throws -> ValidatorGate {
        let device = self.device
        let dtype: DType = device.isCUDA ? .float16 : .float32
        func file(_ dir: URL, _ names: [String]) -> URL? {
            names.map { dir.appendingPathComponent($0) }.first { FileManager.default.fileExists(atPath: $0.path) }
        }
        func weights(_ url: URL) throws -> WeightSource {
            url.pathExtension == "safetensors" ? try SafeTensors.open(url) : try TorchCheckpoint(url: url)
        }
        let clip = location(.clipConvnextLargeD).flatMap { file($0, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]) }
        let dino = location(.dinov2Small)
        let head = location(.qualityScorer).flatMap { file($0, ["quality_scorer.safetensors", "quality_scorer.pth"]) }
        let gate = try resident.measure("validator scorers") { () throws -> ValidatorGate in
            var alignment: TextAlignmentScorer? = nil
            var tokenizer: CLIPTokenizer? = nil
            if let clip {
                let model = try OpenCLIPConvNeXt.load(config: .convnextLargeD, source: weights(clip), device: device, dtype: dtype)
                alignment = TextAlignmentScorer(model: model)
                tokenizer = try CLIPTokenizer.openCLIP()
            }
            var quality: QualityScorer? = nil
            if let dino, let head, let backbone = file(dino, ["model.safetensors", "pytorch_model.bin"]) {
                let config = try ConfigFile.decode(DINOv2.Config.self, from: dino.appendingPathComponent("config.json"))
                quality = try QualityScorer.load(config: config, pretrainedBackbone: weights(backbone),
                                                 headCheckpoint: weights(head), device: device, dtype: dtype)
            }
            return ValidatorGate(rasterizer: makeRasterizer(device: device), alignment: alignment, quality: quality,
                                 lpips: nil, tokenizer: tokenizer, device: device)
        }
        if let clip, gate.alignment != nil { record("clip-convnext-large-d", .clipConvnextLargeD, at: clip) }
        if let head, gate.quality != nil { record("quality-scorer", .qualityScorer, at: head) }
        return gate
    }
}
