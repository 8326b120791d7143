import Foundation

/// GPT-2's reversible byte -> character table (`bytes_to_unicode`): printable Latin-1 bytes map to themselves,
/// the other 68 to U+0100 onwards. `characters` is in the order CLIP's vocabulary lists them.
enum ByteLevelAlphabet {
    static let bytesInVocabularyOrder: [UInt8] = {
        var bytes = Array(UInt8(ascii: "!")...UInt8(ascii: "~")) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        bytes += (0...255).map(UInt8.init).filter { !bytes.contains($0) }
        return bytes
    }()

    /// The character standing for byte `b` (index = byte value).
    static let characterForByte: [String] = {
        var table = [String](repeating: "", count: 256)
        var next: UInt32 = 256
        for b in 0...255 {
            let isPrintable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if isPrintable {
                table[b] = String(Unicode.Scalar(UInt32(b))!)
            } else {
                table[b] = String(Unicode.Scalar(next)!)
                next += 1
            }
        }
        return table
    }()
}

/// A byte-level BPE vocabulary with CLIP's end-of-word marking: a word is split into its UTF-8 bytes, the last
/// one carrying "</w>", and merges are applied lowest rank first, each merge replacing every occurrence of the
/// pair left to right (the loop in open_clip's `SimpleTokenizer.bpe`, which transformers' BPE matches).
///
/// Symbols are vocabulary ids throughout, so a merge is one dictionary lookup on a pair of integers.
struct ByteLevelBPE: Sendable {
    /// Vocabulary id of each byte's character, without and with "</w>".
    let byteID: [Int32]
    let byteEndID: [Int32]
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    private let merges: [UInt64: UInt64]

    /// - Parameters:
    ///   - vocabulary: token string -> id.
    ///   - mergePairs: merges in rank order, as the two token strings.
    init(vocabulary: [String: Int], mergePairs: [(String, String)]) throws {
        func id(_ token: String) throws -> Int32 {
            guard let id = vocabulary[token] else { throw TokenizerError.missingToken(token) }
            guard id >= 0, id <= Int(Int32.max) else {
                throw TokenizerError.malformed(what: "vocabulary", reason: "id \(id) of \(token.debugDescription) out of range")
            }
            return Int32(id)
        }
        byteID = try ByteLevelAlphabet.characterForByte.map { try id($0) }
        byteEndID = try ByteLevelAlphabet.characterForByte.map { try id($0 + "</w>") }
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(mergePairs.count)
        for (rank, (left, right)) in mergePairs.enumerated() {
            let key = UInt64(UInt32(try id(left))) << 32 | UInt64(UInt32(try id(right)))
            merges[key] = UInt64(rank) << 32 | UInt64(UInt32(try id(left + right)))
        }
        self.merges = merges
    }

    /// BPE of one pre-token given as UTF-8 bytes.
    func encode<Bytes: Collection<UInt8>>(word bytes: Bytes) -> [Int32] {
        guard !bytes.isEmpty else { return [] }
        var symbols: [Int32] = []
        symbols.reserveCapacity(bytes.count)
        for byte in bytes.dropLast() { symbols.append(byteID[Int(byte)]) }
        symbols.append(byteEndID[Int(bytes[bytes.index(bytes.endIndex, offsetBy: -1)])])

        while symbols.count > 1 {
            var bestRank = UInt64.max
            var best: (left: Int32, right: Int32, merged: Int32) = (0, 0, 0)
            for i in 0..<(symbols.count - 1) {
                if let entry = merges[pairKey(symbols[i], symbols[i + 1])], entry >> 32 < bestRank {
                    bestRank = entry >> 32
                    best = (symbols[i], symbols[i + 1], Int32(truncatingIfNeeded: entry & 0xFFFF_FFFF))
                }
            }
            if bestRank == UInt64.max { break }
            var merged: [Int32] = []
            merged.reserveCapacity(symbols.count - 1)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == best.left && symbols[i + 1] == best.right {
                    merged.append(best.merged)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        return symbols
    }

    @inline(__always)
    private func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }
}

/// A bounded, thread-safe memo of word -> ids (tokenizers keep one because most words of a prompt repeat).
final class WordCache: @unchecked Sendable {
    private var entries: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()
    private let capacity: Int

    init(capacity: Int = 50_000) { self.capacity = capacity }

    func value(for key: [UInt8], orInsert compute: () -> [Int32]) -> [Int32] {
        lock.lock()
        if let hit = entries[key] {
            lock.unlock()
            return hit
        }
        lock.unlock()
        let value = compute()
        lock.lock()
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = value
        lock.unlock()
        return value
    }
}
