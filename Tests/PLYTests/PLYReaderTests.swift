import Diagnostics
import Foundation
import XCTest
@testable import PLY

final class PLYReaderTests: XCTestCase {
    private let sample = PLYBenchmark.randomSplat(count: 6, seed: 42, shDegree: 1, normals: true)

    // MARK: - Layouts the writer never produces

    func testShuffledOrderExtraPropertiesDoublesAndOtherElements() throws {
        let s = PLYBenchmark.randomSplat(count: 3, seed: 9)
        let vertexProperties = ["property uchar red", "property float rot_3", "property double x", "property float y",
                                "property int flags", "property float z", "property float f_dc_2", "property float f_dc_1",
                                "property float f_dc_0", "property list uchar int ignored", "property double opacity",
                                "property float scale_2", "property float scale_1", "property float scale_0",
                                "property float rot_0", "property float rot_1", "property float rot_2", "property short tag"]
        var file = PLYBytes(header: ["ply", "format binary_little_endian 1.0", "comment made by hand",
                                     "element camera 2", "property float fx", "property double fy",
                                     "element face 2", "property list uchar int vertex_indices",
                                     "element vertex 3"] + vertexProperties
                                     + ["element trailer 1", "property float t", "end_header"])
        for _ in 0..<2 { file.float(99); file.double(-99) }
        file.uint8(3); for k in 0..<3 { file.int32(Int32(k)) }
        file.uint8(0)
        for i in 0..<3 {
            file.uint8(255)
            file.float(s.rotations[4 * i + 3])
            file.double(Double(s.positions[3 * i]))
            file.float(s.positions[3 * i + 1])
            file.int32(-7)
            file.float(s.positions[3 * i + 2])
            for k in [2, 1, 0] { file.float(s.shDC[3 * i + k]) }
            file.uint8(2); file.int32(1); file.int32(2)
            file.double(Double(s.opacities[i]))
            for k in [2, 1, 0] { file.float(s.scales[3 * i + k]) }
            for k in 0..<3 { file.float(s.rotations[4 * i + k]) }
            file.data.append(contentsOf: [0x34, 0x12])
        }
        file.float(123)
        XCTAssertEqual(try PLYReader.read(file.data), s)
    }

    func testBigEndianBody() throws {
        let littleEndian = try PLYWriter().encode(sample)
        let headerEnd = littleEndian.range(of: Data("end_header\n".utf8))!.upperBound
        let header = String(decoding: littleEndian[..<headerEnd], as: UTF8.self)
            .replacingOccurrences(of: "binary_little_endian", with: "binary_big_endian")
        var bigEndian = Data(header.utf8)
        let body = [UInt8](littleEndian[headerEnd...])
        var swapped = [UInt8](repeating: 0, count: body.count)
        for word in stride(from: 0, to: body.count, by: 4) {
            for k in 0..<4 { swapped[word + k] = body[word + 3 - k] }
        }
        bigEndian.append(contentsOf: swapped)
        XCTAssertEqual(try PLYReader.read(bigEndian), sample)
    }

    func testASCIIBodyWithCRLFHeader() throws {
        let s = PLYBenchmark.randomSplat(count: 4, seed: 11, shDegree: 2)
        let names = GaussianLayout(hasNormals: false, shDegree: 2).propertyNames
        var text = "ply\r\nformat ascii 1.0\r\nelement face 1\r\nproperty list uchar int vertex_indices\r\n"
            + "element vertex 4\r\n" + names.map { "property float \($0)\r\n" }.joined() + "end_header\r\n"
        text += "3 0 1 2\n"
        for i in 0..<4 {
            var row = Array(s.positions[3 * i ..< 3 * i + 3]) + Array(s.shDC[3 * i ..< 3 * i + 3])
            row += Array(s.shRest[24 * i ..< 24 * i + 24])
            row += [s.opacities[i]] + Array(s.scales[3 * i ..< 3 * i + 3]) + Array(s.rotations[4 * i ..< 4 * i + 4])
            text += row.map { "\($0)" }.joined(separator: " ") + "\n"
        }
        XCTAssertEqual(try PLYReader.read(Data(text.utf8)), s)
    }

    // MARK: - Corrupt input

    func testNotAPLY() {
        assertThrows(.notPLY) { _ = try PLYReader.read(Data()) }
        assertThrows(.notPLY) { _ = try PLYReader.read(Data("GIF89a...".utf8)) }
        assertThrows(.notPLY) { _ = try PLYReader.read(Data("plyx\nformat ascii 1.0\n".utf8)) }
    }

    func testTruncatedHeader() throws {
        let data = try PLYWriter().encode(sample)
        let cut = data.range(of: Data("end_header".utf8))!.lowerBound + 5
        assertThrows(.truncatedHeader) { _ = try PLYReader.read(data.prefix(cut)) }
        assertThrows(.truncatedHeader) { _ = try PLYReader.read(Data("ply\nformat binary_little_endian 1.0".utf8)) }
    }

    func testTruncatedBody() throws {
        let data = try PLYWriter().encode(sample)  // 6 rows of 26 floats
        assertThrows(.truncatedBody(element: "vertex", rowsRead: 5, rowsDeclared: 6)) {
            _ = try PLYReader.read(data.dropLast(1))
        }
        assertThrows(.truncatedBody(element: "vertex", rowsRead: 3, rowsDeclared: 6)) {
            _ = try PLYReader.read(data.dropLast(3 * 26 * 4))
        }
        let ascii = "ply\nformat ascii 1.0\nelement vertex 2\n" + canonicalProperties.joined(separator: "\n")
            + "\nend_header\n" + Array(repeating: "0", count: 14 + 13).joined(separator: " ") + "\n"
        assertThrows(.truncatedBody(element: "vertex", rowsRead: 1, rowsDeclared: 2)) {
            _ = try PLYReader.read(Data(ascii.utf8))
        }
        var skipped = PLYBytes(header: ["ply", "format binary_little_endian 1.0", "element face 2",
                                        "property list uchar int vertex_indices", "element vertex 0"]
                                        + canonicalProperties + ["end_header"])
        skipped.uint8(3); skipped.int32(0); skipped.int32(1); skipped.int32(2)
        skipped.uint8(3); skipped.int32(0)
        assertThrows(.truncatedBody(element: "face", rowsRead: 1, rowsDeclared: 2)) {
            _ = try PLYReader.read(skipped.data)
        }
    }

    func testMissingRequiredProperties() {
        let header = ["ply", "format binary_little_endian 1.0", "element vertex 0"]
            + canonicalProperties.filter { !$0.hasSuffix(" rot_3") && !$0.hasSuffix(" f_dc_1") } + ["end_header"]
        assertThrows(.missingProperties(["f_dc_1", "rot_3"])) { _ = try PLYReader.read(PLYBytes(header: header).data) }
        let noVertex = ["ply", "format ascii 1.0", "element point 0", "property float x", "end_header"]
        assertThrows(.missingVertexElement) { _ = try PLYReader.read(PLYBytes(header: noVertex).data) }
    }

    func testUnsupportedTypes() {
        let unknown = ["ply", "format binary_little_endian 1.0", "element vertex 0", "property float128 x", "end_header"]
        assertThrows(.unsupportedPropertyType(property: "x", type: "float128")) {
            _ = try PLYReader.read(PLYBytes(header: unknown).data)
        }
        let integerOpacity = ["ply", "format binary_little_endian 1.0", "element vertex 0"]
            + canonicalProperties.map { $0 == "property float opacity" ? "property uchar opacity" : $0 } + ["end_header"]
        assertThrows(.unsupportedPropertyType(property: "opacity", type: "uint8")) {
            _ = try PLYReader.read(PLYBytes(header: integerOpacity).data)
        }
        let listX = ["ply", "format binary_little_endian 1.0", "element vertex 0"]
            + canonicalProperties.map { $0 == "property float x" ? "property list uchar float x" : $0 } + ["end_header"]
        assertThrows(.unsupportedPropertyType(property: "x", type: "list uint8 float32")) {
            _ = try PLYReader.read(PLYBytes(header: listX).data)
        }
        let format = ["ply", "format binary_middle_endian 1.0", "element vertex 0", "end_header"]
        assertThrows(.unsupportedFormat("binary_middle_endian 1.0")) { _ = try PLYReader.read(PLYBytes(header: format).data) }
    }

    func testMalformedHeaderLines() {
        let badCount = ["ply", "format binary_little_endian 1.0", "element vertex -4", "end_header"]
        XCTAssertThrowsError(try PLYReader.read(PLYBytes(header: badCount).data)) { error in
            guard case .malformedHeader(line: 3, _)? = error as? PLYError else { return XCTFail("got \(error)") }
        }
        let noFormat = ["ply", "element vertex 0"] + canonicalProperties + ["end_header"]
        XCTAssertThrowsError(try PLYReader.read(PLYBytes(header: noFormat).data)) { error in
            guard case .malformedHeader? = error as? PLYError else { return XCTFail("got \(error)") }
        }
        let junk = ["ply", "format ascii 1.0", "bogus line", "end_header"]
        XCTAssertThrowsError(try PLYReader.read(PLYBytes(header: junk).data)) { error in
            guard case .malformedHeader(line: 3, _)? = error as? PLYError else { return XCTFail("got \(error)") }
        }
    }

    func testAbsurdVertexCount() throws {
        var file = PLYBytes(header: ["ply", "format binary_little_endian 1.0", "element vertex 1000000000"]
                                    + canonicalProperties + ["end_header"])
        for _ in 0..<14 { file.float(0) }
        assertThrows(.implausibleElementCount(element: "vertex", count: 1_000_000_000,
                                              minimumBytes: 56_000_000_000, availableBytes: 56)) {
            _ = try PLYReader.read(file.data)
        }
        let overflow = PLYBytes(header: ["ply", "format binary_little_endian 1.0", "element vertex \(Int.max)"]
                                         + canonicalProperties + ["end_header"])
        assertThrows(.implausibleElementCount(element: "vertex", count: Int.max, minimumBytes: Int.max, availableBytes: 0)) {
            _ = try PLYReader.read(overflow.data)
        }
        let faces = PLYBytes(header: ["ply", "format ascii 1.0", "element face 99999999999",
                                      "property list uchar int vertex_indices", "element vertex 0"]
                                      + canonicalProperties + ["end_header"])
        XCTAssertThrowsError(try PLYReader.read(faces.data)) { error in
            guard case .implausibleElementCount(element: "face", _, _, _)? = error as? PLYError else {
                return XCTFail("got \(error)")
            }
        }
    }

    func testInvalidSHRestCount() {
        let header = ["ply", "format binary_little_endian 1.0", "element vertex 0"] + canonicalProperties
            + (0..<5).map { "property float f_rest_\($0)" } + ["end_header"]
        XCTAssertThrowsError(try PLYReader.read(PLYBytes(header: header).data)) { error in
            guard case .invalidSHRest? = error as? PLYError else { return XCTFail("got \(error)") }
        }
        let gap = ["ply", "format binary_little_endian 1.0", "element vertex 0"] + canonicalProperties
            + (1...9).map { "property float f_rest_\($0)" } + ["end_header"]
        XCTAssertThrowsError(try PLYReader.read(PLYBytes(header: gap).data)) { error in
            guard case .invalidSHRest? = error as? PLYError else { return XCTFail("got \(error)") }
        }
    }

    func testMalformedASCIIValuesAndListLengths() {
        let text = "ply\nformat ascii 1.0\nelement vertex 1\n" + canonicalProperties.joined(separator: "\n")
            + "\nend_header\n0 0 zero 0 0 0 0 0 0 0 0 0 0 0\n"
        assertThrows(.malformedBody(element: "vertex", row: 0, reason: "'zero' is not a number")) {
            _ = try PLYReader.read(Data(text.utf8))
        }
        var negative = PLYBytes(header: ["ply", "format binary_little_endian 1.0", "element face 1",
                                         "property list char int vertex_indices", "element vertex 0"]
                                         + canonicalProperties + ["end_header"])
        negative.uint8(0xFF)  // -1 as char
        negative.int32(0)
        XCTAssertThrowsError(try PLYReader.read(negative.data)) { error in
            guard case .malformedBody(element: "face", row: 0, _)? = error as? PLYError else {
                return XCTFail("got \(error)")
            }
        }
    }

    func testPartialNormalsAreIgnored() throws {
        var file = PLYBytes(header: ["ply", "format binary_little_endian 1.0", "element vertex 1", "property float nx"]
                                    + canonicalProperties + ["end_header"])
        for k in 0..<15 { file.float(Float(k)) }
        let splat = try PLYReader.read(file.data)
        XCTAssertNil(splat.normals)
        XCTAssertEqual(splat.positions, [1, 2, 3])
        XCTAssertEqual(splat.rotations, [11, 12, 13, 14])
    }
}

final class PLYReaderEdgeCaseTests: XCTestCase {
    func testElementWithoutPropertiesAndHugeCountIsSkippedInstantly() throws {
        let splat = PLYBenchmark.randomSplat(count: 2, seed: 12)
        for format in ["ascii", "binary_little_endian"] {
            let names = GaussianLayout(hasNormals: false, shDegree: 0).propertyNames
            var file = PLYBytes(header: ["ply", "format \(format) 1.0", "element marker 9000000000000000000",
                                         "element vertex 2"] + names.map { "property float \($0)" } + ["end_header"])
            for i in 0..<2 {
                let row = Array(splat.positions[3 * i ..< 3 * i + 3]) + Array(splat.shDC[3 * i ..< 3 * i + 3])
                    + [splat.opacities[i]] + Array(splat.scales[3 * i ..< 3 * i + 3]) + Array(splat.rotations[4 * i ..< 4 * i + 4])
                if format == "ascii" {
                    file.text(row.map { "\($0)" }.joined(separator: " ") + "\n")
                } else {
                    row.forEach { file.float($0) }
                }
            }
            XCTAssertEqual(try PLYReader.read(file.data), splat, format)
        }
    }

    func testReadsFromADataSliceWithNonZeroStartIndex() throws {
        let data = try PLYWriter().encode(PLYBenchmark.randomSplat(count: 3, seed: 13))
        let padded = Data([1, 2, 3]) + data
        let slice = padded[3...]
        XCTAssertEqual(slice.startIndex, 3)
        XCTAssertEqual(try PLYReader.read(slice), try PLYReader.read(data))
    }
}

/// `read(contentsOf:)` names the file in every error (the daemon reads PLY files given on the command line).
final class PLYFileErrorTests: XCTestCase {
    func testErrorsNameTheFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(UUID().uuidString).ply")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data("ply\nformat binary_little_endian 1.0\nelement vertex 99999999999\nproperty float x\nend_header\n".utf8)
            .write(to: url)
        XCTAssertThrowsError(try PLYReader.read(contentsOf: url)) { error in
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
            guard case .inFile(let path, _)? = error as? PLYError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
        }
        let missing = url.appendingPathExtension("missing")
        XCTAssertThrowsError(try PLYReader.read(contentsOf: missing)) { error in
            XCTAssertTrue("\(error)".contains(missing.path), "\(error)")
        }
    }
}
