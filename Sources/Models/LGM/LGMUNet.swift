import Foundation
import NN
import TorchShim

/// A bad LGM / multi-view diffusion input or configuration.
public struct LGMError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The fixed hyper-parameters of LGM's U-Net (`core/unet.py`), which `Options` does not carry.
public struct LGMUNetSettings: Decodable, Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var layersPerBlock: Int
    public var skipScale: Double
    public var attentionHeads: Int
    public var groups: Int
    public var eps: Double
    /// `MVAttention.num_frames`, hard-coded to 4 upstream: the views attended to jointly.
    public var views: Int

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", layersPerBlock = "layers_per_block"
        case skipScale = "skip_scale", attentionHeads = "attention_heads", groups = "groupnorm_groups"
        case eps = "groupnorm_eps", views = "mv_attention_num_frames"
    }

    /// `LGM.__init__`: UNet(9, 14, ...) with the class defaults.
    public init(inChannels: Int = 9, outChannels: Int = 14, layersPerBlock: Int = 2, skipScale: Double = 0.5.squareRoot(),
                attentionHeads: Int = 16, groups: Int = 32, eps: Double = 1e-5, views: Int = 4) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.layersPerBlock = layersPerBlock
        self.skipScale = skipScale
        self.attentionHeads = attentionHeads
        self.groups = groups
        self.eps = eps
        self.views = views
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = LGMUNetSettings()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? d.outChannels
        layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? d.layersPerBlock
        skipScale = try c.decodeIfPresent(Double.self, forKey: .skipScale) ?? d.skipScale
        attentionHeads = try c.decodeIfPresent(Int.self, forKey: .attentionHeads) ?? d.attentionHeads
        groups = try c.decodeIfPresent(Int.self, forKey: .groups) ?? d.groups
        eps = try c.decodeIfPresent(Double.self, forKey: .eps) ?? d.eps
        views = try c.decodeIfPresent(Int.self, forKey: .views) ?? d.views
    }
}

/// LGM's asymmetric U-Net (`core.unet.UNet`): ResNet blocks with a `skip_scale` on every residual sum,
/// multi-view self-attention (all views' pixels in one sequence) at the deep levels, stride-2 convs down,
/// nearest x2 + conv up. Keys: `conv_in`, `down_blocks.i.{nets,attns,downsample}`, `mid_block.{nets,attns}`,
/// `up_blocks.i.{nets,attns,upsample}`, `norm_out`, `conv_out`.
public struct LGMUNet {
    /// GroupNorm -> SiLU -> conv3x3, twice; `(h + shortcut(x)) * skip_scale`.
    struct ResnetBlock {
        let norm1: GroupNorm, conv1: Conv, norm2: GroupNorm, conv2: Conv
        let shortcut: Conv?
        let skipScale: Double

        init(_ w: WeightLoader, inChannels: Int, outChannels: Int, settings s: LGMUNetSettings) throws {
            norm1 = try GroupNorm(w.pp("norm1"), groups: s.groups, channels: inChannels, eps: s.eps)
            conv1 = try Conv(w.pp("conv1"), spatialDims: 2, inChannels: inChannels, outChannels: outChannels, kernel: [3],
                             padding: [1])
            norm2 = try GroupNorm(w.pp("norm2"), groups: s.groups, channels: outChannels, eps: s.eps)
            conv2 = try Conv(w.pp("conv2"), spatialDims: 2, inChannels: outChannels, outChannels: outChannels,
                             kernel: [3], padding: [1])
            shortcut = inChannels == outChannels ? nil
                : try Conv(w.pp("shortcut"), spatialDims: 2, inChannels: inChannels, outChannels: outChannels, kernel: [1])
            skipScale = s.skipScale
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let h = try conv2(norm2(conv1(norm1(x).silu())).silu())
            return try (h + (shortcut.map { try $0(x) } ?? x)) * skipScale
        }
    }

    /// `MVAttention`: GroupNorm, then one attention over the pixels of all `views` views of a sample
    /// ([B*V, C, H, W] -> [B, V*H*W, C], ordered view, row, column), residual times `skip_scale`.
    /// Keys: `norm`, `attn.qkv` (no bias), `attn.proj`.
    struct MultiViewAttention {
        let norm: GroupNorm
        let qkv: Linear
        let proj: Linear
        let heads: Int
        let views: Int
        let skipScale: Double

        init(_ w: WeightLoader, channels c: Int, settings s: LGMUNetSettings) throws {
            guard c % s.attentionHeads == 0 else {
                throw WeightError.badConfig("LGM attention width \(c) is not divisible by \(s.attentionHeads) heads")
            }
            norm = try GroupNorm(w.pp("norm"), groups: s.groups, channels: c, eps: s.eps)
            qkv = try Linear(w.pp("attn").pp("qkv"), inFeatures: c, outFeatures: 3 * c, bias: false)
            proj = try Linear(w.pp("attn").pp("proj"), inFeatures: c, outFeatures: c)
            heads = s.attentionHeads
            views = s.views
            skipScale = s.skipScale
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let (bv, c, h, w) = (x.size(0), x.size(1), x.size(2), x.size(3))
            let b = bv / views
            let n = views * h * w
            let tokens = try norm(x).view([b, views, c, h, w]).permute([0, 1, 3, 4, 2]).reshape([b, n, c])
            // [B, N, 3, heads, d] -> three [B, heads, N, d]
            let parts = try qkv(tokens).view([b, n, 3, heads, c / heads]).permute([2, 0, 3, 1, 4]).unbind(0)
            let attended = try F.scaledDotProductAttention(parts[0], parts[1], parts[2])
            let out = try proj(attended.transpose(1, 2).reshape([b, n, c]))
            let spatial = try out.view([b, views, h, w, c]).permute([0, 1, 4, 2, 3]).reshape([bv, c, h, w])
            return try (spatial + x) * skipScale
        }
    }

    struct DownBlock {
        let nets: [ResnetBlock]
        let attns: [MultiViewAttention?]
        let downsample: Conv?

        /// Returns the block output and the skips it contributes (each layer's output, then the downsampled one).
        func callAsFunction(_ input: Tensor) throws -> (Tensor, [Tensor]) {
            var x = input
            var skips: [Tensor] = []
            for (net, attn) in zip(nets, attns) {
                x = try net(x)
                if let attn { x = try attn(x) }
                skips.append(x)
            }
            if let downsample {
                x = try downsample(x)
                skips.append(x)
            }
            return (x, skips)
        }
    }

    struct MidBlock {
        let nets: [ResnetBlock]
        let attns: [MultiViewAttention?]

        func callAsFunction(_ input: Tensor) throws -> Tensor {
            var x = try nets[0](input)
            for (attn, net) in zip(attns, nets.dropFirst()) {
                if let attn { x = try attn(x) }
                x = try net(x)
            }
            return x
        }
    }

    struct UpBlock {
        let nets: [ResnetBlock]
        let attns: [MultiViewAttention?]
        let upsample: Conv?

        /// `skips` in the order they were produced; consumed from the last.
        func callAsFunction(_ input: Tensor, skips: ArraySlice<Tensor>) throws -> Tensor {
            var x = input
            var rest = skips
            for (net, attn) in zip(nets, attns) {
                x = try net(Tensor.cat([x, rest.removeLast()], dim: 1))
                if let attn { x = try attn(x) }
            }
            if let upsample {
                x = try upsample(F.interpolate(x, size: [2 * x.size(2), 2 * x.size(3)], mode: .nearest))
            }
            return x
        }
    }

    public let settings: LGMUNetSettings
    let convIn: Conv
    let downBlocks: [DownBlock]
    let midBlock: MidBlock
    let upBlocks: [UpBlock]
    let normOut: GroupNorm
    let convOut: Conv

    public init(_ w: WeightLoader, downChannels: [Int], downAttention: [Bool], midAttention: Bool, upChannels: [Int],
                upAttention: [Bool], settings s: LGMUNetSettings = LGMUNetSettings()) throws {
        try LGMUNet.validate(downChannels: downChannels, downAttention: downAttention, upChannels: upChannels,
                             upAttention: upAttention, settings: s)
        settings = s
        convIn = try Conv(w.pp("conv_in"), spatialDims: 2, inChannels: s.inChannels, outChannels: downChannels[0],
                          kernel: [3], padding: [1])
        func attention(_ on: Bool, _ w: WeightLoader, _ c: Int) throws -> MultiViewAttention? {
            on ? try MultiViewAttention(w, channels: c, settings: s) : nil
        }

        var down: [DownBlock] = []
        var cout = downChannels[0]
        for (i, channels) in downChannels.enumerated() {
            let cin = cout
            cout = channels
            let b = w.pp("down_blocks").pp(i)
            var nets: [ResnetBlock] = [], attns: [MultiViewAttention?] = []
            for j in 0..<s.layersPerBlock {
                nets.append(try ResnetBlock(b.pp("nets").pp(j), inChannels: j == 0 ? cin : cout, outChannels: cout, settings: s))
                attns.append(try attention(downAttention[i], b.pp("attns").pp(j), cout))
            }
            let downsample = i == downChannels.count - 1 ? nil
                : try Conv(b.pp("downsample"), spatialDims: 2, inChannels: cout, outChannels: cout, kernel: [3],
                           stride: [2], padding: [1])
            down.append(DownBlock(nets: nets, attns: attns, downsample: downsample))
        }
        downBlocks = down

        let deepest = downChannels[downChannels.count - 1]
        let m = w.pp("mid_block")
        midBlock = MidBlock(
            nets: try (0..<2).map { try ResnetBlock(m.pp("nets").pp($0), inChannels: deepest, outChannels: deepest, settings: s) },
            attns: [try attention(midAttention, m.pp("attns").pp(0), deepest)])

        var up: [UpBlock] = []
        cout = upChannels[0]
        let layers = s.layersPerBlock + 1
        for (i, channels) in upChannels.enumerated() {
            let cin = cout
            cout = channels
            let skipChannels = downChannels[max(downChannels.count - 2 - i, 0)]
            let b = w.pp("up_blocks").pp(i)
            var nets: [ResnetBlock] = [], attns: [MultiViewAttention?] = []
            for j in 0..<layers {
                let input = (j == 0 ? cin : cout) + (j == layers - 1 ? skipChannels : cout)
                nets.append(try ResnetBlock(b.pp("nets").pp(j), inChannels: input, outChannels: cout, settings: s))
                attns.append(try attention(upAttention[i], b.pp("attns").pp(j), cout))
            }
            let upsample = i == upChannels.count - 1 ? nil
                : try Conv(b.pp("upsample"), spatialDims: 2, inChannels: cout, outChannels: cout, kernel: [3], padding: [1])
            up.append(UpBlock(nets: nets, attns: attns, upsample: upsample))
        }
        upBlocks = up
        let last = upChannels[upChannels.count - 1]
        normOut = try GroupNorm(w.pp("norm_out"), groups: s.groups, channels: last, eps: 1e-5)
        convOut = try Conv(w.pp("conv_out"), spatialDims: 2, inChannels: last, outChannels: s.outChannels, kernel: [3],
                           padding: [1])
    }

    /// The shapes the upstream constructor accepts and its forward can run: one flag per level, and up level i
    /// as wide as down level -1-i (the skip concatenations assume it).
    static func validate(downChannels: [Int], downAttention: [Bool], upChannels: [Int], upAttention: [Bool],
                         settings s: LGMUNetSettings) throws {
        guard !downChannels.isEmpty, !upChannels.isEmpty, upChannels.count <= downChannels.count else {
            throw WeightError.badConfig("LGM needs 1...\(downChannels.count) up levels for \(downChannels.count) down levels, got \(upChannels.count)")
        }
        guard downAttention.count == downChannels.count, upAttention.count >= upChannels.count else {
            throw WeightError.badConfig("LGM down_attention/up_attention need one flag per level (\(downChannels.count) down, \(upChannels.count) up)")
        }
        for (i, c) in upChannels.enumerated() where c != downChannels[downChannels.count - 1 - i] {
            throw WeightError.badConfig("LGM up_channels[\(i)] = \(c) must equal down_channels[\(downChannels.count - 1 - i)] = \(downChannels[downChannels.count - 1 - i])")
        }
        guard s.layersPerBlock >= 1, s.views >= 1, s.groups >= 1,
              (downChannels + upChannels).allSatisfy({ $0 > 0 && $0 % s.groups == 0 }) else {
            throw WeightError.badConfig("LGM channels \(downChannels) / \(upChannels) must be positive multiples of \(s.groups) groups")
        }
    }

    /// [B*V, in, H, W] -> [B*V, out, H', W'] with H' = H / 2^(down levels - 1) * 2^(up levels - 1).
    /// `observe(name, tensor)` sees each block's output (`down_blocks.i`, `mid_block`, `up_blocks.i`).
    public func callAsFunction(_ input: Tensor, observe: ((String, Tensor) throws -> Void)? = nil) throws -> Tensor {
        var x = try convIn(input)
        var skips = [x]
        for (i, block) in downBlocks.enumerated() {
            let (out, produced) = try block(x)
            x = out
            skips += produced
            try observe?("down_blocks.\(i)", x)
        }
        x = try midBlock(x)
        try observe?("mid_block", x)
        for (i, block) in upBlocks.enumerated() {
            let n = block.nets.count
            x = try block(x, skips: skips[(skips.count - n)...])
            skips.removeLast(n)
            try observe?("up_blocks.\(i)", x)
        }
        return try convOut(normOut(x).silu())
    }

    /// How much the U-Net scales the input side: output side = input side * factor.
    public var resolutionFactor: Double {
        Double(1 << (upBlocks.count - 1)) / Double(1 << (downBlocks.count - 1))
    }
}
