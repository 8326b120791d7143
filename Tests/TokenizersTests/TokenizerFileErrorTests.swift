import Foundation
import XCTest
@testable import Tokenizers

/// Tokenizer files that used to trap or gave errors without the file's name (found by `gen3d fuzz-files`).
final class TokenizerFileErrorTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// The small CLIP tokenizer of assets/fuzz (vocab.json + merges.txt), copied into `folder`.
    func copyCLIPTokenizer() throws -> (vocab: URL, merges: URL) {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("assets/fuzz/clip_tokenizer").path) {
            guard dir.path != "/" else { throw TokenizerError.unreadableFile(path: "assets/fuzz", reason: "not found") }
            dir.deleteLastPathComponent()
        }
        let source = dir.appendingPathComponent("assets/fuzz/clip_tokenizer")
        let vocab = folder.appendingPathComponent("vocab.json"), merges = folder.appendingPathComponent("merges.txt")
        try FileManager.default.copyItem(at: source.appendingPathComponent("vocab.json"), to: vocab)
        try FileManager.default.copyItem(at: source.appendingPathComponent("merges.txt"), to: merges)
        return (vocab, merges)
    }

    func testTheSmallCLIPTokenizerLoads() throws {
        _ = try copyCLIPTokenizer()
        let tokenizer = try CLIPTokenizer(folder: folder)
        let ids = tokenizer.encode("in the")
        XCTAssertGreaterThan(ids.count, 2)
    }

    /// A special token's id of 2^40 trapped in `Int32(id)`.
    func testSpecialTokenIdOutOfInt32RangeIsAnError() throws {
        let (vocab, merges) = try copyCLIPTokenizer()
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: vocab)) as? [String: Int])
        json["<|startoftext|>"] = 1 << 40
        try JSONSerialization.data(withJSONObject: json).write(to: vocab)
        XCTAssertThrowsError(try CLIPTokenizer(folder: folder)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(vocab.path) && text.contains(merges.path), text)
            XCTAssertTrue(text.contains("out of range"), text)
        }
    }

    func testMalformedFilesAreNamed() throws {
        let json = folder.appendingPathComponent("tokenizer.json")
        try Data("{\"model\": [".utf8).write(to: json)
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: json)) { XCTAssertTrue("\($0)".contains(json.path), "\($0)") }
        let spiece = folder.appendingPathComponent("spiece.model")
        try Data([0x0A, 0xFF, 0xFF, 0x01]).write(to: spiece)
        XCTAssertThrowsError(try T5Tokenizer(spieceModel: spiece)) { XCTAssertTrue("\($0)".contains(spiece.path), "\($0)") }
    }
}
