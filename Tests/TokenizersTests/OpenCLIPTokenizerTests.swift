import Foundation
import XCTest
@testable import Tokenizers

/// open_clip's SimpleTokenizer (the validator's `open_clip.get_tokenizer("convnext_large_d")`).
final class OpenCLIPTokenizerTests: XCTestCase {
    static let tokenizer = Result { try CLIPTokenizer.openCLIP() }

    /// Oracle texts that ftfy repairs as mojibake; the port leaves them as they are (see `Ftfy`).
    static let knownMojibakeTexts: Set<String> = ["cafÃ© mojibake", "cafÃ©", "â€œquotedâ€\u{9D}", "Ã¼ber", "schÃ¶n"]

    func testValidatorFixtureIDs() throws {
        let tokenizer = try Self.tokenizer.get()
        let folder = try SharedFixtures.folder("openclip")
        let cases = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("tokenizer_cases.json")))
                as? [String: Any])?["cases"] as? [[String: Any]])
        let io = try SafetensorsFile(url: folder.appendingPathComponent("tokenizer_io.safetensors"))
        let ids = try XCTUnwrap(io.tensors["output.ids"])
        let eotIndex = try XCTUnwrap(io.tensors["output.eot_index"])
        XCTAssertEqual(ids.shape, [cases.count, 77])

        let oracle = try TokenizerOracle.load()
        let withoutRepair = try oracle.idLists("clip", "open_clip_no_fix_encoding")
        var report = MismatchReport()
        var mojibakeCases: [Int] = []
        for (index, testCase) in cases.enumerated() {
            let text = try XCTUnwrap(testCase["text"] as? String)
            let actual = try tokenizer.encode(text, contextLength: 77).map(Int.init)
            let expected = ids.values[(index * 77)..<((index + 1) * 77)].map { Int($0) }
            if Self.knownMojibakeTexts.contains(text) {
                // ftfy repairs this text first; the port must equal open_clip with that repair switched off.
                mojibakeCases.append(index)
                let oracleIndex = try XCTUnwrap(oracle.texts.firstIndex(of: text))
                report.check(actual, withoutRepair[oracleIndex], "case \(index) \(text.debugDescription) (no fix_encoding)")
                XCTAssertNotEqual(actual, expected, "case \(index): expected ftfy's repair to change the ids")
                continue
            }
            report.check(actual, expected, "case \(index) \(text.debugDescription)")
            let argmax = actual.indices.max { actual[$0] < actual[$1] || (actual[$0] == actual[$1] && $0 > $1) }!
            report.check(argmax, Int(eotIndex.values[index]), "case \(index) eot index")
            if let clean = testCase["clean"] as? String {
                report.check(String(scalars: OpenCLIPTextCleaner.clean(text)), clean, "case \(index) clean")
            }
            if let pretokens = testCase["pretokens"] as? [String] {
                let cleaned = OpenCLIPTextCleaner.clean(text)
                let pieces = CLIPPreTokenizer.openCLIP.split(cleaned).map { String(scalars: cleaned[$0]) }
                report.check(pieces, pretokens, "case \(index) pretokens")
            }
        }
        report.assertEmpty("validator tokenizer fixture")
        XCTAssertEqual(mojibakeCases, [18], "only the mojibake case differs from the validator's ids")
    }

    func testOracleSetMatchesOpenCLIPWithoutMojibakeRepair() throws {
        let tokenizer = try Self.tokenizer.get()
        let oracle = try TokenizerOracle.load()
        let expected = try oracle.idLists("clip", "open_clip_no_fix_encoding")
        var report = MismatchReport()
        for (index, text) in oracle.texts.enumerated() {
            report.check(try tokenizer.encode(text, contextLength: 77).map(Int.init), expected[index],
                         "text \(index) \(text.debugDescription)")
        }
        report.assertEmpty("open_clip with ftfy fix_encoding=False")
    }

    func testOracleSetMatchesOpenCLIPExceptMojibake() throws {
        let tokenizer = try Self.tokenizer.get()
        let oracle = try TokenizerOracle.load()
        let expected = try oracle.idLists("clip", "open_clip")
        let cleaned = try XCTUnwrap(try oracle.value("clip", "open_clip_clean") as? [String])
        var report = MismatchReport()
        var differing: Set<String> = []
        for (index, text) in oracle.texts.enumerated() {
            let actual = try tokenizer.encode(text, contextLength: 77).map(Int.init)
            if actual != expected[index] { differing.insert(text) }
            if !Self.knownMojibakeTexts.contains(text) {
                report.check(actual, expected[index], "text \(index) \(text.debugDescription)")
                report.check(String(scalars: OpenCLIPTextCleaner.clean(text)), cleaned[index], "clean \(index)")
            }
        }
        report.assertEmpty("open_clip (real ftfy)")
        XCTAssertEqual(differing, Self.knownMojibakeTexts)
    }

    func testSpecialTokensTruncationAndPadding() throws {
        let tokenizer = try Self.tokenizer.get()
        XCTAssertEqual(tokenizer.bosID, 49406)
        XCTAssertEqual(tokenizer.eosID, 49407)
        XCTAssertEqual(tokenizer.padID, 0)
        XCTAssertEqual(tokenizer.encode("a red chair"), [49406, 320, 736, 4269, 49407])
        XCTAssertEqual(try tokenizer.encode("", contextLength: 5), [49406, 49407, 0, 0, 0])
        // The literal special-token strings become the special ids; a look-alike only matches case-insensitively
        // in the regex and is then split by BPE.
        XCTAssertEqual(tokenizer.encode("<END_OF_TEXT>"), [49406, 49407, 49407])
        XCTAssertEqual(tokenizer.tokenIDs("x<start_of_text>"), [343, 49406])
        let long = try tokenizer.encode(String(repeating: "spaceship ", count: 100), contextLength: 77)
        XCTAssertEqual(long.count, 77)
        XCTAssertEqual(long.first, 49406)
        XCTAssertEqual(long.last, 49407)
        XCTAssertEqual(Set(long.dropFirst().dropLast()).count, 1)
        XCTAssertEqual(try tokenizer.encode("a", contextLength: 2), [49406, 49407])
        XCTAssertThrowsError(try tokenizer.encode("a", contextLength: 1)) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidLength(name: "contextLength", value: 1, minimum: 2))
        }
    }

    func testConcurrentEncodingIsConsistent() throws {
        let tokenizer = try Self.tokenizer.get()
        let oracle = try TokenizerOracle.load()
        let expected = try oracle.idLists("clip", "open_clip_no_fix_encoding")
        let mismatches = Mismatches()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for (index, text) in oracle.texts.enumerated() where index % 8 == worker || index % 3 == 0 {
                if (try? tokenizer.encode(text, contextLength: 77).map(Int.init)) != expected[index] {
                    mismatches.add(index)
                }
            }
        }
        XCTAssertEqual(mismatches.all, [])
    }
}

final class Mismatches: @unchecked Sendable {
    private let lock = NSLock()
    private var indices: [Int] = []
    func add(_ index: Int) { lock.lock(); indices.append(index); lock.unlock() }
    var all: [Int] { lock.lock(); defer { lock.unlock() }; return indices.sorted() }
}
