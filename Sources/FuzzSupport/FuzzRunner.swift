import Foundation

/// One valid file a target starts from, the name its parser expects, and the parser run on each mutation of it.
public struct FuzzSeed {
    public let label: String
    /// The file name the parser reads in its folder (`config.json`, `tokenizer.json`, `case.safetensors`).
    public let fileName: String
    public let bytes: [UInt8]
    /// Unmutated files written beside the case file (a `_io.safetensors` marker, a tokenizer's other file).
    public let companions: [String: [UInt8]]
    /// Parses the mutated file; returns normally when the file was accepted, throws when it was rejected.
    public let parse: (URL) throws -> Void

    public init(label: String, fileName: String, bytes: [UInt8], companions: [String: [UInt8]] = [:],
                parse: @escaping (URL) throws -> Void) {
        self.label = label
        self.fileName = fileName
        self.bytes = bytes
        self.companions = companions
        self.parse = parse
    }
}

/// A file parser of the daemon and the seeds it is fuzzed from.
public struct FileParserTarget {
    public let name: String
    public let format: FuzzFormat
    public let seeds: [FuzzSeed]

    public init(name: String, format: FuzzFormat, seeds: [FuzzSeed]) {
        self.name = name
        self.format = format
        self.seeds = seeds
    }
}

/// A case whose outcome breaks the rules: an error that does not name the file, or a case that took too long.
/// (A trap cannot be reported from inside the process; `fuzz-files` runs each batch in a child for that.)
public struct FuzzFinding: Codable, Equatable, CustomStringConvertible {
    public let target: String
    public let caseIndex: Int
    public let seedLabel: String
    public let mutation: String
    public let problem: String
    /// Where the input is kept, when it was saved.
    public var inputPath: String?

    public init(target: String, caseIndex: Int, seedLabel: String, mutation: String, problem: String, inputPath: String? = nil) {
        self.target = target
        self.caseIndex = caseIndex
        self.seedLabel = seedLabel
        self.mutation = mutation
        self.problem = problem
        self.inputPath = inputPath
    }

    public var description: String {
        "\(target) case \(caseIndex) (seed \(seedLabel); \(mutation)): \(problem)" + (inputPath.map { " [input: \($0)]" } ?? "")
    }
}

public struct FuzzOutcome: Codable, Equatable {
    public var target: String
    public var cases = 0
    public var accepted = 0
    public var rejected = 0
    public var findings: [FuzzFinding] = []
    public var seconds = 0.0
    public var slowestCaseSeconds = 0.0

    public init(target: String) { self.target = target }

    public mutating func merge(_ other: FuzzOutcome) {
        cases += other.cases
        accepted += other.accepted
        rejected += other.rejected
        findings += other.findings
        seconds += other.seconds
        slowestCaseSeconds = max(slowestCaseSeconds, other.slowestCaseSeconds)
    }
}

/// Runs the cases of a target: each case's mutated bytes are written to the file its parser expects, then parsed.
public struct FuzzRunner {
    public let workDirectory: URL
    /// A case slower than this is reported (a parser must fail fast, not loop).
    public var slowCaseSeconds = 10.0

    public init(workDirectory: URL) {
        self.workDirectory = workDirectory
    }

    /// The mutated bytes and the mutation's description of case `index` (deterministic in seed, target and index).
    public static func caseInput(_ target: FileParserTarget, seed: UInt64, index: Int) -> (seed: Int, bytes: [UInt8], mutation: String) {
        var random = FuzzRandom(seed: seed, stream: target.name, index: index)
        let seedIndex = random.below(target.seeds.count)
        let corpus = target.seeds.map(\.bytes)
        let (bytes, mutation) = Mutator(format: target.format).mutate(target.seeds[seedIndex].bytes, corpus: corpus,
                                                                      random: &random)
        return (seedIndex, bytes, mutation)
    }

    /// The path the case file of seed `seedIndex` is written to.
    public func casePath(_ target: FileParserTarget, seedIndex: Int) -> URL {
        workDirectory.appendingPathComponent(target.name).appendingPathComponent("seed\(seedIndex)")
            .appendingPathComponent(target.seeds[seedIndex].fileName)
    }

    /// What is about to be parsed: case index, the file holding its input, the seed's label, the mutation, and how
    /// many cases of this run were accepted and rejected before it.
    public typealias CaseNote = (index: Int, path: String, seedLabel: String, mutation: String, accepted: Int, rejected: Int)

    /// Runs cases `range`. `beforeParse` is called once a case's input is on disk and before it is parsed, and
    /// `onFinding` as soon as a finding is made (a crash-reporting parent reads both back).
    public func run(_ target: FileParserTarget, seed: UInt64, cases range: Range<Int>,
                    beforeParse: ((CaseNote) -> Void)? = nil, onFinding: ((FuzzFinding) -> Void)? = nil) throws -> FuzzOutcome {
        let fm = FileManager.default
        for (i, s) in target.seeds.enumerated() {
            let folder = casePath(target, seedIndex: i).deletingLastPathComponent()
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
            for (name, bytes) in s.companions {
                try Data(bytes).write(to: folder.appendingPathComponent(name))
            }
        }
        var outcome = FuzzOutcome(target: target.name)
        let start = Date()
        for index in range {
            let input = Self.caseInput(target, seed: seed, index: index)
            let url = casePath(target, seedIndex: input.seed)
            try Data(input.bytes).write(to: url)
            beforeParse?((index, url.path, target.seeds[input.seed].label, input.mutation, outcome.accepted, outcome.rejected))
            let caseStart = Date()
            var problem: String?
            do {
                try target.seeds[input.seed].parse(url)
                outcome.accepted += 1
            } catch {
                outcome.rejected += 1
                let message = String(describing: error)
                if !message.contains(url.path) { problem = "error does not name the file: \(message.prefix(400))" }
            }
            let elapsed = Date().timeIntervalSince(caseStart)
            outcome.slowestCaseSeconds = max(outcome.slowestCaseSeconds, elapsed)
            if elapsed > slowCaseSeconds { problem = (problem.map { $0 + "; " } ?? "") + "took \(elapsed) s" }
            if let problem {
                let finding = FuzzFinding(target: target.name, caseIndex: index, seedLabel: target.seeds[input.seed].label,
                                          mutation: input.mutation, problem: problem)
                outcome.findings.append(finding)
                onFinding?(finding)
            }
            outcome.cases += 1
        }
        outcome.seconds = Date().timeIntervalSince(start)
        return outcome
    }
}
