import Pipeline
import Foundation
import HTTPServer

/// What the readiness check sends and what it requires.
public struct ReadinessOptions {
    /// `http://host:port[/prefix]`; the routes are appended to the prefix.
    public var url: String
    /// The batch, sent one after another; the stress clients cycle through the same requests.
    public var requests: [ReadinessRequest]
    /// Concurrent clients of the stress phase; 0 skips it.
    public var stressClients: Int
    public var stressSeconds: Double
    /// Upper bound on stress requests (all clients together), so the phase ends even against a very fast daemon.
    public var maxStressRequests: Int
    /// p99 latency of successful requests must be under this (seconds).
    public var budgetSeconds: Double
    public var requiredSuccessRate: Double
    /// Per request (connect, send, receive).
    public var requestTimeout: Double
    /// Called with one line per batch request and at phase boundaries.
    public var progress: ((String) -> Void)?

    public init(url: String, requests: [ReadinessRequest], stressClients: Int = 4, stressSeconds: Double = 20,
                maxStressRequests: Int = 2000, budgetSeconds: Double = 30, requiredSuccessRate: Double = 0.95,
                requestTimeout: Double = 120, progress: ((String) -> Void)? = nil) {
        self.url = url
        self.requests = requests
        self.stressClients = stressClients
        self.stressSeconds = stressSeconds
        self.maxStressRequests = maxStressRequests
        self.budgetSeconds = budgetSeconds
        self.requiredSuccessRate = requiredSuccessRate
        self.requestTimeout = requestTimeout
        self.progress = progress
    }
}

/// Proves a running daemon ready: health, a batch through both /generate routes, a stress phase of concurrent
/// clients, health again; then a verdict. Ready when the daemon was healthy before and after, at least
/// `requiredSuccessRate` of the requests succeeded (503s shed under stress are not counted), the p99 latency of
/// successful requests is under the budget, and no request got a 5xx other than a 503 under stress.
public enum ReadinessCheck {
    public static func run(_ options: ReadinessOptions) throws -> ReadinessReport {
        guard !options.requests.isEmpty else { throw BenchError.invalidArgument("the readiness batch has no request") }
        guard options.stressClients >= 0, options.stressClients <= 256 else {
            throw BenchError.invalidArgument("stress clients must be in 0...256, got \(options.stressClients)")
        }
        guard options.stressSeconds.isFinite, options.stressSeconds >= 0, options.stressSeconds <= 3600 else {
            throw BenchError.invalidArgument("stress seconds must be in 0...3600, got \(options.stressSeconds)")
        }
        guard options.budgetSeconds.isFinite, options.budgetSeconds > 0 else {
            throw BenchError.invalidArgument("the budget must be a positive number of seconds")
        }
        guard options.requestTimeout.isFinite, options.requestTimeout > 0 else {
            throw BenchError.invalidArgument("the request timeout must be a positive number of seconds")
        }
        guard (0...1).contains(options.requiredSuccessRate) else {
            throw BenchError.invalidArgument("the required success rate must be in 0...1")
        }
        let target: LoadTest.Target
        do {
            target = try LoadTest.parse(url: options.url)
        } catch {
            throw BenchError.invalidArgument("bad daemon URL '\(options.url)': \(error)")
        }
        let prefix = target.path.hasSuffix("/") ? String(target.path.dropLast()) : target.path
        let endpoint = Endpoint(host: target.host, port: target.port, prefix: prefix, timeout: options.requestTimeout)

        var notes: [String] = []
        let before = endpoint.health()
        options.progress?("health: \(before.text)")
        if before.state == "smoke" || before.realGeneration == false {
            notes.append("the daemon runs the smoke pipeline (random weights): this proves the service, not the quality "
                         + "or the speed of real generation")
        }
        var batch: PhaseSummary? = nil
        var stress: PhaseSummary? = nil
        var samples: [ReadinessSample] = []
        if before.ok {
            let batchStart = now()
            let batchSamples = runBatch(options, endpoint: endpoint)
            batch = PhaseSummary(name: "batch", samples: batchSamples, wallSeconds: now() - batchStart)
            samples += batchSamples
            if options.stressClients > 0 && options.stressSeconds > 0 {
                options.progress?("stress: \(options.stressClients) clients for \(options.stressSeconds) s")
                let stressStart = now()
                let stressSamples = runStress(options, endpoint: endpoint)
                stress = PhaseSummary(name: "stress", samples: stressSamples, wallSeconds: now() - stressStart)
                samples += stressSamples
            } else {
                notes.append("stress phase skipped (0 clients or 0 seconds)")
            }
        }
        let after: HealthProbe? = before.ok ? endpoint.health() : nil
        if let after { options.progress?("health after: \(after.text)") }

        return verdict(options: options, before: before, after: after, batch: batch, stress: stress, samples: samples,
                       notes: notes)
    }

    static func verdict(options: ReadinessOptions, before: HealthProbe, after: HealthProbe?, batch: PhaseSummary?,
                        stress: PhaseSummary?, samples: [ReadinessSample], notes: [String]) -> ReadinessReport {
        let succeeded = samples.filter { $0.outcome == .success || $0.outcome == .gated }
        let counted = samples.filter { $0.outcome != .shed }.count
        let rate: Double? = counted > 0 ? Double(succeeded.count) / Double(counted) : nil
        let latency = SampleSummary(succeeded.map(\.seconds))
        let shed = samples.count - counted

        var criteria: [ReadinessCriterion] = []
        criteria.append(ReadinessCriterion(name: "healthy before", passed: before.ok, detail: before.text))
        if let rate {
            criteria.append(ReadinessCriterion(
                name: String(format: "success >= %.0f%%", options.requiredSuccessRate * 100),
                passed: rate >= options.requiredSuccessRate,
                detail: String(format: "%.1f%% (%d of %d", rate * 100, succeeded.count, counted)
                    + (shed > 0 ? "; \(shed) shed with 503 under stress, not counted)" : ")")))
        } else {
            criteria.append(ReadinessCriterion(name: String(format: "success >= %.0f%%", options.requiredSuccessRate * 100),
                                               passed: false, detail: before.ok ? "no request was accepted" : "not run"))
        }
        if let latency {
            criteria.append(ReadinessCriterion(
                name: String(format: "p99 latency < %g s", options.budgetSeconds), passed: latency.p99 < options.budgetSeconds,
                detail: String(format: "p99 %.3f s (p50 %.3f s, p90 %.3f s, max %.3f s)", latency.p99, latency.median,
                               latency.p90, latency.max)))
        } else {
            criteria.append(ReadinessCriterion(name: String(format: "p99 latency < %g s", options.budgetSeconds),
                                               passed: false, detail: "no successful request"))
        }
        let serverErrors = samples.filter { $0.status >= 500 && !($0.status == 503 && $0.phase == "stress") }
        var byStatus: [Int: Int] = [:]
        for sample in serverErrors { byStatus[sample.status, default: 0] += 1 }
        criteria.append(ReadinessCriterion(
            name: "no 5xx (503 only under stress)", passed: before.ok && serverErrors.isEmpty,
            detail: !before.ok ? "not run" : serverErrors.isEmpty ? "none"
                : byStatus.sorted { $0.key < $1.key }.map { "\($0.value) x \($0.key)" }.joined(separator: ", ")))
        criteria.append(ReadinessCriterion(name: "alive afterwards", passed: after?.ok ?? false,
                                           detail: after?.text ?? "not checked (unhealthy before)"))

        let bodies = succeeded.filter { $0.outcome == .success }
        return ReadinessReport(
            url: options.url, date: BenchResult.iso8601Now(), budgetSeconds: options.budgetSeconds,
            requiredSuccessRate: options.requiredSuccessRate, stressClients: options.stressClients,
            stressSeconds: options.stressSeconds, healthBefore: before, batch: batch, stress: stress, healthAfter: after,
            successRate: rate, latency: latency, bodyBytes: SampleSummary(bodies.map { Double($0.bytes) }),
            gaussians: SampleSummary(bodies.compactMap { $0.gaussians.map(Double.init) }),
            gateRejections: samples.filter { $0.outcome == .gated }.count, criteria: criteria,
            ready: criteria.allSatisfy(\.passed), notes: notes)
    }

    // MARK: - Phases

    static func runBatch(_ options: ReadinessOptions, endpoint: Endpoint) -> [ReadinessSample] {
        var connection = Connection(endpoint: endpoint)
        var samples: [ReadinessSample] = []
        for (index, request) in options.requests.enumerated() {
            let sample = connection.send(request, phase: "batch")
            samples.append(sample)
            options.progress?(String(format: "batch %d/%d %@ '%@': %@ in %.2f s", index + 1, options.requests.count,
                                     request.kind.rawValue, String(request.label.prefix(40)),
                                     sample.status == 0 ? "no response" : "HTTP \(sample.status)", sample.seconds)
                + (sample.problem.map { " (\($0))" } ?? ""))
        }
        return samples
    }

    static func runStress(_ options: ReadinessOptions, endpoint: Endpoint) -> [ReadinessSample] {
        let collected = SampleCollector(limit: options.maxStressRequests)
        let deadline = now() + options.stressSeconds
        let group = DispatchGroup()
        for client in 0..<options.stressClients {
            group.enter()
            let thread = Thread {
                var connection = Connection(endpoint: endpoint)
                var next = client % options.requests.count
                var local: [ReadinessSample] = []
                while now() < deadline, collected.reserve() {
                    local.append(connection.send(options.requests[next], phase: "stress"))
                    next = (next + 1) % options.requests.count
                }
                collected.append(local)
                group.leave()
            }
            thread.name = "readiness-\(client)"
            thread.start()
        }
        group.wait()
        return collected.samples
    }

    /// Stress samples from every client, and the shared request allowance.
    final class SampleCollector: @unchecked Sendable {
        private let lock = NSLock()
        private var remaining: Int
        private var gathered: [ReadinessSample] = []

        init(limit: Int) { remaining = max(0, limit) }

        /// Takes one request from the allowance; false when it is spent.
        func reserve() -> Bool {
            lock.lock()
            defer { lock.unlock() }
            guard remaining > 0 else { return false }
            remaining -= 1
            return true
        }

        func append(_ samples: [ReadinessSample]) {
            lock.lock()
            gathered += samples
            lock.unlock()
        }

        var samples: [ReadinessSample] {
            lock.lock()
            defer { lock.unlock() }
            return gathered
        }
    }

    // MARK: - HTTP

    struct Endpoint {
        var host: String
        var port: Int
        var prefix: String
        var timeout: Double

        func health() -> HealthProbe {
            let start = now()
            do {
                let client = try HTTPClient(host: host, port: port, timeout: timeout)
                let response = try client.request(path: prefix + "/health", headers: [("Connection", "close")])
                let json = response.json
                return HealthProbe(status: response.status, seconds: now() - start, state: json?["status"] as? String,
                                   pipeline: json?["pipeline"] as? String, realGeneration: json?["real_generation"] as? Bool,
                                   error: nil)
            } catch {
                return HealthProbe(status: 0, seconds: now() - start, state: nil, pipeline: nil, realGeneration: nil,
                                   error: "\(error)")
            }
        }
    }

    /// A keep-alive connection that reconnects after an error or a `Connection: close`.
    struct Connection {
        let endpoint: Endpoint
        var client: HTTPClient?

        init(endpoint: Endpoint) { self.endpoint = endpoint }

        mutating func send(_ request: ReadinessRequest, phase: String) -> ReadinessSample {
            let start = now()
            do {
                if client == nil { client = try HTTPClient(host: endpoint.host, port: endpoint.port, timeout: endpoint.timeout) }
                let response = try client!.request(method: "POST", path: endpoint.prefix + request.route,
                                                   headers: [("Content-Type", request.contentType)], body: request.body)
                let seconds = now() - start
                if response.headers.tokens("Connection").contains("close") { client = nil }
                return classify(response, request: request, phase: phase, seconds: seconds)
            } catch {
                client = nil
                let kind = (error as? HTTPClientError)?.kind ?? "error"
                return ReadinessSample(phase: phase, kind: request.kind, status: 0, seconds: now() - start, bytes: 0,
                                       gaussians: nil, outcome: .failure, problem: "no response (\(kind))")
            }
        }
    }

    static func classify(_ response: HTTPClientResponse, request: ReadinessRequest, phase: String,
                         seconds: Double) -> ReadinessSample {
        let gated = response.headers["X-Validation-Failed"]?.lowercased() == "true"
        let gaussians = response.headers["X-Gaussians"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        var outcome = ReadinessSample.Outcome.failure
        var problem: String? = nil
        switch response.status {
        case 200..<300:
            if response.body.isEmpty {
                if gated { outcome = .gated } else { problem = "empty body without X-Validation-Failed" }
            } else if response.body.starts(with: Data("ply\n".utf8)) || response.body.starts(with: Data("ply\r\n".utf8)) {
                outcome = .success
            } else {
                problem = "body is not a PLY"
            }
        case 503 where phase == "stress":
            outcome = .shed
        default:
            let message = response.json?["error"] as? String ?? String(response.text.prefix(120))
            problem = "HTTP \(response.status)" + (message.isEmpty ? "" : ": \(message.prefix(120))")
        }
        return ReadinessSample(phase: phase, kind: request.kind, status: response.status, seconds: seconds,
                               bytes: response.body.count, gaussians: gaussians, outcome: outcome, problem: problem)
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
