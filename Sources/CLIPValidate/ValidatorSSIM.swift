import Foundation
import TorchShim

/// torchmetrics `StructuralSimilarityIndexMeasure(data_range=1.0)` as the validator uses it
/// (similarity_scorer.py): each view against the next (i, i+1 mod N), full 518 px, fp32.
///
///     x, y   = reflect-pad(view / 255, 5)
///     mu, E  = 11x11 Gaussian (sigma 1.5) of x, y, x*x, y*y, x*y  (depthwise, no padding)
///     var    = clamp(E[x*x] - mu_x^2, min 0), cov = E[x*y] - mu_x mu_y
///     ssim   = (2 mu_x mu_y + C1)(2 cov + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2)),  C1 = 0.01^2, C2 = 0.03^2
///     value  = mean over channels and pixels
///
/// torchmetrics 1.4.2 and later (PR #2721) average the whole H x W map; 1.4.1 and earlier cropped the 5 px
/// border first (`cropBorder`). The validator's repository does not pin its torchmetrics version.
public struct ValidatorSSIM: Sendable {
    public var sigma: Double
    public var k1: Double
    public var k2: Double
    public var dataRange: Double
    /// Average only the interior (torchmetrics <= 1.4.1).
    public var cropBorder: Bool

    public init(sigma: Double = 1.5, k1: Double = 0.01, k2: Double = 0.03, dataRange: Double = 1,
                cropBorder: Bool = false) {
        self.sigma = sigma
        self.k1 = k1
        self.k2 = k2
        self.dataRange = dataRange
        self.cropBorder = cropBorder
    }

    /// torchmetrics' kernel size for a Gaussian of `sigma`: int(3.5 sigma + 0.5) * 2 + 1 (11 for 1.5).
    public var kernelSize: Int { Int(3.5 * sigma + 0.5) * 2 + 1 }

    /// The [C, 1, k, k] kernel as torchmetrics builds it (`_gaussian_kernel_2d`), in fp32.
    public func gaussianKernel(channels: Int, device: Device = .cpu) throws -> Tensor {
        let k = kernelSize
        let dist = try Tensor.arange(Double(1 - k) / 2, Double(1 + k) / 2, step: 1, dtype: .float32, device: device)
        let gauss = try ((dist / sigma).pow(2).neg() / 2).exp()
        let normalised = try (gauss / gauss.sum()).unsqueeze(0)                    // [1, k]
        let kernel = try normalised.transpose(0, 1).matmul(normalised)            // [k, k]
        return try kernel.expand([channels, 1, k, k]).contiguous()
    }

    /// SSIM of each pair of [B, C, H, W] images in [0, 1] -> [B] fp32.
    public func callAsFunction(_ preds: Tensor, _ target: Tensor) throws -> Tensor {
        guard preds.shape == target.shape, preds.ndim == 4 else {
            throw ValidatorInputError("SSIM needs two [B, C, H, W] tensors of one shape, got \(preds.shape) and \(target.shape)")
        }
        let pad = (kernelSize - 1) / 2
        guard preds.size(2) > pad, preds.size(3) > pad else {
            throw ValidatorInputError("SSIM images of \(preds.size(2))x\(preds.size(3)) are too small for reflect padding \(pad)")
        }
        let (b, channels) = (preds.size(0), preds.size(1))
        let x = try F.pad(preds.to(.float32), [pad, pad, pad, pad], mode: .reflect)
        let y = try F.pad(target.to(.float32), [pad, pad, pad, pad], mode: .reflect)
        let kernel = try gaussianKernel(channels: channels, device: preds.device)
        let stacked = try Tensor.cat([x, y, x * x, y * y, x * y], dim: 0)
        let filtered = try F.conv2d(stacked, kernel, groups: channels).split(b, dim: 0)
        let muX = filtered[0], muY = filtered[1]
        let muXSq = try muX.pow(2), muYSq = try muY.pow(2), muXY = try muX * muY
        let varX = try (filtered[2] - muXSq).clamp(min: 0)
        let varY = try (filtered[3] - muYSq).clamp(min: 0)
        let covariance = try filtered[4] - muXY
        let c1 = Foundation.pow(k1 * dataRange, 2), c2 = Foundation.pow(k2 * dataRange, 2)
        let upper = try 2 * covariance + c2
        let lower = try (varX + varY) + c2
        var map = try ((2 * muXY + c1) * upper) / ((muXSq + muYSq + c1) * lower)
        if cropBorder {
            map = try map.slice(2, pad, map.size(2) - pad).slice(3, pad, map.size(3) - pad)
        }
        return try map.reshape([b, -1]).mean(-1)
    }

    /// The validator's per-pair SSIM list: views [N, H, W, 3] uint8, pair i = (view i, view (i+1) mod N), each
    /// value the fp32 result as a Double (the validator's `float(...)`).
    public func pairScores(views: Tensor) throws -> [Double] {
        let pixels = try ValidatorPreprocessing.ssimPixels(views)
        guard pixels.size(0) >= 2 else { throw ValidatorInputError("SSIM needs at least 2 views, got \(pixels.size(0))") }
        let next = try pixels.roll([-1], dims: [0])
        return try self(pixels, next).toArray(Float.self).map(Double.init)
    }
}
