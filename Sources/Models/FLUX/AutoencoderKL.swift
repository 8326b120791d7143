import Foundation
import NN
import TorchShim

/// diffusers `AutoencoderKL` (the KL VAE of Stable Diffusion and FLUX): encoder to a diagonal Gaussian over
/// latents, decoder back to pixels in [-1, 1]. Only the plain `DownEncoderBlock2D`/`UpDecoderBlock2D` layout
/// (every SD/SDXL/SD3/FLUX VAE) is implemented.
public final class AutoencoderKL {
    public struct Config: Decodable, Sendable {
        public var inChannels: Int
        public var outChannels: Int
        public var latentChannels: Int
        public var blockOutChannels: [Int]
        public var layersPerBlock: Int
        public var downBlockTypes: [String]
        public var upBlockTypes: [String]
        public var normNumGroups: Int
        public var actFn: String
        public var scalingFactor: Double
        public var shiftFactor: Double?
        /// nil = decided by whether the checkpoint holds the convolution.
        public var useQuantConv: Bool?
        public var usePostQuantConv: Bool?
        public var midBlockAddAttention: Bool

        enum CodingKeys: String, CodingKey {
            case inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
            case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
            case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
            case normNumGroups = "norm_num_groups", actFn = "act_fn", scalingFactor = "scaling_factor"
            case shiftFactor = "shift_factor", useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
            case midBlockAddAttention = "mid_block_add_attention"
        }

        /// The FLUX.1 VAE.
        public init(inChannels: Int = 3, outChannels: Int = 3, latentChannels: Int = 16,
                    blockOutChannels: [Int] = [128, 256, 512, 512], layersPerBlock: Int = 2, normNumGroups: Int = 32,
                    scalingFactor: Double = 0.3611, shiftFactor: Double? = 0.1159, useQuantConv: Bool? = false,
                    usePostQuantConv: Bool? = false, midBlockAddAttention: Bool = true) {
            self.inChannels = inChannels
            self.outChannels = outChannels
            self.latentChannels = latentChannels
            self.blockOutChannels = blockOutChannels
            self.layersPerBlock = layersPerBlock
            downBlockTypes = Array(repeating: "DownEncoderBlock2D", count: blockOutChannels.count)
            upBlockTypes = Array(repeating: "UpDecoderBlock2D", count: blockOutChannels.count)
            self.normNumGroups = normNumGroups
            actFn = "silu"
            self.scalingFactor = scalingFactor
            self.shiftFactor = shiftFactor
            self.useQuantConv = useQuantConv
            self.usePostQuantConv = usePostQuantConv
            self.midBlockAddAttention = midBlockAddAttention
        }

        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3
            outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3
            latentChannels = try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4
            blockOutChannels = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? [64]
            layersPerBlock = try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? 1
            downBlockTypes = try c.decodeIfPresent([String].self, forKey: .downBlockTypes)
                ?? Array(repeating: "DownEncoderBlock2D", count: blockOutChannels.count)
            upBlockTypes = try c.decodeIfPresent([String].self, forKey: .upBlockTypes)
                ?? Array(repeating: "UpDecoderBlock2D", count: blockOutChannels.count)
            normNumGroups = try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32
            actFn = try c.decodeIfPresent(String.self, forKey: .actFn) ?? "silu"
            scalingFactor = try c.decodeIfPresent(Double.self, forKey: .scalingFactor) ?? 0.18215
            shiftFactor = try c.decodeIfPresent(Double.self, forKey: .shiftFactor)
            useQuantConv = try c.decodeIfPresent(Bool.self, forKey: .useQuantConv)
            usePostQuantConv = try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv)
            midBlockAddAttention = try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? true
        }

        /// Pixels per latent along each side: 2^(number of blocks - 1).
        public var spatialScale: Int { 1 << (blockOutChannels.count - 1) }

        func validate() throws {
            guard !blockOutChannels.isEmpty, downBlockTypes.count == blockOutChannels.count,
                  upBlockTypes.count == blockOutChannels.count else {
                throw WeightError.badConfig("AutoencoderKL needs one down and one up block per block_out_channels entry")
            }
            if let bad = downBlockTypes.first(where: { $0 != "DownEncoderBlock2D" }) ?? upBlockTypes.first(where: { $0 != "UpDecoderBlock2D" }) {
                throw WeightError.badConfig("AutoencoderKL block type '\(bad)' is not implemented")
            }
            guard actFn == "silu" || actFn == "swish" else {
                throw WeightError.badConfig("AutoencoderKL act_fn '\(actFn)' is not implemented")
            }
            guard blockOutChannels.allSatisfy({ $0 % normNumGroups == 0 }) else {
                throw WeightError.badConfig("block_out_channels \(blockOutChannels) must be multiples of norm_num_groups \(normNumGroups)")
            }
        }

        /// Every checkpoint key and shape (quant convs included when the config asks for them).
        public func parameterShapes() -> [String: [Int]] {
            var s: [String: [Int]] = [:]
            func conv(_ n: String, _ i: Int, _ o: Int, _ k: Int) { s[n + ".weight"] = [o, i, k, k]; s[n + ".bias"] = [o] }
            func norm(_ n: String, _ c: Int) { s[n + ".weight"] = [c]; s[n + ".bias"] = [c] }
            func resnet(_ p: String, _ i: Int, _ o: Int) {
                norm(p + ".norm1", i); conv(p + ".conv1", i, o, 3); norm(p + ".norm2", o); conv(p + ".conv2", o, o, 3)
                if i != o { conv(p + ".conv_shortcut", i, o, 1) }
            }
            func mid(_ p: String, _ c: Int) {
                resnet(p + ".resnets.0", c, c)
                if midBlockAddAttention {
                    norm(p + ".attentions.0.group_norm", c)
                    for n in ["to_q", "to_k", "to_v", "to_out.0"] { s[p + ".attentions.0.\(n).weight"] = [c, c]; s[p + ".attentions.0.\(n).bias"] = [c] }
                }
                resnet(p + ".resnets.1", c, c)
            }
            let ch = blockOutChannels, last = ch[ch.count - 1]
            conv("encoder.conv_in", inChannels, ch[0], 3)
            var out = ch[0]
            for (i, c) in ch.enumerated() {
                let input = out
                out = c
                for j in 0..<layersPerBlock { resnet("encoder.down_blocks.\(i).resnets.\(j)", j == 0 ? input : out, out) }
                if i < ch.count - 1 { conv("encoder.down_blocks.\(i).downsamplers.0.conv", out, out, 3) }
            }
            mid("encoder.mid_block", last)
            norm("encoder.conv_norm_out", last)
            conv("encoder.conv_out", last, 2 * latentChannels, 3)
            conv("decoder.conv_in", latentChannels, last, 3)
            mid("decoder.mid_block", last)
            let reversed = Array(ch.reversed())
            out = reversed[0]
            for (i, c) in reversed.enumerated() {
                let prev = out
                out = c
                for j in 0...layersPerBlock { resnet("decoder.up_blocks.\(i).resnets.\(j)", j == 0 ? prev : out, out) }
                if i < ch.count - 1 { conv("decoder.up_blocks.\(i).upsamplers.0.conv", out, out, 3) }
            }
            norm("decoder.conv_norm_out", ch[0])
            conv("decoder.conv_out", ch[0], outChannels, 3)
            if useQuantConv ?? true { conv("quant_conv", 2 * latentChannels, 2 * latentChannels, 1) }
            if usePostQuantConv ?? true { conv("post_quant_conv", latentChannels, latentChannels, 1) }
            return s
        }
    }

    /// GroupNorm (eps 1e-6) -> SiLU -> conv3x3, twice, plus a (1x1-projected) shortcut.
    struct ResnetBlock {
        let norm1: GroupNorm, conv1: Conv, norm2: GroupNorm, conv2: Conv
        let shortcut: Conv?

        init(_ w: WeightLoader, inChannels: Int, outChannels: Int, groups: Int) throws {
            norm1 = try GroupNorm(w.pp("norm1"), groups: groups, channels: inChannels, eps: 1e-6)
            conv1 = try Conv(w.pp("conv1"), spatialDims: 2, inChannels: inChannels, outChannels: outChannels, kernel: [3],
                             padding: [1])
            norm2 = try GroupNorm(w.pp("norm2"), groups: groups, channels: outChannels, eps: 1e-6)
            conv2 = try Conv(w.pp("conv2"), spatialDims: 2, inChannels: outChannels, outChannels: outChannels,
                             kernel: [3], padding: [1])
            shortcut = inChannels == outChannels ? nil
                : try Conv(w.pp("conv_shortcut"), spatialDims: 2, inChannels: inChannels, outChannels: outChannels, kernel: [1])
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let h = try conv2(norm2(conv1(norm1(x).silu())).silu())
            return try (shortcut.map { try $0(x) } ?? x) + h
        }
    }

    /// Single-head self-attention over pixels with a GroupNorm in front and a residual connection.
    struct SpatialAttention {
        let groupNorm: GroupNorm
        let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear

        init(_ w: WeightLoader, channels c: Int, groups: Int) throws {
            groupNorm = try GroupNorm(w.pp("group_norm"), groups: groups, channels: c, eps: 1e-6)
            toQ = try Linear(w.pp("to_q"), inFeatures: c, outFeatures: c)
            toK = try Linear(w.pp("to_k"), inFeatures: c, outFeatures: c)
            toV = try Linear(w.pp("to_v"), inFeatures: c, outFeatures: c)
            toOut = try Linear(w.pp("to_out").pp(0), inFeatures: c, outFeatures: c)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let (b, c, h, w) = (x.size(0), x.size(1), x.size(2), x.size(3))
            let tokens = try groupNorm(x).view([b, c, h * w]).transpose(1, 2)  // [B, HW, C]
            let q = try toQ(tokens).unsqueeze(1), k = try toK(tokens).unsqueeze(1), v = try toV(tokens).unsqueeze(1)
            let o = try toOut(F.scaledDotProductAttention(q, k, v).squeeze(1))
            return try o.transpose(1, 2).reshape([b, c, h, w]) + x
        }
    }

    struct MidBlock {
        let resnet0: ResnetBlock
        let attention: SpatialAttention?
        let resnet1: ResnetBlock

        init(_ w: WeightLoader, channels c: Int, groups: Int, attention: Bool) throws {
            resnet0 = try ResnetBlock(w.pp("resnets").pp(0), inChannels: c, outChannels: c, groups: groups)
            self.attention = attention ? try SpatialAttention(w.pp("attentions").pp(0), channels: c, groups: groups) : nil
            resnet1 = try ResnetBlock(w.pp("resnets").pp(1), inChannels: c, outChannels: c, groups: groups)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            var h = try resnet0(x)
            if let attention { h = try attention(h) }
            return try resnet1(h)
        }
    }

    public struct Encoder {
        let convIn: Conv
        let downBlocks: [(resnets: [ResnetBlock], downsample: Conv?)]
        let mid: MidBlock
        let normOut: GroupNorm
        let convOut: Conv

        init(_ w: WeightLoader, config c: Config) throws {
            let ch = c.blockOutChannels, g = c.normNumGroups
            convIn = try Conv(w.pp("conv_in"), spatialDims: 2, inChannels: c.inChannels, outChannels: ch[0], kernel: [3],
                              padding: [1])
            var blocks: [(resnets: [ResnetBlock], downsample: Conv?)] = []
            var out = ch[0]
            for (i, channels) in ch.enumerated() {
                let input = out
                out = channels
                let b = w.pp("down_blocks").pp(i)
                let resnets = try (0..<c.layersPerBlock).map {
                    try ResnetBlock(b.pp("resnets").pp($0), inChannels: $0 == 0 ? input : out, outChannels: out, groups: g)
                }
                // Downsample2D with padding 0: pad right/bottom by one, then a stride-2 conv.
                let down = i < ch.count - 1
                    ? try Conv(b.pp("downsamplers").pp(0).pp("conv"), spatialDims: 2, inChannels: out, outChannels: out,
                               kernel: [3], stride: [2]) : nil
                blocks.append((resnets, down))
            }
            downBlocks = blocks
            mid = try MidBlock(w.pp("mid_block"), channels: out, groups: g, attention: c.midBlockAddAttention)
            normOut = try GroupNorm(w.pp("conv_norm_out"), groups: g, channels: out, eps: 1e-6)
            convOut = try Conv(w.pp("conv_out"), spatialDims: 2, inChannels: out, outChannels: 2 * c.latentChannels,
                               kernel: [3], padding: [1])
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            var h = try convIn(x)
            for block in downBlocks {
                for r in block.resnets { h = try r(h) }
                if let down = block.downsample { h = try down(F.pad(h, [0, 1, 0, 1])) }
            }
            return try convOut(normOut(mid(h)).silu())
        }
    }

    public struct Decoder {
        let convIn: Conv
        let mid: MidBlock
        let upBlocks: [(resnets: [ResnetBlock], upsample: Conv?)]
        let normOut: GroupNorm
        let convOut: Conv

        init(_ w: WeightLoader, config c: Config) throws {
            let ch = c.blockOutChannels, g = c.normNumGroups
            let reversed = Array(ch.reversed())
            convIn = try Conv(w.pp("conv_in"), spatialDims: 2, inChannels: c.latentChannels, outChannels: reversed[0],
                              kernel: [3], padding: [1])
            mid = try MidBlock(w.pp("mid_block"), channels: reversed[0], groups: g, attention: c.midBlockAddAttention)
            var blocks: [(resnets: [ResnetBlock], upsample: Conv?)] = []
            var out = reversed[0]
            for (i, channels) in reversed.enumerated() {
                let prev = out
                out = channels
                let b = w.pp("up_blocks").pp(i)
                let resnets = try (0...c.layersPerBlock).map {
                    try ResnetBlock(b.pp("resnets").pp($0), inChannels: $0 == 0 ? prev : out, outChannels: out, groups: g)
                }
                let up = i < ch.count - 1
                    ? try Conv(b.pp("upsamplers").pp(0).pp("conv"), spatialDims: 2, inChannels: out, outChannels: out,
                               kernel: [3], padding: [1]) : nil
                blocks.append((resnets, up))
            }
            upBlocks = blocks
            normOut = try GroupNorm(w.pp("conv_norm_out"), groups: g, channels: ch[0], eps: 1e-6)
            convOut = try Conv(w.pp("conv_out"), spatialDims: 2, inChannels: ch[0], outChannels: c.outChannels,
                               kernel: [3], padding: [1])
        }

        func callAsFunction(_ z: Tensor) throws -> Tensor {
            var h = try mid(convIn(z))
            for block in upBlocks {
                for r in block.resnets { h = try r(h) }
                if let up = block.upsample {
                    h = try up(F.interpolate(h, size: [2 * h.size(2), 2 * h.size(3)], mode: .nearest))
                }
            }
            return try convOut(normOut(h).silu())
        }
    }

    /// The encoder's diagonal Gaussian: mean and log-variance (clamped to [-30, 20]) [B, C, h, w].
    public struct LatentDistribution {
        public let mean: Tensor
        public let logvar: Tensor

        public var std: Tensor { get throws { try (logvar * 0.5).exp() } }
        /// The mode (what FLUX/SD image-to-latent code usually takes).
        public func mode() -> Tensor { mean }
        public func sample(generator: Generator? = nil) throws -> Tensor {
            let noise = try Tensor.randn(mean.shape, dtype: mean.dtype, device: mean.device, generator: generator)
            return try mean + std * noise
        }
    }

    public let config: Config
    public let encoder: Encoder?
    public let decoder: Decoder
    let quantConv: Conv?
    let postQuantConv: Conv?

    /// `withEncoder: false` loads (and requires) only the decoder side, for text-to-image use; the encoder keys
    /// are then left unused on purpose.
    public init(_ w: WeightLoader, config: Config, withEncoder: Bool = true) throws {
        try config.validate()
        self.config = config
        let lc = config.latentChannels
        decoder = try Decoder(w.pp("decoder"), config: config)
        let usePost = config.usePostQuantConv ?? w.contains("post_quant_conv.weight")
        postQuantConv = usePost
            ? try Conv(w.pp("post_quant_conv"), spatialDims: 2, inChannels: lc, outChannels: lc, kernel: [1]) : nil
        if withEncoder {
            encoder = try Encoder(w.pp("encoder"), config: config)
            let useQuant = config.useQuantConv ?? w.contains("quant_conv.weight")
            quantConv = useQuant
                ? try Conv(w.pp("quant_conv"), spatialDims: 2, inChannels: 2 * lc, outChannels: 2 * lc, kernel: [1]) : nil
        } else {
            encoder = nil
            quantConv = nil
            let p = w.prefix.isEmpty ? "" : w.prefix + "."
            for key in w.source.keys where key.hasPrefix(p + "encoder.") || key.hasPrefix(p + "quant_conv.") {
                w.ignore([String(key.dropFirst(p.count))])
            }
        }
    }

    public var dtype: DType { decoder.convIn.weight.dtype }
    public var device: Device { decoder.convIn.weight.device }

    /// Pixels [B, 3, H, W] in [-1, 1] for (unscaled) latents [B, latent_channels, h, w].
    public func decode(_ z: Tensor) throws -> Tensor {
        guard z.ndim == 4, z.size(1) == config.latentChannels else {
            throw FluxError("VAE latents must be [batch, \(config.latentChannels), h, w], got \(z.shape)")
        }
        var h = try z.to(device, dtype: dtype)
        if let postQuantConv { h = try postQuantConv(h) }
        return try decoder(h)
    }

    /// The latent distribution of pixels [B, 3, H, W] in [-1, 1] (H, W multiples of spatialScale).
    public func encode(_ x: Tensor) throws -> LatentDistribution {
        guard let encoder else { throw FluxError("this AutoencoderKL was loaded without its encoder") }
        let s = config.spatialScale
        guard x.ndim == 4, x.size(1) == config.inChannels, x.size(2) % s == 0, x.size(3) % s == 0 else {
            throw FluxError("VAE input must be [batch, \(config.inChannels), H, W] with H, W multiples of \(s), got \(x.shape)")
        }
        var moments = try encoder(x.to(device, dtype: dtype))
        if let quantConv { moments = try quantConv(moments) }
        let parts = try moments.chunk(2, dim: 1)
        return LatentDistribution(mean: parts[0], logvar: try parts[1].clamp(min: -30, max: 20))
    }

    /// Latents as the diffusion model sees them -> VAE latents: z / scaling_factor + shift_factor.
    public func unscale(_ latents: Tensor) throws -> Tensor {
        try latents / config.scalingFactor + (config.shiftFactor ?? 0)
    }

    /// VAE latents -> diffusion latents: (z - shift_factor) * scaling_factor.
    public func scale(_ z: Tensor) throws -> Tensor {
        try (z - (config.shiftFactor ?? 0)) * config.scalingFactor
    }
}
