import Foundation

/// A bounded FIFO of jobs served by dedicated worker threads, one job at a time per worker.
/// Each worker's jobs always run on the same thread, so per-thread device state (the current CUDA
/// device, streams) stays put.
///
/// Dispatch is least-loaded: a new job goes to the idle worker whose device has the fewest busy
/// workers, then to the one that has started the fewest jobs (so idle workers take turns). When
/// every worker is busy the job waits, and the first worker to finish takes the oldest waiting
/// job. Every accepted job is either run exactly once or has its `cancelled` closure called
/// exactly once: after `cancelPending`, or when its cancellation token fires before it starts (a
/// waiting job leaves the queue at once, freeing its slot; a job handed to a worker is skipped).
public final class JobQueue: @unchecked Sendable {
    public enum SubmitOutcome: Equatable, Sendable {
        /// Accepted; `ahead` jobs were waiting before it (0: starts at once or next).
        case accepted(ahead: Int)
        /// Every worker is busy and `capacity` jobs are already waiting.
        case full(retryAfter: Int)
        /// `close()` was called.
        case closed
    }

    /// What a worker serves, as plain values for /health (the HTTP layer knows no ML types).
    public struct WorkerInfo: Sendable, Equatable {
        /// The device its jobs run on, e.g. "cuda:1" or "cpu". Workers with the same device share it,
        /// and dispatch spreads jobs over devices first.
        public var device: String
        /// The pipeline (or model set) it runs.
        public var pipeline: String

        public init(device: String, pipeline: String) {
            self.device = device
            self.pipeline = pipeline
        }
    }

    /// A job of a worker that failed on the server side (a 5xx answer).
    public struct WorkerFailure: Sendable, Equatable {
        public let status: Int
        public let message: String
        public let at: Date
    }

    public struct WorkerSnapshot: Sendable {
        public let index: Int
        public let info: WorkerInfo?
        public let busy: Bool
        /// Seconds the current job has been running.
        public let busySeconds: Double?
        /// Jobs run to the end, failed ones included.
        public let jobsCompleted: Int
        /// Jobs reported through `recordFailure`.
        public let jobsFailed: Int
        public let lastFailure: WorkerFailure?

        var json: [String: Any] {
            var entry: [String: Any] = ["index": index, "state": busy ? "busy" : "idle",
                                        "jobs_completed": jobsCompleted, "jobs_failed": jobsFailed]
            if let info {
                entry["device"] = info.device
                entry["pipeline"] = info.pipeline
            }
            if let seconds = busySeconds { entry["busy_s"] = (seconds * 1000).rounded() / 1000 }
            if let failure = lastFailure {
                let age = Date().timeIntervalSince(failure.at)
                entry["last_error"] = ["status": failure.status, "message": failure.message,
                                       "at": ISO8601DateFormatter().string(from: failure.at),
                                       "age_s": (age * 10).rounded() / 10] as [String: Any]
            }
            return entry
        }
    }

    public struct Snapshot: Sendable {
        /// Jobs accepted but not yet started by a worker.
        public let waiting: Int
        public let capacity: Int
        public let running: Int
        public let completed: Int
        /// Jobs dropped before they started because their token was cancelled (client gone).
        public let abandoned: Int
        public let workers: [WorkerSnapshot]

        /// For /health.
        public var json: [String: Any] {
            ["depth": waiting, "capacity": capacity, "running": running, "completed": completed,
             "abandoned": abandoned, "workers": workers.map(\.json)]
        }
    }

    private struct Job {
        let id: UInt64
        /// Returns the hand-over to run once the worker counts as idle again.
        let run: (Int) -> (() -> Void)?
        let cancelled: () -> Void
        let cancellation: CancellationToken?
    }

    private struct Worker {
        let info: WorkerInfo?
        /// Workers with equal keys share a device.
        let deviceKey: String
        /// The job handed to this worker and not finished yet.
        var job: Job?
        var busySince: UInt64?
        var started = 0
        var completed = 0
        var failed = 0
        var lastFailure: WorkerFailure?
    }

    public let workerCount: Int
    /// Jobs allowed to wait while every worker is busy.
    public let capacity: Int
    private let defaultRetryAfter: Int
    private let condition = NSCondition()
    // Invariant: jobs wait in `pending` only while every worker is busy.
    private var pending: [Job] = []
    private var pendingHead = 0
    private var workers: [Worker]
    private var closed = false
    private var completed = 0
    private var abandoned = 0
    private var nextJobID: UInt64 = 0
    private var averageJobSeconds: Double?

    /// Starts `workers` threads, each on a device of its own. `onWorkerStart` runs once on each
    /// worker thread before its first job (bind the thread to its device there). Call `close()`
    /// when done, or the threads stay.
    public convenience init(workers: Int, capacity: Int, defaultRetryAfter: Int = 10, name: String = "gen-worker",
                            stackSize: Int = 8 << 20, onWorkerStart: ((Int) -> Void)? = nil) {
        precondition(workers >= 1, "a JobQueue needs at least one worker")
        self.init(workers: Array(repeating: nil, count: workers), capacity: capacity,
                  defaultRetryAfter: defaultRetryAfter, name: name, stackSize: stackSize, onWorkerStart: onWorkerStart)
    }

    /// Starts one worker thread per entry of `workers`; workers whose `device` is equal share it.
    public convenience init(workers: [WorkerInfo], capacity: Int, defaultRetryAfter: Int = 10,
                            name: String = "gen-worker", stackSize: Int = 8 << 20,
                            onWorkerStart: ((Int) -> Void)? = nil) {
        precondition(!workers.isEmpty, "a JobQueue needs at least one worker")
        self.init(workers: workers.map { Optional($0) }, capacity: capacity, defaultRetryAfter: defaultRetryAfter,
                  name: name, stackSize: stackSize, onWorkerStart: onWorkerStart)
    }

    private init(workers infos: [WorkerInfo?], capacity: Int, defaultRetryAfter: Int, name: String, stackSize: Int,
                 onWorkerStart: ((Int) -> Void)?) {
        self.workerCount = infos.count
        self.capacity = max(0, capacity)
        self.defaultRetryAfter = max(1, defaultRetryAfter)
        self.workers = infos.enumerated().map { index, info in
            Worker(info: info, deviceKey: info.map { "device \($0.device)" } ?? "worker \(index)")
        }
        for index in infos.indices {
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
    /// instead when the job is dropped before starting: on the caller of `cancelPending`, on the
    /// thread that cancels `cancellation` while the job waits, or on the worker that finds the
    /// token cancelled when the job's turn comes.
    public func submit(_ run: @escaping (Int) -> Void, cancelled: @escaping () -> Void = {},
                       cancellation: CancellationToken? = nil) -> SubmitOutcome {
        submit(handingOver: { worker in
            run(worker)
            return nil
        }, cancelled: cancelled, cancellation: cancellation)
    }

    /// Like `submit`, for a job whose result goes to someone who may submit again at once (a client
    /// that sends its next request as soon as it has the answer): `run` computes the result and
    /// returns its hand-over, which runs on the worker's thread after the worker counts as idle. So
    /// the next job finds the worker free instead of a full queue.
    public func submit(handingOver run: @escaping (Int) -> (() -> Void)?, cancelled: @escaping () -> Void = {},
                       cancellation: CancellationToken? = nil) -> SubmitOutcome {
        condition.lock()
        if closed {
            condition.unlock()
            return .closed
        }
        nextJobID += 1
        let job = Job(id: nextJobID, run: run, cancelled: cancelled, cancellation: cancellation)
        if let worker = leastLoadedIdleWorker() {
            assign(job, to: worker)
            condition.broadcast()
            condition.unlock()
            return .accepted(ahead: 0)
        }
        let waiting = waitingCount
        guard waiting < capacity else {
            let retryAfter = retryAfterLocked(waiting: waiting)
            condition.unlock()
            return .full(retryAfter: retryAfter)
        }
        pending.append(job)
        condition.unlock()
        // Registered after unlocking: an already cancelled token runs the handler at once. Captures
        // the id only: the job's closures hold the token's owner, which must not hold them back.
        let id = job.id
        cancellation?.onCancel { [weak self] _ in self?.withdraw(id) }
        return .accepted(ahead: waiting)
    }

    /// Takes a waiting job out of the queue (its client is gone) and calls its `cancelled`.
    /// Does nothing when a worker has already taken it: the worker skips it instead.
    private func withdraw(_ id: UInt64) {
        condition.lock()
        guard let position = pending[pendingHead...].firstIndex(where: { $0.id == id }) else {
            condition.unlock()
            return
        }
        let job = pending.remove(at: position)
        abandoned += 1
        condition.broadcast()
        condition.unlock()
        job.cancelled()
    }

    /// Notes that worker `worker`'s current job failed on the server side; shown by /health.
    /// Call it from the job itself, before it returns.
    public func recordFailure(worker: Int, status: Int, message: String) {
        condition.lock()
        defer { condition.unlock() }
        guard workers.indices.contains(worker) else { return }
        workers[worker].failed += 1
        workers[worker].lastFailure = WorkerFailure(status: status, message: message, at: Date())
    }

    public func snapshot() -> Snapshot {
        condition.lock()
        defer { condition.unlock() }
        let now = uptimeNanoseconds()
        let workerSnapshots = workers.enumerated().map { index, worker in
            WorkerSnapshot(index: index, info: worker.info, busy: worker.job != nil,
                           busySeconds: worker.busySince.map { Double(now - $0) / 1e9 },
                           jobsCompleted: worker.completed, jobsFailed: worker.failed, lastFailure: worker.lastFailure)
        }
        return Snapshot(waiting: waitingCount, capacity: capacity, running: workerCount - idleCount,
                        completed: completed, abandoned: abandoned, workers: workerSnapshots)
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
        while waitingCount > 0 || idleCount < workerCount {
            if !condition.wait(until: deadline) { return waitingCount == 0 && idleCount == workerCount }
        }
        return true
    }

    // MARK: - Dispatch (called with `condition` locked)

    private var idleCount: Int { workers.reduce(0) { $0 + ($1.job == nil ? 1 : 0) } }

    /// Jobs that wait for a worker to finish.
    private var waitingCount: Int { pending.count - pendingHead }

    /// The idle worker on the least busy device; among those, the one that started the fewest jobs.
    private func leastLoadedIdleWorker() -> Int? {
        var busyPerDevice: [String: Int] = [:]
        for worker in workers where worker.job != nil { busyPerDevice[worker.deviceKey, default: 0] += 1 }
        var best: (index: Int, load: Int, started: Int)?
        for (index, worker) in workers.enumerated() where worker.job == nil {
            let load = busyPerDevice[worker.deviceKey] ?? 0
            if let current = best, (current.load, current.started) <= (load, worker.started) { continue }
            best = (index, load, worker.started)
        }
        return best?.index
    }

    private func assign(_ job: Job, to index: Int) {
        workers[index].job = job
        workers[index].busySince = uptimeNanoseconds()
        workers[index].started += 1
    }

    private func popPending() -> Job? {
        guard pendingHead < pending.count else { return nil }
        let job = pending[pendingHead]
        pendingHead += 1
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead >= 64, pendingHead * 2 >= pending.count {
            pending.removeSubrange(0..<pendingHead)
            pendingHead = 0
        }
        return job
    }

    private func retryAfterLocked(waiting: Int) -> Int {
        guard let average = averageJobSeconds else { return defaultRetryAfter }
        let rounds = Double(waiting + workerCount) / Double(workerCount)
        return min(600, max(1, Int((average * rounds).rounded(.up))))
    }

    // MARK: - Workers

    private func workerLoop(_ index: Int) {
        condition.lock()
        while true {
            while workers[index].job == nil, !closed { condition.wait() }
            guard let job = workers[index].job else {
                // Closed, and nothing is left for this worker (jobs wait only while all workers are busy).
                condition.unlock()
                return
            }
            let started = workers[index].busySince ?? uptimeNanoseconds()
            condition.unlock()

            // The client left between the job's assignment and now: skip it instead of running it.
            let skipped = job.cancellation?.isCancelled ?? false
            var handOver: (() -> Void)? = nil
            if skipped { job.cancelled() } else { handOver = job.run(index) }

            condition.lock()
            if skipped {
                abandoned += 1
            } else {
                let seconds = Double(uptimeNanoseconds() - started) / 1e9
                averageJobSeconds = averageJobSeconds.map { 0.8 * $0 + 0.2 * seconds } ?? seconds
                workers[index].completed += 1
                completed += 1
            }
            workers[index].job = nil
            workers[index].busySince = nil
            // Every other worker is busy whenever jobs wait, so this one is the least loaded.
            if let next = popPending() { assign(next, to: index) }
            condition.broadcast()
            if let handOver {
                condition.unlock()
                handOver()
                condition.lock()
            }
        }
    }
}
