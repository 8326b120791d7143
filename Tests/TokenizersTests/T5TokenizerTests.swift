import Foundation
import XCTest
@testable import Tokenizers

/// T5's unigram tokenizer against sentencepiece, tokenizers and transformers on two small models trained by
/// scripts/make_tokenizer_oracle.py: `t5_tiny` (nmt_nfkc charsmap, like T5) and `t5_bytes` (byte fallback,
/// no normaliser).
final class T5TokenizerTests: XCTestCase {
    func testSpieceModelMatchesSentencePiece() throws {
        let oracle = try TokenizerOracle.load()
        for model in ["t5_tiny", "t5_bytes"] {
            let tokenizer = try T5Tokenizer(spieceModel: try TokenizerOracle.resource("\(model)/spiece.model"))
            XCTAssertEqual([tokenizer.padID, tokenizer.eosID, tokenizer.unkID], [0, 1, 2])
            let expected = try oracle.idLists(model, "sentencepiece")
            var report = MismatchReport()
            for (index, text) in oracle.texts.enumerated() {
                report.check(tokenizer.encode(text), expected[index], "\(model) text \(index) \(text.debugDescription)")
            }
            report.assertEmpty("\(model) spiece.model vs sentencepiece")
        }
    }

    /// Every tokenizer.json layout the oracle ran through tokenizers (see t5_variants in the script), read as
    /// written and as transformers 5 reads it.
    func testTokenizerJSONVariantsMatchTokenizers() throws {
        let oracle = try TokenizerOracle.load()
        var variantsChecked = 0
        for model in ["t5_tiny", "t5_bytes"] {
            let baseURL = try TokenizerOracle.resource("\(model)/tokenizer.json")
            let base = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: baseURL)) as? [String: Any])
            let variants = try XCTUnwrap(try oracle.value(model, "variants") as? [String: [String: Any]])
            for (name, variant) in variants.sorted(by: { $0.key < $1.key }) {
                let patch = try XCTUnwrap(variant["patch"] as? [String: Any])
                let url = try writePatched(base, patch: patch, name: "\(model)-\(name)")
                for (reading, key) in [(T5Tokenizer.JSONReading.asWritten, "ids"), (.transformers5, "transformers5_ids")] {
                    let tokenizer = try T5Tokenizer(tokenizerJSON: url, reading: reading)
                    let expected = try oracle.idLists(model, "variants", name, key)
                    var report = MismatchReport()
                    for (index, text) in oracle.texts.enumerated() {
                        report.check(tokenizer.encode(text), expected[index], "text \(index) \(text.debugDescription)")
                    }
                    report.assertEmpty("\(model) tokenizer.json variant \(name) read \(reading)")
                    variantsChecked += 1
                }
            }
        }
        XCTAssertEqual(variantsChecked, 28)
    }

    func testMaxLengthPaddingMatchesTransformers() throws {
        let oracle = try TokenizerOracle.load()
        for model in ["t5_tiny", "t5_bytes"] {
            let tokenizer = try T5Tokenizer(tokenizerJSON: try TokenizerOracle.resource("\(model)/tokenizer.json"))
            let expected = try oracle.paddedLists(model, "transformers_256", padID: 0)
            var report = MismatchReport()
            for (index, text) in oracle.texts.enumerated() {
                report.check(try tokenizer.encode(text, maxLength: 256).map(Int.init), expected[index],
                             "\(model) text \(index) \(text.debugDescription)")
            }
            report.assertEmpty("\(model) transformers T5Tokenizer max_length=256")
        }
    }

    func testTruncationKeepsEOSAndSpieceAgreesOnOrdinaryPrompts() throws {
        let json = try T5Tokenizer(tokenizerJSON: try TokenizerOracle.resource("t5_tiny/tokenizer.json"))
        let spiece = try T5Tokenizer(spieceModel: try TokenizerOracle.resource("t5_tiny/spiece.model"))
        let prompt = String(repeating: "a wooden chair next to a red table, ", count: 40)
        let ids = try json.encode(prompt, maxLength: 256)
        XCTAssertEqual(ids.count, 256)
        XCTAssertEqual(ids.last, 1)
        XCTAssertFalse(ids.dropLast().contains(1))
        XCTAssertEqual(try spiece.encode(prompt, maxLength: 256), ids)
        XCTAssertEqual(try json.encode("", maxLength: 4), [1, 0, 0, 0])
        XCTAssertEqual(try json.encode("chair", maxLength: 1), [1])
        XCTAssertThrowsError(try json.encode("chair", maxLength: 0)) { error in
            XCTAssertEqual(error as? TokenizerError, .invalidLength(name: "maxLength", value: 0, minimum: 1))
        }
    }

    func testFolderInitializerPrefersTokenizerJSON() throws {
        let folder = try TokenizerOracle.resource("t5_tiny")
        // "</s>" typed in the text: the special token for tokenizers, plain text for sentencepiece.
        XCTAssertEqual(try T5Tokenizer(folder: folder).encode("</s>"), [1, 1])
        let spieceOnly = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: spieceOnly, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: folder.appendingPathComponent("spiece.model"),
                                         to: spieceOnly.appendingPathComponent("spiece.model"))
        let spiece = try T5Tokenizer(folder: spieceOnly).encode("</s>")
        XCTAssertEqual(spiece, try T5Tokenizer(spieceModel: folder.appendingPathComponent("spiece.model")).encode("</s>"))
        XCTAssertGreaterThan(spiece.count, 2)
    }

    func testBadModelFilesGiveClearErrors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let model = [UInt8](try Data(contentsOf: try TokenizerOracle.resource("t5_tiny/spiece.model")))
        let truncated = folder.appendingPathComponent("truncated.model")
        try Data(model.prefix(model.count / 2)).write(to: truncated)
        XCTAssertThrowsError(try T5Tokenizer(spieceModel: truncated)) { error in
            XCTAssertTrue("\(error)".contains("spiece.model"), "\(error)")
        }
        let garbage = folder.appendingPathComponent("garbage.model")
        try Data([0x0F, 0xFF, 0xFF, 0xFF]).write(to: garbage)
        XCTAssertThrowsError(try T5Tokenizer(spieceModel: garbage))

        let base = try XCTUnwrap(try JSONSerialization.jsonObject(
            with: Data(contentsOf: try TokenizerOracle.resource("t5_tiny/tokenizer.json"))) as? [String: Any])
        var bpe = base
        bpe["model"] = ["type": "BPE", "vocab": [:], "merges": []]
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: try write(bpe, name: "bpe"))) { error in
            XCTAssertEqual((error as? TokenizerError)?.withoutFiles, .unsupported(what: "model type BPE (only Unigram)"))
            XCTAssertTrue("\(error)".contains("bpe"), "the error names the file: \(error)")
        }
        var odd = base
        odd["normalizer"] = ["type": "BertNormalizer"]
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: try write(odd, name: "odd"))) { error in
            XCTAssertEqual((error as? TokenizerError)?.withoutFiles, .unsupported(what: "normalizer BertNormalizer"))
        }
        var badCharsMap = base
        badCharsMap["normalizer"] = ["type": "Precompiled", "precompiled_charsmap": "AAAA"]
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: try write(badCharsMap, name: "charsmap"))) { error in
            XCTAssertTrue("\(error)".contains("precompiled_charsmap"), "\(error)")
        }
        XCTAssertThrowsError(try T5Tokenizer(tokenizerJSON: folder.appendingPathComponent("absent.json")))
    }

    // MARK: Helpers

    private func writePatched(_ base: [String: Any], patch: [String: Any], name: String) throws -> URL {
        let precompiled = Self.precompiledNormalizer(of: base)
        func resolve(_ value: Any) -> Any {
            if let object = value as? [String: Any] {
                if object["$ref"] as? String == "precompiled_of_tokenizer_json" { return precompiled ?? NSNull() }
                return object.mapValues(resolve)
            }
            if let array = value as? [Any] { return array.map(resolve) }
            return value
        }
        var patched = base
        for (key, value) in patch {
            if key == "model_byte_fallback" {
                var model = patched["model"] as? [String: Any] ?? [:]
                model["byte_fallback"] = value
                patched["model"] = model
            } else {
                patched[key] = resolve(value)
            }
        }
        return try write(patched, name: name)
    }

    private static func precompiledNormalizer(of tokenizer: [String: Any]) -> Any? {
        guard let normalizer = tokenizer["normalizer"] as? [String: Any] else { return nil }
        if normalizer["type"] as? String == "Precompiled" { return normalizer }
        return (normalizer["normalizers"] as? [[String: Any]])?.first { $0["type"] as? String == "Precompiled" }
    }

    private func write(_ json: [String: Any], name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        return url
    }
}
