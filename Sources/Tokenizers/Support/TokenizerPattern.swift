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
