import Foundation
import NN
import TorchShim

/// How the FLUX transformer stores the Linear weights of its blocks.
public enum FluxWeightFormat: Sendable, Equatable, CustomStringConvertible {
    /// The loader's dtype (bf16 as shipped, fp32 for parity tests).
    case dense
    /// float8 e4m3 weights quantised at load with float32 scales; activations are quantised per call.
    case float8(Float8Options)

    public var description: String {
        switch self {
        case .dense: return "dense"
        case .float8(let o): return "fp8-e4m3(\(o.granularity), \(o.execution))"
        }
    }
}

public struct Float8Options: Sendable, Equatable {
    public enum Granularity: String, Sendable {
        /// One scale per output channel for weights and one per token for activations (rowwise scaled_mm).
        case perChannel
        /// One scale per weight tensor and one per activation tensor.
        case perTensor
    }

    public enum Execution: String, Sendable {
        /// `scaledMatmul` on CUDA devices of compute capability >= 8.9, `dequantized` elsewhere.
        case automatic
        /// torch._scaled_mm (fp8 tensor cores; libtorch also has a CPU kernel).
        case scaledMatmul
        /// Emulation: the same fp8 values dequantised and multiplied in the compute dtype (CPU fallback).
        case dequantized
    }

    public var granularity: Granularity
    public var execution: Execution

    public init(granularity: Granularity = .perChannel, execution: Execution = .automatic) {
        self.granularity = granularity
        self.execution = execution
    }
}

/// A Linear layer whose weight is float8 e4m3 with float32 scales: y = (q(x) * sx) (q(W) * sw)^T + b.
public struct Float8Linear {
    /// Largest finite float8 e4m3fn value.
    public static let e4m3Max = 448.0

    /// [out, in] float8 e4m3, row-major (its transpose is the column-major B operand of scaled_mm).
    public let weight: Tensor
    /// float32 [1, out] (per channel) or [] (per tensor).
    public let weightScale: Tensor
    public let bias: Tensor?
    /// The dtype of inputs and outputs (the model's dtype).
    public let computeDType: DType
    public let granularity: Float8Options.Granularity
    public let useScaledMatmul: Bool

    /// Quantises a dense [out, in] weight (any float dtype/device) to float8 e4m3.
    public init(weight dense: Tensor, bias: Tensor?, computeDType: DType, options: Float8Options) throws {
        guard dense.ndim == 2 else { throw WeightError.badConfig("fp8 Linear needs a 2-d weight, got \(dense.shape)") }
        let w = try dense.to(.float32)
        let amax: Tensor
        switch options.granularity {
        case .perChannel: amax = try w.abs().amax([1], keepDim: true).transpose(0, 1)  // [1, out]
        case .perTensor: amax = try w.abs().max()
        }
        let scale = try (amax / Float8Linear.e4m3Max).clamp(min: 1e-12).contiguous()
        let scaleForRows = options.granularity == .perChannel ? try scale.transpose(0, 1) : scale
        weight = try (w / scaleForRows).clamp(min: -Float8Linear.e4m3Max, max: Float8Linear.e4m3Max)
            .to(.float8e4m3).contiguous()
        weightScale = scale
        self.bias = try bias?.to(computeDType)
        self.computeDType = computeDType
        granularity = options.granularity
        useScaledMatmul = try Float8Linear.scaledMatmulApplies(options.execution, device: dense.device,
                                                               inFeatures: dense.size(1), outFeatures: dense.size(0))
    }

    public var inFeatures: Int { weight.size(1) }
    public var outFeatures: Int { weight.size(0) }

    /// scaled_mm needs sm_89+ on CUDA and K, N multiples of 16.
    static func scaledMatmulApplies(_ execution: Float8Options.Execution, device: Device, inFeatures: Int,
                                    outFeatures: Int) throws -> Bool {
        let aligned = inFeatures % 16 == 0 && outFeatures % 16 == 0
        switch execution {
        case .dequantized: return false
        case .scaledMatmul:
            guard aligned else {
                throw WeightError.badConfig("scaled_mm needs in/out features divisible by 16, got \(inFeatures)x\(outFeatures)")
            }
            return true
        case .automatic:
            guard case .cuda(let index) = device, aligned else { return false }
            let cap = try CUDA.capability(index)
            return cap.major > 8 || (cap.major == 8 && cap.minor >= 9)
        }
    }

    /// Quantises activations [M, K] to float8 with their scale ([M, 1] per row or [] per tensor).
    func quantizeActivations(_ x: Tensor) throws -> (values: Tensor, scale: Tensor) {
        let xf = try x.to(.float32)
        let amax = granularity == .perChannel ? try xf.abs().amax([1], keepDim: true) : try xf.abs().max()
        let scale = try (amax / Float8Linear.e4m3Max).clamp(min: 1e-12)
        let q = try (xf / scale).clamp(min: -Float8Linear.e4m3Max, max: Float8Linear.e4m3Max).to(.float8e4m3)
        return (q, scale)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        let k = x.size(-1)
        guard k == inFeatures else {
            throw WeightError.badConfig("fp8 Linear expects \(inFeatures) input features, got \(k)")
        }
        let leading = Array(x.shape.dropLast())
        let rows = try x.reshape([-1, k])
        let (xq, xs) = try quantizeActivations(rows)
        var y: Tensor
        if useScaledMatmul {
            // Rowwise scaling is only implemented with a bf16 result.
            let out: DType = granularity == .perChannel ? .bfloat16 : computeDType
            y = try F.scaledMatmul(xq, weight.transpose(0, 1), scaleA: xs, scaleB: weightScale, outDType: out)
            if y.dtype != computeDType { y = try y.to(computeDType) }
        } else {
            let wd = try weight.to(.float32) * (granularity == .perChannel ? weightScale.transpose(0, 1) : weightScale)
            y = try F.linear(xq.to(.float32) * xs, wd).to(computeDType)
        }
        if let bias { y = try y + bias }
        return try y.reshape(leading + [outFeatures])
    }
}

/// A Linear layer of the FLUX transformer: dense, or float8 when the model is loaded in fp8.
public enum FluxLinear {
    case dense(Linear)
    case float8(Float8Linear)

    /// Loads `weight`/`bias` [out, in]; several checkpoint Linears can be fused along the output dimension
    /// (one GEMM instead of several, e.g. q/k/v) by passing more than one loader.
    public init(_ parts: [WeightLoader], inFeatures: Int, outFeatures: [Int], format: FluxWeightFormat) throws {
        precondition(parts.count == outFeatures.count && !parts.isEmpty)
        var weights: [Tensor] = []
        var biases: [Tensor] = []
        for (w, out) in zip(parts, outFeatures) {
            weights.append(try w.tensor("weight", shape: [out, inFeatures]))
            biases.append(try w.tensor("bias", shape: [out]))
        }
        let weight = weights.count == 1 ? weights[0] : try Tensor.cat(weights, dim: 0)
        let bias = biases.count == 1 ? biases[0] : try Tensor.cat(biases, dim: 0)
        switch format {
        case .dense:
            self = .dense(Linear(weight: weight, bias: bias))
        case .float8(let options):
            self = .float8(try Float8Linear(weight: weight, bias: bias, computeDType: bias.dtype, options: options))
        }
    }

    public init(_ w: WeightLoader, inFeatures: Int, outFeatures: Int, format: FluxWeightFormat) throws {
        try self.init([w], inFeatures: inFeatures, outFeatures: [outFeatures], format: format)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .dense(let l): return try l(x)
        case .float8(let l): return try l(x)
        }
    }

    /// Bytes held by the weight (and scales).
    public var weightBytes: Int {
        switch self {
        case .dense(let l): return l.weight.count * l.weight.dtype.byteSize
        case .float8(let l): return l.weight.count + l.weightScale.count * 4
        }
    }
}
