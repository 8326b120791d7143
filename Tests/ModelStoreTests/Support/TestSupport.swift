import Foundation
@testable import ModelStore

/// A fresh directory under the system temp folder, deleted when the value is released.
final class TemporaryDirectory {
    let path: String

    init() throws {
        let base = NSTemporaryDirectory() + "modelstore-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        path = base
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Deterministic pseudo-random bytes for test content.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

func randomBytes(_ count: Int, seed: UInt64) -> Data {
    var generator = SplitMix64(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    for index in 0..<count { bytes[index] = UInt8(truncatingIfNeeded: generator.next()) }
    return Data(bytes)
}

/// Collects reporter output lines (thread-safe).
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""

    @Sendable func write(_ piece: String) {
        lock.lock(); text += piece; lock.unlock()
    }

    var all: String {
        lock.lock(); defer { lock.unlock() }
        return text
    }
}
