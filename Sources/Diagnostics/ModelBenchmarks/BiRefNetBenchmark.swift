import Models
import Foundation
import NN
import TorchShim

/// Real-size timing of BiRefNet on one image with random weights at the checkpoint's keys and shapes
/// (the work equals that of the trained model; the mask means nothing).
public enum BiRefNetBenchmark {

    /// - manifestPath: `manifest_BiRefNet_general.json` (keys and shapes of the full model).
    /// - size: the square input side (1024 as the general model runs).
    /// Rows: full-resolution backbone pass, half-resolution pass, squeeze + decoder, whole forward (with peak
    /// memory) and the backbone's achieved TFLOP/s (both passes, FLOPs counted by `SwinTransformer.flops`).
    public static func run(device: Device, dtype: DType, manifestPath: String, size: Int = 1024,
                           warmup: Int = 2, iterations: Int = 10) throws -> [BenchmarkRow] {
        guard iterations > 0, warmup >= 0 else { throw BiRefNetError.badInput("iterations must be positive") }
        let manifest = try ManifestWeights(url: URL(fileURLWithPath: manifestPath))
        let weights = try BatchNormSafeWeights(RandomWeights(manifest: manifest, device: device, dtype: dtype, seed: 0))
        let model = try BiRefNet(WeightLoader(weights, device: device, dtype: dtype))
        let generator = try Generator(seed: 0, device: device)
        let input = try model.prepare(Tensor.randn([1, 3, size, size], dtype: dtype, device: device, generator: generator))
        let half = try F.interpolate(input, size: [size / 2, size / 2], mode: .bilinear, alignCorners: true)

        func sync() throws { if case .cuda(let i) = device { try CUDA.synchronize(i) } }
        func median(_ body: () throws -> Void) throws -> Double {
            for _ in 0..<warmup { try body() }
            try sync()
            var times: [Double] = []
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                try sync()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            times.sort()
            return times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        }

        let fullBackbone = try median { _ = try model.backbone(input) }
        let halfBackbone = try median { _ = try model.backbone(half) }
        var features = try model.encode(input)
        let x4 = features[3]
        let decoder = try median {
            features[3] = try model.squeeze(x4)
            _ = try model.decoder(image: input, features: features)
        }
        if case .cuda(let i) = device {
            try sync()
            try CUDA.resetPeakMemory(i)
        }
        let total = try median { _ = try model.predict(input) }
        let finite = try model.predict(input).isfinite().all().item() != 0
        var memory = "peak memory n/a on CPU"
        if case .cuda(let i) = device {
            let stats = try CUDA.memoryStats(i)
            memory = String(format: "peak allocated %.2f GiB (weights %.2f GiB)", GiB.value(stats.peakAllocated),
                            GiB.value(Int64(manifestParameterCount(manifest) * dtype.byteSize)))
        }
        let flops = model.backbone.flops(height: size, width: size) + model.backbone.flops(height: size / 2, width: size / 2)
        let backboneMs = fullBackbone + halfBackbone
        let label = "\(size)x\(size) \(dtype) \(device)"
        return [
            BenchmarkRow(name: "backbone full-res", milliseconds: fullBackbone,
                         notes: String(format: "%.1f GFLOP", model.backbone.flops(height: size, width: size) / 1e9)),
            BenchmarkRow(name: "backbone half-res", milliseconds: halfBackbone,
                         notes: String(format: "%.1f GFLOP", model.backbone.flops(height: size / 2, width: size / 2) / 1e9)),
            BenchmarkRow(name: "squeeze + decoder", milliseconds: decoder, notes: "median of \(iterations)"),
            BenchmarkRow(name: "forward + sigmoid", milliseconds: total, notes: "\(label), \(memory), output \(finite ? "finite" : "NOT finite")"),
            BenchmarkRow(name: "backbone throughput", milliseconds: backboneMs,
                         notes: String(format: "%.1f TFLOP/s achieved (%.1f GFLOP, both passes)", flops / backboneMs / 1e9, flops / 1e9)),
        ]
    }

    static func manifestParameterCount(_ manifest: ManifestWeights) -> Int {
        manifest.keys.compactMap { manifest.info($0) }.filter { $0.dtype.isFloatingPoint }.reduce(0) { $0 + $1.count }
    }

    /// RandomWeights gives BatchNorm running_var small noise (often negative -> NaN) and its gain ~0.02; here
    /// BatchNorms are identities (mean 0, var 1, gain 1) so activations stay finite at every depth.
    public final class BatchNormSafeWeights: WeightSource {
        let base: RandomWeights
        public init(_ base: RandomWeights) { self.base = base }
        public var keys: [String] { base.keys }
        public func info(_ key: String) -> TensorInfo? { base.info(key) }

        public func tensor(_ key: String) throws -> Tensor {
            guard let info = base.info(key), info.shape.count == 1, info.dtype.isFloatingPoint,
                  let dot = key.lastIndex(of: ".") else { return try base.tensor(key) }
            let module = key[..<dot]
            guard base.info("\(module).running_var") != nil else { return try base.tensor(key) }
            switch key[key.index(after: dot)...] {
            case "running_var", "weight": return try Tensor.ones(info.shape, dtype: base.dtype, device: base.device)
            case "running_mean", "bias": return try Tensor.zeros(info.shape, dtype: base.dtype, device: base.device)
            default: return try base.tensor(key)
            }
        }
    }
}
