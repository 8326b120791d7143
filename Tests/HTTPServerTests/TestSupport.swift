import Foundation
import XCTest
import Pipeline
@testable import HTTPServer
@testable import Service

/// A deterministic stand-in for the pipeline: the body says what the request was, so every
/// response can be matched to its request.
///
/// Text prompts with special meaning: "oom", "unavailable", "crash", "bad option", "gate" (empty
/// body + validation headers), "block" (waits for `release`), "slow" (sleeps 30 ms), "big N" (an
/// N-byte body).
/// Image prompts whose bytes contain "CORRUPT" are rejected as undecodable.
final class FakeService: GenerationService, @unchecked Sendable {
    let release = DispatchSemaphore(value: 0)
    let started = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var seen: [GenerationRequest] = []
    var ready = true

    var requests: [GenerationRequest] {
        lock.lock()
        defer { lock.unlock() }
        return seen
    }

    func health() -> [String: Any] {
        ["status": "ok", "version": "test-1", "device": "cpu", "ready": ready,
         "models": ["trellis": "loaded", "flux": "missing"]]
    }

    func generate(_ request: GenerationRequest, worker: Int) throws -> GenerationResult {
        lock.lock()
        seen.append(request)
        lock.unlock()
        let seed = request.seed.map(String.init) ?? "none"
        let timings = [StageTiming("decode", seconds: 0.0015), StageTiming("gaussians", seconds: 0.25)]
        switch request.prompt {
        case .text(let text):
            switch text {
            case "oom": throw JobFailure.outOfMemory("CUDA out of memory (fake)")
            case "unavailable": throw JobFailure.missingStage("models are loading")
            case "crash": throw JobFailure.internal("kernel failed")
            case "bad option": throw JobFailure.badInput("unknown generator 'x'")
            case "untyped": throw NSError(domain: "fake", code: 7)
            case "gate":
                return GenerationResult(body: Data(), headers: ["X-Validation-Failed": "true", "X-Score": "0.41",
                                                                "X-CLIP-Score": "0.22"], stageTimings: timings)
            case "block":
                started.signal()
                release.wait()
            case "slow":
                usleep(30_000)
            case let big where big.hasPrefix("big "):
                return GenerationResult(body: Self.pattern(count: Int(big.dropFirst(4)) ?? 0), stageTimings: timings)
            default:
                break
            }
            let generator = request.options.generator.map { "|generator:\($0)" } ?? ""
            return GenerationResult(body: Data("text:\(text)|seed:\(seed)|route:\(request.route.rawValue)\(generator)".utf8),
                                    stageTimings: timings)
        case .image(let image):
            if image.data.range(of: Data("CORRUPT".utf8)) != nil {
                throw JobFailure.unprocessable("image does not decode")
            }
            let body = "image:\(image.format.rawValue):\(image.data.count):\(Self.fnv1a(image.data)):seed:\(seed)"
                + "|route:\(request.route.rawValue)|file:\(image.filename ?? "-")"
            return GenerationResult(body: Data(body.utf8), stageTimings: timings)
        }
    }

    /// A deterministic body of `count` bytes that is not all one value.
    static func pattern(count: Int) -> Data {
        var bytes = [UInt8](repeating: 0, count: count)
        for index in stride(from: 0, to: count, by: 4096) { bytes[index] = UInt8(truncatingIfNeeded: index >> 12) }
        return Data(bytes)
    }

    static func fnv1a(_ data: Data) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in data {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}

/// Collects log lines for assertions.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []

    var logger: LineLogger {
        LineLogger(timestamps: false) { [self] line in
            lock.lock()
            stored.append(line)
            lock.unlock()
        }
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// A real server on an ephemeral port with short timeouts.
final class TestHarness {
    let service = FakeService()
    let log = LogCapture()
    let server: GenerationServer
    private var stopped = false

    init(workers: Int = 2, capacity: Int = 32, configure: (inout ServerConfig) -> Void = { _ in }) throws {
        var config = ServerConfig(host: "127.0.0.1", port: 0)
        config.readTimeout = 0.5
        config.writeTimeout = 1
        config.keepAliveTimeout = 3
        config.lingerTimeout = 0.3
        config.limits = HTTPParserLimits(maxRequestLineBytes: 1024, maxHeaderBytes: 4096, maxHeaderCount: 50,
                                         maxBodyBytes: 1 << 20)
        configure(&config)
        server = GenerationServer(config: config, service: service, workers: workers, queueCapacity: capacity,
                                  defaultRetryAfter: 3, logger: log.logger)
        try server.start()
    }

    var port: Int { server.port }

    func client(timeout: TimeInterval = 5) throws -> HTTPClient {
        try HTTPClient(host: "127.0.0.1", port: port, timeout: timeout)
    }

    /// One request on a fresh connection.
    func request(_ method: String = "GET", _ path: String, headers: [(String, String)] = [],
                 body: Data = Data()) throws -> HTTPClientResponse {
        try client().request(method: method, path: path, headers: headers, body: body)
    }

    func postForm(_ path: String, _ fields: [(String, String)]) throws -> HTTPClientResponse {
        try request("POST", path, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                    body: Data(FormURLEncoded.encode(fields).utf8))
    }

    func shutdown(grace: TimeInterval = 2) {
        guard !stopped else { return }
        stopped = true
        server.shutdown(grace: grace)
    }

    deinit { shutdown() }
}

/// Polls `condition` until it holds or `timeout` passes.
func waitUntil(timeout: TimeInterval = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}

func assertJSONError(_ response: HTTPClientResponse, _ status: Int, mentions: String? = nil,
                     file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(response.status, status, response.text, file: file, line: line)
    XCTAssertEqual(response.headers["Content-Type"], "application/json", file: file, line: line)
    let json = response.json
    XCTAssertEqual(json?["status"] as? Int, status, file: file, line: line)
    XCTAssertNotNil(json?["error"] as? String, response.text, file: file, line: line)
    if let mentions {
        XCTAssertTrue((json?["error"] as? String)?.contains(mentions) == true, response.text, file: file, line: line)
    }
}

/// A value shared between test threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    func mutate(_ body: (inout Value) -> Void) {
        lock.lock()
        body(&stored)
        lock.unlock()
    }
}
