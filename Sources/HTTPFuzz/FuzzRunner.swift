import Foundation
import HTTPServer

/// What a fuzz run found. `failures` empty means the server passed.
public struct FuzzReport: Sendable, CustomStringConvertible {
    public var cases = 0
    public var elapsed = 0.0
    /// Outcomes by class: `2xx`..`5xx`, `closed` (no answer, connection closed), `reset` (cases
    /// that reset the connection themselves).
    public var outcomes: [String: Int] = [:]
    /// Case families by name, with their counts.
    public var families: [String: Int] = [:]
    /// Human-readable failures (a 2xx for a malformed case, a hang, a dead server, leaked
    /// descriptors or memory), at most `FuzzRunner.maxReportedFailures` of them.
    public var failures: [String] = []
    public var failureCount = 0
    public var slowestAnswer = 0.0
    public var baseline: ProcessSample?
    public var final: ProcessSample?
    public var peakRSSBytes = 0
    public var peakFDs = 0

    public var passed: Bool { failureCount == 0 }

    public var description: String {
        var text = String(format: "%d cases in %.1f s (%.0f/s), slowest answer %.2f s\n", cases, elapsed,
                          Double(cases) / max(elapsed, 1e-9), slowestAnswer)
        text += "outcomes: " + outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "\n"
        text += "families: " + families.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        if let baseline, let final {
            text += String(format: "\nserver RSS %.1f MiB -> %.1f MiB (peak %.1f), fds %d -> %d (peak %d)",
                           Double(baseline.rssBytes) / 1_048_576, Double(final.rssBytes) / 1_048_576,
                           Double(peakRSSBytes) / 1_048_576, baseline.openFDs, final.openFDs, peakFDs)
        }
        text += passed ? "\nPASSED" : "\nFAILED: \(failureCount) failure(s)\n" + failures.joined(separator: "\n")
        return text
    }
}

/// Sends fuzz cases to a server on loopback, each on its own connection, `concurrency` at a time,
/// and checks every answer against the case's expectation.
public struct FuzzRunner {
    public static let maxReportedFailures = 20

    public var host: String
    public var port: Int
    public var generator: FuzzCaseGenerator
    public var concurrency: Int
    /// Time a case may take from connect to answer or close.
    public var caseTimeout: TimeInterval
    /// The server's process, sampled for RSS and descriptors (may be this process).
    public var serverPID: Int32?
    /// RSS growth from the baseline that still counts as "returned to baseline" (allocator
    /// caches keep some freed memory).
    public var rssTolerance: Int
    /// Open descriptors above the baseline tolerated at the end (0: every socket must be closed).
    public var fdTolerance: Int
    /// How long to wait at the end for descriptors and memory to settle.
    public var settleTimeout: TimeInterval

    public init(host: String = "127.0.0.1", port: Int, generator: FuzzCaseGenerator, concurrency: Int = 8,
                caseTimeout: TimeInterval = 10, serverPID: Int32? = nil, rssTolerance: Int = 64 << 20,
                fdTolerance: Int = 0, settleTimeout: TimeInterval = 15) {
        self.host = host
        self.port = port
        self.generator = generator
        self.concurrency = concurrency
        self.caseTimeout = caseTimeout
        self.serverPID = serverPID
        self.rssTolerance = rssTolerance
        self.fdTolerance = fdTolerance
        self.settleTimeout = settleTimeout
    }

    /// Runs cases `first..<first+count`, stopping early once `timeLimit` seconds have passed.
    public func run(first: Int = 0, count: Int, timeLimit: TimeInterval = .infinity) -> FuzzReport {
        let state = RunState()
        let baseline = serverPID.flatMap { ProcessSample.read(pid: $0) }
        let started = Date()
        let group = DispatchGroup()
        for worker in 0..<max(1, concurrency) {
            group.enter()
            let thread = Thread {
                var done = 0
                while let index = state.take(first: first, count: count) {
                    if Date().timeIntervalSince(started) > timeLimit {
                        state.stop()
                        break
                    }
                    let fuzzCase = generator.makeCase(index)
                    let outcome = execute(fuzzCase)
                    state.record(fuzzCase, outcome)
                    done += 1
                    if done % 200 == 0, let pid = serverPID {
                        if let sample = ProcessSample.read(pid: pid) {
                            state.observe(sample)
                        } else {
                            state.fail("server process \(pid) is gone")
                            state.stop()
                        }
                    }
                }
                group.leave()
            }
            thread.name = "fuzz-\(worker)"
            thread.start()
        }
        group.wait()

        var report = state.report()
        report.elapsed = Date().timeIntervalSince(started)
        report.baseline = baseline
        checkAlive(into: &report)
        if let pid = serverPID, let baseline { settle(pid: pid, baseline: baseline, into: &report) }
        return report
    }

    // MARK: - One case

    enum Outcome {
        case answered(status: Int, seconds: Double)
        case closed(seconds: Double)
        case reset
        case hung(String)
        case cannotConnect(String)
    }

    func execute(_ fuzzCase: FuzzCase) -> Outcome {
        let begin = Date()
        let client: HTTPClient
        do {
            client = try HTTPClient(host: host, port: port, timeout: caseTimeout)
        } catch {
            return .cannotConnect("\(error)")
        }
        defer { client.close() }
        let bytes = Data(fuzzCase.bytes)
        do {
            switch fuzzCase.delivery {
            case .whole:
                try client.send(bytes)
            case .slow(let pieces, let delay):
                let size = (bytes.count + pieces - 1) / pieces
                var offset = 0
                while offset < bytes.count {
                    let end = min(bytes.count, offset + size)
                    try client.send(bytes.subdata(in: offset..<end))
                    offset = end
                    if offset < bytes.count { usleep(delay) }
                }
            case .resetAfter(let count):
                try? client.send(bytes.prefix(count))
                client.reset()
                return .reset
            }
        } catch HTTPClientError.timeout {
            return .hung("send made no progress for \(caseTimeout) s")
        } catch {
            // The server may answer and stop reading before the whole request is sent (413, 431):
            // its answer is still read below.
        }
        client.shutdownWrite()
        do {
            let response = try client.readResponse()
            return .answered(status: response.status, seconds: Date().timeIntervalSince(begin))
        } catch HTTPClientError.timeout {
            return .hung("no answer and no close within \(caseTimeout) s")
        } catch HTTPClientError.closed, HTTPClientError.io {
            return .closed(seconds: Date().timeIntervalSince(begin))
        } catch {
            return .hung("unreadable answer: \(error)")
        }
    }

    // MARK: - End checks

    private func checkAlive(into report: inout FuzzReport) {
        do {
            let response = try HTTPClient(host: host, port: port, timeout: caseTimeout).request(path: "/health")
            if response.status != 200 { report.addFailure("GET /health after the run answered \(response.status)") }
        } catch {
            report.addFailure("server does not answer after the run: \(error)")
        }
    }

    /// Waits for the server's descriptors and RSS to come back to the baseline.
    private func settle(pid: Int32, baseline: ProcessSample, into report: inout FuzzReport) {
        let deadline = Date(timeIntervalSinceNow: settleTimeout)
        var last = ProcessSample.read(pid: pid)
        while let sample = last, Date() < deadline,
              sample.openFDs > baseline.openFDs + fdTolerance || sample.rssBytes > baseline.rssBytes + rssTolerance {
            usleep(200_000)
            last = ProcessSample.read(pid: pid)
        }
        guard let final = last else {
            report.addFailure("server process \(pid) is gone")
            return
        }
        report.final = final
        report.peakFDs = max(report.peakFDs, final.openFDs)
        report.peakRSSBytes = max(report.peakRSSBytes, final.rssBytes)
        if final.openFDs > baseline.openFDs + fdTolerance {
            report.addFailure("open descriptors did not return to baseline: \(baseline.openFDs) -> \(final.openFDs)")
        }
        if final.rssBytes > baseline.rssBytes + rssTolerance {
            report.addFailure(String(format: "RSS did not return to baseline: %.1f -> %.1f MiB (tolerance %.0f MiB)",
                                     Double(baseline.rssBytes) / 1_048_576, Double(final.rssBytes) / 1_048_576,
                                     Double(rssTolerance) / 1_048_576))
        }
    }
}

extension FuzzReport {
    mutating func addFailure(_ message: String) {
        failureCount += 1
        if failures.count < FuzzRunner.maxReportedFailures { failures.append(message) }
    }
}

/// Shared progress of a run's worker threads.
private final class RunState: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    private var stopped = false
    private var progress = FuzzReport()

    func take(first: Int, count: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped, next < count else { return nil }
        next += 1
        return first + next - 1
    }

    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    func fail(_ message: String) {
        lock.lock()
        progress.addFailure(message)
        lock.unlock()
    }

    func observe(_ sample: ProcessSample) {
        lock.lock()
        progress.peakFDs = max(progress.peakFDs, sample.openFDs)
        progress.peakRSSBytes = max(progress.peakRSSBytes, sample.rssBytes)
        lock.unlock()
    }

    func record(_ fuzzCase: FuzzCase, _ outcome: FuzzRunner.Outcome) {
        lock.lock()
        defer { lock.unlock() }
        progress.cases += 1
        progress.families[String(fuzzCase.kind.prefix { $0 != "/" }), default: 0] += 1
        switch outcome {
        case .answered(let status, let seconds):
            progress.outcomes["\(status / 100)xx", default: 0] += 1
            progress.slowestAnswer = max(progress.slowestAnswer, seconds)
            let success = (200..<300).contains(status)
            if fuzzCase.expectation == .rejected, success {
                progress.addFailure("\(status) for a malformed request: \(fuzzCase.summary)")
            }
            if fuzzCase.expectation == .success, !success {
                progress.addFailure("\(status) for a well-formed request: \(fuzzCase.summary)")
            }
        case .closed(let seconds):
            progress.outcomes["closed", default: 0] += 1
            progress.slowestAnswer = max(progress.slowestAnswer, seconds)
            if fuzzCase.expectation == .success {
                progress.addFailure("no answer to a well-formed request: \(fuzzCase.summary)")
            }
        case .reset:
            progress.outcomes["reset", default: 0] += 1
        case .hung(let why):
            progress.outcomes["hung", default: 0] += 1
            progress.addFailure("\(why): \(fuzzCase.summary)")
        case .cannotConnect(let why):
            progress.outcomes["connect-failed", default: 0] += 1
            progress.addFailure("cannot connect (server dead?): \(why) at \(fuzzCase.summary)")
        }
    }

    func report() -> FuzzReport {
        lock.lock()
        defer { lock.unlock() }
        return progress
    }
}
