import Foundation
import NN
import TorchShim

/// For every voxel, the rows of its 27 neighbours at offsets d in {-1,0,1}^3 (x-major: k = 9(dx+1) + 3(dy+1) + (dz+1),
/// the order of spconv's [C_out, kx, ky, kz, C_in] weight), found through a dense int32 index grid (the row of every
/// occupied cell of a (extent+2)^3 box per batch item, -1 for empty cells; the +2 border makes every neighbour lookup
/// land inside the grid, so no clamping or validity mask is needed). All batched tensor ops on the layout's device:
/// one index_put to fill the grid, one gather of N x 27 cells. Built once per voxel set and shared by every
/// submanifold convolution on it.
package final class SparseNeighbourMap {
    static let kernelVolume = 27
    /// Largest dense grid we agree to allocate (cells over all batch items).
    static let maxGridCells = 1 << 28

    /// [N * 27] rows into the features padded with one zero row (row N stands for "no neighbour").
    let inputRows: Tensor
    /// [N * 27] rows into the per-offset product viewed as [(N + 1) * 27, C_out]: neighbour * 27 + k, where a missing
    /// neighbour reads row N * 27 + k, which is zero because the padded input row N is zero.
    let productRows: Tensor

    init(layout: SparseLayout) throws {
        let n = layout.count
        let p = layout.extent + 2
        let cells = layout.batchSize * p * p * p
        guard cells <= SparseNeighbourMap.maxGridCells else {
            throw SparseTensorError("sparse coordinates extend to \(layout.extent) per axis over \(layout.batchSize) batch "
                                    + "item(s): the neighbour grid would need \(cells) cells (limit \(SparseNeighbourMap.maxGridCells))")
        }
        let device = layout.device
        let c = try layout.coords.to(.int64)
        let b = try c.select(1, 0), x = try c.select(1, 1), y = try c.select(1, 2), z = try c.select(1, 3)
        // Linear cell of (b, x+1, y+1, z+1) in the padded grid.
        let cell = try ((b.multipliedInt(p) + x.addingInt(1)).multipliedInt(p) + y.addingInt(1)).multipliedInt(p) + z.addingInt(1)
        let grid = try Tensor.full([cells], value: -1, dtype: .int32, device: device)
        try grid.indexPut_([cell], Tensor.arange(0, Double(n), dtype: .int32, device: device))

        let lookup = try (cell.unsqueeze(1) + SparseNeighbourMap.cellOffsets(gridSize: p, device: device).unsqueeze(0)).reshape([-1])
        let neighbour = try grid.indexSelect(0, lookup).to(.int64)
        let missing = try neighbour.lt(0)
        let rows = try Tensor.where(missing, Tensor.full([], value: Double(n), dtype: .int64, device: device), neighbour)
        inputRows = rows
        let k = try Tensor.arange(0, 27, dtype: .int64, device: device).unsqueeze(0).expand([n, 27]).reshape([-1])
        productRows = try rows.multipliedInt(27) + k
    }

    /// [27] int64 linear offsets (dx p + dy) p + dz of the 27 neighbours in a grid of side p, x-major, made on the device.
    static func cellOffsets(gridSize p: Int, device: Device) throws -> Tensor {
        let k = try Tensor.arange(0, 27, dtype: .int64, device: device)
        let dx = try k.floorDividedInt(9).addingInt(-1)
        let dy = try (k.floorDividedInt(3) - k.floorDividedInt(9).multipliedInt(3)).addingInt(-1)
        let dz = try (k - k.floorDividedInt(3).multipliedInt(3)).addingInt(-1)
        return try (dx.multipliedInt(p) + dy).multipliedInt(p) + dz
    }
}

extension SparseLayout {
    package func neighbourMap() throws -> SparseNeighbourMap {
        try cached("submanifold3") { try SparseNeighbourMap(layout: self) }
    }
}

/// spconv `SubMConv3d` with a 3x3x3 kernel (TRELLIS `SparseConv3d(in, out, 3)`): an output at every input voxel,
/// out[p] = bias + sum_d W[:, d+1, :] · in[p + d] (cross-correlation, missing neighbours contribute zero).
/// Keys: `conv.weight` [C_out, 3, 3, 3, C_in], `conv.bias` [C_out].
///
/// Computed as gather + one GEMM, gathering on the narrower side of the GEMM:
/// - gather-first (C_in <= 2 C_out): gather the 27 neighbour rows of the input into [N, 27*C_in] (im2col) and multiply
///   once by the weight viewed as [C_out, 27*C_in] (a view of the stored layout);
/// - product-first (C_in > 2 C_out): multiply every voxel once by all 27 kernel slices ([N, C_in] x [C_in, 27*C_out])
///   and gather-sum the 27 neighbour products.
/// Both are one large GEMM with the same FLOPs (K = 27*C_in, or N = 27*C_out, keeps tensor cores busy); they differ
/// in the gathered buffer, N*27*C_in vs N*27*C_out elements. The alternative of 27 accumulated GEMMs moves the same
/// gathered data, re-reads and re-writes the [N, C_out] accumulator 27 times and runs 27 small-K GEMMs plus 54 launches.
/// Measured on an H100 (PyTorch fp16, 40K voxels = CFG batch of 20K, or 12K coarse voxels), ms:
///   128->128: gather-first 0.78, product-first 0.91, 27 GEMMs 1.59;  2048->128: 4.54 / 1.53 / 8.39;
///   256->128: 0.88 / 0.92 / 1.68;  128->1024: 0.34 / 1.00 / 1.65;  1024->1024: 1.29 / 1.64 / 2.40.
/// so product-first only pays when C_in is well above C_out (the first out block of the SLat flow, 2048 -> 128).
public struct SparseSubMConv3d {
    public let inChannels: Int
    public let outChannels: Int
    public let bias: Tensor?
    /// [C_out, 27*C_in] (gather-first) or [27*C_out, C_in] (product-first).
    let matrix: Tensor
    let gatherInputs: Bool

    public init(_ w: WeightLoader, inChannels: Int, outChannels: Int) throws {
        let conv = w.pp("conv")
        let weight = try conv.tensor("weight", shape: [outChannels, 3, 3, 3, inChannels])
        bias = try conv.tensor("bias", shape: [outChannels])
        self.inChannels = inChannels
        self.outChannels = outChannels
        gatherInputs = inChannels <= 2 * outChannels
        if gatherInputs {
            matrix = try weight.reshape([outChannels, 27 * inChannels])
        } else {
            matrix = try weight.permute([1, 2, 3, 0, 4]).reshape([27 * outChannels, inChannels]).contiguous()
        }
    }

    public func callAsFunction(_ x: SparseTensor) throws -> SparseTensor {
        guard x.channels == inChannels else {
            throw SparseTensorError("sparse conv expects \(inChannels) channels, got \(x.channels)")
        }
        let map = try x.layout.neighbourMap()
        let n = x.layout.count
        let padded = try Tensor.cat([x.feats, Tensor.zeros([1, inChannels], dtype: x.dtype, device: x.device)], dim: 0)
        let out: Tensor
        if gatherInputs {
            let columns = try padded.indexSelect(0, map.inputRows).view([n, 27 * inChannels])
            out = try F.linear(columns, matrix, bias)
        } else {
            let products = try F.linear(padded, matrix).view([(n + 1) * 27, outChannels])
            let summed = try products.indexSelect(0, map.productRows).view([n, 27, outChannels]).sum(1)
            out = try bias.map { try summed + $0 } ?? summed
        }
        return try x.replacing(out)
    }
}

/// The coarse voxel set of a 2x downsampling and the map from fine rows to coarse rows.
package final class SparseDownsampling {
    package let coarse: SparseLayout
    /// [N_fine] int64: coarse row of each fine voxel.
    let fineToCoarse: Tensor

    init(fine: SparseLayout) throws {
        let c = try fine.coords.to(.int64)
        let e = (fine.extent + 1) / 2
        let b = try c.select(1, 0)
        let x = try c.select(1, 1).floorDividedInt(2)
        let y = try c.select(1, 2).floorDividedInt(2)
        let z = try c.select(1, 3).floorDividedInt(2)
        // Codes increase with (b, x, y, z), so sorted unique codes give coarse voxels in TRELLIS' order.
        let code = try ((b.multipliedInt(e) + x).multipliedInt(e) + y).multipliedInt(e) + z
        let (unique, inverse, _) = try code.unique(returnInverse: true)
        guard let inverse else { throw SparseTensorError("downsample: unique returned no inverse") }
        let cz = try unique - unique.floorDividedInt(e).multipliedInt(e)
        let rest1 = try unique.floorDividedInt(e)
        let cy = try rest1 - rest1.floorDividedInt(e).multipliedInt(e)
        let rest2 = try rest1.floorDividedInt(e)
        let cx = try rest2 - rest2.floorDividedInt(e).multipliedInt(e)
        let cb = try rest2.floorDividedInt(e)
        let coarseCoords = try Tensor.stack([cb, cx, cy, cz], dim: 1).to(.int32).contiguous()
        // Every fine batch item has a voxel, so every coarse one does; with one item its size is the unique count.
        let counts: [Int]
        if fine.batchSize == 1 {
            counts = [coarseCoords.size(0)]
        } else {
            let offsets = try SparseLayout.batchOffsets(batchColumn: coarseCoords, batchSize: fine.batchSize)
            counts = (0..<fine.batchSize).map { offsets[$0 + 1] - offsets[$0] }
        }
        // max(x // 2) = max(x) // 2, so the coarse extent follows from the fine one.
        coarse = SparseLayout(derived: coarseCoords, counts: counts, extent: (fine.extent - 1) / 2 + 1)
        fineToCoarse = try inverse.reshape([-1]).to(.int64)
        coarse.store("upsample2", SparseUpsampling(fine: fine, fineToCoarse: fineToCoarse))
    }
}

/// Link from a coarse voxel set back to the fine set it came from (weak: the fine layout owns the coarse one).
final class SparseUpsampling {
    weak var fine: SparseLayout?
    let fineToCoarse: Tensor
    init(fine: SparseLayout, fineToCoarse: Tensor) {
        self.fine = fine
        self.fineToCoarse = fineToCoarse
    }
}

extension SparseLayout {
    package func downsampling2() throws -> SparseDownsampling {
        try cached("downsample2") { try SparseDownsampling(fine: self) }
    }
}

public enum SparseResample {
    /// TRELLIS `SparseDownsample(2)`: coarse coordinate = fine // 2, coarse voxels sorted by (b, x, y, z).
    /// The feature is `scatter_reduce(zeros, ..., reduce="mean")` with PyTorch's default `include_self=True`, exactly as
    /// the reference: the zero it starts from counts as one more element, so a coarse voxel with k fine voxels gets
    /// sum / (k + 1), not the plain mean.
    public static func downsample(_ x: SparseTensor) throws -> SparseTensor {
        let down = try x.layout.downsampling2()
        let m = down.coarse.count, c = x.channels
        let index = try down.fineToCoarse.unsqueeze(1).expand([x.layout.count, c])
        let zeros = try Tensor.zeros([m, c], dtype: x.dtype, device: x.device)
        let feats = try zeros.scatterReduce(0, index, x.feats, .mean, includeSelf: true)
        return try SparseTensor(feats: feats, layout: down.coarse)
    }

    /// TRELLIS `SparseUpsample(2)`: back to the fine voxel set that `downsample` came from (same coordinates and
    /// order), every fine voxel copying its coarse parent.
    public static func upsample(_ x: SparseTensor) throws -> SparseTensor {
        guard let link: SparseUpsampling = x.layout.lookup("upsample2") else {
            throw SparseTensorError("sparse upsample needs a tensor made by SparseResample.downsample")
        }
        guard let fine = link.fine else {
            throw SparseTensorError("sparse upsample: the fine voxel set of this tensor no longer exists")
        }
        return try SparseTensor(feats: x.feats.indexSelect(0, link.fineToCoarse), layout: fine)
    }

    /// Coarse coordinates and the fine-to-coarse row map of a layout's 2x downsampling (for checks).
    public static func downsampleMap(_ layout: SparseLayout) throws -> (coarse: SparseLayout, fineToCoarse: Tensor) {
        let down = try layout.downsampling2()
        return (down.coarse, down.fineToCoarse)
    }
}
