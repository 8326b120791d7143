import Foundation

/// A bounded FIFO of jobs served by `workers` dedicated threads, one job at a time per worker.
/// A worker index is meant to be a device index: each worker's jobs always run on the same
/// thread, so per-thread device state (the current CUDA device, streams) stays put.
///
/// Dispatch is first-idle: all idle workers wait on one queue and the first to wake takes the
/// oldest job, which is also least-loaded since a worker never holds more than one job. Every
/// accepted job is either run exactly once or, after `cancelPending`, has its `cancelled`
/// closure called exactly once.
public final class JobQueue: @unchecked Sendable {
    public enum SubmitOutcome: Equatable, Sendable {
        /// Accepted; `ahead` jobs were waiting before it (0: starts at once or next).
        case accepted(ahead: Int)
        /// Every worker is busy and `capacity` jobs are already waiting.
        case full(retryAfter: Int)
        /// `close()` was called.
        case closed
    }

    public struct WorkerSnapshot: Sendable {
        public let index: Int
        public let busy: Bool
        /// Seconds the current job has been running.
        public let busySeconds: Double?
        public let jobsCompleted: Int
    }

    public struct Snapshot: Sendable {
        /// Jobs accepted but not yet started by a worker.
        public let waiting: Int
        public let capacity: Int
        public let running: Int
        public let completed: Int
        public let workers: [WorkerSnapshot]

        /// For /health.
        public var json: [String: Any] {
            [
                "depth": waiting,
                "capacity": capacity,
                "running": running,
                "completed": completed,
                "workers": workers.map { worker -> [String: Any] in
                    var entry: [String: Any] = ["index": worker.index, "state": worker.busy ? "busy" : "idle",
                                                "jobs_completed": worker.jobsCompleted]
                    if let seconds = worker.busySeconds { entry["busy_s"] = (seconds * 1000).rounded() / 1000 }
                    return entry
                },
            ]
        }
    }

    private struct Job {
        let run: (Int) -> Void
        let cancelled: () -> Void
    }

    private struct Worker {
        var busySince: UInt64?
        var completed = 0
    }

    public let workerCount: Int
    /// Jobs allowed to wait while every worker is busy.
    public let capacity: Int
    private let defaultRetryAfter: Int
    private let condition = NSCondition()
    private var pending: [Job] = []
    private var pendingHead = 0
    private var workers: [Worker]
    private var closed = false
    private var completed = 0
    private var averageJobSeconds: Double?

    /// Starts `workers` threads. `onWorkerStart` runs once on each worker thread before its first
    /// job (bind the thread to its device there). Call `close()` when done, or the threads stay.
    public init(workers: Int, capacity: Int, defaultRetryAfter: Int = 10, name: String = "gen-worker",
                stackSize: Int = 8 << 20, onWorkerStart: ((Int) -> Void)? = nil) {
        precondition(workers >= 1, "a JobQueue needs at least one worker")
        self.workerCount = workers
        self.capacity = max(0, capacity)
        self.defaultRetryAfter = max(1, defaultRetryAfter)
        self.workers = Array(repeating: Worker(), count: workers)
        for index in 0..<workers {
            let threadName = "\(name)-\(index)"
            let thread = Thread { [self] in
                Thread.current.name = threadName
                onWorkerStart?(index)
                workerLoop(index)
            }
            thread.stackSize = stackSize
            thread.start()
        }
    }

    /// Enqueues a job. `run` gets the worker index on that worker's thread; `cancelled` runs
    /// instead (on the caller of `cancelPending`) when the job is dropped before starting.
    public func submit(_ run: @escaping (Int) -> Void, cancelled: @escaping () -> Void = {}) -> SubmitOutcome {
        condition.lock()
        defer { condition.unlock() }
        if closed { return .closed }
        let waiting = waitingCount
        guard waiting < capacity || idleCount > pending.count - pendingHead else {
            return .full(retryAfter: retryAfterLocked(waiting: waiting))
        }
        pending.append(Job(run: run, cancelled: cancelled))
        condition.broadcast()
        return .accepted(ahead: waiting)
    }

    public func snapshot() -> Snapshot {
        condition.lock()
        defer { condition.unlock() }
        let now = uptimeNanoseconds()
        let workerSnapshots = workers.enumerated().map { index, worker in
            WorkerSnapshot(index: index, busy: worker.busySince != nil,
                           busySeconds: worker.busySince.map { Double(now - $0) / 1e9 }, jobsCompleted: worker.completed)
        }
        return Snapshot(waiting: waitingCount, capacity: capacity, running: workerCount - idleCount,
                        completed: completed, workers: workerSnapshots)
    }

    /// Seconds a rejected client should wait: the average job time times the jobs ahead per
    /// worker, or `defaultRetryAfter` before any job has finished. Clamped to 1...600.
    public func retryAfter() -> Int {
        condition.lock()
        defer { condition.unlock() }
        return retryAfterLocked(waiting: waitingCount)
    }

    /// Rejects new jobs from now on; workers exit once the queue is empty.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Drops every job not yet started, calling its `cancelled`. Returns how many were dropped.
    @discardableResult
    public func cancelPending() -> Int {
        condition.lock()
        let dropped = pending[pendingHead...]
        pending.removeAll()
        pendingHead = 0
        condition.broadcast()
        condition.unlock()
        for job in dropped { job.cancelled() }
        return dropped.count
    }

    /// Blocks until no job is waiting or running; false when `timeout` passed first.
    @discardableResult
    public func waitUntilIdle(timeout: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while pendingHead < pending.count || idleCount < workerCount {
            if !condition.wait(until: deadline) { return pendingHead == pending.count && idleCount == workerCount }
        }
        return true
    }

    // MARK: - Workers

    private var idleCount: Int { workers.reduce(0) { $0 + ($1.busySince == nil ? 1 : 0) } }

    /// Jobs that will have to wait for a worker to finish (queued beyond the idle workers).
    private var waitingCount: Int { max(0, pending.count - pendingHead - idleCount) }

    private func retryAfterLocked(waiting: Int) -> Int {
        guard let average = averageJobSeconds else { return defaultRetryAfter }
        let rounds = Double(waiting + workerCount) / Double(workerCount)
        return min(600, max(1, Int((average * rounds).rounded(.up))))
    }

    private func workerLoop(_ index: Int) {
        while true {
            condition.lock()
            while pendingHead == pending.count, !closed { condition.wait() }
            if pendingHead == pending.count {
                condition.unlock()
                return
            }
            let job = pending[pendingHead]
            pendingHead += 1
            if pendingHead == pending.count {
                pending.removeAll(keepingCapacity: true)
                pendingHead = 0
            } else if pendingHead >= 64, pendingHead * 2 >= pending.count {
                pending.removeSubrange(0..<pendingHead)
                pendingHead = 0
            }
            let started = uptimeNanoseconds()
            workers[index].busySince = started
            condition.unlock()

            job.run(index)

            condition.lock()
            let seconds = Double(uptimeNanoseconds() - started) / 1e9
            averageJobSeconds = averageJobSeconds.map { 0.8 * $0 + 0.2 * seconds } ?? seconds
            workers[index].busySince = nil
            workers[index].completed += 1
            completed += 1
            condition.broadcast()
            condition.unlock()
        }
    }
}
