import Foundation

/// What a load test measured. Latencies are seconds over requests that got a complete response.
public struct LoadReport: Sendable, CustomStringConvertible {
    /// Requests that got a complete HTTP response (any status).
    public var completed: Int
    /// Responses with a 2xx status.
    public var succeeded: Int
    /// Wall-clock seconds from start until the last request finished.
    public var elapsed: Double
    public var requestsPerSecond: Double
    public var latencyP50: Double
    public var latencyP90: Double
    public var latencyP99: Double
    public var latencyMax: Double
    /// Failures by kind: `http 503`, `connect`, `timeout`, `closed`, `io`, `malformed`.
    public var errors: [String: Int]
    public var bytesReceived: Int
    /// Responses whose `X-Request-Id` or `X-Seed` did not match their request (`LoadRequest`
    /// expectations), by kind: `request-id`, `seed`. A correct server has none.
    public var mismatches: [String: Int] = [:]
    /// Server process samples (`serverPID`), oldest first.
    public var serverSamples: [ProcessSample] = []

    public var description: String {
        func ms(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1000) }
        var text = String(format: "%d requests in %.2f s: %.1f req/s, %d ok\n", completed, elapsed, requestsPerSecond,
                          succeeded)
        text += "latency p50 \(ms(latencyP50))  p90 \(ms(latencyP90))  p99 \(ms(latencyP99))  max \(ms(latencyMax))\n"
        text += "received \(bytesReceived) bytes"
        if !errors.isEmpty {
            text += "\nerrors: " + errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        if !mismatches.isEmpty {
            text += "\nMISMATCHED ANSWERS: "
                + mismatches.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        if let first = serverSamples.first, let last = serverSamples.last {
            let maxFDs = serverSamples.map(\.openFDs).max() ?? 0
            text += String(format: "\nserver RSS %.1f -> %.1f MiB (slope %.3f MiB/min over %d samples), fds %d -> %d (max %d)",
                           Double(first.rssBytes) / 1_048_576, Double(last.rssBytes) / 1_048_576,
                           ProcessSample.rssSlopeMiBPerMinute(serverSamples), serverSamples.count,
                           first.openFDs, last.openFDs, maxFDs)
        }
        return text
    }
}

/// A closed-loop load generator: `concurrency` threads, each with its own keep-alive connection,
/// send the same request back to back for `duration` seconds.
public enum LoadTest {
    public struct Target: Equatable, Sendable {
        public var host: String
        public var port: Int
        public var path: String
    }

    /// `url` is `http://host[:port][/path]`; `path`, when given, replaces the URL's path.
    public static func run(url: String, path: String? = nil, method: String = "GET", body: Data = Data(),
                           contentType: String? = nil, headers: [(String, String)] = [], concurrency: Int,
                           duration: TimeInterval, requestTimeout: TimeInterval = 120) throws -> LoadReport {
        let requestHeaders = headers + (contentType.map { [("Content-Type", $0)] } ?? [])
        let fixed = LoadRequest(method: method, headers: requestHeaders, body: body)
        return try run(url: url, path: path, concurrency: concurrency, duration: duration, requestTimeout: requestTimeout,
                       makeRequest: { _, _ in fixed })
    }

    /// Like `run(url:...)`, with a request built per client and sequence number (so each can carry
    /// its own `X-Request-Id` and seed, checked against the answer). With `serverPID`, the
    /// server's RSS and open descriptors are sampled every `sampleInterval` seconds (Linux /proc).
    public static func run(url: String, path: String? = nil, concurrency: Int, duration: TimeInterval,
                           requestTimeout: TimeInterval = 120, serverPID: Int32? = nil, sampleInterval: TimeInterval = 5,
                           makeRequest: @escaping @Sendable (_ client: Int, _ sequence: Int) -> LoadRequest) throws -> LoadReport {
        var parsed = try parse(url: url)
        if let path { parsed.path = path }
        let target = parsed
        let sampler = serverPID.map { ProcessSampler(pid: $0, interval: sampleInterval) }
        sampler?.start()

        let results = Results()
        let started = uptimeNanoseconds()
        let deadline = started + nanoseconds(duration)
        let group = DispatchGroup()

        for index in 0..<max(1, concurrency) {
            group.enter()
            let thread = Thread {
                var local = Results.Batch()
                var client: HTTPClient?
                var sequence = 0
                while uptimeNanoseconds() < deadline {
                    let request = makeRequest(index, sequence)
                    sequence += 1
                    do {
                        if client == nil { client = try HTTPClient(host: target.host, port: target.port, timeout: requestTimeout) }
                        let begin = uptimeNanoseconds()
                        let response = try client!.request(method: request.method, path: target.path,
                                                            headers: request.headers, body: request.body)
                        local.latencies.append(Double(uptimeNanoseconds() - begin) / 1e9)
                        local.bytes += response.body.count
                        if (200..<300).contains(response.status) {
                            local.succeeded += 1
                        } else {
                            local.errors["http \(response.status)", default: 0] += 1
                        }
                        for kind in request.mismatches(in: response) { local.mismatches[kind, default: 0] += 1 }
                        if response.headers.tokens("Connection").contains("close") { client = nil }
                    } catch let error as HTTPClientError {
                        local.errors[error.kind, default: 0] += 1
                        client = nil
                        if case .connect = error { usleep(10_000) }
                    } catch {
                        local.errors["other", default: 0] += 1
                        client = nil
                    }
                }
                results.merge(local)
                group.leave()
            }
            thread.name = "loadtest-\(index)"
            thread.start()
        }
        group.wait()
        let samples = sampler?.stop() ?? []

        let total = results.total()
        var latencies = total.latencies
        let (errors, succeeded, bytes) = (total.errors, total.succeeded, total.bytes)
        let elapsed = Double(uptimeNanoseconds() - started) / 1e9
        latencies.sort()
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            let rank = Int((p / 100 * Double(latencies.count)).rounded(.up)) - 1
            return latencies[min(max(rank, 0), latencies.count - 1)]
        }
        return LoadReport(completed: latencies.count, succeeded: succeeded, elapsed: elapsed,
                          requestsPerSecond: Double(latencies.count) / max(elapsed, 1e-9),
                          latencyP50: percentile(50), latencyP90: percentile(90), latencyP99: percentile(99),
                          latencyMax: latencies.last ?? 0, errors: errors, bytesReceived: bytes,
                          mismatches: total.mismatches, serverSamples: samples)
    }

    private final class Results: @unchecked Sendable {
        struct Batch {
            var latencies: [Double] = []
            var errors: [String: Int] = [:]
            var succeeded = 0
            var bytes = 0
            var mismatches: [String: Int] = [:]
        }

        private let lock = NSLock()
        private var batch = Batch()

        func merge(_ other: Batch) {
            lock.lock()
            batch.latencies += other.latencies
            for (kind, count) in other.errors { batch.errors[kind, default: 0] += count }
            for (kind, count) in other.mismatches { batch.mismatches[kind, default: 0] += count }
            batch.succeeded += other.succeeded
            batch.bytes += other.bytes
            lock.unlock()
        }

        func total() -> Batch {
            lock.lock()
            defer { lock.unlock() }
            return batch
        }
    }

    /// Splits `http://host[:port][/path]` (IPv6 hosts in brackets). Only plain http is supported.
    public static func parse(url: String) throws -> Target {
        guard url.lowercased().hasPrefix("http://") else {
            throw HTTPClientError.connect("only http:// URLs are supported, got '\(url)'")
        }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        var host = String(authority)
        var port = 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else { throw HTTPClientError.connect("bad port in '\(url)'") }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let value = Int(authority[authority.index(after: colon)...]) else {
                throw HTTPClientError.connect("bad port in '\(url)'")
            }
            port = value
        }
        guard !host.isEmpty else { throw HTTPClientError.connect("no host in '\(url)'") }
        return Target(host: host, port: port, path: path.isEmpty ? "/" : String(path))
    }
}

/// One load-test request and what its answer must echo.
public struct LoadRequest: Sendable {
    public var method: String
    public var headers: [(String, String)]
    public var body: Data
    /// The `X-Request-Id` the answer must carry (send it in `headers` too).
    public var expectedRequestID: String?
    /// The `X-Seed` a successful answer must carry.
    public var expectedSeed: Int?

    public init(method: String, headers: [(String, String)], body: Data, expectedRequestID: String? = nil,
                expectedSeed: Int? = nil) {
        self.method = method
        self.headers = headers
        self.body = body
        self.expectedRequestID = expectedRequestID
        self.expectedSeed = expectedSeed
    }

    /// Kinds of mismatch between this request and `response` (empty when it is its answer).
    func mismatches(in response: HTTPClientResponse) -> [String] {
        var kinds: [String] = []
        if let expectedRequestID, response.headers["X-Request-Id"] != expectedRequestID { kinds.append("request-id") }
        if let expectedSeed, (200..<300).contains(response.status),
           response.headers["X-Seed"].flatMap({ Int($0) }) != expectedSeed {
            kinds.append("seed")
        }
        return kinds
    }
}
