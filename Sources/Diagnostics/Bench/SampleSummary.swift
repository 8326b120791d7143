import Pipeline
import Foundation

/// Order statistics of a sample (times in seconds, counts, sizes). Percentiles interpolate linearly between the
/// closest ranks, as numpy's default `percentile`, so the median of an even count is the mean of the middle two.
public struct SampleSummary: Codable, Sendable, Equatable {
    public var count: Int
    public var min: Double
    public var median: Double
    public var p90: Double
    public var p99: Double
    public var max: Double
    public var mean: Double

    /// nil for an empty sample (there is nothing to summarise).
    public init?<S: Sequence>(_ values: S) where S.Element == Double {
        let sorted = values.sorted()
        guard let first = sorted.first, let last = sorted.last else { return nil }
        count = sorted.count
        min = first
        max = last
        median = Self.percentile(50, ofSorted: sorted)
        p90 = Self.percentile(90, ofSorted: sorted)
        p99 = Self.percentile(99, ofSorted: sorted)
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }

    /// The `p`-th percentile (0...100) of ascending `sorted`, which must not be empty.
    public static func percentile(_ p: Double, ofSorted sorted: [Double]) -> Double {
        precondition(!sorted.isEmpty, "percentile of an empty sample")
        let rank = Swift.min(Swift.max(p, 0), 100) / 100 * Double(sorted.count - 1)
        let lower = Int(rank.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        let fraction = rank - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
    }
}
