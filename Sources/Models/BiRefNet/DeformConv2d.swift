import Foundation
import NN
import TorchShim

public enum DeformConvError: Error, CustomStringConvertible, Equatable {
    case badShape(String)

    public var description: String {
        switch self {
        case .badShape(let why): return "deform_conv2d: \(why)"
        }
    }
}

/// `torchvision.ops.deform_conv2d` (modulated deformable convolution, DCNv2) on libtorch ops: bilinear
/// sampling of every kernel tap at its offset position, then one GEMM with the weight.
///
/// Semantics (torchvision): tap t = i·kw + j of output (oy, ox) samples the input at
/// y = oy·stride - pad + i·dilation + offset[2t], x = ox·stride - pad + j·dilation + offset[2t+1]
/// by bilinear interpolation in which corners outside the image count as 0 (so a point with y <= -1, y >= H,
/// x <= -1 or x >= W gives 0), multiplies it by mask[t] and then by the weight. Offsets are not clamped.
///
/// The sampling is one `grid_sample` (bilinear, zero padding) over all taps, done in float32 whatever the input
/// dtype: in half precision the sample coordinates (up to the map size, e.g. 256) would lose ~0.1 px.
/// A fused CUDA kernel (sample + modulate straight into the GEMM operand, or an implicit-GEMM kernel) would save
/// the float32 column buffer (C·k²·Ho·Wo) and two passes over it; not written yet.
public enum DeformConv2d {
    /// - input: [N, C, H, W]; offset: [N, 2·kh·kw, Ho, Wo] interleaved (dy, dx) per tap; mask: [N, kh·kw, Ho, Wo]
    ///   or nil (DCNv1); weight: [O, C, kh, kw]; bias: [O] or nil. One offset group, groups = 1.
    /// - Returns: [N, O, Ho, Wo] in the input's dtype.
    public static func apply(input: Tensor, offset: Tensor, mask: Tensor?, weight: Tensor, bias: Tensor? = nil,
                             stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0),
                             dilation: (Int, Int) = (1, 1)) throws -> Tensor {
        guard input.ndim == 4, weight.ndim == 4 else {
            throw DeformConvError.badShape("input \(input.shape) and weight \(weight.shape) must be 4-d")
        }
        let (n, c, h, w) = (input.size(0), input.size(1), input.size(2), input.size(3))
        let (o, kh, kw) = (weight.size(0), weight.size(2), weight.size(3))
        let taps = kh * kw
        guard weight.size(1) == c else {
            throw DeformConvError.badShape("weight \(weight.shape) expects \(weight.size(1)) input channels, input has \(c)")
        }
        guard stride.0 > 0, stride.1 > 0, dilation.0 > 0, dilation.1 > 0, padding.0 >= 0, padding.1 >= 0 else {
            throw DeformConvError.badShape("stride and dilation must be positive, padding non-negative")
        }
        let ho = (h + 2 * padding.0 - dilation.0 * (kh - 1) - 1) / stride.0 + 1
        let wo = (w + 2 * padding.1 - dilation.1 * (kw - 1) - 1) / stride.1 + 1
        guard ho > 0, wo > 0 else { throw DeformConvError.badShape("output size \(ho)x\(wo) is empty") }
        guard offset.shape == [n, 2 * taps, ho, wo] else {
            throw DeformConvError.badShape("offset \(offset.shape) must be [\(n), \(2 * taps), \(ho), \(wo)] (one offset group)")
        }
        if let mask, mask.shape != [n, taps, ho, wo] {
            throw DeformConvError.badShape("mask \(mask.shape) must be [\(n), \(taps), \(ho), \(wo)]")
        }
        if let bias, bias.shape != [o] { throw DeformConvError.badShape("bias \(bias.shape) must be [\(o)]") }

        let device = input.device
        // Undeformed tap positions, [1, K, Ho, 1] and [1, K, 1, Wo].
        let rows = try Tensor.arange(0, Double(ho), dtype: .float32, device: device) * Double(stride.0) - Double(padding.0)
        let cols = try Tensor.arange(0, Double(wo), dtype: .float32, device: device) * Double(stride.1) - Double(padding.1)
        let tapRow = try (Tensor.arange(0, Double(kh), dtype: .float32, device: device) * Double(dilation.0))
            .repeatInterleave(kw, dim: 0)
        let tapCol = try (Tensor.arange(0, Double(kw), dtype: .float32, device: device) * Double(dilation.1))
            .repeated([kh])
        let baseY = try rows.view([1, 1, ho, 1]) + tapRow.view([1, taps, 1, 1])
        let baseX = try cols.view([1, 1, 1, wo]) + tapCol.view([1, taps, 1, 1])

        let pairs = try offset.to(.float32).reshape([n, taps, 2, ho, wo])
        let y = try pairs.select(2, 0) + baseY
        let x = try pairs.select(2, 1) + baseX
        // grid_sample with align_corners=false maps g to ((g + 1)·size - 1) / 2, so g = (2p + 1) / size - 1.
        let gx = try x * (2.0 / Double(w)) + (1.0 / Double(w) - 1)
        let gy = try y * (2.0 / Double(h)) + (1.0 / Double(h) - 1)
        let grid = try Tensor.stack([gx, gy], dim: -1).view([n, taps * ho, wo, 2])
        let source = input.dtype == .float32 ? input : try input.to(.float32)
        var columns = try F.gridSample(source, grid: grid, mode: .bilinear, padding: .zeros, alignCorners: false)
        if let mask { try columns.mul_(mask.to(.float32).reshape([n, 1, taps * ho, wo])) }
        if input.dtype != .float32 { columns = try columns.to(input.dtype) }
        // [N, C, K, Ho, Wo] -> [N, C·K, Ho·Wo]: row c·K + t matches weight.view(O, C·K).
        let out = try weight.reshape([o, c * taps]).matmul(columns.reshape([n, c * taps, ho * wo])).view([n, o, ho, wo])
        guard let bias else { return out }
        return try out + bias.view([1, o, 1, 1])
    }
}
