import Foundation
import NN
import TorchShim

/// The multi-view UNet of MVDream / ImageDream (`mvdream.mv_unet.MultiViewUNetModel`, SD 2.1 layout): ResBlocks
/// conditioned on timestep + camera embeddings, `SpatialTransformer3D` blocks whose self-attention spans all frames of a
/// sample and whose cross-attention reads the text tokens (ImageDream: plus image-prompt tokens from a Resampler), and for
/// ImageDream a reference frame (the last of each group) replaced by the input image's latents.
/// Keys: `time_embed`, `camera_embed`, `image_embed` (ImageDream), `input_blocks`, `middle_block`, `output_blocks`, `out`.
public final class MultiViewUNetModel {
    public struct Config: Decodable, Sendable, Equatable {
        public var imageSize: Int
        public var inChannels: Int
        public var outChannels: Int
        public var modelChannels: Int
        public var attentionResolutions: [Int]
        /// One entry per level.
        public var numResBlocks: [Int]
        public var channelMult: [Int]
        public var numHeads: Int
        public var numHeadChannels: Int
        public var transformerDepth: Int
        public var contextDim: Int
        public var cameraDim: Int?
        public var ipDim: Int
        public var ipWeight: Double
        public var convResample: Bool
        public var useScaleShiftNorm: Bool
        public var resblockUpdown: Bool
        public var numClasses: Int?
        public var dims: Int

        enum CodingKeys: String, CodingKey {
            case imageSize = "image_size", inChannels = "in_channels", outChannels = "out_channels"
            case modelChannels = "model_channels", attentionResolutions = "attention_resolutions"
            case numResBlocks = "num_res_blocks", channelMult = "channel_mult", numHeads = "num_heads"
            case numHeadChannels = "num_head_channels", transformerDepth = "transformer_depth", contextDim = "context_dim"
            case cameraDim = "camera_dim", ipDim = "ip_dim", ipWeight = "ip_weight", convResample = "conv_resample"
            case useScaleShiftNorm = "use_scale_shift_norm", resblockUpdown = "resblock_updown", numClasses = "num_classes"
            case dims, numAttentionBlocks = "num_attention_blocks"
        }

        public init(imageSize: Int = 32, inChannels: Int = 4, outChannels: Int = 4, modelChannels: Int = 320,
                    attentionResolutions: [Int] = [4, 2, 1], numResBlocks: Int = 2, channelMult: [Int] = [1, 2, 4, 4],
                    numHeads: Int = -1, numHeadChannels: Int = 64, transformerDepth: Int = 1, contextDim: Int = 1024,
                    cameraDim: Int? = 16, ipDim: Int = 0, ipWeight: Double = 1) {
            self.imageSize = imageSize
            self.inChannels = inChannels
            self.outChannels = outChannels
            self.modelChannels = modelChannels
            self.attentionResolutions = attentionResolutions
            self.numResBlocks = Array(repeating: numResBlocks, count: channelMult.count)
            self.channelMult = channelMult
            self.numHeads = numHeads
            self.numHeadChannels = numHeadChannels
            self.transformerDepth = transformerDepth
            self.contextDim = contextDim
            self.cameraDim = cameraDim
            self.ipDim = ipDim
            self.ipWeight = ipWeight
            convResample = true
            useScaleShiftNorm = false
            resblockUpdown = false
            numClasses = nil
            dims = 2
        }

        /// MVDream (`ashawkey/mvdream-sd2.1-diffusers`, derived config).
        public static let mvdream = Config()
        /// ImageDream (`ashawkey/imagedream-ipmv-diffusers`, derived config: 16 ip tokens, camera_dim 16).
        public static let imagedream = Config(ipDim: 16)

        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? 32
            inChannels = try c.decode(Int.self, forKey: .inChannels)
            outChannels = try c.decode(Int.self, forKey: .outChannels)
            modelChannels = try c.decode(Int.self, forKey: .modelChannels)
            attentionResolutions = try c.decode([Int].self, forKey: .attentionResolutions)
            channelMult = try c.decodeIfPresent([Int].self, forKey: .channelMult) ?? [1, 2, 4, 8]
            if let perLevel = try? c.decode([Int].self, forKey: .numResBlocks) {
                numResBlocks = perLevel
            } else {
                numResBlocks = Array(repeating: try c.decode(Int.self, forKey: .numResBlocks), count: channelMult.count)
            }
            numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? -1
            numHeadChannels = try c.decodeIfPresent(Int.self, forKey: .numHeadChannels) ?? -1
            transformerDepth = try c.decodeIfPresent(Int.self, forKey: .transformerDepth) ?? 1
            guard let context = try c.decodeIfPresent(Int.self, forKey: .contextDim) else {
                throw WeightError.badConfig("MultiViewUNetModel needs context_dim")
            }
            contextDim = context
            cameraDim = try c.decodeIfPresent(Int.self, forKey: .cameraDim)
            ipDim = try c.decodeIfPresent(Int.self, forKey: .ipDim) ?? 0
            ipWeight = try c.decodeIfPresent(Double.self, forKey: .ipWeight) ?? 1
            convResample = try c.decodeIfPresent(Bool.self, forKey: .convResample) ?? true
            useScaleShiftNorm = try c.decodeIfPresent(Bool.self, forKey: .useScaleShiftNorm) ?? false
            resblockUpdown = try c.decodeIfPresent(Bool.self, forKey: .resblockUpdown) ?? false
            dims = try c.decodeIfPresent(Int.self, forKey: .dims) ?? 2
            // Class conditioning ("sequential", "continuous" or a count) and per-level attention counts are not implemented.
            for key in [CodingKeys.numClasses, .numAttentionBlocks] where c.contains(key) {
                if try c.decodeNil(forKey: key) { continue }
                throw WeightError.badConfig("MultiViewUNetModel \(key.rawValue) is not implemented")
            }
            numClasses = nil
        }

        /// Width of the timestep / camera embeddings.
        public var embeddingDim: Int { 4 * modelChannels }

        /// (heads, head width) of an attention layer with `channels` channels.
        func heads(_ channels: Int) throws -> (Int, Int) {
            if numHeadChannels > 0 {
                guard channels % numHeadChannels == 0 else {
                    throw WeightError.badConfig("\(channels) channels are not divisible by num_head_channels \(numHeadChannels)")
                }
                return (channels / numHeadChannels, numHeadChannels)
            }
            guard numHeads > 0, channels % numHeads == 0 else {
                throw WeightError.badConfig("\(channels) channels need num_heads (> 0, dividing them) or num_head_channels")
            }
            return (numHeads, channels / numHeads)
        }

        func validate() throws {
            guard dims == 2 else { throw WeightError.badConfig("MultiViewUNetModel dims \(dims): only 2 is implemented") }
            guard !useScaleShiftNorm, !resblockUpdown, numClasses == nil else {
                throw WeightError.badConfig("MultiViewUNetModel use_scale_shift_norm / resblock_updown / num_classes are not implemented")
            }
            guard !channelMult.isEmpty, numResBlocks.count == channelMult.count, numResBlocks.allSatisfy({ $0 >= 1 }) else {
                throw WeightError.badConfig("num_res_blocks \(numResBlocks) needs one positive entry per channel_mult level \(channelMult)")
            }
            guard modelChannels > 0, channelMult.allSatisfy({ ($0 * modelChannels) % 32 == 0 }) else {
                throw WeightError.badConfig("UNet widths \(channelMult.map { $0 * modelChannels }) must be multiples of 32 (GroupNorm groups)")
            }
            guard transformerDepth >= 1, ipDim >= 0, contextDim > 0 else {
                throw WeightError.badConfig("transformer_depth \(transformerDepth), ip_dim \(ipDim), context_dim \(contextDim) out of range")
            }
        }

        /// Every checkpoint key and shape (for real-size random weights and manifest checks).
        public func parameterShapes() -> [String: [Int]] {
            var s: [String: [Int]] = [:]
            func linear(_ n: String, _ i: Int, _ o: Int, bias: Bool = true) { s[n + ".weight"] = [o, i]; if bias { s[n + ".bias"] = [o] } }
            func conv(_ n: String, _ i: Int, _ o: Int, _ k: Int) { s[n + ".weight"] = [o, i, k, k]; s[n + ".bias"] = [o] }
            func norm(_ n: String, _ c: Int) { s[n + ".weight"] = [c]; s[n + ".bias"] = [c] }
            let e = embeddingDim
            func resblock(_ p: String, _ i: Int, _ o: Int) {
                norm(p + ".in_layers.0", i); conv(p + ".in_layers.2", i, o, 3); linear(p + ".emb_layers.1", e, o)
                norm(p + ".out_layers.0", o); conv(p + ".out_layers.3", o, o, 3)
                if i != o { conv(p + ".skip_connection", i, o, 1) }
            }
            func transformer(_ p: String, _ c: Int) {
                norm(p + ".norm", c); linear(p + ".proj_in", c, c); linear(p + ".proj_out", c, c)
                for d in 0..<transformerDepth {
                    let b = "\(p).transformer_blocks.\(d)"
                    for n in ["norm1", "norm2", "norm3"] { norm("\(b).\(n)", c) }
                    for n in ["to_q", "to_k", "to_v"] { linear("\(b).attn1.\(n)", c, c, bias: false) }
                    linear(b + ".attn1.to_out.0", c, c)
                    linear(b + ".attn2.to_q", c, c, bias: false)
                    linear(b + ".attn2.to_k", contextDim, c, bias: false)
                    linear(b + ".attn2.to_v", contextDim, c, bias: false)
                    if ipDim > 0 {
                        linear(b + ".attn2.to_k_ip", contextDim, c, bias: false)
                        linear(b + ".attn2.to_v_ip", contextDim, c, bias: false)
                    }
                    linear(b + ".attn2.to_out.0", c, c)
                    linear(b + ".ff.net.0.proj", c, 8 * c)
                    linear(b + ".ff.net.2", 4 * c, c)
                }
            }
            linear("time_embed.0", modelChannels, e); linear("time_embed.2", e, e)
            if let cameraDim { linear("camera_embed.0", cameraDim, e); linear("camera_embed.2", e, e) }
            if ipDim > 0 {
                let d = contextDim
                s["image_embed.latents"] = [1, ipDim, d]
                linear("image_embed.proj_in", 1280, d); linear("image_embed.proj_out", d, d); norm("image_embed.norm_out", d)
                for i in 0..<4 {
                    let p = "image_embed.layers.\(i)"
                    norm(p + ".0.norm1", d); norm(p + ".0.norm2", d)
                    linear(p + ".0.to_q", d, 768, bias: false); linear(p + ".0.to_kv", d, 1536, bias: false)
                    linear(p + ".0.to_out", 768, d, bias: false)
                    norm(p + ".1.0", d); linear(p + ".1.1", d, 4 * d, bias: false); linear(p + ".1.3", 4 * d, d, bias: false)
                }
            }
            conv("input_blocks.0.0", inChannels, modelChannels, 3)
            var chans = [modelChannels], ch = modelChannels, ds = 1, index = 1
            for (level, mult) in channelMult.enumerated() {
                for _ in 0..<numResBlocks[level] {
                    resblock("input_blocks.\(index).0", ch, mult * modelChannels)
                    ch = mult * modelChannels
                    if attentionResolutions.contains(ds) { transformer("input_blocks.\(index).1", ch) }
                    chans.append(ch); index += 1
                }
                if level != channelMult.count - 1 {
                    conv("input_blocks.\(index).0.op", ch, ch, 3)
                    chans.append(ch); index += 1; ds *= 2
                }
            }
            resblock("middle_block.0", ch, ch); transformer("middle_block.1", ch); resblock("middle_block.2", ch, ch)
            index = 0
            for (level, mult) in channelMult.enumerated().reversed() {
                for i in 0...numResBlocks[level] {
                    let skip = chans.removeLast()
                    resblock("output_blocks.\(index).0", ch + skip, modelChannels * mult)
                    ch = modelChannels * mult
                    var layer = 1
                    if attentionResolutions.contains(ds) { transformer("output_blocks.\(index).1", ch); layer += 1 }
                    if level > 0 && i == numResBlocks[level] { conv("output_blocks.\(index).\(layer).conv", ch, ch, 3); ds /= 2 }
                    index += 1
                }
            }
            norm("out.0", ch); conv("out.2", modelChannels, outChannels, 3)
            return s
        }
    }

    /// `ResBlock` (no scale-shift): GroupNorm -> SiLU -> conv, + Linear(SiLU(emb)), GroupNorm -> SiLU -> conv, + skip.
    struct ResBlock {
        let inNorm: GroupNorm, inConv: Conv
        let embedding: Linear
        let outNorm: GroupNorm, outConv: Conv
        let skip: Conv?

        init(_ w: WeightLoader, channels: Int, outChannels: Int, embeddingDim: Int) throws {
            inNorm = try GroupNorm(w.pp("in_layers").pp(0), groups: 32, channels: channels)
            inConv = try Conv(w.pp("in_layers").pp(2), spatialDims: 2, inChannels: channels, outChannels: outChannels,
                              kernel: [3], padding: [1])
            embedding = try Linear(w.pp("emb_layers").pp(1), inFeatures: embeddingDim, outFeatures: outChannels)
            outNorm = try GroupNorm(w.pp("out_layers").pp(0), groups: 32, channels: outChannels)
            outConv = try Conv(w.pp("out_layers").pp(3), spatialDims: 2, inChannels: outChannels, outChannels: outChannels,
                               kernel: [3], padding: [1])
            skip = channels == outChannels ? nil
                : try Conv(w.pp("skip_connection"), spatialDims: 2, inChannels: channels, outChannels: outChannels, kernel: [1])
        }

        /// `activatedEmbedding` = SiLU(emb), shared by every block of the forward.
        func callAsFunction(_ x: Tensor, activatedEmbedding: Tensor) throws -> Tensor {
            var h = try inConv(inNorm(x).silu())
            h = try h + embedding(activatedEmbedding).unsqueeze(-1).unsqueeze(-1)
            h = try outConv(outNorm(h).silu())
            return try (skip.map { try $0(x) } ?? x) + h
        }
    }

    /// One entry of `input_blocks` / `output_blocks` / `middle_block` (`CondSequential`).
    enum Layer {
        case conv(Conv)
        case resBlock(ResBlock)
        case transformer(MultiViewSpatialTransformer)
        /// nearest x2, then the conv (if `conv_resample`)
        case upsample(Conv?)
        case averagePool
    }

    /// The inputs shared by every layer of one forward.
    struct Conditioning {
        let activatedEmbedding: Tensor
        let context: Tensor
        let frames: Int
    }

    static func run(_ layers: [Layer], _ input: Tensor, _ c: Conditioning) throws -> Tensor {
        var x = input
        for layer in layers {
            switch layer {
            case .conv(let conv): x = try conv(x)
            case .resBlock(let block): x = try block(x, activatedEmbedding: c.activatedEmbedding)
            case .transformer(let t): x = try t(x, context: c.context, frames: c.frames)
            case .upsample(let conv):
                x = try F.interpolate(x, size: [2 * x.size(2), 2 * x.size(3)], mode: .nearest)
                if let conv { x = try conv(x) }
            case .averagePool: x = try F.avgPool(x, kernel: [2, 2])
            }
        }
        return x
    }

    public let config: Config
    let timeEmbed: (Linear, Linear)
    let cameraEmbed: (Linear, Linear)?
    let imageEmbed: ImageDreamResampler?
    let inputBlocks: [[Layer]]
    let middleBlock: [Layer]
    let outputBlocks: [[Layer]]
    let outNorm: GroupNorm
    let outConv: Conv

    /// A config without `camera_dim` takes it from the checkpoint's camera MLP when there is one (the converted
    /// ImageDream config may omit it while its weights and pipeline use a 16-value camera).
    public init(_ w: WeightLoader, config: Config) throws {
        var c = config
        if c.cameraDim == nil, let shape = w.shape("camera_embed.0.weight"), shape.count == 2 { c.cameraDim = shape[1] }
        try c.validate()
        self.config = c
        let e = c.embeddingDim
        timeEmbed = (try Linear(w.pp("time_embed").pp(0), inFeatures: c.modelChannels, outFeatures: e),
                     try Linear(w.pp("time_embed").pp(2), inFeatures: e, outFeatures: e))
        cameraEmbed = try c.cameraDim.map {
            (try Linear(w.pp("camera_embed").pp(0), inFeatures: $0, outFeatures: e),
             try Linear(w.pp("camera_embed").pp(2), inFeatures: e, outFeatures: e))
        }
        imageEmbed = c.ipDim > 0
            ? try ImageDreamResampler(w.pp("image_embed"), dim: c.contextDim, queries: c.ipDim, outputDim: c.contextDim) : nil

        func resBlock(_ w: WeightLoader, _ i: Int, _ o: Int) throws -> Layer {
            .resBlock(try ResBlock(w, channels: i, outChannels: o, embeddingDim: e))
        }
        func transformer(_ w: WeightLoader, _ ch: Int) throws -> Layer {
            let (heads, headDim) = try c.heads(ch)
            return .transformer(try MultiViewSpatialTransformer(w, channels: ch, heads: heads, headDim: headDim,
                                                                depth: c.transformerDepth, contextDim: c.contextDim,
                                                                ipTokens: c.ipDim, ipWeight: c.ipWeight))
        }

        var inputs: [[Layer]] = [[.conv(try Conv(w.pp("input_blocks").pp(0).pp(0), spatialDims: 2, inChannels: c.inChannels,
                                                  outChannels: c.modelChannels, kernel: [3], padding: [1]))]]
        var chans = [c.modelChannels], ch = c.modelChannels, ds = 1
        for (level, mult) in c.channelMult.enumerated() {
            for _ in 0..<c.numResBlocks[level] {
                let b = w.pp("input_blocks").pp(inputs.count)
                var layers = [try resBlock(b.pp(0), ch, mult * c.modelChannels)]
                ch = mult * c.modelChannels
                if c.attentionResolutions.contains(ds) { layers.append(try transformer(b.pp(1), ch)) }
                inputs.append(layers)
                chans.append(ch)
            }
            if level != c.channelMult.count - 1 {
                let b = w.pp("input_blocks").pp(inputs.count).pp(0)
                inputs.append([c.convResample
                    ? .conv(try Conv(b.pp("op"), spatialDims: 2, inChannels: ch, outChannels: ch, kernel: [3], stride: [2],
                                     padding: [1]))
                    : .averagePool])
                chans.append(ch)
                ds *= 2
            }
        }
        inputBlocks = inputs
        let m = w.pp("middle_block")
        middleBlock = [try resBlock(m.pp(0), ch, ch), try transformer(m.pp(1), ch), try resBlock(m.pp(2), ch, ch)]

        var outputs: [[Layer]] = []
        for (level, mult) in c.channelMult.enumerated().reversed() {
            for i in 0...c.numResBlocks[level] {
                let b = w.pp("output_blocks").pp(outputs.count)
                let skip = chans.removeLast()
                var layers = [try resBlock(b.pp(0), ch + skip, c.modelChannels * mult)]
                ch = c.modelChannels * mult
                if c.attentionResolutions.contains(ds) { layers.append(try transformer(b.pp(1), ch)) }
                if level > 0 && i == c.numResBlocks[level] {
                    layers.append(.upsample(c.convResample
                        ? try Conv(b.pp(layers.count).pp("conv"), spatialDims: 2, inChannels: ch, outChannels: ch, kernel: [3],
                                   padding: [1])
                        : nil))
                    ds /= 2
                }
                outputs.append(layers)
            }
        }
        outputBlocks = outputs
        outNorm = try GroupNorm(w.pp("out").pp(0), groups: 32, channels: ch)
        outConv = try Conv(w.pp("out").pp(2), spatialDims: 2, inChannels: c.modelChannels, outChannels: c.outChannels,
                           kernel: [3], padding: [1])
    }

    public var dtype: DType { outConv.weight.dtype }
    public var device: Device { outConv.weight.device }

    /// Sinusoidal timestep embedding [N, dim]: [cos(t f), sin(t f)] with f_i = exp(-ln(10000) i / (dim / 2)), float32.
    public static func timestepEmbedding(_ timesteps: Tensor, dim: Int, maxPeriod: Double = 10000) throws -> Tensor {
        let half = dim / 2
        let freqs = try (Tensor.arange(0, Double(half), dtype: .float32, device: timesteps.device)
            * (-Foundation.log(maxPeriod)) / Double(half)).exp()
        let args = try timesteps.to(.float32).unsqueeze(1) * freqs.unsqueeze(0)
        var embedding = try Tensor.cat([args.cos(), args.sin()], dim: -1)
        if dim % 2 == 1 { embedding = try Tensor.cat([embedding, embedding.narrow(1, start: 0, length: 1).zerosLike()], dim: -1) }
        return embedding
    }

    /// Noise prediction for x [N*F, in, h, w] (F = `frames` per sample, frame-major within a sample).
    /// - timesteps: [N*F]; context: [N*F, T, context_dim]; camera: [N*F, camera_dim] (when the model has a camera MLP);
    /// - ImageDream (ip_dim > 0): `ip` [N*F, L, 1280] CLIP image tokens and `ipImage` [N, in, h, w]: the last frame of
    ///   every sample is replaced by `ipImage` before anything else (the caller's `x` is not modified).
    /// `observe(name, tensor)` sees `time_emb`, `camera_emb`, `ip_emb`, `h_in`, `input_blocks.i`, `middle_block`.
    public func callAsFunction(_ x: Tensor, timesteps: Tensor, context: Tensor, camera: Tensor? = nil, frames: Int,
                               ip: Tensor? = nil, ipImage: Tensor? = nil,
                               observe: ((String, Tensor) throws -> Void)? = nil) throws -> Tensor {
        let c = config
        let n = x.size(0)
        guard x.ndim == 4, x.size(1) == c.inChannels, frames >= 1, n % frames == 0 else {
            throw LGMError("UNet input must be [batch x \(frames) frames, \(c.inChannels), h, w], got \(x.shape)")
        }
        guard timesteps.shape == [n], context.ndim == 3, context.size(0) == n, context.size(2) == c.contextDim else {
            throw LGMError("timesteps \(timesteps.shape) / context \(context.shape) must be [\(n)] / [\(n), T, \(c.contextDim)]")
        }
        let dt = dtype, dev = device
        var emb = try timeEmbed.1(timeEmbed.0(MultiViewUNetModel.timestepEmbedding(timesteps.to(dev), dim: c.modelChannels)
            .to(dt)).silu())
        try observe?("time_emb", emb)
        if let camera {
            guard let cameraEmbed, camera.shape == [n, cameraEmbed.0.inFeatures] else {
                throw LGMError("camera \(camera.shape) does not fit this UNet (camera_dim \(c.cameraDim.map(String.init) ?? "none"), batch \(n))")
            }
            let cameraEmb = try cameraEmbed.1(cameraEmbed.0(camera.to(dev, dtype: dt)).silu())
            try observe?("camera_emb", cameraEmb)
            emb = try emb + cameraEmb
        }
        var h = try x.to(dev, dtype: dt)
        var ctx = try context.to(dev, dtype: dt)
        if let imageEmbed {
            guard let ip, let ipImage else { throw LGMError("ImageDream's UNet needs the image prompt (ip and ipImage)") }
            let samples = n / frames
            guard ipImage.shape == [samples] + Array(x.shape.dropFirst()), ip.size(0) == n else {
                throw LGMError("ipImage must be [\(samples)] + \(Array(x.shape.dropFirst())) and ip [\(n), L, 1280]; got \(ipImage.shape), \(ip.shape)")
            }
            let grouped = try h.view([samples, frames] + Array(x.shape.dropFirst()))
            h = try Tensor.cat([grouped.narrow(1, start: 0, length: frames - 1), ipImage.to(dev, dtype: dt).unsqueeze(1)], dim: 1)
                .reshape(x.shape)
            let ipEmb = try imageEmbed(ip.to(dev, dtype: dt))
            try observe?("ip_emb", ipEmb)
            ctx = try Tensor.cat([ctx, ipEmb], dim: 1)
        } else if ip != nil || ipImage != nil {
            // Ignoring them would silently run MVDream on an ImageDream call.
            throw LGMError("this UNet has no image-prompt layers (ip_dim 0, MVDream text-only); got ip / ipImage")
        }
        try observe?("h_in", h)

        let conditioning = Conditioning(activatedEmbedding: try emb.silu(), context: ctx, frames: frames)
        var skips: [Tensor] = []
        for (i, block) in inputBlocks.enumerated() {
            h = try MultiViewUNetModel.run(block, h, conditioning)
            skips.append(h)
            try observe?("input_blocks.\(i)", h)
        }
        h = try MultiViewUNetModel.run(middleBlock, h, conditioning)
        try observe?("middle_block", h)
        for block in outputBlocks {
            h = try MultiViewUNetModel.run(block, Tensor.cat([h, skips.removeLast()], dim: 1), conditioning)
        }
        return try outConv(outNorm(h).silu())
    }
}

/// MVDream's camera conditioning (`get_camera` of LGM's mv_unet.py): for azimuth 0, 360/F, ... an orbit camera at radius
/// 1 (OpenGL), converted to Blender (row 2 negated, then rows 1 and 2 swapped), flattened row-major. ImageDream appends an
/// all-zero camera for the reference view.
public enum MultiViewCameras {
    public static func cameras(frames: Int = 4, elevation: Double = 0, azimuthStart: Double = 0, azimuthSpan: Double = 360,
                               extraView: Bool = false) throws -> Tensor {
        guard frames >= 1 else { throw LGMError("need at least one camera, got \(frames)") }
        let gap = azimuthSpan / Double(frames)
        var rows: [Float] = []
        for i in 0..<frames {
            var pose = OrbitCamera.pose(elevation: elevation, azimuth: azimuthStart + Double(i) * gap, radius: 1)
            pose[2] = pose[2].map { -$0 }
            pose.swapAt(1, 2)
            rows += pose.flatMap { $0 }
        }
        if extraView { rows += [Float](repeating: 0, count: 16) }
        return try Tensor(rows, shape: [frames + (extraView ? 1 : 0), 16])
    }
}
