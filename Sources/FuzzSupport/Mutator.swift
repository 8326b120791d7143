import Foundation

/// How a seed file is laid out, for the mutations that understand its structure.
public enum FuzzFormat: String, Sendable {
    case binary, json, text, safetensors, ply, png, jpeg, zip
}

/// Turns a valid seed file into a malformed one. Every case applies one to three mutations drawn from the generic
/// set (bit flips, byte insertion/deletion, truncation, splicing with another seed, integer fields set to extremes)
/// and the format's own (numbers and dtype strings in JSON, nesting, safetensors header lengths, PNG/JPEG dimensions,
/// PLY counts and properties, zip directory fields).
public struct Mutator {
    public let format: FuzzFormat

    public init(format: FuzzFormat) { self.format = format }

    /// Integer extremes as 64-bit patterns: 0, -1, 2^31, 2^63, 2^64-1 and their neighbours.
    static let extremeIntegers: [UInt64] = [
        0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFE,
        1 << 40, 1 << 62,
    ]

    /// The same extremes written as JSON/PLY numbers, plus floats where integers are expected.
    static let extremeNumberTexts: [String] = [
        "0", "-1", "1", "2147483647", "2147483648", "-2147483649", "4294967296", "1099511627776",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999999", "1e308", "1e999", "-1e999",
        "1.5", "-0", "0.0", "NaN", "nan", "inf", "-inf", "1e-400", "00", "0x10",
    ]

    static let dtypeTexts: [String] = [
        "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F128", "U64",
        "", "f32", "float32", "torch.float16", "Q4_0", "F32\u{0}", "\u{FFFD}",
    ]

    /// Mutates `seed`; `corpus` holds the other seeds of the target (for splicing). Returns the bytes and a
    /// description of what was done (reported with a finding).
    public func mutate(_ seed: [UInt8], corpus: [[UInt8]], random: inout FuzzRandom) -> (bytes: [UInt8], description: String) {
        var bytes = seed
        var steps: [String] = []
        for _ in 0..<(1 + random.below(3)) {
            let structured = random.chance(60)
            if structured, let step = mutateStructure(&bytes, random: &random) {
                steps.append(step)
            } else {
                steps.append(mutateBytes(&bytes, corpus: corpus, random: &random))
            }
        }
        return (bytes, steps.joined(separator: "; "))
    }

    // MARK: generic byte mutations

    func mutateBytes(_ bytes: inout [UInt8], corpus: [[UInt8]], random: inout FuzzRandom) -> String {
        switch random.below(7) {
        case 0:
            guard !bytes.isEmpty else { fallthrough }
            let flips = 1 + random.below(8)
            for _ in 0..<flips {
                let at = random.below(bytes.count)
                bytes[at] ^= 1 << UInt8(random.below(8))
            }
            return "flip \(flips) bits"
        case 1:
            let at = random.below(bytes.count + 1)
            let count = 1 + random.below(random.chance(10) ? 4096 : 16)
            let fill: [UInt8] = (0..<count).map { _ in random.chance(50) ? UInt8(truncatingIfNeeded: random.next()) : random.pick([0, 0xFF, 0x7F, 0x80, 0x22, 0x5B, 0x7B]) }
            bytes.insert(contentsOf: fill, at: at)
            return "insert \(count) bytes at \(at)"
        case 2:
            guard !bytes.isEmpty else { return "delete nothing (empty)" }
            let at = random.below(bytes.count)
            let count = min(bytes.count - at, 1 + random.below(random.chance(10) ? 4096 : 16))
            bytes.removeSubrange(at..<(at + count))
            return "delete \(count) bytes at \(at)"
        case 3:
            let keep = random.chance(20) ? random.below(min(bytes.count, 64) + 1) : random.below(bytes.count + 1)
            bytes.removeSubrange(keep...)
            return "truncate to \(keep) bytes"
        case 4:
            guard let other = corpus.isEmpty ? nil : random.pick(corpus), !other.isEmpty else { fallthrough }
            let cut = random.below(bytes.count + 1)
            let from = random.below(other.count)
            bytes = Array(bytes[..<cut]) + Array(other[from...])
            return "splice at \(cut) with another seed from \(from)"
        case 5:
            guard bytes.count >= 8 else { fallthrough }
            let width = random.pick([1, 2, 4, 8])
            let at = random.below(bytes.count - width + 1)
            let value = random.pick(Self.extremeIntegers)
            write(value, width: width, bigEndian: random.chance(30), into: &bytes, at: at)
            return "integer \(value) (\(width) bytes) at \(at)"
        default:
            guard !bytes.isEmpty else { return "no-op (empty)" }
            let at = random.below(bytes.count)
            let count = min(bytes.count - at, 1 + random.below(64))
            for i in at..<(at + count) { bytes[i] = UInt8(truncatingIfNeeded: random.next()) }
            return "randomise \(count) bytes at \(at)"
        }
    }

    func write(_ value: UInt64, width: Int, bigEndian: Bool, into bytes: inout [UInt8], at offset: Int) {
        guard offset >= 0, offset + width <= bytes.count else { return }
        for i in 0..<width {
            let shift = UInt64(8 * (bigEndian ? width - 1 - i : i))
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> shift)
        }
    }

    // MARK: structure-aware mutations

    func mutateStructure(_ bytes: inout [UInt8], random: inout FuzzRandom) -> String? {
        switch format {
        case .binary: return nil
        case .json, .text: return TextMutations.mutate(&bytes, json: format == .json, random: &random)
        case .safetensors: return mutateSafeTensors(&bytes, random: &random)
        case .ply: return PLYMutations.mutate(&bytes, random: &random)
        case .png: return ImageMutations.mutatePNG(&bytes, mutator: self, random: &random)
        case .jpeg: return ImageMutations.mutateJPEG(&bytes, mutator: self, random: &random)
        case .zip: return ZipMutations.mutate(&bytes, mutator: self, random: &random)
        }
    }

    /// Either the 8-byte header length set to an extreme, or the JSON header mutated and its length fixed up so
    /// the parser reaches the entries (shapes, offsets, dtypes).
    func mutateSafeTensors(_ bytes: inout [UInt8], random: inout FuzzRandom) -> String? {
        guard bytes.count >= 8 else { return nil }
        if random.chance(20) {
            let value = random.pick(Self.extremeIntegers)
            write(value, width: 8, bigEndian: false, into: &bytes, at: 0)
            return "header length \(value)"
        }
        var length = 0
        for i in 0..<8 { length |= Int(bytes[i]) << (8 * i) }
        guard length >= 0, length <= bytes.count - 8 else { return nil }
        var header = Array(bytes[8..<(8 + length)])
        guard let step = TextMutations.mutate(&header, json: true, random: &random) else { return nil }
        var out = [UInt8](repeating: 0, count: 8)
        write(UInt64(header.count), width: 8, bigEndian: false, into: &out, at: 0)
        bytes = out + header + Array(bytes[(8 + length)...])
        return "header JSON: \(step)"
    }
}

/// Mutations of JSON and other text: numbers set to extremes, dtype strings swapped, values nested deeply, keys
/// and strings replaced.
enum TextMutations {
    static func mutate(_ bytes: inout [UInt8], json: Bool, random: inout FuzzRandom) -> String? {
        let numbers = numberRanges(bytes)
        switch random.below(json ? 5 : 2) {
        case 0, 1:
            guard !numbers.isEmpty else { return nil }
            let range = random.pick(numbers)
            let text = random.pick(Mutator.extremeNumberTexts)
            bytes.replaceSubrange(range, with: Array(text.utf8))
            return "number at \(range.lowerBound) -> \(text)"
        case 2:
            let strings = stringRanges(bytes)
            guard !strings.isEmpty else { return nil }
            let range = random.pick(strings)
            let text = random.pick(Mutator.dtypeTexts + ["", "\\u0000", String(repeating: "x", count: 300), "config.json"])
            bytes.replaceSubrange(range, with: Array(text.utf8))
            return "string at \(range.lowerBound) -> '\(text.prefix(12))'"
        case 3:
            // A value wrapped in deep nesting (arrays or objects).
            let starts = numbers.map(\.lowerBound) + stringRanges(bytes).map { $0.lowerBound - 1 }
            guard let start = starts.isEmpty ? nil : random.pick(starts) else { return nil }
            let depth = random.pick([2, 16, 100, 1000, 5000])
            let (open, close) = random.chance(50) ? ("[", "]") : ("{\"k\":", "}")
            let end = valueEnd(bytes, from: start)
            bytes.insert(contentsOf: Array(String(repeating: close, count: depth).utf8), at: end)
            bytes.insert(contentsOf: Array(String(repeating: open, count: depth).utf8), at: start)
            return "nest value at \(start) \(depth) deep"
        default:
            // A number replaced by a value of another type.
            guard !numbers.isEmpty else { return nil }
            let range = random.pick(numbers)
            let text = random.pick(["null", "true", "\"1\"", "[]", "{}", "[1, 2]", "[-1]", "[0, 0, 0, 0, 0, 0, 0, 0, 0]"])
            bytes.replaceSubrange(range, with: Array(text.utf8))
            return "number at \(range.lowerBound) -> \(text)"
        }
    }

    /// Ranges of decimal numbers (with sign, fraction, exponent) outside strings... and inside them too: a number in a
    /// string is still worth changing in PLY headers and merges files.
    static func numberRanges(_ bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var i = 0
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        while i < bytes.count {
            if isDigit(bytes[i]) {
                var start = i
                if start > 0, bytes[start - 1] == 0x2D { start -= 1 }
                while i < bytes.count, isDigit(bytes[i]) || bytes[i] == 0x2E || bytes[i] == 0x65 || bytes[i] == 0x45
                        || ((bytes[i] == 0x2D || bytes[i] == 0x2B) && (bytes[i - 1] == 0x65 || bytes[i - 1] == 0x45)) { i += 1 }
                ranges.append(start..<i)
                if ranges.count >= 4096 { break }
            } else {
                i += 1
            }
        }
        return ranges
    }

    /// Contents of double-quoted strings (without the quotes).
    static func stringRanges(_ bytes: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var i = 0
        while i < bytes.count, ranges.count < 4096 {
            guard bytes[i] == 0x22 else { i += 1; continue }
            let start = i + 1
            i = start
            while i < bytes.count, bytes[i] != 0x22 { i += bytes[i] == 0x5C ? 2 : 1 }
            if i < bytes.count { ranges.append(start..<i) }
            i += 1
        }
        return ranges
    }

    /// Where the JSON value starting at `start` ends (a number or a string; anything else: its first byte).
    static func valueEnd(_ bytes: [UInt8], from start: Int) -> Int {
        guard start < bytes.count else { return bytes.count }
        if bytes[start] == 0x22 {
            var i = start + 1
            while i < bytes.count, bytes[i] != 0x22 { i += bytes[i] == 0x5C ? 2 : 1 }
            return min(i + 1, bytes.count)
        }
        var i = start
        while i < bytes.count, !",]} \n\r\t".utf8.contains(bytes[i]) { i += 1 }
        return i
    }
}
