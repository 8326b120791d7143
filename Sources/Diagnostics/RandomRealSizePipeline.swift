import Pipeline
import Foundation
import Splatting
import Imaging
import Models
import NN
import TorchShim
import Tokenizers
import CLIPValidate

/// The whole generation pipeline at the real model sizes with random weights made on the device, for timing and
/// memory only (the work is that of the trained models; the output means nothing). Keys and shapes come from the
/// full-size manifests (fixtures/trellis, fixtures/birefnet) and the models' own configs.
///
/// Random weights would occupy most of the 64^3 grid (175K voxels measured) where real objects occupy ~20K, so the
/// sparse-structure decoder's output bias is shifted once, after a calibration run, to give about `targetVoxels`
/// (the only weight that is not plainly random; the count still varies with the input).
public enum RandomRealSizePipeline {
    static func manifestDictionary(_ url: URL, device: Device, dtype: DType, seed: UInt64) throws
        -> (weights: TensorDictionary, args: [String: Any]) {
        let manifest = try ManifestWeights(url: url)
        let random = try RandomWeights(manifest: manifest, device: device, dtype: dtype, seed: seed)
        var tensors: [String: Tensor] = [:]
        for k in manifest.keys { tensors[k] = try random.tensor(k) }
        guard let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any],
              let args = json["args"] as? [String: Any] else {
            throw WeightError.badConfig("manifest \(url.lastPathComponent) has no args")
        }
        return (TensorDictionary(tensors), args)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ args: [String: Any]) throws -> T {
        try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: args))
    }

    /// TRELLIS-image-large + DINOv2-L/14-reg, fp16 like the reference, with the hub pipeline.json sampler defaults.
    public static func trellis(manifests dir: URL, device: Device, dtype: DType = .float16,
                               targetVoxels: Int = 20_000) throws -> TrellisImageTo3D {
        let dinoConfig = TrellisDenseBenchmark.dinov2LargeRegisters
        let dino = try DINOv2(config: dinoConfig, weights: WeightLoader(
            try RandomWeights(TrellisDenseBenchmark.dinov2TensorInfos(dinoConfig), device: device, dtype: dtype, seed: 1),
            device: device, dtype: dtype))
        let ssFlow = try manifestDictionary(dir.appendingPathComponent("manifest_ss_flow_img_dit_L_16l8_fp16.json"),
                                            device: device, dtype: dtype, seed: 2)
        let flow = try SparseStructureFlowModel(args: ssFlow.args, weights: WeightLoader(ssFlow.weights, device: device, dtype: dtype))
        let ssDec = try manifestDictionary(dir.appendingPathComponent("manifest_ss_dec_conv3d_16l8_fp16.json"),
                                           device: device, dtype: dtype, seed: 3)
        let slat = try manifestDictionary(dir.appendingPathComponent("manifest_slat_flow_img_dit_L_64l8p2_fp16.json"),
                                          device: device, dtype: dtype, seed: 4)
        let latentFlow = try SLatFlowModel(WeightLoader(slat.weights, device: device, dtype: dtype),
                                           config: decode(SLatFlowConfig.self, slat.args))
        let gs = try manifestDictionary(dir.appendingPathComponent("manifest_slat_dec_gs_swin8_B_64l8gs32_fp16.json"),
                                        device: device, dtype: dtype, seed: 5)
        let gsDecoder = try SLatGaussianDecoder(WeightLoader(gs.weights, device: device, dtype: dtype),
                                                config: decode(SLatGaussianDecoderConfig.self, gs.args))
        let sampler: [String: Any] = ["name": "FlowEulerGuidanceIntervalSampler", "args": ["sigma_min": 1e-5],
                                      "params": ["steps": 25, "cfg_strength": 5.0, "cfg_interval": [0.5, 1.0], "rescale_t": 3.0]]
        let config = try TrellisPipelineConfig(json: [
            "models": ["sparse_structure_flow_model": "", "sparse_structure_decoder": "", "slat_flow_model": "",
                       "slat_decoder_gs": ""],
            "sparse_structure_sampler": sampler, "slat_sampler": sampler,
            // The SLat flow's training normalisation (fixtures/trellis/README.md).
            "slat_normalization": ["mean": [-2.1688, -0.0043, -0.1335, -0.0842, -0.5271, 0.7239, -1.1414, 1.2039],
                                   "std": [2.3777, 2.3864, 2.1244, 2.1749, 2.6639, 2.3712, 2.6217, 2.6845]],
        ])

        // Calibrate the occupancy: one sampled latent through the decoder, then shift the output bias so that about
        // `targetVoxels` logits are positive.
        let uncalibrated = try SparseStructureDecoder(args: ssDec.args, weights: WeightLoader(ssDec.weights, device: device, dtype: dtype))
        let fc = flow.config
        let generator = try Generator(seed: 7, device: device)
        let cond = try Tensor.randn([1, 1374, fc.condChannels], device: device, generator: generator)
        let noise = try Tensor.randn([1, fc.inChannels, fc.resolution, fc.resolution, fc.resolution], device: device,
                                     generator: generator)
        let params = FlowEulerGuidanceIntervalSampler.Params(steps: 12, cfgStrength: 7.5, cfgInterval: [0.5, 1], rescaleT: 3)
        let latent = try FlowEulerGuidanceIntervalSampler().sample(
            model: { x, t, c in try flow(x, time: t, cond: c) }, noise: noise, cond: cond, negCond: cond.zerosLike(), params: params)
        let logits = try uncalibrated(latent).flatten()
        let threshold = try logits.topk(min(targetVoxels, logits.count)).values.min().item()
        let biasKey = "out_layer.2.bias"
        guard let bias = ssDec.weights[biasKey] else { throw WeightError.missing(biasKey, expected: nil) }
        ssDec.weights[biasKey] = try bias - threshold
        let decoder = try SparseStructureDecoder(args: ssDec.args, weights: WeightLoader(ssDec.weights, device: device, dtype: dtype))

        let model = TrellisImageTo3D(config: config, dinov2: dino, structureFlow: flow, structureDecoder: decoder,
                                     latentFlow: latentFlow, gaussianDecoder: gsDecoder, device: device)
        // Random logits are scattered over the grid (every fine voxel its own coarse voxel), where a real object is a
        // surface; the sparse stages' cost depends on that shape, so time them on a spherical shell of the same count.
        model.structureOverride = { coords in try shell(voxels: coords.size(0), device: device) }
        return model
    }

    /// About `voxels` voxels of a spherical shell centred in the 64^3 grid, [N, 4] int32 (b, x, y, z) in (x, y, z) order.
    static func shell(voxels: Int, device: Device) throws -> Tensor {
        let axis = try Tensor.arange(0, 64, dtype: .float32, device: device) - 31.5
        let g = try Tensor.meshgrid([axis, axis, axis])
        let r = try (g[0].square() + g[1].square() + g[2].square()).sqrt()
        // A shell two voxels thick holds ~8 pi R^2 voxels.
        let radius = Swift.min(29.0, (Double(voxels) / (8 * Double.pi)).squareRoot())
        let xyz = try (r - radius).abs().lt(1.0).nonzero()
        let batch = try Tensor.zeros([xyz.size(0), 1], dtype: .int64, device: device)
        return try Tensor.cat([batch, xyz], dim: 1).to(.int32)
    }

    /// FLUX.1-schnell with ids from the prompt's bytes at the real vocabulary sizes: bf16, or as `plan` says (fp8
    /// transformer, T5 blocks streamed from pinned host memory).
    public static func flux(device: Device, size: Int, plan: MemoryPlan? = nil) throws -> FluxTextToImageStage {
        let s = FluxBenchmark.Sizes.schnell
        let dt = DType.bfloat16
        let format: FluxWeightFormat = plan?.fluxFloat8 == true ? .float8(Float8Options()) : .dense
        let transformer = try FluxTransformer2DModel(FluxBenchmark.randomLoader(s.transformer.parameterShapes(), device: device, dtype: dt, seed: 4),
                                                     config: s.transformer, format: format)
        let vae = try AutoencoderKL(FluxBenchmark.randomLoader(s.vae.parameterShapes(), device: device, dtype: dt, seed: 3),
                                    config: s.vae, withEncoder: false)
        let t5 = try T5EncoderModel(FluxBenchmark.randomLoader(s.t5.parameterShapes(), device: device, dtype: dt, seed: 1), config: s.t5,
                                    blockResidency: plan?.t5StreamedFromHost == true ? .streamedFromHost : .device)
        let clip = try CLIPTextModel(FluxBenchmark.randomLoader(s.clip.parameterShapes(), device: device, dtype: dt, seed: 2), config: s.clip)
        let pipe = try FluxPipeline(transformer: transformer, vae: vae, schedulerConfig: FlowMatchEulerScheduler.Config(),
                                    textEncoders: FluxTextEncoders(clip: clip, t5: t5))
        return FluxTextToImageStage(pipeline: pipe, tokenizer: SmokeTokenizer(clipVocab: 49408, t5Vocab: 32128, t5Length: s.t5Tokens),
                                    device: device, size: size, name: "random-flux.1-schnell")
    }

    /// The multi-view pipeline at the published sizes: ImageDream (`imageDream` true: ip tokens, CLIP ViT-H/14) or
    /// MVDream (text only); the UNet's keys from the manifest in `dir`, the SD 2.1 text tower and SD VAE from their configs.
    static func multiView(_ dir: URL, imageDream: Bool, device: Device, seed: UInt64) throws -> MVDreamPipeline {
        var sizes = LGMBenchmark.Sizes.imageDream
        let unet = try LGMBenchmark.manifest(dir.appendingPathComponent(imageDream ? "manifest_mv_unet_imagedream.json"
                                                                                   : "manifest_mv_unet_mvdream.json"),
                                             MultiViewUNetModel.Config.self)
        sizes.unet = unet.config
        return try LGMBenchmark.randomPipeline(sizes: sizes, unetShapes: unet.shapes, device: device, dtype: .float16, seed: seed)
    }

    /// ImageDream + LGM 'big' (fp16) as the image -> 3D stage, and MVDream -> the same LGM as the text stage.
    public static func lgm(manifests dir: URL, device: Device, backgroundRemoval: BackgroundRemovalStage?) throws
        -> (image: LGMGaussianStage, text: MVDreamLGMStage) {
        let big = try manifestDictionary(dir.appendingPathComponent("manifest_lgm_big.json"), device: device, dtype: .float16, seed: 20)
        let model = try LGM(WeightLoader(big.weights, device: device, dtype: .float16), config: decode(LGM.Config.self, big.args))
        let tokens = SmokeTokenizer(clipVocab: 49408, t5Vocab: 32128)
        let image = try LGMGaussianStage(imageDream: multiView(dir, imageDream: true, device: device, seed: 21), model: model,
                                         processor: CLIPImageProcessor(), promptIds: try tokens.ids("").clip, device: device,
                                         name: "random-lgm")
        let text = try MVDreamLGMStage(mvdream: multiView(dir, imageDream: false, device: device, seed: 31), model: model,
                                       tokenize: { try tokens.ids($0).clip }, backgroundRemoval: backgroundRemoval, device: device,
                                       name: "random-mvdream + lgm")
        return (image, text)
    }

    /// The validator gate with the scorers at their real sizes (open_clip convnext_large_d, DINOv2-small + quality
    /// head), fp16 on a GPU as `PipelineAssembly.loadValidator` loads them, random weights: its scores mean nothing, its
    /// time and memory are the real ones.
    public static func validator(device: Device) throws -> ValidatorGate {
        let dtype: DType = device.isCUDA ? .float16 : .float32
        func random(_ shapes: [String: [Int]], _ seed: UInt64) throws -> RandomWeights {
            try RandomWeights(shapes.mapValues { TensorInfo(dtype: .float32, shape: $0) }, device: device, dtype: .float32, seed: seed)
        }
        let clip = try OpenCLIPConvNeXt.load(config: .convnextLargeD,
                                             source: random(OpenCLIPConvNeXt.expectedTensors(config: .convnextLargeD), 41),
                                             device: device, dtype: dtype)
        let dino = ValidatorScorerBenchmark.dinov2Small
        let quality = try QualityScorer.load(config: dino, source: random(QualityScorer.expectedTensors(config: dino), 42),
                                             device: device, dtype: dtype, resolution: dino.imageSize)
        // LPIPS's AlexNet is not in the registry, so production estimates that term (lpips nil); so does this.
        return ValidatorGate(rasterizer: makeRasterizer(device: device), alignment: TextAlignmentScorer(model: clip),
                             quality: quality, lpips: nil, tokenizer: try CLIPTokenizer.openCLIP(), device: device)
    }

    /// BiRefNet general (fp16) at 1024^2, BatchNorms as identities so activations stay finite.
    public static func birefnet(manifest: URL, device: Device, maxBatch: Int = 4) throws -> BiRefNetRemover {
        let weights = BiRefNetBenchmark.BatchNormSafeWeights(
            try RandomWeights(manifest: ManifestWeights(url: manifest), device: device, dtype: .float16, seed: 0))
        return try BiRefNetRemover(model: BiRefNet(WeightLoader(weights, device: device, dtype: .float16)),
                                   options: BiRefNetRemoverOptions(maxBatch: maxBatch))
    }

    /// Runs BiRefNet for its time, then replaces its (random, meaningless) mask by a centred ellipse so that the
    /// stages after it get an object to work on. Timing mode only.
    final class TimingOnlyRemover: BackgroundRemovalStage {
        let name = "random-birefnet (timing; synthetic mask)"
        let inner: BiRefNetRemover
        init(_ inner: BiRefNetRemover) { self.inner = inner }

        func removeBackground(_ image: Image) throws -> Image { try ellipse(inner.removeBackground(image)) }

        func removeBackground(batch images: [Image]) throws -> [Image] { try inner.removeBackground(batch: images).map(ellipse) }

        private func ellipse(_ cut: Image) throws -> Image {
            var px = cut.toRGBA().pixels
            let (w, h) = (cut.width, cut.height)
            for y in 0..<h {
                for x in 0..<w {
                    let dx = (Double(x) + 0.5) / Double(w) - 0.5, dy = (Double(y) + 0.5) / Double(h) - 0.5
                    px[4 * (y * w + x) + 3] = dx * dx / 0.09 + dy * dy / 0.12 <= 1 ? 255 : 0
                }
            }
            return try Image(width: w, height: h, channels: 4, pixels: px)
        }
    }

    /// text -> FLUX -> BiRefNet -> TRELLIS and/or LGM (+ MVDream) -> PLY, all at real size on `device`, loaded as
    /// `plan` says, with each model's measured GPU size. `dir` holds the manifests of fixtures/trellis, BiRefNet's
    /// `manifest_BiRefNet_general.json` and, for LGM, those of fixtures/lgm. `withValidator` adds the gate with random
    /// scorers (`microbench pipeline` runs it once per job for its time and memory).
    /// `serve --random-weights DIR`: the generators the memory plan admits, each at its real size with random weights;
    /// the ones it leaves out are listed as missing, as `PipelineAssembly.build` lists them.
    public static func build(_ options: AssemblyOptions, manifests dir: URL) throws -> AssembledPipeline {
        let plan = try options.memoryPlan ?? MemoryPlan.forDevice(options.device)
        let (admitted, dropped) = plan.admit(generators: options.generators)
        var random = try build(manifests: dir, device: options.device, fluxSize: options.fluxSize, generators: admitted,
                               textRoute: options.textRoute, plan: plan)
        random.missing += dropped.map(plan.notAdmitted)
        return random
    }

    public static func build(manifests dir: URL, device: Device, targetVoxels: Int = 20_000, fluxSize: Int = 512,
                             generators: [GeneratorID] = [.trellis], textRoute: TextRoute = .flux,
                             plan: MemoryPlan? = nil, withValidator: Bool = false) throws -> AssembledPipeline {
        let plan = try plan ?? MemoryPlan.forDevice(device)
        var resident = ResidentSizes(device: device)
        var textToImage: TextToImageStage? = nil
        if plan.loadsTextToImage {
            textToImage = try resident.measure("flux.1-schnell") { try flux(device: device, size: fluxSize, plan: plan) }
        }
        let remover = TimingOnlyRemover(try resident.measure("birefnet") {
            try birefnet(manifest: dir.appendingPathComponent("manifest_BiRefNet_general.json"), device: device,
                         maxBatch: plan.backgroundBatch)
        })
        // Off for the daemon and `bench` in timing mode: random scorers would gate (and retry) every job.
        let gate = withValidator ? try resident.measure("validator scorers") { try validator(device: device) } : nil
        var stages: [GeneratorID: GaussianStage] = [:]
        var directText: [GeneratorID: TextToGaussianStage] = [:]
        for generator in generators {
            switch generator {
            case .lgm:
                let lgm = try resident.measure("imagedream + lgm + mvdream") {
                    try self.lgm(manifests: dir, device: device, backgroundRemoval: remover)
                }
                stages[generator] = lgm.image
                directText[generator] = lgm.text
            case .trellis:
                stages[generator] = TrellisGaussianStage(model: try resident.measure("trellis + dinov2") {
                    try trellis(manifests: dir, device: device, targetVoxels: targetVoxels)
                }, name: "random-trellis")
            }
        }
        let pipeline = try GenerationPipeline(textToImage: textToImage, backgroundRemoval: remover, generators: stages,
                                              defaultGenerator: generators[0], directText: directText,
                                              defaultTextRoute: textRoute, validator: gate)
        return AssembledPipeline(pipeline: pipeline, name: "real sizes, RANDOM weights (timing only): " + PipelineAssembly.describe(pipeline),
                                 isSmoke: true, loaded: ["random": LoadedModel(id: "random weights at real sizes (timing only)", path: dir.path)], missing: [], memoryPlan: plan,
                                 residentSizes: resident)
    }
}
