import Foundation
import HTTPServer
import Imaging
import PLY
import XCTest
@testable import Pipeline
@testable import Service

/// A running job whose client disconnects stops at the next stage boundary, with a log line, and
/// the worker goes on to the next job. Served over real sockets by the real `PipelineService` and
/// `PipelineWorker`; the stages are fakes so the test controls when a stage ends.
final class AbandonedJobTests: XCTestCase {
    /// Text -> image that holds each call until `release` is signalled.
    final class HeldTextToImage: TextToImageStage {
        let name = "held-t2i"
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        func generateImage(prompt: String, seed: UInt64, steps: Int?) throws -> Image {
            entered.signal()
            release.wait()
            return try Image(width: 4, height: 4, filledWith: [200, 10, 10, 128])
        }
    }

    final class CountingGaussians: GaussianStage {
        let name = "trellis"
        private let lock = NSLock()
        private var count = 0
        var calls: Int {
            lock.lock()
            defer { lock.unlock() }
            return count
        }
        func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
            lock.lock()
            count += 1
            lock.unlock()
            let n = 3
            return GaussianSplat(positions: Array(repeating: 0, count: 3 * n), shDC: Array(repeating: 0, count: 3 * n),
                                 opacities: Array(repeating: 1, count: n), scales: Array(repeating: -3, count: 3 * n),
                                 rotations: Array(repeating: 0.5, count: 4 * n))
        }
    }

    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        var logger: LineLogger {
            LineLogger(timestamps: false) { [self] line in
                lock.lock()
                stored.append(line)
                lock.unlock()
            }
        }
        var all: [String] {
            lock.lock()
            defer { lock.unlock() }
            return stored
        }
        func waitFor(_ fragment: String, timeout: TimeInterval = 5) -> Bool {
            let deadline = Date(timeIntervalSinceNow: timeout)
            while Date() < deadline {
                if all.contains(where: { $0.contains(fragment) }) { return true }
                usleep(2_000)
            }
            return false
        }
    }

    private func post(_ client: HTTPClient, _ prompt: String, id: String) throws {
        try client.sendRequest(method: "POST", path: "/generate/",
                               headers: [("Content-Type", "application/x-www-form-urlencoded"), ("X-Request-Id", id)],
                               body: Data(FormURLEncoded.encode([("prompt", prompt)]).utf8))
    }

    func testRunningJobOfResetClientStopsAtTheNextStageBoundary() throws {
        let text = HeldTextToImage()
        let gaussians = CountingGaussians()
        let pipeline = GenerationPipeline(textToImage: text, backgroundRemoval: nil, gaussians: gaussians, validator: nil)
        var defaults = PipelineService.ServiceDefaults()
        defaults.validate = false
        let service = PipelineService(
            workers: [PipelineWorker(device: .cpu, pipeline: pipeline)],
            status: ServiceStatus(pipelineName: "fake", isSmoke: false, device: "cpu", models: [:], missing: [],
                                  version: "test"),
            defaults: defaults)
        let lines = Lines()
        let server = GenerationServer(config: ServerConfig(host: "127.0.0.1", port: 0), service: service, workers: 1,
                                      queueCapacity: 1, logger: lines.logger)
        try server.start()
        defer { server.shutdown(grace: 2) }

        let leaving = try HTTPClient(port: server.port, timeout: 5)
        try post(leaving, "a chair", id: "gone-2")
        XCTAssertEqual(text.entered.wait(timeout: .now() + 5), .success, "the job did not start")
        leaving.closeWithReset()
        XCTAssertTrue(lines.waitFor("req=gone-2 POST /generate/ 0"), "the disconnect was not seen: \(lines.all)")

        // The stage in progress finishes; the next one never starts.
        text.release.signal()
        XCTAssertTrue(lines.waitFor("req=gone-2 job stopped on worker 0: stopped after stage 'text-to-image': "
                                    + "client disconnected while waiting for the answer"), "\(lines.all)")
        XCTAssertEqual(gaussians.calls, 0, "the stage after the boundary ran")
        XCTAssertTrue(waitForIdle(server.jobs))
        XCTAssertEqual(server.jobs.snapshot().workers.first?.jobsFailed, 0, "a stopped job is not a worker failure")

        // The worker is free and serves the next client in full.
        text.release.signal()
        let live = try HTTPClient(port: server.port, timeout: 10)
        try post(live, "a lamp", id: "live-2")
        let answer = try live.readResponse()
        XCTAssertEqual(answer.status, 200, answer.text)
        XCTAssertEqual(answer.headers["X-Gaussians"], "3")
        XCTAssertEqual(gaussians.calls, 1)
    }

    func testCancelledTokenStopsBeforeTheFirstStage() throws {
        let text = HeldTextToImage()
        let gaussians = CountingGaussians()
        let pipeline = GenerationPipeline(textToImage: text, backgroundRemoval: nil, gaussians: gaussians, validator: nil)
        var job = GenerationJob(prompt: .text("a cup"), validate: false)
        let token = CancellationToken()
        token.cancel(reason: "client gone")
        job.cancellation = token
        XCTAssertThrowsError(try PipelineWorker(device: .cpu, pipeline: pipeline).run(job)) { error in
            XCTAssertEqual(error as? JobFailure, .cancelled("stopped before its first stage: client gone"))
        }
        XCTAssertEqual(text.entered.wait(timeout: .now()), .timedOut, "text-to-image ran")
        XCTAssertEqual(gaussians.calls, 0)
    }

    private func waitForIdle(_ jobs: JobQueue) -> Bool { jobs.waitUntilIdle(timeout: 5) }
}
