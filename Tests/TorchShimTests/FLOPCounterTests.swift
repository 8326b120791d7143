import XCTest
import TorchShim

/// FLOPs counted from shapes (2 per multiply-add) for the ops benchmarks rate against the GEMM.
final class FLOPCounterTests: XCTestCase {
    func testDenseOpsAreCountedFromShapes() throws {
        let x = try Tensor.randn([3, 5, 8]), w = try Tensor.randn([16, 8])
        XCTAssertEqual(try FLOPCounter.count { _ = try F.linear(x, w) }.flops, 2 * 15 * 8 * 16)

        // 2-d conv: [2, 4, 10, 10] * [6, 4, 3, 3], stride 1, no padding -> [2, 6, 8, 8]; groups 2 halves the inputs.
        let image = try Tensor.randn([2, 4, 10, 10])
        XCTAssertEqual(try FLOPCounter.count { _ = try F.conv2d(image, Tensor.randn([6, 4, 3, 3])) }.flops, 2 * 768 * 36)
        XCTAssertEqual(try FLOPCounter.count { _ = try F.conv2d(image, Tensor.randn([6, 2, 3, 3]), groups: 2) }.flops,
                       2 * 768 * 18)
        // Transposed: every input element meets Cout/g x k x k weights.
        XCTAssertEqual(try FLOPCounter.count { _ = try F.convTranspose2d(image, Tensor.randn([4, 3, 2, 2]), stride: [2]) }.flops,
                       2 * 800 * 12)

        let q = try Tensor.randn([2, 4, 7, 16]), k = try Tensor.randn([2, 4, 9, 16]), v = try Tensor.randn([2, 4, 9, 8])
        XCTAssertEqual(try FLOPCounter.count { _ = try F.scaledDotProductAttention(q, k, v) }.flops, 2 * 56 * 9 * (16 + 8))
        let a = try Tensor.randn([5, 6, 7]), b = try Tensor.randn([5, 7, 3])
        XCTAssertEqual(try FLOPCounter.count { _ = try a.bmm(b) }.flops, 2 * 90 * 7)
        XCTAssertEqual(try FLOPCounter.count { _ = try a.matmul(b) }.flops, 2 * 90 * 7)
    }

    func testCountsNestAndStopOutside() throws {
        let x = try Tensor.randn([4, 8]), w = try Tensor.randn([8, 8])
        let (inner, outer) = try FLOPCounter.count { () -> Double in
            _ = try F.linear(x, w)
            return try FLOPCounter.count { _ = try F.linear(x, w) }.flops
        }
        XCTAssertEqual(inner, 512)
        XCTAssertEqual(outer, 1024)
        _ = try F.linear(x, w)  // not counting: must not leak into the next count
        XCTAssertEqual(try FLOPCounter.count { _ = try x.relu() }.flops, 0, "element-wise ops are not counted")
    }
}
