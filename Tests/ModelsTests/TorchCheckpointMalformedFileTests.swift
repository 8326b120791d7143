import Foundation
import XCTest
import Models
import NN
import TorchShim

/// `.pth` files found by fuzzing (or built from its findings) that used to trap or recurse without end in
/// `TorchCheckpoint`: each must be an error that names the file.
final class TorchCheckpointMalformedFileTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("pth-malformed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func assertCorrupt(_ bytes: [UInt8], _ name: String, contains fragment: String,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        XCTAssertThrowsError(try TorchCheckpoint(url: url), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path), "error does not name the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "unexpected error: \(text)", file: file, line: line)
        }
    }

    /// torch's own zip checkpoint with the zip64 entry count set to 2^63 (negative as Int): `0..<count` trapped.
    func testZip64EntryCountOf2Pow63IsAnError() throws {
        var bytes = Array(try Data(contentsOf: OpenCLIPFixturePaths.torchCheckpoints().appendingPathComponent("state_dict.pth")))
        let eocd = try XCTUnwrap(lastIndex(of: [0x50, 0x4B, 0x05, 0x06], in: bytes))
        let record = try XCTUnwrap(lastIndex(of: [0x50, 0x4B, 0x06, 0x06], in: bytes))
        bytes[eocd + 10] = 0xFF; bytes[eocd + 11] = 0xFF   // "see the zip64 record"
        for i in 0..<8 { bytes[record + 32 + i] = i == 7 ? 0x80 : 0 }
        try assertCorrupt(bytes, "count.pth", contains: "central directory claims")
    }

    /// The input `gen3d fuzz-files --cases 10000 --seed 1` saved (pth case 3972): torch's state_dict.pth with a pickle
    /// integer set to 2^62, giving an empty tensor a storage offset whose byte offset overflowed (`offset * 4`).
    func testFuzzCrashEmptyTensorWithHugeOffsetIsAnError() throws {
        let url = OpenCLIPFixturePaths.torchCheckpoints().appendingPathComponent("fuzz_empty_tensor_huge_offset.pth")
        XCTAssertThrowsError(try TorchCheckpoint(url: url)) { error in
            XCTAssertTrue("\(error)".contains(url.path), "\(error)")
            XCTAssertTrue("\(error)".contains("reaches past"), "\(error)")
        }
    }

    /// The same overflow built by hand: shape [0] at storage offset 2^62 (float32).
    func testEmptyTensorWithHugeOffsetIsAnError() throws {
        let bytes = legacy(dataPickle: tensorPickle(offset: 1 << 62, shape: [0], strides: [1]), storages: [1])
        try assertCorrupt(bytes, "empty.pth", contains: "reaches past")
    }

    /// A dict that holds itself through the pickle memo: flattening it recursed until the stack overflowed.
    func testDictHoldingItselfIsAnError() throws {
        // {'a': <the same dict>}: EMPTY_DICT, BINPUT 0, 'a', BINGET 0, SETITEM, STOP.
        let data: [UInt8] = [0x80, 0x02, 0x7D, 0x71, 0x00] + unicode("a") + [0x68, 0x00, 0x73, 0x2E]
        try assertCorrupt(legacy(dataPickle: data, storages: []), "self.pth", contains: "nested deeper than")
    }

    /// A storage offset of Int.max: the byte extent `(last + 1) * size` overflowed.
    func testStorageOffsetAtIntMaxIsAnError() throws {
        let bytes = legacy(dataPickle: tensorPickle(offset: Int64.max, shape: [1], strides: [1]), storages: [1])
        try assertCorrupt(bytes, "offset.pth", contains: "reaches past")
    }

    /// Shape [2^40, 2^40] on zero strides fits its 1-element storage, but its element count overflowed in `tensor()`.
    func testShapeWhoseElementCountOverflowsIsAnError() throws {
        let bytes = legacy(dataPickle: tensorPickle(offset: 0, shape: [1 << 40, 1 << 40], strides: [0, 0]), storages: [1])
        try assertCorrupt(bytes, "shape.pth", contains: "element count overflows")
    }

    /// A zero-stride view far larger than the file would have been gathered into a copy of that size.
    func testStridedViewLargerThanTheFileIsAnError() throws {
        let bytes = legacy(dataPickle: tensorPickle(offset: 0, shape: [1 << 20, 1 << 20], strides: [0, 0]), storages: [1])
        try assertCorrupt(bytes, "view.pth", contains: "larger than the file")
    }

    /// A folder in place of the checkpoint file.
    func testDirectoryWhereTheCheckpointBelongsIsAnError() throws {
        let dir = folder.appendingPathComponent("quality_scorer.pth")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try TorchCheckpoint(url: dir)) { error in
            XCTAssertTrue("\(error)".contains(dir.path) && "\(error)".contains("directory"), "\(error)")
        }
    }

    // MARK: building legacy-format checkpoints (torch.save with _use_new_zipfile_serialization=False)

    func unicode(_ s: String) -> [UInt8] {
        let utf8 = Array(s.utf8)
        return [0x58] + withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { Array($0) } + utf8
    }

    func long1(_ v: Int64) -> [UInt8] { [0x8A, 0x08] + withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    func intTuple(_ values: [Int64]) -> [UInt8] { [0x28] + values.flatMap(long1) + [0x74] }

    /// {'w': _rebuild_tensor_v2(storage '0' (FloatStorage), offset, shape, strides, False)}.
    func tensorPickle(offset: Int64, shape: [Int64], strides: [Int64]) -> [UInt8] {
        var p: [UInt8] = [0x80, 0x02, 0x7D] + unicode("w")
        p += Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8) + [0x28]
        p += [0x28] + unicode("storage") + Array("ctorch\nFloatStorage\n".utf8) + unicode("0") + unicode("cpu") + [0x4B, 0x01, 0x74, 0x51]
        p += long1(offset) + intTuple(shape) + intTuple(strides) + [0x89, 0x74, 0x52, 0x73, 0x2E]
        return p
    }

    /// Magic, protocol version, system info, the data pickle, the storage keys ("0", ...), then each storage
    /// (element count + float32 zeros).
    func legacy(dataPickle: [UInt8], storages: [Int]) -> [UInt8] {
        let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
        var out: [UInt8] = [0x80, 0x02, 0x8A, 0x0A] + magic + [0x2E]
        out += [0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]
        out += [0x80, 0x02, 0x7D, 0x2E]
        out += dataPickle
        out += [0x80, 0x02, 0x5D] + storages.indices.flatMap { unicode("\($0)") + [0x61] } + [0x2E]
        for count in storages {
            out += withUnsafeBytes(of: Int64(count).littleEndian) { Array($0) } + [UInt8](repeating: 0, count: 4 * count)
        }
        return out
    }

    func lastIndex(of needle: [UInt8], in bytes: [UInt8]) -> Int? {
        stride(from: bytes.count - needle.count, through: 0, by: -1).first { Array(bytes[$0..<($0 + needle.count)]) == needle }
    }
}
