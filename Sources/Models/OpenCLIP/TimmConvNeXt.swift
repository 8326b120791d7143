import NN
import TorchShim

/// timm `ConvNeXt` (pytorch-image-models timm/models/convnext.py) in the layout of convnext_tiny..xlarge
/// (`conv_mlp=False`: channels-last Linear MLP in each block), as open_clip's `TimmModel` keeps it with
/// `timm_pool: ""`: the classifier removed, timm's own head (global average pool, then LayerNorm2d) kept.
///
///     stem    = LayerNorm2d(Conv4x4/4(x))
///     stage i = [LayerNorm2d -> Conv2x2/2 when i > 0] -> blocks
///     block   = x + gamma * fc2(GELU(fc1(LN(dwconv7x7(x)))))     (LN and MLP channels-last)
///     output  = LayerNorm2d(avgpool(stages(stem(x))))             [B, C_last]
///
/// Keys: `stem.{0,1}`, `stages.N.downsample.{0,1}`, `stages.N.blocks.M.{conv_dw,norm,mlp.fc1,mlp.fc2,gamma}`,
/// `head.norm`. Every LayerNorm uses eps 1e-6.
public final class TimmConvNeXt {
    public struct Config: Sendable, Equatable {
        public var depths: [Int]
        public var dims: [Int]
        public var inChannels: Int
        public var normEps: Double

        public init(depths: [Int], dims: [Int], inChannels: Int = 3, normEps: Double = 1e-6) {
            self.depths = depths
            self.dims = dims
            self.inChannels = inChannels
            self.normEps = normEps
        }

        /// timm's registered `convnext_*` models with the channels-last block layout. `depths`/`dims`, when
        /// given (open_clip's `timm_model_kwargs`), replace the variant's own.
        public static func timm(_ name: String, depths: [Int]? = nil, dims: [Int]? = nil) throws -> Config {
            let variants: [String: (depths: [Int], dims: [Int])] = [
                "convnext_tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
                "convnext_small": ([3, 3, 27, 3], [96, 192, 384, 768]),
                "convnext_base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
                "convnext_large": ([3, 3, 27, 3], [192, 384, 768, 1536]),
                "convnext_xlarge": ([3, 3, 27, 3], [256, 512, 1024, 2048]),
            ]
            let base = name.split(separator: ".").first.map(String.init) ?? name
            guard let variant = variants[base] else {
                throw WeightError.badConfig("timm model '\(name)' is not a supported ConvNeXt variant "
                    + "(supported: \(variants.keys.sorted().joined(separator: ", ")); the conv_mlp variants "
                    + "atto/femto/pico/nano have another block layout)")
            }
            let config = Config(depths: depths ?? variant.depths, dims: dims ?? variant.dims)
            guard config.depths.count == 4, config.dims.count == 4,
                  config.depths.allSatisfy({ $0 > 0 }), config.dims.allSatisfy({ $0 > 0 }) else {
                throw WeightError.badConfig("ConvNeXt needs 4 positive depths and dims, got \(config.depths) / \(config.dims)")
            }
            return config
        }

        public var numFeatures: Int { dims[dims.count - 1] }
    }

    struct Block {
        let convDW: CastConv2d
        let norm: Fp32LayerNorm
        let fc1: CastLinear
        let fc2: CastLinear
        let gamma: Tensor

        init(_ w: WeightLoader, dim: Int, eps: Double) throws {
            convDW = try CastConv2d(w.pp("conv_dw"), inChannels: dim, outChannels: dim, kernel: 7, padding: 3,
                                    groups: dim)
            norm = try Fp32LayerNorm(w.pp("norm"), dim: dim, eps: eps)
            fc1 = try CastLinear(w.pp("mlp").pp("fc1"), inFeatures: dim, outFeatures: 4 * dim)
            fc2 = try CastLinear(w.pp("mlp").pp("fc2"), inFeatures: 4 * dim, outFeatures: dim)
            gamma = try fp32Loader(w).tensor("gamma", shape: [dim])
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let channelsLast = try convDW(x).permute([0, 2, 3, 1])
            let branch = try fc2(fc1(norm(channelsLast)).gelu()) * gamma
            return try branch.permute([0, 3, 1, 2]) + x
        }
    }

    struct Stage {
        let downsampleNorm: Fp32LayerNorm?
        let downsampleConv: CastConv2d?
        let blocks: [Block]

        init(_ w: WeightLoader, inDim: Int, outDim: Int, depth: Int, downsample: Bool, eps: Double) throws {
            if downsample {
                downsampleNorm = try Fp32LayerNorm(w.pp("downsample").pp(0), dim: inDim, eps: eps)
                downsampleConv = try CastConv2d(w.pp("downsample").pp(1), inChannels: inDim, outChannels: outDim,
                                                kernel: 2, stride: 2)
            } else {
                downsampleNorm = nil
                downsampleConv = nil
            }
            blocks = try (0..<depth).map { try Block(w.pp("blocks").pp($0), dim: outDim, eps: eps) }
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            var h = x
            if let downsampleNorm, let downsampleConv { h = try downsampleConv(downsampleNorm.channelsFirst(h)) }
            for block in blocks { h = try block(h) }
            return h
        }
    }

    public let config: Config
    let stem: CastConv2d
    let stemNorm: Fp32LayerNorm
    let stages: [Stage]
    let headNorm: Fp32LayerNorm

    public init(config: Config, weights w: WeightLoader) throws {
        self.config = config
        let eps = config.normEps
        stem = try CastConv2d(w.pp("stem").pp(0), inChannels: config.inChannels, outChannels: config.dims[0],
                              kernel: 4, stride: 4)
        stemNorm = try Fp32LayerNorm(w.pp("stem").pp(1), dim: config.dims[0], eps: eps)
        var stages: [Stage] = []
        var previous = config.dims[0]
        for i in 0..<config.depths.count {
            stages.append(try Stage(w.pp("stages").pp(i), inDim: previous, outDim: config.dims[i],
                                    depth: config.depths[i], downsample: i > 0, eps: eps))
            previous = config.dims[i]
        }
        self.stages = stages
        headNorm = try Fp32LayerNorm(w.pp("head").pp("norm"), dim: config.numFeatures, eps: eps)
    }

    /// stem and stages: [B, 3, H, W] -> [B, C_last, H/32, W/32] (taps `stem`, `stage0`...`stage3`).
    public func forwardFeatures(_ x: Tensor, tap: TensorTap? = nil) throws -> Tensor {
        guard x.ndim == 4, x.size(1) == config.inChannels else {
            throw WeightError.badConfig("ConvNeXt expects images [B, \(config.inChannels), H, W], got \(x.shape)")
        }
        guard x.size(2) >= 32, x.size(3) >= 32 else {
            throw WeightError.badConfig("ConvNeXt input \(x.size(2))x\(x.size(3)) is smaller than its 32 px stride")
        }
        var h = try stemNorm.channelsFirst(stem(x))
        try tap?("stem", h)
        for (i, stage) in stages.enumerated() {
            h = try stage(h)
            try tap?("stage\(i)", h)
        }
        return h
    }

    /// timm's head with the classifier removed: global average pool, then LayerNorm2d -> [B, C_last].
    public func forwardHead(_ features: Tensor) throws -> Tensor {
        let pooled = try features.mean([2, 3], keepDim: true)
        return try headNorm.channelsFirst(pooled).flatten(1)
    }

    public func callAsFunction(_ x: Tensor, tap: TensorTap? = nil) throws -> Tensor {
        let pooled = try forwardHead(forwardFeatures(x, tap: tap))
        try tap?("trunk", pooled)
        return pooled
    }

    /// Every key and shape this structure loads (for real-size checks and random-weight benchmarks).
    public static func expectedTensors(config c: Config, prefix: String = "") -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        func add(_ key: String, _ shape: [Int]) { out[prefix.isEmpty ? key : "\(prefix).\(key)"] = shape }
        add("stem.0.weight", [c.dims[0], c.inChannels, 4, 4])
        add("stem.0.bias", [c.dims[0]])
        add("stem.1.weight", [c.dims[0]])
        add("stem.1.bias", [c.dims[0]])
        for i in 0..<c.depths.count {
            let dim = c.dims[i]
            if i > 0 {
                let previous = c.dims[i - 1]
                add("stages.\(i).downsample.0.weight", [previous])
                add("stages.\(i).downsample.0.bias", [previous])
                add("stages.\(i).downsample.1.weight", [dim, previous, 2, 2])
                add("stages.\(i).downsample.1.bias", [dim])
            }
            for j in 0..<c.depths[i] {
                let b = "stages.\(i).blocks.\(j)"
                add("\(b).conv_dw.weight", [dim, 1, 7, 7])
                add("\(b).conv_dw.bias", [dim])
                add("\(b).norm.weight", [dim])
                add("\(b).norm.bias", [dim])
                add("\(b).mlp.fc1.weight", [4 * dim, dim])
                add("\(b).mlp.fc1.bias", [4 * dim])
                add("\(b).mlp.fc2.weight", [dim, 4 * dim])
                add("\(b).mlp.fc2.bias", [dim])
                add("\(b).gamma", [dim])
            }
        }
        add("head.norm.weight", [c.numFeatures])
        add("head.norm.bias", [c.numFeatures])
        return out
    }
}
