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
    @Option(help: "Stop a parser after this many seconds (the cases not run are reported).") var timeLimit = 1800.0

    @Flag(help: .hidden) var child = false
    @Option(help: .hidden) var from = 0

    func run() throws {
        let names = parser.map { $0.split(separator: ",").map(String.init) } ?? FileParserTargets.names
        let rootURL = URL(fileURLWithPath: root)
        let work = URL(fileURLWithPath: workDir ?? NSTemporaryDirectory() + "gen3d-fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        if child {
            try ChildRun(name: names[0], root: rootURL, work: work, seed: seed, from: from, cases: cases,
                         timeLimit: timeLimit).run()
            return
        }
        print("fuzz-files: \(cases) cases per parser, seed \(seed), work folder \(work.path)")
        var total = 0
        var findings: [FuzzFinding] = []
        let start = Date()
        for name in names {
            _ = try FileParserTargets.target(named: name, root: rootURL)   // a bad name fails here, in the parent
            let parserStart = Date()
            let outcome = try runParent(name: name, work: work)
            total += outcome.cases
            findings += outcome.findings
            let crashes = outcome.findings.filter { $0.inputPath != nil }.count
            print(name.padding(toLength: 13, withPad: " ", startingAt: 0)
                  + String(format: " %6d cases  %6d accepted  %6d rejected  %4d findings (%d crashes)  %6.1f s  slowest case %.3f s",
                           outcome.cases, outcome.accepted, outcome.rejected, outcome.findings.count, crashes,
                           Date().timeIntervalSince(parserStart), outcome.slowestCaseSeconds))
            if outcome.cases < cases { print("  STOPPED by --time-limit after \(outcome.cases) of \(cases) cases") }
            for finding in outcome.findings.prefix(20) { print("  FINDING \(finding)") }
            if outcome.findings.count > 20 { print("  ... \(outcome.findings.count - 20) more findings") }
        }
        print(String(format: "total: %d cases in %.1f s, %d findings", total, Date().timeIntervalSince(start), findings.count))
        if !findings.isEmpty { throw ExitCode(1) }
    }

    /// Runs `name`'s cases in children until all are done; a child killed by a signal becomes a finding, and the
    /// next child starts after the crashing case.
    private func runParent(name: String, work: URL) throws -> FuzzOutcome {
        let files = ChildFiles(work: work, name: name)
        try? FileManager.default.removeItem(at: files.findings)
        var outcome = FuzzOutcome(target: name)
        var next = 0
        let deadline = Date().addingTimeInterval(timeLimit)
        while next < cases, Date() < deadline {
            try? FileManager.default.removeItem(at: files.progress)
            try? FileManager.default.removeItem(at: files.result)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
            process.arguments = ["fuzz-files", "--child", "--parser", name, "--cases", "\(cases)", "--from", "\(next)",
                                 "--seed", "\(seed)", "--root", root, "--work-dir", work.path,
                                 "--time-limit", "\(max(1, deadline.timeIntervalSinceNow))"]
            try process.run()
            process.waitUntilExit()
            // Whole batches the child finished.
            var done = FuzzOutcome(target: name)
            if let data = try? Data(contentsOf: files.result), let part = try? JSONDecoder().decode(FuzzOutcome.self, from: data) {
                done = part
            }
            outcome.cases += done.cases
            outcome.accepted += done.accepted
            outcome.rejected += done.rejected
            outcome.slowestCaseSeconds = max(outcome.slowestCaseSeconds, done.slowestCaseSeconds)
            next += done.cases
            guard process.terminationReason == .uncaughtSignal || process.terminationStatus != 0 else { continue }
            // The progress line names the case being parsed (its input is still on disk) and counts the cases of its
            // batch that passed before it.
            let line = (try? String(contentsOf: files.progress, encoding: .utf8)) ?? ""
            let parts = line.split(separator: "\t", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 6, let index = Int(parts[0]), let accepted = Int(parts[4]), let rejected = Int(parts[5]) else {
                throw ValidationError("the \(name) child exited (status \(process.terminationStatus)) before its first case")
            }
            let saved = work.appendingPathComponent("crash-\(name)-\(index)-" + URL(fileURLWithPath: parts[1]).lastPathComponent)
            try? FileManager.default.removeItem(at: saved)
            try? FileManager.default.copyItem(at: URL(fileURLWithPath: parts[1]), to: saved)
            let how = process.terminationReason == .uncaughtSignal
                ? "killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
            outcome.findings.append(FuzzFinding(target: name, caseIndex: index, seedLabel: parts[2], mutation: parts[3],
                                                problem: "the parser crashed the process (\(how))", inputPath: saved.path))
            outcome.accepted += accepted
            outcome.rejected += rejected
            outcome.cases += accepted + rejected + 1
            next = index + 1
        }
        // Findings other than crashes, as the children recorded them.
        let recorded = ((try? String(contentsOf: files.findings, encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { try? JSONDecoder().decode(FuzzFinding.self, from: Data($0.utf8)) }
        outcome.findings = (recorded + outcome.findings).sorted { $0.caseIndex < $1.caseIndex }
        return outcome
    }
}

/// The files a parent and its child share for one parser.
struct ChildFiles {
    /// "index \t input path \t seed label \t mutation \t accepted \t rejected" of the case being parsed.
    let progress: URL
    /// The child's totals over its whole batches (JSON `FuzzOutcome`).
    let result: URL
    /// One JSON `FuzzFinding` per line, appended as they are made.
    let findings: URL

    init(work: URL, name: String) {
        progress = work.appendingPathComponent("\(name).progress")
        result = work.appendingPathComponent("\(name).result.json")
        findings = work.appendingPathComponent("\(name).findings.jsonl")
    }
}

/// The child: runs cases from `from` on in batches of 100, writing each case's progress line before parsing it.
struct ChildRun {
    let name: String
    let root: URL
    let work: URL
    let seed: UInt64
    let from: Int
    let cases: Int
    let timeLimit: Double

    func run() throws {
        let target = try FileParserTargets.target(named: name, root: root)
        let runner = FuzzRunner(workDirectory: work)
        let files = ChildFiles(work: work, name: name)
        let deadline = Date().addingTimeInterval(timeLimit)
        let findingsHandle = try appendHandle(files.findings)
        defer { try? findingsHandle.close() }
        var outcome = FuzzOutcome(target: name)
        var index = from
        while index < cases, Date() < deadline {
            let end = min(cases, index + 100)
            var part = try runner.run(target, seed: seed, cases: index..<end, beforeParse: { note in
                let line = "\(note.index)\t\(note.path)\t\(note.seedLabel)\t\(note.mutation)\t\(note.accepted)\t\(note.rejected)"
                try? line.write(to: files.progress, atomically: false, encoding: .utf8)
            }, onFinding: { finding in
                if let data = try? JSONEncoder().encode(finding) { findingsHandle.write(data + Data("\n".utf8)) }
            })
            part.findings = []   // already in the findings file
            outcome.merge(part)
            try JSONEncoder().encode(outcome).write(to: files.result)
            index = end
        }
    }

    private func appendHandle(_ url: URL) throws -> FileHandle {
        if !FileManager.default.fileExists(atPath: url.path) { FileManager.default.createFile(atPath: url.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        return handle
    }
}
