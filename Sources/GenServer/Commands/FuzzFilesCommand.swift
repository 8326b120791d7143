import ArgumentParser
import Foundation
import FuzzSupport

/// `gen3d fuzz-files`: every file parser of the daemon against mutated copies of the repository's valid files.
/// Each parser's cases run in a child process (this executable with `--child`), so a trap is seen by the parent,
/// reported with the case index, the mutation and a copy of the input, and the run resumes at the next case.
struct FuzzFilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz-files",
        abstract: "Fuzz the file parsers (safetensors, PLY, PNG, JPEG, JSON configs, tokenizers, fixture cases, .pth).")

    @Option(help: "Cases per parser.") var cases = 10_000
    @Option(help: "Seed of the deterministic mutation stream.") var seed: UInt64 = 1
    @Option(help: "Parsers to fuzz, comma-separated (default: all): \(FileParserTargets.names.joined(separator: ", ")).")
    var parser: String?
    @Option(help: "Package folder holding the seed files (Tests/, assets/; shared fixtures in ../shared/fixtures).")
    var root = FileManager.default.currentDirectoryPath
    @Option(help: "Scratch folder for case files, progress and saved crash inputs (default: a new temporary folder).")
    var workDir: String?
    @Option(help: "Stop after this many seconds per parser (the cases not run are reported).") var timeLimit = 1800.0

    @Flag(help: .hidden) var child = false
    @Option(help: .hidden) var from = 0

    func run() throws {
        let names = parser.map { $0.split(separator: ",").map(String.init) } ?? FileParserTargets.names
        let rootURL = URL(fileURLWithPath: root)
        let work = URL(fileURLWithPath: workDir ?? NSTemporaryDirectory() + "gen3d-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        if child {
            try runChild(name: names[0], root: rootURL, work: work)
            return
        }
        print("fuzz-files: \(cases) cases per parser, seed \(seed), work folder \(work.path)")
        var total = 0
        var findings: [FuzzFinding] = []
        let start = Date()
        for name in names {
            _ = try FileParserTargets.target(named: name, root: rootURL)   // fails here, in the parent, for a bad name
            let outcome = try runParent(name: name, work: work)
            total += outcome.cases
            findings += outcome.findings
            print(name.padding(toLength: 13, withPad: " ", startingAt: 0)
                  + String(format: " %6d cases  %6d accepted  %6d rejected  %3d findings  %7.1f s  (slowest case %.3f s)",
                         outcome.cases, outcome.accepted, outcome.rejected, outcome.findings.count,
                         outcome.seconds, outcome.slowestCaseSeconds))
            for finding in outcome.findings.prefix(20) { print("  FINDING \(finding)") }
        }
        print(String(format: "total: %d cases in %.1f s, %d findings", total, Date().timeIntervalSince(start), findings.count))
        if !findings.isEmpty { throw ExitCode(1) }
    }

    private var progressName: String { "progress" }

    /// Runs `name`'s cases in children until all are done; a child killed by a signal becomes a finding.
    private func runParent(name: String, work: URL) throws -> FuzzOutcome {
        var outcome = FuzzOutcome(target: name)
        var next = 0
        let deadline = Date().addingTimeInterval(timeLimit)
        let progress = work.appendingPathComponent("\(name).\(progressName)")
        let result = work.appendingPathComponent("\(name).result.json")
        while next < cases, Date() < deadline {
            try? FileManager.default.removeItem(at: progress)
            try? FileManager.default.removeItem(at: result)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
            process.arguments = ["fuzz-files", "--child", "--parser", name, "--cases", "\(cases)", "--from", "\(next)",
                                 "--seed", "\(seed)", "--root", root, "--work-dir", work.path,
                                 "--time-limit", "\(deadline.timeIntervalSinceNow)"]
            try process.run()
            process.waitUntilExit()
            if let data = try? Data(contentsOf: result), let part = try? JSONDecoder().decode(FuzzOutcome.self, from: data) {
                outcome.merge(part)
                next += part.cases
            }
            if process.terminationReason == .uncaughtSignal || process.terminationStatus != 0 {
                // The progress file names the case that was being parsed; its input is still on disk.
                let line = (try? String(contentsOf: progress, encoding: .utf8)) ?? ""
                let parts = line.split(separator: "\t", maxSplits: 3).map(String.init)
                guard parts.count == 4, let index = Int(parts[0]) else {
                    throw ValidationError("the \(name) child exited (status \(process.terminationStatus)) before its first case")
                }
                let saved = work.appendingPathComponent("crash-\(name)-\(index)-" + URL(fileURLWithPath: parts[1]).lastPathComponent)
                try? FileManager.default.removeItem(at: saved)
                try? FileManager.default.copyItem(at: URL(fileURLWithPath: parts[1]), to: saved)
                let how = process.terminationReason == .uncaughtSignal
                    ? "killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
                outcome.findings.append(FuzzFinding(target: name, caseIndex: index, seedLabel: parts[2], mutation: parts[3],
                                                    problem: "the parser crashed the process (\(how))", inputPath: saved.path))
                outcome.cases += 1
                next = index + 1
            }
        }
        return outcome
    }

    /// The child: runs cases from `from` on, writing the case about to be parsed to the progress file first.
    private func runChild(name: String, root: URL, work: URL) throws {
        let target = try FileParserTargets.target(named: name, root: root)
        let runner = FuzzRunner(workDirectory: work)
        let progress = work.appendingPathComponent("\(name).\(progressName)")
        let deadline = Date().addingTimeInterval(timeLimit)
        var outcome = FuzzOutcome(target: name)
        var index = from
        // Batches of 100 so the result file is current when the deadline stops the child.
        while index < cases, Date() < deadline {
            let end = min(cases, index + 100)
            let part = try runner.run(target, seed: seed, cases: index..<end) { note in
                let line = "\(note.index)\t\(note.path)\t\(note.seedLabel)\t\(note.mutation)"
                try? line.write(to: progress, atomically: false, encoding: .utf8)
            }
            outcome.merge(part)
            try JSONEncoder().encode(outcome).write(to: work.appendingPathComponent("\(name).result.json"))
            index = end
        }
    }
}
