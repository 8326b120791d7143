import TorchShim

/// y = x W^T + b. Keys: `weight` [out, in], `bias` [out] (when `bias`).
public struct Linear {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ w: WeightLoader, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        weight = try w.tensor("weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? try w.tensor("bias", shape: [outFeatures]) : nil
    }

    /// Shapes taken from the checkpoint (for widths the config does not state).
    public init(_ w: WeightLoader, bias: Bool = true) throws {
        weight = try w.tensor("weight")
        guard weight.ndim == 2 else { throw WeightError.shapeMismatch(w.key("weight"), expected: [-1, -1], found: weight.shape) }
        self.bias = bias ? try w.tensor("bias", shape: [weight.size(0)]) : nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    public var inFeatures: Int { weight.size(1) }
    public var outFeatures: Int { weight.size(0) }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try F.linear(x, weight, bias) }
}

/// N-d convolution (1, 2 or 3 spatial dims). Keys: `weight` [out, in/groups, k...], `bias` [out].
public struct Conv {
    public let weight: Tensor
    public let bias: Tensor?
    public let spatialDims: Int
    public let stride: [Int]
    public let padding: [Int]
    public let dilation: [Int]
    public let groups: Int

    public init(_ w: WeightLoader, spatialDims: Int, inChannels: Int? = nil, outChannels: Int? = nil,
                kernel: [Int]? = nil, stride: [Int] = [1], padding: [Int] = [0], dilation: [Int] = [1],
                groups: Int = 1, bias: Bool = true) throws {
        var expected: [Int]? = nil
        if let inChannels, let outChannels, let kernel {
            let k = kernel.count == 1 ? Array(repeating: kernel[0], count: spatialDims) : kernel
            expected = [outChannels, inChannels / groups] + k
        }
        weight = try w.tensor("weight", shape: expected)
        guard weight.ndim == spatialDims + 2 else {
            throw WeightError.shapeMismatch(w.key("weight"), expected: Array(repeating: -1, count: spatialDims + 2), found: weight.shape)
        }
        self.bias = bias ? try w.tensor("bias", shape: [weight.size(0)]) : nil
        self.spatialDims = spatialDims
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    public var outChannels: Int { weight.size(0) }
    public var inChannels: Int { weight.size(1) * groups }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.conv(x, weight, bias, spatialDims: spatialDims, stride: stride, padding: padding, dilation: dilation,
                   groups: groups)
    }
}

/// Transposed N-d convolution. Keys: `weight` [in, out/groups, k...], `bias` [out].
public struct ConvTranspose {
    public let weight: Tensor
    public let bias: Tensor?
    public let spatialDims: Int
    public let stride: [Int]
    public let padding: [Int]
    public let outputPadding: [Int]
    public let groups: Int

    public init(_ w: WeightLoader, spatialDims: Int, stride: [Int] = [1], padding: [Int] = [0],
                outputPadding: [Int] = [0], groups: Int = 1, bias: Bool = true) throws {
        weight = try w.tensor("weight")
        self.bias = bias ? try w.tensor("bias", shape: [weight.size(1) * groups]) : nil
        self.spatialDims = spatialDims
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
        self.groups = groups
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.conv(x, weight, bias, spatialDims: spatialDims, stride: stride, padding: padding, groups: groups,
                   transposed: true, outputPadding: outputPadding)
    }
}

/// LayerNorm over the last dimension. Keys: `weight`, `bias` (when affine).
public struct LayerNorm {
    public let weight: Tensor?
    public let bias: Tensor?
    public let dim: Int
    public let eps: Double

    public init(_ w: WeightLoader, dim: Int, eps: Double = 1e-5, affine: Bool = true, bias: Bool = true) throws {
        weight = affine ? try w.tensor("weight", shape: [dim]) : nil
        self.bias = affine && bias ? try w.tensor("bias", shape: [dim]) : nil
        self.dim = dim
        self.eps = eps
    }

    /// A norm without parameters.
    public init(dim: Int, eps: Double = 1e-5) {
        weight = nil
        bias = nil
        self.dim = dim
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.layerNorm(x, shape: [dim], weight: weight, bias: bias, eps: eps)
    }
}

/// RMSNorm over the last dimension: x / rms(x) * weight. Key: `weight` (or `scale` via `key`).
public struct RMSNorm {
    public let weight: Tensor?
    public let dim: Int
    public let eps: Double

    public init(_ w: WeightLoader, dim: Int, eps: Double = 1e-6, key: String = "weight") throws {
        weight = try w.tensor(key, shape: [dim])
        self.dim = dim
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.rmsNorm(x, shape: [dim], weight: weight, eps: eps)
    }
}

/// GroupNorm over dim 1. Keys: `weight`, `bias` [C].
public struct GroupNorm {
    public let weight: Tensor?
    public let bias: Tensor?
    public let groups: Int
    public let eps: Double

    public init(_ w: WeightLoader, groups: Int, channels: Int, eps: Double = 1e-5, affine: Bool = true) throws {
        weight = affine ? try w.tensor("weight", shape: [channels]) : nil
        bias = affine ? try w.tensor("bias", shape: [channels]) : nil
        self.groups = groups
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps)
    }
}

/// Inference BatchNorm over dim 1. Keys: `weight`, `bias`, `running_mean`, `running_var` (`num_batches_tracked` ignored).
public struct BatchNorm {
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let eps: Double

    public init(_ w: WeightLoader, channels: Int? = nil, eps: Double = 1e-5, affine: Bool = true) throws {
        let shape = channels.map { [$0] }
        runningMean = try w.tensor("running_mean", shape: shape)
        runningVar = try w.tensor("running_var", shape: [runningMean.size(0)])
        weight = affine ? try w.tensor("weight", shape: [runningMean.size(0)]) : nil
        bias = affine ? try w.tensor("bias", shape: [runningMean.size(0)]) : nil
        w.ignore(["num_batches_tracked"])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try F.batchNorm(x, mean: runningMean, variance: runningVar, weight: weight, bias: bias, eps: eps)
    }
}

/// Token embedding table. Key: `weight` [vocab, dim].
public struct Embedding {
    public let weight: Tensor

    public init(_ w: WeightLoader, count: Int? = nil, dim: Int? = nil) throws {
        weight = try w.tensor("weight", shape: count.flatMap { c in dim.map { [c, $0] } })
    }

    public init(weight: Tensor) { self.weight = weight }

    /// ids: integer tensor of any shape -> [..., dim].
    public func callAsFunction(_ ids: Tensor) throws -> Tensor {
        let flat = try ids.reshape([-1])
        return try weight.indexSelect(0, flat).reshape(ids.shape + [weight.size(1)])
    }
}

public enum Activation: String, Codable, Sendable {
    case gelu, geluTanh = "gelu_tanh", geluPytorchTanh = "gelu_pytorch_tanh", quickGelu = "quick_gelu", relu, silu,
         swish, sigmoid, tanh, mish, newGelu = "gelu_new"

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch self {
        case .gelu: return try x.gelu()
        case .geluTanh, .geluPytorchTanh, .newGelu: return try x.gelu(approximate: true)
        case .quickGelu: return try x.quickGelu()
        case .relu: return try x.relu()
        case .silu, .swish: return try x.silu()
        case .sigmoid: return try x.sigmoid()
        case .tanh: return try x.tanh()
        case .mish: return try x.mish()
        }
    }
}

/// Multi-head attention on [B, L, H*D] inputs through fused SDPA. Returns [B, Lq, H*D].
public func multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int, mask: Tensor? = nil,
                               scale: Double? = nil) throws -> Tensor {
    let (b, lq, c) = (q.size(0), q.size(1), q.size(2))
    let lk = k.size(1)
    let d = c / heads
    let qh = try q.view([b, lq, heads, d]).transpose(1, 2)
    let kh = try k.view([b, lk, heads, d]).transpose(1, 2)
    let vh = try v.view([b, lk, heads, v.size(2) / heads]).transpose(1, 2)
    let o = try F.scaledDotProductAttention(qh, kh, vh, mask: mask, scale: scale)
    return try o.transpose(1, 2).reshape([b, lq, -1])
}
