import Models
import Dispatch
import Foundation
import NN
import TorchShim

/// GPU timings of the dense TRELLIS stages at real size with random weights (the work equals that with trained
/// weights; the outputs mean nothing): DINOv2-L/14 with registers at 518 px, one sparse-structure flow call at
/// batch 2 (conditional + unconditional), whole SS sampling runs, and the SS decoder.
///
/// Keys and shapes come from the full-size manifests in `manifestDir` (fixtures/trellis); DINOv2-L's are built
/// from its config. With `tinyConfigs` the fixture's tiny configurations are used instead (a CPU smoke run).
public enum TrellisDenseBenchmark {

    /// `facebook/dinov2-with-registers-large` (= torch-hub dinov2_vitl14_reg): 1024 wide, 24 layers, 16 heads.
    public static let dinov2LargeRegisters = DINOv2.Config(hiddenSize: 1024, numHiddenLayers: 24, numAttentionHeads: 16,
                                                           mlpRatio: 4, patchSize: 14, imageSize: 518,
                                                           numRegisterTokens: 4)

    /// Every HF key and shape of a DINOv2 checkpoint with `config` (fp32 entries; loaders convert).
    public static func dinov2TensorInfos(_ c: DINOv2.Config) -> [String: TensorInfo] {
        let d = c.hiddenSize, grid = c.positionGrid
        var shapes: [String: [Int]] = [
            "embeddings.cls_token": [1, 1, d],
            "embeddings.mask_token": [1, d],
            "embeddings.position_embeddings": [1, 1 + grid * grid, d],
            "embeddings.patch_embeddings.projection.weight": [d, c.numChannels, c.patchSize, c.patchSize],
            "embeddings.patch_embeddings.projection.bias": [d],
            "layernorm.weight": [d],
            "layernorm.bias": [d],
        ]
        if c.numRegisterTokens > 0 { shapes["embeddings.register_tokens"] = [1, c.numRegisterTokens, d] }
        for i in 0..<c.numHiddenLayers {
            let p = "encoder.layer.\(i)."
            for n in ["norm1", "norm2"] {
                shapes[p + n + ".weight"] = [d]
                shapes[p + n + ".bias"] = [d]
            }
            for n in ["query", "key", "value"] {
                shapes[p + "attention.attention.\(n).weight"] = [d, d]
                if c.qkvBias { shapes[p + "attention.attention.\(n).bias"] = [d] }
            }
            shapes[p + "attention.output.dense.weight"] = [d, d]
            shapes[p + "attention.output.dense.bias"] = [d]
            shapes[p + "layer_scale1.lambda1"] = [d]
            shapes[p + "layer_scale2.lambda1"] = [d]
            shapes[p + "mlp.fc1.weight"] = [c.mlpHidden, d]
            shapes[p + "mlp.fc1.bias"] = [c.mlpHidden]
            shapes[p + "mlp.fc2.weight"] = [d, c.mlpHidden]
            shapes[p + "mlp.fc2.bias"] = [d]
        }
        return shapes.mapValues { TensorInfo(dtype: .float32, shape: $0) }
    }

    static func infos(of source: WeightSource) -> [String: TensorInfo] {
        var out: [String: TensorInfo] = [:]
        for k in source.keys { out[k] = source.info(k) }
        return out
    }

    static func args(_ url: URL) throws -> [String: Any] {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let args = json?["args"] as? [String: Any] else {
            throw TrellisError.badInput("\(url.lastPathComponent) has no args")
        }
        return args
    }


    public static func run(device: Device, dtype: DType, manifestDir: URL, tinyConfigs: Bool = false,
                           iterations: Int = 10, warmup: Int = 3, samplerSteps: [Int] = [25, 12]) throws -> [BenchmarkRow] {
        var rows: [BenchmarkRow] = []
        func report(_ row: BenchmarkRow) {
            rows.append(row)
            print(row)
        }

        // DINOv2 conditioning.
        let dinoConfig: DINOv2.Config
        if tinyConfigs {
            dinoConfig = try JSONDecoder().decode(DINOv2.Config.self, from: Data(contentsOf: manifestDir
                .appendingPathComponent("dinov2_tiny/config.json")))
        } else {
            dinoConfig = dinov2LargeRegisters
        }
        let size = dinoConfig.imageSize
        let pixels = try Tensor.randn([1, 3, size, size], device: device)
        for dinoDType in dtype == .float32 ? [DType.float32] : [DType.float32, dtype] {
            let weights = try RandomWeights(dinov2TensorInfos(dinoConfig), device: device, dtype: dinoDType, seed: 1)
            let dino = try DINOv2(config: dinoConfig, weights: WeightLoader(weights, device: device, dtype: dinoDType))
            let r = try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) {
                _ = try dino.trellisCondition(pixelValues: pixels)
            }
            let tokens = 1 + dinoConfig.numRegisterTokens + (size / dinoConfig.patchSize) * (size / dinoConfig.patchSize)
            report(BenchmarkRow(name: "dinov2 \(dinoConfig.hiddenSize)x\(dinoConfig.numHiddenLayers) \(size)px \(dinoDType)",
                                milliseconds: r.ms, notes: DeviceTiming.note("\(tokens) tokens, + non-affine LN", r.peakGiB)))
        }

        // Sparse-structure flow.
        let flowArgs: [String: Any]
        let flowInfos: [String: TensorInfo]
        let decoderArgs: [String: Any]
        let decoderInfos: [String: TensorInfo]
        if tinyConfigs {
            flowArgs = try args(manifestDir.appendingPathComponent("ss_flow.json"))
            flowInfos = infos(of: try SafeTensorsFile(url: manifestDir.appendingPathComponent("ss_flow.safetensors")))
            decoderArgs = try args(manifestDir.appendingPathComponent("ss_dec.json"))
            decoderInfos = infos(of: try SafeTensorsFile(url: manifestDir.appendingPathComponent("ss_dec.safetensors")))
        } else {
            let flowURL = manifestDir.appendingPathComponent("manifest_ss_flow_img_dit_L_16l8_fp16.json")
            let decoderURL = manifestDir.appendingPathComponent("manifest_ss_dec_conv3d_16l8_fp16.json")
            flowArgs = try args(flowURL)
            flowInfos = infos(of: try ManifestWeights(url: flowURL))
            decoderArgs = try args(decoderURL)
            decoderInfos = infos(of: try ManifestWeights(url: decoderURL))
        }
        let flow = try SparseStructureFlowModel(
            args: flowArgs,
            weights: WeightLoader(try RandomWeights(flowInfos, device: device, dtype: dtype, seed: 2), device: device,
                                  dtype: dtype))
        let fc = flow.config
        let cond = try Tensor.randn([1, 1 + dinoConfig.numRegisterTokens + (size / 14) * (size / 14), fc.condChannels],
                                    device: device)
        let negCond = try cond.zerosLike()
        let noise = try Tensor.randn([1, fc.inChannels, fc.resolution, fc.resolution, fc.resolution], device: device)
        let x2 = try Tensor.cat([noise, noise], dim: 0), cond2 = try Tensor.cat([cond, negCond], dim: 0)
        for batch in [2, 1] {
            let (x, c) = batch == 2 ? (x2, cond2) : (noise, cond)
            let r = try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) {
                _ = try flow(x, time: 750, cond: c)
            }
            report(BenchmarkRow(name: "ss flow \(fc.modelChannels)x\(fc.numBlocks) call, batch \(batch) \(dtype)",
                                milliseconds: r.ms,
                                notes: DeviceTiming.note("\(fc.gridSize * fc.gridSize * fc.gridSize) tokens, cond \(cond.size(1))",
                                            r.peakGiB)))
        }
        let sampler = FlowEulerGuidanceIntervalSampler(sigmaMin: 1e-5)
        var latent = noise
        for steps in samplerSteps {
            let params = FlowEulerGuidanceIntervalSampler.Params(steps: steps, cfgStrength: 7.5, cfgInterval: [0.5, 1],
                                                                 rescaleT: 3)
            let guided = FlowEulerGuidanceIntervalSampler.timeSchedule(steps: steps, rescaleT: 3).dropLast()
                .filter { FlowEulerGuidanceIntervalSampler.isGuided($0, params: params) }.count
            let r = try DeviceTiming.measure(device: device, warmup: min(warmup, 1), iterations: max(1, iterations / 4)) {
                latent = try sampler.sample(model: flow.samplerModel(), noise: noise,
                                            cond: cond, negCond: negCond, params: params)
            }
            report(BenchmarkRow(name: "ss sampler \(steps) steps \(dtype)", milliseconds: r.ms,
                                notes: DeviceTiming.note("\(guided) batched CFG calls + \(steps - guided) single", r.peakGiB)))
        }

        // Sparse-structure decoder + occupancy.
        let decoder = try SparseStructureDecoder(
            args: decoderArgs,
            weights: WeightLoader(try RandomWeights(decoderInfos, device: device, dtype: dtype, seed: 3), device: device,
                                  dtype: dtype))
        let decoded = try DeviceTiming.measure(device: device, warmup: warmup, iterations: iterations) { _ = try decoder(latent) }
        let outRes = fc.resolution * (1 << (decoder.config.channels.count - 1))
        report(BenchmarkRow(name: "ss decoder \(dtype)", milliseconds: decoded.ms,
                            notes: DeviceTiming.note("\(fc.resolution)^3 -> \(outRes)^3 logits", decoded.peakGiB)))
        var voxels = 0
        let occupancy = try DeviceTiming.measure(device: device, warmup: min(warmup, 1), iterations: iterations) {
            voxels = try SparseStructureDecoder.occupiedCoords(decoder(latent)).size(0)
        }
        report(BenchmarkRow(name: "ss decoder + occupied coords \(dtype)", milliseconds: occupancy.ms,
                            notes: DeviceTiming.note("\(voxels) voxels (random weights), includes the count read-back",
                                        occupancy.peakGiB)))
        return rows
    }
}
