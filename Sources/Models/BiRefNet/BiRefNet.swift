import Foundation
import NN
import TorchShim

public enum BiRefNetError: Error, CustomStringConvertible, Equatable {
    case unsupportedConfig(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .unsupportedConfig(let why): return "BiRefNet: unsupported configuration: \(why)"
        case .badInput(let why): return "BiRefNet: bad input: \(why)"
        }
    }
}

/// Receives named intermediate tensors during a forward pass. Names are `<state_dict module path>:out`
/// (or `:in`), plus `bb:out0..3`, `bb[half]:in`, `bb[half]:out0..3`, `forward_enc:x1..4` and `logits`,
/// matching the oracle fixtures.
public typealias BiRefNetTrace = (_ name: String, _ tensor: Tensor) -> Void

/// The switches of BiRefNet's `config.py` that shape the network, read from a checkpoint's JSON. Hugging Face's
/// config.json for ZhengPeng7/BiRefNet holds none of them (only `bb_pretrained`), so every field defaults to the
/// general model; values are also taken from a nested `"config"` object (the fixture manifests) or
/// `"config_kept_from_official_general_model"` (the tiny fixture). Widths never come from here: the
/// network reads them from the weight shapes.
public struct BiRefNetConfig: Decodable, Sendable, Equatable {
    /// `bb`: the backbone; only Swin v1 (`swin_v1_*`) is implemented.
    public var backbone = "swin_v1_l"
    /// `mul_scl_ipt`: "cat" runs the backbone again on the half-size image and concatenates.
    public var multiScaleInput = "cat"
    /// `cxt_num`: how many of x1..x3 are resized and concatenated in front of x4 (0...3).
    public var contextCount = 3
    /// `dec_att`, `dec_blk`, `lat_blk`, `squeeze_block` (`<block>_x<count>`).
    public var decoderAttention = "ASPPDeformable"
    public var decoderBlock = "BasicDecBlk"
    public var lateralBlock = "BasicLatBlk"
    public var squeezeBlock = "BasicDecBlk_x1"
    /// `dec_ipt`, `dec_ipt_split`: image tiles fed to every decoder stage.
    public var decoderInput = true
    public var decoderInputSplit = true
    /// `ms_supervision`, `out_ref`: at inference these add the gradient-attention gating of p4, p3, p2.
    public var multiScaleSupervision = true
    public var outputReference = true
    /// `size` as config.py writes it, (width, height); nil when the JSON has none (1024 × 1024 then).
    public var size: [Int]?

    public init() {}

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        self.init()
        let root = try decoder.container(keyedBy: Key.self)
        for nested in ["config", "config_kept_from_official_general_model"] where root.contains(Key(nested)) {
            if let inner = try? root.nestedContainer(keyedBy: Key.self, forKey: Key(nested)) { try apply(inner) }
        }
        try apply(root)
    }

    private mutating func apply(_ c: KeyedDecodingContainer<Key>) throws {
        func string(_ k: String, _ v: inout String) throws { if let x = try c.decodeIfPresent(String.self, forKey: Key(k)) { v = x } }
        func bool(_ k: String, _ v: inout Bool) throws { if let x = try c.decodeIfPresent(Bool.self, forKey: Key(k)) { v = x } }
        try string("bb", &backbone)
        try string("mul_scl_ipt", &multiScaleInput)
        if let x = try c.decodeIfPresent(Int.self, forKey: Key("cxt_num")) { contextCount = x }
        try string("dec_att", &decoderAttention)
        try string("dec_blk", &decoderBlock)
        try string("lat_blk", &lateralBlock)
        try string("squeeze_block", &squeezeBlock)
        try bool("dec_ipt", &decoderInput)
        try bool("dec_ipt_split", &decoderInputSplit)
        try bool("ms_supervision", &multiScaleSupervision)
        try bool("out_ref", &outputReference)
        if let x = try c.decodeIfPresent([Int].self, forKey: Key("size")) { size = x }
    }

    /// Reads a JSON file (a checkpoint's config.json or a fixture's config).
    public static func load(_ url: URL) throws -> BiRefNetConfig {
        try ConfigFile.decode(BiRefNetConfig.self, from: url)
    }

    /// The number of squeeze blocks (`BasicDecBlk_x1` -> 1).
    var squeezeBlockCount: Int? {
        let parts = squeezeBlock.components(separatedBy: "_x")
        guard parts.count == 2, parts[0] == "BasicDecBlk", let n = Int(parts[1]), n >= 1 else { return nil }
        return n
    }

    /// Throws naming the first switch this port does not implement (it implements the general model's path).
    public func validate() throws {
        func require(_ ok: Bool, _ what: String) throws { if !ok { throw BiRefNetError.unsupportedConfig(what) } }
        try require(backbone.hasPrefix("swin_v1"), "bb '\(backbone)' (only swin_v1_* backbones)")
        try require(multiScaleInput == "cat", "mul_scl_ipt '\(multiScaleInput)' (only 'cat')")
        try require((0...3).contains(contextCount), "cxt_num \(contextCount) (0...3)")
        try require(decoderAttention == "ASPPDeformable", "dec_att '\(decoderAttention)' (only 'ASPPDeformable')")
        try require(decoderBlock == "BasicDecBlk", "dec_blk '\(decoderBlock)' (only 'BasicDecBlk')")
        try require(lateralBlock == "BasicLatBlk", "lat_blk '\(lateralBlock)' (only 'BasicLatBlk')")
        try require(squeezeBlockCount != nil, "squeeze_block '\(squeezeBlock)' (only 'BasicDecBlk_x<n>')")
        try require(decoderInput && decoderInputSplit, "dec_ipt/dec_ipt_split must both be true")
        try require(multiScaleSupervision && outputReference, "ms_supervision/out_ref must both be true")
        if let size { try require(size.count == 2 && size.allSatisfy { $0 > 0 && $0 % 32 == 0 }, "size \(size)") }
    }

    /// Model input (width, height): `size`, else 1024 × 1024.
    public var inputSize: (width: Int, height: Int) {
        guard let size, size.count == 2 else { return (1024, 1024) }
        return (size[0], size[1])
    }
}

// MARK: - building blocks

/// Loads a 2-d convolution whose input width is known from the data flow; the output width comes from the weight.
private func loadConv(_ w: WeightLoader, inChannels: Int, outChannels: Int? = nil, kernel: Int, padding: Int = 0,
              bias: Bool = true) throws -> Conv {
    let expected = [outChannels ?? -1, inChannels, kernel, kernel]
    guard let shape = w.shape("weight") else { throw WeightError.missing(w.key("weight"), expected: expected) }
    guard shape.count == 4, zip(expected, shape).allSatisfy({ $0 == -1 || $0 == $1 }) else {
        throw WeightError.shapeMismatch(w.key("weight"), expected: expected, found: shape)
    }
    return try Conv(w, spatialDims: 2, inChannels: inChannels, outChannels: shape[0], kernel: [kernel],
                    padding: [padding], bias: bias)
}

/// `DeformableConv2d` (models/modules/deform_conv.py): offsets and a 2·sigmoid modulation mask predicted by
/// two k×k convolutions, then `deform_conv2d` with `regular_conv.weight`, padding k/2.
struct DeformableConvBlock {
    let path: String
    let kernel: Int
    let offsetConv: Conv
    let modulatorConv: Conv
    let weight: Tensor
    let bias: Tensor?

    init(_ w: WeightLoader, inChannels: Int, outChannels: Int? = nil) throws {
        path = w.prefix
        let regular = w.pp("regular_conv")
        guard let shape = regular.shape("weight") else {
            throw WeightError.missing(regular.key("weight"), expected: [outChannels ?? -1, inChannels, -1, -1])
        }
        guard shape.count == 4, shape[1] == inChannels, shape[2] == shape[3], shape[2] % 2 == 1,
              outChannels == nil || shape[0] == outChannels else {
            throw WeightError.shapeMismatch(regular.key("weight"), expected: [outChannels ?? -1, inChannels, -1, -1], found: shape)
        }
        kernel = shape[2]
        weight = try regular.tensor("weight", shape: shape)
        bias = try regular.optionalTensor("bias", shape: [shape[0]])
        offsetConv = try loadConv(w.pp("offset_conv"), inChannels: inChannels, outChannels: 2 * kernel * kernel,
                                  kernel: kernel, padding: kernel / 2)
        modulatorConv = try loadConv(w.pp("modulator_conv"), inChannels: inChannels, outChannels: kernel * kernel,
                                     kernel: kernel, padding: kernel / 2)
    }

    var outChannels: Int { weight.size(0) }

    func callAsFunction(_ x: Tensor, trace: BiRefNetTrace?) throws -> Tensor {
        let offset = try offsetConv(x)
        let modulatorLogits = try modulatorConv(x)
        let y = try DeformConv2d.apply(input: x, offset: offset, mask: modulatorLogits.sigmoid() * 2.0, weight: weight,
                                       bias: bias, padding: (kernel / 2, kernel / 2))
        if let trace {
            trace("\(path).offset_conv:out", offset)
            trace("\(path).modulator_conv:out", modulatorLogits)
            trace("\(path):out", y)
        }
        return y
    }
}

/// `ASPPDeformable`: deformable branches `aspp1` and `aspp_deforms.*` (each conv -> BN -> ReLU), a global
/// average branch broadcast back, concatenated in that order, then 1×1 conv -> BN -> ReLU.
struct ASPPDeformable {
    let path: String
    let branches: [(conv: DeformableConvBlock, norm: BatchNorm)]
    let poolConv: Conv
    let poolNorm: BatchNorm
    let projection: Conv
    let projectionNorm: BatchNorm

    init(_ w: WeightLoader, channels: Int) throws {
        path = w.prefix
        func branch(_ b: WeightLoader, planes: Int?) throws -> (conv: DeformableConvBlock, norm: BatchNorm) {
            let conv = try DeformableConvBlock(b.pp("atrous_conv"), inChannels: channels, outChannels: planes)
            return (conv, try BatchNorm(b.pp("bn"), channels: conv.outChannels))
        }
        var branches = [try branch(w.pp("aspp1"), planes: nil)]
        let planes = branches[0].conv.outChannels
        while w.contains("aspp_deforms.\(branches.count - 1).atrous_conv.regular_conv.weight") {
            branches.append(try branch(w.pp("aspp_deforms").pp(branches.count - 1), planes: planes))
        }
        self.branches = branches
        poolConv = try loadConv(w.pp("global_avg_pool").pp(1), inChannels: channels, outChannels: planes, kernel: 1, bias: false)
        poolNorm = try BatchNorm(w.pp("global_avg_pool").pp(2), channels: planes)
        projection = try loadConv(w.pp("conv1"), inChannels: planes * (branches.count + 1), outChannels: channels,
                                  kernel: 1, bias: false)
        projectionNorm = try BatchNorm(w.pp("bn1"), channels: channels)
    }

    func callAsFunction(_ x: Tensor, trace: BiRefNetTrace?) throws -> Tensor {
        var parts = try branches.map { try $0.norm($0.conv(x, trace: trace)).relu() }
        let pooled = try poolNorm(poolConv(F.adaptiveAvgPool(x, outputSize: [1, 1]))).relu()
        // Bilinear resizing of a 1×1 map (align_corners=True) is a broadcast.
        parts.append(try pooled.expand([x.size(0), pooled.size(1), x.size(2), x.size(3)]))
        let y = try projectionNorm(projection(Tensor.cat(parts, dim: 1))).relu()
        trace?("\(path):out", y)
        return y
    }
}

/// `BasicDecBlk`: conv3×3 -> BN -> ReLU -> ASPPDeformable -> conv3×3 -> BN (no final activation).
struct BasicDecoderBlock {
    let path: String
    let convIn: Conv
    let normIn: BatchNorm
    let attention: ASPPDeformable
    let convOut: Conv
    let normOut: BatchNorm

    init(_ w: WeightLoader, inChannels: Int, outChannels: Int? = nil) throws {
        path = w.prefix
        convIn = try loadConv(w.pp("conv_in"), inChannels: inChannels, kernel: 3, padding: 1)
        let inter = convIn.outChannels
        normIn = try BatchNorm(w.pp("bn_in"), channels: inter)
        attention = try ASPPDeformable(w.pp("dec_att"), channels: inter)
        convOut = try loadConv(w.pp("conv_out"), inChannels: inter, outChannels: outChannels, kernel: 3, padding: 1)
        normOut = try BatchNorm(w.pp("bn_out"), channels: convOut.outChannels)
    }

    var inChannels: Int { convIn.inChannels }
    var outChannels: Int { convOut.outChannels }

    func callAsFunction(_ x: Tensor, trace: BiRefNetTrace?) throws -> Tensor {
        let h = try attention(normIn(convIn(x)).relu(), trace: trace)
        let y = try normOut(convOut(h))
        trace?("\(path):out", y)
        return y
    }
}

/// `SimpleConvs` (decoder input blocks `ipt_blk*`): conv3×3 -> conv3×3, no activation between.
struct SimpleConvs {
    let path: String
    let conv1: Conv
    let convOut: Conv

    init(_ w: WeightLoader, inChannels: Int) throws {
        path = w.prefix
        conv1 = try loadConv(w.pp("conv1"), inChannels: inChannels, kernel: 3, padding: 1)
        convOut = try loadConv(w.pp("conv_out"), inChannels: conv1.outChannels, kernel: 3, padding: 1)
    }

    var inChannels: Int { conv1.inChannels }
    var outChannels: Int { convOut.outChannels }

    func callAsFunction(_ x: Tensor, trace: BiRefNetTrace?) throws -> Tensor {
        let y = try convOut(conv1(x))
        if let trace {
            trace("\(path):in", x)
            trace("\(path):out", y)
        }
        return y
    }
}

/// Gradient attention of the decoder (`gdt_convs_k` conv3×3 -> BN -> ReLU, then `gdt_convs_attn_k` 1×1 to one
/// channel): p is multiplied by the sigmoid of the result.
struct GradientAttention {
    let attnPath: String
    let conv: Conv
    let norm: BatchNorm?
    let attention: Conv

    init(features w: WeightLoader, attention a: WeightLoader, inChannels: Int) throws {
        attnPath = a.prefix
        conv = try loadConv(w.pp(0), inChannels: inChannels, kernel: 3, padding: 1)
        // config.batch_size > 1 puts a BatchNorm2d here, otherwise Identity; the weights say which.
        norm = w.pp(1).contains("running_mean") ? try BatchNorm(w.pp(1), channels: conv.outChannels) : nil
        attention = try loadConv(a.pp(0), inChannels: conv.outChannels, outChannels: 1, kernel: 1)
    }

    func gate(_ p: Tensor, trace: BiRefNetTrace?) throws -> Tensor {
        var h = try conv(p)
        if let norm { h = try norm(h) }
        let logits = try attention(h.relu())
        trace?("\(attnPath):out", logits)
        return try p * logits.sigmoid()
    }
}

/// Cuts the image into a grid of tiles the size of `height` × `width` and stacks them as channels
/// (`rearrange(x, 'b c (hg h) (wg w) -> b (c hg wg) h w')`): channel c·hg·wg + gy·wg + gx holds tile (gy, gx).
private func imageTiles(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
    let (b, c, h, w) = (x.size(0), x.size(1), x.size(2), x.size(3))
    guard h % height == 0, w % width == 0 else {
        throw BiRefNetError.badInput("image \(h)x\(w) does not split into tiles of \(height)x\(width)")
    }
    let (gh, gw) = (h / height, w / width)
    if gh == 1 && gw == 1 { return x }
    return try x.view([b, c, gh, height, gw, width]).permute([0, 1, 2, 4, 3, 5]).reshape([b, c * gh * gw, height, width])
}

/// Bilinear resize (align_corners=True) to `ref`'s spatial size; the identity when the sizes already agree.
private func resized(_ x: Tensor, like ref: Tensor) throws -> Tensor {
    let size = [ref.size(2), ref.size(3)]
    if [x.size(2), x.size(3)] == size { return x }
    return try F.interpolate(x, size: size, mode: .bilinear, alignCorners: true)
}

// MARK: - decoder

/// The BiRefNet decoder (`decoder.*`): four BasicDecBlks from stride 32 up to stride 4, each fed image tiles
/// (`ipt_blk5..2`), lateral 1×1 convs from the encoder, gradient-attention gating of p4..p2, and the final
/// 1×1 conv over the full-size features plus `ipt_blk1` of the image.
public struct BiRefNetDecoder {
    /// Image tile size (in pixels) fed to `ipt_blk5`, `ipt_blk4`, ..., `ipt_blk1`.
    static let tileStrides = [32, 16, 8, 4, 1]
    let inputBlocks: [SimpleConvs]
    let blocks: [BasicDecoderBlock]
    let laterals: [Conv]
    let gates: [GradientAttention]
    let output: Conv
    let lateralPaths: [String]

    /// - topChannels: channels of the squeezed x4; skipChannels: channels of x1, x2, x3.
    init(_ w: WeightLoader, topChannels: Int, skipChannels: [Int]) throws {
        inputBlocks = try zip([5, 4, 3, 2, 1], BiRefNetDecoder.tileStrides).map { level, stride in
            try SimpleConvs(w.pp("ipt_blk\(level)"), inChannels: 3 * stride * stride)
        }
        var blocks: [BasicDecoderBlock] = []
        var laterals: [Conv] = []
        var gates: [GradientAttention] = []
        var channels = topChannels
        for (i, level) in [4, 3, 2, 1].enumerated() {
            let block = try BasicDecoderBlock(w.pp("decoder_block\(level)"),
                                              inChannels: channels + inputBlocks[i].outChannels)
            blocks.append(block)
            if level > 1 {
                gates.append(try GradientAttention(features: w.pp("gdt_convs_\(level)"), attention: w.pp("gdt_convs_attn_\(level)"),
                                                   inChannels: block.outChannels))
                laterals.append(try loadConv(w.pp("lateral_block\(level)").pp("conv"), inChannels: skipChannels[2 - i],
                                             outChannels: block.outChannels, kernel: 1))
            }
            channels = block.outChannels
        }
        self.blocks = blocks
        self.laterals = laterals
        self.gates = gates
        lateralPaths = [4, 3, 2].map { w.pp("lateral_block\($0)").prefix }
        output = try loadConv(w.pp("conv_out1").pp(0), inChannels: channels + inputBlocks[4].outChannels,
                              outChannels: 1, kernel: 1)
    }

    /// image: the normalised input [B, 3, H, W]; features: x1, x2, x3 (strides 4, 8, 16) and the squeezed x4.
    /// Returns the logits [B, 1, H, W].
    public func callAsFunction(image: Tensor, features: [Tensor], trace: BiRefNetTrace? = nil) throws -> Tensor {
        guard features.count == 4 else { throw BiRefNetError.badInput("decoder needs x1..x4, got \(features.count) maps") }
        func withTiles(_ p: Tensor, _ level: Int) throws -> Tensor {
            let block = inputBlocks[level]
            let tiles = try imageTiles(image, height: p.size(2), width: p.size(3))
            guard tiles.size(1) == block.inChannels else {
                throw BiRefNetError.badInput("image \(image.size(2))x\(image.size(3)) gives \(tiles.size(1)) tile channels at "
                    + "\(p.size(2))x\(p.size(3)), \(block.path) expects \(block.inChannels) (sizes must be multiples of 32)")
            }
            return try Tensor.cat([p, block(tiles, trace: trace)], dim: 1)
        }
        var p = features[3]
        for level in 0..<4 {
            p = try blocks[level](withTiles(p, level), trace: trace)
            if level < 3 {
                p = try gates[level].gate(p, trace: trace)
                let skip = features[2 - level]
                let lateral = try laterals[level](skip)
                trace?("\(lateralPaths[level]):out", lateral)
                p = try resized(p, like: skip) + lateral
            }
        }
        return try output(withTiles(resized(p, like: image), 4))
    }
}

// MARK: - model

/// BiRefNet (ZhengPeng7/BiRefNet, "general" model: Swin-L backbone, mul_scl_ipt 'cat', ASPPDeformable decoder)
/// loaded from the official checkpoint keys (`bb.*`, `squeeze_module.*`, `decoder.*`).
/// `forward` returns the logits, `predict` the sigmoid mask; inputs are ImageNet-normalised [B, 3, H, W]
/// with H and W multiples of 32.
public final class BiRefNet {
    public let config: BiRefNetConfig
    public let backbone: SwinTransformer
    let squeezeBlocks: [BasicDecoderBlock]
    public let decoder: BiRefNetDecoder
    public let device: Device

    /// Keys of the checkpoint that inference does not read (multi-scale supervision and gradient prediction heads).
    static let trainingOnlyPrefixes = ["decoder.conv_ms_spvn_", "decoder.gdt_convs_pred_"]

    public init(_ w: WeightLoader, config: BiRefNetConfig = BiRefNetConfig()) throws {
        try config.validate()
        self.config = config
        device = w.device
        backbone = try SwinTransformer(w.pp("bb"))
        guard backbone.stageChannels.count == 4 else {
            throw BiRefNetError.unsupportedConfig("the backbone has \(backbone.stageChannels.count) stages, BiRefNet needs 4")
        }
        let encoderChannels = backbone.stageChannels.map { 2 * $0 }  // 'cat' doubles every stage
        var channels = encoderChannels[3] + encoderChannels[0..<3].suffix(config.contextCount).reduce(0, +)
        var squeeze: [BasicDecoderBlock] = []
        for i in 0..<(config.squeezeBlockCount ?? 1) {
            let block = try BasicDecoderBlock(w.pp("squeeze_module").pp(i), inChannels: channels)
            squeeze.append(block)
            channels = block.outChannels
        }
        squeezeBlocks = squeeze
        decoder = try BiRefNetDecoder(w.pp("decoder"), topChannels: channels, skipChannels: Array(encoderChannels[0..<3]))
        w.ignore(w.source.keys.filter { key in BiRefNet.trainingOnlyPrefixes.contains { key.hasPrefix($0) } })
        try w.checkAllUsed()
    }

    /// Loads a Hugging Face model folder (`model.safetensors` + `config.json`) or a `.safetensors` file.
    /// `config` overrides the folder's config.json. Floating weights are cast to `dtype` (nil keeps them).
    public static func load(_ url: URL, config: BiRefNetConfig? = nil, device: Device = .cpu,
                            dtype: DType? = .float32) throws -> BiRefNet {
        var resolved = config
        var isDirectory: ObjCBool = false
        if resolved == nil, FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            let json = url.appendingPathComponent("config.json")
            if FileManager.default.fileExists(atPath: json.path) { resolved = try BiRefNetConfig.load(json) }
        }
        let weights = try SafeTensors.open(url)
        return try BiRefNet(WeightLoader(weights, device: device, dtype: dtype), config: resolved ?? BiRefNetConfig())
    }

    /// The floating dtype the model computes in (that of its weights).
    public var dtype: DType { backbone.patchProjection.weight.dtype }

    /// Input sizes must be multiples of this (32: the decoder's coarsest image tiles).
    public var sizeMultiple: Int { backbone.patchSize * 8 }

    /// x1..x4 of `forward_enc`: both backbone passes concatenated per stage, x4 preceded by the resized context
    /// maps. x must already be on the model's device and dtype.
    public func encode(_ x: Tensor, trace: BiRefNetTrace? = nil) throws -> [Tensor] {
        let full = try backbone(x)
        let half = try F.interpolate(x, size: [x.size(2) / 2, x.size(3) / 2], mode: .bilinear, alignCorners: true)
        let halfOutputs = try backbone(half)
        if let trace {
            for (i, t) in full.enumerated() { trace("bb:out\(i)", t) }
            trace("bb[half]:in", half)
            for (i, t) in halfOutputs.enumerated() { trace("bb[half]:out\(i)", t) }
        }
        var features = try zip(full, halfOutputs).map { try Tensor.cat([$0, resized($1, like: $0)], dim: 1) }
        let context = try features[0..<3].suffix(config.contextCount).map { try resized($0, like: features[3]) }
        if !context.isEmpty { features[3] = try Tensor.cat(context + [features[3]], dim: 1) }
        if let trace { for (i, t) in features.enumerated() { trace("forward_enc:x\(i + 1)", t) } }
        return features
    }

    /// The squeeze block(s) on x4.
    public func squeeze(_ x4: Tensor, trace: BiRefNetTrace? = nil) throws -> Tensor {
        var h = x4
        for block in squeezeBlocks { h = try block(h, trace: trace) }
        trace?("squeeze_module:out", h)
        return h
    }

    /// Checks the input's shape and moves it to the model's device and dtype.
    public func prepare(_ x: Tensor) throws -> Tensor {
        guard x.ndim == 4, x.size(1) == 3 else { throw BiRefNetError.badInput("input \(x.shape) must be [B, 3, H, W]") }
        let m = sizeMultiple
        guard x.size(2) >= m, x.size(3) >= m, x.size(2) % m == 0, x.size(3) % m == 0 else {
            throw BiRefNetError.badInput("input size \(x.size(2))x\(x.size(3)) must be positive multiples of \(m)")
        }
        return x.device == device && x.dtype == dtype ? x : try x.to(device, dtype: dtype)
    }

    /// Logits [B, 1, H, W] (`model(x)[-1]` in eval).
    public func forward(_ input: Tensor, trace: BiRefNetTrace? = nil) throws -> Tensor {
        let x = try prepare(input)
        var features = try encode(x, trace: trace)
        features[3] = try squeeze(features[3], trace: trace)
        let logits = try decoder(image: x, features: features, trace: trace)
        trace?("logits", logits)
        return logits
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try forward(x) }

    /// The foreground probability [B, 1, H, W] (sigmoid of the logits).
    public func predict(_ x: Tensor) throws -> Tensor { try forward(x).sigmoid() }
}
