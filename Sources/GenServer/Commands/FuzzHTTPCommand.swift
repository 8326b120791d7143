import ArgumentParser
import Foundation
import HTTPFuzz
import HTTPServer

/// Network fuzzing of a running daemon on loopback (HTTPFuzz): malformed request lines, headers
/// and bodies, resets mid-request and slow sends, each on its own connection. Fails on a 2xx for
/// a malformed request, a case with no answer and no close within `--case-timeout`, a dead
/// server, or (with `--server-pid`) descriptors or RSS that do not return to their baseline.
struct FuzzHTTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz-http",
        abstract: "Fuzz a running daemon's HTTP front end on loopback; exit 1 on a wrong 2xx, a hang, a dead server or a leak.")

    @Argument(help: "Daemon URL on loopback, e.g. http://127.0.0.1:10006.") var url: String
    @Option(help: "Number of cases.") var cases = 100_000
    @Option(help: "Seed of the case generator (case N of a seed is always the same request).") var seed: UInt64 = 1
    @Option(name: .customLong("first-case"), help: "Index of the first case (to replay one: --first-case N --cases 1).")
    var firstCase = 0
    @Option(help: "Connections in flight at once.") var concurrency = 8
    @Option(name: .customLong("case-timeout"), help: "Seconds a case may take to be answered or closed.")
    var caseTimeout = 10.0
    @Option(name: .customLong("time-limit"), help: "Stop starting cases after this many seconds.") var timeLimit = 3600.0
    @Option(name: .customLong("server-pid"), help: "The daemon's process id: checks it stays alive and its fds/RSS return to baseline.")
    var serverPID: Int32?
    @Option(name: .customLong("rss-tolerance-mib"), help: "RSS growth over the baseline still accepted at the end (MiB).")
    var rssToleranceMiB = 64

    func validate() throws {
        guard cases >= 1, concurrency >= 1, caseTimeout > 0 else {
            throw ValidationError("--cases, --concurrency and --case-timeout must be positive")
        }
        let target = try LoadTest.parse(url: url)
        guard ["127.0.0.1", "::1", "localhost"].contains(target.host) else {
            throw ValidationError("fuzz-http only talks to loopback (127.0.0.1, ::1, localhost), not '\(target.host)'")
        }
    }

    func run() throws {
        let target = try LoadTest.parse(url: url)
        let runner = FuzzRunner(host: target.host, port: target.port, generator: FuzzCaseGenerator(seed: seed),
                                concurrency: concurrency, caseTimeout: caseTimeout, serverPID: serverPID,
                                rssTolerance: rssToleranceMiB << 20)
        print("fuzz-http: cases \(firstCase)..<\(firstCase + cases) of seed \(seed) against \(url), \(concurrency) at a time")
        let report = runner.run(first: firstCase, count: cases, timeLimit: timeLimit)
        print(report)
        if !report.passed { throw ExitCode.failure }
    }
}
