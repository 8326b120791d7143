import Foundation
@testable import Models
import NN
import Fixtures
import TorchShim
import XCTest
import Diagnostics

/// The coordinate-derived structures built with tensor ops (layout checks, derived layouts, window runs for the
/// variable-length attention kernel) and the precomputed cross-attention keys/values, on CPU against plain
/// recomputations. The fixture parity of the networks that use them is in TrellisSparseTests / TrellisDenseTests.
final class TrellisLayoutTests: XCTestCase {
    private func decoderCoords() throws -> Tensor {
        guard let dir = TrellisSparseFixturePaths.trellisFolder() else {
            throw MissingFixture("shared/fixtures/trellis not found beside the package")
        }
        return try SafeTensorsFile(url: dir.appendingPathComponent("slat_dec_gs_io.safetensors")).tensor("input.coords")
    }

    /// Three batch items of random occupancy in a 9 x 10 x 11 box, rows sorted by (b, x, y, z).
    private func randomCoords(seed: UInt64) throws -> Tensor {
        try Tensor.rand([3, 9, 10, 11], generator: Generator(seed: seed)).lt(0.3).nonzero().to(.int32)
    }

    private func assertSameShape(_ a: SparseLayout, _ b: SparseLayout, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.counts, b.counts, file: file, line: line)
        XCTAssertEqual(a.offsets, b.offsets, file: file, line: line)
        XCTAssertEqual(a.batchSize, b.batchSize, file: file, line: line)
        XCTAssertEqual(a.extent, b.extent, file: file, line: line)
        XCTAssertTrue(try a.coords.equal(b.coords), file: file, line: line)
    }

    func testLayoutSizesFromReductions() throws {
        let coords = try randomCoords(seed: 11)
        let layout = try SparseLayout(coords: coords)
        let host = try coords.toArray(Int32.self)
        var counts = [0, 0, 0]
        var extent: Int32 = 0
        for i in 0..<coords.size(0) {
            counts[Int(host[4 * i])] += 1
            extent = max(extent, host[4 * i + 1], host[4 * i + 2], host[4 * i + 3])
        }
        XCTAssertEqual(layout.counts, counts)
        XCTAssertEqual(layout.offsets, [0, counts[0], counts[0] + counts[1], coords.size(0)])
        XCTAssertEqual(layout.extent, Int(extent) + 1)
        // int64 input is adopted as int32.
        try assertSameShape(SparseLayout(coords: coords.to(.int64)), layout)
        let single = try SparseLayout(coords: Tensor([Int32]([0, 4, 0, 2]), shape: [1, 4]))
        XCTAssertEqual(single.counts, [1])
        XCTAssertEqual(single.extent, 5)
    }

    func testLayoutErrorsNameTheRow() throws {
        let jump = try Tensor([Int32]([0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0]), shape: [3, 4])
        XCTAssertThrowsError(try SparseLayout(coords: jump)) {
            XCTAssertTrue("\($0)".contains("jumps from 0 to 2 at row 2"), "\($0)")
        }
        let backwards = try Tensor([Int32]([0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 5]), shape: [3, 4])
        XCTAssertThrowsError(try SparseLayout(coords: backwards)) {
            XCTAssertTrue("\($0)".contains("jumps from 1 to 0 at row 2"), "\($0)")
        }
        let negative = try Tensor([Int32]([0, 0, 0, 0, 0, 3, -2, 1]), shape: [2, 4])
        XCTAssertThrowsError(try SparseLayout(coords: negative)) {
            XCTAssertTrue("\($0)".contains("negative coordinate -2 at row 1"), "\($0)")
        }
        let start = try Tensor([Int32]([2, 0, 0, 0]), shape: [1, 4])
        XCTAssertThrowsError(try SparseLayout(coords: start)) {
            XCTAssertTrue("\($0)".contains("first batch index is 2"), "\($0)")
        }
    }

    /// Layouts derived without a read-back (CFG copies, the 2x downsampling) equal checked layouts of their coordinates.
    func testDerivedLayoutsMatchCheckedOnes() throws {
        for coords in [try randomCoords(seed: 12), try decoderCoords()] {
            let layout = try SparseLayout(coords: coords)
            let doubled = try SparseLayout.repeated(layout, copies: 2)
            try assertSameShape(doubled, SparseLayout(coords: doubled.coords))
            for fine in [layout, doubled] {
                let coarse = try SparseResample.downsampleMap(fine).coarse
                try assertSameShape(coarse, SparseLayout(coords: coarse.coords))
            }
        }
    }

    /// The window runs that the CUDA path hands to FlashAttention varlen: voxels sorted by window (rows in order inside
    /// a window), run starts, longest run, and the inverse order. Attending inside each run and un-sorting gives the
    /// padded-SDPA result.
    func testWindowRunsReproduceThePaddedAttention() throws {
        let layout = try SparseLayout(coords: decoderCoords())
        let n = layout.count
        let (h, d) = (2, 4)
        let qkv = try Tensor.randn([n, 3, h, d], generator: Generator(seed: 4))
        for shift in [0, 4] {
            let part = try layout.windowPartition(size: 8, shift: shift)
            let order = try part.order.toArray(Int64.self).map { Int($0) }
            XCTAssertEqual(order.sorted(), Array(0..<n))
            XCTAssertEqual(try part.rank.indexSelect(0, part.order).toArray(Int64.self), (0..<n).map { Int64($0) })

            // Runs from the window coordinates, in the (b, wx, wy, wz) order of the sorted keys.
            let windows = try layout.windowCoords(size: 8, shift: shift).toArray(Int32.self)
            func window(_ row: Int) -> [Int32] { Array(windows[4 * row ..< 4 * row + 4]) }
            var starts = [0]
            for i in 1..<n where window(order[i]) != window(order[i - 1]) {
                XCTAssertTrue(window(order[i]).lexicographicallyPrecedes(window(order[i - 1])) == false)
                starts.append(i)
            }
            for i in 1..<n where window(order[i]) == window(order[i - 1]) { XCTAssertLessThan(order[i - 1], order[i]) }
            starts.append(n)
            XCTAssertEqual(try part.windowStarts.toArray(Int32.self).map { Int($0) }, starts)
            XCTAssertEqual(part.windowCount, starts.count - 1)
            XCTAssertEqual(part.maxLength, zip(starts.dropFirst(), starts).map { $0 - $1 }.max())

            let runs = try SparseAttention.windowedVarlen(qkv: qkv, partition: part) { q, k, v, cu, longest in
                let bounds = try cu.toArray(Int32.self).map { Int($0) }
                XCTAssertEqual(longest, part.maxLength)
                var parts: [Tensor] = []
                for w in 0..<(bounds.count - 1) {
                    func heads(_ t: Tensor) throws -> Tensor {
                        try t.narrow(0, start: bounds[w], length: bounds[w + 1] - bounds[w]).transpose(0, 1).unsqueeze(0)
                    }
                    parts.append(try F.scaledDotProductAttention(heads(q), heads(k), heads(v)).squeeze(0).transpose(0, 1))
                }
                return try Tensor.cat(parts, dim: 0)
            }
            let padded = try SparseAttention.windowed(qkv: qkv, layout: layout, windowSize: 8, shift: shift)
            let cmp = try TensorComparison.compare("window runs shift \(shift)", got: runs, expected: padded, atol: 1e-5)
            XCTAssertTrue(cmp.passed, cmp.description)
        }
    }

    /// The batch runs handed to FlashAttention varlen by `SparseAttention.full` on CUDA give the masked-SDPA result.
    func testBatchRunsReproduceTheMaskedAttention() throws {
        let layout = try SparseLayout(coords: randomCoords(seed: 13))
        XCTAssertEqual(layout.batchSize, 3)
        let gen = try Generator(seed: 6)
        let (n, h, d) = (layout.count, 2, 4)
        let q = try Tensor.randn([n, h, d], generator: gen), k = try Tensor.randn([n, h, d], generator: gen)
        let v = try Tensor.randn([n, h, d], generator: gen)
        let packing = try layout.batchPacking()
        let runs = try SparseAttention.fullVarlen(q: q, k: k, v: v, packing: packing) { q, k, v, cu, longest in
            let bounds = try cu.toArray(Int32.self).map { Int($0) }
            XCTAssertEqual(bounds, layout.offsets)
            XCTAssertEqual(longest, layout.counts.max())
            return try Tensor.cat((0..<(bounds.count - 1)).map { b in
                func heads(_ t: Tensor) throws -> Tensor {
                    try t.narrow(0, start: bounds[b], length: bounds[b + 1] - bounds[b]).transpose(0, 1).unsqueeze(0)
                }
                return try F.scaledDotProductAttention(heads(q), heads(k), heads(v)).squeeze(0).transpose(0, 1)
            }, dim: 0)
        }
        let masked = try SparseAttention.full(q: q, k: k, v: v, layout: layout)
        let cmp = try TensorComparison.compare("batch runs", got: runs, expected: masked, atol: 1e-5)
        XCTAssertTrue(cmp.passed, cmp.description)
    }

    /// A kernel failure turns FlashAttention off (once, with the reason kept) and answers through SDPA; OOM is rethrown.
    func testFlashFailureFallsBackToSDPA() throws {
        let (before, failure) = (SparseAttention.useFlashAttention, SparseAttention.flashFailure)
        defer { (SparseAttention.useFlashAttention, SparseAttention.flashFailure) = (before, failure) }
        SparseAttention.useFlashAttention = true
        let out = try SparseAttention.flashOrFallback({ throw SparseTensorError("no kernel image for this device") },
                                                      otherwise: { try Tensor.ones([1]) })
        XCTAssertEqual(try out.item(), 1)
        XCTAssertFalse(SparseAttention.useFlashAttention)
        XCTAssertEqual(SparseAttention.flashFailure, "no kernel image for this device")
        SparseAttention.useFlashAttention = true
        XCTAssertThrowsError(try SparseAttention.flashOrFallback({ throw SparseTensorError("[oom] CUDA out of memory") },
                                                                 otherwise: { try Tensor.ones([1]) }))
        XCTAssertTrue(SparseAttention.useFlashAttention)
    }

    func testFlashAttentionIsOnlyChosenOnCUDA() throws {
        XCTAssertFalse(FlashAttention.supports(device: .cpu, dtype: .float16, headSize: 64))
        XCTAssertFalse(FlashAttention.supports(device: .cuda(0), dtype: .float32, headSize: 64))
        XCTAssertFalse(FlashAttention.supports(device: .cuda(0), dtype: .float16, headSize: 60))
        XCTAssertFalse(SparseAttention.flash(try Tensor.zeros([4, 3, 2, 8], dtype: .float16)))
        // Called anyway on CPU tensors, the kernel reports PyTorch's error instead of crashing.
        let q = try Tensor.zeros([4, 2, 8], dtype: .float16)
        let cu = try Tensor([Int32]([0, 4]))
        XCTAssertThrowsError(try FlashAttention.varlen(q: q, k: q, v: q, cuQ: cu, cuK: cu, maxQ: 4, maxK: 4))
        XCTAssertThrowsError(try FlashAttention.dense(q: q.unsqueeze(0), k: q.unsqueeze(0), v: q.unsqueeze(0)))
        let before = SDPBackends.cuDNNEnabled
        SDPBackends.cuDNNEnabled = !before
        XCTAssertEqual(SDPBackends.cuDNNEnabled, !before)
        SDPBackends.cuDNNEnabled = before
    }

    /// Keys/values prepared once give exactly the per-call forward; a condition of the wrong batch is refused.
    func testPreparedSLatConditionIsExact() throws {
        guard let dir = TrellisSparseFixturePaths.trellisFolder() else { throw MissingFixture("fixtures not found") }
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("slat_flow.json")))
                                 as? [String: Any])
        let flow = try TrellisSparseFixtures.loadFlow(FixtureCase(directory: dir, stem: "slat_flow", json: json))
        let io = try SafeTensorsFile(url: dir.appendingPathComponent("slat_flow_io.safetensors"))
        let x = try SparseTensor(coords: io.tensor("b2.input.coords"), feats: io.tensor("b2.input.feats"))
        let cond = try io.tensor("b2.input.cond"), t = try io.tensor("b2.input.t")
        let condition = try flow.condition(cond)
        XCTAssertTrue(try flow(x, t: t, condition: condition).feats.equal(flow(x, t: t, cond: cond).feats))
        let single = try flow.condition(cond.narrow(0, start: 0, length: 1))
        XCTAssertThrowsError(try flow(x, t: t, condition: single)) { XCTAssertTrue("\($0)".contains("batch"), "\($0)") }
    }

    func testPreparedConditionsAreReusedPerTensor() throws {
        var prepared = 0
        let cache = PreparedConditions<Int> { _ in prepared += 1; return prepared }
        let a = try Tensor.zeros([1, 2, 3]), b = try Tensor.zeros([1, 2, 3])
        XCTAssertEqual(try cache(a), 1)
        XCTAssertEqual(try cache(b), 2)
        XCTAssertEqual(try cache(a), 1)
        XCTAssertEqual(prepared, 2)
    }

    /// The layout benchmark runs on CPU (its numbers are not checked; see docs/bench for measurements).
    func testLayoutBenchmarkRunsOnCPU() throws {
        let rows = try TrellisSparseBenchmark.layouts(device: .cpu, voxels: 400, iterations: 1)
        rows.forEach { print($0) }
        XCTAssertEqual(rows.count, 9)
        XCTAssertTrue(rows.allSatisfy { $0.milliseconds > 0 })
        XCTAssertThrowsError(try TrellisSparseBenchmark.layouts(device: .cpu, voxels: 0))
    }
}
