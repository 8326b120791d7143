/// The CLIP pre-tokenizer regex, hand-compiled:
/// `<special>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`, applied with findall semantics
/// (text no alternative matches, i.e. whitespace, is skipped). Returns scalar ranges of `text`.
struct CLIPPreTokenizer: Sendable {
    /// Literal alternatives tried before the contractions: open_clip's `<start_of_text>` / `<end_of_text>`,
    /// transformers' `<|startoftext|>` / `<|endoftext|>`.
    let specials: [[Unicode.Scalar]]
    /// open_clip compiles the pattern with re.IGNORECASE, transformers does not.
    let ignoreCase: Bool
    /// transformers runs ByteLevel(use_regex=True) after the CLIP split, which re-splits each piece with
    /// GPT-2's pattern (only pieces mixing letters and punctuation, the special-token literals, change).
    let gpt2Resplit: Bool

    static let openCLIP = CLIPPreTokenizer(specials: ["<start_of_text>", "<end_of_text>"].map { Array($0.unicodeScalars) },
                                           ignoreCase: true, gpt2Resplit: false)
    static let transformers = CLIPPreTokenizer(
        specials: ["<|startoftext|>", "<|endoftext|>"].map { Array($0.unicodeScalars) },
        ignoreCase: false, gpt2Resplit: true)

    private static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    func split(_ text: [Unicode.Scalar]) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var i = 0
        while i < text.count {
            guard let end = matchEnd(text, at: i) else {
                i += 1
                continue
            }
            if gpt2Resplit {
                GPT2Split.split(text, i..<end, into: &pieces)
            } else {
                pieces.append(i..<end)
            }
            i = end
        }
        return pieces
    }

    private func matchEnd(_ text: [Unicode.Scalar], at i: Int) -> Int? {
        for special in specials where hasPrefix(text, at: i, special) { return i + special.count }
        if text[i] == "'" {
            for contraction in Self.contractions where hasPrefix(text, at: i + 1, contraction) {
                return i + 1 + contraction.count
            }
        }
        let c = CharacterClass(text[i])
        switch c {
        case .letter:
            var j = i + 1
            while j < text.count && CharacterClass(text[j]) == .letter { j += 1 }
            return j
        case .number:
            return i + 1
        case .other:
            var j = i + 1
            while j < text.count && CharacterClass(text[j]) == .other { j += 1 }
            return j
        case .space:
            return nil
        }
    }

    private func hasPrefix(_ text: [Unicode.Scalar], at start: Int, _ literal: [Unicode.Scalar]) -> Bool {
        guard start + literal.count <= text.count else { return false }
        for (offset, expected) in literal.enumerated() {
            let actual = text[start + offset]
            if actual == expected { continue }
            guard ignoreCase, Self.simpleCaseFold(actual) == Self.simpleCaseFold(expected) else { return false }
        }
        return true
    }

    /// Simple case folding as far as it matters for the ASCII literals above: ASCII upper-case, U+017F LONG S
    /// (folds to 's') and U+212A KELVIN SIGN (folds to 'k').
    private static func simpleCaseFold(_ s: Unicode.Scalar) -> Unicode.Scalar {
        switch s.value {
        case 0x41...0x5A: return Unicode.Scalar(s.value + 32)!
        case 0x17F: return "s"
        case 0x212A: return "k"
        default: return s
        }
    }
}

/// The classes the CLIP and GPT-2 patterns are written in: \p{L}, \p{N}, \s (White_Space) and the rest.
enum CharacterClass: Equatable {
    case letter, number, space, other

    @inline(__always)
    init(_ s: Unicode.Scalar) {
        let v = s.value
        if v < 0x80 {
            if (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A { self = .letter; return }
            if v >= 0x30 && v <= 0x39 { self = .number; return }
            if v == 0x20 || (v >= 0x09 && v <= 0x0D) { self = .space; return }
            self = .other
            return
        }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = s.properties.isWhitespace ? .space : .other
        }
    }
}

/// GPT-2's pattern as tokenizers' ByteLevel pre-tokenizer applies it:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, on a piece with no whitespace
/// (the CLIP split never yields any), where it reduces to contractions, \p{L}+, \p{N}+ and the rest.
enum GPT2Split {
    private static let contractions: [[Unicode.Scalar]] = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }

    static func split(_ text: [Unicode.Scalar], _ range: Range<Int>, into pieces: inout [Range<Int>]) {
        var i = range.lowerBound
        while i < range.upperBound {
            var end = i + 1
            if text[i] == "'", let contraction = contractions.first(where: { hasPrefix(text, range, at: i + 1, $0) }) {
                end = i + 1 + contraction.count
            } else {
                let c = CharacterClass(text[i])
                while end < range.upperBound && CharacterClass(text[end]) == c { end += 1 }
            }
            pieces.append(i..<end)
            i = end
        }
    }

    private static func hasPrefix(_ text: [Unicode.Scalar], _ range: Range<Int>, at start: Int,
                                  _ literal: [Unicode.Scalar]) -> Bool {
        guard start + literal.count <= range.upperBound else { return false }
        return literal.indices.allSatisfy { text[start + $0] == literal[$0] }
    }
}
