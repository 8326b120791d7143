import Foundation
import NN
import TorchShim

// Transformer pieces of the SLat flow and the Gaussian decoder. The SLat flow's transformer runs on the voxel rows
// packed as [B, L, C] (see SparseBatchPacking), i.e. the same maths as the dense flow's blocks plus a key mask.
// TODO(trellis-dense merge): switch to the shared TrellisBlocks once they take a key-padding mask.

/// LayerNorm computed in float32 and cast back (TRELLIS `LayerNorm32`). Gains/biases are kept in float32.
struct SLatLayerNorm32 {
    let weight: Tensor?
    let bias: Tensor?
    let dim: Int
    let eps: Double

    init(_ w: WeightLoader, dim: Int, eps: Double, affine: Bool) throws {
        let w32 = w.with(dtype: .float32)
        weight = affine ? try w32.tensor("weight", shape: [dim]) : nil
        bias = affine ? try w32.tensor("bias", shape: [dim]) : nil
        self.dim = dim
        self.eps = eps
    }

    init(dim: Int, eps: Double) {
        weight = nil
        bias = nil
        self.dim = dim
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try F.layerNorm(x.dtype == .float32 ? x : x.to(.float32), shape: [dim], weight: weight, bias: bias, eps: eps)
        return x.dtype == .float32 ? y : try y.to(x.dtype)
    }
}

/// TRELLIS `TimestepEmbedder`: 256-dim sinusoid [cos, sin] of the model time (1000 t), then Linear-SiLU-Linear,
/// in float32. Keys: `mlp.0`, `mlp.2`.
struct SLatTimestepEmbedder {
    static let frequencyDim = 256
    let fc1: Linear
    let fc2: Linear

    init(_ w: WeightLoader, channels: Int) throws {
        let w32 = w.with(dtype: .float32)
        fc1 = try Linear(w32.pp("mlp").pp(0), inFeatures: SLatTimestepEmbedder.frequencyDim, outFeatures: channels)
        fc2 = try Linear(w32.pp("mlp").pp(2), inFeatures: channels, outFeatures: channels)
    }

    /// t: [B] model times -> [B, C] float32.
    func callAsFunction(_ t: Tensor) throws -> Tensor {
        let half = SLatTimestepEmbedder.frequencyDim / 2
        let device = fc1.weight.device
        let i = try Tensor.arange(0, Double(half), dtype: .float32, device: device)
        let freqs = try (i * (-Foundation.log(10000.0)) / Double(half)).exp()
        let args = try t.to(device, dtype: .float32).unsqueeze(1) * freqs.unsqueeze(0)
        let emb = try Tensor.cat([args.cos(), args.sin()], dim: 1)
        return try fc2(fc1(emb).silu())
    }
}

/// TRELLIS `AbsolutePositionEmbedder` (3 axes): per axis [sin(p f), cos(p f)] with f_j = 1e4^(-j/F), F = C//3//2,
/// axes concatenated and zero-padded to C. Float32.
struct SLatAbsolutePositionEmbedder {
    let channels: Int

    /// positions [N, 3] (integer voxel coordinates) -> [N, C] float32.
    func callAsFunction(_ positions: Tensor) throws -> Tensor {
        let n = positions.size(0)
        let freqDim = channels / 3 / 2
        let device = positions.device
        let j = try Tensor.arange(0, Double(freqDim), dtype: .float32, device: device) / Double(freqDim)
        let freqs = try Tensor.full([freqDim], value: 10000, dtype: .float32, device: device).pow(j).reciprocal()
        let p = try positions.to(.float32).reshape([-1])
        let out = try p.unsqueeze(1) * freqs.unsqueeze(0)
        var embed = try Tensor.cat([out.sin(), out.cos()], dim: 1).reshape([n, 6 * freqDim])
        if 6 * freqDim < channels {
            embed = try Tensor.cat([embed, Tensor.zeros([n, channels - 6 * freqDim], dtype: .float32, device: device)], dim: 1)
        }
        return embed
    }
}

/// TRELLIS `MultiHeadRMSNorm`: F.normalize(x, dim=-1) * gamma[H, D] * sqrt(D), in float32. Key: `gamma`.
struct SLatMultiHeadRMSNorm {
    let gamma: Tensor
    let scale: Double

    init(_ w: WeightLoader, heads: Int, headDim: Int) throws {
        gamma = try w.with(dtype: .float32).tensor("gamma", shape: [heads, headDim])
        scale = Double(headDim).squareRoot()
    }

    /// x [..., H, D].
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try F.normalize(x.to(.float32), dim: -1) * gamma * scale
        return try y.to(x.dtype)
    }
}

/// TRELLIS `FeedForwardNet`: Linear(C, rC) - GELU(tanh) - Linear(rC, C). Keys: `mlp.0`, `mlp.2`.
struct SLatFeedForward {
    let fc1: Linear
    let fc2: Linear

    init(_ w: WeightLoader, channels: Int, ratio: Double) throws {
        let hidden = Int(Double(channels) * ratio)
        fc1 = try Linear(w.pp("mlp").pp(0), inFeatures: channels, outFeatures: hidden)
        fc2 = try Linear(w.pp("mlp").pp(2), inFeatures: hidden, outFeatures: channels)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(fc1(x).gelu(approximate: true)) }
}

/// Self-attention on packed tokens [B, L, C]. Keys: `to_qkv`, `to_out`, optional `q_rms_norm.gamma`, `k_rms_norm.gamma`.
struct SLatSelfAttention {
    let toQKV: Linear
    let toOut: Linear
    let qNorm: SLatMultiHeadRMSNorm?
    let kNorm: SLatMultiHeadRMSNorm?
    let heads: Int
    let channels: Int

    init(_ w: WeightLoader, channels: Int, heads: Int, qkRMSNorm: Bool) throws {
        toQKV = try Linear(w.pp("to_qkv"), inFeatures: channels, outFeatures: 3 * channels)
        toOut = try Linear(w.pp("to_out"), inFeatures: channels, outFeatures: channels)
        qNorm = qkRMSNorm ? try SLatMultiHeadRMSNorm(w.pp("q_rms_norm"), heads: heads, headDim: channels / heads) : nil
        kNorm = qkRMSNorm ? try SLatMultiHeadRMSNorm(w.pp("k_rms_norm"), heads: heads, headDim: channels / heads) : nil
        self.heads = heads
        self.channels = channels
    }

    /// x [B, L, C]; keyMask [B, 1, 1, L] bool or nil.
    func callAsFunction(_ x: Tensor, keyMask: Tensor?) throws -> Tensor {
        let (b, l) = (x.size(0), x.size(1))
        let d = channels / heads
        let qkv = try toQKV(x).view([b, l, 3, heads, d])
        var q = try qkv.select(2, 0), k = try qkv.select(2, 1)
        let v = try qkv.select(2, 2)
        if let qNorm { q = try qNorm(q) }
        if let kNorm { k = try kNorm(k) }
        let o = try SparseAttention.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), keyMask: keyMask)
        return try toOut(o.transpose(1, 2).reshape([b, l, channels]))
    }
}

/// Cross-attention from packed tokens [B, L, C] to the condition [B, Lc, Cc]. Keys: `to_q`, `to_kv`, `to_out`,
/// optional RMS norms (`qk_rms_norm_cross`).
struct SLatCrossAttention {
    let toQ: Linear
    let toKV: Linear
    let toOut: Linear
    let qNorm: SLatMultiHeadRMSNorm?
    let kNorm: SLatMultiHeadRMSNorm?
    let heads: Int
    let channels: Int

    init(_ w: WeightLoader, channels: Int, contextChannels: Int, heads: Int, qkRMSNorm: Bool) throws {
        toQ = try Linear(w.pp("to_q"), inFeatures: channels, outFeatures: channels)
        toKV = try Linear(w.pp("to_kv"), inFeatures: contextChannels, outFeatures: 2 * channels)
        toOut = try Linear(w.pp("to_out"), inFeatures: channels, outFeatures: channels)
        qNorm = qkRMSNorm ? try SLatMultiHeadRMSNorm(w.pp("q_rms_norm"), heads: heads, headDim: channels / heads) : nil
        kNorm = qkRMSNorm ? try SLatMultiHeadRMSNorm(w.pp("k_rms_norm"), heads: heads, headDim: channels / heads) : nil
        self.heads = heads
        self.channels = channels
    }

    /// Keys and values of the condition [B, Lc, Cc] for this block, [B, Lc, H, D] each (K RMS-normed when
    /// configured). They do not change across sampler steps, so `SLatFlowCondition` computes them once.
    func keysValues(_ context: Tensor) throws -> (keys: Tensor, values: Tensor) {
        let (b, lc) = (context.size(0), context.size(1))
        let kv = try toKV(context).view([b, lc, 2, heads, channels / heads])
        var k = try kv.select(2, 0)
        if let kNorm { k = try kNorm(k) }
        return (k, try kv.select(2, 1))
    }

    func callAsFunction(_ x: Tensor, context: Tensor) throws -> Tensor {
        let (k, v) = try keysValues(context)
        return try self(x, keys: k, values: v)
    }

    /// x [B, L, C] attends to precomputed keys and values [B, Lc, H, D].
    func callAsFunction(_ x: Tensor, keys k: Tensor, values v: Tensor) throws -> Tensor {
        let (b, l) = (x.size(0), x.size(1))
        var q = try toQ(x).view([b, l, heads, channels / heads])
        if let qNorm { q = try qNorm(q) }
        let o = try SparseAttention.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), keyMask: nil)
        return try toOut(o.transpose(1, 2).reshape([b, l, channels]))
    }
}

/// TRELLIS `ModulatedSparseTransformerCrossBlock` on packed tokens: adaLN chunks (shift_msa, scale_msa, gate_msa,
/// shift_mlp, scale_mlp, gate_mlp); norm1/norm3 without affine, norm2 affine, eps 1e-6.
struct SLatModulatedCrossBlock {
    let norm1: SLatLayerNorm32
    let norm2: SLatLayerNorm32
    let norm3: SLatLayerNorm32
    let selfAttention: SLatSelfAttention
    let crossAttention: SLatCrossAttention
    let mlp: SLatFeedForward
    let modulation: Linear

    init(_ w: WeightLoader, channels: Int, contextChannels: Int, heads: Int, mlpRatio: Double, qkRMSNorm: Bool,
         qkRMSNormCross: Bool) throws {
        norm1 = SLatLayerNorm32(dim: channels, eps: 1e-6)
        norm2 = try SLatLayerNorm32(w.pp("norm2"), dim: channels, eps: 1e-6, affine: true)
        norm3 = SLatLayerNorm32(dim: channels, eps: 1e-6)
        selfAttention = try SLatSelfAttention(w.pp("self_attn"), channels: channels, heads: heads, qkRMSNorm: qkRMSNorm)
        crossAttention = try SLatCrossAttention(w.pp("cross_attn"), channels: channels, contextChannels: contextChannels,
                                                heads: heads, qkRMSNorm: qkRMSNormCross)
        mlp = try SLatFeedForward(w.pp("mlp"), channels: channels, ratio: mlpRatio)
        modulation = try Linear(w.pp("adaLN_modulation").pp(1), inFeatures: channels, outFeatures: 6 * channels)
    }

    /// x [B, L, C]; tEmb [B, C]; the condition's keys and values for this block [B, Lc, H, D]; keyMask [B, 1, 1, L] or nil.
    func callAsFunction(_ x: Tensor, tEmb: Tensor, keys: Tensor, values: Tensor, keyMask: Tensor?) throws -> Tensor {
        let mod = try modulation(tEmb.silu()).unsqueeze(1).chunk(6, dim: 2)
        let (shiftMSA, scaleMSA, gateMSA, shiftMLP, scaleMLP, gateMLP) = (mod[0], mod[1], mod[2], mod[3], mod[4], mod[5])
        var x = x
        var h = try norm1(x) * (scaleMSA + 1) + shiftMSA
        h = try selfAttention(h, keyMask: keyMask)
        x = try x + h * gateMSA
        h = try crossAttention(norm2(x), keys: keys, values: values)
        x = try x + h
        h = try norm3(x) * (scaleMLP + 1) + shiftMLP
        h = try mlp(h)
        return try x + h * gateMLP
    }
}
