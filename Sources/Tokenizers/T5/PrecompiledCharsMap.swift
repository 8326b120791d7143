/// sentencepiece's compiled normalisation rules (`NormalizerSpec.precompiled_charsmap`, also the base64
/// `precompiled_charsmap` of a tokenizer.json Precompiled normaliser): a darts-clone double-array trie over
/// UTF-8 input whose values are offsets into a block of NUL-terminated replacement strings.
///
/// Layout: `uint32 trie_size (LE) | trie_size bytes of 32-bit units | replacement strings`.
struct PrecompiledCharsMap: Sendable {
    private let units: [UInt32]
    private let replacements: [UInt8]
    /// `firstMatch` of each single ASCII byte, decoded (nil: no rule).
    private(set) var asciiReplacements: [[Unicode.Scalar]?] = []

    init(_ blob: some Collection<UInt8>) throws {
        let blob = Array(blob)
        func fail(_ reason: String) -> TokenizerError { .malformed(what: "precompiled_charsmap", reason: reason) }
        guard blob.count > 4 else { throw fail("\(blob.count) bytes is too short") }
        let trieSize = Int(readUInt32LE(blob, 0))
        guard trieSize <= blob.count - 4 else { throw fail("trie size \(trieSize) exceeds the data") }
        guard trieSize % 4 == 0, trieSize > 0 else { throw fail("trie size \(trieSize) is not a positive multiple of 4") }
        units = stride(from: 4, to: 4 + trieSize, by: 4).map { readUInt32LE(blob, $0) }
        replacements = Array(blob[(4 + trieSize)...])
        guard String(validating: replacements, as: UTF8.self) != nil else { throw fail("replacements are not UTF-8") }
        asciiReplacements = (0..<128).map { byte in
            firstMatch(CollectionOfOne(UInt8(byte))).map { Array(String(decoding: $0, as: UTF8.self).unicodeScalars) }
        }
    }

    // darts-clone unit fields
    @inline(__always) private static func hasLeaf(_ unit: UInt32) -> Bool { (unit >> 8) & 1 == 1 }
    @inline(__always) private static func value(_ unit: UInt32) -> Int { Int(unit & 0x7FFF_FFFF) }
    @inline(__always) private static func label(_ unit: UInt32) -> UInt32 { unit & 0x8000_00FF }
    @inline(__always) private static func offset(_ unit: UInt32) -> Int {
        Int((unit >> 10) << ((unit & (1 << 9)) >> 6))
    }

    /// darts-clone `commonPrefixSearch` over `key`: calls `visit(length, value)` for each prefix that is a key,
    /// shortest first; stops early when `visit` returns false.
    private func commonPrefixSearch<Key: Collection<UInt8>>(_ key: Key, _ visit: (Int, Int) -> Bool) {
        guard !units.isEmpty else { return }
        var nodePosition = Self.offset(units[0])
        var length = 0
        for byte in key {
            length += 1
            nodePosition ^= Int(byte)
            guard nodePosition < units.count else { return }
            let unit = units[nodePosition]
            guard Self.label(unit) == UInt32(byte) else { return }
            nodePosition ^= Self.offset(unit)
            guard nodePosition < units.count else { return }
            if Self.hasLeaf(unit) {
                if !visit(length, Self.value(units[nodePosition])) { return }
            }
        }
    }

    /// The replacement string starting at `offset` (up to its NUL); nil if the offset is outside the block.
    private func replacement(at offset: Int) -> ArraySlice<UInt8>? {
        guard offset < replacements.count else { return nil }
        let end = replacements[offset...].firstIndex(of: 0) ?? replacements.count
        return replacements[offset..<end]
    }

    /// sentencepiece's `Normalizer::NormalizePrefix` rule: the longest key that prefixes `text`.
    func longestMatch<Key: Collection<UInt8>>(_ text: Key) -> (length: Int, replacement: ArraySlice<UInt8>)? {
        var best: (length: Int, value: Int)?
        commonPrefixSearch(text) { length, value in
            best = (length, value)
            return true
        }
        guard let best, let replacement = replacement(at: best.value) else { return nil }
        return (best.length, replacement)
    }

    /// tokenizers' `Precompiled::transform`: the replacement of the *first* (shortest) key prefixing `chunk`,
    /// which then stands for the whole chunk. The search stops at a NUL byte.
    func firstMatch<Key: Collection<UInt8>>(_ chunk: Key) -> ArraySlice<UInt8>? {
        var first: Int?
        commonPrefixSearch(chunk.prefix { $0 != 0 }) { _, value in
            first = value
            return false
        }
        return first.flatMap { replacement(at: $0) }
    }
}
