import Foundation
import XCTest
@testable import TorchShim

/// C++ errors surface as Swift errors and the process stays alive.
final class ShimErrorTests: XCTestCase {
    func testWrongShapesThrow() throws {
        let a = try Tensor.zeros([2, 3]), b = try Tensor.zeros([4, 5])
        XCTAssertThrowsError(try a.matmul(b)) { XCTAssertTrue("\($0)".contains("shapes"), "\($0)") }
        XCTAssertThrowsError(try a.reshape([7]))
        XCTAssertThrowsError(try a + b)
        XCTAssertThrowsError(try Tensor.cat([a, b], dim: 0))
        XCTAssertThrowsError(try F.conv2d(a, b))
        // still usable afterwards
        XCTAssertEqual(try (a + 1).sum().item(), 6)
    }

    func testWrongDTypeThrows() throws {
        let f = try Tensor.zeros([3]), i = try Tensor([Int64(0), 5], shape: [2])
        XCTAssertThrowsError(try f.indexSelect(0, i)) // index out of range
        XCTAssertThrowsError(try f.indexSelect(0, Tensor.zeros([2]))) // float index
        XCTAssertThrowsError(try f.bitwiseAnd(f)) { XCTAssertTrue("\($0)".contains("Float"), "\($0)") } // no float kernel
    }

    func testOutOfMemoryIsReportedAndRecoverable() throws {
        XCTAssertThrowsError(try Tensor.empty([1 << 46], dtype: .float32)) { error in
            let e = error as? TorchError
            XCTAssertNotNil(e)
            XCTAssertTrue(e?.isOutOfMemory ?? false, "\(error)")
        }
        XCTAssertEqual(try Tensor.ones([4]).sum().item(), 4)
    }

    func testNoCUDAOnThisMachineIsAnError() throws {
        if CUDA.isAvailable { return } // on a GPU machine this case does not apply
        XCTAssertThrowsError(try Tensor.zeros([2], device: .cuda(0)))
        XCTAssertThrowsError(try CUDA.memoryStats(0))
    }

    func testHostRoundTrip() throws {
        let values: [Float] = [1, -2, 3.5, 4, 5, 6]
        let t = try Tensor(values, shape: [2, 3])
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.dtype, .float32)
        XCTAssertEqual(try t.floats(), values)
        XCTAssertEqual(try t.to(.bfloat16).to(.float32).floats(), values)
        XCTAssertEqual(try t.toArray(Int64.self), [1, -2, 3, 4, 5, 6])
        XCTAssertThrowsError(try Tensor(values, shape: [4]))
        XCTAssertEqual(Device("cuda:3"), .cuda(3))
        XCTAssertNil(Device("tpu"))
    }
}
