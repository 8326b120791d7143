import Pipeline
import Foundation

/// How one request ended.
public struct ReadinessSample: Codable, Sendable {
    public enum Outcome: String, Codable, Sendable {
        /// 200 with a PLY body.
        case success
        /// 200, empty body, `X-Validation-Failed: true`: the gate declined on purpose (counts as a success).
        case gated
        /// 503 during the stress phase: load shed by the bounded queue (allowed).
        case shed
        case failure
    }

    public var phase: String
    public var kind: ReadinessRequest.Kind
    /// HTTP status; 0 when no complete response came back.
    public var status: Int
    public var seconds: Double
    public var bytes: Int
    /// From `X-Gaussians`.
    public var gaussians: Int?
    public var outcome: Outcome
    /// What was wrong, for failures.
    public var problem: String?
}

/// One `GET /health`.
public struct HealthProbe: Codable, Sendable {
    /// HTTP status; 0 when there was no answer.
    public var status: Int
    public var seconds: Double
    /// The `status` field: "ok", or "smoke" for the random-weight pipeline.
    public var state: String?
    public var pipeline: String?
    public var realGeneration: Bool?
    public var error: String?

    public var ok: Bool { status == 200 }

    public var text: String {
        if let error { return "no answer (\(error))" }
        var parts = ["HTTP \(status)"]
        if let state { parts.append("status \(state)") }
        if let pipeline { parts.append("pipeline \(pipeline)") }
        return parts.joined(separator: ", ")
    }
}

/// The requests of one phase, summarised.
public struct PhaseSummary: Codable, Sendable {
    public struct KindSummary: Codable, Sendable {
        public var requests: Int
        public var succeeded: Int
        public var latency: SampleSummary?
    }

    public var name: String
    public var wallSeconds: Double
    public var requests: Int
    /// Successes, gate rejections included.
    public var succeeded: Int
    public var gated: Int
    public var shed: Int
    public var failed: Int
    /// "200" -> count, "none" for requests without a response.
    public var statuses: [String: Int]
    /// Failure description -> count.
    public var problems: [String: Int]
    /// Seconds of successful requests.
    public var latency: SampleSummary?
    public var byKind: [String: KindSummary]

    init(name: String, samples: [ReadinessSample], wallSeconds: Double) {
        self.name = name
        self.wallSeconds = wallSeconds
        requests = samples.count
        succeeded = samples.filter { $0.outcome == .success || $0.outcome == .gated }.count
        gated = samples.filter { $0.outcome == .gated }.count
        shed = samples.filter { $0.outcome == .shed }.count
        failed = samples.filter { $0.outcome == .failure }.count
        var statuses: [String: Int] = [:]
        var problems: [String: Int] = [:]
        for sample in samples {
            statuses[sample.status == 0 ? "none" : String(sample.status), default: 0] += 1
            if let problem = sample.problem { problems[problem, default: 0] += 1 }
        }
        self.statuses = statuses
        self.problems = problems
        latency = SampleSummary(samples.filter { $0.outcome == .success || $0.outcome == .gated }.map(\.seconds))
        var byKind: [String: KindSummary] = [:]
        for kind in ReadinessRequest.Kind.allCases {
            let ofKind = samples.filter { $0.kind == kind }
            guard !ofKind.isEmpty else { continue }
            let ok = ofKind.filter { $0.outcome == .success || $0.outcome == .gated }
            byKind[kind.rawValue] = KindSummary(requests: ofKind.count, succeeded: ok.count, latency: SampleSummary(ok.map(\.seconds)))
        }
        self.byKind = byKind
    }
}

/// One rule of the verdict.
public struct ReadinessCriterion: Codable, Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var detail: String
}

/// The readiness check's findings and verdict.
public struct ReadinessReport: Codable, Sendable {
    public var url: String
    public var date: String
    public var budgetSeconds: Double
    public var requiredSuccessRate: Double
    public var stressClients: Int
    public var stressSeconds: Double
    public var healthBefore: HealthProbe
    public var batch: PhaseSummary?
    public var stress: PhaseSummary?
    public var healthAfter: HealthProbe?
    /// Successes / (requests - shed), over both phases.
    public var successRate: Double?
    /// Successful requests of both phases.
    public var latency: SampleSummary?
    public var bodyBytes: SampleSummary?
    public var gaussians: SampleSummary?
    public var gateRejections: Int
    public var criteria: [ReadinessCriterion]
    public var ready: Bool
    public var notes: [String]

    public var failedCriteria: [ReadinessCriterion] { criteria.filter { !$0.passed } }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public var text: String {
        func ms(_ s: Double) -> String { String(format: "%.0f ms", s * 1000) }
        var lines = ["gen3d readiness: \(url)", "health before: \(healthBefore.text)"]
        for phase in [batch, stress].compactMap({ $0 }) {
            var line = String(format: "%@: %d requests in %.1f s, %d ok (%d gated), %d shed (503), %d failed", phase.name,
                              phase.requests, phase.wallSeconds, phase.succeeded, phase.gated, phase.shed, phase.failed)
            if let l = phase.latency { line += "; latency p50 \(ms(l.median)) p90 \(ms(l.p90)) p99 \(ms(l.p99))" }
            lines.append(line)
            for (kind, summary) in phase.byKind.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(kind): \(summary.succeeded)/\(summary.requests) ok"
                    + (summary.latency.map { ", p50 \(ms($0.median))" } ?? ""))
            }
            let statuses = phase.statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("  statuses: \(statuses)")
            for (problem, count) in phase.problems.sorted(by: { $0.value > $1.value }).prefix(5) {
                lines.append("  \(count) x \(problem)")
            }
        }
        if let healthAfter { lines.append("health after: \(healthAfter.text)") }
        if let b = bodyBytes { lines.append(String(format: "PLY size: median %.0f B, max %.0f B", b.median, b.max)) }
        if let g = gaussians { lines.append(String(format: "Gaussians (X-Gaussians): median %.0f, min %.0f, max %.0f", g.median, g.min, g.max)) }
        lines.append("gate rejections (X-Validation-Failed): \(gateRejections)")
        for criterion in criteria { lines.append("[\(criterion.passed ? "pass" : "FAIL")] \(criterion.name): \(criterion.detail)") }
        for note in notes { lines.append("note: \(note)") }
        lines.append("verdict: " + (ready ? "READY" : "NOT READY (" + failedCriteria.map(\.name).joined(separator: ", ") + ")"))
        return lines.joined(separator: "\n")
    }
}
