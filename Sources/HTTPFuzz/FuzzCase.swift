import Foundation

/// One fuzz case: the bytes of a request (possibly broken), how they are delivered, and what a
/// correct server may answer. Cases are a pure function of (seed, index), so a failing case is
/// reproduced by its index alone.
public struct FuzzCase: Sendable {
    public enum Expectation: Sendable, Equatable {
        /// Malformed: any answer but 2xx, or a close without an answer.
        case rejected
        /// Well-formed control request: must get a 2xx answer.
        case success
        /// The client resets the connection mid-request; nothing can be read back.
        case none
    }

    public enum Delivery: Sendable, Equatable {
        /// All bytes at once, then a half-close (the server sees end of input after them).
        case whole
        /// In `pieces` parts with `delayMicroseconds` between them, then a half-close.
        case slow(pieces: Int, delayMicroseconds: UInt32)
        /// The first `bytes` bytes, then a TCP reset (SO_LINGER 0).
        case resetAfter(bytes: Int)
    }

    public var index: Int
    /// Mutation family and variant, e.g. `headers/duplicate-host`.
    public var kind: String
    public var bytes: [UInt8]
    public var delivery: Delivery
    public var expectation: Expectation

    /// A short printable description for failure reports.
    public var summary: String {
        let shown = bytes.prefix(120).map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "." }
        return "#\(index) \(kind) (\(bytes.count) bytes, \(delivery)): \(String(shown))"
    }
}

/// SplitMix64: small, fast, and the same sequence on every platform.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `range` (modulo bias is irrelevant for fuzzing).
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        let width = UInt64(range.upperBound - range.lowerBound) + 1
        return range.lowerBound + Int(next() % width)
    }

    mutating func chance(_ probability: Double) -> Bool {
        Double(next() >> 11) / Double(1 << 53) < probability
    }

    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
}
