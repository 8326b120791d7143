import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

final class JobQueueTests: XCTestCase {
    /// Many producers, three workers: every job runs exactly once, never two at a time on one worker.
    func testEveryJobRunsExactlyOnceOneAtATimePerWorker() {
        let queue = JobQueue(workers: 3, capacity: 1000)
        defer { queue.close() }
        let lock = NSLock()
        var runs = [Int](repeating: 0, count: 300)
        var active = [0, 0, 0]
        var maxActive = 0
        var workersSeen = Set<Int>()
        let done = DispatchGroup()
        DispatchQueue.concurrentPerform(iterations: 300) { job in
            done.enter()
            let outcome = queue.submit({ worker in
                lock.lock()
                runs[job] += 1
                active[worker] += 1
                maxActive = max(maxActive, active[worker])
                workersSeen.insert(worker)
                lock.unlock()
                usleep(200)
                lock.lock()
                active[worker] -= 1
                lock.unlock()
                done.leave()
            })
            if case .accepted = outcome {} else { XCTFail("job \(job) rejected: \(outcome)") }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))
        XCTAssertEqual(runs, [Int](repeating: 1, count: 300))
        XCTAssertEqual(maxActive, 1)
        XCTAssertTrue(workersSeen.isSubset(of: [0, 1, 2]))
        XCTAssertEqual(queue.snapshot().completed, 300)
    }

    func testCapacityAndRetryAfter() {
        let queue = JobQueue(workers: 1, capacity: 2, defaultRetryAfter: 7)
        defer { queue.close() }
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        XCTAssertEqual(queue.submit({ _ in started.signal(); release.wait() }), .accepted(ahead: 0))
        started.wait()
        XCTAssertEqual(queue.submit({ _ in release.wait() }), .accepted(ahead: 0))
        XCTAssertEqual(queue.submit({ _ in release.wait() }), .accepted(ahead: 1))
        XCTAssertEqual(queue.submit({ _ in }), .full(retryAfter: 7), "no job has finished yet: default estimate")
        let snapshot = queue.snapshot()
        XCTAssertEqual(snapshot.waiting, 2)
        XCTAssertEqual(snapshot.running, 1)
        XCTAssertEqual(snapshot.workers.map(\.busy), [true])
        for _ in 0..<3 { release.signal() }
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))
        XCTAssertEqual(queue.snapshot().workers[0].jobsCompleted, 3)
        // With a measured average the estimate follows it (jobs here take ~0 s -> the 1 s floor).
        XCTAssertEqual(queue.retryAfter(), 1)
    }

    func testZeroCapacityAcceptsOnlyWhenAWorkerIsIdle() {
        let queue = JobQueue(workers: 2, capacity: 0)
        defer { queue.close() }
        let release = DispatchSemaphore(value: 0)
        XCTAssertEqual(queue.submit({ _ in release.wait() }), .accepted(ahead: 0))
        XCTAssertEqual(queue.submit({ _ in release.wait() }), .accepted(ahead: 0))
        if case .full = queue.submit({ _ in }) {} else { XCTFail("a third job must not fit") }
        release.signal()
        release.signal()
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))
    }

    func testCancelPendingCallsCancelledInsteadOfRunning() {
        let queue = JobQueue(workers: 1, capacity: 5)
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let lock = NSLock()
        var ran: [Int] = []
        var cancelled: [Int] = []
        _ = queue.submit({ _ in started.signal(); release.wait(); lock.lock(); ran.append(0); lock.unlock() },
                         cancelled: { lock.lock(); cancelled.append(0); lock.unlock() })
        started.wait()
        for index in 1...3 {
            _ = queue.submit({ _ in lock.lock(); ran.append(index); lock.unlock() },
                             cancelled: { lock.lock(); cancelled.append(index); lock.unlock() })
        }
        queue.close()
        XCTAssertEqual(queue.submit({ _ in }), .closed)
        XCTAssertEqual(queue.cancelPending(), 3)
        release.signal()
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))
        lock.lock()
        XCTAssertEqual(ran, [0])
        XCTAssertEqual(cancelled, [1, 2, 3])
        lock.unlock()
    }

    func testWorkerStartHookRunsOnTheWorkerThread() {
        let hookThreads = Locked([Int: ObjectIdentifier]())
        let queue = JobQueue(workers: 2, capacity: 4, name: "dev") { index in
            hookThreads.mutate { $0[index] = ObjectIdentifier(Thread.current) }
        }
        defer { queue.close() }
        let jobThreads = Locked([(Int, ObjectIdentifier)]())
        for _ in 0..<6 {
            _ = queue.submit({ worker in
                jobThreads.mutate { $0.append((worker, ObjectIdentifier(Thread.current))) }
                usleep(1000)
            })
        }
        XCTAssertTrue(queue.waitUntilIdle(timeout: 5))
        XCTAssertTrue(waitUntil { hookThreads.value.count == 2 })
        XCTAssertEqual(jobThreads.value.count, 6)
        for (worker, thread) in jobThreads.value {
            XCTAssertEqual(hookThreads.value[worker], thread, "worker \(worker) ran a job on another thread")
        }
    }

    /// The hand-over runs once the worker is idle: a follow-up submitted from it (a client that sends
    /// its next request on receiving the answer) finds the worker free even with no queue. Before,
    /// the answer went out while the worker still counted as busy and such a client could get 503.
    func testHandOverRunsAfterTheWorkerIsIdle() throws {
        let queue = JobQueue(workers: 1, capacity: 0)
        defer { queue.close() }
        let followUp = Locked<JobQueue.SubmitOutcome?>(nil)
        let done = DispatchSemaphore(value: 0)
        XCTAssertEqual(queue.submit(handingOver: { _ in
            { followUp.mutate { $0 = queue.submit({ _ in done.signal() }) } }
        }), .accepted(ahead: 0))
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(followUp.value, .accepted(ahead: 0))
    }
}
