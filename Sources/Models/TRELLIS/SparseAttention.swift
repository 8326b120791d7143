import Foundation
import NN
import TorchShim

/// Shifted-window partition of a voxel set (TRELLIS `calc_window_partition`): voxel (b, x, y, z) belongs to window
/// (b, (x+s) // w, (y+s) // w, (z+s) // w), windows ordered by (b, wx, wy, wz), voxels inside a window in row order.
/// Built with tensor ops on the layout's device (one stable sort of the window keys, run lengths by index_add,
/// positions by cumsum) and ONE read-back of two numbers (window count, longest window). Attention inside every window
/// is then one fused call: FlashAttention over the window-sorted rows (exact lengths, no padding) on CUDA, or one SDPA
/// over [num_windows, max_len] slots with a key mask elsewhere. Measured on an H100 (PyTorch fp16, 20K blob-shell
/// voxels, 768 channels, 12 heads): ~145 windows of up to ~350 voxels (mean ~135); the padded call incl.
/// scatter/gather took 0.65 ms vs 11 ms for a loop of per-window calls, with ~4x the exact attention FLOPs.
package final class SparseWindowPartition {
    let windowSize: Int
    let shift: Int
    package let windowCount: Int
    package let maxLength: Int
    /// [N] int64: the voxel rows sorted by window (stable), i.e. sorted position -> row.
    let order: Tensor
    /// [N] int64: row -> sorted position (the inverse permutation of `order`).
    let rank: Tensor
    /// [W + 1] int32: first sorted position of every window, then N.
    let windowStarts: Tensor
    /// [N] int64: slot (window * maxLength + position in window) of every voxel in the padded packing.
    let slot: Tensor
    /// [W, 1, 1, maxLength] bool, true = real voxel; nil when every window is full.
    let keyMask: Tensor?
    /// [N, 4] int32 (b, wx, wy, wz): the window of every voxel.
    let windowCoords: Tensor

    init(layout: SparseLayout, windowSize: Int, shift: Int) throws {
        guard windowSize > 0, shift >= 0 else {
            throw SparseTensorError("window size must be > 0 and shift >= 0, got \(windowSize), \(shift)")
        }
        self.windowSize = windowSize
        self.shift = shift
        let device = layout.device
        let n = layout.count
        let c = try layout.coords.to(.int64)
        let b = try c.select(1, 0)
        let w = try c.narrow(1, start: 1, length: 3).addingInt(shift).floorDividedInt(windowSize)
        let e = (layout.extent - 1 + shift) / windowSize + 1
        // Keys increase with (b, wx, wy, wz): sorting them orders the windows like TRELLIS' unique().
        let key = try ((b.multipliedInt(e) + w.select(1, 0)).multipliedInt(e) + w.select(1, 1)).multipliedInt(e) + w.select(1, 2)
        let order = try key.argsort(dim: 0, stable: true)
        let sortedKey = try key.indexSelect(0, order)
        let rows = try Tensor.arange(0, Double(n), dtype: .int64, device: device)
        // Window index of every sorted voxel: the number of key changes before it.
        let opens = try Tensor.cat([Tensor.zeros([1], dtype: .int64, device: device),
                                    sortedKey.narrow(0, start: 1, length: n - 1).ne(sortedKey.narrow(0, start: 0, length: n - 1)).to(.int64)],
                                   dim: 0)
        let sortedWindow = try opens.cumsum(0)
        // Window lengths in an [N] buffer (at most N windows), so nothing waits for the window count.
        let lengths = try Tensor.zeros([n], dtype: .int64, device: device).indexAdd(0, sortedWindow, Tensor.ones([n], dtype: .int64, device: device))
        let starts = try lengths.cumsum(0) - lengths
        let position = try rows - starts.indexSelect(0, sortedWindow)
        let sizes = try Tensor.stack([sortedWindow.select(0, n - 1).addingInt(1), lengths.max()], dim: 0).toArray(Int64.self)
        windowCount = Int(sizes[0])
        maxLength = Int(sizes[1])
        let counts = try lengths.narrow(0, start: 0, length: windowCount)

        self.order = order
        rank = try Tensor.empty([n], dtype: .int64, device: device).scatter(0, order, rows)
        windowStarts = try Tensor.cat([starts.narrow(0, start: 0, length: windowCount),
                                       Tensor.full([1], value: Double(n), dtype: .int64, device: device)], dim: 0).to(.int32)
        slot = try Tensor.empty([n], dtype: .int64, device: device).scatter(0, order, sortedWindow.multipliedInt(maxLength) + position)
        if windowCount * maxLength == n {
            keyMask = nil
        } else {
            let positions = try Tensor.arange(0, Double(maxLength), dtype: .int64, device: device)
            keyMask = try positions.unsqueeze(0).lt(counts.unsqueeze(1)).view([windowCount, 1, 1, maxLength])
        }
        windowCoords = try Tensor.cat([b.unsqueeze(1), w], dim: 1).to(.int32)
    }
}

extension SparseLayout {
    package func windowPartition(size: Int, shift: Int) throws -> SparseWindowPartition {
        try cached("window\(size)_\(shift)") { try SparseWindowPartition(layout: self, windowSize: size, shift: shift) }
    }

    /// [N, 4] int32 (b, wx, wy, wz): the shifted window of every voxel (for checks against the reference partition).
    public func windowCoords(size: Int, shift: Int) throws -> Tensor {
        try windowPartition(size: size, shift: shift).windowCoords
    }
}

/// Attention over the rows of sparse tensors. Inputs are rows [N, H, D]; outputs rows [N, H*D] in the layout's order.
public enum SparseAttention {
    /// Use FlashAttention directly where it applies (CUDA, fp16/bf16, head size % 8 == 0): exact-length windows and no
    /// SDPA backend choice (whose cuDNN backend builds a plan per new shape, i.e. per voxel set). Off: the padded
    /// SDPA path everywhere (the CPU path; for comparisons).
    nonisolated(unsafe) public static var useFlashAttention = true

    /// Why FlashAttention was turned off at run time (its first failure other than running out of memory), if it was.
    nonisolated(unsafe) public internal(set) static var flashFailure: String?

    package static func flash(_ t: Tensor) -> Bool {
        useFlashAttention && FlashAttention.supports(device: t.device, dtype: t.dtype, headSize: t.size(t.ndim - 1))
    }

    /// Runs the FlashAttention path; if the kernels refuse the call (e.g. a libtorch built without them, an older GPU),
    /// says so once on stderr, turns them off for the process and runs the SDPA path instead. Out-of-memory is rethrown.
    static func flashOrFallback(_ flashPath: () throws -> Tensor, otherwise fallback: () throws -> Tensor) throws -> Tensor {
        do {
            return try flashPath()
        } catch {
            let message = "\(error)"
            if message.contains("[oom]") { throw error }
            useFlashAttention = false
            flashFailure = message
            FileHandle.standardError.write(Data("FlashAttention failed, using SDPA from now on: \(message)\n".utf8))
            return try fallback()
        }
    }

    /// Full self-attention inside each batch item: FlashAttention varlen over the batch items' rows on CUDA, else one
    /// SDPA call over [B, H, Lmax, D] with a key mask when batch items differ in size.
    public static func full(q: Tensor, k: Tensor, v: Tensor, layout: SparseLayout) throws -> Tensor {
        let packing = try layout.batchPacking()
        guard flash(q) else { return try fullPadded(q: q, k: k, v: v, packing: packing) }
        return try flashOrFallback({
            try fullVarlen(q: q, k: k, v: v, packing: packing) { q, k, v, starts, longest in
                try FlashAttention.varlen(q: q, k: k, v: v, cuQ: starts, cuK: starts, maxQ: longest, maxK: longest)
            }
        }, otherwise: { try fullPadded(q: q, k: k, v: v, packing: packing) })
    }

    static func fullPadded(q: Tensor, k: Tensor, v: Tensor, packing: SparseBatchPacking) throws -> Tensor {
        let (n, h, d) = (q.size(0), q.size(1), q.size(2))
        func pack(_ t: Tensor) throws -> Tensor {
            try packing.pack(t.reshape([n, h * d])).view([packing.batchSize, packing.maxLength, h, d]).transpose(1, 2)
        }
        let o = try attention(pack(q), pack(k), pack(v), keyMask: packing.keyMask)
        return try packing.unpack(o.transpose(1, 2).reshape([packing.batchSize, packing.maxLength, h * d]))
    }

    /// Self-attention inside shifted windows (TRELLIS `sparse_windowed_scaled_dot_product_self_attention`).
    /// `qkv` is the fused projection [N, 3, H, D].
    public static func windowed(qkv: Tensor, layout: SparseLayout, windowSize: Int, shift: Int) throws -> Tensor {
        let part = try layout.windowPartition(size: windowSize, shift: shift)
        guard flash(qkv) else { return try windowedPadded(qkv: qkv, partition: part) }
        return try flashOrFallback({
            try windowedVarlen(qkv: qkv, partition: part) { q, k, v, starts, longest in
                try FlashAttention.varlen(q: q, k: k, v: v, cuQ: starts, cuK: starts, maxQ: longest, maxK: longest)
            }
        }, otherwise: { try windowedPadded(qkv: qkv, partition: part) })
    }

    /// One SDPA over [W, H, maxLength, D] window slots with the key mask.
    static func windowedPadded(qkv: Tensor, partition part: SparseWindowPartition) throws -> Tensor {
        let (n, h, d) = (qkv.size(0), qkv.size(2), qkv.size(3))
        let flat = try qkv.reshape([n, 3 * h * d])
        let packed = try Tensor.zeros([part.windowCount * part.maxLength, 3 * h * d], dtype: qkv.dtype, device: qkv.device)
        try packed.indexPut_([part.slot], flat)
        // [W, L, 3, H, D] -> [3, W, H, L, D]
        let heads = try packed.view([part.windowCount, part.maxLength, 3, h, d]).permute([2, 0, 3, 1, 4])
        let o = try F.scaledDotProductAttention(heads.select(0, 0), heads.select(0, 1), heads.select(0, 2),
                                                mask: part.keyMask)
        let rows = try o.transpose(1, 2).reshape([part.windowCount * part.maxLength, h * d])
        return try rows.indexSelect(0, part.slot)
    }

    /// Full attention on the rows as they are (batch items are contiguous runs): `attend(q, k, v, batchStarts,
    /// maxLength)` attends inside each run of rows [N, H, D]. Returns [N, H*D].
    static func fullVarlen(q: Tensor, k: Tensor, v: Tensor, packing: SparseBatchPacking,
                           attend: (Tensor, Tensor, Tensor, Tensor, Int) throws -> Tensor) throws -> Tensor {
        let o = try attend(q, k, v, packing.batchStarts, packing.maxLength)
        return try o.reshape([q.size(0), q.size(1) * q.size(2)])
    }

    /// Windowed attention on the window-sorted rows: `attend(q, k, v, windowStarts, maxLength)` attends inside each
    /// run of rows [N, H, D] delimited by `windowStarts` (int32 [W + 1]); the result goes back to row order.
    static func windowedVarlen(qkv: Tensor, partition part: SparseWindowPartition,
                               attend: (Tensor, Tensor, Tensor, Tensor, Int) throws -> Tensor) throws -> Tensor {
        let (n, h, d) = (qkv.size(0), qkv.size(2), qkv.size(3))
        let sorted = try qkv.indexSelect(0, part.order)
        let o = try attend(sorted.select(1, 0), sorted.select(1, 1), sorted.select(1, 2), part.windowStarts, part.maxLength)
        return try o.reshape([n, h * d]).indexSelect(0, part.rank)
    }

    /// Head-major attention q [B, H, Lq, D], k, v [B, H, Lk, D] with an optional key mask [B, 1, 1, Lk]:
    /// FlashAttention when it applies and nothing is masked, else SDPA.
    static func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, keyMask: Tensor?) throws -> Tensor {
        if keyMask == nil, flash(q) {
            return try flashOrFallback({ try FlashAttention.dense(q: q, k: k, v: v) },
                                       otherwise: { try F.scaledDotProductAttention(q, k, v) })
        }
        return try F.scaledDotProductAttention(q, k, v, mask: keyMask)
    }
}
