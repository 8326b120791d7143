/// A byte trie of vocabulary pieces. Edges live in one open-addressing table keyed by (node << 8 | byte) with a
/// multiplicative hash: lookups are the inner loop of the Viterbi search, and Swift's seeded SipHash
/// dictionary costs several times more per probe.
struct PieceTrie: Sendable {
    private var keys: [UInt64]  // 0 = empty slot (a real key has node + 1 in its upper bits)
    private var children: [Int32]
    private var mask: Int
    private var edgeCount = 0
    /// Piece id ending at each node, -1 for none.
    private var values: [Int32] = [-1]

    init() {
        keys = [UInt64](repeating: 0, count: 1024)
        children = [Int32](repeating: 0, count: 1024)
        mask = 1023
    }

    @inline(__always)
    private static func key(_ node: Int, _ byte: UInt8) -> UInt64 { UInt64(node + 1) << 8 | UInt64(byte) }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask }

    @inline(__always)
    func child(_ node: Int, _ byte: UInt8) -> Int? {
        let key = Self.key(node, byte)
        var i = slot(key)
        while true {
            let stored = keys[i]
            if stored == key { return Int(children[i]) }
            if stored == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    private mutating func insertEdge(_ key: UInt64, _ child: Int32) {
        if (edgeCount + 1) * 2 > keys.count { grow() }
        var i = slot(key)
        while keys[i] != 0 { i = (i + 1) & mask }
        keys[i] = key
        children[i] = child
        edgeCount += 1
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldChildren = children
        keys = [UInt64](repeating: 0, count: oldKeys.count * 2)
        children = [Int32](repeating: 0, count: oldKeys.count * 2)
        mask = keys.count - 1
        edgeCount = 0
        for (key, child) in zip(oldKeys, oldChildren) where key != 0 { insertEdge(key, child) }
    }

    /// Adds a piece; a repeated piece keeps the last id (as a dictionary built in vocabulary order would).
    mutating func insert<Bytes: Sequence<UInt8>>(_ bytes: Bytes, id: Int32) {
        var node = 0
        for byte in bytes {
            if let next = child(node, byte) {
                node = next
            } else {
                values.append(-1)
                insertEdge(Self.key(node, byte), Int32(values.count - 1))
                node = values.count - 1
            }
        }
        values[node] = id
    }

    /// Calls `visit(length, id)` for every piece that prefixes `text[start...]`, shortest first.
    @inline(__always)
    func forEachPrefix(of text: UnsafeBufferPointer<UInt8>, from start: Int, _ visit: (Int, Int32) -> Void) {
        var node = 0
        var position = start
        while position < text.count {
            guard let next = child(node, text[position]) else { return }
            node = next
            position += 1
            let id = values[node]
            if id >= 0 { visit(position - start, id) }
        }
    }

    /// The id of the piece equal to `bytes`, if any.
    func exactMatch<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> Int32? {
        var node = 0
        for byte in bytes {
            guard let next = child(node, byte) else { return nil }
            node = next
        }
        return values[node] >= 0 ? values[node] : nil
    }
}

/// The unigram language-model segmentation of sentencepiece / tokenizers: the Viterbi path of highest total piece
/// score over the UTF-8 bytes of a normalised string, where a character no piece starts with costs
/// `min score - 10` as `<unk>`.
///
/// Two conventions, matching the two libraries:
/// - `.sentencepiece` (`unigram_model.cc` EncodeOptimized + `PopulateSentencePieceText`): float32 sums; only
///   NORMAL / USER_DEFINED pieces are candidates, user-defined ones scored `length * max_score - 0.1`; each
///   unknown character becomes its byte pieces under byte fallback, otherwise a run of them one `<unk>`.
/// - `.tokenizers` (`models/unigram/model.rs` encode_optimized + tokenize): float64 sums over every vocabulary
///   entry; a run of unknown characters is fused into one string, looked up as a piece, else its byte pieces
///   (byte fallback, all bytes present), else `<unk>`.
struct UnigramModel: Sendable {
    enum Convention: Sendable { case sentencepiece, tokenizers }

    let convention: Convention
    let unkID: Int32
    private let trie: PieceTrie
    private let scores: [Double]
    private let scores32: [Float]
    private let isUserDefined: [Bool]
    private let unkScore: Double
    /// sentencepiece's max_score_: the largest NORMAL score, starting from FLT_MIN.
    private let maxScore: Float
    /// Id of `<0xXX>` per byte when byte fallback is on (nil entries: piece missing).
    private let byteIDs: [Int32?]?

    /// sentencepiece model: pieces with their types.
    init(sentencePiece model: SentencePieceModel) throws {
        convention = .sentencepiece
        var trie = PieceTrie()
        var unk: Int32?
        var minScore = Float.greatestFiniteMagnitude
        var maxScore = Float.leastNormalMagnitude
        var pieceIDs: [String: Int32] = [:]
        for (index, piece) in model.pieces.enumerated() {
            let id = Int32(index)
            pieceIDs[piece.piece] = id
            switch piece.type {
            case .normal:
                minScore = min(minScore, piece.score)
                maxScore = max(maxScore, piece.score)
                trie.insert(piece.piece.utf8, id: id)
            case .userDefined:
                trie.insert(piece.piece.utf8, id: id)
            case .unknown:
                unk = id
            case .control, .unused, .byte:
                break
            }
        }
        guard let unk else { throw TokenizerError.malformed(what: "spiece.model", reason: "no piece of type UNKNOWN") }
        unkID = unk
        self.trie = trie
        scores32 = model.pieces.map(\.score)
        scores = scores32.map(Double.init)
        isUserDefined = model.pieces.map { $0.type == .userDefined }
        unkScore = Double(minScore - 10)
        self.maxScore = maxScore
        // PieceToId of a missing byte piece is the unk id.
        byteIDs = model.byteFallback ? (0...255).map { pieceIDs[Self.bytePiece(UInt8($0))] ?? unk } : nil
    }

    /// tokenizers Unigram model: (piece, score) in id order.
    init(vocabulary: [(String, Double)], unkID: Int32?, byteFallback: Bool) throws {
        convention = .tokenizers
        guard !vocabulary.isEmpty else { throw TokenizerError.malformed(what: "Unigram model", reason: "empty vocab") }
        guard let unkID, unkID >= 0, Int(unkID) < vocabulary.count else {
            // tokenizers accepts a model without unk_id but fails on the first unknown character; require it.
            throw TokenizerError.unsupported(what: "Unigram model without a valid unk_id")
        }
        var trie = PieceTrie()
        var minScore = Double.infinity
        for (index, (piece, score)) in vocabulary.enumerated() {
            trie.insert(piece.utf8, id: Int32(index))
            minScore = min(minScore, score)
        }
        self.unkID = unkID
        self.trie = trie
        scores = vocabulary.map(\.1)
        scores32 = scores.map(Float.init)
        isUserDefined = []
        unkScore = minScore - 10
        maxScore = 0
        byteIDs = byteFallback ? (0...255).map { trie.exactMatch(Self.bytePiece(UInt8($0)).utf8) } : nil
    }

    static func bytePiece(_ byte: UInt8) -> String {
        let hex = String(byte, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    /// Appends the ids of `text` (normalised UTF-8) to `ids`.
    func encode(_ text: [UInt8], into ids: inout [Int32]) {
        guard !text.isEmpty else { return }
        let path = text.withUnsafeBufferPointer { buffer in
            convention == .sentencepiece ? bestPath(buffer, scores: scores32) : bestPath(buffer, scores: scores)
        }
        switch convention {
        case .sentencepiece: emitSentencePiece(path, text, into: &ids)
        case .tokenizers: emitTokenizers(path, text, into: &ids)
        }
    }

    private struct Node {
        var start: Int
        var end: Int
        var id: Int32
    }

    /// Best path over byte positions, as the optimized Viterbi of both libraries computes it: positions in
    /// character steps, candidates shortest first, strictly better scores replacing earlier ones.
    private func bestPath<S: BinaryFloatingPoint>(_ text: UnsafeBufferPointer<UInt8>, scores: [S]) -> [Node] {
        let size = text.count
        var bestScore = [S](repeating: 0, count: size + 1)
        var startsAt = [Int](repeating: -1, count: size + 1)
        var nodeID = [Int32](repeating: 0, count: size + 1)
        let unkScore = S(self.unkScore)
        let checkUserDefined = convention == .sentencepiece && !isUserDefined.isEmpty
        var start = 0
        while start < size {
            let scoreHere = bestScore[start]
            let charLength = min(Self.utf8Length(leadByte: text[start]), size - start)
            var hasSingleCharacterNode = false
            trie.forEachPrefix(of: text, from: start) { length, id in
                let end = start + length
                if checkUserDefined && isUserDefined[Int(id)] {
                    // sentencepiece: `length * max_score_ - 0.1` is a double; the sum is compared in double and
                    // stored back into the float path score.
                    let score = Double(Float(length) * maxScore) - 0.1
                    let candidate = score + Double(scoreHere)
                    if startsAt[end] == -1 || candidate > Double(bestScore[end]) {
                        bestScore[end] = S(candidate)
                        startsAt[end] = start
                        nodeID[end] = id
                    }
                } else {
                    let candidate = scores[Int(id)] + scoreHere
                    if startsAt[end] == -1 || candidate > bestScore[end] {
                        bestScore[end] = candidate
                        startsAt[end] = start
                        nodeID[end] = id
                    }
                }
                if length == charLength { hasSingleCharacterNode = true }
            }
            if !hasSingleCharacterNode {
                let end = start + charLength
                let candidate = unkScore + scoreHere
                if startsAt[end] == -1 || candidate > bestScore[end] {
                    bestScore[end] = candidate
                    startsAt[end] = start
                    nodeID[end] = unkID
                }
            }
            start += charLength
        }
        var path: [Node] = []
        var end = size
        while end > 0 {
            let start = startsAt[end]
            path.append(Node(start: start, end: end, id: nodeID[end]))
            end = start
        }
        path.reverse()
        return path
    }

    @inline(__always)
    private static func utf8Length(leadByte: UInt8) -> Int {
        switch leadByte >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }

    private func emitSentencePiece(_ path: [Node], _ text: [UInt8], into ids: inout [Int32]) {
        var previousWasUnk = false
        for node in path {
            if node.id == unkID, let byteIDs {
                for byte in text[node.start..<node.end] { ids.append(byteIDs[Int(byte)]!) }
                previousWasUnk = false
            } else if node.id == unkID {
                if !previousWasUnk { ids.append(unkID) }
                previousWasUnk = true
            } else {
                ids.append(node.id)
                previousWasUnk = false
            }
        }
    }

    private func emitTokenizers(_ path: [Node], _ text: [UInt8], into ids: inout [Int32]) {
        var index = 0
        while index < path.count {
            guard path[index].id == unkID else {
                ids.append(path[index].id)
                index += 1
                continue
            }
            let runStart = path[index].start
            while index < path.count && path[index].id == unkID { index += 1 }
            let run = text[runStart..<path[index - 1].end]
            if let id = trie.exactMatch(run) {
                ids.append(id)
            } else if let byteIDs, case let bytes = run.map({ byteIDs[Int($0)] }), !bytes.contains(nil) {
                ids += bytes.map { $0! }
            } else {
                ids.append(unkID)
            }
        }
    }
}
