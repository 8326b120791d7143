import Foundation
import XCTest
@testable import PLY

final class PLYFixtureTests: XCTestCase {
    func testHamburgerReadsCorrectlyAndRewritesByteForByte() throws {
        let url = try Fixtures.url("ply/hamburger.ply")
        let data = try Data(contentsOf: url)
        let bytes = [UInt8](data)

        let header = try PLYHeader.parse(data)
        XCTAssertEqual(header.format, .binaryLittleEndian)
        XCTAssertEqual(header.elements.count, 1)
        let vertex = try XCTUnwrap(header.element(named: "vertex"))
        XCTAssertEqual(vertex.count, 52_709)
        let names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
                     "rot_0", "rot_1", "rot_2", "rot_3"]
        XCTAssertEqual(vertex.properties, names.map { PLYProperty(name: $0, kind: .scalar(.float32)) })
        let headerText = "ply\nformat binary_little_endian 1.0\nelement vertex 52709\n"
            + names.map { "property float \($0)\n" }.joined() + "end_header\n"
        XCTAssertEqual(header.bodyOffset, headerText.utf8.count)
        XCTAssertEqual(Array(bytes[..<header.bodyOffset]), Array(headerText.utf8))
        XCTAssertEqual(bytes.count, header.bodyOffset + 52_709 * 14 * 4)

        let splat = try PLYReader.read(data)
        XCTAssertEqual(splat.count, 52_709)
        XCTAssertNil(splat.normals)
        XCTAssertEqual(splat.shDegree, 0)
        XCTAssertEqual(splat.shRest, [])
        for i in [0, 1, 26_354, 52_708] {
            let row = header.bodyOffset + i * 56
            let raw = (0..<14).map { rawFloat(bytes, at: row + 4 * $0) }
            XCTAssertEqual(Array(splat.positions[3 * i ..< 3 * i + 3]), Array(raw[0..<3]), "row \(i)")
            XCTAssertEqual(Array(splat.shDC[3 * i ..< 3 * i + 3]), Array(raw[3..<6]), "row \(i)")
            XCTAssertEqual(splat.opacities[i], raw[6], "row \(i)")
            XCTAssertEqual(Array(splat.scales[3 * i ..< 3 * i + 3]), Array(raw[7..<10]), "row \(i)")
            XCTAssertEqual(Array(splat.rotations[4 * i ..< 4 * i + 4]), Array(raw[10..<14]), "row \(i)")
        }
        // First Gaussian, decoded by hand from the file's bytes 361..<417.
        XCTAssertEqual(splat.positions[0], Float(bitPattern: 0xBDA0_6000))

        XCTAssertEqual(try PLYWriter().encode(splat), data, "write(read(hamburger)) must reproduce the file exactly")
    }

    func testTrellisPipelineOutputWithNormals() throws {
        let data = try Data(contentsOf: try Fixtures.url("trellis/pipeline_out.ply"))
        let bytes = [UInt8](data)
        let splat = try PLYReader.read(data)
        let header = try PLYHeader.parse(data)
        XCTAssertEqual(header.element(named: "vertex")?.properties.count, 17)
        XCTAssertEqual(splat.count, 9920)
        XCTAssertEqual(splat.shDegree, 0)
        XCTAssertEqual(splat.normals, [Float](repeating: 0, count: 9920 * 3))
        let last = header.bodyOffset + 9919 * 68
        XCTAssertEqual(splat.positions[9919 * 3 + 2], rawFloat(bytes, at: last + 8))
        XCTAssertEqual(splat.shDC[9919 * 3], rawFloat(bytes, at: last + 24))
        XCTAssertEqual(splat.opacities[9919], rawFloat(bytes, at: last + 36))
        XCTAssertEqual(splat.rotations[9919 * 4 + 3], rawFloat(bytes, at: last + 64))
        XCTAssertEqual(try PLYWriter().encode(splat), data, "TRELLIS save_ply layout is the writer's layout")
    }
}

final class PLYTrellisDecoderFixtureTests: XCTestCase {
    func testOfficialSavePlyBytesAreReproduced() throws {
        // `slat_dec_gs_out.ply`: the exact bytes of TRELLIS's Gaussian.save_ply (9728 Gaussians, 17 floats).
        let data = try Data(contentsOf: try Fixtures.url("trellis/slat_dec_gs_out.ply"))
        let splat = try PLYReader.read(data)
        XCTAssertEqual(splat.count, 9728)
        XCTAssertNotNil(splat.normals)
        XCTAssertEqual(try PLYWriter(includeNormals: true, shDegree: 0).encode(splat), data)
    }
}
