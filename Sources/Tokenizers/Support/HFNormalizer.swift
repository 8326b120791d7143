import Foundation

/// tokenizers normalisers (the ones sentencepiece-derived tokenizer.json files use, plus the Unicode forms).
indirect enum HFNormalizer: Sendable {
    case sequence([HFNormalizer])
    case precompiled(PrecompiledCharsMap)
    case replace(TokenizerPattern, [Unicode.Scalar])
    /// Replace(Regex("\\s+"), " "), done natively (transformers' CLIP normaliser uses it).
    case collapseWhitespace
    case strip(left: Bool, right: Bool)
    case prepend([Unicode.Scalar])
    case lowercase
    case nfc, nfd, nfkc, nfkd

    init(json: Any) throws {
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError.malformed(what: "tokenizer.json normalizer", reason: "no \"type\"")
        }
        func string(_ key: String) throws -> String {
            guard let value = object[key] as? String else {
                throw TokenizerError.malformed(what: "\(type) normalizer", reason: "missing \"\(key)\"")
            }
            return value
        }
        switch type {
        case "Sequence":
            guard let items = object["normalizers"] as? [Any] else {
                throw TokenizerError.malformed(what: "Sequence normalizer", reason: "missing \"normalizers\"")
            }
            self = .sequence(try items.map(HFNormalizer.init(json:)))
        case "Precompiled":
            // tokenizers skips a Precompiled normaliser whose charsmap is empty (null in some files).
            let encoded = (object["precompiled_charsmap"] as? String) ?? ""
            guard let blob = Data(base64Encoded: encoded) else {
                throw TokenizerError.malformed(what: "Precompiled normalizer", reason: "charsmap is not base64")
            }
            self = blob.isEmpty ? .sequence([]) : .precompiled(try PrecompiledCharsMap(blob))
        case "Replace":
            guard let pattern = object["pattern"] else {
                throw TokenizerError.malformed(what: "Replace normalizer", reason: "missing \"pattern\"")
            }
            let content = try string("content")
            if let regex = (pattern as? [String: Any])?["Regex"] as? String, regex == "\\s+", content == " " {
                self = .collapseWhitespace
            } else {
                self = .replace(try TokenizerPattern(json: pattern, what: "Replace normalizer"), Array(content.unicodeScalars))
            }
        case "Strip":
            self = .strip(left: (object["strip_left"] as? Bool) ?? false, right: (object["strip_right"] as? Bool) ?? false)
        case "Prepend":
            self = .prepend(Array(try string("prepend").unicodeScalars))
        case "Lowercase": self = .lowercase
        case "NFC": self = .nfc
        case "NFD": self = .nfd
        case "NFKC": self = .nfkc
        case "NFKD": self = .nfkd
        default:
            throw TokenizerError.unsupported(what: "normalizer \(type)")
        }
    }

    /// The Precompiled normaliser in this one (the first, inside a Sequence), if any.
    var precompiledPart: HFNormalizer? {
        switch self {
        case .precompiled: return self
        case let .sequence(items): return items.lazy.compactMap(\.precompiledPart).first
        default: return nil
        }
    }

    /// Applies the normaliser, keeping each character's origin: a replaced unit's characters take the origin of
    /// its first character, Replace content the origin of the match's last character, Prepend the origin of
    /// the first character (the alignments tokenizers computes).
    func apply(_ text: NormalizedText) -> NormalizedText {
        switch self {
        case let .sequence(items):
            return items.reduce(text) { $1.apply($0) }
        case let .precompiled(charsMap):
            return Self.applyPrecompiled(charsMap, text)
        case let .replace(pattern, content):
            let matches = pattern.matches(in: text.scalars)
            guard !matches.isEmpty else { return text }
            var out = NormalizedText()
            var position = 0
            for match in matches {
                out.append(text[position..<match.lowerBound])
                out.append(contentsOf: content, origin: text.origins[match.upperBound - 1])
                position = match.upperBound
            }
            out.append(text[position..<text.count])
            return out
        case .collapseWhitespace:
            return Self.collapseWhitespace(text)
        case let .strip(left, right):
            var start = 0
            var end = text.count
            if left { while start < end && text.scalars[start].isWhiteSpace { start += 1 } }
            if right { while end > start && text.scalars[end - 1].isWhiteSpace { end -= 1 } }
            return text[start..<end]
        case let .prepend(prefix):
            guard let origin = text.origins.first else { return text }
            var out = NormalizedText()
            out.append(contentsOf: prefix, origin: origin)
            out.append(text)
            return out
        case .lowercase:
            return Self.lowercase(text)
        case .nfc: return Self.unicodeForm(text) { $0.precomposedStringWithCanonicalMapping }
        case .nfd: return Self.unicodeForm(text) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: return Self.unicodeForm(text) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: return Self.unicodeForm(text) { $0.decomposedStringWithCompatibilityMapping }
        }
    }

    /// `Replace(Regex("\s+"), " ")` without a regex engine: every run of White_Space becomes one space.
    static func collapseWhitespace(_ text: NormalizedText) -> NormalizedText {
        guard text.scalars.contains(where: { $0.isWhiteSpace }) else { return text }
        var out = NormalizedText()
        var i = 0
        while i < text.count {
            guard text.scalars[i].isWhiteSpace else {
                out.append(text.scalars[i], origin: text.origins[i])
                i += 1
                continue
            }
            var end = i + 1
            while end < text.count && text.scalars[end].isWhiteSpace { end += 1 }
            out.append(" ", origin: text.origins[end - 1])
            i = end
        }
        return out
    }

    /// tokenizers' Lowercase: each character's full lower-case mapping, without context (no final sigma).
    static func lowercase(_ text: NormalizedText) -> NormalizedText {
        guard text.scalars.contains(where: { $0.value >= 0x80 || ($0.value >= 0x41 && $0.value <= 0x5A) }) else {
            return text
        }
        var out = NormalizedText()
        out.scalars.reserveCapacity(text.count)
        out.origins.reserveCapacity(text.count)
        for (scalar, origin) in zip(text.scalars, text.origins) {
            if scalar.value < 0x80 {
                out.append(scalar.value >= 0x41 && scalar.value <= 0x5A ? Unicode.Scalar(scalar.value + 32)! : scalar,
                           origin: origin)
            } else if scalar.properties.changesWhenLowercased {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars, origin: origin)
            } else {
                out.append(scalar, origin: origin)
            }
        }
        return out
    }

    /// A Unicode normalisation form, applied per extended grapheme cluster (compositions and reorderings never
    /// cross one) so each output character takes the origin of its cluster's first character.
    private static func unicodeForm(_ text: NormalizedText, _ form: (String) -> String) -> NormalizedText {
        // Below U+00A0 every form is the identity (no decompositions, no combining marks).
        guard text.scalars.contains(where: { $0.value >= 0xA0 }) else { return text }
        let string = String(scalars: text.scalars)
        if form(string).unicodeScalars.elementsEqual(text.scalars) { return text }
        var out = NormalizedText()
        var index = 0
        for grapheme in string {
            let count = grapheme.unicodeScalars.count
            out.append(contentsOf: form(String(grapheme)).unicodeScalars, origin: text.origins[index])
            index += count
        }
        return out
    }

    /// tokenizers' Precompiled normaliser: per extended grapheme cluster shorter than 6 UTF-8 bytes, the first
    /// trie match replaces the whole cluster; otherwise (or without a match) each character is looked up alone.
    ///
    /// Alignments as tokenizers 0.23 leaves them: characters keep their source's origin, except that when the
    /// text starts with characters the charsmap deletes (ESC, ...), the kept characters' origins lag behind by
    /// that many characters, so the first kept one still claims offset 0 (measured; see T5TokenizerTests).
    private static func applyPrecompiled(_ charsMap: PrecompiledCharsMap, _ text: NormalizedText) -> NormalizedText {
        if let fast = applyPrecompiledASCII(charsMap, text) { return fast }
        var out = NormalizedText()
        out.scalars.reserveCapacity(text.count)
        out.origins.reserveCapacity(text.count)
        var lagging: [Int] = []  // origins of deleted leading characters, then the lag queue
        func emit<S: Sequence<Unicode.Scalar>>(_ scalars: S, origin: Int) {
            for scalar in scalars {
                if lagging.isEmpty {
                    out.append(scalar, origin: origin)
                } else {
                    out.append(scalar, origin: lagging.removeFirst())
                    lagging.append(origin)
                }
            }
        }
        func replacementScalars(_ bytes: ArraySlice<UInt8>) -> String.UnicodeScalarView {
            String(decoding: bytes, as: UTF8.self).unicodeScalars
        }
        var bytes: [UInt8] = []
        var index = 0
        for grapheme in String(scalars: text.scalars) {
            let scalars = grapheme.unicodeScalars
            defer { index += scalars.count }
            bytes.removeAll(keepingCapacity: true)
            bytes += grapheme.utf8
            if bytes.count < 6, let replacement = charsMap.firstMatch(bytes) {
                if replacement.isEmpty && out.isEmpty { lagging += text.origins[index..<(index + scalars.count)] }
                emit(replacementScalars(replacement), origin: text.origins[index])
                continue
            }
            for (offset, scalar) in scalars.enumerated() {
                let origin = text.origins[index + offset]
                if let replacement = charsMap.firstMatch(scalar.utf8) {
                    if replacement.isEmpty && out.isEmpty { lagging.append(origin) }
                    emit(replacementScalars(replacement), origin: origin)
                } else {
                    emit(CollectionOfOne(scalar), origin: origin)
                }
            }
        }
        return out
    }
}

extension HFNormalizer {
    /// The Precompiled normaliser on ASCII text without CR: every character is then its own grapheme cluster,
    /// so each is looked up alone (through a per-byte table). nil for other text.
    fileprivate static func applyPrecompiledASCII(_ charsMap: PrecompiledCharsMap, _ text: NormalizedText) -> NormalizedText? {
        guard !text.scalars.contains(where: { $0.value >= 0x80 || $0 == "\r" }) else { return nil }
        let table = charsMap.asciiReplacements
        guard text.scalars.contains(where: { table[Int($0.value)] != nil }) else { return text }
        var out = NormalizedText()
        var lagging: [Int] = []  // as in applyPrecompiled
        for (scalar, origin) in zip(text.scalars, text.origins) {
            guard let replacement = table[Int(scalar.value)] else {
                if lagging.isEmpty {
                    out.append(scalar, origin: origin)
                } else {
                    out.append(scalar, origin: lagging.removeFirst())
                    lagging.append(origin)
                }
                continue
            }
            if replacement.isEmpty && out.isEmpty { lagging.append(origin) }
            for replaced in replacement {
                if lagging.isEmpty {
                    out.append(replaced, origin: origin)
                } else {
                    out.append(replaced, origin: lagging.removeFirst())
                    lagging.append(origin)
                }
            }
        }
        return out
    }
}
