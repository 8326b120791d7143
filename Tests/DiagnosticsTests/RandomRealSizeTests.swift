import TorchShim
import XCTest
@testable import Pipeline
@testable import Diagnostics

/// The timing harness's stand-in structure: a surface-like shell of about the asked size, in the decoder's order.
final class RandomRealSizeTests: XCTestCase {
    func testShellHasTheAskedSizeAndASurfaceShape() throws {
        let coords = try RandomRealSizePipeline.shell(voxels: 20_000, device: .cpu)
        XCTAssertEqual(coords.dtype, .int32)
        XCTAssertEqual(coords.size(1), 4)
        XCTAssertEqual(Double(coords.size(0)), 20_000, accuracy: 2_000)
        XCTAssertEqual(try coords.select(1, 0).abs().sum().item(), 0, "batch index 0")
        // A surface: halving the resolution merges voxels (a scattered set would keep ~all of them).
        let coarse = try coords.slice(1, 1).floorDivide(2).unique(dim: 0).values
        XCTAssertLessThan(coarse.size(0), coords.size(0) / 3)
        XCTAssertLessThanOrEqual(try coords.slice(1, 1).max().item(), 63)
    }
}
