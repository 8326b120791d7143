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
