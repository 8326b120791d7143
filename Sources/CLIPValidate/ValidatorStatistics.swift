import Foundation

/// Errors of the validator's number crunching (bad per-view inputs).
public enum ValidatorScoreError: Error, CustomStringConvertible, Equatable {
    case tooFewValues(String, got: Int, needed: Int)
    case mismatchedCounts(String)

    public var description: String {
        switch self {
        case .tooFewValues(let what, let got, let needed):
            return "\(what): needs at least \(needed) values for the validator's KNN outlier filter, got \(got)"
        case .mismatchedCounts(let why): return why
        }
    }
}

/// What `filter_outliers` (statistics_computation_utils.py:7-26) did with a set of values.
public struct OutlierFilterResult<T: BinaryFloatingPoint & Sendable>: Sendable {
    /// The values in the order the KNN saw them (sorted ascending for 1-d input, as given for [N, 1] input).
    public let knnInput: [T]
    /// Distance of each value to its 5th nearest neighbour (the 6th smallest |x_i - x_j|, j including i).
    public let decisionScores: [T]
    /// `numpy.percentile(decisionScores, 90)`, computed in `T` as numpy does for an array of that dtype.
    public let threshold: T
    /// True where the score is strictly above the threshold.
    public let outliers: [Bool]
    /// The values that survive, in `knnInput` order.
    public let kept: [T]
}

/// The validator's statistics helpers, reproduced in the arithmetic (dtype and operation order) the validator
/// uses, so that the same inputs give the same bits where the operation order allows.
public enum ValidatorStatistics {
    /// pytod `KNN()` defaults as the validator constructs it.
    public static let contamination = 0.1
    public static let neighbours = 5

    /// `filter_outliers`: `torch.sort` along the last axis (a real sort only for 1-d input, `sortFirst`), pytod
    /// KNN decision scores (distance to the 5th neighbour), the 90th percentile as threshold, values whose score
    /// is strictly above it removed. Like the validator, values equal to -1 are removed too (it marks outliers
    /// with -1 and keeps `x != -1`).
    ///
    /// The distances are |x_i - x_j| in `T` (torch.cdist of [N, 1] features in the input dtype; exact for the
    /// direct path torch takes below 26 rows, which covers the validator's 16 views).
    public static func filterOutliers<T: BinaryFloatingPoint & Sendable>(_ values: [T], sortFirst: Bool,
                                                                         what: String = "filter_outliers")
        throws -> OutlierFilterResult<T> {
        let k = neighbours + 1
        guard values.count >= k else { throw ValidatorScoreError.tooFewValues(what, got: values.count, needed: k) }
        let input = sortFirst ? values.sorted(by: totalOrderLess) : values
        let n = input.count
        var scores = [T](repeating: 0, count: n)
        var distances = [T](repeating: 0, count: n)
        for i in 0..<n {
            for j in 0..<n { distances[j] = Swift.abs(input[i] - input[j]) }
            distances.sort(by: totalOrderLess)
            scores[i] = distances[k - 1]
        }
        let threshold = numpyPercentile(scores, 100 * (1 - contamination))
        let outliers = scores.map { $0 > threshold }
        var kept: [T] = []
        kept.reserveCapacity(n)
        for (value, isOutlier) in zip(input, outliers) where !isOutlier && value != -1 { kept.append(value) }
        return OutlierFilterResult(knnInput: input, decisionScores: scores, threshold: threshold, outliers: outliers,
                                   kept: kept)
    }

    /// `numpy.percentile(a, q)` with the default 'linear' method, in the array's own dtype `T` (numpy keeps
    /// float32 for float32 input): `a + (b - a) * g` below g = 0.5, `b - (b - a) * (1 - g)` from 0.5 up.
    public static func numpyPercentile<T: BinaryFloatingPoint>(_ values: [T], _ q: Double) -> T {
        precondition(!values.isEmpty, "numpyPercentile of no values")
        let sorted = values.sorted(by: totalOrderLess)
        let virtualIndex = Double(sorted.count - 1) * (q / 100)
        let below = Int(virtualIndex.rounded(.down))
        let gamma = virtualIndex - Double(below)
        let a = sorted[below], b = sorted[Swift.min(below + 1, sorted.count - 1)]
        let difference = b - a
        let t = T(gamma)
        return gamma >= 0.5 ? b - difference * (1 - t) : a + difference * t
    }

    /// `torch.exp(torch.log(x).mean())` in fp32: log and exp per element in float, the mean accumulated in
    /// double and rounded (torch's reduction order differs; the difference is at most an ulp or so).
    /// A 0 gives 0, a negative value NaN, like torch.
    public static func geometricMean(_ values: [Float]) -> Float {
        guard !values.isEmpty else { return .nan }
        var sum = 0.0
        for v in values { sum += Double(logf(v)) }
        return expf(Float(sum / Double(values.count)))
    }

    /// `torch.exp(torch.log(x).mean())` in fp64.
    public static func geometricMean(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        var sum = 0.0
        for v in values { sum += Foundation.log(v) }
        return Foundation.exp(sum / Double(values.count))
    }

    /// `torch.tensor(np.array(scores)).mean()` (fp64).
    public static func mean(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        return values.reduce(0, +) / Double(values.count)
    }

    /// `torch.clip(x, 0, 1)` (NaN stays NaN).
    public static func clip01(_ x: Float) -> Float { x.isNaN ? x : Swift.min(Swift.max(x, 0), 1) }

    /// Ascending order with NaN after everything (torch.sort / topk treat NaN as the largest value).
    @inline(__always)
    static func totalOrderLess<T: BinaryFloatingPoint>(_ a: T, _ b: T) -> Bool {
        if a.isNaN { return false }
        if b.isNaN { return true }
        return a < b
    }
}
