/// One line of a stage benchmark: what ran, its median time, and notes (sizes, peak memory, throughput).
public struct BenchmarkRow: CustomStringConvertible, Sendable {
    public let name: String
    public let milliseconds: Double
    public let notes: String

    public init(name: String, milliseconds: Double, notes: String) {
        self.name = name
        self.milliseconds = milliseconds
        self.notes = notes
    }

    public var description: String {
        name.padding(toLength: max(name.count, 44), withPad: " ", startingAt: 0)
            + String(format: " %10.2f ms  ", milliseconds) + notes
    }
}
