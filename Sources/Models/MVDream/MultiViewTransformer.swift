import Foundation
import NN
import TorchShim

/// `MemoryEfficientCrossAttention` of the multi-view UNet: q/k/v without bias, `to_out.0` with bias, scale
/// 1/sqrt(dim_head). With `ip_dim > 0` (ImageDream cross-attention) the last `ip_dim` context tokens are the image
/// prompt: they get their own `to_k_ip`/`to_v_ip` and a second attention with the same queries, added with `ip_weight`.
struct MultiViewCrossAttention {
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    let toKIP: Linear?, toVIP: Linear?
    let heads: Int
    let ipTokens: Int
    let ipWeight: Double

    init(_ w: WeightLoader, queryDim: Int, contextDim: Int, heads: Int, headDim: Int, ipTokens: Int = 0,
         ipWeight: Double = 1) throws {
        let inner = heads * headDim
        toQ = try Linear(w.pp("to_q"), inFeatures: queryDim, outFeatures: inner, bias: false)
        toK = try Linear(w.pp("to_k"), inFeatures: contextDim, outFeatures: inner, bias: false)
        toV = try Linear(w.pp("to_v"), inFeatures: contextDim, outFeatures: inner, bias: false)
        toOut = try Linear(w.pp("to_out").pp(0), inFeatures: inner, outFeatures: queryDim)
        toKIP = ipTokens > 0 ? try Linear(w.pp("to_k_ip"), inFeatures: contextDim, outFeatures: inner, bias: false) : nil
        toVIP = ipTokens > 0 ? try Linear(w.pp("to_v_ip"), inFeatures: contextDim, outFeatures: inner, bias: false) : nil
        self.heads = heads
        self.ipTokens = ipTokens
        self.ipWeight = ipWeight
    }

    /// x [B, L, query_dim]; context [B, T, context_dim] (nil = self-attention).
    func callAsFunction(_ x: Tensor, context: Tensor? = nil) throws -> Tensor {
        let q = try toQ(x)
        var ctx = context ?? x
        var imagePrompt: Tensor? = nil
        if let toKIP, let toVIP {
            let t = ctx.size(1)
            guard t > ipTokens else { throw LGMError("cross-attention context of \(t) tokens has no room for \(ipTokens) ip tokens") }
            let ip = try ctx.narrow(1, start: t - ipTokens, length: ipTokens)
            ctx = try ctx.narrow(1, start: 0, length: t - ipTokens)
            imagePrompt = try multiHeadAttention(q: q, k: toKIP(ip), v: toVIP(ip), heads: heads)
        }
        var out = try multiHeadAttention(q: q, k: toK(ctx), v: toV(ctx), heads: heads)
        if let imagePrompt { out = try out + imagePrompt * ipWeight }
        return try toOut(out)
    }
}

/// `BasicTransformerBlock3D`: self-attention over all frames of a sample at once ((b f) l c -> b (f l) c, frame-major),
/// cross-attention per frame, GEGLU feed-forward; pre-LayerNorm residuals.
struct MultiViewTransformerBlock {
    let norm1: LayerNorm, norm2: LayerNorm, norm3: LayerNorm
    let attn1: MultiViewCrossAttention
    let attn2: MultiViewCrossAttention
    let ffIn: Linear, ffOut: Linear

    init(_ w: WeightLoader, dim: Int, heads: Int, headDim: Int, contextDim: Int, ipTokens: Int, ipWeight: Double) throws {
        norm1 = try LayerNorm(w.pp("norm1"), dim: dim)
        norm2 = try LayerNorm(w.pp("norm2"), dim: dim)
        norm3 = try LayerNorm(w.pp("norm3"), dim: dim)
        attn1 = try MultiViewCrossAttention(w.pp("attn1"), queryDim: dim, contextDim: dim, heads: heads, headDim: headDim)
        attn2 = try MultiViewCrossAttention(w.pp("attn2"), queryDim: dim, contextDim: contextDim, heads: heads,
                                            headDim: headDim, ipTokens: ipTokens, ipWeight: ipWeight)
        ffIn = try Linear(w.pp("ff").pp("net").pp(0).pp("proj"), inFeatures: dim, outFeatures: 8 * dim)
        ffOut = try Linear(w.pp("ff").pp("net").pp(2), inFeatures: 4 * dim, outFeatures: dim)
    }

    func callAsFunction(_ input: Tensor, context: Tensor, frames: Int) throws -> Tensor {
        let (bf, l, c) = (input.size(0), input.size(1), input.size(2))
        let joint = try input.reshape([bf / frames, frames * l, c])
        var x = try (attn1(norm1(joint)) + joint).reshape([bf, l, c])
        x = try attn2(norm2(x), context: context) + x
        let gated = try ffIn(norm3(x)).chunk(2, dim: -1)
        return try ffOut(gated[0] * gated[1].gelu()) + x
    }
}

/// `SpatialTransformer3D`: GroupNorm(32, eps 1e-6), token projection in, transformer blocks, projection out, residual.
/// (`proj_out` is declared Linear(in_channels, inner_dim) upstream; the two widths are equal.)
struct MultiViewSpatialTransformer {
    let norm: GroupNorm
    let projIn: Linear
    let blocks: [MultiViewTransformerBlock]
    let projOut: Linear

    init(_ w: WeightLoader, channels: Int, heads: Int, headDim: Int, depth: Int, contextDim: Int, ipTokens: Int,
         ipWeight: Double) throws {
        let inner = heads * headDim
        guard inner == channels else {
            throw WeightError.badConfig("spatial transformer width \(heads) x \(headDim) must equal its \(channels) channels")
        }
        norm = try GroupNorm(w.pp("norm"), groups: 32, channels: channels, eps: 1e-6)
        projIn = try Linear(w.pp("proj_in"), inFeatures: channels, outFeatures: inner)
        blocks = try (0..<depth).map {
            try MultiViewTransformerBlock(w.pp("transformer_blocks").pp($0), dim: inner, heads: heads, headDim: headDim,
                                          contextDim: contextDim, ipTokens: ipTokens, ipWeight: ipWeight)
        }
        projOut = try Linear(w.pp("proj_out"), inFeatures: channels, outFeatures: inner)
    }

    func callAsFunction(_ x: Tensor, context: Tensor, frames: Int) throws -> Tensor {
        let (b, c, h, w) = (x.size(0), x.size(1), x.size(2), x.size(3))
        var tokens = try projIn(norm(x).view([b, c, h * w]).transpose(1, 2))
        for block in blocks { tokens = try block(tokens, context: context, frames: frames) }
        return try projOut(tokens).transpose(1, 2).reshape([b, c, h, w]) + x
    }
}

/// ImageDream's image-prompt `Resampler` (IP-Adapter Plus perceiver): `ip_dim` learned latents attend to the
/// projected CLIP image tokens (plus themselves) through `depth` perceiver layers, then a projection and a LayerNorm.
/// Keys: `latents` [1, n, dim], `proj_in`, `proj_out`, `norm_out`, `layers.i.0.{norm1,norm2,to_q,to_kv,to_out}`,
/// `layers.i.1.{0 (LayerNorm), 1, 3}`.
struct ImageDreamResampler {
    struct PerceiverLayer {
        let norm1: LayerNorm, norm2: LayerNorm
        let toQ: Linear, toKV: Linear, toOut: Linear
        let ffNorm: LayerNorm, ff1: Linear, ff2: Linear
        let heads: Int

        init(_ w: WeightLoader, dim: Int, heads: Int, headDim: Int, ffMult: Int) throws {
            let attention = w.pp(0), ff = w.pp(1)
            norm1 = try LayerNorm(attention.pp("norm1"), dim: dim)
            norm2 = try LayerNorm(attention.pp("norm2"), dim: dim)
            toQ = try Linear(attention.pp("to_q"), inFeatures: dim, outFeatures: heads * headDim, bias: false)
            toKV = try Linear(attention.pp("to_kv"), inFeatures: dim, outFeatures: 2 * heads * headDim, bias: false)
            toOut = try Linear(attention.pp("to_out"), inFeatures: heads * headDim, outFeatures: dim, bias: false)
            ffNorm = try LayerNorm(ff.pp(0), dim: dim)
            ff1 = try Linear(ff.pp(1), inFeatures: dim, outFeatures: dim * ffMult, bias: false)
            ff2 = try Linear(ff.pp(3), inFeatures: dim * ffMult, outFeatures: dim, bias: false)
            self.heads = heads
        }

        /// `PerceiverAttention` then the feed-forward, each with a residual. The reference's
        /// (q s)(k s)^T with s = dim_head^-1/4 and a float32 softmax is SDPA's default scaling.
        func callAsFunction(_ features: Tensor, _ latents: Tensor) throws -> Tensor {
            let x = try norm1(features), l = try norm2(latents)
            let kv = try toKV(Tensor.cat([x, l], dim: 1)).chunk(2, dim: -1)
            let attended = try toOut(multiHeadAttention(q: toQ(l), k: kv[0], v: kv[1], heads: heads)) + latents
            return try ff2(ff1(ffNorm(attended)).gelu()) + attended
        }
    }

    let latents: Tensor
    let projIn: Linear
    let layers: [PerceiverLayer]
    let projOut: Linear
    let normOut: LayerNorm
    let embeddingDim: Int

    /// As `MultiViewUNetModel` builds it: depth 4, 12 heads of 64, ff x4, input width 1280 (CLIP ViT-H).
    init(_ w: WeightLoader, dim: Int, queries: Int, outputDim: Int, embeddingDim: Int = 1280, depth: Int = 4,
         heads: Int = 12, headDim: Int = 64, ffMult: Int = 4) throws {
        latents = try w.tensor("latents", shape: [1, queries, dim])
        projIn = try Linear(w.pp("proj_in"), inFeatures: embeddingDim, outFeatures: dim)
        layers = try (0..<depth).map {
            try PerceiverLayer(w.pp("layers").pp($0), dim: dim, heads: heads, headDim: headDim, ffMult: ffMult)
        }
        projOut = try Linear(w.pp("proj_out"), inFeatures: dim, outFeatures: outputDim)
        normOut = try LayerNorm(w.pp("norm_out"), dim: outputDim)
        self.embeddingDim = embeddingDim
    }

    /// image tokens [B, L, 1280] -> [B, queries, output_dim].
    func callAsFunction(_ imageTokens: Tensor) throws -> Tensor {
        guard imageTokens.ndim == 3, imageTokens.size(2) == embeddingDim else {
            throw LGMError("image prompt tokens must be [batch, tokens, \(embeddingDim)], got \(imageTokens.shape)")
        }
        let x = try projIn(imageTokens)
        var l = try latents.expand([imageTokens.size(0), latents.size(1), latents.size(2)])
        for layer in layers { l = try layer(x, l) }
        return try normOut(projOut(l))
    }
}
