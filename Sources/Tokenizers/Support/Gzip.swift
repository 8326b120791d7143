/// gzip (RFC 1952) and DEFLATE (RFC 1951) decompression in plain Swift, so the target needs no zlib.
/// Used once per process to read the CLIP merges file; checks the CRC-32 and length of every member.
enum Gzip {
    static func decompress(_ input: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3)
        var position = 0
        repeat {
            position = try readMember(input, from: position, into: &output)
            // Concatenated members are allowed; trailing zero padding is common after the last one.
            while position < input.count && input[position] == 0 { position += 1 }
        } while position < input.count
        return output
    }

    private static func readMember(_ input: [UInt8], from start: Int, into output: inout [UInt8]) throws -> Int {
        func fail(_ reason: String) -> TokenizerError { .malformed(what: "gzip data", reason: reason) }
        guard input.count - start >= 18 else { throw fail("shorter than a gzip header and trailer") }
        guard input[start] == 0x1F, input[start + 1] == 0x8B else { throw fail("no gzip magic number") }
        guard input[start + 2] == 8 else { throw fail("compression method \(input[start + 2]) is not deflate") }
        let flags = input[start + 3]
        var position = start + 10
        if flags & 0x04 != 0 {  // FEXTRA
            guard position + 2 <= input.count else { throw fail("truncated extra field") }
            position += 2 + (Int(input[position]) | Int(input[position + 1]) << 8)
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            while position < input.count && input[position] != 0 { position += 1 }
            position += 1
        }
        if flags & 0x02 != 0 { position += 2 }  // FHCRC
        guard position < input.count else { throw fail("truncated header") }

        let outputStart = output.count
        var inflater = Inflater(input: input, position: position)
        try inflater.inflate(into: &output)
        position = inflater.bytePositionAfterStream
        guard position + 8 <= input.count else { throw fail("missing CRC-32 and size trailer") }
        let storedCRC = readUInt32LE(input, position)
        let storedSize = readUInt32LE(input, position + 4)
        let produced = output[outputStart...]
        guard UInt32(truncatingIfNeeded: produced.count) == storedSize else {
            throw fail("size \(produced.count) does not match the trailer (\(storedSize))")
        }
        guard CRC32.checksum(produced) == storedCRC else { throw fail("CRC-32 mismatch") }
        return position + 8
    }
}

@inline(__always)
func readUInt32LE(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
}

enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}

/// A canonical Huffman code as a direct lookup table over the next `maxLength` input bits (LSB first).
/// Entry = symbol << 4 | code length; length 0 marks bit patterns no code uses.
private struct HuffmanTable {
    var entries: [UInt32]
    var maxLength: Int

    init(lengths: [UInt8]) throws {
        let maxLength = Int(lengths.max() ?? 0)
        guard maxLength > 0 else {
            throw TokenizerError.malformed(what: "deflate stream", reason: "Huffman code with no symbols")
        }
        var countPerLength = [Int](repeating: 0, count: 16)
        for length in lengths where length > 0 { countPerLength[Int(length)] += 1 }
        var nextCode = [Int](repeating: 0, count: 16)
        var code = 0
        for length in 1...15 {
            code = (code + countPerLength[length - 1]) << 1
            nextCode[length] = code
        }
        var available = 1
        for length in 1...15 {  // reject oversubscribed codes (incomplete ones are legal, e.g. one distance code)
            available = available << 1 - countPerLength[length]
            guard available >= 0 else {
                throw TokenizerError.malformed(what: "deflate stream", reason: "oversubscribed Huffman code")
            }
        }
        var entries = [UInt32](repeating: 0, count: 1 << maxLength)
        for (symbol, length) in lengths.enumerated() where length > 0 {
            let length = Int(length)
            let code = nextCode[length]
            nextCode[length] += 1
            var reversed = 0
            for bit in 0..<length where code & (1 << bit) != 0 { reversed |= 1 << (length - 1 - bit) }
            var index = reversed
            while index < entries.count {
                entries[index] = UInt32(symbol) << 4 | UInt32(length)
                index += 1 << length
            }
        }
        self.entries = entries
        self.maxLength = maxLength
    }
}

private struct Inflater {
    let input: [UInt8]
    var position: Int
    var bitBuffer: UInt64 = 0
    var bitCount = 0

    init(input: [UInt8], position: Int) {
        self.input = input
        self.position = position
    }

    /// The byte after the last one the stream used (the final partial byte counts as used).
    var bytePositionAfterStream: Int { position - bitCount / 8 }

    private static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                           67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4,
                                            5, 5, 5, 5, 0]
    private static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385,
                                             513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    private static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10,
                                              10, 11, 11, 12, 12, 13, 13]
    private static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    private func fail(_ reason: String) -> TokenizerError { .malformed(what: "deflate stream", reason: reason) }

    @inline(__always)
    private mutating func refill() {
        while bitCount <= 56 && position < input.count {
            bitBuffer |= UInt64(input[position]) << UInt64(bitCount)
            position += 1
            bitCount += 8
        }
    }

    @inline(__always)
    private mutating func bits(_ count: Int) throws -> Int {
        if count == 0 { return 0 }
        if bitCount < count {
            refill()
            guard bitCount >= count else { throw fail("unexpected end of data") }
        }
        let value = Int(bitBuffer & ((1 << UInt64(count)) - 1))
        bitBuffer >>= UInt64(count)
        bitCount -= count
        return value
    }

    @inline(__always)
    private mutating func decode(_ table: HuffmanTable) throws -> Int {
        if bitCount < table.maxLength { refill() }
        let entry = table.entries[Int(bitBuffer & ((1 << UInt64(table.maxLength)) - 1))]
        let length = Int(entry & 0xF)
        guard length > 0, length <= bitCount else { throw fail("invalid Huffman code or truncated data") }
        bitBuffer >>= UInt64(length)
        bitCount -= length
        return Int(entry >> 4)
    }

    mutating func inflate(into output: inout [UInt8]) throws {
        var isFinal = false
        while !isFinal {
            isFinal = try bits(1) == 1
            switch try bits(2) {
            case 0: try storedBlock(into: &output)
            case 1: try compressedBlock(Self.fixedTables(), into: &output)
            case 2: try compressedBlock(dynamicTables(), into: &output)
            default: throw fail("reserved block type 3")
            }
        }
    }

    private mutating func storedBlock(into output: inout [UInt8]) throws {
        _ = try bits(bitCount % 8)  // skip to the byte boundary
        let length = try bits(16)
        let complement = try bits(16)
        guard length == ~complement & 0xFFFF else { throw fail("stored block length check failed") }
        for _ in 0..<length { output.append(UInt8(try bits(8))) }
    }

    private static func fixedTables() throws -> (HuffmanTable, HuffmanTable) {
        var lengths = [UInt8](repeating: 8, count: 288)
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        return (try HuffmanTable(lengths: lengths), try HuffmanTable(lengths: [UInt8](repeating: 5, count: 30)))
    }

    private mutating func dynamicTables() throws -> (HuffmanTable, HuffmanTable) {
        let literalCount = try bits(5) + 257
        let distanceCount = try bits(5) + 1
        let codeLengthCount = try bits(4) + 4
        guard literalCount <= 286, distanceCount <= 30 else { throw fail("too many length or distance codes") }
        var codeLengthLengths = [UInt8](repeating: 0, count: 19)
        for i in 0..<codeLengthCount { codeLengthLengths[Self.codeLengthOrder[i]] = UInt8(try bits(3)) }
        let codeLengthTable = try HuffmanTable(lengths: codeLengthLengths)
        var lengths: [UInt8] = []
        lengths.reserveCapacity(literalCount + distanceCount)
        while lengths.count < literalCount + distanceCount {
            let symbol = try decode(codeLengthTable)
            switch symbol {
            case 0...15:
                lengths.append(UInt8(symbol))
            case 16:
                guard let previous = lengths.last else { throw fail("repeat code with no previous length") }
                lengths.append(contentsOf: repeatElement(previous, count: 3 + (try bits(2))))
            case 17:
                lengths.append(contentsOf: repeatElement(0, count: 3 + (try bits(3))))
            default:
                lengths.append(contentsOf: repeatElement(0, count: 11 + (try bits(7))))
            }
        }
        guard lengths.count == literalCount + distanceCount else { throw fail("code lengths overrun the table") }
        guard lengths[256] != 0 else { throw fail("no end-of-block code") }
        let literals = try HuffmanTable(lengths: Array(lengths[0..<literalCount]))
        let distanceLengths = Array(lengths[literalCount...])
        // A block of literals only may have no distance codes; give it a table that rejects every code.
        let distances = distanceLengths.contains { $0 > 0 }
            ? try HuffmanTable(lengths: distanceLengths)
            : HuffmanTable.rejectingAll
        return (literals, distances)
    }

    private mutating func compressedBlock(_ tables: (HuffmanTable, HuffmanTable),
                                          into output: inout [UInt8]) throws {
        let (literals, distances) = tables
        while true {
            let symbol = try decode(literals)
            if symbol < 256 {
                output.append(UInt8(symbol))
            } else if symbol == 256 {
                return
            } else {
                let lengthIndex = symbol - 257
                guard lengthIndex < 29 else { throw fail("invalid length symbol \(symbol)") }
                let length = Self.lengthBase[lengthIndex] + (try bits(Self.lengthExtra[lengthIndex]))
                let distanceIndex = try decode(distances)
                guard distanceIndex < 30 else { throw fail("invalid distance symbol \(distanceIndex)") }
                let distance = Self.distanceBase[distanceIndex] + (try bits(Self.distanceExtra[distanceIndex]))
                guard distance <= output.count else { throw fail("distance reaches before the output start") }
                let from = output.count - distance
                for i in 0..<length { output.append(output[from + i]) }
            }
        }
    }
}

private extension HuffmanTable {
    /// One-bit table whose entries all have length 0, so any decode through it fails cleanly.
    static let rejectingAll = HuffmanTable(entries: [0, 0], maxLength: 1)

    init(entries: [UInt32], maxLength: Int) {
        self.entries = entries
        self.maxLength = maxLength
    }
}
