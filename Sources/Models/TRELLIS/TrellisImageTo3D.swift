import Foundation
import NN
import TorchShim

/// `pipeline.json` of a TRELLIS image-to-3D folder (the hub file nests these under "args"; the fixtures do not).
public struct TrellisPipelineConfig {
    public struct SamplerEntry {
        public var sigmaMin: Double
        public var params: FlowEulerGuidanceIntervalSampler.Params
    }

    /// Checkpoint paths relative to the folder, without extension (e.g. "ckpts/ss_flow_img_dit_L_16l8_fp16").
    public var models: [String: String]
    public var sparseStructureSampler: SamplerEntry
    public var slatSampler: SamplerEntry
    public var slatNormalization: SLatNormalization

    public init(json: [String: Any]) throws {
        let root = json["args"] as? [String: Any] ?? json
        guard let models = root["models"] as? [String: String] else {
            throw TrellisError.badInput("pipeline.json has no 'models' map")
        }
        func sampler(_ key: String) throws -> SamplerEntry {
            guard let entry = root[key] as? [String: Any] else { throw TrellisError.badInput("pipeline.json has no '\(key)'") }
            let data = try JSONSerialization.data(withJSONObject: entry["params"] ?? [:])
            let params = try JSONDecoder().decode(FlowEulerGuidanceIntervalSampler.Params.self, from: data)
            let sigmaMin = (entry["args"] as? [String: Any])?["sigma_min"] as? Double ?? 1e-5
            return SamplerEntry(sigmaMin: sigmaMin, params: params)
        }
        guard let norm = root["slat_normalization"] as? [String: Any], let mean = norm["mean"] as? [Double],
              let std = norm["std"] as? [Double] else {
            throw TrellisError.badInput("pipeline.json has no slat_normalization mean/std")
        }
        self.models = models
        self.sparseStructureSampler = try sampler("sparse_structure_sampler")
        self.slatSampler = try sampler("slat_sampler")
        self.slatNormalization = SLatNormalization(mean: mean, std: std)
    }

    public init(url: URL) throws {
        let json = try ConfigFile.object(url)
        do { try self.init(json: json) } catch let error as TrellisError {
            throw ConfigFileError(path: url.path, reason: "\(error)")
        } catch let error as DecodingError {
            throw ConfigFileError(path: url.path, reason: ConfigFile.describe(error))
        }
    }
}

/// Per-request sampling choices for the two flow stages.
public struct TrellisSampling: Sendable {
    public var structureSteps: Int?
    public var latentSteps: Int?
    public var structureGuidance: Double?
    public var latentGuidance: Double?

    public init(structureSteps: Int? = nil, latentSteps: Int? = nil, structureGuidance: Double? = nil,
                latentGuidance: Double? = nil) {
        self.structureSteps = structureSteps
        self.latentSteps = latentSteps
        self.structureGuidance = structureGuidance
        self.latentGuidance = latentGuidance
    }
}

/// TRELLIS-image-large, Gaussian output only: DINOv2 conditioning -> sparse-structure flow -> occupancy ->
/// structured-latent flow -> de-normalisation -> Gaussian decoder. Everything stays on `device` until the splat.
public final class TrellisImageTo3D {
    public let config: TrellisPipelineConfig
    public let dinov2: DINOv2
    public let structureFlow: SparseStructureFlowModel
    public let structureDecoder: SparseStructureDecoder
    public let latentFlow: SLatFlowModel
    public let gaussianDecoder: SLatGaussianDecoder
    public let device: Device
    /// Timing harnesses only (random weights): replaces the occupied voxels the decoder produced. Nil in real use.
    public var structureOverride: ((Tensor) throws -> Tensor)?

    public init(config: TrellisPipelineConfig, dinov2: DINOv2, structureFlow: SparseStructureFlowModel,
                structureDecoder: SparseStructureDecoder, latentFlow: SLatFlowModel, gaussianDecoder: SLatGaussianDecoder,
                device: Device) {
        self.config = config
        self.dinov2 = dinov2
        self.structureFlow = structureFlow
        self.structureDecoder = structureDecoder
        self.latentFlow = latentFlow
        self.gaussianDecoder = gaussianDecoder
        self.device = device
    }

    /// Loads the official layout: `<folder>/pipeline.json`, `<folder>/<ckpt>.json` ({"name","args"}) and
    /// `<folder>/<ckpt>.safetensors`, plus DINOv2 in the HF format. Every checkpoint key is checked.
    public static func load(folder: URL, dinov2Folder: URL, device: Device, dtype: DType) throws -> TrellisImageTo3D {
        let config = try TrellisPipelineConfig(url: folder.appendingPathComponent("pipeline.json"))
        func checkpoint(_ role: String) throws -> (args: [String: Any], configURL: URL, loader: WeightLoader) {
            guard let path = config.models[role] else {
                throw ConfigFileError(path: folder.appendingPathComponent("pipeline.json").path, reason: "names no '\(role)'")
            }
            let configURL = folder.appendingPathComponent(path + ".json")
            guard let args = try ConfigFile.object(configURL)["args"] as? [String: Any] else {
                throw ConfigFileError(path: configURL.path, reason: "has no 'args' object")
            }
            let weights = try SafeTensors.open(folder.appendingPathComponent(path + ".safetensors"))
            return (args, configURL, WeightLoader(weights, device: device, dtype: dtype))
        }
        func decode<T: Decodable>(_ type: T.Type, _ args: [String: Any], from url: URL) throws -> T {
            let data = try JSONSerialization.data(withJSONObject: args)
            return try ConfigFile.decoding(url) { try JSONDecoder().decode(T.self, from: data) }
        }
        let ssFlow = try checkpoint("sparse_structure_flow_model")
        let structureFlow = try ConfigFile.decoding(ssFlow.configURL) {
            try SparseStructureFlowModel(args: ssFlow.args, weights: ssFlow.loader)
        }
        try ssFlow.loader.checkAllUsed()
        let ssDec = try checkpoint("sparse_structure_decoder")
        let structureDecoder = try ConfigFile.decoding(ssDec.configURL) {
            try SparseStructureDecoder(args: ssDec.args, weights: ssDec.loader)
        }
        try ssDec.loader.checkAllUsed()
        let slat = try checkpoint("slat_flow_model")
        let latentFlow = try SLatFlowModel(slat.loader, config: decode(SLatFlowConfig.self, slat.args, from: slat.configURL))
        try slat.loader.checkAllUsed()
        let gs = try checkpoint("slat_decoder_gs")
        let gaussianDecoder = try SLatGaussianDecoder(gs.loader, config: decode(SLatGaussianDecoderConfig.self, gs.args,
                                                                                 from: gs.configURL))
        try gs.loader.checkAllUsed()
        let dino = try DINOv2.load(folder: dinov2Folder, device: device, dtype: dtype)
        return TrellisImageTo3D(config: config, dinov2: dino, structureFlow: structureFlow, structureDecoder: structureDecoder,
                                latentFlow: latentFlow, gaussianDecoder: gaussianDecoder, device: device)
    }

    /// DINOv2 conditioning tokens (fp32) of ImageNet-normalised pixels [1, 3, 518, 518].
    public func condition(pixelValues: Tensor) throws -> Tensor {
        try dinov2.trellisCondition(pixelValues: pixelValues.to(device, dtype: dinov2.dtype))
    }

    func params(_ base: FlowEulerGuidanceIntervalSampler.Params, steps: Int?, guidance: Double?) throws
        -> FlowEulerGuidanceIntervalSampler.Params {
        var p = base
        if let steps { p.steps = steps }
        if let guidance { p.cfgStrength = guidance }
        guard p.steps > 0 else { throw TrellisError.badInput("sampler steps must be positive") }
        return p
    }

    /// Stage 1: occupied voxels [N, 4] int32 (b, x, y, z) of the 64^3 grid. `noise` [1, 8, 16, 16, 16].
    public func sampleStructure(cond: Tensor, noise: Tensor, sampling: TrellisSampling = .init()) throws -> Tensor {
        let entry = config.sparseStructureSampler
        let p = try params(entry.params, steps: sampling.structureSteps, guidance: sampling.structureGuidance)
        let negCond = try cond.zerosLike()
        let latent = try FlowEulerGuidanceIntervalSampler(sigmaMin: entry.sigmaMin).sample(
            model: structureFlow.samplerModel(),
            noise: noise, cond: cond, negCond: negCond, params: p)
        var coords = try SparseStructureDecoder.occupiedCoords(structureDecoder(latent))
        if let structureOverride { coords = try structureOverride(coords) }
        guard coords.size(0) > 0 else {
            throw TrellisError.badInput("the sparse structure came out empty (no occupied voxel); try another seed")
        }
        return coords
    }

    /// Stage 2: the structured latent on `coords`, de-normalised. `noise` [N, 8].
    public func sampleLatent(coords: Tensor, cond: Tensor, noise: Tensor, sampling: TrellisSampling = .init()) throws
        -> SparseTensor {
        let entry = config.slatSampler
        let p = try params(entry.params, steps: sampling.latentSteps, guidance: sampling.latentGuidance)
        let layout = try SparseLayout(coords: coords.to(device))
        let denoiser = try SLatGuidedDenoiser(model: latentFlow, layout: layout, cond: cond, negCond: cond.zerosLike())
        let schedule = FlowEulerGuidanceIntervalSampler.timeSchedule(steps: p.steps, rescaleT: p.rescaleT)
        var x = noise
        for i in 0..<p.steps {
            let (t, tNext) = (schedule[i], schedule[i + 1])
            let v = try denoiser.velocity(x, t: t, cfgStrength: p.cfgStrength,
                                          guided: FlowEulerGuidanceIntervalSampler.isGuided(t, params: p))
            x = try x - v * (t - tNext)
        }
        return try SparseTensor(feats: config.slatNormalization.denormalize(x), layout: layout)
    }

    /// The whole image -> Gaussians run for one ImageNet-normalised image, seeded like the reference
    /// (`torch.manual_seed(seed)`: SS noise first, then SLat noise, from the device's generator).
    public func generate(pixelValues: Tensor, seed: UInt64, sampling: TrellisSampling = .init()) throws -> TrellisGaussians {
        var trace = PhaseTrace(device: device)
        let generator = try Generator(seed: seed, device: device)
        let cond = try condition(pixelValues: pixelValues)
        try trace.mark("dinov2")
        let ssNoise = try Tensor.randn([1, structureFlow.config.inChannels, structureFlow.config.resolution,
                                        structureFlow.config.resolution, structureFlow.config.resolution],
                                       device: device, generator: generator)
        let coords = try sampleStructure(cond: cond, noise: ssNoise, sampling: sampling)
        try trace.mark("structure (\(coords.size(0)) voxels)")
        let slatNoise = try Tensor.randn([coords.size(0), latentFlow.config.inChannels], device: device, generator: generator)
        let slat = try sampleLatent(coords: coords, cond: cond, noise: slatNoise, sampling: sampling)
        try trace.mark("latent")
        let gaussians = try gaussianDecoder(slat)
        try trace.mark("gaussian decoder")
        return gaussians
    }
}

/// With `GEN3D_TRACE=1` in the environment, prints the time of each phase (device synchronised) to stderr.
struct PhaseTrace {
    static let enabled = ProcessInfo.processInfo.environment["GEN3D_TRACE"] == "1"
    let device: Device
    var last = DispatchTime.now().uptimeNanoseconds

    init(device: Device) { self.device = device }

    mutating func mark(_ phase: String) throws {
        guard PhaseTrace.enabled else { return }
        if case .cuda(let i) = device { try CUDA.synchronize(i) }
        let now = DispatchTime.now().uptimeNanoseconds
        FileHandle.standardError.write(Data(String(format: "[trace] %-28@ %8.1f ms\n", phase, Double(now - last) / 1e6).utf8))
        last = now
    }
}
