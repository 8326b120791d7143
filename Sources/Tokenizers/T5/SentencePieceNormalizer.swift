/// sentencepiece's `normalizer::Normalizer::Normalize` (normalizer.cc): rewrite the longest charsmap match at each
/// position (user-defined pieces pass through untouched), drop leading / repeated / trailing spaces
/// (`remove_extra_whitespaces`), write spaces as U+2581 (`escape_whitespaces`), and prepend one U+2581
/// (`add_dummy_prefix`; appended instead under `treat_whitespace_as_suffix`).
struct SentencePieceNormalizer: Sendable {
    private let charsMap: PrecompiledCharsMap?
    private let userDefinedPieces: PieceTrie?
    private let addDummyPrefix: Bool
    private let removeExtraWhitespaces: Bool
    private let escapeWhitespaces: Bool
    private let treatWhitespaceAsSuffix: Bool

    private static let spaceSymbol: [UInt8] = [0xE2, 0x96, 0x81]  // U+2581
    private static let replacementCharacter: [UInt8] = [0xEF, 0xBF, 0xBD]

    init(model: SentencePieceModel) throws {
        charsMap = model.precompiledCharsMap.isEmpty ? nil : try PrecompiledCharsMap(model.precompiledCharsMap)
        let userDefined = model.pieces.filter { $0.type == .userDefined }
        if userDefined.isEmpty {
            userDefinedPieces = nil
        } else {
            var trie = PieceTrie()
            for piece in userDefined { trie.insert(piece.piece.utf8, id: 0) }
            userDefinedPieces = trie
        }
        addDummyPrefix = model.addDummyPrefix
        removeExtraWhitespaces = model.removeExtraWhitespaces
        escapeWhitespaces = model.escapeWhitespaces
        treatWhitespaceAsSuffix = model.treatWhitespaceAsSuffix
    }

    /// `NormalizePrefix`: the replacement for the start of `input[position...]` and how many bytes it consumes.
    private func normalizePrefix(_ input: UnsafeBufferPointer<UInt8>, _ position: Int) -> (ArraySlice<UInt8>, Int) {
        let rest = UnsafeBufferPointer(rebasing: input[position...])
        if let userDefinedPieces {
            var longest = 0
            userDefinedPieces.forEachPrefix(of: rest, from: 0) { length, _ in longest = max(longest, length) }
            if longest > 0 { return (ArraySlice(rest[0..<longest]), longest) }
        }
        if let charsMap, let match = charsMap.longestMatch(rest) {
            return (match.replacement, match.length)
        }
        guard let length = Self.validUTF8Length(rest) else { return (ArraySlice(Self.replacementCharacter), 1) }
        return (ArraySlice(rest[0..<length]), length)
    }

    /// Length of the UTF-8 sequence at the start of `bytes`, nil if it is malformed.
    private static func validUTF8Length(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let lead = bytes[0]
        let length: Int
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return nil
        }
        guard bytes.count >= length else { return nil }
        return String(validating: bytes[0..<length], as: UTF8.self) == nil ? nil : length
    }

    func normalize(_ text: String) -> [UInt8] {
        let input = Array(text.utf8)
        return input.withUnsafeBufferPointer { normalize($0) }
    }

    private func normalize(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var position = 0
        if removeExtraWhitespaces {  // heading spaces
            while position < input.count {
                let (replacement, consumed) = normalizePrefix(input, position)
                guard replacement.elementsEqual([0x20]) else { break }
                position += consumed
            }
        }
        guard position < input.count else { return [] }

        var out: [UInt8] = []
        out.reserveCapacity((input.count - position) * 3)
        if !treatWhitespaceAsSuffix && addDummyPrefix { appendSpace(to: &out) }
        var isPreviousSpace = removeExtraWhitespaces
        while position < input.count {
            let (replacement, consumed) = normalizePrefix(input, position)
            var piece = replacement[...]
            while isPreviousSpace && piece.first == 0x20 { piece = piece.dropFirst() }
            if !piece.isEmpty {
                for byte in piece {
                    if escapeWhitespaces && byte == 0x20 { out += Self.spaceSymbol } else { out.append(byte) }
                }
                isPreviousSpace = piece.last == 0x20
            }
            position += consumed
            if !removeExtraWhitespaces { isPreviousSpace = false }
        }
        if removeExtraWhitespaces {  // trailing spaces
            let space = escapeWhitespaces ? Self.spaceSymbol : [0x20]
            while out.count >= space.count && out.suffix(space.count).elementsEqual(space) {
                out.removeLast(space.count)
            }
        }
        if treatWhitespaceAsSuffix && addDummyPrefix { appendSpace(to: &out) }
        return out
    }

    private func appendSpace(to out: inout [UInt8]) {
        if escapeWhitespaces { out += Self.spaceSymbol } else { out.append(0x20) }
    }
}
