import Foundation
import TorchShim

/// Something wrong with sparse-tensor input (coordinates, feature rows, batch layout).
public struct SparseTensorError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The voxel set of a sparse tensor: coordinates [N, 4] int32 (batch, x, y, z), rows of one batch contiguous and
/// batches ascending (TRELLIS' convention). Everything derived from the coordinates alone (neighbour maps of the
/// submanifold convolution, window partitions, the 2x downsampling, the dense packing of full attention) is built
/// once and kept here, so every sparse tensor that shares this layout (all convs of a resolution, all blocks, all
/// sampler steps) reuses it: the equivalent of TRELLIS' per-tensor spatial cache.
public final class SparseLayout: @unchecked Sendable {
    /// [N, 4] int32 (b, x, y, z) on the layout's device.
    public let coords: Tensor
    /// Number of batch items (batch indices are 0..<batchSize, none empty).
    public let batchSize: Int
    /// Voxels of each batch item.
    public let counts: [Int]
    /// First row of each batch item; `offsets[batchSize] == count`.
    public let offsets: [Int]
    /// Largest spatial coordinate + 1 over all axes (the extent that dense index grids must cover).
    public let extent: Int

    private var cache: [String: AnyObject] = [:]
    private let lock = NSLock()

    public var count: Int { offsets[batchSize] }
    public var device: Device { coords.device }

    /// Checks and adopts `coords` ([N, 4] integer, any device). Batch indices must ascend from 0 with every batch
    /// present and spatial coordinates must be >= 0. The checks are tensor reductions on the coordinates' device; the
    /// host reads back six numbers (plus the B + 1 batch offsets when there is more than one batch item).
    public init(coords: Tensor) throws {
        guard coords.ndim == 2, coords.size(1) == 4 else {
            throw SparseTensorError("sparse coords must be [N, 4] (b, x, y, z), got \(coords.shape)")
        }
        guard !coords.dtype.isFloatingPoint, coords.dtype != .bool else {
            throw SparseTensorError("sparse coords must be an integer tensor, got \(coords.dtype)")
        }
        let n = coords.size(0)
        guard n > 0 else { throw SparseTensorError("sparse tensor has no voxels") }
        let c = try (coords.dtype == .int32 ? coords : coords.to(.int32)).contiguous()
        let summary = try CoordinateSummary(c)
        let batchSize = summary.lastBatch + 1
        self.coords = c
        self.batchSize = batchSize
        let offsets = batchSize == 1 ? [0, n] : try SparseLayout.batchOffsets(batchColumn: c, batchSize: batchSize)
        self.offsets = offsets
        self.counts = (0..<batchSize).map { offsets[$0 + 1] - offsets[$0] }
        self.extent = summary.maxCoordinate + 1
    }

    /// Adopts coordinates derived by tensor ops from a checked layout (so valid by construction), with their batch
    /// sizes and extent known on the host: nothing is read back.
    init(derived coords: Tensor, counts: [Int], extent: Int) {
        self.coords = coords
        self.counts = counts
        self.batchSize = counts.count
        var offsets = [0]
        offsets.reserveCapacity(counts.count + 1)
        for k in counts { offsets.append(offsets[offsets.count - 1] + k) }
        self.offsets = offsets
        self.extent = extent
    }

    /// First row of every batch item and the row count, [batchSize + 1], for coordinates sorted by batch index
    /// (a binary search per batch item on the device, one small read-back).
    static func batchOffsets(batchColumn coords: Tensor, batchSize: Int) throws -> [Int] {
        let batch = try coords.select(1, 0).to(.int64).contiguous()
        let items = try Tensor.arange(0, Double(batchSize + 1), dtype: .int64, device: coords.device)
        return try Tensor.searchsorted(batch, items).toArray(Int64.self).map { Int($0) }
    }

    /// The same voxel set repeated under batch indices 0..<copies (e.g. conditional and unconditional passes of
    /// classifier-free guidance in one forward). `coords` must hold batch items 0..<B; copy k gets k*B + b.
    public static func repeated(_ layout: SparseLayout, copies: Int) throws -> SparseLayout {
        guard copies >= 1 else { throw SparseTensorError("repeat count must be >= 1, got \(copies)") }
        if copies == 1 { return layout }
        let key = "repeated\(copies)"
        return try layout.cached(key) {
            let batch = try layout.coords.narrow(1, start: 0, length: 1)
            let spatial = try layout.coords.narrow(1, start: 1, length: 3)
            var parts: [Tensor] = []
            for k in 0..<copies {
                parts.append(try Tensor.cat([batch.addingInt(k * layout.batchSize), spatial], dim: 1))
            }
            let counts = Array([[Int]](repeating: layout.counts, count: copies).joined())
            return SparseLayout(derived: try Tensor.cat(parts, dim: 0), counts: counts, extent: layout.extent)
        }
    }

    /// Batch index of every row, [N] int64 on the device (for broadcasting per-batch vectors to rows).
    public func batchIndex() throws -> Tensor {
        try cached("batchIndex") { try coords.select(1, 0).to(.int64) }
    }

    /// Expands a per-batch tensor [B, C] to rows [N, C].
    public func perRow(_ perBatch: Tensor) throws -> Tensor {
        guard perBatch.size(0) == batchSize else {
            throw SparseTensorError("per-batch tensor has \(perBatch.size(0)) rows, the sparse tensor has \(batchSize) batch items")
        }
        if batchSize == 1 { return try perBatch.expand([count, perBatch.size(1)]) }
        return try perBatch.indexSelect(0, batchIndex())
    }

    /// Returns the cached value for `key`, building it on first use.
    func cached<T: AnyObject>(_ key: String, _ build: () throws -> T) throws -> T {
        lock.lock()
        if let hit = cache[key] as? T { lock.unlock(); return hit }
        lock.unlock()
        let value = try build()
        lock.lock()
        cache[key] = value
        lock.unlock()
        return value
    }

    /// Stores a derived object under `key` (used to link a coarse layout back to its fine one).
    func store(_ key: String, _ value: AnyObject) {
        lock.lock()
        cache[key] = value
        lock.unlock()
    }

    func lookup<T: AnyObject>(_ key: String, as type: T.Type = T.self) -> T? {
        lock.lock()
        defer { lock.unlock() }
        return cache[key] as? T
    }
}

/// What `SparseLayout` checks about its coordinates, reduced on the device and read back as six numbers:
/// first and last batch index, smallest and largest step between consecutive batch indices, smallest and largest
/// spatial coordinate. A violation is located (a few more reads) only to name it in the error.
private struct CoordinateSummary {
    let lastBatch: Int
    let maxCoordinate: Int

    init(_ coords: Tensor) throws {
        let n = coords.size(0)
        let batch = try coords.select(1, 0).to(.int64)
        let spatial = try coords.narrow(1, start: 1, length: 3)
        var parts = [try batch.narrow(0, start: 0, length: 1), try batch.narrow(0, start: n - 1, length: 1)]
        let steps = n > 1 ? try batch.narrow(0, start: 1, length: n - 1) - batch.narrow(0, start: 0, length: n - 1) : nil
        if let steps {
            parts += [try steps.min().reshape([1]), try steps.max().reshape([1])]
        } else {
            parts += [try batch.narrow(0, start: 0, length: 1).zerosLike(), try batch.narrow(0, start: 0, length: 1).zerosLike()]
        }
        parts += [try spatial.min().to(.int64).reshape([1]), try spatial.max().to(.int64).reshape([1])]
        let v = try Tensor.cat(parts, dim: 0).toArray(Int64.self).map { Int($0) }
        let (first, last, minStep, maxStep, minCoordinate, maxCoordinate) = (v[0], v[1], v[2], v[3], v[4], v[5])
        guard first == 0 else { throw SparseTensorError("sparse coords: first batch index is \(first), expected 0") }
        if let steps, minStep < 0 || maxStep > 1 {
            let row = try steps.lt(0).logicalOr(steps.gt(1)).to(.int32).argmax(0).itemInt() + 1
            let pair = try batch.narrow(0, start: row - 1, length: 2).toArray(Int64.self)
            throw SparseTensorError("sparse coords: batch index jumps from \(pair[0]) to \(pair[1]) at row \(row) "
                                    + "(batches must ascend by one, rows of a batch contiguous)")
        }
        if minCoordinate < 0 {
            let row = try spatial.amin([1]).argmin(0).itemInt()
            throw SparseTensorError("sparse coords: negative coordinate \(minCoordinate) at row \(row)")
        }
        lastBatch = last
        self.maxCoordinate = maxCoordinate
    }
}

/// Features on a voxel set: `feats` [N, C] in the layout's row order.
public struct SparseTensor {
    public let feats: Tensor
    public let layout: SparseLayout

    public init(feats: Tensor, layout: SparseLayout) throws {
        guard feats.ndim == 2, feats.size(0) == layout.count else {
            throw SparseTensorError("sparse feats must be [\(layout.count), C] to match the coordinates, got \(feats.shape)")
        }
        self.feats = feats
        self.layout = layout
    }

    /// A sparse tensor from coordinates and features (builds a new layout).
    public init(coords: Tensor, feats: Tensor) throws {
        try self.init(feats: feats, layout: SparseLayout(coords: coords))
    }

    /// Same voxels, new features (no checks beyond the row count).
    public func replacing(_ newFeats: Tensor) throws -> SparseTensor {
        try SparseTensor(feats: newFeats, layout: layout)
    }

    public var coords: Tensor { layout.coords }
    public var channels: Int { feats.size(1) }
    public var dtype: DType { feats.dtype }
    public var device: Device { feats.device }

    /// Features of batch item `b` ([count_b, C], a view).
    public func feats(batch b: Int) throws -> Tensor {
        try feats.narrow(0, start: layout.offsets[b], length: layout.counts[b])
    }
}

/// Full attention per batch item through one fused SDPA call: rows are packed into [B, Lmax, C] (a view when all
/// batch items have the same number of voxels, as in classifier-free guidance), with a key mask for padding.
package final class SparseBatchPacking {
    let batchSize: Int
    let maxLength: Int
    /// Row -> slot in [B * Lmax] (nil when the packing is a plain view).
    let slot: Tensor?
    /// [B, 1, 1, Lmax] bool, true = real voxel (nil when nothing is padded).
    let keyMask: Tensor?
    /// [B + 1] int32 on the device: first row of every batch item, then N (the runs of variable-length attention).
    let batchStarts: Tensor

    init(layout: SparseLayout) throws {
        batchSize = layout.batchSize
        let longest = layout.counts.max()!
        maxLength = longest
        batchStarts = try Tensor(layout.offsets.map { Int32($0) }).to(layout.device)
        if layout.counts.allSatisfy({ $0 == longest }) {
            slot = nil
            keyMask = nil
            return
        }
        let device = layout.device
        let rows = try Tensor.arange(0, Double(layout.count), dtype: .int64, device: device)
        let starts = try Tensor(layout.offsets.dropLast().map { Int64($0) }).to(device)
        let batch = try layout.batchIndex()
        slot = try batch.multipliedInt(maxLength) + (rows - starts.indexSelect(0, batch))
        let counts = try Tensor(layout.counts.map { Int64($0) }).to(device)
        let positions = try Tensor.arange(0, Double(maxLength), dtype: .int64, device: device)
        keyMask = try positions.unsqueeze(0).lt(counts.unsqueeze(1)).view([batchSize, 1, 1, maxLength])
    }

    /// [N, C] -> [B, Lmax, C].
    func pack(_ rows: Tensor) throws -> Tensor {
        let c = rows.size(1)
        guard let slot else { return try rows.view([batchSize, maxLength, c]) }
        let packed = try Tensor.zeros([batchSize * maxLength, c], dtype: rows.dtype, device: rows.device)
        try packed.indexPut_([slot], rows)
        return try packed.view([batchSize, maxLength, c])
    }

    /// [B, Lmax, C] -> [N, C] in the layout's row order.
    func unpack(_ packed: Tensor) throws -> Tensor {
        let c = packed.size(2)
        guard let slot else { return try packed.reshape([batchSize * maxLength, c]) }
        return try packed.reshape([batchSize * maxLength, c]).indexSelect(0, slot)
    }
}

extension SparseLayout {
    /// The dense [B, Lmax, C] packing used by full attention (and the SLat flow's transformer stack).
    package func batchPacking() throws -> SparseBatchPacking {
        try cached("batchPacking") { try SparseBatchPacking(layout: self) }
    }
}

extension Tensor {
    /// A 0-d tensor of this tensor's dtype and device: integer arithmetic with it stays exact and keeps the dtype
    /// (a Double scalar would promote an integer tensor to floating point).
    func intScalar(_ v: Int) throws -> Tensor { try Tensor.full([], value: Double(v), dtype: dtype, device: device) }
    func addingInt(_ v: Int) throws -> Tensor { try self + intScalar(v) }
    package func multipliedInt(_ v: Int) throws -> Tensor { try self * intScalar(v) }
    package func floorDividedInt(_ v: Int) throws -> Tensor { try floorDivide(intScalar(v)) }
}
