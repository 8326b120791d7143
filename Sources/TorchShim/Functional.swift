import CTorchShim

private func i64(_ a: [Int]) -> [Int64] { a.map(Int64.init) }

/// Functional neural-network operations (torch.nn.functional).
public enum F {
    public static func linear(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil) throws -> Tensor {
        if FLOPCounter.isCounting { FLOPCounter.add(2 * Double(x.count) * Double(weight.size(0))) }
        return try tensorCall { ts_linear(x.handle, weight.handle, bias?.handle, $0) }
    }

    /// N-d convolution; `stride`, `padding`, `dilation` have one entry per spatial dim (or one for all).
    public static func conv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor? = nil, spatialDims: Int,
                            stride: [Int] = [1], padding: [Int] = [0], dilation: [Int] = [1], groups: Int = 1,
                            transposed: Bool = false, outputPadding: [Int] = [0]) throws -> Tensor {
        func expand(_ v: [Int]) -> [Int64] { i64(v.count == 1 ? Array(repeating: v[0], count: spatialDims) : v) }
        let s = expand(stride), p = expand(padding), d = expand(dilation), op = expand(outputPadding)
        guard s.count == spatialDims, p.count == spatialDims, d.count == spatialDims, op.count == spatialDims else {
            throw TorchError("conv: stride/padding/dilation need \(spatialDims) entries")
        }
        let out = try tensorCall {
            ts_conv(x.handle, weight.handle, bias?.handle, s, p, d, transposed ? 1 : 0, op, Int32(spatialDims),
                    Int64(groups), $0)
        }
        if FLOPCounter.isCounting { FLOPCounter.convolution(output: out, input: x, weight: weight, transposed: transposed) }
        return out
    }

    public static func conv1d(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                              dilation: Int = 1, groups: Int = 1) throws -> Tensor {
        try conv(x, w, b, spatialDims: 1, stride: [stride], padding: [padding], dilation: [dilation], groups: groups)
    }

    public static func conv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil, stride: [Int] = [1], padding: [Int] = [0],
                              dilation: [Int] = [1], groups: Int = 1) throws -> Tensor {
        try conv(x, w, b, spatialDims: 2, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    public static func conv3d(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil, stride: [Int] = [1], padding: [Int] = [0],
                              dilation: [Int] = [1], groups: Int = 1) throws -> Tensor {
        try conv(x, w, b, spatialDims: 3, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    public static func convTranspose2d(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil, stride: [Int] = [1],
                                       padding: [Int] = [0], outputPadding: [Int] = [0], dilation: [Int] = [1],
                                       groups: Int = 1) throws -> Tensor {
        try conv(x, w, b, spatialDims: 2, stride: stride, padding: padding, dilation: dilation, groups: groups,
                 transposed: true, outputPadding: outputPadding)
    }

    public static func convTranspose3d(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil, stride: [Int] = [1],
                                       padding: [Int] = [0], outputPadding: [Int] = [0], dilation: [Int] = [1],
                                       groups: Int = 1) throws -> Tensor {
        try conv(x, w, b, spatialDims: 3, stride: stride, padding: padding, dilation: dilation, groups: groups,
                 transposed: true, outputPadding: outputPadding)
    }

    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Double = 1e-5) throws -> Tensor {
        try tensorCall { ts_group_norm(x.handle, Int64(groups), weight?.handle, bias?.handle, eps, $0) }
    }

    public static func layerNorm(_ x: Tensor, shape: [Int], weight: Tensor? = nil, bias: Tensor? = nil,
                                 eps: Double = 1e-5) throws -> Tensor {
        let s = i64(shape)
        return try tensorCall { ts_layer_norm(x.handle, s, Int32(s.count), weight?.handle, bias?.handle, eps, $0) }
    }

    public static func rmsNorm(_ x: Tensor, shape: [Int], weight: Tensor? = nil, eps: Double? = nil) throws -> Tensor {
        let s = i64(shape)
        // eps nil = torch's default (machine epsilon of the dtype); the shim takes <0 to mean that.
        return try tensorCall { ts_rms_norm(x.handle, s, Int32(s.count), weight?.handle, eps ?? -1, $0) }
    }

    /// Inference batch norm over dim 1 with running statistics.
    public static func batchNorm(_ x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor?, bias: Tensor?,
                                 eps: Double = 1e-5) throws -> Tensor {
        try tensorCall { ts_batch_norm(x.handle, weight?.handle, bias?.handle, mean.handle, variance.handle, eps, $0) }
    }

    public static func softmax(_ x: Tensor, dim: Int) throws -> Tensor { try tensorCall { ts_softmax(x.handle, Int64(dim), $0) } }
    public static func logSoftmax(_ x: Tensor, dim: Int) throws -> Tensor {
        try tensorCall { ts_log_softmax(x.handle, Int64(dim), $0) }
    }

    /// x / max(||x||_p, eps) along `dim`.
    public static func normalize(_ x: Tensor, p: Double = 2, dim: Int = -1, eps: Double = 1e-12) throws -> Tensor {
        try tensorCall { ts_normalize(x.handle, p, Int64(dim), eps, $0) }
    }

    public static func maxPool(_ x: Tensor, kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil,
                               ceilMode: Bool = false) throws -> Tensor {
        let n = kernel.count
        let k = i64(kernel), s = i64(stride ?? kernel), p = i64(padding ?? Array(repeating: 0, count: n))
        return try tensorCall { ts_max_pool(x.handle, k, s, p, Int32(n), ceilMode ? 1 : 0, $0) }
    }

    public static func avgPool(_ x: Tensor, kernel: [Int], stride: [Int]? = nil, padding: [Int]? = nil,
                               ceilMode: Bool = false, countIncludePad: Bool = true) throws -> Tensor {
        let n = kernel.count
        let k = i64(kernel), s = i64(stride ?? kernel), p = i64(padding ?? Array(repeating: 0, count: n))
        return try tensorCall { ts_avg_pool(x.handle, k, s, p, Int32(n), ceilMode ? 1 : 0, countIncludePad ? 1 : 0, $0) }
    }

    public static func adaptiveAvgPool(_ x: Tensor, outputSize: [Int]) throws -> Tensor {
        let s = i64(outputSize)
        return try tensorCall { ts_adaptive_avg_pool(x.handle, s, Int32(s.count), $0) }
    }

    public enum InterpolationMode: Int32 { case nearest = 0, nearestExact, linear, bilinear, bicubic, trilinear, area }

    /// torch.nn.functional.interpolate to an explicit output size.
    public static func interpolate(_ x: Tensor, size: [Int], mode: InterpolationMode, alignCorners: Bool = false,
                                   antialias: Bool = false) throws -> Tensor {
        let s = i64(size)
        return try tensorCall {
            ts_interpolate(x.handle, mode.rawValue, s, Int32(s.count), alignCorners ? 1 : 0, antialias ? 1 : 0, $0)
        }
    }

    public enum GridSampleMode: Int32 { case bilinear = 0, nearest = 1, bicubic = 2 }
    public enum GridSamplePadding: Int32 { case zeros = 0, border = 1, reflection = 2 }

    public static func gridSample(_ x: Tensor, grid: Tensor, mode: GridSampleMode = .bilinear,
                                  padding: GridSamplePadding = .zeros, alignCorners: Bool = false) throws -> Tensor {
        try tensorCall { ts_grid_sample(x.handle, grid.handle, mode.rawValue, padding.rawValue, alignCorners ? 1 : 0, $0) }
    }

    public enum PadMode: String { case constant, reflect, replicate, circular }

    /// Pads as torch.nn.functional.pad: `pads` = (last-dim left, last-dim right, second-last left, ...).
    public static func pad(_ x: Tensor, _ pads: [Int], mode: PadMode = .constant, value: Double = 0) throws -> Tensor {
        let p = i64(pads)
        return try tensorCall { ts_pad(x.handle, p, Int32(p.count), mode.rawValue, value, $0) }
    }

    public static func pixelShuffle(_ x: Tensor, _ factor: Int) throws -> Tensor {
        try tensorCall { ts_pixel_shuffle(x.handle, Int64(factor), $0) }
    }

    public static func pixelUnshuffle(_ x: Tensor, _ factor: Int) throws -> Tensor {
        try tensorCall { ts_pixel_unshuffle(x.handle, Int64(factor), $0) }
    }

    /// torch.nn.functional.unfold on a 4-d input: [N, C*kh*kw, L].
    public static func unfold(_ x: Tensor, kernel: [Int], dilation: [Int] = [1, 1], padding: [Int] = [0, 0],
                              stride: [Int] = [1, 1]) throws -> Tensor {
        let k = i64(kernel), d = i64(dilation), p = i64(padding), s = i64(stride)
        return try tensorCall { ts_im2col(x.handle, k, d, p, s, $0) }
    }

    /// Fused scaled-dot-product attention over [..., L, E] tensors. `mask`: bool (true = attend) or additive.
    public static func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil,
                                                 isCausal: Bool = false, scale: Double? = nil) throws -> Tensor {
        if FLOPCounter.isCounting, q.ndim >= 2 {
            // q k^T and (softmax) v: 2 L_q L_k (E + E_v) per batch-head.
            let lk = Double(k.size(-2)), e = Double(q.size(-1)), ev = Double(v.size(-1))
            FLOPCounter.add(2 * Double(q.count / q.size(-1)) * lk * (e + ev))
        }
        return try tensorCall { ts_sdpa(q.handle, k.handle, v.handle, mask?.handle, isCausal ? 1 : 0, scale ?? 0, $0) }
    }

    /// fp8 matmul with per-tensor (or row/column) scales: a [M,K] fp8 row-major, b [K,N] fp8 column-major.
    public static func scaledMatmul(_ a: Tensor, _ b: Tensor, scaleA: Tensor, scaleB: Tensor, bias: Tensor? = nil,
                                    outDType: DType = .bfloat16) throws -> Tensor {
        try tensorCall { ts_scaled_mm(a.handle, b.handle, scaleA.handle, scaleB.handle, bias?.handle, outDType.rawValue, $0) }
    }
}
