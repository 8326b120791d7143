import Foundation
import XCTest
import Pipeline
@testable import HTTPServer
@testable import Service

/// A service whose answer names the request and the worker that ran it. Prompts:
/// "block ..." waits for `release`; "... oom" throws an out-of-memory error naming the prompt;
/// anything else answers `id:<prompt>|worker:<n>` after `jobDelay`. `failNextJob(onWorker:with:)`
/// makes that worker's next job throw.
final class WorkerEchoService: GenerationService, @unchecked Sendable {
    let started = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    var jobDelay: useconds_t = 1_000
    private let calls = Locked([(id: String, worker: Int)]())
    private let injected = Locked([Int: [Error]]())

    var ids: [String] { calls.value.map(\.id) }
    var workersUsed: Set<Int> { Set(calls.value.map(\.worker)) }

    func failNextJob(onWorker worker: Int, with error: Error) {
        injected.mutate { $0[worker, default: []].append(error) }
    }

    func health() -> [String: Any] { ["status": "ok", "device": "cpu", "ready": true] }

    func generate(_ request: GenerationRequest, worker: Int) throws -> GenerationResult {
        guard case .text(let id) = request.prompt else { throw JobFailure.badInput("text prompts only") }
        calls.mutate { $0.append((id, worker)) }
        var error: Error?
        injected.mutate { if !($0[worker]?.isEmpty ?? true) { error = $0[worker]!.removeFirst() } }
        if let error { throw error }
        if id.hasPrefix("block") {
            started.signal()
            release.wait()
        }
        if id.hasSuffix("oom") { throw JobFailure.outOfMemory("CUDA out of memory (fake) in \(id)") }
        usleep(jobDelay)
        return GenerationResult(body: Data("id:\(id)|worker:\(worker)".utf8))
    }
}

final class MultiWorkerTests: XCTestCase {
    private var servers: [GenerationServer] = []

    override func tearDown() {
        for server in servers { server.shutdown(grace: 2) }
        servers = []
    }

    private func startServer(_ service: GenerationService, devices: [String], capacity: Int = 8) throws -> Int {
        var config = ServerConfig(host: "127.0.0.1", port: 0)
        config.readTimeout = 2
        config.writeTimeout = 2
        config.keepAliveTimeout = 5
        config.lingerTimeout = 0.3
        config.maxConnections = 256
        let workers = devices.map { JobQueue.WorkerInfo(device: $0, pipeline: "echo-pipeline") }
        let server = GenerationServer(config: config, service: service, workers: workers, queueCapacity: capacity,
                                      defaultRetryAfter: 3, logger: LogCapture().logger)
        try server.start()
        servers.append(server)
        return server.port
    }

    private func generate(_ port: Int, _ id: String, client: HTTPClient? = nil) throws -> HTTPClientResponse {
        let connection = try client ?? HTTPClient(host: "127.0.0.1", port: port, timeout: 10)
        return try connection.request(method: "POST", path: "/generate/",
                                      headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                      body: Data(FormURLEncoded.encode([("prompt", id)]).utf8))
    }

    /// A client has its answer a moment before the worker is free again: wait for that, so the
    /// next request's dispatch is deterministic.
    private func waitForIdleWorkers() {
        for server in servers { XCTAssertTrue(server.jobs.waitUntilIdle(timeout: 5)) }
    }

    private func workersJSON(_ port: Int) throws -> [[String: Any]] {
        let response = try HTTPClient(host: "127.0.0.1", port: port).request(path: "/health")
        XCTAssertEqual(response.status, 200, response.text)
        let queue = try XCTUnwrap(response.json?["queue"] as? [String: Any])
        return try XCTUnwrap(queue["workers"] as? [[String: Any]])
    }

    /// The worker index from an `id:...|worker:n` answer.
    private func worker(of response: HTTPClientResponse) -> Int? {
        response.text.components(separatedBy: "|worker:").last.flatMap { Int($0) }
    }

    // MARK: - Dispatch and /health

    func testIdleWorkersTakeTurnsAndHealthReportsEachWorker() throws {
        let service = WorkerEchoService()
        let port = try startServer(service, devices: ["cpu", "cpu"])
        let before = try workersJSON(port)
        XCTAssertEqual(before.count, 2)
        for (index, entry) in before.enumerated() {
            XCTAssertEqual(entry["index"] as? Int, index)
            XCTAssertEqual(entry["device"] as? String, "cpu")
            XCTAssertEqual(entry["pipeline"] as? String, "echo-pipeline")
            XCTAssertEqual(entry["state"] as? String, "idle")
            XCTAssertEqual(entry["jobs_completed"] as? Int, 0)
            XCTAssertEqual(entry["jobs_failed"] as? Int, 0)
            XCTAssertNil(entry["last_error"])
        }

        // One request at a time: the idle worker that started fewer jobs takes the next one.
        let order = try (0..<4).map { index -> Int? in
            let response = try generate(port, "seq-\(index)")
            waitForIdleWorkers()
            XCTAssertEqual(response.status, 200, response.text)
            return worker(of: response)
        }
        XCTAssertEqual(order, [0, 1, 0, 1])

        // Two jobs at once run on both workers together; /health shows both busy.
        let answers = Locked([HTTPClientResponse]())
        let group = DispatchGroup()
        for index in 0..<2 {
            group.enter()
            Thread { [self] in
                defer { group.leave() }
                if let response = try? generate(port, "block-\(index)") { answers.mutate { $0.append(response) } }
            }.start()
        }
        for _ in 0..<2 { XCTAssertEqual(service.started.wait(timeout: .now() + 5), .success) }
        let busy = try workersJSON(port)
        XCTAssertEqual(busy.map { $0["state"] as? String }, ["busy", "busy"])
        XCTAssertTrue(busy.allSatisfy { ($0["busy_s"] as? Double).map { $0 >= 0 } ?? false })
        service.release.signal()
        service.release.signal()
        XCTAssertEqual(group.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(answers.value.map(\.status), [200, 200])
        XCTAssertEqual(Set(answers.value.compactMap(worker(of:))), [0, 1])
        XCTAssertTrue(waitUntil { ((try? self.workersJSON(port)) ?? []).compactMap { $0["jobs_completed"] as? Int } == [3, 3] })
    }

    func testLeastLoadedDispatchSpreadsOverDevicesFirst() {
        let info = ["cuda:0", "cuda:0", "cuda:1", "cuda:1"].map { JobQueue.WorkerInfo(device: $0, pipeline: "p") }
        let queue = JobQueue(workers: info, capacity: 4)
        defer { queue.close() }
        let ran = Locked([Int: Int]())   // job -> worker
        let releases = (0..<5).map { _ in DispatchSemaphore(value: 0) }
        let started = DispatchSemaphore(value: 0)
        func submit(_ job: Int) -> JobQueue.SubmitOutcome {
            queue.submit({ worker in
                ran.mutate { $0[job] = worker }
                started.signal()
                releases[job].wait()
            })
        }
        // Job 0 takes cuda:0; job 1 goes to the idle device cuda:1, not to worker 1 beside job 0.
        for job in 0..<4 {
            XCTAssertEqual(submit(job), .accepted(ahead: 0))
            XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        }
        XCTAssertEqual(ran.value, [0: 0, 1: 2, 2: 1, 3: 3])
        // All busy: job 4 waits and goes to the first worker that finishes.
        XCTAssertEqual(submit(4), .accepted(ahead: 0))
        XCTAssertEqual(queue.snapshot().waiting, 1)
        releases[1].signal()
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(ran.value[4], 2)
        for job in [0, 2, 3, 4] { releases[job].signal() }
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))
        XCTAssertEqual(queue.snapshot().workers.map(\.jobsCompleted), [1, 1, 2, 1])
    }

    // MARK: - Failure isolation

    func testOutOfMemoryInOneWorkerFailsOnlyItsRequest() throws {
        let service = WorkerEchoService()
        let port = try startServer(service, devices: ["cpu", "cpu"])
        service.failNextJob(onWorker: 1, with: JobFailure.outOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB"))

        // Worker 0 is mid-job while worker 1 runs out of memory.
        let blocked = Locked<HTTPClientResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread { [self] in
            blocked.mutate { $0 = try? generate(port, "block-long") }
            done.signal()
        }.start()
        XCTAssertEqual(service.started.wait(timeout: .now() + 5), .success)
        let failed = try generate(port, "unlucky")
        assertJSONError(failed, 503, mentions: "out of device memory")
        XCTAssertNotNil(failed.headers["Retry-After"].flatMap(Int.init))
        service.release.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(blocked.value?.status, 200)
        XCTAssertEqual(blocked.value.flatMap(worker(of:)), 0)

        XCTAssertTrue(waitUntil { ((try? self.workersJSON(port)) ?? []).compactMap { $0["jobs_completed"] as? Int } == [1, 1] })
        let health = try workersJSON(port)
        XCTAssertNil(health[0]["last_error"], "worker 0 did not fail")
        XCTAssertEqual(health[0]["jobs_failed"] as? Int, 0)
        XCTAssertEqual(health[1]["jobs_failed"] as? Int, 1)
        let lastError = try XCTUnwrap(health[1]["last_error"] as? [String: Any])
        XCTAssertEqual(lastError["status"] as? Int, 503)
        XCTAssertTrue((lastError["message"] as? String)?.contains("Tried to allocate 2.00 GiB") == true)
        let at = try XCTUnwrap((lastError["at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
        XCTAssertLessThan(abs(at.timeIntervalSinceNow), 60)
        XCTAssertNotNil(lastError["age_s"] as? Double)

        // Both workers serve again, the one that failed included.
        let after = try (0..<2).map { index -> HTTPClientResponse in
            defer { waitForIdleWorkers() }
            return try generate(port, "after-\(index)")
        }
        XCTAssertEqual(after.map(\.status), [200, 200])
        XCTAssertEqual(Set(after.compactMap(worker(of:))), [0, 1])
    }

    func testInternalAndUntypedErrorsFailOnlyTheirRequest() throws {
        let service = WorkerEchoService()
        let port = try startServer(service, devices: ["cpu", "cpu"])
        service.failNextJob(onWorker: 0, with: JobFailure.internal("kernel launch failed"))
        service.failNextJob(onWorker: 0, with: NSError(domain: "fake-torch", code: 7))
        var statuses: [Int] = []
        var workers: [Int?] = []
        for index in 0..<6 {
            let response = try generate(port, "job-\(index)")
            waitForIdleWorkers()
            statuses.append(response.status)
            workers.append(response.status == 200 ? worker(of: response) : nil)
            if index == 0 { assertJSONError(response, 500, mentions: "kernel launch failed") }
            if index == 2 { assertJSONError(response, 500, mentions: "fake-torch") }
        }
        // Worker 0 fails its first two jobs; worker 1 serves throughout; worker 0 serves again after.
        XCTAssertEqual(statuses, [500, 200, 500, 200, 200, 200])
        XCTAssertEqual(workers, [nil, 1, nil, 1, 0, 1])
        XCTAssertTrue(waitUntil { ((try? self.workersJSON(port)) ?? []).compactMap { $0["jobs_completed"] as? Int } == [3, 3] })
        let health = try workersJSON(port)
        XCTAssertEqual(health.map { $0["jobs_failed"] as? Int }, [2, 0])
        XCTAssertEqual((health[0]["last_error"] as? [String: Any])?["status"] as? Int, 500)
    }

    // MARK: - Load

    /// Every 7th client's first request runs out of memory: failures must be answered once too.
    private static func id(client: Int, request: Int) -> String {
        let suffix = client % 7 == 0 && request == 0 ? "-oom" : ""
        return "c\(client)-r\(request)\(suffix)"
    }

    /// 50 clients, each with a keep-alive connection sending two requests back to back, ids unique.
    /// Every id reaches the service once and comes back once, to its own client, in order (a
    /// duplicated answer would show up as the wrong id on the connection's next response).
    func testFiftyConcurrentClientsNoRequestLostOrAnsweredTwice() throws {
        let service = WorkerEchoService()
        service.jobDelay = 2_000
        let port = try startServer(service, devices: ["cpu", "cpu"], capacity: 100)
        let clients = 50
        let answers = Locked([String: [HTTPClientResponse]]())
        let failures = Locked([String]())
        let group = DispatchGroup()
        for client in 0..<clients {
            group.enter()
            Thread { [self] in
                defer { group.leave() }
                do {
                    let connection = try HTTPClient(host: "127.0.0.1", port: port, timeout: 10)
                    for request in 0..<2 {
                        let id = Self.id(client: client, request: request)
                        let response = try generate(port, id, client: connection)
                        answers.mutate { $0[id, default: []].append(response) }
                    }
                } catch {
                    failures.mutate { $0.append("client \(client): \(error)") }
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 15), .success)
        XCTAssertEqual(failures.value, [])

        let expected: [String] = (0..<clients).flatMap { client in (0..<2).map { Self.id(client: client, request: $0) } }
        XCTAssertEqual(Set(answers.value.keys), Set(expected), "lost or unexpected answers")
        for id in expected {
            let responses = answers.value[id] ?? []
            XCTAssertEqual(responses.count, 1, "\(id) answered \(responses.count) times")
            guard let response = responses.first else { continue }
            if id.hasSuffix("-oom") {
                assertJSONError(response, 503, mentions: id)
            } else {
                XCTAssertEqual(response.status, 200, response.text)
                XCTAssertTrue(response.text.hasPrefix("id:\(id)|worker:"), "\(id) got \(response.text)")
            }
        }
        XCTAssertEqual(service.ids.sorted(), expected.sorted(), "each request reached the service exactly once")
        XCTAssertEqual(service.workersUsed, [0, 1])
        XCTAssertTrue(waitUntil {
            ((try? self.workersJSON(port)) ?? []).compactMap { $0["jobs_completed"] as? Int }.reduce(0, +) == 100
        })
        XCTAssertEqual(try workersJSON(port).compactMap { $0["jobs_failed"] as? Int }.reduce(0, +), 8)
    }
}
