import Foundation
import NN
import TorchShim

/// LGM (Large Multi-View Gaussian Model, 3DTopia/LGM): four posed views (RGB + Plücker rays) -> a U-Net ->
/// a 14-channel "splatter image" per view -> one Gaussian per output pixel. Keys: `unet.*`, `conv.*`
/// (`LGM.state_dict()`, LPIPS stripped, as published in `model_fp16_fixrot.safetensors`).
public final class LGM {
    /// `core.options.Options`: the fields the network, the cameras and the export use.
    public struct Config: Decodable, Sendable, Equatable {
        public var inputSize: Int
        public var downChannels: [Int]
        public var downAttention: [Bool]
        public var midAttention: Bool
        public var upChannels: [Int]
        public var upAttention: [Bool]
        public var splatSize: Int
        public var fovy: Double
        public var znear: Double
        public var zfar: Double
        public var camRadius: Double
        public var unet: LGMUNetSettings

        enum CodingKeys: String, CodingKey {
            case inputSize = "input_size", downChannels = "down_channels", downAttention = "down_attention"
            case midAttention = "mid_attention", upChannels = "up_channels", upAttention = "up_attention"
            case splatSize = "splat_size", fovy, znear, zfar, camRadius = "cam_radius", unet
        }

        /// Options 'big' (the published model): 256 px input, six down levels, five up levels, 128 px splats.
        public static let big = Config(
            inputSize: 256, downChannels: [64, 128, 256, 512, 1024, 1024],
            downAttention: [false, false, false, true, true, true], midAttention: true,
            upChannels: [1024, 1024, 512, 256, 128], upAttention: [true, true, true, false, false], splatSize: 128)

        public init(inputSize: Int, downChannels: [Int], downAttention: [Bool], midAttention: Bool, upChannels: [Int],
                    upAttention: [Bool], splatSize: Int, fovy: Double = 49.1, znear: Double = 0.5, zfar: Double = 2.5,
                    camRadius: Double = 1.5, unet: LGMUNetSettings = LGMUNetSettings()) {
            self.inputSize = inputSize
            self.downChannels = downChannels
            self.downAttention = downAttention
            self.midAttention = midAttention
            self.upChannels = upChannels
            self.upAttention = upAttention
            self.splatSize = splatSize
            self.fovy = fovy
            self.znear = znear
            self.zfar = zfar
            self.camRadius = camRadius
            self.unet = unet
        }

        /// Missing fields take the `Options` class defaults ('lrm').
        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            inputSize = try c.decodeIfPresent(Int.self, forKey: .inputSize) ?? 256
            downChannels = try c.decodeIfPresent([Int].self, forKey: .downChannels) ?? [64, 128, 256, 512, 1024, 1024]
            downAttention = try c.decodeIfPresent([Bool].self, forKey: .downAttention) ?? [false, false, false, true, true, true]
            midAttention = try c.decodeIfPresent(Bool.self, forKey: .midAttention) ?? true
            upChannels = try c.decodeIfPresent([Int].self, forKey: .upChannels) ?? [1024, 1024, 512, 256]
            upAttention = try c.decodeIfPresent([Bool].self, forKey: .upAttention) ?? [true, true, true, false]
            splatSize = try c.decodeIfPresent(Int.self, forKey: .splatSize) ?? 64
            fovy = try c.decodeIfPresent(Double.self, forKey: .fovy) ?? 49.1
            znear = try c.decodeIfPresent(Double.self, forKey: .znear) ?? 0.5
            zfar = try c.decodeIfPresent(Double.self, forKey: .zfar) ?? 2.5
            camRadius = try c.decodeIfPresent(Double.self, forKey: .camRadius) ?? 1.5
            unet = try c.decodeIfPresent(LGMUNetSettings.self, forKey: .unet) ?? LGMUNetSettings()
        }

        /// The splat side the U-Net produces for `inputSize`.
        public var outputSide: Int {
            inputSize * (1 << (upChannels.count - 1)) / (1 << (downChannels.count - 1))
        }

        func validate() throws {
            try LGMUNet.validate(downChannels: downChannels, downAttention: downAttention, upChannels: upChannels,
                                 upAttention: upAttention, settings: unet)
            let scale = 1 << (downChannels.count - 1)
            guard inputSize > 0, inputSize % scale == 0 else {
                throw WeightError.badConfig("LGM input_size \(inputSize) must be a positive multiple of \(scale)")
            }
            guard splatSize == outputSide else {
                throw WeightError.badConfig("LGM splat_size \(splatSize) disagrees with the U-Net, which outputs \(outputSide) px for input_size \(inputSize)")
            }
            guard unet.inChannels == 9, unet.outChannels == LGM.channels else {
                throw WeightError.badConfig("LGM's U-Net maps 9 channels (RGB + Plücker) to 14, got \(unet.inChannels) -> \(unet.outChannels)")
            }
            guard fovy > 0, fovy < 180, camRadius > 0 else {
                throw WeightError.badConfig("LGM fovy \(fovy) must be in (0, 180) and cam_radius \(camRadius) positive")
            }
        }

        /// Every checkpoint key and shape (for real-size random weights).
        public func parameterShapes() -> [String: [Int]] {
            var s: [String: [Int]] = ["conv.weight": [14, 14, 1, 1], "conv.bias": [14]]
            func conv(_ n: String, _ i: Int, _ o: Int, _ k: Int) { s[n + ".weight"] = [o, i, k, k]; s[n + ".bias"] = [o] }
            func norm(_ n: String, _ c: Int) { s[n + ".weight"] = [c]; s[n + ".bias"] = [c] }
            func resnet(_ p: String, _ i: Int, _ o: Int) {
                norm(p + ".norm1", i); conv(p + ".conv1", i, o, 3); norm(p + ".norm2", o); conv(p + ".conv2", o, o, 3)
                if i != o { conv(p + ".shortcut", i, o, 1) }
            }
            func attention(_ p: String, _ c: Int) {
                norm(p + ".norm", c); s[p + ".attn.qkv.weight"] = [3 * c, c]
                s[p + ".attn.proj.weight"] = [c, c]; s[p + ".attn.proj.bias"] = [c]
            }
            let u = "unet", layers = unet.layersPerBlock
            conv(u + ".conv_in", unet.inChannels, downChannels[0], 3)
            var cout = downChannels[0]
            for (i, c) in downChannels.enumerated() {
                let cin = cout
                cout = c
                for j in 0..<layers {
                    resnet("\(u).down_blocks.\(i).nets.\(j)", j == 0 ? cin : cout, cout)
                    if downAttention[i] { attention("\(u).down_blocks.\(i).attns.\(j)", cout) }
                }
                if i < downChannels.count - 1 { conv("\(u).down_blocks.\(i).downsample", cout, cout, 3) }
            }
            let deepest = downChannels[downChannels.count - 1]
            resnet(u + ".mid_block.nets.0", deepest, deepest)
            resnet(u + ".mid_block.nets.1", deepest, deepest)
            if midAttention { attention(u + ".mid_block.attns.0", deepest) }
            cout = upChannels[0]
            for (i, c) in upChannels.enumerated() {
                let cin = cout
                cout = c
                let skip = downChannels[max(downChannels.count - 2 - i, 0)]
                for j in 0...layers {
                    resnet("\(u).up_blocks.\(i).nets.\(j)", (j == 0 ? cin : cout) + (j == layers ? skip : cout), cout)
                    if upAttention[i] { attention("\(u).up_blocks.\(i).attns.\(j)", cout) }
                }
                if i < upChannels.count - 1 { conv("\(u).up_blocks.\(i).upsample", cout, cout, 3) }
            }
            norm(u + ".norm_out", upChannels[upChannels.count - 1])
            conv(u + ".conv_out", upChannels[upChannels.count - 1], unet.outChannels, 3)
            return s
        }
    }

    /// Channels per Gaussian: position 3, opacity 1, scale 3, rotation 4, RGB 3.
    public static let channels = 14

    public let config: Config
    public let unet: LGMUNet
    /// The 1x1 conv after the U-Net.
    public let conv: Conv

    public init(_ w: WeightLoader, config: Config) throws {
        try config.validate()
        self.config = config
        unet = try LGMUNet(w.pp("unet"), downChannels: config.downChannels, downAttention: config.downAttention,
                           midAttention: config.midAttention, upChannels: config.upChannels,
                           upAttention: config.upAttention, settings: config.unet)
        conv = try Conv(w.pp("conv"), spatialDims: 2, inChannels: LGM.channels, outChannels: LGM.channels, kernel: [1])
    }

    /// Loads `model_fp16_fixrot.safetensors` (or any LGM state dict; the LPIPS keys, if present, are ignored
    /// as `load_state_dict(strict=False)` does). Every other key must be used.
    public static func load(checkpoint: URL, config: Config = .big, device: Device, dtype: DType) throws -> LGM {
        let source = try SafeTensors.open(checkpoint)
        let w = WeightLoader(source, device: device, dtype: dtype)
        let model = try LGM(w, config: config)
        w.ignore(source.keys.filter { $0.hasPrefix("lpips_loss.") })
        try w.checkAllUsed()
        return model
    }

    public var dtype: DType { conv.weight.dtype }
    public var device: Device { conv.weight.device }
    public var views: Int { config.unet.views }

    /// images [B, V, 9, H, W] (H = W = input_size) -> the raw splatter images [B, V, 14, s, s] (after the 1x1 conv).
    public func splatterImages(_ images: Tensor, observe: ((String, Tensor) throws -> Void)? = nil) throws -> Tensor {
        let n = config.inputSize, v = views
        guard images.ndim == 5, images.size(1) == v, images.size(2) == config.unet.inChannels, images.size(3) == n,
              images.size(4) == n else {
            throw LGMError("LGM input must be [batch, \(v), \(config.unet.inChannels), \(n), \(n)], got \(images.shape)")
        }
        let b = images.size(0)
        let x = try images.to(device, dtype: dtype).reshape([b * v, config.unet.inChannels, n, n])
        let raw = try conv(unet(x, observe: observe))
        return try raw.view([b, v, LGM.channels, config.splatSize, config.splatSize])
    }

    /// Raw splatter images [B, V, 14, s, s] -> Gaussians [B, V*s*s, 14] in float32 (row index view*s*s + row*s + col):
    /// position clamp(-1, 1), opacity sigmoid, scale 0.1 softplus, rotation L2-normalised, RGB 0.5 tanh + 0.5.
    public static func activate(_ raw: Tensor) throws -> Tensor {
        guard raw.ndim == 5, raw.size(2) == channels else {
            throw LGMError("splatter images must be [batch, views, 14, s, s], got \(raw.shape)")
        }
        let b = raw.size(0)
        let x = try raw.to(.float32).permute([0, 1, 3, 4, 2]).reshape([b, -1, channels])
        let position = try x.narrow(-1, start: 0, length: 3).clamp(min: -1, max: 1)
        let opacity = try x.narrow(-1, start: 3, length: 1).sigmoid()
        let scale = try x.narrow(-1, start: 4, length: 3).softplus() * 0.1
        let rotation = try F.normalize(x.narrow(-1, start: 7, length: 4), dim: -1)
        let rgb = try x.narrow(-1, start: 11, length: 3).tanh() * 0.5 + 0.5
        return try Tensor.cat([position, opacity, scale, rotation, rgb], dim: -1)
    }

    /// `forward_gaussians`: images [B, V, 9, H, W] -> Gaussians.
    public func gaussians(_ images: Tensor) throws -> LGMGaussians {
        try LGMGaussians(try LGM.activate(splatterImages(images)))
    }
}
