import Foundation
import NN
import TorchShim

/// Bad input to a FLUX component (shapes, sizes, options), named in the message.
public struct FluxError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The rotary tables of FLUX (diffusers FluxPosEmbed): per position, cos and sin [S, headDim] with each
/// frequency repeated twice (interleaved real/imaginary pairs).
public struct FluxRotaryEmbedding {
    public let cos: Tensor
    public let sin: Tensor

    /// `ids` [S, n_axes] (txt ids then img ids); axis i gets `axesDims[i]` of the head dimension.
    /// The angles are computed in float64 as the reference does, then stored in float32.
    public init(ids: Tensor, axesDims: [Int], theta: Double = 10000) throws {
        guard ids.ndim == 2, ids.size(1) == axesDims.count else {
            throw FluxError("position ids must be [seq, \(axesDims.count)], got \(ids.shape)")
        }
        let positions = try ids.to(.float32)
        var cosParts: [Tensor] = [], sinParts: [Tensor] = []
        for (axis, dim) in axesDims.enumerated() {
            guard dim % 2 == 0 else { throw FluxError("RoPE axis dimension \(dim) is odd") }
            let exponents = try Tensor.arange(0, Double(dim), step: 2, dtype: .float64, device: ids.device) / Double(dim)
            let freqs = try 1.0 / Tensor.full([], value: theta, dtype: .float64, device: ids.device).pow(exponents)
            let angles = try positions.select(1, axis).to(.float64).outer(freqs)  // [S, dim/2]
            cosParts.append(try angles.cos().repeatInterleave(2, dim: 1).to(.float32))
            sinParts.append(try angles.sin().repeatInterleave(2, dim: 1).to(.float32))
        }
        cos = try Tensor.cat(cosParts, dim: -1)
        sin = try Tensor.cat(sinParts, dim: -1)
    }

    /// Rotates x [B, S, H, D] (diffusers apply_rotary_emb, use_real, unbind dim -1) in float32, back to x's dtype.
    public func apply(_ x: Tensor) throws -> Tensor {
        let shape = x.shape
        let pairs = try x.view(Array(shape.dropLast()) + [shape[3] / 2, 2]).unbind(-1)
        let rotated = try Tensor.stack([pairs[1].neg(), pairs[0]], dim: -1).flatten(3)
        let c = try cos.unsqueeze(1), s = try sin.unsqueeze(1)  // [S, 1, D] broadcasts over [B, S, H, D]
        return try (x.to(.float32) * c + rotated.to(.float32) * s).to(x.dtype)
    }
}

/// diffusers `FluxTransformer2DModel` (FLUX.1 dev/schnell MMDiT): double-stream blocks over text and image
/// tokens, then single-stream blocks over the joint sequence.
///
/// Speed-ups that keep the arithmetic of the reference: q/k/v are one GEMM per stream (weights concatenated at
/// load), the single blocks fuse q/k/v with proj_mlp, and the joint sequence stays concatenated through the
/// single blocks. With `.float8` every Linear inside the blocks (modulation included) is fp8 (see `Float8Linear`);
/// the embedders, norm_out and proj_out stay in the loader's dtype.
public final class FluxTransformer2DModel {
    public struct Config: Decodable, Sendable {
        public var patchSize: Int
        public var inChannels: Int
        public var outChannels: Int?
        public var numLayers: Int
        public var numSingleLayers: Int
        public var attentionHeadDim: Int
        public var numAttentionHeads: Int
        public var jointAttentionDim: Int
        public var pooledProjectionDim: Int
        public var guidanceEmbeds: Bool
        public var axesDimsRope: [Int]

        enum CodingKeys: String, CodingKey {
            case patchSize = "patch_size", inChannels = "in_channels", outChannels = "out_channels"
            case numLayers = "num_layers", numSingleLayers = "num_single_layers"
            case attentionHeadDim = "attention_head_dim", numAttentionHeads = "num_attention_heads"
            case jointAttentionDim = "joint_attention_dim", pooledProjectionDim = "pooled_projection_dim"
            case guidanceEmbeds = "guidance_embeds", axesDimsRope = "axes_dims_rope"
        }

        /// FLUX.1-schnell.
        public init(patchSize: Int = 1, inChannels: Int = 64, outChannels: Int? = nil, numLayers: Int = 19,
                    numSingleLayers: Int = 38, attentionHeadDim: Int = 128, numAttentionHeads: Int = 24,
                    jointAttentionDim: Int = 4096, pooledProjectionDim: Int = 768, guidanceEmbeds: Bool = false,
                    axesDimsRope: [Int] = [16, 56, 56]) {
            self.patchSize = patchSize
            self.inChannels = inChannels
            self.outChannels = outChannels
            self.numLayers = numLayers
            self.numSingleLayers = numSingleLayers
            self.attentionHeadDim = attentionHeadDim
            self.numAttentionHeads = numAttentionHeads
            self.jointAttentionDim = jointAttentionDim
            self.pooledProjectionDim = pooledProjectionDim
            self.guidanceEmbeds = guidanceEmbeds
            self.axesDimsRope = axesDimsRope
        }

        public init(from decoder: Swift.Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Config()
            patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
            inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
            outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels)
            numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? d.numLayers
            numSingleLayers = try c.decodeIfPresent(Int.self, forKey: .numSingleLayers) ?? d.numSingleLayers
            attentionHeadDim = try c.decodeIfPresent(Int.self, forKey: .attentionHeadDim) ?? d.attentionHeadDim
            numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
            jointAttentionDim = try c.decodeIfPresent(Int.self, forKey: .jointAttentionDim) ?? d.jointAttentionDim
            pooledProjectionDim = try c.decodeIfPresent(Int.self, forKey: .pooledProjectionDim) ?? d.pooledProjectionDim
            guidanceEmbeds = try c.decodeIfPresent(Bool.self, forKey: .guidanceEmbeds) ?? d.guidanceEmbeds
            axesDimsRope = try c.decodeIfPresent([Int].self, forKey: .axesDimsRope) ?? d.axesDimsRope
        }

        public var innerDim: Int { numAttentionHeads * attentionHeadDim }
        public var resolvedOutChannels: Int { outChannels ?? inChannels }
        public var mlpHiddenDim: Int { innerDim * 4 }

        func validate() throws {
            guard axesDimsRope.reduce(0, +) == attentionHeadDim else {
                throw WeightError.badConfig("axes_dims_rope \(axesDimsRope) must add up to attention_head_dim \(attentionHeadDim)")
            }
            guard attentionHeadDim % 2 == 0, numAttentionHeads > 0 else {
                throw WeightError.badConfig("attention_head_dim must be even and heads positive")
            }
        }

        /// Every checkpoint key and shape of diffusers' FluxTransformer2DModel for this config.
        public func parameterShapes() -> [String: [Int]] {
            let d = innerDim, hd = attentionHeadDim, mlp = mlpHiddenDim
            var s: [String: [Int]] = [:]
            func linear(_ name: String, _ inF: Int, _ outF: Int) {
                s[name + ".weight"] = [outF, inF]
                s[name + ".bias"] = [outF]
            }
            linear("x_embedder", inChannels, d)
            linear("context_embedder", jointAttentionDim, d)
            linear("time_text_embed.timestep_embedder.linear_1", 256, d)
            linear("time_text_embed.timestep_embedder.linear_2", d, d)
            if guidanceEmbeds {
                linear("time_text_embed.guidance_embedder.linear_1", 256, d)
                linear("time_text_embed.guidance_embedder.linear_2", d, d)
            }
            linear("time_text_embed.text_embedder.linear_1", pooledProjectionDim, d)
            linear("time_text_embed.text_embedder.linear_2", d, d)
            for i in 0..<numLayers {
                let p = "transformer_blocks.\(i)."
                linear(p + "norm1.linear", d, 6 * d)
                linear(p + "norm1_context.linear", d, 6 * d)
                for n in ["to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0", "to_add_out"] {
                    linear(p + "attn." + n, d, d)
                }
                for n in ["norm_q", "norm_k", "norm_added_q", "norm_added_k"] { s[p + "attn.\(n).weight"] = [hd] }
                for ff in ["ff", "ff_context"] {
                    linear(p + ff + ".net.0.proj", d, mlp)
                    linear(p + ff + ".net.2", mlp, d)
                }
            }
            for i in 0..<numSingleLayers {
                let p = "single_transformer_blocks.\(i)."
                linear(p + "norm.linear", d, 3 * d)
                for n in ["to_q", "to_k", "to_v"] { linear(p + "attn." + n, d, d) }
                for n in ["norm_q", "norm_k"] { s[p + "attn.\(n).weight"] = [hd] }
                linear(p + "proj_mlp", d, mlp)
                linear(p + "proj_out", d + mlp, d)
            }
            linear("norm_out.linear", d, 2 * d)
            linear("proj_out", d, patchSize * patchSize * resolvedOutChannels)
            return s
        }
    }

    /// Linear -> SiLU -> Linear (diffusers TimestepEmbedding / PixArtAlphaTextProjection with silu).
    struct MLPEmbedder {
        let linear1: Linear
        let linear2: Linear

        init(_ w: WeightLoader, inFeatures: Int, dim: Int) throws {
            linear1 = try Linear(w.pp("linear_1"), inFeatures: inFeatures, outFeatures: dim)
            linear2 = try Linear(w.pp("linear_2"), inFeatures: dim, outFeatures: dim)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor { try linear2(linear1(x).silu()) }
    }

    /// Per-head RMSNorm of q and k (torch.nn.RMSNorm, eps 1e-6).
    struct HeadNorm {
        let weight: Tensor
        init(_ w: WeightLoader, dim: Int) throws { weight = try w.tensor("weight", shape: [dim]) }
        func callAsFunction(_ x: Tensor) throws -> Tensor {
            try F.rmsNorm(x, shape: [weight.size(0)], weight: weight, eps: 1e-6)
        }
    }

    /// LayerNorm without affine parameters (eps 1e-6), modulated: norm(x) * (1 + scale) + shift.
    static func modulate(_ x: Tensor, shift: Tensor, scale: Tensor) throws -> Tensor {
        let n = try F.layerNorm(x, shape: [x.size(-1)], eps: 1e-6)
        return try n * (scale.unsqueeze(1) + 1.0) + shift.unsqueeze(1)
    }

    /// FluxTransformerBlock: AdaLayerNormZero on both streams, joint attention over [txt, img], gated MLPs.
    struct DoubleBlock {
        let norm1: FluxLinear
        let norm1Context: FluxLinear
        let qkv: FluxLinear
        let addQKV: FluxLinear
        let normQ: HeadNorm, normK: HeadNorm, normAddedQ: HeadNorm, normAddedK: HeadNorm
        let toOut: FluxLinear
        let toAddOut: FluxLinear
        let ff1: FluxLinear, ff2: FluxLinear
        let ffContext1: FluxLinear, ffContext2: FluxLinear
        let heads: Int, headDim: Int

        init(_ w: WeightLoader, config c: Config, format: FluxWeightFormat) throws {
            let d = c.innerDim, hd = c.attentionHeadDim
            // The modulation Linears hold a quarter of the weights (one row per image goes through them).
            norm1 = try FluxLinear(w.pp("norm1").pp("linear"), inFeatures: d, outFeatures: 6 * d, format: format)
            norm1Context = try FluxLinear(w.pp("norm1_context").pp("linear"), inFeatures: d, outFeatures: 6 * d,
                                          format: format)
            let a = w.pp("attn")
            qkv = try FluxLinear([a.pp("to_q"), a.pp("to_k"), a.pp("to_v")], inFeatures: d, outFeatures: [d, d, d],
                                 format: format)
            addQKV = try FluxLinear([a.pp("add_q_proj"), a.pp("add_k_proj"), a.pp("add_v_proj")], inFeatures: d,
                                    outFeatures: [d, d, d], format: format)
            normQ = try HeadNorm(a.pp("norm_q"), dim: hd)
            normK = try HeadNorm(a.pp("norm_k"), dim: hd)
            normAddedQ = try HeadNorm(a.pp("norm_added_q"), dim: hd)
            normAddedK = try HeadNorm(a.pp("norm_added_k"), dim: hd)
            toOut = try FluxLinear(a.pp("to_out").pp(0), inFeatures: d, outFeatures: d, format: format)
            toAddOut = try FluxLinear(a.pp("to_add_out"), inFeatures: d, outFeatures: d, format: format)
            ff1 = try FluxLinear(w.pp("ff").pp("net").pp(0).pp("proj"), inFeatures: d, outFeatures: c.mlpHiddenDim, format: format)
            ff2 = try FluxLinear(w.pp("ff").pp("net").pp(2), inFeatures: c.mlpHiddenDim, outFeatures: d, format: format)
            ffContext1 = try FluxLinear(w.pp("ff_context").pp("net").pp(0).pp("proj"), inFeatures: d,
                                        outFeatures: c.mlpHiddenDim, format: format)
            ffContext2 = try FluxLinear(w.pp("ff_context").pp("net").pp(2), inFeatures: c.mlpHiddenDim, outFeatures: d,
                                        format: format)
            heads = c.numAttentionHeads
            headDim = hd
        }

        /// Projects a stream to per-head q, k (RMS-normed) and v, each [B, S, H, D].
        func project(_ x: Tensor, _ proj: FluxLinear, _ nq: HeadNorm, _ nk: HeadNorm) throws -> (Tensor, Tensor, Tensor) {
            let (b, s) = (x.size(0), x.size(1))
            let parts = try proj(x).view([b, s, 3, heads, headDim]).unbind(2)
            return (try nq(parts[0]), try nk(parts[1]), parts[2])
        }

        /// `act`: silu(temb), shared by every block's modulation.
        func callAsFunction(image x: Tensor, text ctx: Tensor, act: Tensor, rope: FluxRotaryEmbedding) throws
            -> (image: Tensor, text: Tensor) {
            let m = try norm1(act).chunk(6, dim: 1)  // shift, scale, gate (msa); shift, scale, gate (mlp)
            let mc = try norm1Context(act).chunk(6, dim: 1)
            let nx = try FluxTransformer2DModel.modulate(x, shift: m[0], scale: m[1])
            let nc = try FluxTransformer2DModel.modulate(ctx, shift: mc[0], scale: mc[1])

            let (qi, ki, vi) = try project(nx, qkv, normQ, normK)
            let (qt, kt, vt) = try project(nc, addQKV, normAddedQ, normAddedK)
            let q = try rope.apply(Tensor.cat([qt, qi], dim: 1))
            let k = try rope.apply(Tensor.cat([kt, ki], dim: 1))
            let v = try Tensor.cat([vt, vi], dim: 1)
            let attn = try FluxTransformer2DModel.attention(q, k, v)
            let textLength = ctx.size(1)
            let textAttn = try attn.narrow(1, start: 0, length: textLength)
            let imageAttn = try attn.narrow(1, start: textLength, length: x.size(1))

            var h = try x + m[2].unsqueeze(1) * toOut(imageAttn)
            let ffIn = try FluxTransformer2DModel.modulate(h, shift: m[3], scale: m[4])
            h = try h + m[5].unsqueeze(1) * ff2(ff1(ffIn).gelu(approximate: true))

            var c = try ctx + mc[2].unsqueeze(1) * toAddOut(textAttn)
            let ffcIn = try FluxTransformer2DModel.modulate(c, shift: mc[3], scale: mc[4])
            c = try c + mc[5].unsqueeze(1) * ffContext2(ffContext1(ffcIn).gelu(approximate: true))
            if c.dtype == .float16 { c = try c.clamp(min: -65504, max: 65504) }
            return (h, c)
        }
    }

    /// FluxSingleTransformerBlock: AdaLayerNormZeroSingle, attention and MLP in parallel from one fused
    /// projection, proj_out over their concatenation.
    struct SingleBlock {
        let norm: FluxLinear
        let qkvMLP: FluxLinear
        let normQ: HeadNorm, normK: HeadNorm
        let projOut: FluxLinear
        let heads: Int, headDim: Int, dim: Int, mlpDim: Int

        init(_ w: WeightLoader, config c: Config, format: FluxWeightFormat) throws {
            let d = c.innerDim, mlp = c.mlpHiddenDim
            norm = try FluxLinear(w.pp("norm").pp("linear"), inFeatures: d, outFeatures: 3 * d, format: format)
            let a = w.pp("attn")
            qkvMLP = try FluxLinear([a.pp("to_q"), a.pp("to_k"), a.pp("to_v"), w.pp("proj_mlp")], inFeatures: d,
                                    outFeatures: [d, d, d, mlp], format: format)
            normQ = try HeadNorm(a.pp("norm_q"), dim: c.attentionHeadDim)
            normK = try HeadNorm(a.pp("norm_k"), dim: c.attentionHeadDim)
            projOut = try FluxLinear(w.pp("proj_out"), inFeatures: d + mlp, outFeatures: d, format: format)
            heads = c.numAttentionHeads
            headDim = c.attentionHeadDim
            dim = d
            mlpDim = mlp
        }

        /// x: the joint sequence [B, txt + img, D].
        func callAsFunction(_ x: Tensor, act: Tensor, rope: FluxRotaryEmbedding) throws -> Tensor {
            let (b, s) = (x.size(0), x.size(1))
            let m = try norm(act).chunk(3, dim: 1)  // shift, scale, gate
            let nx = try FluxTransformer2DModel.modulate(x, shift: m[0], scale: m[1])
            let fused = try qkvMLP(nx).split(sizes: [3 * dim, mlpDim], dim: 2)
            let qkv = try fused[0].view([b, s, 3, heads, headDim]).unbind(2)
            let q = try rope.apply(normQ(qkv[0]))
            let k = try rope.apply(normK(qkv[1]))
            let attn = try FluxTransformer2DModel.attention(q, k, qkv[2])
            let mlp = try fused[1].gelu(approximate: true)
            var h = try x + m[2].unsqueeze(1) * projOut(Tensor.cat([attn, mlp], dim: 2))
            if h.dtype == .float16 { h = try h.clamp(min: -65504, max: 65504) }
            return h
        }
    }

    /// SDPA over [B, S, H, D] tensors, returning [B, S, H*D].
    static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor) throws -> Tensor {
        let (b, s) = (q.size(0), q.size(1))
        let o = try F.scaledDotProductAttention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return try o.transpose(1, 2).reshape([b, s, -1])
    }

    public let config: Config
    public let weightFormat: FluxWeightFormat
    let xEmbedder: Linear
    let contextEmbedder: Linear
    let timestepEmbedder: MLPEmbedder
    let guidanceEmbedder: MLPEmbedder?
    let textEmbedder: MLPEmbedder
    let doubleBlocks: [DoubleBlock]
    let singleBlocks: [SingleBlock]
    let normOut: Linear
    let projOut: Linear

    /// `format`: `.dense` keeps the loader's dtype; `.float8` quantises the blocks' Linear weights at load.
    public init(_ w: WeightLoader, config: Config, format: FluxWeightFormat = .dense) throws {
        try config.validate()
        self.config = config
        weightFormat = format
        let d = config.innerDim
        xEmbedder = try Linear(w.pp("x_embedder"), inFeatures: config.inChannels, outFeatures: d)
        contextEmbedder = try Linear(w.pp("context_embedder"), inFeatures: config.jointAttentionDim, outFeatures: d)
        let tt = w.pp("time_text_embed")
        timestepEmbedder = try MLPEmbedder(tt.pp("timestep_embedder"), inFeatures: 256, dim: d)
        guidanceEmbedder = config.guidanceEmbeds ? try MLPEmbedder(tt.pp("guidance_embedder"), inFeatures: 256, dim: d) : nil
        textEmbedder = try MLPEmbedder(tt.pp("text_embedder"), inFeatures: config.pooledProjectionDim, dim: d)
        doubleBlocks = try (0..<config.numLayers).map {
            try DoubleBlock(w.pp("transformer_blocks").pp($0), config: config, format: format)
        }
        singleBlocks = try (0..<config.numSingleLayers).map {
            try SingleBlock(w.pp("single_transformer_blocks").pp($0), config: config, format: format)
        }
        normOut = try Linear(w.pp("norm_out").pp("linear"), inFeatures: d, outFeatures: 2 * d)
        projOut = try Linear(w.pp("proj_out"), inFeatures: d,
                             outFeatures: config.patchSize * config.patchSize * config.resolvedOutChannels)
    }

    public var dtype: DType { xEmbedder.weight.dtype }
    public var device: Device { xEmbedder.weight.device }

    /// Sinusoidal embedding of t [B] (diffusers get_timestep_embedding: 256 channels, flip_sin_to_cos,
    /// downscale_freq_shift 0), float32 [B, 256].
    /// The frequencies are exp taken in float64 and rounded to float32 (correctly rounded): fp32 `exp` differs by an
    /// ulp between CPU kernel paths (MKL AVX2 vs AVX-512), and t reaches 1000 and guidance 3500, so one ulp of a
    /// frequency moved the transformer's output by up to 1.6e-4 from one machine to the next.
    public static func timestepProjection(_ t: Tensor, channels: Int = 256) throws -> Tensor {
        let half = channels / 2
        let exponent = try Tensor.arange(0, Double(half), dtype: .float32, device: t.device) * -Foundation.log(10000.0)
            / Double(half)
        let frequencies = try exponent.to(.float64).exp().to(.float32)
        let args = try t.to(.float32).unsqueeze(1) * frequencies.unsqueeze(0)
        return try Tensor.cat([args.cos(), args.sin()], dim: -1)
    }

    /// The RoPE tables for text ids [T, 3] and image ids [N, 3] (computed once per image size).
    public func rotaryEmbedding(txtIds: Tensor, imgIds: Tensor) throws -> FluxRotaryEmbedding {
        let txt = txtIds.ndim == 3 ? try txtIds.select(0, 0) : txtIds
        let img = imgIds.ndim == 3 ? try imgIds.select(0, 0) : imgIds
        return try FluxRotaryEmbedding(ids: Tensor.cat([txt.to(device), img.to(device)], dim: 0),
                                       axesDims: config.axesDimsRope)
    }

    /// The velocity for packed latents.
    /// - hiddenStates: [B, N, in_channels] packed latents; encoderHiddenStates: [B, T, joint_attention_dim];
    ///   pooledProjections: [B, pooled_projection_dim]; timestep: [B] or [1] as sigma in [0, 1] (multiplied by
    ///   1000 inside, as diffusers); guidance: [B] (only for guidance-distilled configs).
    public func callAsFunction(hiddenStates: Tensor, encoderHiddenStates: Tensor, pooledProjections: Tensor,
                               timestep: Tensor, imgIds: Tensor, txtIds: Tensor, guidance: Tensor? = nil) throws -> Tensor {
        try forward(hiddenStates: hiddenStates, encoderHiddenStates: encoderHiddenStates,
                    pooledProjections: pooledProjections, timestep: timestep,
                    rope: rotaryEmbedding(txtIds: txtIds, imgIds: imgIds), guidance: guidance)
    }

    /// As `callAsFunction` with precomputed RoPE tables (the sampler computes them once per image).
    public func forward(hiddenStates: Tensor, encoderHiddenStates: Tensor, pooledProjections: Tensor,
                        timestep: Tensor, rope: FluxRotaryEmbedding, guidance: Tensor? = nil) throws -> Tensor {
        let c = config
        guard hiddenStates.ndim == 3, hiddenStates.size(2) == c.inChannels else {
            throw FluxError("hidden_states must be [batch, tokens, \(c.inChannels)], got \(hiddenStates.shape)")
        }
        let batch = hiddenStates.size(0)
        guard encoderHiddenStates.ndim == 3, encoderHiddenStates.size(0) == batch,
              encoderHiddenStates.size(2) == c.jointAttentionDim else {
            throw FluxError("encoder_hidden_states must be [\(batch), tokens, \(c.jointAttentionDim)], got \(encoderHiddenStates.shape)")
        }
        guard pooledProjections.shape == [batch, c.pooledProjectionDim] else {
            throw FluxError("pooled_projections must be [\(batch), \(c.pooledProjectionDim)], got \(pooledProjections.shape)")
        }
        guard rope.cos.size(0) == encoderHiddenStates.size(1) + hiddenStates.size(1) else {
            throw FluxError("RoPE covers \(rope.cos.size(0)) positions, the sequence has \(encoderHiddenStates.size(1)) text + \(hiddenStates.size(1)) image tokens")
        }
        guard timestep.ndim == 1, timestep.size(0) == batch || timestep.size(0) == 1 else {
            throw FluxError("timestep must be [\(batch)] or [1], got \(timestep.shape)")
        }
        if c.guidanceEmbeds && guidance == nil { throw FluxError("this FLUX config embeds guidance: pass guidance") }

        let dt = dtype
        let x = try xEmbedder(hiddenStates.to(device, dtype: dt))
        let pooled = try pooledProjections.to(device, dtype: dt)
        let t = try timestep.to(device, dtype: dt).expand([batch]) * 1000.0
        var temb = try timestepEmbedder(FluxTransformer2DModel.timestepProjection(t).to(dt))
        if let guidanceEmbedder, let guidance {
            let g = try guidance.to(device, dtype: dt).expand([batch]) * 1000.0
            temb = try temb + guidanceEmbedder(FluxTransformer2DModel.timestepProjection(g).to(dt))
        }
        temb = try temb + textEmbedder(pooled)
        let ctx = try contextEmbedder(encoderHiddenStates.to(device, dtype: dt))

        let act = try temb.silu()
        var image = x, text = ctx
        for block in doubleBlocks { (image, text) = try block(image: image, text: text, act: act, rope: rope) }
        var joint = try Tensor.cat([text, image], dim: 1)
        for block in singleBlocks { joint = try block(joint, act: act, rope: rope) }
        image = try joint.narrow(1, start: text.size(1), length: image.size(1))

        // AdaLayerNormContinuous: the Linear gives scale first, then shift.
        let mod = try normOut(act).chunk(2, dim: 1)
        let out = try FluxTransformer2DModel.modulate(image, shift: mod[1], scale: mod[0])
        return try projOut(out)
    }

    /// Bytes held by the transformer blocks' Linear weights (the part fp8 shrinks).
    public var blockLinearBytes: Int {
        doubleBlocks.reduce(0) { sum, b in
            sum + [b.norm1, b.norm1Context, b.qkv, b.addQKV, b.toOut, b.toAddOut, b.ff1, b.ff2, b.ffContext1, b.ffContext2]
                .reduce(0) { $0 + $1.weightBytes }
        } + singleBlocks.reduce(0) { $0 + $1.norm.weightBytes + $1.qkvMLP.weightBytes + $1.projOut.weightBytes }
    }
}
