import Foundation
import XCTest
@testable import Tokenizers

/// The file-format readers under the tokenizers: gzip/DEFLATE, protobuf, the precompiled charsmap.
final class FormatReaderTests: XCTestCase {
    private func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
    }

    // Python: gzip.GzipFile(mtime=0, compresslevel=..., filename=...) over the given text.
    private lazy var stored = bytes("1f8b08000000000000ff011f00e0ff73746f72656420626c6f636b3a2068656c6c6f2068656c6c6f2068656c6c6fec21e23f1f000000")
    private lazy var fixedHuffman = bytes("1f8b08000000000002ff4b4c4a4e44420a699915a9290a19a56969b989790a19a93939f9c824000e64e0ce2f000000")
    private lazy var namedMember = bytes("1f8b08080000000000ff6d65726765732e74787400cb4bcc4d4d51c84dcd4d4a2d0200acb73b430c000000")
    private lazy var empty = bytes("1f8b08000000000000ff03000000000000000000")

    func testGzipBlockTypesHeadersAndMembers() throws {
        XCTAssertEqual(String(decoding: try Gzip.decompress(stored), as: UTF8.self), "stored block: hello hello hello")
        XCTAssertEqual(String(decoding: try Gzip.decompress(fixedHuffman), as: UTF8.self),
                       "abcabcabcabcabc fixed huffman hello hello hello")
        XCTAssertEqual(String(decoding: try Gzip.decompress(namedMember), as: UTF8.self), "named member")
        XCTAssertEqual(try Gzip.decompress(empty), [])
        XCTAssertEqual(String(decoding: try Gzip.decompress(stored + namedMember + [0, 0]), as: UTF8.self),
                       "stored block: hello hello hellonamed member")
    }

    func testGzipOfTheBundledMergesFile() throws {
        // Dynamic-Huffman blocks; the trailer's CRC-32 and size are checked inside decompress.
        let data = try Gzip.decompress([UInt8](try Data(contentsOf: CLIPTokenizer.bundledMergesURL())))
        XCTAssertEqual(data.count, 3_194_984)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 262_146)
        XCTAssertEqual(lines[1], "i n")
        XCTAssertEqual(lines[CLIPTokenizer.openCLIPMergeCount], "jeky ll</w>")
    }

    func testGzipRejectsDamagedData() {
        func assertMalformed(_ input: [UInt8], _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try Gzip.decompress(input), line: line) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
            }
        }
        assertMalformed([], "shorter")
        assertMalformed(Array("plain text, not gzip at all".utf8), "magic")
        var badCRC = fixedHuffman
        badCRC[badCRC.count - 6] ^= 0xFF
        assertMalformed(badCRC, "CRC-32")
        var badSize = fixedHuffman
        badSize[badSize.count - 4] ^= 0x01
        assertMalformed(badSize, "size")
        assertMalformed(Array(fixedHuffman.prefix(fixedHuffman.count - 10)), "deflate")
        var badStored = stored
        badStored[12] ^= 0xFF  // LEN no longer matches NLEN
        assertMalformed(badStored, "stored block")
        var reserved = empty
        reserved[10] = 0x07  // final block of reserved type 3
        assertMalformed(reserved, "reserved")
    }

    /// A gzip member holding `payload` in one stored (uncompressed) block.
    private func storedGzip(_ payload: [UInt8]) -> [UInt8] {
        precondition(payload.count < 65_536)
        let length = UInt16(payload.count)
        var out: [UInt8] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF, 0x01, UInt8(length & 0xFF), UInt8(length >> 8),
                            UInt8(~length & 0xFF), UInt8(~length >> 8)]
        out += payload
        let crc = CRC32.checksum(payload[...])
        for value in [crc, UInt32(payload.count)] { out += (0..<4).map { UInt8((value >> (8 * $0)) & 0xFF) } }
        return out
    }

    func testOpenCLIPMergesFileErrors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("bpe.txt.gz")
        XCTAssertEqual(try Gzip.decompress(storedGzip(Array("round trip".utf8))), Array("round trip".utf8))
        try Data(storedGzip(Array("#version: 0.2\ni n\nt h".utf8))).write(to: url)
        XCTAssertThrowsError(try CLIPTokenizer(bpeMergesGz: url)) { error in
            XCTAssertTrue("\(error)".contains("3 lines, open_clip needs 48895"), "\(error)")
        }
        try Data(storedGzip(Array("#version: 0.2\ni n\nt h\n".utf8))).write(to: url)
        XCTAssertThrowsError(try CLIPTokenizer(bpeMergesGz: url)) { error in
            XCTAssertTrue("\(error)".contains("line 4 is not two symbols: \"\""), "\(error)")
        }
        try Data(storedGzip(Array("#version: 0.2\ni n\nt h e\n".utf8))).write(to: url)
        XCTAssertThrowsError(try CLIPTokenizer(bpeMergesGz: url)) { error in
            XCTAssertTrue("\(error)".contains("line 3 is not two symbols"), "\(error)")
        }
    }

    func testProtobufReader() throws {
        // field 1 varint 300, field 2 fixed32 1.5f, field 3 string "hi", field 4 varint -1 (10 bytes), field 5 fixed64
        let message: [UInt8] = [0x08, 0xAC, 0x02, 0x15, 0x00, 0x00, 0xC0, 0x3F, 0x1A, 0x02, 0x68, 0x69,
                                0x20, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
                                0x29, 1, 2, 3, 4, 5, 6, 7, 8]
        var reader = ProtobufReader(message, context: "test")
        var field = try XCTUnwrap(try reader.nextField())
        XCTAssertEqual(field.number, 1)
        XCTAssertEqual(try reader.varint(), 300)
        field = try XCTUnwrap(try reader.nextField())
        XCTAssertEqual(field.number, 2)
        XCTAssertEqual(try reader.float(), 1.5)
        _ = try reader.nextField()
        XCTAssertEqual(try reader.string(), "hi")
        _ = try reader.nextField()
        XCTAssertEqual(try reader.int32(), -1)
        field = try XCTUnwrap(try reader.nextField())
        XCTAssertEqual(field.wireType, .fixed64)
        try reader.skip(field.wireType)
        XCTAssertNil(try reader.nextField())

        var truncated = ProtobufReader([0x1A, 0x05, 0x68], context: "test")
        _ = try truncated.nextField()
        XCTAssertThrowsError(try truncated.string()) { XCTAssertTrue("\($0)".contains("runs past the end"), "\($0)") }
        var group = ProtobufReader([0x0B], context: "test")  // wire type 3 (group)
        XCTAssertThrowsError(try group.nextField()) { XCTAssertTrue("\($0)".contains("wire type 3"), "\($0)") }
        var endless = ProtobufReader([UInt8](repeating: 0xFF, count: 12), context: "test")
        XCTAssertThrowsError(try endless.varint())
    }

    func testPrecompiledCharsMapFromTheTinyModel() throws {
        let model = try SentencePieceModel(bytes: [UInt8](try Data(contentsOf: try TokenizerOracle.resource("t5_tiny/spiece.model"))))
        let map = try PrecompiledCharsMap(model.precompiledCharsMap)
        func longest(_ text: String) -> String? {
            map.longestMatch(Array(text.utf8)).map { String(decoding: $0.replacement, as: UTF8.self) }
        }
        XCTAssertEqual(longest("ﬁne"), "fi")          // NFKC of the ligature
        XCTAssertEqual(longest("Ａb"), "A")           // full-width letter
        XCTAssertEqual(longest("e\u{301}x"), "é")     // composition: a two-character key
        XCTAssertNil(longest("abc"))                   // plain ASCII has no rule
        XCTAssertEqual(map.firstMatch(Array("\u{3000}".utf8)).map { String(decoding: $0, as: UTF8.self) }, " ")

        XCTAssertThrowsError(try PrecompiledCharsMap([1, 0, 0]))
        XCTAssertThrowsError(try PrecompiledCharsMap([0xFF, 0, 0, 0, 1, 2, 3, 4]))  // trie larger than the blob
        XCTAssertThrowsError(try PrecompiledCharsMap([3, 0, 0, 0, 1, 2, 3, 4]))     // not a multiple of 4
    }

    func testSentencePieceModelFields() throws {
        let tiny = try SentencePieceModel(bytes: [UInt8](try Data(contentsOf: try TokenizerOracle.resource("t5_tiny/spiece.model"))))
        XCTAssertEqual(tiny.pieces.count, 1200)
        XCTAssertEqual(tiny.pieces[0].piece, "<pad>")
        XCTAssertEqual(tiny.pieces[0].type, .control)
        XCTAssertEqual(tiny.pieces[2].type, .unknown)
        XCTAssertEqual(tiny.eosID, 1)
        XCTAssertEqual(tiny.padID, 0)
        XCTAssertFalse(tiny.byteFallback)
        XCTAssertTrue(tiny.addDummyPrefix && tiny.removeExtraWhitespaces && tiny.escapeWhitespaces)
        XCTAssertFalse(tiny.precompiledCharsMap.isEmpty)
        let bytes = try SentencePieceModel(bytes: [UInt8](try Data(contentsOf: try TokenizerOracle.resource("t5_bytes/spiece.model"))))
        XCTAssertTrue(bytes.byteFallback)
        XCTAssertTrue(bytes.precompiledCharsMap.isEmpty)
        XCTAssertEqual(bytes.pieces.filter { $0.type == .byte }.count, 256)
    }

    func testTokenizersAreUsableThroughTheProtocol() throws {
        let tokenizers: [any TextTokenizer] = [
            try CLIPTokenizer.openCLIP(),
            try T5Tokenizer(tokenizerJSON: try TokenizerOracle.resource("t5_tiny/tokenizer.json")),
        ]
        XCTAssertEqual(tokenizers[0].encode("a red chair"), [49406, 320, 736, 4269, 49407])
        XCTAssertEqual(tokenizers[1].encode("").last, 1)
    }
}
