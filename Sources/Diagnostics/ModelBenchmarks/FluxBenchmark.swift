import Models
import Dispatch
import Foundation
import NN
import TorchShim

/// Real-size timings of the FLUX.1-schnell stages with random weights made directly on the device (the work is
/// that of the trained model; the pictures mean nothing). Key lists come from each model's `parameterShapes()`.
public enum FluxBenchmark {
    public typealias Row = BenchmarkRow

    public struct Sizes: Sendable {
        public var transformer: FluxTransformer2DModel.Config
        public var t5: T5EncoderModel.Config
        public var clip: CLIPTextModel.Config
        public var vae: AutoencoderKL.Config
        public var t5Tokens: Int
        public var imageSizes: [Int]
        public var steps: Int
        public var warmup: Int
        public var repeats: Int

        /// FLUX.1-schnell: 19 + 38 blocks of width 3072, T5-XXL at 256 tokens, CLIP-L, the 16-channel VAE.
        public static let schnell = Sizes(
            transformer: FluxTransformer2DModel.Config(), t5: .v11XXL, clip: .vitL14, vae: AutoencoderKL.Config(),
            t5Tokens: 256, imageSizes: [512, 1024], steps: 4, warmup: 2, repeats: 5)

        /// A few-kilobyte configuration that runs in seconds on a CPU (checks the benchmark itself).
        public static let tiny = Sizes(
            transformer: FluxTransformer2DModel.Config(inChannels: 16, numLayers: 1, numSingleLayers: 1,
                                                       attentionHeadDim: 16, numAttentionHeads: 2, jointAttentionDim: 32,
                                                       pooledProjectionDim: 24, axesDimsRope: [4, 6, 6]),
            t5: T5EncoderModel.Config(vocabSize: 100, dModel: 32, dKV: 8, dFF: 64, numLayers: 2, numHeads: 4,
                                      feedForwardProj: "gated-gelu"),
            clip: CLIPTextModel.Config(vocabSize: 1000, hiddenSize: 24, intermediateSize: 48, numHiddenLayers: 2,
                                       numAttentionHeads: 2),
            vae: AutoencoderKL.Config(latentChannels: 4, blockOutChannels: [8, 16], layersPerBlock: 1, normNumGroups: 4),
            t5Tokens: 16, imageSizes: [32], steps: 2, warmup: 1, repeats: 2)

        public init(transformer: FluxTransformer2DModel.Config, t5: T5EncoderModel.Config, clip: CLIPTextModel.Config,
                    vae: AutoencoderKL.Config, t5Tokens: Int, imageSizes: [Int], steps: Int, warmup: Int, repeats: Int) {
            self.transformer = transformer
            self.t5 = t5
            self.clip = clip
            self.vae = vae
            self.t5Tokens = t5Tokens
            self.imageSizes = imageSizes
            self.steps = steps
            self.warmup = warmup
            self.repeats = repeats
        }
    }

    public static func randomLoader(_ shapes: [String: [Int]], device: Device, dtype: DType, seed: UInt64) throws -> WeightLoader {
        let infos = shapes.mapValues { TensorInfo(dtype: dtype, shape: $0) }
        return WeightLoader(try RandomWeights(infos, device: device, dtype: dtype, seed: seed), device: device, dtype: dtype)
    }

    /// Median wall time of `body` in ms (device synchronised around the host clock).
    static func time(_ device: Device, warmup: Int, repeats: Int, _ body: () throws -> Void) throws -> Double {
        func sync() throws { if case .cuda(let i) = device { try CUDA.synchronize(i) } }
        for _ in 0..<warmup { try body() }
        try sync()
        var samples: [Double] = []
        for _ in 0..<max(repeats, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            try sync()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        samples.sort()
        return samples[samples.count / 2]
    }


    /// "peak X GiB" of the stage just run (CUDA), "" on the CPU.
    static func peak(_ device: Device) throws -> String {
        guard case .cuda(let i) = device else { return "" }
        return "peak " + GiB.text(try CUDA.memoryStats(i).peakAllocated)
    }

    static func resetPeak(_ device: Device) throws {
        if case .cuda(let i) = device {
            try CUDA.emptyCache()
            try CUDA.resetPeakMemory(i)
        }
    }

    static func allocated(_ device: Device) throws -> String {
        guard case .cuda(let i) = device else { return "" }
        return GiB.text(try CUDA.memoryStats(i).allocated)
    }

    /// Times T5 (t5Tokens), CLIP (77), the transformer (one step and the whole `steps` loop) and the VAE decode
    /// at each image size, the end-to-end total, then the same transformer with fp8 weights.
    public static func run(device: Device, dtype: DType, sizes: Sizes = .schnell) throws -> [Row] {
        var rows: [Row] = []
        let w = sizes.warmup, r = sizes.repeats
        try resetPeak(device)

        // Text encoders.
        var t5Ms = 0.0, clipMs = 0.0
        do {
            let t5 = try T5EncoderModel(randomLoader(sizes.t5.parameterShapes(), device: device, dtype: dtype, seed: 1),
                                        config: sizes.t5)
            let ids = try Tensor.randint(0, sizes.t5.vocabSize, shape: [1, sizes.t5Tokens], device: device)
            t5Ms = try time(device, warmup: w, repeats: r) { _ = try t5(ids) }
            rows.append(Row(name: "T5 encoder (\(sizes.t5Tokens) tokens)", milliseconds: t5Ms,
                            notes: "weights \(try allocated(device)), \(try peak(device))"))
        }
        try resetPeak(device)
        do {
            let clip = try CLIPTextModel(randomLoader(sizes.clip.parameterShapes(), device: device, dtype: dtype, seed: 2),
                                         config: sizes.clip)
            let ids = try Tensor.randint(0, sizes.clip.vocabSize, shape: [1, sizes.clip.maxPositionEmbeddings], device: device)
            clipMs = try time(device, warmup: w, repeats: r) { _ = try clip(ids) }
            rows.append(Row(name: "CLIP text (\(sizes.clip.maxPositionEmbeddings) tokens)", milliseconds: clipMs,
                            notes: try peak(device)))
        }

        let vae = try AutoencoderKL(randomLoader(sizes.vae.parameterShapes(), device: device, dtype: dtype, seed: 3),
                                    config: sizes.vae, withEncoder: false)
        for format in [FluxWeightFormat.dense, .float8(Float8Options())] {
            try resetPeak(device)
            let transformer = try FluxTransformer2DModel(
                randomLoader(sizes.transformer.parameterShapes(), device: device, dtype: dtype, seed: 4),
                config: sizes.transformer, format: format)
            let label = format == .dense ? "\(dtype)" : "fp8"
            rows.append(Row(name: "transformer load (\(label))", milliseconds: 0,
                            notes: "block Linear weights \(GiB.text(Int64(transformer.blockLinearBytes))), allocated \(try allocated(device))"))
            let pipe = try FluxPipeline(transformer: transformer, vae: vae, schedulerConfig: FlowMatchEulerScheduler.Config())
            for size in sizes.imageSizes {
                let embeds = FluxPromptEmbeddings(
                    promptEmbeds: try Tensor.randn([1, sizes.t5Tokens, sizes.transformer.jointAttentionDim], dtype: dtype,
                                                   device: device),
                    pooledPromptEmbeds: try Tensor.randn([1, sizes.transformer.pooledProjectionDim], dtype: dtype,
                                                         device: device))
                let (lh, lw) = try pipe.latentSize(height: size, width: size)
                let latents = try pipe.randomLatents(batch: 1, height: size, width: size, generator: nil)
                let rope = try transformer.rotaryEmbedding(
                    txtIds: FluxPipeline.textIds(length: sizes.t5Tokens, device: device),
                    imgIds: FluxPipeline.latentImageIds(latentHeight: lh, latentWidth: lw, device: device))
                let t = try Tensor.full([1], value: 0.5, dtype: dtype, device: device)
                try resetPeak(device)
                let stepMs = try time(device, warmup: w, repeats: r) {
                    _ = try transformer.forward(hiddenStates: latents, encoderHiddenStates: embeds.promptEmbeds,
                                                pooledProjections: embeds.pooledPromptEmbeds, timestep: t, rope: rope)
                }
                rows.append(Row(name: "transformer step \(size)^2 (\(label))", milliseconds: stepMs,
                                notes: "\(latents.size(1)) image + \(sizes.t5Tokens) text tokens, \(try peak(device))"))
                if format == .dense {
                    let z = try Tensor.randn([1, sizes.vae.latentChannels, lh, lw], dtype: dtype, device: device)
                    try resetPeak(device)
                    let vaeMs = try time(device, warmup: w, repeats: r) { _ = try vae.decode(z) }
                    rows.append(Row(name: "VAE decode \(size)^2", milliseconds: vaeMs, notes: try peak(device)))
                }
                let options = FluxPipeline.Options(height: size, width: size, steps: sizes.steps)
                try resetPeak(device)
                let pipeMs = try time(device, warmup: 1, repeats: r) {
                    _ = try pipe(embeddings: embeds, options: options, latents: latents)
                }
                rows.append(Row(name: "\(sizes.steps) steps + VAE decode \(size)^2 (\(label))", milliseconds: pipeMs,
                                notes: try peak(device)))
                rows.append(Row(name: "total with text encoders \(size)^2 (\(label))", milliseconds: t5Ms + clipMs + pipeMs,
                                notes: "T5 + CLIP + sampling + decode"))
            }
        }
        return rows
    }
}
