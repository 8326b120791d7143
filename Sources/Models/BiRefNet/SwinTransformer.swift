import Foundation
import NN
import TorchShim

/// Swin Transformer v1 as BiRefNet's backbone (`bb.*`, models/backbones/swin_v1.py): patch embedding, stages of
/// (shifted-)window attention blocks with patch merging between them, and one LayerNorm per stage output.
///
/// Every width comes from the checkpoint: embed dim and patch size from `patch_embed.proj.weight`, the number of
/// stages and blocks from the keys present, heads and window size from `relative_position_bias_table`
/// ([(2ws-1)², heads]), the MLP width from `mlp.fc1.weight`.
public final class SwinTransformer {
    public let patchSize: Int
    public let embedDim: Int
    public let windowSize: Int
    let patchProjection: Conv
    let patchNorm: LayerNorm?
    let stages: [SwinStage]
    let outputNorms: [LayerNorm]

    /// Channels of the four stage outputs (E, 2E, 4E, 8E for Swin).
    public var stageChannels: [Int] { stages.map(\.dim) }
    public var depths: [Int] { stages.map { $0.blocks.count } }
    public var heads: [Int] { stages.map { $0.blocks[0].attention.heads } }

    public init(_ w: WeightLoader) throws {
        let pe = w.pp("patch_embed")
        guard let projShape = pe.pp("proj").shape("weight") else {
            throw WeightError.missing(pe.pp("proj").key("weight"), expected: nil)
        }
        guard projShape.count == 4, projShape[1] == 3, projShape[2] == projShape[3], projShape[2] > 0 else {
            throw WeightError.shapeMismatch(pe.pp("proj").key("weight"), expected: [-1, 3, -1, -1], found: projShape)
        }
        embedDim = projShape[0]
        patchSize = projShape[2]
        patchProjection = try Conv(pe.pp("proj"), spatialDims: 2, inChannels: 3, outChannels: embedDim,
                                   kernel: [patchSize], stride: [patchSize])
        patchNorm = pe.pp("norm").contains("weight") ? try LayerNorm(pe.pp("norm"), dim: embedDim) : nil

        let tableKey = "layers.0.blocks.0.attn.relative_position_bias_table"
        guard let tableShape = w.shape(tableKey) else { throw WeightError.missing(w.key(tableKey), expected: nil) }
        let side = Int(Double(tableShape[0]).squareRoot().rounded())
        guard tableShape.count == 2, side * side == tableShape[0], side % 2 == 1 else {
            throw WeightError.shapeMismatch(w.key(tableKey), expected: [-1, -1], found: tableShape)
        }
        windowSize = (side + 1) / 2

        var stages: [SwinStage] = []
        var norms: [LayerNorm] = []
        var dim = embedDim
        while w.contains("layers.\(stages.count).blocks.0.norm1.weight") {
            let index = stages.count
            let stage = try SwinStage(w.pp("layers").pp(index), dim: dim, windowSize: windowSize)
            stages.append(stage)
            norms.append(try LayerNorm(w.pp("norm\(index)"), dim: dim))
            if stage.merging == nil { break }
            dim *= 2
        }
        guard !stages.isEmpty else { throw WeightError.missing(w.key("layers.0.blocks.0.norm1.weight"), expected: nil) }
        guard stages.last?.merging == nil else {
            throw WeightError.missing(w.key("layers.\(stages.count).blocks.0.norm1.weight"), expected: nil)
        }
        self.stages = stages
        self.outputNorms = norms
    }

    /// x: [B, 3, H, W] -> one NCHW map per stage (strides patch, 2·patch, ...), each after its `norm{i}`.
    public func callAsFunction(_ x: Tensor) throws -> [Tensor] {
        let (height, width) = (x.size(2), x.size(3))
        let padW = (patchSize - width % patchSize) % patchSize
        let padH = (patchSize - height % patchSize) % patchSize
        let padded = padW > 0 || padH > 0 ? try F.pad(x, [0, padW, 0, padH]) : x
        let patches = try patchProjection(padded)
        let batch = patches.size(0)
        var (h, w) = (patches.size(2), patches.size(3))
        var tokens = try patches.flatten(2).transpose(1, 2)
        if let patchNorm { tokens = try patchNorm(tokens) }

        var outputs: [Tensor] = []
        for (stage, norm) in zip(stages, outputNorms) {
            let out = try stage.blocksForward(tokens, height: h, width: w)
            outputs.append(try norm(out).view([batch, h, w, stage.dim]).permute([0, 3, 1, 2]).contiguous())
            if let merging = stage.merging {
                tokens = try merging(out, height: h, width: w)
                (h, w) = ((h + 1) / 2, (w + 1) / 2)
            }
        }
        return outputs
    }

    /// Multiply-add count × 2 of the backbone on a height × width input (linear layers, attention matmuls over
    /// the padded windows, patch embedding and merging; norms, softmax and elementwise work not counted).
    public func flops(height: Int, width: Int) -> Double {
        var h = (height + patchSize - 1) / patchSize, w = (width + patchSize - 1) / patchSize
        var total = 2.0 * Double(h * w) * Double(embedDim * 3 * patchSize * patchSize)
        for stage in stages {
            let c = Double(stage.dim)
            let tokens = Double(h * w)
            let ws = windowSize
            let padded = Double(((h + ws - 1) / ws * ws) * ((w + ws - 1) / ws * ws))
            let n = Double(ws * ws)
            for block in stage.blocks {
                let hidden = Double(block.mlp.hidden)
                total += 2 * padded * c * 3 * c        // qkv
                total += 2 * 2 * padded * n * c        // q·kᵀ and attn·v
                total += 2 * padded * c * c            // proj
                total += 2 * 2 * tokens * c * hidden   // fc1, fc2
            }
            if stage.merging != nil {
                (h, w) = ((h + 1) / 2, (w + 1) / 2)
                total += 2 * Double(h * w) * 4 * c * 2 * c
            }
        }
        return total
    }
}

/// One stage (`layers.i`): `depth` blocks alternating plain and shifted windows, then optional patch merging.
struct SwinStage {
    let dim: Int
    let windowSize: Int
    let blocks: [SwinBlock]
    let merging: PatchMerging?

    init(_ w: WeightLoader, dim: Int, windowSize: Int) throws {
        self.dim = dim
        self.windowSize = windowSize
        var blocks: [SwinBlock] = []
        while w.contains("blocks.\(blocks.count).norm1.weight") {
            let i = blocks.count
            blocks.append(try SwinBlock(w.pp("blocks").pp(i), dim: dim, windowSize: windowSize,
                                        shift: i % 2 == 0 ? 0 : windowSize / 2))
        }
        self.blocks = blocks
        merging = w.pp("downsample").contains("reduction.weight") ? try PatchMerging(w.pp("downsample"), dim: dim) : nil
    }

    /// Runs the blocks on tokens [B, H·W, C] (before merging).
    func blocksForward(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        let ws = windowSize, shift = windowSize / 2
        let paddedH = (height + ws - 1) / ws * ws, paddedW = (width + ws - 1) / ws * ws
        var shiftMask: Tensor? = nil
        if blocks.count > 1 {
            shiftMask = try SwinStage.shiftedWindowMask(paddedHeight: paddedH, paddedWidth: paddedW, windowSize: ws,
                                                       shift: shift, dtype: x.dtype, device: x.device)
        }
        var h = x
        for block in blocks {
            h = try block(h, height: height, width: width, shiftMask: block.shift > 0 ? shiftMask : nil)
        }
        return h
    }

    /// [nW, 1, N, N] additive mask (0 or -inf) for shifted windows of the padded map: tokens whose regions
    /// (slices [0:-ws], [-ws:-shift], [-shift:] on each axis) differ must not attend to each other.
    static func shiftedWindowMask(paddedHeight hp: Int, paddedWidth wp: Int, windowSize ws: Int, shift: Int,
                                  dtype: DType, device: Device) throws -> Tensor {
        func region(_ i: Int, _ size: Int) -> Int64 { i < size - ws ? 0 : (i < size - shift ? 1 : 2) }
        let n = ws * ws
        let windowsPerRow = wp / ws
        var labels = [Int64](repeating: 0, count: hp * wp)
        for y in 0..<hp {
            let ry = region(y, hp) * 3
            for x in 0..<wp {
                let window = (y / ws) * windowsPerRow + x / ws
                labels[window * n + (y % ws) * ws + x % ws] = ry + region(x, wp)
            }
        }
        let perWindow = try Tensor(labels, shape: [hp * wp / n, n]).to(device)
        let differs = try perWindow.unsqueeze(1).ne(perWindow.unsqueeze(2))
        return try Tensor.zeros(differs.shape, dtype: dtype, device: device)
            .maskedFill(differs, -Double.infinity).unsqueeze(1)
    }
}

/// `SwinTransformerBlock`: x + W-MSA(norm1(x)) over (shifted) zero-padded windows, then x + MLP(norm2(x)).
struct SwinBlock {
    let dim: Int
    let windowSize: Int
    let shift: Int
    let norm1: LayerNorm
    let attention: WindowAttention
    let norm2: LayerNorm
    let mlp: SwinMLP

    init(_ w: WeightLoader, dim: Int, windowSize: Int, shift: Int) throws {
        self.dim = dim
        self.windowSize = windowSize
        self.shift = shift
        norm1 = try LayerNorm(w.pp("norm1"), dim: dim)
        attention = try WindowAttention(w.pp("attn"), dim: dim, windowSize: windowSize)
        norm2 = try LayerNorm(w.pp("norm2"), dim: dim)
        mlp = try SwinMLP(w.pp("mlp"), dim: dim)
    }

    func callAsFunction(_ x: Tensor, height: Int, width: Int, shiftMask: Tensor?) throws -> Tensor {
        let (batch, c, ws) = (x.size(0), dim, windowSize)
        let padRight = (ws - width % ws) % ws, padBottom = (ws - height % ws) % ws
        let hp = height + padBottom, wp = width + padRight
        var h = try norm1(x).view([batch, height, width, c])
        if padRight > 0 || padBottom > 0 { h = try F.pad(h, [0, 0, 0, padRight, 0, padBottom]) }
        if shift > 0 { h = try h.roll([-shift, -shift], dims: [1, 2]) }
        let windows = try h.view([batch, hp / ws, ws, wp / ws, ws, c]).permute([0, 1, 3, 2, 4, 5])
            .reshape([-1, ws * ws, c])

        var mask = attention.positionBias
        if let shiftMask {
            mask = try shiftMask + attention.positionBias
            if batch > 1 {
                let (nw, heads, n) = (mask.size(0), mask.size(1), mask.size(2))
                mask = try mask.unsqueeze(0).expand([batch, nw, heads, n, n]).reshape([batch * nw, heads, n, n])
            }
        }
        let attended = try attention(windows, mask: mask)
        var y = try attended.view([batch, hp / ws, wp / ws, ws, ws, c]).permute([0, 1, 3, 2, 4, 5])
            .reshape([batch, hp, wp, c])
        if shift > 0 { y = try y.roll([shift, shift], dims: [1, 2]) }
        if padRight > 0 || padBottom > 0 { y = try y.slice(1, 0, height).slice(2, 0, width) }
        let x1 = try x + y.reshape([batch, height * width, c])
        return try x1 + mlp(norm2(x1))
    }
}

/// Window multi-head self-attention with a learned relative position bias (`attn.*`).
struct WindowAttention {
    let heads: Int
    let qkv: Linear
    let proj: Linear
    /// [1, heads, N, N]: `table[index[i, j], h]`, precomputed at load.
    let positionBias: Tensor

    init(_ w: WeightLoader, dim: Int, windowSize ws: Int) throws {
        let rows = (2 * ws - 1) * (2 * ws - 1)
        guard let tableShape = w.shape("relative_position_bias_table") else {
            throw WeightError.missing(w.key("relative_position_bias_table"), expected: [rows, -1])
        }
        guard tableShape.count == 2, tableShape[0] == rows, tableShape[1] > 0, dim % tableShape[1] == 0 else {
            throw WeightError.shapeMismatch(w.key("relative_position_bias_table"), expected: [rows, -1], found: tableShape)
        }
        heads = tableShape[1]
        let table = try w.tensor("relative_position_bias_table", shape: [rows, heads])
        // The stored index buffer is the fixed function below of the window size; only its shape is checked.
        let n = ws * ws
        if let indexShape = w.shape("relative_position_index") {
            guard indexShape == [n, n] else {
                throw WeightError.shapeMismatch(w.key("relative_position_index"), expected: [n, n], found: indexShape)
            }
            w.ignore(["relative_position_index"])
        }
        let index = try Tensor(WindowAttention.relativePositionIndex(windowSize: ws), shape: [n * n]).to(table.device)
        positionBias = try table.indexSelect(0, index).view([n, n, heads]).permute([2, 0, 1]).unsqueeze(0).contiguous()
        qkv = try Linear(w.pp("qkv"), inFeatures: dim, outFeatures: 3 * dim)
        proj = try Linear(w.pp("proj"), inFeatures: dim, outFeatures: dim)
    }

    /// index[i, j] = (yi - yj + ws - 1)·(2ws - 1) + (xi - xj + ws - 1), i the query and j the key, row-major.
    static func relativePositionIndex(windowSize ws: Int) -> [Int64] {
        let n = ws * ws
        var index = [Int64](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                index[i * n + j] = Int64((i / ws - j / ws + ws - 1) * (2 * ws - 1) + (i % ws - j % ws + ws - 1))
            }
        }
        return index
    }

    /// windows: [B·nW, N, C]; mask: additive, broadcastable to [B·nW, heads, N, N].
    func callAsFunction(_ x: Tensor, mask: Tensor) throws -> Tensor {
        let (bw, n, c) = (x.size(0), x.size(1), x.size(2))
        let parts = try qkv(x).view([bw, n, 3, heads, c / heads]).permute([2, 0, 3, 1, 4]).unbind(0)
        let out = try F.scaledDotProductAttention(parts[0], parts[1], parts[2], mask: mask)
        return try proj(out.transpose(1, 2).reshape([bw, n, c]))
    }
}

/// fc1 -> GELU (erf) -> fc2.
struct SwinMLP {
    let fc1: Linear
    let fc2: Linear
    var hidden: Int { fc1.outFeatures }

    init(_ w: WeightLoader, dim: Int) throws {
        guard let shape = w.pp("fc1").shape("weight") else { throw WeightError.missing(w.pp("fc1").key("weight"), expected: nil) }
        guard shape.count == 2, shape[1] == dim else {
            throw WeightError.shapeMismatch(w.pp("fc1").key("weight"), expected: [-1, dim], found: shape)
        }
        fc1 = try Linear(w.pp("fc1"), inFeatures: dim, outFeatures: shape[0])
        fc2 = try Linear(w.pp("fc2"), inFeatures: shape[0], outFeatures: dim)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try fc2(fc1(x).gelu()) }
}

/// `downsample`: zero-pad odd H/W, concatenate the 2×2 neighbours [x(0,0), x(1,0), x(0,1), x(1,1)],
/// LayerNorm(4C), Linear(4C -> 2C, no bias).
struct PatchMerging {
    let dim: Int
    let norm: LayerNorm
    let reduction: Linear

    init(_ w: WeightLoader, dim: Int) throws {
        self.dim = dim
        norm = try LayerNorm(w.pp("norm"), dim: 4 * dim)
        reduction = try Linear(w.pp("reduction"), inFeatures: 4 * dim, outFeatures: 2 * dim, bias: false)
    }

    func callAsFunction(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        let batch = x.size(0)
        var h = try x.view([batch, height, width, dim])
        if height % 2 == 1 || width % 2 == 1 { h = try F.pad(h, [0, 0, 0, width % 2, 0, height % 2]) }
        func pick(_ dy: Int, _ dx: Int) throws -> Tensor {
            try h.slice(1, dy, Int.max, step: 2).slice(2, dx, Int.max, step: 2)
        }
        let merged = try Tensor.cat([pick(0, 0), pick(1, 0), pick(0, 1), pick(1, 1)], dim: -1)
            .reshape([batch, -1, 4 * dim])
        return try reduction(norm(merged))
    }
}
