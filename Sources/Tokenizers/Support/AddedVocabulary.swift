/// A token of tokenizers' AddedVocabulary (special tokens such as `</s>` or `<|endoftext|>`): found in the text
/// before the model sees it and emitted as its id whole.
struct AddedToken: Sendable, Equatable {
    var content: String
    var id: Int32
    /// Matched on the text after normalisation (its pattern is then the normalised content) instead of the raw text.
    var normalized = false
    /// The match swallows whitespace before / after it.
    var lstrip = false
    var rstrip = false
    /// Only matched when not preceded or followed by a word character.
    var singleWord = false
}

/// A stretch of the input after added tokens are split out.
enum AddedTokenSegment: Equatable {
    case token(Int32)
    /// Normalised text for the model.
    case text(NormalizedText)
}

/// tokenizers' `AddedVocabulary::extract_and_normalize`: split the raw text on the non-normalised added tokens,
/// normalise each remaining piece, split those on the normalised added tokens.
struct AddedVocabulary: Sendable {
    private let raw: TokenMatcher
    private let normalized: TokenMatcher

    init(tokens: [AddedToken], normalize: (NormalizedText) -> NormalizedText) {
        raw = TokenMatcher(tokens.filter { !$0.normalized }.map { (Array($0.content.unicodeScalars), $0) })
        normalized = TokenMatcher(tokens.filter(\.normalized).map {
            (normalize(NormalizedText(original: $0.content.unicodeScalars)).scalars, $0)
        })
    }

    var isEmpty: Bool { raw.isEmpty && normalized.isEmpty }

    func split(_ text: [Unicode.Scalar], normalize: (NormalizedText) -> NormalizedText) -> [AddedTokenSegment] {
        var segments: [AddedTokenSegment] = []
        for piece in raw.split(NormalizedText(original: text)) {
            guard case let .text(rawText) = piece else {
                segments.append(piece)
                continue
            }
            for inner in normalized.split(normalize(rawText)) {
                if case let .text(t) = inner, t.isEmpty { continue }  // tokenizers drops empty splits
                segments.append(inner)
            }
        }
        return segments
    }
}

/// Leftmost-longest, non-overlapping matching of added-token patterns (tokenizers uses aho-corasick
/// LeftmostLongest), then the single_word / lstrip / rstrip rules of `AddedVocabulary::find_matches`.
private struct TokenMatcher: Sendable {
    private let patterns: [(pattern: [Unicode.Scalar], token: AddedToken)]
    /// First scalar -> indices into `patterns`, longest pattern first.
    private let byFirstScalar: [Unicode.Scalar: [Int]]

    init(_ patterns: [([Unicode.Scalar], AddedToken)]) {
        let usable = patterns.filter { !$0.0.isEmpty }
        self.patterns = usable.map { (pattern: $0.0, token: $0.1) }
        var index: [Unicode.Scalar: [Int]] = [:]
        for (i, entry) in usable.enumerated() { index[entry.0[0], default: []].append(i) }
        byFirstScalar = index.mapValues { $0.sorted { usable[$0].0.count > usable[$1].0.count } }
    }

    var isEmpty: Bool { patterns.isEmpty }

    func split(_ input: NormalizedText) -> [AddedTokenSegment] {
        if patterns.isEmpty { return [.text(input)] }
        let text = input.scalars
        var segments: [AddedTokenSegment] = []
        var segmentStart = text.startIndex
        for match in matches(in: text[...]) {
            let token = patterns[match.pattern].token
            var start = match.range.lowerBound
            var end = match.range.upperBound
            if token.singleWord {
                let wordBefore = start > text.startIndex && isWordCharacter(text[start - 1])
                let wordAfter = end < text.endIndex && isWordCharacter(text[end])
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                var s = start
                while s > text.startIndex && text[s - 1].isWhiteSpace { s -= 1 }
                start = max(s, segmentStart)
            }
            if token.rstrip {
                while end < text.endIndex && text[end].isWhiteSpace { end += 1 }
            }
            if segmentStart < start { segments.append(.text(input[segmentStart..<start])) }
            segments.append(.token(token.id))
            segmentStart = end
        }
        if segmentStart < text.endIndex { segments.append(.text(input[segmentStart..<text.endIndex])) }
        return segments
    }

    private func matches(in text: ArraySlice<Unicode.Scalar>) -> [(range: Range<Int>, pattern: Int)] {
        var found: [(range: Range<Int>, pattern: Int)] = []
        var i = text.startIndex
        while i < text.endIndex {
            if let candidates = byFirstScalar[text[i]],
               let hit = candidates.first(where: { text[i...].starts(with: patterns[$0].pattern) }) {
                let end = i + patterns[hit].pattern.count
                found.append((i..<end, hit))
                i = end
            } else {
                i += 1
            }
        }
        return found
    }

    /// Rust regex `\w`: Alphabetic, marks, decimal digits, connector punctuation, join controls.
    private func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
