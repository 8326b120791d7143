import Diagnostics
import Foundation
import XCTest
@testable import PLY

final class PLYWriterTests: XCTestCase {
    func testRoundTripEveryDegreeWithAndWithoutNormals() throws {
        for degree in 0...3 {
            for normals in [false, true] {
                let splat = PLYBenchmark.randomSplat(count: 257, seed: UInt64(10 * degree + (normals ? 1 : 0)),
                                                     shDegree: degree, normals: normals)
                let data = try PLYWriter().encode(splat)
                let restCount = GaussianSplat.restCount(degree: degree)
                let floatsPerRow = 14 + restCount + (normals ? 3 : 0)
                let headerSize = data.range(of: Data("end_header\n".utf8))!.upperBound
                XCTAssertEqual(data.count, headerSize + 257 * floatsPerRow * 4, "degree \(degree) normals \(normals)")
                let decoded = try PLYReader.read(data)
                XCTAssertEqual(decoded, splat, "degree \(degree) normals \(normals)")
            }
        }
    }

    func testHeaderLayout() throws {
        let splat = PLYBenchmark.randomSplat(count: 3, seed: 1, shDegree: 1, normals: true)
        let lines = headerLines(try PLYWriter().encode(splat))
        XCTAssertEqual(lines[0], "ply")
        XCTAssertEqual(lines[1], "format binary_little_endian 1.0")
        XCTAssertEqual(lines[2], "element vertex 3")
        let expected = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + (0..<9).map { "f_rest_\($0)" }
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        XCTAssertEqual(Array(lines[3..<(lines.count - 1)]), expected.map { "property float \($0)" })
        XCTAssertEqual(lines.last, "end_header")
    }

    func testEmptySplatWritesHeaderOnly() throws {
        let empty = GaussianSplat(positions: [], shDC: [], opacities: [], scales: [], rotations: [])
        let data = try PLYWriter().encode(empty)
        XCTAssertEqual(headerLines(data)[2], "element vertex 0")
        XCTAssertEqual(try PLYReader.read(data), empty)
    }

    func testNormalsRequestedButAbsentAreZeros() throws {
        let splat = PLYBenchmark.randomSplat(count: 5, seed: 2)
        let decoded = try PLYReader.read(PLYWriter(includeNormals: true).encode(splat))
        XCTAssertEqual(decoded.normals, [Float](repeating: 0, count: 15))
        XCTAssertEqual(decoded.positions, splat.positions)
        XCTAssertEqual(decoded.rotations, splat.rotations)
    }

    func testNormalsDroppedWhenNotRequested() throws {
        let splat = PLYBenchmark.randomSplat(count: 5, seed: 3, normals: true)
        let data = try PLYWriter(includeNormals: false).encode(splat)
        XCTAssertFalse(headerLines(data).contains("property float nx"))
        var expected = splat
        expected.normals = nil
        XCTAssertEqual(try PLYReader.read(data), expected)
    }

    func testSHDegreePaddingAndTruncationKeepChannelMajorOrder() throws {
        let degree1 = PLYBenchmark.randomSplat(count: 4, seed: 4, shDegree: 1)
        let padded = try PLYReader.read(PLYWriter(shDegree: 3).encode(degree1))
        XCTAssertEqual(padded.shDegree, 3)
        for i in 0..<4 {
            for channel in 0..<3 {
                for k in 0..<15 {
                    let value = padded.shRest[45 * i + 15 * channel + k]
                    XCTAssertEqual(value, k < 3 ? degree1.shRest[9 * i + 3 * channel + k] : 0)
                }
            }
        }
        let truncated = try PLYReader.read(PLYWriter(shDegree: 1).encode(padded))
        XCTAssertEqual(truncated, degree1)
        let none = try PLYReader.read(PLYWriter(shDegree: 0).encode(degree1))
        XCTAssertEqual(none.shRest, [])
        XCTAssertEqual(none.shDegree, 0)
    }

    func testNonFiniteAndOutOfRangeValuesAreClamped() throws {
        let inf = Float.infinity
        let splat = GaussianSplat(
            positions: [.nan, inf, -inf, 2e7, -2e7, 0.25],
            normals: [.nan, inf, 0, 0, 0, 1],
            shDC: [inf, -inf, .nan, 1, 2, 3],
            opacities: [inf, -.nan],
            scales: [-inf, inf, .nan, -25, 11, -3],
            rotations: [.nan, 1, -inf, inf, 1, 0, 0, 0])
        let decoded = try PLYReader.read(PLYWriter().encode(splat))
        XCTAssertEqual(decoded.positions, [0, 1e6, -1e6, 1e6, -1e6, 0.25])
        XCTAssertEqual(decoded.normals, [0, 1e6, 0, 0, 0, 1])
        XCTAssertEqual(decoded.shDC, [1e6, -1e6, 0, 1, 2, 3])
        XCTAssertEqual(decoded.opacities, [20, 0])
        XCTAssertEqual(decoded.scales, [-20, 10, 0, -20, 10, -3])
        XCTAssertEqual(decoded.rotations, [0, 1, -1e6, 1e6, 1, 0, 0, 0])
        let all = decoded.positions + decoded.normals! + decoded.shDC + decoded.opacities + decoded.scales + decoded.rotations
        XCTAssertTrue(all.allSatisfy(\.isFinite))
    }

    func testInconsistentSplatIsRejected() {
        var splat = PLYBenchmark.randomSplat(count: 4, seed: 5)
        splat.scales.removeLast()
        XCTAssertThrowsError(try PLYWriter().encode(splat)) { error in
            guard case .invalidSplat(let reason)? = error as? PLYError else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("scales"), reason)
        }
        var badDegree = PLYBenchmark.randomSplat(count: 4, seed: 5)
        badDegree.shDegree = 1  // shRest still empty
        XCTAssertThrowsError(try PLYWriter().encode(badDegree)) { error in
            guard case .invalidSplat(let reason)? = error as? PLYError else { return XCTFail("got \(error)") }
            XCTAssertTrue(reason.contains("shRest"), reason)
        }
        XCTAssertThrowsError(try PLYWriter(shDegree: 4).encode(PLYBenchmark.randomSplat(count: 1, seed: 6))) { error in
            guard case .invalidOptions? = error as? PLYError else { return XCTFail("got \(error)") }
        }
    }

    func testWriteToURLMatchesEncode() throws {
        let splat = PLYBenchmark.randomSplat(count: 10, seed: 7, shDegree: 2)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("plywriter-\(UUID()).ply")
        defer { try? FileManager.default.removeItem(at: url) }
        try PLYWriter().write(splat, to: url)
        XCTAssertEqual(try Data(contentsOf: url), try PLYWriter().encode(splat))
        XCTAssertEqual(try PLYReader.read(contentsOf: url), splat)
    }
}
