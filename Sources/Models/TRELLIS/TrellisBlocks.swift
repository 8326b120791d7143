import Foundation
import NN
import TorchShim

// Transformer pieces shared by the TRELLIS models (microsoft/TRELLIS trellis/modules/transformer and
// trellis/modules/attention). Every block works on plain [B, L, C] token tensors; the SLat flow packs its voxel rows
// that way (SparseBatchPacking) and passes a key mask when batch items differ in size.
//
// Precision: a block computes in the dtype of its Linear weights (the loader's dtype; the reference's `use_fp16`
// makes it fp16). How the norms, residual updates and attention are evaluated is the block's `TrellisKernels`.

extension Tensor {
    /// `self` in `dtype`, without a new op when it already is.
    func cast(_ dtype: DType) throws -> Tensor { self.dtype == dtype ? self : try to(dtype) }
}

/// The kernels a TRELLIS block evaluates its norms, adaLN modulation / residual updates and attention with. Both
/// compute the reference maths and round differently; each model keeps the set its fixtures and GPU timings were
/// taken with. In float32 the norms agree exactly; the other differences are rounding.
public enum TrellisKernels: Sendable {
    /// Fused kernels in the compute dtype: native LayerNorm / RMS norm with gains cast to that dtype (they accumulate
    /// in fp32 internally, differing from the reference by the rounding of the gains), modulation and gated residuals
    /// by addcmul, attention by SDPA. The SS flow (one fixed 4096-token shape).
    case fused
    /// The reference's fp32 norms (LayerNorm32, MultiHeadRMSNorm: upcast to float32 with float32 gains, cast back),
    /// modulation and gated residuals as separate multiply and add, attention through `SparseAttention.attention`
    /// (FlashAttention on CUDA where it applies and nothing is masked). The SLat flow and the Gaussian decoder.
    case reference
}

/// LayerNorm over the last dim, evaluated as `kernels` says: `.reference` is TRELLIS `LayerNorm32` (float32, gains
/// float32, cast back to the input dtype); `.fused` runs on the input dtype with gains in the loader's dtype.
/// Keys (affine): `weight`, `bias`.
public struct TrellisLayerNorm {
    public let weight: Tensor?
    public let bias: Tensor?
    public let dim: Int
    public let eps: Double
    public let kernels: TrellisKernels

    public init(_ w: WeightLoader, dim: Int, eps: Double, kernels: TrellisKernels) throws {
        let gains = kernels == .reference ? w.with(dtype: .float32) : w
        weight = try gains.tensor("weight", shape: [dim])
        bias = try gains.tensor("bias", shape: [dim])
        self.dim = dim
        self.eps = eps
        self.kernels = kernels
    }

    /// A norm without gains.
    public init(dim: Int, eps: Double, kernels: TrellisKernels) {
        weight = nil
        bias = nil
        self.dim = dim
        self.eps = eps
        self.kernels = kernels
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch kernels {
        case .fused:
            return try F.layerNorm(x, shape: [dim], weight: weight, bias: bias, eps: eps)
        case .reference:
            return try F.layerNorm(x.cast(.float32), shape: [dim], weight: weight, bias: bias, eps: eps).cast(x.dtype)
        }
    }
}

/// Errors of the TRELLIS models (configuration and input checks).
public enum TrellisError: Error, CustomStringConvertible {
    case unsupportedConfig(String)
    case badInput(String)

    public var description: String {
        switch self {
        case .unsupportedConfig(let why): return "unsupported TRELLIS config: \(why)"
        case .badInput(let why): return "bad TRELLIS input: \(why)"
        }
    }
}

/// Sinusoidal timestep features followed by Linear-SiLU-Linear (keys `mlp.0`, `mlp.2`). The models receive
/// 1000·t. Features are [cos(t·f), sin(t·f)] with f_i = exp(-ln(10000)·i/half), computed in fp32.
public struct TimestepEmbedder {
    public let fc1: Linear
    public let fc2: Linear
    public let frequencyDim: Int

    public init(_ w: WeightLoader, hiddenSize: Int, frequencyDim: Int = 256) throws {
        let w32 = w.with(dtype: .float32)
        fc1 = try Linear(w32.pp("mlp").pp(0), inFeatures: frequencyDim, outFeatures: hiddenSize)
        fc2 = try Linear(w32.pp("mlp").pp(2), inFeatures: hiddenSize, outFeatures: hiddenSize)
        self.frequencyDim = frequencyDim
    }

    /// t: [B] model times -> [B, frequencyDim] sinusoidal features (fp32).
    public static func sinusoid(_ t: Tensor, dim: Int, maxPeriod: Double = 10000) throws -> Tensor {
        let half = dim / 2
        // (-ln(maxPeriod) * i) / half, in that order, as the reference evaluates it.
        let steps = try Tensor.arange(0, Double(half), dtype: .float32, device: t.device)
        let freqs = try (steps * -Foundation.log(maxPeriod) / Double(half)).exp()
        let args = try t.cast(.float32).unsqueeze(1) * freqs.unsqueeze(0)
        var emb = try Tensor.cat([args.cos(), args.sin()], dim: -1)
        if dim % 2 == 1 {
            emb = try Tensor.cat([emb, Tensor.zeros([t.size(0), 1], device: t.device)], dim: -1)
        }
        return emb
    }

    /// t: [B] model times (1000·t) -> [B, hiddenSize] fp32.
    public func callAsFunction(_ t: Tensor) throws -> Tensor {
        let features = try TimestepEmbedder.sinusoid(t, dim: frequencyDim)
        return try fc2(fc1(features).silu())
    }
}

/// Absolute sinusoidal position embedding (TRELLIS `AbsolutePositionEmbedder`): coords [N, D] (integer or float)
/// -> [N, channels] fp32. Per axis f_j = 10000^(-j/F) with F = channels / D / 2, features [sin(p·f), cos(p·f)],
/// axes concatenated in order, zero padded up to `channels`.
public func absolutePositionEmbedding(coords: Tensor, channels: Int) throws -> Tensor {
    guard coords.ndim == 2 else { throw TrellisError.badInput("coords must be [N, D], got \(coords.shape)") }
    let (n, axes) = (coords.size(0), coords.size(1))
    let freqDim = channels / axes / 2
    guard freqDim > 0 else { throw TrellisError.badInput("\(channels) channels are too few for \(axes) axes") }
    let device = coords.device
    let exponents = try Tensor.arange(0, Double(freqDim), dtype: .float32, device: device) / Double(freqDim)
    let freqs = try 1.0 / (Tensor.full([freqDim], value: 10000, dtype: .float32, device: device).pow(exponents))
    let positions = try coords.cast(.float32).reshape([-1])
    let phases = try positions.outer(freqs)                       // [N*D, F]
    var embed = try Tensor.cat([phases.sin(), phases.cos()], dim: -1).reshape([n, -1])
    if embed.size(1) < channels {
        embed = try Tensor.cat([embed, Tensor.zeros([n, channels - embed.size(1)], device: device)], dim: -1)
    }
    return embed
}

/// Per-head RMS norm of queries/keys: F.normalize(x, dim=-1) * gamma[H, Dh] * sqrt(Dh) = rms_norm(x) * gamma.
/// Key: `gamma` [H, Dh]. `.fused`: one rms_norm kernel and gamma in the compute dtype; `.reference`: the
/// reference's float32 normalize with float32 gamma, cast back.
public struct MultiHeadRMSNorm {
    /// [H, 1, Dh] (head-major inputs) or [H, Dh] (token-major inputs); float32 for `.reference`, else the compute dtype.
    public let gamma: Tensor
    public let headDim: Int
    public let kernels: TrellisKernels

    /// headMajor: inputs are [..., H, L, Dh] (as fed to attention), else [..., H, Dh] (rows of heads).
    public init(_ w: WeightLoader, heads: Int, headDim: Int, dtype: DType, kernels: TrellisKernels = .fused,
                headMajor: Bool = true) throws {
        let g = kernels == .reference
            ? try w.with(dtype: .float32).tensor("gamma", shape: [heads, headDim])
            : try w.tensor("gamma", shape: [heads, headDim]).cast(dtype)
        gamma = headMajor ? try g.unsqueeze(1) : g
        self.headDim = headDim
        self.kernels = kernels
    }

    /// Returns x's dtype.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        switch kernels {
        case .fused:
            // normalize(x)·sqrt(Dh) = x / sqrt(mean(x^2)); the tiny eps only keeps all-zero rows finite.
            return try F.rmsNorm(x, shape: [headDim], weight: nil, eps: 1e-12) * gamma.cast(x.dtype)
        case .reference:
            return try (F.normalize(x.cast(.float32), dim: -1) * gamma * Double(headDim).squareRoot()).cast(x.dtype)
        }
    }
}

/// Attention on head-major tensors q [B, H, Lq, Dh], k, v [B, H, Lk, Dh] with an optional key mask [B, 1, 1, Lk]
/// (true = attend) -> [B, Lq, H*Dh]; scale 1/sqrt(Dh).
func attendHeads(_ q: Tensor, _ k: Tensor, _ v: Tensor, keyMask: Tensor?, kernels: TrellisKernels) throws -> Tensor {
    let o: Tensor
    switch kernels {
    case .fused: o = try F.scaledDotProductAttention(q, k, v, mask: keyMask)
    case .reference: o = try SparseAttention.attention(q, k, v, keyMask: keyMask)
    }
    return try o.transpose(1, 2).reshape([q.size(0), q.size(2), -1])
}

/// TRELLIS `MultiHeadAttention(type="self", attn_mode="full")`. Keys: `to_qkv`, `to_out`, optional
/// `q_rms_norm.gamma` / `k_rms_norm.gamma`. qkv = Linear -> [B, L, 3, H, Dh].
public struct TrellisSelfAttention {
    public let toQKV: Linear
    public let toOut: Linear
    public let qNorm: MultiHeadRMSNorm?
    public let kNorm: MultiHeadRMSNorm?
    public let heads: Int
    public let kernels: TrellisKernels

    public init(_ w: WeightLoader, channels: Int, heads: Int, qkRMSNorm: Bool, qkvBias: Bool = true,
                kernels: TrellisKernels = .fused) throws {
        guard heads > 0, channels % heads == 0 else {
            throw TrellisError.unsupportedConfig("\(channels) channels do not split into \(heads) heads")
        }
        toQKV = try Linear(w.pp("to_qkv"), inFeatures: channels, outFeatures: 3 * channels, bias: qkvBias)
        toOut = try Linear(w.pp("to_out"), inFeatures: channels, outFeatures: channels)
        let (dh, dt) = (channels / heads, toQKV.weight.dtype)
        qNorm = qkRMSNorm ? try MultiHeadRMSNorm(w.pp("q_rms_norm"), heads: heads, headDim: dh, dtype: dt, kernels: kernels) : nil
        kNorm = qkRMSNorm ? try MultiHeadRMSNorm(w.pp("k_rms_norm"), heads: heads, headDim: dh, dtype: dt, kernels: kernels) : nil
        self.heads = heads
        self.kernels = kernels
    }

    /// Queries, keys and values of x [B, L, C], head-major [B, H, L, Dh] (QK-normed when configured).
    public func projectQKV(_ x: Tensor) throws -> (q: Tensor, k: Tensor, v: Tensor) {
        let (b, l) = (x.size(0), x.size(1))
        let qkv = try toQKV(x).view([b, l, 3, heads, -1]).permute([2, 0, 3, 1, 4])   // [3, B, H, L, Dh]
        var q = try qkv.select(0, 0), k = try qkv.select(0, 1)
        let v = try qkv.select(0, 2)
        if let qNorm, let kNorm {
            q = try qNorm(q)
            k = try kNorm(k)
        }
        return (q, k, v)
    }

    /// x [B, L, C]; keyMask [B, 1, 1, L] bool (true = real token) or nil.
    public func callAsFunction(_ x: Tensor, keyMask: Tensor? = nil) throws -> Tensor {
        let (q, k, v) = try projectQKV(x)
        return try toOut(attendHeads(q, k, v, keyMask: keyMask, kernels: kernels))
    }
}

/// TRELLIS `MultiHeadAttention(type="cross")`. Keys: `to_q`, `to_kv` (from ctxChannels), `to_out`, optional
/// `q_rms_norm` / `k_rms_norm`. kv = Linear -> [B, Lkv, 2, H, Dh].
public struct TrellisCrossAttention {
    public let toQ: Linear
    public let toKV: Linear
    public let toOut: Linear
    public let qNorm: MultiHeadRMSNorm?
    public let kNorm: MultiHeadRMSNorm?
    public let heads: Int
    public let kernels: TrellisKernels

    public init(_ w: WeightLoader, channels: Int, ctxChannels: Int, heads: Int, qkRMSNorm: Bool,
                qkvBias: Bool = true, kernels: TrellisKernels = .fused) throws {
        guard heads > 0, channels % heads == 0 else {
            throw TrellisError.unsupportedConfig("\(channels) channels do not split into \(heads) heads")
        }
        toQ = try Linear(w.pp("to_q"), inFeatures: channels, outFeatures: channels, bias: qkvBias)
        toKV = try Linear(w.pp("to_kv"), inFeatures: ctxChannels, outFeatures: 2 * channels, bias: qkvBias)
        toOut = try Linear(w.pp("to_out"), inFeatures: channels, outFeatures: channels)
        let (dh, dt) = (channels / heads, toQ.weight.dtype)
        qNorm = qkRMSNorm ? try MultiHeadRMSNorm(w.pp("q_rms_norm"), heads: heads, headDim: dh, dtype: dt, kernels: kernels) : nil
        kNorm = qkRMSNorm ? try MultiHeadRMSNorm(w.pp("k_rms_norm"), heads: heads, headDim: dh, dtype: dt, kernels: kernels) : nil
        self.heads = heads
        self.kernels = kernels
    }

    /// Keys and values of context [B, Lkv, ctxChannels], head-major [B, H, Lkv, Dh] (K QK-normed when configured).
    /// They depend on the context alone, so a sampler computes them once (`StructureFlowCondition`,
    /// `SLatFlowCondition`).
    public func keysValues(_ context: Tensor) throws -> (keys: Tensor, values: Tensor) {
        let (b, lkv) = (context.size(0), context.size(1))
        let kv = try toKV(context).view([b, lkv, 2, heads, -1]).permute([2, 0, 3, 1, 4])  // [2, B, H, Lkv, Dh]
        var k = try kv.select(0, 0)
        if let kNorm { k = try kNorm(k) }
        return (k, try kv.select(0, 1))
    }

    /// x [B, L, C] attends to context [B, Lkv, ctxChannels].
    public func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        let (k, v) = try keysValues(context)
        return try self(x, keys: k, values: v)
    }

    /// x [B, L, C] attends to precomputed keys and values [B, H, Lkv, Dh] (from `keysValues`).
    public func callAsFunction(_ x: Tensor, keys k: Tensor, values v: Tensor) throws -> Tensor {
        let (b, l) = (x.size(0), x.size(1))
        guard k.size(0) == b else {
            throw TrellisError.badInput("context batch \(k.size(0)) differs from token batch \(b)")
        }
        var q = try toQ(x).view([b, l, heads, -1]).transpose(1, 2)                        // [B, H, L, Dh]
        if let qNorm { q = try qNorm(q) }
        return try toOut(attendHeads(q, k, v, keyMask: nil, kernels: kernels))
    }
}

/// Linear -> GELU(tanh) -> Linear. Keys `mlp.0`, `mlp.2` (under the block's `mlp`).
public struct TrellisFeedForward {
    public let fc1: Linear
    public let fc2: Linear

    public init(_ w: WeightLoader, channels: Int, mlpRatio: Double) throws {
        let hidden = Int(Double(channels) * mlpRatio)
        fc1 = try Linear(w.pp("mlp").pp(0), inFeatures: channels, outFeatures: hidden)
        fc2 = try Linear(w.pp("mlp").pp(2), inFeatures: hidden, outFeatures: channels)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(fc1(x).gelu(approximate: true)) }
}

/// TRELLIS `ModulatedTransformerCrossBlock` (self-attention + cross-attention + MLP with adaLN modulation), also
/// `ModulatedSparseTransformerCrossBlock` on packed voxel rows (with the packing's key mask):
///
///     shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = adaLN_modulation(mod).chunk(6)
///     x += gate_msa * SelfAttn(LN1(x) * (1 + scale_msa) + shift_msa)
///     x += CrossAttn(LN2(x), context)                  (LN2 affine)
///     x += gate_mlp * MLP(LN3(x) * (1 + scale_mlp) + shift_mlp)
///
/// Keys: `norm2.{weight,bias}`, `self_attn.*`, `cross_attn.*`, `mlp.mlp.{0,2}.*`, `adaLN_modulation.1.*`.
/// Norm eps 1e-6. Tensors: x [B, L, C], mod (the timestep embedding) [B, C], context [B, Lc, ctxChannels],
/// all in the block's dtype (`dtype`). share_mod (one modulation for all blocks) is not supported: no released
/// checkpoint uses it, and the models reject it.
public struct ModulatedTransformerCrossBlock {
    public let channels: Int
    public let norm1: TrellisLayerNorm
    public let norm2: TrellisLayerNorm
    public let norm3: TrellisLayerNorm
    public let selfAttn: TrellisSelfAttention
    public let crossAttn: TrellisCrossAttention
    public let mlp: TrellisFeedForward
    public let adaLNModulation: Linear
    public let kernels: TrellisKernels

    public init(_ w: WeightLoader, channels: Int, ctxChannels: Int, heads: Int, mlpRatio: Double = 4,
                qkRMSNorm: Bool = false, qkRMSNormCross: Bool = false, kernels: TrellisKernels = .fused) throws {
        self.channels = channels
        self.kernels = kernels
        adaLNModulation = try Linear(w.pp("adaLN_modulation").pp(1), inFeatures: channels, outFeatures: 6 * channels)
        let dtype = adaLNModulation.weight.dtype
        norm1 = TrellisLayerNorm(dim: channels, eps: 1e-6, kernels: kernels)
        norm2 = try TrellisLayerNorm(w.pp("norm2").with(dtype: dtype), dim: channels, eps: 1e-6, kernels: kernels)
        norm3 = TrellisLayerNorm(dim: channels, eps: 1e-6, kernels: kernels)
        selfAttn = try TrellisSelfAttention(w.pp("self_attn"), channels: channels, heads: heads, qkRMSNorm: qkRMSNorm,
                                            kernels: kernels)
        crossAttn = try TrellisCrossAttention(w.pp("cross_attn"), channels: channels, ctxChannels: ctxChannels,
                                              heads: heads, qkRMSNorm: qkRMSNormCross, kernels: kernels)
        mlp = try TrellisFeedForward(w.pp("mlp"), channels: channels, mlpRatio: mlpRatio)
    }

    /// The dtype the block computes in (that of its Linear weights).
    public var dtype: DType { adaLNModulation.weight.dtype }

    public func callAsFunction(_ x: Tensor, mod: Tensor, context: Tensor) throws -> Tensor {
        let (k, v) = try crossAttn.keysValues(context)
        return try self(x, mod: mod, keys: k, values: v)
    }

    /// The same with the cross-attention keys and values of the context precomputed (`crossAttn.keysValues`);
    /// keyMask [B, 1, 1, L] bool (true = real token) masks the padding of packed rows in self-attention.
    public func callAsFunction(_ x: Tensor, mod: Tensor, keys: Tensor, values: Tensor, keyMask: Tensor? = nil) throws -> Tensor {
        let m = try adaLNModulation(mod.silu()).unsqueeze(1).chunk(6, dim: -1)   // 6 x [B, 1, C]
        let (shiftMSA, scaleMSA, gateMSA, shiftMLP, scaleMLP, gateMLP) = (m[0], m[1], m[2], m[3], m[4], m[5])
        var x = x
        var h = try modulate(norm1(x), shift: shiftMSA, scale: scaleMSA)
        x = try gatedResidual(x, selfAttn(h, keyMask: keyMask), gate: gateMSA)
        x = try x + crossAttn(norm2(x), keys: keys, values: values)
        h = try modulate(norm3(x), shift: shiftMLP, scale: scaleMLP)
        return try gatedResidual(x, mlp(h), gate: gateMLP)
    }

    /// h * (1 + scale) + shift.
    func modulate(_ h: Tensor, shift: Tensor, scale: Tensor) throws -> Tensor {
        switch kernels {
        case .fused: return try shift.addcmul(h, scale + 1.0)
        case .reference: return try h * (scale + 1.0) + shift
        }
    }

    /// x + h * gate.
    func gatedResidual(_ x: Tensor, _ h: Tensor, gate: Tensor) throws -> Tensor {
        switch kernels {
        case .fused: return try x.addcmul(h, gate)
        case .reference: return try x + h * gate
        }
    }
}
