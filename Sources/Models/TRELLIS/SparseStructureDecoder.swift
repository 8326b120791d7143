import Foundation
import NN
import TorchShim

/// TRELLIS `ChannelLayerNorm32`: LayerNorm over dim 1 of [B, C, ...] in fp32 (affine, eps 1e-5), x's dtype out.
struct ChannelLayerNorm {
    let norm: LayerNorm

    init(_ w: WeightLoader, channels: Int) throws {
        norm = try LayerNorm(w.with(dtype: .float32), dim: channels, eps: 1e-5)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let n = x.ndim
        let channelsLast = try x.cast(.float32).permute([0] + Array(2..<n) + [1])
        let y = try norm(channelsLast).cast(x.dtype)
        return try y.permute([0, n - 1] + Array(1..<(n - 1))).contiguous()
    }
}

/// 3x3x3 residual block: h = conv1(SiLU(norm1(x))); h = conv2(SiLU(norm2(h))); h + skip(x).
/// Keys: `norm1`, `norm2`, `conv1`, `conv2`, `skip_connection` (1x1x1 conv, only when channels change).
struct ResBlock3d {
    let norm1: ChannelLayerNorm
    let norm2: ChannelLayerNorm
    let conv1: Conv
    let conv2: Conv
    let skip: Conv?

    init(_ w: WeightLoader, channels: Int, outChannels: Int) throws {
        norm1 = try ChannelLayerNorm(w.pp("norm1"), channels: channels)
        norm2 = try ChannelLayerNorm(w.pp("norm2"), channels: outChannels)
        conv1 = try Conv(w.pp("conv1"), spatialDims: 3, inChannels: channels, outChannels: outChannels, kernel: [3],
                         padding: [1])
        conv2 = try Conv(w.pp("conv2"), spatialDims: 3, inChannels: outChannels, outChannels: outChannels,
                         kernel: [3], padding: [1])
        skip = channels == outChannels ? nil
            : try Conv(w.pp("skip_connection"), spatialDims: 3, inChannels: channels, outChannels: outChannels,
                       kernel: [1])
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try conv1(norm1(x).silu())
        h = try conv2(norm2(h).silu())
        return try h + (skip.map { try $0(x) } ?? x)
    }
}

/// Conv to 8·C_out channels, then the 3-D pixel shuffle out[c, 2x+i, 2y+j, 2z+k] = in[c·8 + 4i + 2j + k, x, y, z].
/// Key: `conv`.
struct UpsampleBlock3d {
    let conv: Conv
    let outChannels: Int

    init(_ w: WeightLoader, inChannels: Int, outChannels: Int) throws {
        conv = try Conv(w.pp("conv"), spatialDims: 3, inChannels: inChannels, outChannels: outChannels * 8,
                        kernel: [3], padding: [1])
        self.outChannels = outChannels
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let h = try conv(x)
        let (b, sx, sy, sz) = (h.size(0), h.size(2), h.size(3), h.size(4))
        return try h.reshape([b, outChannels, 2, 2, 2, sx, sy, sz]).permute([0, 1, 5, 2, 6, 3, 7, 4])
            .reshape([b, outChannels, sx * 2, sy * 2, sz * 2])
    }
}

/// TRELLIS stage-1 decoder (`SparseStructureDecoder`, trellis/models/sparse_structure_vae.py): the dense 3-D conv
/// decoder from the 16^3 latent to 64^3 occupancy logits.
///
///     h = input_layer(x)                                     fp32
///     h = middle_block(h); h = blocks(h)                     compute dtype (ResBlock3d / UpsampleBlock3d)
///     logits = out_layer(h) = conv(SiLU(ChannelLayerNorm(h)))  fp32
public final class SparseStructureDecoder {
    public struct Config: Decodable, Sendable {
        public var outChannels: Int
        public var latentChannels: Int
        public var numResBlocks: Int
        public var channels: [Int]
        public var numResBlocksMiddle: Int?
        public var normType: String?
        public var useFp16: Bool?

        enum CodingKeys: String, CodingKey {
            case outChannels = "out_channels", latentChannels = "latent_channels", numResBlocks = "num_res_blocks",
                 channels, numResBlocksMiddle = "num_res_blocks_middle", normType = "norm_type", useFp16 = "use_fp16"
        }

        public init(outChannels: Int, latentChannels: Int, numResBlocks: Int, channels: [Int],
                    numResBlocksMiddle: Int? = 2, normType: String? = "layer", useFp16: Bool? = false) {
            self.outChannels = outChannels
            self.latentChannels = latentChannels
            self.numResBlocks = numResBlocks
            self.channels = channels
            self.numResBlocksMiddle = numResBlocksMiddle
            self.normType = normType
            self.useFp16 = useFp16
        }
    }

    enum Block {
        case res(ResBlock3d)
        case upsample(UpsampleBlock3d)

        var weightDType: DType {
            switch self {
            case .res(let b): return b.conv1.weight.dtype
            case .upsample(let b): return b.conv.weight.dtype
            }
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            switch self {
            case .res(let b): return try b(x)
            case .upsample(let b): return try b(x)
            }
        }
    }

    public let config: Config
    let inputLayer: Conv
    let middleBlock: [ResBlock3d]
    let blocks: [Block]
    let outNorm: ChannelLayerNorm
    let outConv: Conv
    /// The compute dtype of the middle and upsampling blocks.
    public let dtype: DType

    public init(config: Config, weights w: WeightLoader) throws {
        let c = config
        guard let first = c.channels.first, let last = c.channels.last else {
            throw TrellisError.unsupportedConfig("channels is empty")
        }
        guard (c.normType ?? "layer") == "layer" else {
            throw TrellisError.unsupportedConfig("norm_type '\(c.normType ?? "")' (only 'layer' is implemented)")
        }
        self.config = c
        let w32 = w.with(dtype: .float32)
        inputLayer = try Conv(w32.pp("input_layer"), spatialDims: 3, inChannels: c.latentChannels, outChannels: first,
                              kernel: [3], padding: [1])
        middleBlock = try (0..<(c.numResBlocksMiddle ?? 2)).map {
            try ResBlock3d(w.pp("middle_block").pp($0), channels: first, outChannels: first)
        }
        var blocks: [Block] = []
        for (i, ch) in c.channels.enumerated() {
            for _ in 0..<c.numResBlocks {
                blocks.append(.res(try ResBlock3d(w.pp("blocks").pp(blocks.count), channels: ch, outChannels: ch)))
            }
            if i < c.channels.count - 1 {
                blocks.append(.upsample(try UpsampleBlock3d(w.pp("blocks").pp(blocks.count), inChannels: ch,
                                                            outChannels: c.channels[i + 1])))
            }
        }
        self.blocks = blocks
        outNorm = try ChannelLayerNorm(w32.pp("out_layer").pp(0), channels: last)
        outConv = try Conv(w32.pp("out_layer").pp(2), spatialDims: 3, inChannels: last, outChannels: c.outChannels,
                           kernel: [3], padding: [1])
        dtype = middleBlock.first?.conv1.weight.dtype ?? blocks.first?.weightDType ?? .float32
    }

    public convenience init(args: [String: Any], weights: WeightLoader) throws {
        let data = try JSONSerialization.data(withJSONObject: args)
        try self.init(config: JSONDecoder().decode(Config.self, from: data), weights: weights)
    }

    /// Latent [B, latent, R, R, R] -> logits [B, out, 4R, 4R, 4R] (fp32; one upsampling per channel stage).
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.ndim == 5, x.size(1) == config.latentChannels else {
            throw TrellisError.badInput("latent has shape \(x.shape), expected [B, \(config.latentChannels), R, R, R]")
        }
        var h = try inputLayer(x.cast(.float32)).cast(dtype)
        for block in middleBlock { h = try block(h) }
        for block in blocks { h = try block(h) }
        return try outConv(outNorm(h.cast(.float32)).silu())
    }

    /// Occupied voxels of `logits` [B, 1, X, Y, Z]: int32 [N, 4] = (b, x, y, z) where logit > 0, sorted by
    /// (b, x, y, z) (`argwhere(logits > 0)[:, [0, 2, 3, 4]]`). Reads the count back to the host.
    public static func occupiedCoords(_ logits: Tensor) throws -> Tensor {
        guard logits.ndim == 5 else { throw TrellisError.badInput("logits must be [B, C, X, Y, Z], got \(logits.shape)") }
        let idx = try logits.gt(0).nonzero()                                        // [N, 5] int64
        let columns = try Tensor([Int64(0), 2, 3, 4]).to(idx.device)
        return try idx.indexSelect(1, columns).to(.int32)
    }
}
