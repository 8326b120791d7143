import Models
import Dispatch
import Foundation
import NN
import PLY
import TorchShim

/// Real-size timings of the ImageDream + LGM path with random weights made directly on the device (the work is that
/// of the trained models; the pictures mean nothing). LGM and the multi-view UNet take their keys and configs from the
/// full-size manifests (fixtures/lgm); the SD 2.1 text tower, CLIP ViT-H/14 and the SD VAE from their configs.
public enum LGMBenchmark {
    public typealias Row = BenchmarkRow

    public struct Sizes: Sendable {
        public var lgm: LGM.Config
        public var unet: MultiViewUNetModel.Config
        public var vae: AutoencoderKL.Config
        public var text: CLIPTextModel.Config
        public var vision: CLIPVisionModel.Config
        public var steps: Int
        public var warmup: Int
        public var repeats: Int

        /// The published models: LGM 'big', ImageDream's UNet, SD 2.1 text encoder (23 layers, 1024 wide), CLIP ViT-H/14,
        /// the SD VAE; 30 DDIM steps at 256 px as the LGM demo.
        public static let imageDream = Sizes(
            lgm: .big, unet: .imagedream,
            vae: AutoencoderKL.Config(latentChannels: 4, blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2,
                                      scalingFactor: 0.18215, shiftFactor: nil, useQuantConv: true, usePostQuantConv: true),
            text: CLIPTextModel.Config(hiddenSize: 1024, intermediateSize: 4096, numHiddenLayers: 23, numAttentionHeads: 16,
                                       hiddenAct: .gelu),
            vision: .vitH14, steps: 30, warmup: 2, repeats: 5)

        /// The fixture-sized networks (runs in seconds on a CPU; checks the benchmark itself).
        public static let tiny = Sizes(
            lgm: LGM.Config(inputSize: 64, downChannels: [32, 32, 32, 32, 32, 32],
                            downAttention: [false, false, false, true, true, true], midAttention: true,
                            upChannels: [32, 32, 32, 32, 32], upAttention: [true, true, true, false, false], splatSize: 32),
            unet: MultiViewUNetModel.Config(modelChannels: 32, attentionResolutions: [1, 2], numResBlocks: 1,
                                            channelMult: [1, 1, 1], numHeadChannels: 16, contextDim: 16, ipDim: 4),
            vae: AutoencoderKL.Config(latentChannels: 4, blockOutChannels: [8, 8, 16, 16], layersPerBlock: 1, normNumGroups: 8,
                                      scalingFactor: 0.18215, shiftFactor: nil, useQuantConv: true, usePostQuantConv: true),
            text: CLIPTextModel.Config(vocabSize: 1000, hiddenSize: 16, intermediateSize: 32, numHiddenLayers: 2,
                                       numAttentionHeads: 2, hiddenAct: .gelu),
            vision: CLIPVisionModel.Config(hiddenSize: 1280, intermediateSize: 64, numHiddenLayers: 2, numAttentionHeads: 20,
                                           imageSize: 16, patchSize: 4, hiddenAct: .gelu),
            steps: 2, warmup: 0, repeats: 1)

        public init(lgm: LGM.Config, unet: MultiViewUNetModel.Config, vae: AutoencoderKL.Config, text: CLIPTextModel.Config,
                    vision: CLIPVisionModel.Config, steps: Int, warmup: Int, repeats: Int) {
            self.lgm = lgm
            self.unet = unet
            self.vae = vae
            self.text = text
            self.vision = vision
            self.steps = steps
            self.warmup = warmup
            self.repeats = repeats
        }
    }

    static func loader(_ shapes: [String: [Int]], device: Device, dtype: DType, seed: UInt64) throws -> WeightLoader {
        try FluxBenchmark.randomLoader(shapes, device: device, dtype: dtype, seed: seed)
    }

    /// The multi-view pipeline at `sizes` with random weights made on the device: ImageDream (CLIP vision, VAE encoder)
    /// when the UNet config has ip tokens, else MVDream (text only). The UNet's keys are `unetShapes` (a manifest's, or
    /// its config's); the other parts come from their configs. `seed` .. `seed + 3` draw the four parts.
    public static func randomPipeline(sizes: Sizes, unetShapes: [String: [Int]], device: Device, dtype: DType,
                                      seed: UInt64) throws -> MVDreamPipeline {
        let imageDream = sizes.unet.ipDim > 0
        let text = try CLIPTextModel(loader(sizes.text.parameterShapes(), device: device, dtype: dtype, seed: seed), config: sizes.text)
        let vision = imageDream ? try CLIPVisionModel(loader(sizes.vision.parameterShapes(), device: device, dtype: dtype, seed: seed + 1),
                                                      config: sizes.vision, usesPenultimateLayerOnly: true) : nil
        let vae = try AutoencoderKL(loader(sizes.vae.parameterShapes(), device: device, dtype: dtype, seed: seed + 2),
                                    config: sizes.vae, withEncoder: imageDream)
        let unet = try MultiViewUNetModel(loader(unetShapes, device: device, dtype: dtype, seed: seed + 3), config: sizes.unet)
        return try MVDreamPipeline(unet: unet, vae: vae, textEncoder: text, imageEncoder: vision,
                                   schedulerConfig: DDIMScheduler.Config())
    }

    /// Keys, shapes and config of a full-size manifest.
    public static func manifest<T: Decodable>(_ url: URL, _ type: T.Type) throws -> (shapes: [String: [Int]], config: T) {
        let weights = try ManifestWeights(url: url)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let args = json?["args"] else { throw LGMError("\(url.lastPathComponent) has no args") }
        let config = try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: args))
        return (Dictionary(uniqueKeysWithValues: weights.keys.map { ($0, weights.info($0)!.shape) }), config)
    }

    /// Times the text and image encoders, the VAE, one CFG-batched UNet step, the whole ImageDream call, LGM and the PLY
    /// export, with peak memory per stage. `manifestDir` (fixtures/lgm) supplies LGM's and the UNet's key lists; nil
    /// uses the configs of `sizes`.
    public static func run(device: Device, dtype: DType, manifestDir: URL?, sizes base: Sizes = .imageDream) throws -> [Row] {
        var sizes = base
        var lgmShapes = sizes.lgm.parameterShapes(), unetShapes = sizes.unet.parameterShapes()
        if let dir = manifestDir {
            (lgmShapes, sizes.lgm) = try manifest(dir.appendingPathComponent("manifest_lgm_big.json"), LGM.Config.self)
            (unetShapes, sizes.unet) = try manifest(dir.appendingPathComponent("manifest_mv_unet_imagedream.json"),
                                                    MultiViewUNetModel.Config.self)
        }
        let (w, r) = (sizes.warmup, sizes.repeats)
        func time(_ body: () throws -> Void) throws -> Double { try FluxBenchmark.time(device, warmup: w, repeats: r, body) }
        func peak() throws -> String { try FluxBenchmark.peak(device) }
        func reset() throws { try FluxBenchmark.resetPeak(device) }
        var rows: [Row] = []

        // The ceiling of this run: a square GEMM in the benchmark's dtype (8192^3 on a GPU, 512^3 on a CPU).
        let n = device.isCUDA ? 8192 : 512
        let (ga, gb) = (try Tensor.randn([n, n], dtype: dtype, device: device), try Tensor.randn([n, n], dtype: dtype, device: device))
        let gemmMs = try FluxBenchmark.time(device, warmup: 3, repeats: device.isCUDA ? 20 : 3) { _ = try ga.matmul(gb) }
        let gemmTFLOPs = 2 * pow(Double(n), 3) / gemmMs / 1e9
        rows.append(Row(name: "GEMM \(n)^3 \(dtype) (this run's ceiling)", milliseconds: gemmMs,
                        notes: String(format: "%.1f TFLOP/s", gemmTFLOPs)))
        /// FLOPs of one call of `body` (counted from shapes on an untimed run).
        func flops(_ body: () throws -> Void) throws -> Double { try FLOPCounter.count(body).flops }
        func rate(_ flop: Double, _ ms: Double) -> String {
            let tflops = flop / ms / 1e9
            return String(format: "%.3g GFLOP, %.1f TFLOP/s (%.0f%% of the GEMM)", flop / 1e9, tflops, 100 * tflops / gemmTFLOPs)
        }

        try reset()
        let pipe = try randomPipeline(sizes: sizes, unetShapes: unetShapes, device: device, dtype: dtype, seed: 1)
        let unet = pipe.unet
        let lgm = try LGM(loader(lgmShapes, device: device, dtype: dtype, seed: 5), config: sizes.lgm)
        rows.append(Row(name: "weights (text, ViT-H, VAE, MV UNet, LGM)", milliseconds: 0,
                        notes: "allocated \(try FluxBenchmark.allocated(device))"))

        let options = MVDreamPipeline.Options(steps: sizes.steps, decodeReferenceView: false)
        let side = MVDreamPipeline.referenceImageSide
        let ids = try Tensor.randint(0, sizes.text.vocabSize, shape: [1, sizes.text.maxPositionEmbeddings], device: device)
        let prompt = MVDreamImagePrompt(
            pixelValues: try Tensor.randn([1, 3, sizes.vision.imageSize, sizes.vision.imageSize], device: device),
            image: try Tensor.rand([1, 3, side, side], device: device))

        /// A timed row with its FLOPs, achieved rate against the GEMM, and peak memory.
        func measured(_ name: String, _ body: () throws -> Void) throws -> Row {
            let work = try flops(body)
            try reset()
            let ms = try time(body)
            return Row(name: name, milliseconds: ms, notes: rate(work, ms) + ", " + (try peak()))
        }
        rows.append(try measured("CLIP text (\(sizes.text.maxPositionEmbeddings) tokens) x2") {
            _ = try pipe.encodePrompt(ids); _ = try pipe.encodePrompt(ids)
        })
        rows.append(try measured("CLIP vision penultimate (\(sizes.vision.imageSize) px)") {
            _ = try pipe.imageEmbeddings(prompt.pixelValues)
        })
        rows.append(try measured("VAE encode \(side)^2 (reference image)") { _ = try pipe.imageLatents(prompt.image) })

        // One UNet call as the sampler makes it: 2 x (views + 1) frames.
        let frames = options.views + 1
        let latent = side / pipe.vaeScaleFactor
        let x = try Tensor.randn([2 * frames, 4, latent, latent], dtype: dtype, device: device)
        let t = try Tensor.full([2 * frames], value: 501, dtype: dtype, device: device)
        let context = try Tensor.randn([2 * frames, sizes.text.maxPositionEmbeddings, sizes.unet.contextDim], dtype: dtype,
                                       device: device)
        let camera = try MultiViewCameras.cameras(frames: options.views, extraView: true).to(device, dtype: dtype).repeated([2, 1])
        let ip = try Tensor.randn([2 * frames, sizes.vision.tokens, 1280], dtype: dtype, device: device)
        let ipImage = try Tensor.randn([2, 4, latent, latent], dtype: dtype, device: device)
        rows.append(try measured("MV UNet step (\(2 * frames) frames CFG, \(latent)^2 latents)") {
            _ = try unet(x, timesteps: t, context: context, camera: camera, frames: frames, ip: ip, ipImage: ipImage)
        })
        let views = try Tensor.randn([options.views, 4, latent, latent], dtype: dtype, device: device)
        rows.append(try measured("VAE decode \(options.views) views \(side)^2") { _ = try pipe.decode(views) })

        var imagesOut: Tensor? = nil
        let pipeFLOPs = try flops { imagesOut = try pipe(promptIds: ids, negativeIds: ids, image: prompt, options: options).images }
        try reset()
        let pipeMs = try FluxBenchmark.time(device, warmup: min(1, w), repeats: max(1, r / 2)) {
            imagesOut = try pipe(promptIds: ids, negativeIds: ids, image: prompt, options: options).images
        }
        rows.append(Row(name: "ImageDream \(sizes.steps) steps end to end", milliseconds: pipeMs,
                        notes: "encoders + sampling + decode, \(rate(pipeFLOPs, pipeMs)), \(try peak())"))

        // LGM on views in [0, 1] (random weights keep most Gaussians above the pruning threshold).
        let rays = try LGMRays.defaultRays(config: sizes.lgm, device: device)
        let input = try LGMInput.assemble(views: Tensor.rand([4, side, side, 3], device: device), rays: rays,
                                          inputSize: sizes.lgm.inputSize)
        var gaussians: LGMGaussians? = nil
        let lgmFLOPs = try flops { gaussians = try lgm.gaussians(input) }
        try reset()
        let lgmMs = try time { gaussians = try lgm.gaussians(input) }
        let count = gaussians?.count ?? 0
        let finite = try gaussians.map { try $0.rows.isfinite().all().item() != 0 } ?? false
        rows.append(Row(name: "LGM forward (4 x \(sizes.lgm.inputSize)^2 -> \(count) Gaussians)", milliseconds: lgmMs,
                        notes: "\(finite ? "finite" : "NON-FINITE"), \(rate(lgmFLOPs, lgmMs)), \(try peak())"))
        var plyBytes = 0, kept = 0
        let plyMs = try time {
            let splat = try gaussians!.splat(orientation: .yDown)
            kept = splat.count
            plyBytes = try PLYWriter().encode(splat).count
        }
        rows.append(Row(name: "Gaussians -> PLY (prune, copy, encode)", milliseconds: plyMs,
                        notes: "\(kept) kept, \(plyBytes) bytes"))

        try reset()
        let totalMs = try FluxBenchmark.time(device, warmup: 0, repeats: 1) {
            let images = try pipe(promptIds: ids, negativeIds: ids, image: prompt, options: options).images
            let lgmInput = try LGMInput.assemble(views: LGMInput.fromPipelineViews(images), rays: rays,
                                                 inputSize: sizes.lgm.inputSize)
            _ = try PLYWriter().encode(lgm.gaussians(lgmInput).splat())
        }
        rows.append(Row(name: "total image prompt -> PLY", milliseconds: totalMs,
                        notes: "views \(imagesOut?.shape ?? []), \(try peak())"))
        return rows
    }
}
