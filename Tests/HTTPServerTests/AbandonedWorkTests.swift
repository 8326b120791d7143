import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

/// Jobs whose client is gone must not hold a queue slot or a worker: a waiting job leaves the queue
/// as soon as its connection ends (reset or FIN), and its handler never runs.
final class AbandonedWorkTests: XCTestCase {
    private func form(_ prompt: String) -> Data { Data(FormURLEncoded.encode([("prompt", prompt)]).utf8) }

    private func sendQueued(_ prompt: String, harness: TestHarness, requestID: String) throws -> HTTPClient {
        let client = try harness.client()
        try client.sendRequest(method: "POST", path: "/generate/",
                               headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                         ("X-Request-Id", requestID)],
                               body: form(prompt))
        return client
    }

    /// One worker busy, a queue of one: the waiting job of a client that leaves is dropped, the next
    /// live client takes its slot (before the fix it got 503 "queue is full"), and the dropped job's
    /// handler never runs.
    private func checkQueuedJobIsDropped(leave: (HTTPClient) -> Void) throws {
        let harness = try TestHarness(workers: 1, capacity: 1)
        defer { harness.shutdown() }
        let service = harness.service
        let answers = DispatchGroup()
        let texts = Locked([String]())
        func background(_ prompt: String) {
            answers.enter()
            Thread {
                let text = (try? harness.postForm("/generate/", [("prompt", prompt)]))
                    .map { "\($0.status) \($0.text)" } ?? "error"
                texts.mutate { $0.append(text) }
                answers.leave()
            }.start()
        }

        background("block")
        XCTAssertEqual(service.started.wait(timeout: .now() + 5), .success)
        let leaving = try sendQueued("abandoned prompt", harness: harness, requestID: "gone-1")
        XCTAssertTrue(waitUntil { harness.server.jobs.snapshot().waiting == 1 }, "the job did not queue")

        leave(leaving)
        XCTAssertTrue(waitUntil { harness.server.jobs.snapshot().waiting == 0 },
                      "the abandoned job still holds its queue slot")
        XCTAssertEqual(harness.server.jobs.snapshot().abandoned, 1)

        // The freed slot serves a live client: it queues instead of getting 503.
        background("live prompt")
        XCTAssertTrue(waitUntil { harness.server.jobs.snapshot().waiting == 1 }, "the live job was not queued")
        service.release.signal()
        XCTAssertEqual(answers.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(texts.value.sorted(), ["200 text:block|seed:none|route:legacy",
                                              "200 text:live prompt|seed:none|route:legacy"])
        XCTAssertFalse(service.requests.contains { $0.prompt == .text("abandoned prompt") },
                       "the dropped job's handler ran")
        XCTAssertEqual(service.requests.count, 2)
        let lines = harness.log.lines
        XCTAssertTrue(lines.contains { $0.contains("req=gone-1 queued job dropped before it started") }, "\(lines)")
        XCTAssertTrue(lines.contains { $0.hasPrefix("req=gone-1 POST /generate/ 0 ")
                && $0.contains("client disconnected while waiting for the answer") }, "\(lines)")
        let health = try XCTUnwrap(try harness.request("GET", "/health").json?["queue"] as? [String: Any])
        XCTAssertEqual(health["abandoned"] as? Int, 1)
    }

    func testQueuedJobOfResetClientIsDroppedAndItsSlotServesTheNextClient() throws {
        try checkQueuedJobIsDropped { $0.closeWithReset() }
    }

    func testQueuedJobOfClosedClientIsDropped() throws {
        try checkQueuedJobIsDropped { $0.close() }
    }

    /// A client that stays connected (here: idle well past the socket check interval, with a pipelined
    /// request behind it) keeps its job and gets both answers.
    func testLiveWaitingClientKeepsItsJob() throws {
        let harness = try TestHarness(workers: 1, capacity: 2)
        defer { harness.shutdown() }
        let blocker = try harness.client()
        try blocker.sendRequest(method: "POST", path: "/generate/",
                                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: form("block"))
        XCTAssertEqual(harness.service.started.wait(timeout: .now() + 5), .success)
        usleep(UInt32(HTTPConnection.peerCheckInterval * 5 * 1_000_000))
        // Pipelined bytes are pending on the socket while the first request is handled: not a disconnect.
        try blocker.sendRequest(method: "POST", path: "/generate/",
                                headers: [("Content-Type", "application/x-www-form-urlencoded")], body: form("second"))
        usleep(UInt32(HTTPConnection.peerCheckInterval * 5 * 1_000_000))
        harness.service.release.signal()
        XCTAssertEqual(try blocker.readResponse().text, "text:block|seed:none|route:legacy")
        XCTAssertEqual(try blocker.readResponse().text, "text:second|seed:none|route:legacy")
        XCTAssertEqual(harness.server.jobs.snapshot().abandoned, 0)
    }

    /// The queue on its own: a token cancelled while its job waits frees the slot at once and calls
    /// `cancelled` exactly once; a token cancelled before the worker takes the job skips `run`.
    func testJobQueueDropsCancelledJobs() throws {
        let queue = JobQueue(workers: 1, capacity: 1)
        defer { queue.close() }
        let gate = DispatchSemaphore(value: 0)
        let ran = Locked([String]())
        let dropped = Locked([String]())
        XCTAssertEqual(queue.submit({ _ in gate.wait(); ran.mutate { $0.append("first") } }), .accepted(ahead: 0))
        let token = CancellationToken()
        XCTAssertEqual(queue.submit({ _ in ran.mutate { $0.append("waiting") } },
                                    cancelled: { dropped.mutate { $0.append("waiting") } }, cancellation: token),
                       .accepted(ahead: 0))
        XCTAssertEqual(queue.submit({ _ in }), .full(retryAfter: 10))
        token.cancel(reason: "client gone")
        token.cancel(reason: "again")
        XCTAssertEqual(dropped.value, ["waiting"])
        XCTAssertEqual(queue.snapshot().waiting, 0)

        gate.signal()
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))

        // Handed straight to the idle worker, whose check before running finds the token cancelled.
        let cancelledEarly = CancellationToken()
        cancelledEarly.cancel(reason: "left before its turn")
        XCTAssertEqual(queue.submit({ _ in ran.mutate { $0.append("early") } },
                                    cancelled: { dropped.mutate { $0.append("early") } },
                                    cancellation: cancelledEarly), .accepted(ahead: 0))
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))
        XCTAssertEqual(ran.value, ["first"])
        XCTAssertEqual(dropped.value, ["waiting", "early"])
        XCTAssertEqual(queue.snapshot().abandoned, 2)
        XCTAssertEqual(queue.snapshot().completed, 1)
    }
}
