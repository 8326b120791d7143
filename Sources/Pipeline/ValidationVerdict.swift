/// The validators' verdict, predicted: renders the splat as they do and scores it.
public struct ValidationVerdict: Sendable {
    /// The predicted validator score, or nil when it cannot be predicted (scorers missing, image prompts).
    public var score: Double?
    public var alignment: Double?
    /// The validators' data checks (count, opacity, rotations): a failure means rejection whatever the score.
    public var passedChecks: Bool
    public var notes: [String]

    /// Whether the validators would accept this at `minScore`, as far as can be told.
    public func passes(minScore: Double) -> Bool { passedChecks && (score.map { $0 >= minScore } ?? true) }

    /// A ranking value for choosing among attempts (failed checks rank lowest; unknown scores above them).
    public var rank: Double { passedChecks ? (score ?? 0.5) : -1 }

    public init(score: Double?, alignment: Double?, passedChecks: Bool, notes: [String] = []) {
        self.score = score
        self.alignment = alignment
        self.passedChecks = passedChecks
        self.notes = notes
    }
}
