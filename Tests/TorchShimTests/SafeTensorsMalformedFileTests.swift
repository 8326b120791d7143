import Foundation
import XCTest
@testable import TorchShim

/// Files found by `gen3d fuzz-files` that used to trap (SIGILL) in the safetensors reader: each must now be a clear
/// error that names the file.
final class SafeTensorsMalformedFileTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-malformed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func file(_ name: String, headerLength: UInt64, header: String, data: [UInt8] = []) throws -> URL {
        var bytes = withUnsafeBytes(of: headerLength.littleEndian) { Array($0) }
        bytes += Array(header.utf8) + data
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    func assertError(_ url: URL, contains fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(url: url), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path), "error does not name the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "unexpected error: \(text)", file: file, line: line)
        }
    }

    /// `Int(UInt64)` trapped for a header length of 2^63 or more.
    func testHeaderLengthOf2Pow63OrMoreIsAnError() throws {
        for length: UInt64 in [1 << 63, UInt64.max, (1 << 63) + 8] {
            let url = try file("len-\(length).safetensors", headerLength: length, header: "{}")
            assertError(url, contains: "header length \(length) is too large")
        }
    }

    /// `shape.reduce(1, *)` trapped when the element count overflows Int.
    func testShapeWhoseElementCountOverflowsIsAnError() throws {
        let header = #"{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#
        let url = try file("huge-shape.safetensors", headerLength: UInt64(header.utf8.count), header: header, data: [0, 0, 0, 0])
        assertError(url, contains: "element count overflows")
        // The same product one dimension smaller fits an Int, and is then rejected for its byte count.
        let fits = #"{"w":{"dtype":"F32","shape":[1099511627776,4],"data_offsets":[0,4]}}"#
        let url2 = try file("big-shape.safetensors", headerLength: UInt64(fits.utf8.count), header: fits, data: [0, 0, 0, 0])
        assertError(url2, contains: "has 4 bytes for shape")
    }

    func testElementCountHelper() {
        XCTAssertEqual(TensorInfo.elementCount([2, 3, 4]), 24)
        XCTAssertEqual(TensorInfo.elementCount([]), 1)
        XCTAssertEqual(TensorInfo.elementCount([0, Int.max]), 0)
        XCTAssertNil(TensorInfo.elementCount([1 << 40, 1 << 40]))
        XCTAssertNil(TensorInfo.elementCount([-1, 2]))
    }

    /// A folder where the weights file belongs used to fail inside mmap ("No such device") or be searched for shards.
    func testDirectoryWhereTheWeightsFileBelongsIsAnError() throws {
        let dir = folder.appendingPathComponent("model.safetensors")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        assertError(dir, contains: "is a directory where a weights file belongs")
        XCTAssertThrowsError(try SafeTensors.open(dir)) { error in
            XCTAssertTrue("\(error)".contains(dir.path) && "\(error)".contains("directory"), "\(error)")
        }
    }
}
