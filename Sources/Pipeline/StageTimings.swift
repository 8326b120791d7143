import Foundation

/// Measures named stages of one job.
public struct StageTimings: Sendable {
    public private(set) var entries: [(name: String, seconds: Double)] = []

    public init() {}

    public mutating func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { entries.append((name, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)) }
        return try body()
    }

    public mutating func append(_ name: String, seconds: Double) { entries.append((name, seconds)) }

    public var total: Double { entries.reduce(0) { $0 + $1.seconds } }
}
