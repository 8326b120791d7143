import Foundation
import NN
import TorchShim

/// torchmetrics `LearnedPerceptualImagePatchSimilarity(normalize=True)` (net "alex") as the validator uses it
/// (similarity_scorer.py): each view against the next, both bicubic-resized to 256 x 256 and clipped to [0, 1].
///
///     x      = (2 x - 1 - shift) / scale                        ScalingLayer
///     f_1..5 = AlexNet ReLU outputs (torchvision `features` 0-11)
///     d      = sum_k mean_hw( lin_k( (f_k(a)/|f_k(a)| - f_k(b)/|f_k(b)|)^2 ) ),  |f| = sqrt(1e-8 + sum_c f^2)
///
/// Weights: torchvision's ImageNet AlexNet (`features.{0,3,6,8,10}.{weight,bias}`; its `classifier.*` is
/// ignored) and the LPIPS v0.1 linear layers (`lin{0..4}.model.1.weight`, [1, C, 1, 1], shipped as
/// `torchmetrics/functional/image/lpips_models/alex.pth`). Both are published as torch pickles (legacy format);
/// read them with `TorchCheckpoint`.
public final class ValidatorLPIPS {
    struct Layer {
        let conv: Conv
        let poolBefore: Bool
    }

    /// (output channels, kernel, stride, padding, max-pool before) of torchvision AlexNet's five convolutions.
    package static let alexnet: [(index: Int, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, poolBefore: Bool)] = [
        (0, 3, 64, 11, 4, 2, false), (3, 64, 192, 5, 1, 2, true), (6, 192, 384, 3, 1, 1, true),
        (8, 384, 256, 3, 1, 1, false), (10, 256, 256, 3, 1, 1, false),
    ]
    static let shift: [Float] = [-0.030, -0.088, -0.188]
    static let scale: [Float] = [0.458, 0.448, 0.450]

    let layers: [Layer]
    let linear: [Tensor]
    let shiftTensor: Tensor
    let scaleTensor: Tensor

    /// `alexnet`: a loader at torchvision AlexNet's root (keys `features.N.*`); `linear`: at the LPIPS layers' root.
    public init(alexnet: WeightLoader, linear: WeightLoader) throws {
        layers = try Self.alexnet.map { spec in
            Layer(conv: try Conv(alexnet.pp("features").pp(spec.index), spatialDims: 2, inChannels: spec.inChannels,
                                 outChannels: spec.outChannels, kernel: [spec.kernel], stride: [spec.stride],
                                 padding: [spec.padding]),
                  poolBefore: spec.poolBefore)
        }
        self.linear = try Self.alexnet.enumerated().map { k, spec in
            try linear.pp("lin\(k)").pp("model").pp(1).tensor("weight", shape: [1, spec.outChannels, 1, 1])
        }
        let device = alexnet.device
        let dtype = layers[0].conv.weight.dtype
        shiftTensor = try Tensor(Self.shift, shape: [1, 3, 1, 1]).to(device, dtype: dtype)
        scaleTensor = try Tensor(Self.scale, shape: [1, 3, 1, 1]).to(device, dtype: dtype)
    }

    /// Builds the metric from torchvision's AlexNet checkpoint and the LPIPS layer checkpoint; every tensor of
    /// both must be used, except AlexNet's classifier.
    public static func load(alexnet: WeightSource, linear: WeightSource, device: Device = .cpu,
                            dtype: DType? = nil) throws -> ValidatorLPIPS {
        let a = WeightLoader(alexnet, device: device, dtype: dtype)
        let l = WeightLoader(linear, device: device, dtype: dtype)
        let metric = try ValidatorLPIPS(alexnet: a, linear: l)
        a.ignore(alexnet.keys.filter { $0.hasPrefix("classifier.") })
        try a.checkAllUsed()
        try l.checkAllUsed()
        return metric
    }

    /// The five AlexNet ReLU outputs of images already mapped by the scaling layer.
    func features(_ x: Tensor) throws -> [Tensor] {
        var h = x
        var out: [Tensor] = []
        for layer in layers {
            if layer.poolBefore { h = try F.maxPool(h, kernel: [3, 3], stride: [2, 2]) }
            h = try layer.conv(h).relu()
            out.append(h)
        }
        return out
    }

    /// LPIPS distance of each pair of [B, 3, H, W] images in [0, 1] -> [B] (fp32).
    public func callAsFunction(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        guard a.shape == b.shape, a.ndim == 4, a.size(1) == 3 else {
            throw ValidatorInputError("LPIPS needs two [B, 3, H, W] tensors of one shape, got \(a.shape) and \(b.shape)")
        }
        let batch = a.size(0)
        let dtype = layers[0].conv.weight.dtype
        let scaled = try ((Tensor.cat([a, b], dim: 0).to(dtype) * 2 - 1) - shiftTensor) / scaleTensor
        var total: Tensor? = nil
        for (k, f) in try features(scaled).enumerated() {
            let norm = try (f.pow(2).sum([1], keepDim: true) + 1e-8).sqrt()
            let unit = try (f / norm).split(batch, dim: 0)
            let difference = try (unit[0] - unit[1]).pow(2)
            let layer = try F.conv2d(difference, linear[k]).mean([2, 3], keepDim: true)
            total = try total.map { try $0 + layer } ?? layer
        }
        return try total!.reshape([batch]).to(.float32)
    }

    /// The validator's per-pair LPIPS list: views [N, H, W, 3] uint8, pair i = (view i, view (i+1) mod N).
    public func pairScores(views: Tensor) throws -> [Double] {
        let pixels = try ValidatorPreprocessing.lpipsPixels(views.to(linear[0].device))
        guard pixels.size(0) >= 2 else { throw ValidatorInputError("LPIPS needs at least 2 views, got \(pixels.size(0))") }
        return try self(pixels, pixels.roll([-1], dims: [0])).toArray(Float.self).map(Double.init)
    }
}
