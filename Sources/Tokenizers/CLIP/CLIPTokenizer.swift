import Foundation

/// CLIP's byte-level BPE tokenizer in its two published flavours.
///
/// - `.openCLIP`: open_clip's `SimpleTokenizer` (`open_clip.get_tokenizer("convnext_large_d")`, the subnet
///   validator's): ftfy + html clean-up, whitespace collapse, lower-case; `<start_of_text>` 49406,
///   `<end_of_text>` 49407, zero padding. Built from `bpe_simple_vocab_16e6.txt.gz`.
/// - `.transformers`: transformers' `CLIPTokenizer` (v5, tokenizers backend; FLUX's CLIP-L, SD2 / MVDream's
///   OpenCLIP-H): NFC, whitespace runs -> " ", lower-case; special tokens from the config, found in the raw
///   text; padding with the config's `pad_token`. Built from a model folder's `vocab.json` + `merges.txt`.
///
/// Both produce `[bos] + BPE ids + [eos]`; `encode(_:contextLength:)` keeps the first `contextLength - 2` BPE ids
/// (so eos stays last) and pads to `contextLength`.
public final class CLIPTokenizer: TextTokenizer {
    public enum Flavour: Sendable { case openCLIP, transformers }

    public let flavour: Flavour
    public let bosID: Int32
    public let eosID: Int32
    public let padID: Int32
    /// 77 for CLIP (transformers: the config's `model_max_length` when it is a sane value).
    public let defaultContextLength: Int

    private let bpe: ByteLevelBPE
    private let preTokenizer: CLIPPreTokenizer
    /// transformers: special tokens split out of the raw text. open_clip: unused (its specials are regex matches).
    private let addedVocabulary: AddedVocabulary
    /// open_clip: pre-tokens that are its special tokens, by their exact UTF-8 bytes.
    private let literalSpecials: [[UInt8]: Int32]
    private let cache = WordCache()

    /// The merges open_clip reads from its file: lines 1...48894 (`merges[1:49152-256-2+1]`).
    static let openCLIPMergeCount = 49152 - 256 - 2

    // MARK: Loading

    /// open_clip's tokenizer from `bpe_simple_vocab_16e6.txt.gz` (the file in the open_clip_torch wheel).
    public convenience init(bpeMergesGz url: URL) throws {
        let data = try Gzip.decompress(Array(try readFile(url)))
        let merges = try Self.openCLIPMerges(data, name: url.lastPathComponent)
        // Vocabulary order of SimpleTokenizer.__init__: bytes, bytes + "</w>", merged pairs, the two specials.
        let byteCharacters = ByteLevelAlphabet.bytesInVocabularyOrder.map { ByteLevelAlphabet.characterForByte[Int($0)] }
        var tokens = byteCharacters + byteCharacters.map { $0 + "</w>" }
        tokens += merges.map { $0.0 + $0.1 }
        tokens += ["<start_of_text>", "<end_of_text>"]
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() { vocabulary[token] = id }  // a repeated token keeps its last id
        try self.init(flavour: .openCLIP, vocabulary: vocabulary, merges: merges,
                      bos: "<start_of_text>", eos: "<end_of_text>", padID: 0, addedTokens: [], contextLength: 77)
    }

    /// Lines 1...48894 of the decompressed merges file as symbol pairs (`merge.split()` of each line). Works on
    /// bytes: the file has 262K lines and only the first 48,895 are read.
    private static func openCLIPMerges(_ data: [UInt8], name: String) throws -> [(String, String)] {
        var merges: [(String, String)] = []
        merges.reserveCapacity(openCLIPMergeCount)
        var lineStart = 0
        var lineNumber = 0  // 0-based, as Python's list index
        while merges.count < openCLIPMergeCount {
            guard lineStart <= data.count else {
                throw TokenizerError.malformed(what: name, reason: "\(lineNumber) lines, open_clip needs \(openCLIPMergeCount + 1)")
            }
            let lineEnd = data[lineStart...].firstIndex(of: 0x0A) ?? data.count
            defer {
                lineStart = lineEnd + 1
                lineNumber += 1
            }
            guard lineNumber > 0 else { continue }  // the "#version" line
            // Python's str.split(): runs of whitespace separate, none at either end (ASCII is all it meets here).
            let symbols = data[lineStart..<lineEnd].split(whereSeparator: { $0 == 0x20 || ($0 >= 0x09 && $0 <= 0x0D) })
            guard symbols.count == 2,
                  let left = String(validating: symbols[0], as: UTF8.self),
                  let right = String(validating: symbols[1], as: UTF8.self) else {
                let line = String(decoding: data[lineStart..<lineEnd], as: UTF8.self)
                throw TokenizerError.malformed(what: name, reason: "line \(lineNumber + 1) is not two symbols: \(line.debugDescription)")
            }
            merges.append((left, right))
        }
        return merges
    }

    /// open_clip's tokenizer from the merges file shipped as this target's resource.
    public static func openCLIP() throws -> CLIPTokenizer {
        try CLIPTokenizer(bpeMergesGz: bundledMergesURL())
    }

    /// Where the bundled `bpe_simple_vocab_16e6.txt.gz` is: the SwiftPM resource bundle beside the executable
    /// (`Splat3D_Tokenizers.resources/`), else this source tree (development checkouts).
    public static func bundledMergesURL() throws -> URL {
        let name = "bpe_simple_vocab_16e6.txt.gz"
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent("Splat3D_Tokenizers.resources").appendingPathComponent(name),
            Bundle.main.executableURL?.deletingLastPathComponent()
                .appendingPathComponent("Splat3D_Tokenizers.resources").appendingPathComponent(name),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Resources").appendingPathComponent(name),
        ].compactMap { $0 }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return found }
        throw TokenizerError.unreadableFile(path: name,
                                            reason: "not found in \(candidates.map(\.path).joined(separator: ", "))")
    }

    /// transformers' CLIPTokenizer from a model folder's files.
    /// - Parameters:
    ///   - config: `tokenizer_config.json` (bos/eos/unk/pad tokens, `model_max_length`, `added_tokens_decoder`).
    ///   - specialTokensMap: `special_tokens_map.json`; as in transformers 5, its tokens override the config's
    ///     unless the config has an `added_tokens_decoder`.
    ///   Errors name the files read.
    public convenience init(vocabJSON: URL, mergesTXT: URL, config: URL? = nil, specialTokensMap: URL? = nil) throws {
        do {
            try self.init(readingVocabJSON: vocabJSON, mergesTXT: mergesTXT, config: config, specialTokensMap: specialTokensMap)
        } catch let error as TokenizerError {
            throw TokenizerError.inFiles([vocabJSON, mergesTXT, config, specialTokensMap].compactMap { $0?.path }, error)
        }
    }

    private convenience init(readingVocabJSON vocabJSON: URL, mergesTXT: URL, config: URL?, specialTokensMap: URL?) throws {
        guard let vocabulary = try readJSON(vocabJSON) as? [String: Int] else {
            throw TokenizerError.malformed(what: vocabJSON.lastPathComponent, reason: "not an object of token -> id")
        }
        let merges = try Self.readMerges(mergesTXT)
        let settings = try HFTokenizerConfig(config: config, specialTokensMap: specialTokensMap, defaults: [
            "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        ])
        func id(_ role: String) throws -> Int32 {
            let token = settings.specialTokens[role]!
            if let id = vocabulary[token.content] ?? settings.addedTokens.first(where: { $0.content == token.content })
                .map({ Int($0.id) }) { return try Self.tokenID(id, of: token.content) }
            throw TokenizerError.missingToken(token.content)
        }
        var added = settings.addedTokens
        for role in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            var token = settings.specialTokens[role]!
            guard !added.contains(where: { $0.content == token.content }) else { continue }
            token.id = try id(role)
            added.append(token)
        }
        let contextLength = settings.modelMaxLength.flatMap { $0 >= 2 && $0 <= 1 << 20 ? $0 : nil } ?? 77
        try self.init(flavour: .transformers, vocabulary: vocabulary, merges: merges,
                      bos: settings.specialTokens["bos_token"]!.content, eos: settings.specialTokens["eos_token"]!.content,
                      padID: try id("pad_token"), addedTokens: added, contextLength: contextLength)
    }

    /// transformers' CLIPTokenizer from a folder holding `vocab.json`, `merges.txt` and optionally
    /// `tokenizer_config.json` / `special_tokens_map.json` (a model's `tokenizer/` folder).
    public convenience init(folder: URL) throws {
        func optional(_ name: String) -> URL? {
            let url = folder.appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }
        try self.init(vocabJSON: folder.appendingPathComponent("vocab.json"),
                      mergesTXT: folder.appendingPathComponent("merges.txt"),
                      config: optional("tokenizer_config.json"), specialTokensMap: optional("special_tokens_map.json"))
    }

    private init(flavour: Flavour, vocabulary: [String: Int], merges: [(String, String)], bos: String, eos: String,
                 padID: Int32, addedTokens: [AddedToken], contextLength: Int) throws {
        self.flavour = flavour
        bpe = try ByteLevelBPE(vocabulary: vocabulary, mergePairs: merges)
        guard let bos = vocabulary[bos] ?? addedTokens.first(where: { $0.content == bos }).map({ Int($0.id) }) else {
            throw TokenizerError.missingToken(bos)
        }
        guard let eos = vocabulary[eos] ?? addedTokens.first(where: { $0.content == eos }).map({ Int($0.id) }) else {
            throw TokenizerError.missingToken(eos)
        }
        let bosToken = try Self.tokenID(bos, of: "bos"), eosToken = try Self.tokenID(eos, of: "eos")
        bosID = bosToken
        eosID = eosToken
        self.padID = padID
        defaultContextLength = contextLength
        switch flavour {
        case .openCLIP:
            preTokenizer = .openCLIP
            addedVocabulary = AddedVocabulary(tokens: [], normalize: { $0 })
            literalSpecials = [Array("<start_of_text>".utf8): bosToken, Array("<end_of_text>".utf8): eosToken]
        case .transformers:
            preTokenizer = .transformers
            addedVocabulary = AddedVocabulary(tokens: addedTokens, normalize: Self.transformersNormalize)
            literalSpecials = [:]
        }
    }

    /// A vocabulary id as a token id: ids outside 0...Int32.max are a corrupt vocabulary.
    static func tokenID(_ id: Int, of token: String) throws -> Int32 {
        guard id >= 0, id <= Int(Int32.max) else {
            throw TokenizerError.malformed(what: "vocabulary", reason: "id \(id) of \(token.debugDescription) out of range")
        }
        return Int32(id)
    }

    /// merges.txt: an optional "#version" first line, then "left right" per line (LF or CRLF), in rank order.
    static func readMerges(_ url: URL) throws -> [(String, String)] {
        guard let text = String(data: try readFile(url), encoding: .utf8) else {
            throw TokenizerError.malformed(what: url.lastPathComponent, reason: "not UTF-8 text")
        }
        var merges: [(String, String)] = []
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            if line.isEmpty || (index == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError.malformed(what: url.lastPathComponent,
                                               reason: "line \(index + 1) is not \"left right\": \(line.debugDescription)")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        return merges
    }

    // MARK: Encoding

    /// `[bos] + ids + [eos]`, not truncated or padded.
    public func encode(_ text: String) -> [Int] {
        [Int(bosID)] + tokenIDs(text).map(Int.init) + [Int(eosID)]
    }

    /// `contextLength` ids: bos, at most `contextLength - 2` BPE ids, eos, then `padID` up to the length
    /// (open_clip: `tokenizer(text)`; transformers: `padding="max_length", truncation=True`).
    public func encode(_ text: String, contextLength: Int) throws -> [Int32] {
        guard contextLength >= 2 else {
            throw TokenizerError.invalidLength(name: "contextLength", value: contextLength, minimum: 2)
        }
        var ids = [bosID]
        ids.reserveCapacity(contextLength)
        ids += tokenIDs(text).prefix(contextLength - 2)
        ids.append(eosID)
        ids += repeatElement(padID, count: contextLength - ids.count)
        return ids
    }

    /// The BPE ids of `text` without bos / eos.
    public func tokenIDs(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        switch flavour {
        case .openCLIP:
            appendBPE(of: OpenCLIPTextCleaner.clean(text), to: &ids)
        case .transformers:
            let scalars = Array(text.unicodeScalars)
            for segment in addedVocabulary.split(scalars, normalize: Self.transformersNormalize) {
                switch segment {
                case let .token(id): ids.append(id)
                case let .text(normalized): appendBPE(of: normalized.scalars, to: &ids)
                }
            }
        }
        return ids
    }

    /// transformers' CLIP normaliser: `Sequence([NFC(), Replace(Regex("\s+"), " "), Lowercase()])`.
    static let transformersNormalizer = HFNormalizer.sequence([.nfc, .collapseWhitespace, .lowercase])

    static func transformersNormalize(_ text: NormalizedText) -> NormalizedText {
        transformersNormalizer.apply(text)
    }

    private func appendBPE(of text: [Unicode.Scalar], to ids: inout [Int32]) {
        var utf8: [UInt8] = []
        for range in preTokenizer.split(text) {
            utf8.removeAll(keepingCapacity: true)
            for scalar in text[range] { utf8.append(contentsOf: scalar.utf8) }
            if let special = literalSpecials[utf8] {
                ids.append(special)
                continue
            }
            ids += cache.value(for: utf8) { bpe.encode(word: utf8) }
        }
    }
}
