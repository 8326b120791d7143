import Pipeline
import Foundation

/// The time a validator allows per request, and the safety margin kept below it.
public struct BudgetPolicy: Codable, Sendable, Equatable {
    /// Seconds per request.
    public var seconds: Double
    /// Fraction of the budget kept free for the network, queueing and slow outliers: a configuration fits when its
    /// p90 job time is at most `seconds * (1 - margin)`.
    public var margin: Double

    public static let defaultMargin = 0.2

    public init(seconds: Double = 30, margin: Double = defaultMargin) throws {
        guard seconds.isFinite, seconds > 0 else { throw BenchError.invalidArgument("budget must be a positive number of seconds, got \(seconds)") }
        guard margin.isFinite, margin >= 0, margin < 1 else { throw BenchError.invalidArgument("margin must be in [0, 1), got \(margin)") }
        self.seconds = seconds
        self.margin = margin
    }

    /// The p90 job time a configuration may have.
    public var limit: Double { seconds * (1 - margin) }
}

/// The configuration picked for one kind of prompt, and why.
public struct BudgetChoice: Codable, Sendable, Equatable {
    public enum Basis: String, Codable, Sendable {
        /// The best predicted validator score among the configurations that fit.
        case predictedScore = "predicted score"
        /// The fastest configuration that fits: there is no meaningful score (random weights or no scorer).
        case timeOnly = "time only"
        /// Nothing fits (or nothing was measured).
        case none
    }

    public var promptKind: BenchPromptKind
    /// The chosen configuration's id; nil when none fits.
    public var chosen: String?
    public var basis: Basis
    /// One or two sentences for the terminal and the report.
    public var explanation: String
    /// Every other configuration of this kind with the reason it was not chosen.
    public var rejected: [String: String]
}

/// Picks, per prompt kind, the configuration with the best predicted score whose p90 time fits the budget minus the
/// margin; without scores (random weights, no scorer) the fastest configuration that fits.
public enum BudgetChooser {
    public static func choose(rows: [BenchRow], policy: BudgetPolicy) -> [BudgetChoice] {
        BenchPromptKind.allCases.compactMap { kind in
            let ofKind = rows.filter { $0.configuration.promptKind == kind }
            guard !ofKind.isEmpty else { return nil }
            return choose(kind: kind, rows: ofKind, policy: policy)
        }
    }

    static func choose(kind: BenchPromptKind, rows: [BenchRow], policy: BudgetPolicy) -> BudgetChoice {
        let limit = policy.limit
        let budgetText = String(format: "%.1f s budget - %.0f%% margin = %.1f s for the p90 job time", policy.seconds,
                                policy.margin * 100, limit)
        var rejected: [String: String] = [:]
        var fitting: [BenchRow] = []
        for row in rows {
            let id = row.configuration.id
            switch row.status {
            case .unavailable: rejected[id] = "unavailable: " + (row.configuration.unavailable ?? row.detail ?? "")
            case .doesNotFit: rejected[id] = "does not fit in memory" + (row.detail.map { ": \($0)" } ?? "")
            case .failed: rejected[id] = "failed: " + (row.detail ?? "every job failed")
            case .skipped: rejected[id] = "skipped: " + (row.detail ?? "not run")
            case .measured:
                guard let total = row.total else {
                    rejected[id] = "no successful job"
                    continue
                }
                if row.failures > 0 {
                    rejected[id] = "\(row.failures) of \(row.runs) jobs failed"
                } else if total.p90 > limit {
                    rejected[id] = String(format: "p90 %.2f s > %.2f s", total.p90, limit)
                } else {
                    fitting.append(row)
                }
            }
        }
        guard !fitting.isEmpty else {
            return BudgetChoice(promptKind: kind, chosen: nil, basis: .none,
                                explanation: "no \(kind.rawValue)-prompt configuration fits (\(budgetText))", rejected: rejected)
        }

        let scored = fitting.allSatisfy { $0.score.basis == .scored && $0.score.scores != nil }
        let chosen: BenchRow
        let explanation: String
        let basis: BudgetChoice.Basis
        if scored {
            // Highest mean predicted score; a tie goes to the faster one.
            chosen = fitting.max { a, b in
                let (sa, sb) = (a.score.scores!.mean, b.score.scores!.mean)
                return sa != sb ? sa < sb : a.total!.p90 > b.total!.p90
            }!
            basis = .predictedScore
            explanation = String(format: "%@: best predicted score %.3f among %d that fit, p90 %.2f s (%@)",
                                 chosen.configuration.id, chosen.score.scores!.mean, fitting.count, chosen.total!.p90,
                                 budgetText)
        } else {
            chosen = fitting.min { $0.total!.p90 < $1.total!.p90 }!
            basis = .timeOnly
            let why = fitting.contains { $0.score.basis == .randomWeights } ? "random weights" : "no validator scorer loaded"
            explanation = String(format: "%@: fastest that fits, p90 %.2f s (%@); chosen on time alone (%@): "
                                 + "the quality part of the choice needs real weights and the validator scorers",
                                 chosen.configuration.id, chosen.total!.p90, budgetText, why)
        }
        for row in fitting where row.configuration.id != chosen.configuration.id {
            switch basis {
            case .predictedScore where row.score.scores!.mean == chosen.score.scores!.mean:
                rejected[row.configuration.id] = String(format: "fits, same predicted score, slower (p90 %.2f s)", row.total!.p90)
            case .predictedScore:
                rejected[row.configuration.id] = String(format: "fits, lower predicted score %.3f", row.score.scores!.mean)
            default:
                rejected[row.configuration.id] = String(format: "fits, slower (p90 %.2f s)", row.total!.p90)
            }
        }
        return BudgetChoice(promptKind: kind, chosen: chosen.configuration.id, basis: basis, explanation: explanation,
                            rejected: rejected)
    }
}
