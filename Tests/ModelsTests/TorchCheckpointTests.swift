import Foundation
import XCTest
import Models
import NN
import TorchShim

/// TorchCheckpoint against checkpoints written by torch 2.13 (scripts/make_pth_fixture.py), in the zip and the
/// legacy layout: every tensor must equal, bit for bit, the contiguous copy torch wrote to expected.safetensors.
final class TorchCheckpointTests: XCTestCase {
    let dir = OpenCLIPFixturePaths.torchCheckpoints()

    func expected() throws -> SafeTensorsFile {
        try SafeTensorsFile(url: dir.appendingPathComponent("expected.safetensors"))
    }

    func assertSame(_ got: Tensor, _ want: Tensor, _ key: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(got.dtype, want.dtype, key, file: file, line: line)
        XCTAssertEqual(got.shape, want.shape, key, file: file, line: line)
        XCTAssertEqual(try got.contiguous().bytes(), try want.bytes(), "\(key): values differ", file: file, line: line)
    }

    func testStateDictMatchesTorchBitForBit() throws {
        try checkStateDict("state_dict.pth")
    }

    func testLegacyFormatMatchesTorchBitForBit() throws {
        try checkStateDict("legacy.pth")
    }

    func checkStateDict(_ name: String) throws {
        let checkpoint = try TorchCheckpoint(url: dir.appendingPathComponent(name))
        let reference = try expected()
        let wanted = reference.keys.filter { !$0.hasPrefix("nested.") }
        XCTAssertEqual(checkpoint.keys, wanted.sorted())
        for key in wanted {
            let info = try XCTUnwrap(checkpoint.info(key), key)
            XCTAssertEqual(info, reference.info(key), key)
            try assertSame(checkpoint.tensor(key), reference.tensor(key), key)
        }
        // The layouts the fixture was built to cover.
        XCTAssertEqual(checkpoint.info("bn.num_batches_tracked")?.dtype, .int64)
        XCTAssertEqual(checkpoint.info("extra.scalar")?.shape, [])
        XCTAssertEqual(checkpoint.info("extra.empty")?.shape, [0, 3])
        XCTAssertEqual(try checkpoint.tensor("extra.shared_column").floats(), [1, 4, 7, 10])
        XCTAssertEqual(try checkpoint.tensor("extra.big_int").toArray(Int64.self), [1 << 40, -(1 << 35)])
    }

    func testProtocol4NestedDictionaryIsFlattened() throws {
        let checkpoint = try TorchCheckpoint(url: dir.appendingPathComponent("nested_p4.pth"))
        let reference = try expected()
        let wanted = reference.keys.filter { $0.hasPrefix("nested.") }
        XCTAssertEqual(checkpoint.keys, wanted.map { String($0.dropFirst("nested.".count)) }.sorted())
        for key in wanted {
            let local = String(key.dropFirst("nested.".count))
            try assertSame(checkpoint.tensor(local), reference.tensor(key), key)
        }
        let rooted = try TorchCheckpoint(url: dir.appendingPathComponent("nested_p4.pth"), root: ["state_dict"])
        XCTAssertEqual(rooted.keys, ["conv.bias", "conv.weight", "head.weight"])
        XCTAssertThrowsError(try TorchCheckpoint(url: dir.appendingPathComponent("nested_p4.pth"), root: ["model"])) {
            XCTAssertEqual($0 as? TorchCheckpointError, .missingKey(self.dir.appendingPathComponent("nested_p4.pth").path, "model"))
        }
    }

    func testServesAWeightLoader() throws {
        let checkpoint = try TorchCheckpoint(url: dir.appendingPathComponent("state_dict.pth"))
        let loader = WeightLoader(checkpoint, dtype: .float16)
        let head = try Linear(loader.pp("head"), inFeatures: 4, outFeatures: 2, bias: false)
        XCTAssertEqual(head.weight.dtype, .float16)
        let y = try head(Tensor.ones([1, 4], dtype: .float16))
        XCTAssertEqual(y.shape, [1, 2])
        XCTAssertThrowsError(try Linear(loader.pp("head"), inFeatures: 5, outFeatures: 2, bias: false)) {
            XCTAssertEqual($0 as? WeightError, .shapeMismatch("head.weight", expected: [2, 5], found: [2, 4]))
        }
        XCTAssertThrowsError(try checkpoint.tensor("head.bias")) { XCTAssertTrue("\($0)".contains("head.bias")) }
    }

    func testCompressedEntriesAreRefused() throws {
        XCTAssertThrowsError(try TorchCheckpoint(url: dir.appendingPathComponent("deflated.pth"))) { error in
            guard case .unsupported(_, let why)? = error as? TorchCheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("compressed"), why)
        }
    }

    func testBrokenFilesGiveErrors() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("torchcheckpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let original = try Data(contentsOf: dir.appendingPathComponent("state_dict.pth"))

        let legacy = try Data(contentsOf: dir.appendingPathComponent("legacy.pth"))
        let truncatedLegacy = tmp.appendingPathComponent("truncated_legacy.pth")
        try legacy.prefix(legacy.count - 7).write(to: truncatedLegacy)
        XCTAssertThrowsError(try TorchCheckpoint(url: truncatedLegacy)) {
            guard case .corrupt(_, let why)? = $0 as? TorchCheckpointError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("truncated"), why)
        }

        let truncated = tmp.appendingPathComponent("truncated.pth")
        try original.prefix(original.count / 2).write(to: truncated)
        XCTAssertThrowsError(try TorchCheckpoint(url: truncated)) { XCTAssertTrue($0 is TorchCheckpointError, "\($0)") }

        let text = tmp.appendingPathComponent("text.pth")
        try Data(String(repeating: "not a zip file\n", count: 10).utf8).write(to: text)
        XCTAssertThrowsError(try TorchCheckpoint(url: text)) {
            XCTAssertEqual($0 as? TorchCheckpointError, .notZip(text.path))
        }

        // Flip the pickle's first opcode to an undefined one: the reader names it instead of crashing.
        var bytes = [UInt8](original)
        let marker = Array("data.pkl".utf8)
        let nameEnd = try XCTUnwrap(firstRange(of: marker, in: bytes)) + marker.count   // data.pkl is the first entry
        let dataStart = nameEnd + Int(UInt16(bytes[28]) | UInt16(bytes[29]) << 8)
        XCTAssertEqual(bytes[dataStart], 0x80, "pickle should start with PROTO")
        bytes[dataStart] = 0xFF
        let badPickle = tmp.appendingPathComponent("bad_pickle.pth")
        try Data(bytes).write(to: badPickle)
        XCTAssertThrowsError(try TorchCheckpoint(url: badPickle)) { error in
            guard case .unsupported(_, let why)? = error as? TorchCheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("opcode 0xff"), why)
        }

        XCTAssertThrowsError(try TorchCheckpoint(url: tmp.appendingPathComponent("missing.pth"))) {
            guard case .cannotOpen? = $0 as? TorchCheckpointError else { return XCTFail("\($0)") }
        }
    }

    func firstRange(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
