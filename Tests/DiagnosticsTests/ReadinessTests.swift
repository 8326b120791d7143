import Foundation
import HTTPServer
import Service
import PLY
import XCTest
@testable import Pipeline
@testable import Diagnostics

/// `ReadinessCheck` against a real in-process `GenerationServer` whose service follows a script, so the verdict can
/// be flipped by injected failures.
final class ReadinessTests: XCTestCase {
    final class ScriptedService: GenerationService, @unchecked Sendable {
        enum Fault {
            case none
            /// Every k-th generation fails with 422.
            case unprocessableEvery(Int)
            /// The k-th generation fails with 500.
            case internalErrorAt(Int)
            /// /health reports not ready after k calls.
            case healthDiesAfter(Int)
        }

        struct Received {
            var route: GenerationRoute
            var text: String?
            var imageFormat: String?
            var seed: Int?
        }

        let fault: Fault
        let delay: TimeInterval
        private let lock = NSLock()
        private var generations = 0
        private var healthChecks = 0
        private var log: [Received] = []

        init(fault: Fault = .none, delay: TimeInterval = 0.001) {
            self.fault = fault
            self.delay = delay
        }

        var received: [Received] {
            lock.lock()
            defer { lock.unlock() }
            return log
        }

        static let ply: Data = {
            let n = 3
            let splat = GaussianSplat(positions: (0..<(3 * n)).map { Float($0) }, shDC: Array(repeating: 0.2, count: 3 * n),
                                      opacities: Array(repeating: 1, count: n), scales: Array(repeating: -3, count: 3 * n),
                                      rotations: Array(repeating: 0.5, count: 4 * n))
            return try! PLYWriter().encode(splat)
        }()

        func health() -> [String: Any] {
            lock.lock()
            healthChecks += 1
            let count = healthChecks
            lock.unlock()
            var ready = true
            if case .healthDiesAfter(let k) = fault, count > k { ready = false }
            return ["status": "smoke", "ready": ready, "pipeline": "scripted", "real_generation": false]
        }

        func generate(_ request: GenerationRequest, worker: Int) throws -> GenerationResult {
            lock.lock()
            generations += 1
            let number = generations
            var entry = Received(route: request.route, seed: request.seed)
            switch request.prompt {
            case .text(let text): entry.text = text
            case .image(let image): entry.imageFormat = image.format.rawValue
            }
            log.append(entry)
            lock.unlock()
            if delay > 0 { Thread.sleep(forTimeInterval: delay) }
            switch fault {
            case .unprocessableEvery(let k) where number % k == 0:
                throw JobFailure.unprocessable("scripted failure \(number)")
            case .internalErrorAt(let k) where number == k:
                throw JobFailure.internal("scripted crash")
            default:
                break
            }
            if entry.text?.contains("gate") == true {
                return GenerationResult(body: Data(), headers: ["X-Validation-Failed": "true", "X-Gaussians": "3"])
            }
            return GenerationResult(body: Self.ply, headers: ["X-Gaussians": "3"])
        }
    }

    /// 4 distinct requests (text, gated text, base64 PNG, Competition-0 JPEG), repeated `rounds` times.
    func batch(rounds: Int = 1) throws -> [ReadinessRequest] {
        let assets = try benchPackageRoot().appendingPathComponent("assets/bench")
        let png = try Data(contentsOf: assets.appendingPathComponent("images/red-ball.png"))
        let jpeg = try Data(contentsOf: assets.appendingPathComponent("photo.jpg"))
        let one: [ReadinessRequest] = [.legacyText("a red apple"), .legacyText("a gate test"),
                                       .legacyImage(png: png, name: "red-ball.png"),
                                       .competitionImage(jpeg: jpeg, name: "photo.jpg", seed: 5)]
        return Array(repeating: one, count: rounds).flatMap { $0 }
    }

    func check(_ service: ScriptedService, rounds: Int = 1, workers: Int = 1, queue: Int = 8, clients: Int = 3,
               seconds: Double = 0.3, budget: Double = 5) throws -> ReadinessReport {
        let server = GenerationServer(config: ServerConfig(host: "127.0.0.1", port: 0), service: service, workers: workers,
                                      queueCapacity: queue, logger: LineLogger.silent)
        try server.start()
        defer { server.shutdown(grace: 2) }
        let options = ReadinessOptions(url: "http://127.0.0.1:\(server.port)", requests: try batch(rounds: rounds),
                                       stressClients: clients, stressSeconds: seconds, maxStressRequests: 400,
                                       budgetSeconds: budget, requestTimeout: 10)
        return try ReadinessCheck.run(options)
    }

    func testHealthyDaemonIsReady() throws {
        let service = ScriptedService()
        let report = try check(service)
        XCTAssertTrue(report.ready, report.text)
        XCTAssertEqual(report.criteria.count, 5)
        XCTAssertTrue(report.criteria.allSatisfy(\.passed))
        let batch = try XCTUnwrap(report.batch)
        XCTAssertEqual(batch.requests, 4)
        XCTAssertEqual(batch.succeeded, 4)
        XCTAssertEqual(batch.gated, 1)
        XCTAssertEqual(Set(batch.byKind.keys), Set(ReadinessRequest.Kind.allCases.map(\.rawValue)))
        XCTAssertGreaterThan(try XCTUnwrap(report.stress).requests, 0)
        XCTAssertEqual(report.successRate, 1)
        XCTAssertGreaterThanOrEqual(report.gateRejections, 1)
        XCTAssertEqual(report.gaussians?.median, 3)
        XCTAssertEqual(report.bodyBytes?.median, Double(ScriptedService.ply.count))
        XCTAssertEqual(report.healthBefore.state, "smoke")
        XCTAssertTrue(report.notes.contains { $0.contains("smoke pipeline") })
        XCTAssertTrue(report.text.contains("verdict: READY"), report.text)

        // The three request shapes arrive decoded as the daemon's routes decode them.
        let first = Array(service.received.prefix(4))
        XCTAssertEqual(first[0].route, .legacy)
        XCTAssertEqual(first[0].text, "a red apple")
        XCTAssertEqual(first[2].route, .legacy)
        XCTAssertEqual(first[2].imageFormat, "png")
        XCTAssertEqual(first[3].route, .competition)
        XCTAssertEqual(first[3].imageFormat, "jpeg")
        XCTAssertEqual(first[3].seed, 5)

        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: report.json()) as? [String: Any])
        XCTAssertEqual(json["ready"] as? Bool, true)
    }

    func testTenPercentFailuresAreNotReady() throws {
        let report = try check(ScriptedService(fault: .unprocessableEvery(10)), rounds: 6)
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report.failedCriteria.map(\.name), ["success >= 95%"], report.text)
        XCTAssertLessThan(try XCTUnwrap(report.successRate), 0.95)
        XCTAssertTrue(report.text.contains("NOT READY"))
    }

    func testA500IsNotReadyEvenWithAHighSuccessRate() throws {
        // 24 batch requests, one 500: 95.8% succeed, but a 5xx outside the stress phase fails the check.
        let report = try check(ScriptedService(fault: .internalErrorAt(3)), rounds: 6)
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report.failedCriteria.map(\.name), ["no 5xx (503 only under stress)"], report.text)
        XCTAssertEqual(report.failedCriteria.first?.detail, "1 x 500")
        XCTAssertEqual(report.batch?.statuses["500"], 1)
    }

    func testHealthDyingAfterwardsIsNotReady() throws {
        let report = try check(ScriptedService(fault: .healthDiesAfter(1)))
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report.failedCriteria.map(\.name), ["alive afterwards"], report.text)
        XCTAssertEqual(report.healthAfter?.status, 503)
    }

    func testShedding503UnderStressIsAllowed() throws {
        // One worker, no queue, 4 clients: most stress requests are shed with 503, which a bounded daemon should do.
        let report = try check(ScriptedService(delay: 0.02), queue: 0, clients: 4, seconds: 0.4)
        let stress = try XCTUnwrap(report.stress)
        XCTAssertGreaterThan(stress.shed, 0, report.text)
        XCTAssertEqual(stress.statuses["503"], stress.shed)
        XCTAssertTrue(report.ready, report.text)
    }

    func testSlowAnswersOverTheBudgetAreNotReady() throws {
        let report = try check(ScriptedService(delay: 0.005), budget: 0.001)
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report.failedCriteria.map(\.name), ["p99 latency < 0.001 s"], report.text)
    }

    func testDaemonDownIsNotReady() throws {
        // Bind and close a server to get a port nothing listens on.
        let server = GenerationServer(config: ServerConfig(host: "127.0.0.1", port: 0), service: ScriptedService(),
                                      logger: LineLogger.silent)
        try server.start()
        let port = server.port
        server.shutdown(grace: 1)
        let report = try ReadinessCheck.run(ReadinessOptions(url: "http://127.0.0.1:\(port)", requests: try batch(),
                                                             stressClients: 2, stressSeconds: 0.2, requestTimeout: 2))
        XCTAssertFalse(report.ready)
        XCTAssertEqual(report.healthBefore.status, 0)
        XCTAssertNil(report.batch)
        XCTAssertNil(report.healthAfter)
        XCTAssertFalse(report.criteria[0].passed)
    }

    func testBadOptionsAreRefused() throws {
        XCTAssertThrowsError(try ReadinessCheck.run(ReadinessOptions(url: "http://127.0.0.1:1", requests: []))) {
            XCTAssertTrue("\($0)".contains("no request"), "\($0)")
        }
        XCTAssertThrowsError(try ReadinessCheck.run(ReadinessOptions(url: "ftp://x", requests: try batch()))) {
            XCTAssertTrue("\($0)".contains("bad daemon URL"), "\($0)")
        }
        XCTAssertThrowsError(try ReadinessCheck.run(ReadinessOptions(url: "http://127.0.0.1:1", requests: try batch(),
                                                                     stressClients: -1)))
    }
}
