import Foundation

/// A regular expression from a tokenizer.json (tokenizers compiles them with Oniguruma; the patterns these files
/// use — `" {2,}"`, `"\A +| +\z"`, `"\A▁"`, `"\s+"` — mean the same in ICU).
struct TokenizerRegex: @unchecked Sendable {  // NSRegularExpression is immutable and documented thread-safe
    let expression: NSRegularExpression

    init(_ pattern: String) throws {
        do {
            expression = try NSRegularExpression(pattern: pattern)
        } catch {
            throw TokenizerError.malformed(what: "regex \(pattern.debugDescription)", reason: "\(error)")
        }
    }

    /// Non-overlapping matches, left to right, as scalar offsets into `text`. Empty matches are skipped.
    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        let string = String(scalars: text)
        let results = expression.matches(in: string, range: NSRange(string.startIndex..., in: string))
        guard !results.isEmpty else { return [] }
        // NSRange counts UTF-16 units; map them back to scalar offsets.
        var scalarOffsetOfUTF16 = [Int](repeating: 0, count: string.utf16.count + 1)
        var utf16Position = 0
        for (scalarIndex, scalar) in text.enumerated() {
            let width = scalar.value > 0xFFFF ? 2 : 1
            for k in 0..<width { scalarOffsetOfUTF16[utf16Position + k] = scalarIndex }
            utf16Position += width
        }
        scalarOffsetOfUTF16[utf16Position] = text.count
        return results.compactMap { result in
            guard result.range.location != NSNotFound, result.range.length > 0 else { return nil }
            return scalarOffsetOfUTF16[result.range.location]..<scalarOffsetOfUTF16[NSMaxRange(result.range)]
        }
    }
}

/// A pattern of a Replace normaliser or Split pre-tokenizer: `{"String": s}` or `{"Regex": r}`.
enum TokenizerPattern: Sendable {
    case literal([Unicode.Scalar])
    case regex(TokenizerRegex)

    init(json: Any, what: String) throws {
        if let object = json as? [String: Any], let literal = object["String"] as? String {
            self = .literal(Array(literal.unicodeScalars))
        } else if let object = json as? [String: Any], let regex = object["Regex"] as? String {
            self = .regex(try TokenizerRegex(regex))
        } else {
            throw TokenizerError.malformed(what: what, reason: "pattern is neither {\"String\"} nor {\"Regex\"}")
        }
    }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        switch self {
        case let .regex(regex):
            return regex.matches(in: text)
        case let .literal(literal):
            guard !literal.isEmpty else { return [] }
            var found: [Range<Int>] = []
            var i = 0
            while i + literal.count <= text.count {
                if text[i] == literal[0] && text[i..<(i + literal.count)].elementsEqual(literal) {
                    found.append(i..<(i + literal.count))
                    i += literal.count
                } else {
                    i += 1
                }
            }
            return found
        }
    }
}

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

/// tokenizers pre-tokenizers used with unigram models.
indirect enum HFPreTokenizer: Sendable {
    enum PrependScheme: Sendable { case always, first, never }
    enum SplitBehavior: String, Sendable {
        case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
    }

    case sequence([HFPreTokenizer])
    case whitespaceSplit
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    case split(pattern: TokenizerPattern, behavior: SplitBehavior, invert: Bool)

    init(json: Any) throws {
        guard let object = json as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError.malformed(what: "tokenizer.json pre_tokenizer", reason: "no \"type\"")
        }
        switch type {
        case "Sequence":
            guard let items = object["pretokenizers"] as? [Any] else {
                throw TokenizerError.malformed(what: "Sequence pre_tokenizer", reason: "missing \"pretokenizers\"")
            }
            self = .sequence(try items.map(HFPreTokenizer.init(json:)))
        case "WhitespaceSplit":
            self = .whitespaceSplit
        case "Metaspace":
            let replacementString = (object["replacement"] as? String) ?? "\u{2581}"
            guard replacementString.unicodeScalars.count == 1, let replacement = replacementString.unicodeScalars.first else {
                throw TokenizerError.malformed(what: "Metaspace pre_tokenizer", reason: "replacement must be one character")
            }
            let scheme: PrependScheme
            switch object["prepend_scheme"] as? String {
            case "always": scheme = .always
            case "first": scheme = .first
            case "never": scheme = .never
            case nil: scheme = ((object["add_prefix_space"] as? Bool) ?? true) ? .always : .never  // older files
            case let other?: throw TokenizerError.unsupported(what: "Metaspace prepend_scheme \(other)")
            }
            self = .metaspace(replacement: replacement, prependScheme: scheme, split: (object["split"] as? Bool) ?? true)
        case "Split":
            guard let pattern = object["pattern"], let behaviorName = object["behavior"] as? String else {
                throw TokenizerError.malformed(what: "Split pre_tokenizer", reason: "missing pattern or behavior")
            }
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerError.unsupported(what: "Split behavior \(behaviorName)")
            }
            self = .split(pattern: try TokenizerPattern(json: pattern, what: "Split pre_tokenizer"), behavior: behavior,
                          invert: (object["invert"] as? Bool) ?? false)
        default:
            throw TokenizerError.unsupported(what: "pre_tokenizer \(type)")
        }
    }

    func apply(_ pieces: [NormalizedText]) -> [NormalizedText] {
        switch self {
        case let .sequence(items):
            return items.reduce(pieces) { $1.apply($0) }
        case .whitespaceSplit:
            return pieces.flatMap { piece in
                Self.split(piece, matches: Self.runs(of: piece.scalars) { $0.isWhiteSpace }, behavior: .removed)
            }
        case let .metaspace(replacement, prependScheme, split):
            return pieces.flatMap { piece -> [NormalizedText] in
                var piece = piece
                piece.scalars = piece.scalars.map { $0 == " " ? replacement : $0 }
                let prepend: Bool
                switch prependScheme {
                case .always: prepend = true
                case .first: prepend = piece.startsInput  // tokenizers: offsets_original().0 == 0
                case .never: prepend = false
                }
                if prepend && piece.scalars.first != replacement, let origin = piece.origins.first {
                    piece.scalars.insert(replacement, at: 0)
                    piece.origins.insert(origin, at: 0)
                }
                guard split else { return [piece] }
                let matches = piece.scalars.indices.filter { piece.scalars[$0] == replacement }.map { $0..<($0 + 1) }
                return Self.split(piece, matches: matches, behavior: .mergedWithNext)
            }
        case let .split(pattern, behavior, invert):
            return pieces.flatMap { piece in
                Self.split(piece, matches: pattern.matches(in: piece.scalars), behavior: behavior, invert: invert)
            }
        }
    }

    /// Maximal runs of scalars satisfying `predicate`.
    private static func runs(of text: [Unicode.Scalar], where predicate: (Unicode.Scalar) -> Bool) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var i = 0
        while i < text.count {
            guard predicate(text[i]) else {
                i += 1
                continue
            }
            let start = i
            while i < text.count && predicate(text[i]) { i += 1 }
            runs.append(start..<i)
        }
        return runs
    }

    /// `NormalizedString::split` with tokenizers' SplitDelimiterBehavior, then dropping empty pieces.
    private static func split(_ piece: NormalizedText, matches: [Range<Int>], behavior: SplitBehavior,
                              invert: Bool = false) -> [NormalizedText] {
        // The whole text as alternating (range, isMatch) parts.
        var parts: [(range: Range<Int>, isMatch: Bool)] = []
        var position = 0
        for match in matches {
            if position < match.lowerBound { parts.append((position..<match.lowerBound, invert)) }
            parts.append((match, !invert))
            position = match.upperBound
        }
        if position < piece.count { parts.append((position..<piece.count, invert)) }

        var kept: [Range<Int>] = []
        switch behavior {
        case .removed:
            kept = parts.filter { !$0.isMatch }.map(\.range)
        case .isolated:
            kept = parts.map(\.range)
        case .contiguous:
            var previousMatch: Bool?
            for part in parts {
                if part.isMatch == previousMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<part.range.upperBound
                } else {
                    kept.append(part.range)
                }
                previousMatch = part.isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for part in parts {
                if part.isMatch && !previousMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<part.range.upperBound
                } else {
                    kept.append(part.range)
                }
                previousMatch = part.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for part in parts.reversed() {
                if part.isMatch && !previousMatch, let last = kept.last {
                    kept[kept.count - 1] = part.range.lowerBound..<last.upperBound
                } else {
                    kept.append(part.range)
                }
                previousMatch = part.isMatch
            }
            kept.reverse()
        }
        return kept.filter { !$0.isEmpty }.map { piece[$0] }
    }
}
