import Pipeline
import Foundation

/// What happened to one configuration.
public enum BenchRowStatus: String, Codable, Sendable {
    /// Ran; `runs` jobs were measured (some may have failed: see `failures`).
    case measured
    /// Not implemented or its weights are not present.
    case unavailable
    /// Ran out of device memory (under `--cap-gib`, or on the card itself).
    case doesNotFit = "does-not-fit"
    /// Every measured job failed with an error other than out-of-memory.
    case failed
    /// Not run: no prompt of its kind, or excluded by `--only`.
    case skipped
}

/// The seconds one named stage took over the measured jobs.
public struct StageSummary: Codable, Sendable, Equatable {
    public var name: String
    public var seconds: SampleSummary

    public init(name: String, seconds: SampleSummary) {
        self.name = name
        self.seconds = seconds
    }
}

/// The predicted validator score, or why there is none.
public struct ScoreSummary: Codable, Sendable, Equatable {
    public enum Basis: String, Codable, Sendable {
        /// Real weights and a validator: `scores` holds the predictions.
        case scored
        /// The smoke pipeline: a score of random networks means nothing.
        case randomWeights = "random-weights"
        /// Real weights but no validator scorers loaded.
        case noScorer = "no-scorer"
    }

    public var basis: Basis
    public var scores: SampleSummary?

    public init(basis: Basis, scores: SampleSummary?) {
        self.basis = basis
        self.scores = scores
    }

    /// "0.712 (median 0.720)", "n/a: random weights" or "n/a: no scorer".
    public var text: String {
        switch basis {
        case .scored:
            guard let s = scores else { return "n/a: no job scored" }
            return String(format: "%.3f (median %.3f)", s.mean, s.median)
        case .randomWeights: return "n/a: random weights"
        case .noScorer: return "n/a: no scorer"
        }
    }
}

/// One configuration's measurements.
public struct BenchRow: Codable, Sendable, Equatable {
    public var configuration: BenchConfiguration
    public var status: BenchRowStatus
    /// Why it was unavailable, skipped, did not fit or failed.
    public var detail: String?
    /// Measured jobs (warm-up excluded), failed ones included.
    public var runs: Int
    public var failures: Int
    /// The first few distinct error messages.
    public var failureMessages: [String]
    /// Per stage, in pipeline order.
    public var stages: [StageSummary]
    /// Wall-clock seconds of whole jobs.
    public var total: SampleSummary?
    public var gaussians: SampleSummary?
    public var plyBytes: SampleSummary?
    /// Peak bytes allocated on the GPU over the configuration (warm-up included); nil on the CPU.
    public var peakGPUMemoryBytes: Int64?
    /// "n/a (cpu)", "12.34 GiB", or "n/a (not run)".
    public var peakGPUMemory: String
    /// Splats that passed the validator's data checks, out of `checksRun`.
    public var checksPassed: Int
    public var checksRun: Int
    /// Failed-check kind -> how many splats failed it.
    public var checkFailures: [String: Int]
    public var score: ScoreSummary

    public init(configuration: BenchConfiguration, status: BenchRowStatus, detail: String? = nil, runs: Int = 0,
                failures: Int = 0, failureMessages: [String] = [], stages: [StageSummary] = [], total: SampleSummary? = nil,
                gaussians: SampleSummary? = nil, plyBytes: SampleSummary? = nil, peakGPUMemoryBytes: Int64? = nil,
                peakGPUMemory: String = "n/a (not run)", checksPassed: Int = 0, checksRun: Int = 0,
                checkFailures: [String: Int] = [:], score: ScoreSummary = ScoreSummary(basis: .noScorer, scores: nil)) {
        self.configuration = configuration
        self.status = status
        self.detail = detail
        self.runs = runs
        self.failures = failures
        self.failureMessages = failureMessages
        self.stages = stages
        self.total = total
        self.gaussians = gaussians
        self.plyBytes = plyBytes
        self.peakGPUMemoryBytes = peakGPUMemoryBytes
        self.peakGPUMemory = peakGPUMemory
        self.checksPassed = checksPassed
        self.checksRun = checksRun
        self.checkFailures = checkFailures
        self.score = score
    }

    /// Measured with at least one successful job.
    public var hasTimings: Bool { status == .measured && total != nil }
}

/// A whole benchmark: where it ran, what it ran, every configuration's row, and the budget choices.
public struct BenchResult: Codable, Sendable {
    public var date: String
    public var device: String
    /// The card's name on CUDA, "cpu" otherwise.
    public var deviceName: String
    public var pipeline: String
    public var isSmoke: Bool
    /// The allocator cap in GiB, when `--cap-gib` was given.
    public var memoryCapGiB: Double?
    public var textPrompts: Int
    public var imagePrompts: Int
    public var warmupRuns: Int
    public var seed: UInt64
    public var rows: [BenchRow]
    public var budget: BudgetPolicy
    public var choices: [BudgetChoice]
    public var notes: [String]

    public static func iso8601Now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date())
    }
}
