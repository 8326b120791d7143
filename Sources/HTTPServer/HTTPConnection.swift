import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// State shared by the server and all of its connections.
final class ServerContext: @unchecked Sendable {
    let config: ServerConfig
    let router: Router
    let logger: ServerLogger
    let access: AccessPolicy
    var connectionClosed: (Int) -> Void = { _ in }

    private let lock = NSLock()
    private var draining = false
    private var sequence = 0
    private let idPrefix = String(UInt32.random(in: 0x100000...0xFFFFFF), radix: 16)

    init(config: ServerConfig, router: Router, logger: ServerLogger) {
        self.config = config
        self.router = router
        self.logger = logger
        self.access = AccessPolicy(key: config.apiKey, openPaths: config.openPaths)
    }

    var isDraining: Bool {
        lock.lock()
        defer { lock.unlock() }
        return draining
    }

    func startDraining() {
        lock.lock()
        draining = true
        lock.unlock()
    }

    /// The client's `X-Request-Id` when it is a short safe token, otherwise `prefix-sequence`.
    func requestID(suggested: String?) -> String {
        if let suggested, (1...64).contains(suggested.utf8.count),
           suggested.utf8.allSatisfy(HTTPSyntax.isTokenChar) {
            return suggested
        }
        lock.lock()
        sequence += 1
        let number = sequence
        lock.unlock()
        return "\(idPrefix)-\(number)"
    }
}

func uptimeNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Saturates at about 31 years (NaN and negatives give 0), so no configured duration can trap the
/// conversion or the deadline sums built on it.
func nanoseconds(_ seconds: TimeInterval) -> UInt64 {
    guard seconds > 0 else { return 0 }
    return seconds < 1e9 ? UInt64(seconds * 1_000_000_000) : 1_000_000_000 * 1_000_000_000
}

/// Closes the descriptor once every dispatch source registered on it has been cancelled, so the
/// fd number cannot be reused while libdispatch still watches it.
private final class DescriptorCloser {
    let fd: Int32
    var holders = 0
    init(fd: Int32) { self.fd = fd }
    func release() {
        holders -= 1
        if holders == 0 { close(fd) }
    }
}

/// One client connection: a read source, a write source created on the first short write, and a
/// timer, all on one serial queue, so the connection's state needs no locks and an idle
/// connection costs no thread. Phases:
///
///     reading --request--> handling --response--> writing --keep-alive--> reading
///                                                    \--close--> lingering --> closed
///
/// Reading is suspended while a request is handled or answered, which both orders pipelined
/// requests and bounds the bytes a client can make the server buffer.
final class HTTPConnection {
    enum Phase { case reading, handling, writing, lingering, closed }

    private struct Exchange {
        let number: Int
        let requestID: String
        let method: String
        var route: String
        let startedAt: UInt64
        var responder: Responder?
        var keepAlive: Bool
        var headOnly: Bool
        var http10: Bool
        var status = 0
        var bytesOut = 0
        var stageTimings: [StageTiming] = []
        var note: String?
    }

    private static let continueResponse = Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    private static let readChunk = 64 * 1024
    /// While a request is handled reading is suspended, so the socket is polled this often for
    /// the client's EOF or reset (then the request's job is cancelled).
    static let peerCheckInterval: TimeInterval = 0.1
    private static let readsPerTurn = 64

    let id: Int
    let fd: Int32
    let peer: String
    let queue: DispatchQueue
    private let context: ServerContext
    private var parser: HTTPRequestParser
    private let closer: DescriptorCloser
    private let readSource: DispatchSourceRead
    private var writeSource: DispatchSourceWrite?
    private let timer: DispatchSourceTimer
    private var readSuspended = true      // sources start inactive
    private var writeResumed = false

    private(set) var phase = Phase.reading
    private var outbox: [Data] = []
    private var outboxOffset = 0
    private var closeAfterFlush = false
    private var idleSince: UInt64
    private var requestStartedAt: UInt64?
    private var lastWriteProgress: UInt64 = 0
    private var lingerDeadline: UInt64 = 0
    private var exchangeCount = 0
    private var exchange: Exchange?

    init(id: Int, fd: Int32, context: ServerContext, targetQueue: DispatchQueue) {
        self.id = id
        self.fd = fd
        self.peer = Socket.peerName(fd)
        self.context = context
        self.parser = HTTPRequestParser(limits: context.config.limits)
        self.queue = DispatchQueue(label: "http.connection.\(id)", target: targetQueue)
        self.closer = DescriptorCloser(fd: fd)
        self.readSource = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        self.timer = DispatchSource.makeTimerSource(queue: queue)
        self.idleSince = uptimeNanoseconds()
    }

    deinit {
        // Only reached without close() when the owning server is released while running; the
        // sources must still be cancelled (and resumed: releasing a suspended source traps).
        guard phase != .closed else { return }
        timer.cancel()
        readSource.cancel()
        if readSuspended { readSource.resume() }
        if let writeSource {
            writeSource.cancel()
            if !writeResumed { writeSource.resume() }
        }
    }

    func start() {
        let closer = self.closer
        closer.holders = 1
        readSource.setEventHandler { [weak self] in self?.onReadable() }
        readSource.setCancelHandler { closer.release() }
        timer.setEventHandler { [weak self] in self?.onTimer() }
        queue.async {
            self.armTimer()
            self.timer.resume()
            self.resumeReading()
        }
    }

    // MARK: - Reading

    /// Reads until the socket would block (or the parser delivered a request and reading is
    /// suspended): an epoll-driven source may not fire again for bytes, an EOF or a reset that
    /// arrived together with the last data, and a connection that missed its EOF or reset would
    /// pin its socket and buffered body until the read timeout. After `readsPerTurn` reads the
    /// rest is continued in a later turn of the queue, so the timer still runs against a client
    /// that keeps sending.
    private func onReadable() {
        var reads = 0
        while phase == .reading || phase == .lingering {
            if reads == Self.readsPerTurn {
                queue.async { [weak self] in self?.onReadable() }
                return
            }
            reads += 1
            let count = withUnsafeTemporaryAllocation(byteCount: Self.readChunk, alignment: 16) { buffer -> Int in
                let count = recv(fd, buffer.baseAddress, Self.readChunk, 0)
                if count > 0, phase == .reading {
                    parser.append(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                }
                return count
            }
            if count > 0 {
                if phase == .reading { processBuffered() }
                continue
            }
            if count == 0 {
                close(note: phase == .reading && parser.isMidRequest ? "client closed mid-request" : nil)
                return
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return }
            close(note: phase == .reading && parser.isMidRequest
                ? "client reset mid-request: \(String(cString: strerror(code)))" : nil)
            return
        }
    }

    private func processBuffered() {
        while phase == .reading {
            let event: HTTPParserEvent?
            do {
                event = try parser.next()
            } catch let error as HTTPError {
                reject(error)
                return
            } catch {
                reject(HTTPError(.badRequest, "\(error)"))
                return
            }
            guard let event else { break }
            switch event {
            case .continueExpected:
                outbox.append(Self.continueResponse)
                flush()
            case .request(let request):
                if let problem = request.hostFieldProblem {
                    reject(HTTPError(.badRequest, problem))
                    return
                }
                begin(request)
            }
        }
        guard phase == .reading else { return }
        if parser.isMidRequest {
            if requestStartedAt == nil { requestStartedAt = uptimeNanoseconds() }
        } else {
            requestStartedAt = nil
        }
        armTimer()
    }

    // MARK: - Handling

    private func begin(_ request: HTTPRequest) {
        phase = .handling
        suspendReading()
        exchangeCount += 1
        let number = exchangeCount
        let requestID = context.requestID(suggested: request.headers["X-Request-Id"])
        var keepAlive = request.keepAlive
        if let limit = context.config.maxRequestsPerConnection, exchangeCount >= limit { keepAlive = false }
        let responder = Responder(requestID: requestID) { [weak self] response in
            guard let self else { return }
            self.queue.async { self.complete(response, exchange: number) }
        }
        exchange = Exchange(number: number, requestID: requestID, method: request.method.rawValue,
                            route: String(request.path.prefix(200)), startedAt: uptimeNanoseconds(),
                            responder: responder, keepAlive: keepAlive, headOnly: request.method == .head,
                            http10: request.version.minor == 0)
        armTimer()
        if context.isDraining {
            responder.send(.error(.serviceUnavailable, "server is shutting down"))
            return
        }
        if let denial = context.access.denial(for: request) {
            responder.send(denial)
            return
        }
        let route = context.router.handle(request, responder)
        exchange?.route = route
    }

    private func complete(_ response: HTTPResponse, exchange number: Int) {
        guard phase == .handling, let current = exchange, current.number == number else { return }
        write(response, close: !current.keepAlive || context.isDraining)
    }

    /// Answers a request the parser could not deliver (malformed, too large, timed out) and closes.
    private func reject(_ error: HTTPError) {
        exchangeCount += 1
        exchange = Exchange(number: exchangeCount, requestID: context.requestID(suggested: nil), method: "-",
                            route: "-", startedAt: requestStartedAt ?? uptimeNanoseconds(), responder: nil,
                            keepAlive: false, headOnly: false, http10: false)
        write(JSONError.response(error), close: true)
    }

    // MARK: - Writing

    private func write(_ response: HTTPResponse, close: Bool) {
        guard var current = exchange else { return }
        var extra: [(String, String)] = [("Date", HTTPResponse.httpDate())]
        if let name = context.config.serverName { extra.append(("Server", name)) }
        extra.append(("X-Request-Id", current.requestID))
        extra.removeAll { response.headers.contains($0.0) }
        let head = response.serializedHead(contentLength: response.body.count, close: close,
                                           keepAliveHeader: current.http10, extra: extra)
        current.status = response.status.code
        current.bytesOut = head.count + (current.headOnly ? 0 : response.body.count)
        current.stageTimings = response.stageTimings
        current.note = response.logNote ?? current.note
        exchange = current

        phase = .writing
        suspendReading()
        closeAfterFlush = close
        outbox.append(head)
        if !current.headOnly, !response.body.isEmpty { outbox.append(response.body) }
        lastWriteProgress = uptimeNanoseconds()
        armTimer()
        flush()
    }

    private func flush() {
        while let data = outbox.first {
            let remaining = data.count - outboxOffset
            let sent = data.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + outboxOffset, remaining, Socket.sendFlags)
            }
            if sent > 0 {
                outboxOffset += sent
                lastWriteProgress = uptimeNanoseconds()
                if outboxOffset == data.count {
                    outbox.removeFirst()
                    outboxOffset = 0
                }
                continue
            }
            let code = errno
            if sent < 0, code == EINTR { continue }
            if sent < 0, code == EAGAIN || code == EWOULDBLOCK {
                resumeWriting()
                return
            }
            exchange?.note = "write failed: \(String(cString: strerror(code)))"
            close()
            return
        }
        suspendWriting()
        if phase == .writing { finishExchange() }
    }

    private func finishExchange() {
        if let current = exchange { log(current) }
        exchange = nil
        if closeAfterFlush {
            startLingering()
            return
        }
        phase = .reading
        idleSince = uptimeNanoseconds()
        requestStartedAt = nil
        resumeReading()
        processBuffered()
    }

    /// Half-closes and drains what the client still sends, so closing does not reset the
    /// connection under a response the client has not read yet.
    private func startLingering() {
        Socket.shutdownWrite(fd)
        phase = .lingering
        lingerDeadline = uptimeNanoseconds() + nanoseconds(context.config.lingerTimeout)
        resumeReading()
        armTimer()
    }

    // MARK: - Timeouts

    private func armTimer() {
        let config = context.config
        let deadline: UInt64?
        switch phase {
        case .reading:
            deadline = requestStartedAt.map { $0 + nanoseconds(config.readTimeout) }
                ?? idleSince + nanoseconds(idleTimeout)
        case .writing:
            deadline = lastWriteProgress + nanoseconds(config.writeTimeout)
        case .lingering:
            deadline = lingerDeadline
        case .handling:
            deadline = uptimeNanoseconds() + nanoseconds(Self.peerCheckInterval)
        case .closed:
            deadline = nil
        }
        timer.schedule(deadline: deadline.map { DispatchTime(uptimeNanoseconds: $0) } ?? .distantFuture,
                       leeway: .milliseconds(5))
    }

    /// Deadlines move forward without re-arming (progress only updates a timestamp), so a firing
    /// timer re-checks and re-arms when it is early.
    private func onTimer() {
        let now = uptimeNanoseconds()
        let config = context.config
        switch phase {
        case .reading:
            if let started = requestStartedAt {
                guard now >= started + nanoseconds(config.readTimeout) else { return armTimer() }
                reject(HTTPError(.requestTimeout,
                                 "request not received completely within \(Self.seconds(config.readTimeout))"))
            } else {
                guard now >= idleSince + nanoseconds(idleTimeout) else { return armTimer() }
                close()
            }
        case .writing:
            guard now >= lastWriteProgress + nanoseconds(config.writeTimeout) else { return armTimer() }
            exchange?.note = "write made no progress for \(Self.seconds(config.writeTimeout))"
            close()
        case .lingering:
            guard now >= lingerDeadline else { return armTimer() }
            close()
        case .handling:
            if clientHasGone() { return close(note: "client disconnected while waiting for the answer") }
            armTimer()
        case .closed:
            break
        }
    }

    /// EOF (a half-close counts, as in nginx) or a reset on the socket, seen without consuming
    /// pipelined bytes.
    private func clientHasGone() -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count > 0 { return false }
        if count == 0 { return true }
        let code = errno
        return !(code == EAGAIN || code == EWOULDBLOCK || code == EINTR)
    }

    /// A connection that has not sent its first request gets no longer than a request would.
    private var idleTimeout: TimeInterval {
        let config = context.config
        return exchangeCount == 0 ? min(config.keepAliveTimeout, config.readTimeout) : config.keepAliveTimeout
    }

    private static func seconds(_ value: TimeInterval) -> String { String(format: "%g s", value) }

    // MARK: - Shutdown hooks (call on `queue`)

    /// Closes the connection when it has no request in progress.
    func closeIfIdle() {
        if phase == .reading, !parser.isMidRequest { close() }
    }

    /// Answers the request being handled, if any (its late real answer will be dropped).
    func answerOutstanding(with response: HTTPResponse) {
        if phase == .handling { exchange?.responder?.send(response) }
    }

    func forceClose() {
        close(note: "closed by server shutdown")
    }

    // MARK: - Closing and sources

    private func close(note: String? = nil) {
        guard phase != .closed else { return }
        if phase == .handling {
            exchange?.responder?.cancellation.cancel(reason: note ?? "the connection closed before the answer")
        }
        if var current = exchange {
            if let note { current.note = note }
            if current.status == 0, current.note == nil { current.note = "connection closed before the response" }
            log(current)
        }
        exchange = nil
        phase = .closed
        outbox.removeAll()
        parser = HTTPRequestParser(limits: context.config.limits)  // frees a buffered body now
        timer.cancel()
        readSource.cancel()
        if readSuspended {
            readSource.resume()
            readSuspended = false
        }
        if let writeSource {
            writeSource.cancel()
            if !writeResumed { writeSource.resume() }
        }
        context.connectionClosed(id)
    }

    private func suspendReading() {
        guard !readSuspended else { return }
        readSource.suspend()
        readSuspended = true
    }

    private func resumeReading() {
        guard readSuspended, phase != .closed else { return }
        readSource.resume()
        readSuspended = false
    }

    private func resumeWriting() {
        let source: DispatchSourceWrite
        if let existing = writeSource {
            source = existing
        } else {
            source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
            let closer = self.closer
            closer.holders += 1
            source.setEventHandler { [weak self] in self?.flush() }
            source.setCancelHandler { closer.release() }
            writeSource = source
        }
        guard !writeResumed else { return }
        source.resume()
        writeResumed = true
    }

    private func suspendWriting() {
        guard writeResumed, let writeSource else { return }
        writeSource.suspend()
        writeResumed = false
    }

    private func log(_ exchange: Exchange) {
        let duration = Double(uptimeNanoseconds() - exchange.startedAt) / 1e9
        context.logger.request(RequestLogEntry(
            requestID: exchange.requestID, method: exchange.method, route: exchange.route, status: exchange.status,
            bytesOut: exchange.status == 0 ? 0 : exchange.bytesOut, duration: duration,
            stageTimings: exchange.stageTimings, peer: peer, note: exchange.note))
    }
}
