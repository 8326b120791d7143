import Foundation
import HTTPServer
import Pipeline

/// The subnet-17 endpoints on top of a `GenerationService` and a `JobQueue`:
///
/// - `GET /health`: the service's `health()` dictionary plus `queue` (depth, capacity, running,
///   completed, and per worker: index, device, pipeline, busy/idle, jobs completed and failed, the
///   last failure with its time). 200, or 503 when the service reports `"ready": false`.
/// - `POST /generate/` (legacy miner) and `POST /generate` (Competition 0): see
///   `GenerationRequestDecoder`. 200 with the service's body and headers; 4xx for bad input;
///   503 + Retry-After when the queue is full; the service's `JobFailure` mapped per case.
///
/// A request whose client disconnects while it waits (see `Responder.cancellation`) loses its
/// queue slot at once and its job never runs; a running job stops at its next stage boundary.
/// Both are logged.
public final class GenerationAPI: @unchecked Sendable {
    public let service: GenerationService
    public let jobs: JobQueue
    public let logger: ServerLogger

    public init(service: GenerationService, jobs: JobQueue, logger: ServerLogger = LineLogger.stderr) {
        self.service = service
        self.jobs = jobs
        self.logger = logger
    }

    public func install(on router: Router) {
        router.get("/health") { [self] request, responder in health(request, responder) }
        router.post("/generate/") { [self] request, responder in generate(request, responder, route: .legacy) }
        router.post("/generate") { [self] request, responder in generate(request, responder, route: .competition) }
    }

    func health(_ request: HTTPRequest, _ responder: Responder) {
        var body = service.health()
        body["queue"] = jobs.snapshot().json
        let ready = body["ready"] as? Bool ?? true
        responder.send(.json(body, status: ready ? .ok : .serviceUnavailable))
    }

    func generate(_ request: HTTPRequest, _ responder: Responder, route: GenerationRoute) {
        let generation: GenerationRequest
        do {
            generation = try GenerationRequestDecoder.decode(request, route: route, requestID: responder.requestID)
        } catch let error as HTTPError {
            responder.send(.error(error.status, error.message))
            return
        } catch {
            responder.send(.error(.badRequest, "\(error)"))
            return
        }
        let service = self.service
        let jobs = self.jobs
        let logger = self.logger
        let cancellation = responder.cancellation
        let outcome = jobs.submit(handingOver: { worker in
            // Answered already (shutdown gave up on it): do not spend the device on it.
            guard !responder.isAnswered else { return nil }
            let response = Self.run(service, generation, worker: worker, jobs: jobs, cancellation: cancellation,
                                    logger: logger)
            // Sent once the worker is idle: a client's next request must not find it still busy.
            return { responder.send(response) }
        }, cancelled: {
            guard let reason = cancellation.reason else {
                responder.send(.error(.serviceUnavailable, "server is shutting down; the job was not started"))
                return
            }
            logger.message("req=\(responder.requestID) queued job dropped before it started: \(reason)")
            responder.send(.error(.serviceUnavailable, "the job was dropped before it started: \(reason)"))
        }, cancellation: cancellation)
        switch outcome {
        case .accepted:
            break
        case .full(let retryAfter):
            responder.send(.error(.serviceUnavailable,
                                  "generation queue is full (\(jobs.capacity) waiting); retry in \(retryAfter) s",
                                  headers: ["Retry-After": String(retryAfter)]))
        case .closed:
            responder.send(.error(.serviceUnavailable, "server is shutting down"))
        }
    }

    /// Runs one job on `worker` and maps its outcome to a response. A 5xx failure is recorded
    /// against the worker (for /health); the worker itself goes on to its next job either way.
    static func run(_ service: GenerationService, _ request: GenerationRequest, worker: Int, jobs: JobQueue,
                    cancellation: CancellationToken, logger: ServerLogger) -> HTTPResponse {
        let status: HTTPStatus
        let message: String
        var headers = HTTPHeaders()
        do {
            let result = try service.generate(request, worker: worker, cancellation: cancellation)
            var resultHeaders = result.headers
            if !resultHeaders.contains("Content-Type") { resultHeaders.set("Content-Type", result.contentType) }
            return HTTPResponse(status: .ok, headers: resultHeaders, body: result.body,
                                stageTimings: result.stageTimings)
        } catch JobFailure.cancelled(let why) {
            logger.message("req=\(request.requestID) job stopped on worker \(worker): \(why)")
            return .error(.serviceUnavailable, "job stopped: \(why)")
        } catch let failure as JobFailure {
            status = failure.status
            message = failure.answer
            if status == .serviceUnavailable { headers.set("Retry-After", String(jobs.retryAfter())) }
        } catch let error as HTTPError {
            status = error.status
            message = error.message
        } catch {
            status = .internalServerError
            message = "generation failed: \(error)"
        }
        if status.code >= 500 { jobs.recordFailure(worker: worker, status: status.code, message: message) }
        return .error(status, message, headers: headers)
    }
}

/// The whole daemon front end: a `JobQueue`, the `GenerationAPI` routes and an `HTTPServer`.
///
///     let server = try GenerationServer(config: config, service: pipeline, workers: 1, queueCapacity: 4)
///     try server.start()
///     server.runUntilSignalled(grace: 30)   // blocks; SIGTERM/SIGINT -> graceful shutdown
public final class GenerationServer: @unchecked Sendable {
    public let http: HTTPServer
    public let jobs: JobQueue
    public let api: GenerationAPI
    public let router: Router

    /// `workers`: number of worker threads (one per device); `queueCapacity`: jobs that may wait
    /// while all workers are busy; `onWorkerStart` runs once on each worker thread (bind its device).
    public convenience init(config: ServerConfig, service: GenerationService, workers: Int = 1,
                            queueCapacity: Int = 4, defaultRetryAfter: Int = 10,
                            logger: ServerLogger = LineLogger.stderr, onWorkerStart: ((Int) -> Void)? = nil) {
        self.init(config: config, service: service,
                  jobs: JobQueue(workers: workers, capacity: queueCapacity, defaultRetryAfter: defaultRetryAfter,
                                 onWorkerStart: onWorkerStart),
                  logger: logger)
    }

    /// One worker thread per entry of `workers` (its device and pipeline show in /health; workers
    /// with the same device share it). Worker i's jobs call `service.generate(_:worker: i)`.
    public convenience init(config: ServerConfig, service: GenerationService, workers: [JobQueue.WorkerInfo],
                            queueCapacity: Int = 4, defaultRetryAfter: Int = 10,
                            logger: ServerLogger = LineLogger.stderr, onWorkerStart: ((Int) -> Void)? = nil) {
        self.init(config: config, service: service,
                  jobs: JobQueue(workers: workers, capacity: queueCapacity, defaultRetryAfter: defaultRetryAfter,
                                 onWorkerStart: onWorkerStart),
                  logger: logger)
    }

    private init(config: ServerConfig, service: GenerationService, jobs: JobQueue, logger: ServerLogger) {
        self.jobs = jobs
        api = GenerationAPI(service: service, jobs: jobs, logger: logger)
        router = Router()
        api.install(on: router)
        http = HTTPServer(config: config, router: router, logger: logger)
    }

    public func start() throws {
        do {
            try http.start()
        } catch {
            jobs.close()
            throw error
        }
    }

    /// The bound port (after `start`).
    public var port: Int { http.port }

    /// Stops accepting, lets queued and running jobs finish for up to `grace` seconds, then
    /// answers whatever is left with 503, and returns. A job still running on a device after that
    /// keeps its worker thread until it returns; its result is dropped.
    public func shutdown(grace: TimeInterval) {
        jobs.close()
        http.shutdown(grace: grace) { [jobs] in jobs.cancelPending() }
    }

    /// Blocks until one of `signals` arrives, then shuts down gracefully and returns. A second
    /// signal during shutdown cuts the grace period short.
    public func runUntilSignalled(grace: TimeInterval, signals: [Int32] = [SIGTERM, SIGINT]) {
        let received = DispatchSemaphore(value: 0)
        let lock = NSLock()
        var count = 0
        let trap = SignalTrap(signals: signals) { [http] signal in
            lock.lock()
            count += 1
            let first = count == 1
            lock.unlock()
            http.logger.message("received signal \(signal)\(first ? ", shutting down" : ", hurrying shutdown")")
            if first { received.signal() } else { http.expediteShutdown() }
        }
        received.wait()
        shutdown(grace: grace)
        trap.cancel()
    }
}
