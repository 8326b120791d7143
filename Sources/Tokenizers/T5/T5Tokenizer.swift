import Foundation

/// T5's sentencepiece unigram tokenizer (FLUX's `tokenizer_2`, T5-XXL), loaded from either file it ships as.
///
/// - `init(tokenizerJSON:)` reproduces transformers' `T5TokenizerFast` (the tokenizers library) running that
///   tokenizer.json: added tokens (`</s>`, `<pad>`, `<extra_id_N>`, ...) split out of the raw text, the
///   normaliser (Precompiled charsmap, Replace, Strip, ...), the pre-tokenizer (WhitespaceSplit, Metaspace, ...),
///   the Unigram model per pre-token, then the post-processor's `</s>`.
/// - `init(spieceModel:)` reproduces `sentencepiece.SentencePieceProcessor.encode` on that model, plus `</s>`.
///
/// On ordinary prompts the two agree; they differ where the libraries do (see the test suite): tokenizers treats
/// `</s>` typed in the text as the special token, and applies the charsmap per grapheme cluster, first match.
public final class T5Tokenizer: TextTokenizer {
    public let eosID: Int32
    public let padID: Int32
    public let unkID: Int32

    private enum Pipeline {
        case sentencePiece(SentencePieceNormalizer)
        case tokenizers(normalizer: HFNormalizer?, preTokenizer: HFPreTokenizer?, added: AddedVocabulary,
                        prefix: [Int32], suffix: [Int32])
    }

    private let pipeline: Pipeline
    private let model: UnigramModel

    /// From sentencepiece's `spiece.model` (protobuf `ModelProto`); errors name the file.
    public convenience init(spieceModel url: URL) throws {
        do { try self.init(readingSpieceModel: url) } catch let error as TokenizerError {
            throw TokenizerError.inFiles([url.path], error)
        }
    }

    private init(readingSpieceModel url: URL) throws {
        let proto = try SentencePieceModel(bytes: Array(try readFile(url)))
        guard proto.modelType == 1 else {
            throw TokenizerError.unsupported(what: "sentencepiece model_type \(proto.modelType) (only UNIGRAM = 1)")
        }
        model = try UnigramModel(sentencePiece: proto)
        pipeline = .sentencePiece(try SentencePieceNormalizer(model: proto))
        func id(_ fieldValue: Int32, _ piece: String) throws -> Int32 {
            if fieldValue >= 0 && Int(fieldValue) < proto.pieces.count { return fieldValue }
            guard let index = proto.pieces.firstIndex(where: { $0.piece == piece }) else {
                throw TokenizerError.missingToken(piece)
            }
            return Int32(index)
        }
        eosID = try id(proto.eosID, "</s>")
        padID = try id(proto.padID, "<pad>")
        unkID = model.unkID
    }

    /// From a model's tokenizer folder (FLUX's `tokenizer_2/`): its `tokenizer.json` when present (what
    /// transformers loads), else its `spiece.model`.
    public convenience init(folder: URL, reading: JSONReading = .asWritten) throws {
        let json = folder.appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: json.path) {
            try self.init(tokenizerJSON: json, reading: reading)
        } else {
            try self.init(spieceModel: folder.appendingPathComponent("spiece.model"))
        }
    }

    /// How to read a tokenizer.json.
    public enum JSONReading: Sendable {
        /// Run the file's own normaliser, pre-tokenizer and post-processor, as the tokenizers library (and
        /// transformers 4's `T5TokenizerFast`) does.
        case asWritten
        /// What transformers 5's `T5Tokenizer.from_pretrained` makes of the file: its vocabulary, unk id, added
        /// tokens and Precompiled charsmap inside T5's own pipeline (charsmap only, WhitespaceSplit, Metaspace
        /// "always", no byte fallback, `</s>` appended), whatever the file says.
        case transformers5
    }

    /// From a tokenizers `tokenizer.json` with a Unigram model; errors name the file.
    public convenience init(tokenizerJSON url: URL, reading: JSONReading = .asWritten) throws {
        do { try self.init(readingTokenizerJSON: url, reading: reading) } catch let error as TokenizerError {
            throw TokenizerError.inFiles([url.path], error)
        }
    }

    private init(readingTokenizerJSON url: URL, reading: JSONReading) throws {
        guard let root = try readJSON(url) as? [String: Any] else {
            throw TokenizerError.malformed(what: url.lastPathComponent, reason: "not a JSON object")
        }
        let parsed = try TokenizerJSON(root, reading: reading)
        model = parsed.model
        pipeline = .tokenizers(normalizer: parsed.normalizer, preTokenizer: parsed.preTokenizer,
                               added: parsed.addedVocabulary, prefix: parsed.prefix, suffix: parsed.suffix)
        guard let eos = parsed.eosID else {
            throw TokenizerError.malformed(what: url.lastPathComponent, reason: "post_processor appends no </s>")
        }
        eosID = eos
        guard let pad = parsed.padID else { throw TokenizerError.missingToken("<pad>") }
        padID = pad
        unkID = model.unkID
    }

    // MARK: Encoding

    /// The ids T5TokenizerFast gives `text` (ending in `</s>`), not truncated or padded.
    public func encode(_ text: String) -> [Int] {
        let (prefix, body, suffix) = parts(text)
        return (prefix + body + suffix).map(Int.init)
    }

    /// `maxLength` ids: the text's ids cut so the appended `</s>` still fits, then `padID` up to `maxLength`
    /// (`tokenizer(text, padding="max_length", max_length=maxLength, truncation=True)`).
    public func encode(_ text: String, maxLength: Int) throws -> [Int32] {
        let (prefix, body, suffix) = parts(text)
        let specials = prefix.count + suffix.count
        guard maxLength >= specials else {
            throw TokenizerError.invalidLength(name: "maxLength", value: maxLength, minimum: specials)
        }
        var ids = prefix
        ids.reserveCapacity(maxLength)
        ids += body.prefix(maxLength - specials)
        ids += suffix
        ids += repeatElement(padID, count: maxLength - ids.count)
        return ids
    }

    /// Template tokens before and after the text, and the text's own ids.
    private func parts(_ text: String) -> (prefix: [Int32], body: [Int32], suffix: [Int32]) {
        var body: [Int32] = []
        switch pipeline {
        case let .sentencePiece(normalizer):
            model.encode(normalizer.normalize(text), into: &body)
            return ([], body, [eosID])
        case let .tokenizers(normalizer, preTokenizer, added, prefix, suffix):
            var utf8: [UInt8] = []
            for segment in added.split(Array(text.unicodeScalars), normalize: { normalizer?.apply($0) ?? $0 }) {
                switch segment {
                case let .token(id):
                    body.append(id)
                case let .text(normalized):
                    for preToken in preTokenizer?.apply([normalized]) ?? [normalized] {
                        utf8.removeAll(keepingCapacity: true)
                        for scalar in preToken.scalars { utf8 += scalar.utf8 }
                        model.encode(utf8, into: &body)
                    }
                }
            }
            return (prefix, body, suffix)
        }
    }
}

/// The parts of a tokenizers `tokenizer.json` a Unigram tokenizer needs.
private struct TokenizerJSON {
    var model: UnigramModel
    var normalizer: HFNormalizer?
    var preTokenizer: HFPreTokenizer?
    var addedVocabulary: AddedVocabulary
    /// Special ids the post-processor puts before / after the sequence.
    var prefix: [Int32] = []
    var suffix: [Int32] = []
    var eosID: Int32?
    var padID: Int32?

    init(_ root: [String: Any], reading: T5Tokenizer.JSONReading) throws {
        func fail(_ reason: String) -> TokenizerError { .malformed(what: "tokenizer.json", reason: reason) }
        guard let modelObject = root["model"] as? [String: Any] else { throw fail("no \"model\"") }
        guard (modelObject["type"] as? String) == "Unigram" else {
            throw TokenizerError.unsupported(what: "model type \(modelObject["type"] ?? "nil") (only Unigram)")
        }
        guard let vocabEntries = modelObject["vocab"] as? [Any] else { throw fail("Unigram model has no \"vocab\"") }
        var vocabulary: [(String, Double)] = []
        vocabulary.reserveCapacity(vocabEntries.count)
        for (index, entry) in vocabEntries.enumerated() {
            guard let pair = entry as? [Any], pair.count == 2, let piece = pair[0] as? String,
                  let score = (pair[1] as? NSNumber)?.doubleValue else {
                throw fail("vocab entry \(index) is not [piece, score]")
            }
            vocabulary.append((piece, score))
        }
        let unkID = (modelObject["unk_id"] as? NSNumber).map { Int32(truncatingIfNeeded: $0.intValue) }
        model = try UnigramModel(vocabulary: vocabulary, unkID: unkID,
                                 byteFallback: reading == .asWritten && ((modelObject["byte_fallback"] as? Bool) ?? false))

        if let object = root["normalizer"], !(object is NSNull) { normalizer = try HFNormalizer(json: object) }
        if let object = root["pre_tokenizer"], !(object is NSNull) { preTokenizer = try HFPreTokenizer(json: object) }
        if reading == .transformers5 {
            normalizer = normalizer?.precompiledPart
            preTokenizer = .sequence([.whitespaceSplit, .metaspace(replacement: "\u{2581}", prependScheme: .always, split: true)])
        }

        var tokens: [AddedToken] = []
        for entry in (root["added_tokens"] as? [Any]) ?? [] {
            guard var token = try HFTokenizerConfig.token(entry, what: "added_tokens"),
                  let id = ((entry as? [String: Any])?["id"] as? NSNumber)?.int32Value else {
                throw fail("added_tokens entry without content or id")
            }
            token.id = id
            tokens.append(token)
        }
        let normalizer = self.normalizer
        addedVocabulary = AddedVocabulary(tokens: tokens, normalize: { normalizer?.apply($0) ?? $0 })

        var pieceIDs: [String: Int32] = [:]
        for (index, entry) in vocabulary.enumerated() { pieceIDs[entry.0] = Int32(index) }
        for token in tokens { pieceIDs[token.content] = token.id }
        if reading == .transformers5 {
            guard let eos = pieceIDs["</s>"] else { throw TokenizerError.missingToken("</s>") }
            suffix = [eos]
            eosID = eos
        } else if let processor = root["post_processor"], !(processor is NSNull) {
            try readTemplate(processor)
        }
        if let padding = root["padding"] as? [String: Any], let pad = (padding["pad_id"] as? NSNumber)?.int32Value {
            padID = pad
        } else {
            padID = pieceIDs["<pad>"]
        }
    }

    /// TemplateProcessing's `single` template: special tokens around `$A`.
    private mutating func readTemplate(_ json: Any) throws {
        guard let object = json as? [String: Any], (object["type"] as? String) == "TemplateProcessing" else {
            let type = ((json as? [String: Any])?["type"] as? String) ?? "?"
            throw TokenizerError.unsupported(what: "post_processor \(type) (only TemplateProcessing)")
        }
        guard let single = object["single"] as? [Any], let specials = object["special_tokens"] as? [String: Any] else {
            throw TokenizerError.malformed(what: "TemplateProcessing", reason: "missing single or special_tokens")
        }
        var seenSequence = false
        for item in single {
            guard let item = item as? [String: Any] else {
                throw TokenizerError.malformed(what: "TemplateProcessing", reason: "template item is not an object")
            }
            if item["Sequence"] != nil {
                seenSequence = true
                continue
            }
            guard let special = item["SpecialToken"] as? [String: Any], let name = special["id"] as? String,
                  let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [NSNumber] else {
                throw TokenizerError.malformed(what: "TemplateProcessing", reason: "special token not in special_tokens")
            }
            if seenSequence { suffix += ids.map(\.int32Value) } else { prefix += ids.map(\.int32Value) }
            if name == "</s>" { eosID = ids.last?.int32Value }
        }
    }
}
