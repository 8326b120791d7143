import Foundation
import XCTest
@testable import Tokenizers

/// transformers' CLIPTokenizer from vocab.json + merges.txt (FLUX's `tokenizer/`, SD2 / MVDream's OpenCLIP-H).
/// The model folder is built from open_clip's merges exactly as scripts/make_tokenizer_oracle.py builds the one
/// it ran transformers on.
final class TransformersCLIPTokenizerTests: XCTestCase {
    /// vocab.json and merges.txt in transformers' CLIP layout, written once.
    static let modelFiles = Result { () throws -> (vocab: URL, merges: URL) in
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("clip-hf-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let text = String(decoding: try Gzip.decompress([UInt8](try Data(contentsOf: CLIPTokenizer.bundledMergesURL()))),
                          as: UTF8.self)
        let merges = text.split(separator: "\n", omittingEmptySubsequences: false)[1...CLIPTokenizer.openCLIPMergeCount]
        let bytes = ByteLevelAlphabet.bytesInVocabularyOrder.map { ByteLevelAlphabet.characterForByte[Int($0)] }
        var tokens = bytes + bytes.map { $0 + "</w>" } + merges.map { $0.split(separator: " ").joined() }
        tokens += ["<|startoftext|>", "<|endoftext|>"]
        var vocabulary: [String: Int] = [:]
        for (id, token) in tokens.enumerated() { vocabulary[token] = id }
        let vocabURL = folder.appendingPathComponent("vocab.json")
        try JSONSerialization.data(withJSONObject: vocabulary).write(to: vocabURL)
        let mergesURL = folder.appendingPathComponent("merges.txt")
        try Data(("#version: 0.2\n" + merges.joined(separator: "\n") + "\n").utf8).write(to: mergesURL)
        return (vocabURL, mergesURL)
    }

    private func makeTokenizer(padToken: String, normalizedSpecials: Bool? = nil,
                               specialTokensMap: [String: Any]? = nil) throws -> CLIPTokenizer {
        let files = try Self.modelFiles.get()
        let folder = files.vocab.deletingLastPathComponent().appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var config: [String: Any] = ["model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                     "unk_token": "<|endoftext|>", "pad_token": padToken, "tokenizer_class": "CLIPTokenizer"]
        if let normalizedSpecials {
            config["added_tokens_decoder"] = Dictionary(uniqueKeysWithValues: ["<|startoftext|>", "<|endoftext|>"].enumerated().map {
                ("\(49406 + $0.offset)", ["content": $0.element, "lstrip": false, "normalized": normalizedSpecials,
                                          "rstrip": false, "single_word": false, "special": true] as [String: Any])
            })
        }
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        var mapURL: URL?
        if let specialTokensMap {
            mapURL = folder.appendingPathComponent("special_tokens_map.json")
            try JSONSerialization.data(withJSONObject: specialTokensMap).write(to: mapURL!)
        }
        return try CLIPTokenizer(vocabJSON: files.vocab, mergesTXT: files.merges, config: configURL, specialTokensMap: mapURL)
    }

    private func compare(_ tokenizer: CLIPTokenizer, oracleKey: String, padID: Int) throws {
        let oracle = try TokenizerOracle.load()
        let padded = try oracle.paddedLists("clip", oracleKey, padID: padID)
        let unpadded = try oracle.idLists("clip", oracleKey + "_unpadded")
        var report = MismatchReport()
        for (index, text) in oracle.texts.enumerated() {
            report.check(try tokenizer.encode(text, contextLength: 77).map(Int.init), padded[index],
                         "padded \(index) \(text.debugDescription)")
            report.check(tokenizer.encode(text), unpadded[index], "unpadded \(index) \(text.debugDescription)")
        }
        report.assertEmpty("transformers CLIPTokenizer \(oracleKey)")
    }

    func testPadWithEndOfTextLikeFLUX() throws {
        let tokenizer = try makeTokenizer(padToken: "<|endoftext|>")
        XCTAssertEqual(tokenizer.flavour, .transformers)
        XCTAssertEqual([tokenizer.bosID, tokenizer.eosID, tokenizer.padID], [49406, 49407, 49407])
        XCTAssertEqual(tokenizer.defaultContextLength, 77)
        try compare(tokenizer, oracleKey: "transformers_pad_eos", padID: 49407)
    }

    func testPadWithExclamationMarkLikeOpenCLIPH() throws {
        let tokenizer = try makeTokenizer(padToken: "!")
        XCTAssertEqual(tokenizer.padID, 0)
        // "!" is then a special token of its own: found in the text as id 0, not BPE'd to "!</w>" (256).
        XCTAssertEqual(tokenizer.tokenIDs("wow!"), [2781, 0])
        try compare(tokenizer, oracleKey: "transformers_pad_bang", padID: 0)
    }

    func testNormalizedSpecialTokensFromAddedTokensDecoder() throws {
        let tokenizer = try makeTokenizer(padToken: "<|endoftext|>", normalizedSpecials: true)
        XCTAssertEqual(tokenizer.tokenIDs("A <|ENDOFTEXT|> b"), [320, 49407, 321])
        try compare(tokenizer, oracleKey: "transformers_decoder_normalized", padID: 49407)
    }

    func testSpecialTokensMapPrecedence() throws {
        // Without added_tokens_decoder, special_tokens_map.json overrides the config (transformers 5).
        let overridden = try makeTokenizer(padToken: "<|endoftext|>", specialTokensMap: ["pad_token": "!"])
        XCTAssertEqual(overridden.padID, 0)
        // With it, the map is ignored.
        let kept = try makeTokenizer(padToken: "<|endoftext|>", normalizedSpecials: false,
                                     specialTokensMap: ["pad_token": ["content": "!", "normalized": false]])
        XCTAssertEqual(kept.padID, 49407)
    }

    func testFolderInitializerAndMissingPadToken() throws {
        let files = try Self.modelFiles.get()
        let folder = files.vocab.deletingLastPathComponent()
        let tokenizer = try CLIPTokenizer(folder: folder)  // no config: transformers' defaults
        XCTAssertEqual([tokenizer.bosID, tokenizer.eosID, tokenizer.padID], [49406, 49407, 49407])
        XCTAssertThrowsError(try makeTokenizer(padToken: "<no such token>")) { error in
            XCTAssertEqual((error as? TokenizerError)?.withoutFiles, .missingToken("<no such token>"))
        }
    }

    func testBadFilesGiveClearErrors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let vocab = folder.appendingPathComponent("vocab.json")
        let merges = folder.appendingPathComponent("merges.txt")
        try Data("[1, 2]".utf8).write(to: vocab)
        try Data("#version: 0.2\na b\n".utf8).write(to: merges)
        XCTAssertThrowsError(try CLIPTokenizer(vocabJSON: vocab, mergesTXT: merges)) { error in
            XCTAssertTrue("\(error)".contains("vocab.json"), "\(error)")
        }
        let files = try Self.modelFiles.get()
        try Data("#version: 0.2\na b c\n".utf8).write(to: merges)
        XCTAssertThrowsError(try CLIPTokenizer(vocabJSON: files.vocab, mergesTXT: merges)) { error in
            XCTAssertTrue("\(error)".contains("line 2"), "\(error)")
        }
        XCTAssertThrowsError(try CLIPTokenizer(vocabJSON: folder.appendingPathComponent("absent.json"), mergesTXT: merges)) { error in
            guard case .unreadableFile? = (error as? TokenizerError)?.withoutFiles else { return XCTFail("\(error)") }
        }
        try Data("not gzip at all, just some text".utf8).write(to: merges)
        XCTAssertThrowsError(try CLIPTokenizer(bpeMergesGz: merges)) { error in
            XCTAssertTrue("\(error)".contains("gzip"), "\(error)")
        }
    }
}
