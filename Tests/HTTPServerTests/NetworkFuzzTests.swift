import Foundation
import XCTest
import HTTPFuzz
@testable import HTTPServer

/// The short network fuzz run of the suite: a fixed seed, 5,000 cases against an in-process server
/// (FakeService, which answers 200 to anything that reaches it, so a malformed request that gets
/// through the front end is caught), bounded to 50 s. The long run is `gen3d fuzz-http`.
final class NetworkFuzzTests: XCTestCase {
    func testShortFuzzRunFindsNoWrongSuccessHangOrLeak() throws {
        let harness = try TestHarness(workers: 2, capacity: 64) { config in
            config.readTimeout = 2
            config.lingerTimeout = 0.2
            config.limits.maxBodyBytes = 64 << 20  // the daemon's default, so over-limit cases meet the real limit
        }
        let generator = FuzzCaseGenerator(seed: 20_261_208)
        // The server runs in this process, so its descriptors are this process's: every socket of
        // the run (server and client side) must be closed at the end. The RSS tolerance covers
        // allocator caches keeping freed bodies (cases carry up to ~200 KiB).
        let runner = FuzzRunner(port: harness.port, generator: generator, concurrency: 8, caseTimeout: 10,
                                serverPID: getpid(), rssTolerance: 64 << 20, fdTolerance: 0, settleTimeout: 10)
        let report = runner.run(count: 5_000, timeLimit: 50)
        print(report)
        XCTAssertGreaterThanOrEqual(report.cases, 2_000, "the run was cut short by its time limit")
        XCTAssertTrue(report.passed, report.failures.joined(separator: "\n"))
        XCTAssertEqual(report.families.count, FuzzCaseGenerator.familyNames.count, "\(report.families)")
        XCTAssertGreaterThan(report.outcomes["4xx", default: 0], report.cases / 2)
        XCTAssertGreaterThan(report.outcomes["reset", default: 0], 0)
        XCTAssertEqual(harness.service.requests.count, 0, "a malformed request reached the service")
    }

    func testCasesAreAFunctionOfSeedAndIndex() {
        let one = FuzzCaseGenerator(seed: 7)
        let again = FuzzCaseGenerator(seed: 7)
        let other = FuzzCaseGenerator(seed: 8)
        let indices = [0, 1, 17, 999, 123_456]
        for index in indices {
            XCTAssertEqual(one.makeCase(index).bytes, again.makeCase(index).bytes)
            XCTAssertEqual(one.makeCase(index).kind, again.makeCase(index).kind)
        }
        XCTAssertNotEqual(indices.map { one.makeCase($0).bytes }, indices.map { other.makeCase($0).bytes })
    }

    /// The runner must be able to fail: a server that answers 200 to everything is caught.
    func testRunnerFlagsA200ForMalformedInput() throws {
        let router = Router()
        let server = HTTPServer(config: ServerConfig(host: "127.0.0.1", port: 0), router: router,
                                logger: LineLogger(timestamps: false) { _ in })
        router.post("/generate") { _, responder in responder.send(HTTPResponse(status: .ok, body: Data("ok".utf8))) }
        try server.start()
        defer { server.shutdown(grace: 1) }
        let runner = FuzzRunner(port: server.port, generator: FuzzCaseGenerator(seed: 3), concurrency: 4, caseTimeout: 5)
        let report = runner.run(count: 300, timeLimit: 30)
        XCTAssertFalse(report.passed)
        XCTAssertTrue(report.failures.contains { $0.contains("for a malformed request") }, report.failures.joined(separator: "\n"))
    }
}
