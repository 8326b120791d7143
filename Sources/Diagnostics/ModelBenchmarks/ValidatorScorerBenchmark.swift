import CLIPValidate
import Dispatch
import Foundation
import Models
import NN
import TorchShim

/// Timings of the validator scorers at real size with random weights (the work equals that with trained weights;
/// the numbers mean nothing): open_clip convnext_large_d on 16 views at 224 px plus one prompt, DINOv2-small +
/// quality head on 16 views at 518 px, SSIM and LPIPS over 16 view pairs, and the whole verdict.
/// `tiny` swaps in the fixtures' tiny model configurations and small views (a CPU smoke run; 8 views, the fewest the KNN filter takes with room).
public enum ValidatorScorerBenchmark {

    /// `facebook/dinov2-small`.
    public static let dinov2Small = DINOv2.Config(hiddenSize: 384, numHiddenLayers: 12, numAttentionHeads: 6)

    /// The fixtures' tiny configurations (fixtures/openclip clip_convnext.json and quality_head.json).
    static let tinyCLIP = OpenCLIPConvNeXt.Config(
        embedDim: 24,
        vision: .init(timmModelName: "convnext_large", timmPool: "", timmProj: "mlp", timmProjBias: false,
                      imageSize: 64, depths: [1, 1, 2, 1], dims: [8, 16, 24, 32]),
        text: .init(contextLength: 77, vocabSize: 49408, width: 12, heads: 2, layers: 2, mlpRatio: 4))
    static let tinyDINOv2 = DINOv2.Config(hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2, imageSize: 56)


    static func infos(_ shapes: [String: [Int]]) -> [String: TensorInfo] {
        shapes.mapValues { TensorInfo(dtype: .float32, shape: $0) }
    }

    /// `dtype` is the reduced precision to compare with fp32 (the validator runs CLIP under fp16 autocast and the
    /// other scorers in fp32).
    public static func run(device: Device, dtype: DType = .float16, views viewCount: Int = 16, tiny: Bool = false,
                           iterations: Int = 10, warmup: Int = 3) throws -> [BenchmarkRow] {
        var rows: [BenchmarkRow] = []
        func report(_ name: String, _ r: (ms: Double, peakGiB: Double?), _ text: String) {
            let row = BenchmarkRow(name: name, milliseconds: r.ms, notes: DeviceTiming.note(text, r.peakGiB))
            rows.append(row)
            print(row)
        }
        let count = tiny ? min(viewCount, 8) : viewCount
        let renderSize = tiny ? 64 : ValidatorPreprocessing.dinoResolution
        let views = try Tensor.randint(0, 256, shape: [count, renderSize, renderSize, 3], dtype: .uint8, device: device)
        var ids = [Int](repeating: 0, count: 77)
        ids[0] = 49406
        for i in 1..<20 { ids[i] = 320 + 7 * i }
        ids[20] = 49407

        // Text alignment: convnext_large_d.
        let clipConfig = tiny ? tinyCLIP : .convnextLargeD
        let clipResolution = tiny ? 64 : ValidatorPreprocessing.clipResolution
        var lastCosines: [Float] = []
        for clipDType in dtype == .float32 ? [DType.float32] : [DType.float32, dtype] {
            let weights = try RandomWeights(infos(try OpenCLIPConvNeXt.expectedTensors(config: clipConfig)), device: device,
                                            dtype: .float32, seed: 1)
            let model = try OpenCLIPConvNeXt.load(config: clipConfig, source: weights, device: device, dtype: clipDType)
            let scorer = TextAlignmentScorer(model: model, resolution: clipResolution)
            let tokens = try model.text.idTensor([ids]).to(device)
            let pixels = try ValidatorPreprocessing.clipPixels(views, resolution: clipResolution,
                                                               halfPrecision: scorer.halfPrecisionPreprocessing)
            let label = clipDType == .float32 ? "fp32" : "\(clipDType) autocast-style"
            report("clip preprocess \(count)x\(renderSize)->\(clipResolution) \(label)",
                   try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) {
                       _ = try ValidatorPreprocessing.clipPixels(views, resolution: clipResolution,
                                                                 halfPrecision: scorer.halfPrecisionPreprocessing)
                   }, "bicubic + (x - 3 mean) / 3 std")
            report("clip encode_image \(count)x\(clipResolution) \(label)",
                   try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) { _ = try model.encodeImage(pixels) },
                   "ConvNeXt \(try clipConfig.trunkConfig().depths) + MLP head")
            report("clip encode_text 1x77 \(label)",
                   try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) { _ = try model.encodeText(tokens) },
                   "\(clipConfig.text.layers) layers x \(clipConfig.text.width)")
            report("text alignment score \(label)",
                   try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) {
                       lastCosines = try scorer.score(views: views, tokenIDs: tokens).cosines
                   }, "preprocess + both towers + KNN filter + geometric mean (one host sync)")
        }

        // Quality: DINOv2-small + head, fp32 as the validator runs it.
        let dinoConfig = tiny ? tinyDINOv2 : dinov2Small
        let qualityWeights = try RandomWeights(infos(QualityScorer.expectedTensors(config: dinoConfig)), device: device,
                                               dtype: .float32, seed: 2)
        var lastQuality: [Double] = []
        for qualityDType in dtype == .float32 ? [DType.float32] : [DType.float32, dtype] {
            let quality = try QualityScorer.load(config: dinoConfig, source: qualityWeights, device: device,
                                                 dtype: qualityDType, resolution: dinoConfig.imageSize)
            report("quality DINOv2 \(dinoConfig.hiddenSize)x\(dinoConfig.numHiddenLayers) \(count)x\(dinoConfig.imageSize) \(qualityDType)",
                   try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) {
                       lastQuality = try quality.scores(views: views)
                   }, "\(1 + (dinoConfig.imageSize / 14) * (dinoConfig.imageSize / 14)) tokens per view")
        }

        // SSIM and LPIPS over consecutive pairs, fp32 as the validator runs them.
        var lastSSIM: [Double] = [], lastLPIPS: [Double] = []
        report("ssim \(count) pairs \(renderSize)px fp32",
               try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) {
                   lastSSIM = try ValidatorSSIM().pairScores(views: views)
               }, "11x11 Gaussian, reflect pad")
        let lpips = try ValidatorLPIPS.load(
            alexnet: RandomWeights(infos(ValidatorLPIPS.expectedAlexNetTensors()), device: device, dtype: .float32, seed: 3),
            linear: RandomWeights(infos(ValidatorLPIPS.expectedLinearTensors()), device: device, dtype: .float32, seed: 4),
            device: device)
        report("lpips alexnet \(count) pairs 256px fp32",
               try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) {
                   lastLPIPS = try lpips.pairScores(views: views)
               }, "bicubic to 256, \(2 * count) images through AlexNet")

        let verdict = try ValidatorAggregation.scores(alignment: try ValidatorAggregation.textAlignment(cosines: lastCosines).alignment,
                                                       qualityScores: lastQuality, ssimPairs: lastSSIM, lpipsPairs: lastLPIPS)
        report("aggregation (KNN filters, means, final)",
               try DeviceTiming.measure(device: .cpu, warmup: warmup, iterations: iterations) {
                   _ = try ValidatorAggregation.textScores(cosines: lastCosines, qualityScores: lastQuality,
                                                            ssimPairs: lastSSIM, lpipsPairs: lastLPIPS)
               }, "host only (random inputs, so the verdict means nothing: \(verdict))")
        return rows
    }
}

extension QualityScorer {
    /// Every key and shape of a `DINOv2Net` checkpoint in HF names (`backbone.*`, `score_head`, `emb_head`).
    public static func expectedTensors(config: DINOv2.Config, embeddingDim: Int = 256) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for (key, info) in TrellisDenseBenchmark.dinov2TensorInfos(config) { out["backbone." + key] = info.shape }
        out["score_head.weight"] = [1, config.hiddenSize]
        out["score_head.bias"] = [1]
        out["emb_head.weight"] = [embeddingDim, config.hiddenSize]
        out["emb_head.bias"] = [embeddingDim]
        return out
    }
}

extension ValidatorLPIPS {
    /// torchvision AlexNet's feature convolutions (`features.{0,3,6,8,10}`).
    public static func expectedAlexNetTensors() -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for spec in alexnet {
            out["features.\(spec.index).weight"] = [spec.outChannels, spec.inChannels, spec.kernel, spec.kernel]
            out["features.\(spec.index).bias"] = [spec.outChannels]
        }
        return out
    }

    /// The LPIPS v0.1 linear layers (`lin{k}.model.1.weight`).
    public static func expectedLinearTensors() -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for (k, spec) in alexnet.enumerated() { out["lin\(k).model.1.weight"] = [1, spec.outChannels, 1, 1] }
        return out
    }
}
