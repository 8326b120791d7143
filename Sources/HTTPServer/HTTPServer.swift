import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An HTTP/1.1 server on plain POSIX sockets and Dispatch.
///
/// I/O model: every socket is non-blocking and watched by Dispatch sources (epoll underneath on
/// Linux, kqueue on macOS). The listening socket has one read source on a serial accept queue;
/// each connection has a read source, a lazily created write source and a deadline timer, all
/// bound to one serial queue per connection that targets a shared concurrent queue. So an idle
/// or slow connection holds no thread (a slowloris client costs a few hundred bytes until its
/// read deadline fires), connection state needs no locks, and handler work runs on the Dispatch
/// thread pool. Long work (GPU generation) must not run in handlers: hand it to a `JobQueue` and
/// answer through the `Responder` when it is done.
///
/// Usage: `let server = HTTPServer(config: config, router: router); try server.start();
/// ... server.shutdown(grace: 30)`.
public final class HTTPServer: @unchecked Sendable {
    private enum State { case created, running, stopping, stopped }

    public let config: ServerConfig
    public let router: Router
    public let logger: ServerLogger
    private let context: ServerContext
    private let acceptQueue = DispatchQueue(label: "http.accept")
    private let ioQueue = DispatchQueue(label: "http.io", attributes: .concurrent)

    private let lock = NSLock()
    private var state = State.created
    private var boundPort = 0
    private var connections: [Int: HTTPConnection] = [:]
    private var nextConnectionID = 0
    private var expedite = false

    // Touched only on acceptQueue.
    private var listenSource: DispatchSourceRead?
    private var listenFD: Int32 = -1
    private var acceptPaused = false

    public init(config: ServerConfig, router: Router, logger: ServerLogger = LineLogger.stderr) {
        self.config = config
        self.router = router
        self.logger = logger
        self.context = ServerContext(config: config, router: router, logger: logger)
        context.connectionClosed = { [weak self] id in self?.connectionClosed(id) }
    }

    deinit {
        // Released without shutdown: stop listening (handlers hold the server weakly).
        listenSource?.cancel()
        if acceptPaused { listenSource?.resume() }
    }

    /// The port actually bound (meaningful after `start`, also when `config.port` was 0).
    public var port: Int {
        lock.lock()
        defer { lock.unlock() }
        return boundPort
    }

    public var openConnections: Int {
        lock.lock()
        defer { lock.unlock() }
        return connections.count
    }

    /// Binds, listens and starts accepting. Throws `SocketError` when the address cannot be bound.
    public func start() throws {
        lock.lock()
        defer { lock.unlock() }
        guard state == .created else { throw SocketError("server was already started") }
        signal(SIGPIPE, SIG_IGN)
        let (fd, port) = try Socket.listen(host: config.host, port: config.port, backlog: config.backlog)
        boundPort = port
        state = .running
        acceptQueue.sync {
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: acceptQueue)
            source.setEventHandler { [weak self] in self?.acceptPending() }
            source.setCancelHandler { close(fd) }
            listenFD = fd
            listenSource = source
            source.resume()
        }
        logger.message("listening on \(config.host):\(port)")
    }

    /// Graceful shutdown; blocks until done. Stops accepting, closes idle connections, lets requests
    /// in progress finish (new requests on open connections get 503) for up to `grace` seconds.
    /// When the grace period runs out, `onGraceExpired` runs (cancel queued jobs there), every
    /// request still unanswered gets 503, and connections get a short window to flush before they
    /// are closed. Do not call from a handler or a connection queue.
    public func shutdown(grace: TimeInterval, onGraceExpired: (() -> Void)? = nil) {
        lock.lock()
        guard state == .running else {
            lock.unlock()
            return
        }
        state = .stopping
        lock.unlock()

        context.startDraining()
        acceptQueue.sync {
            listenSource?.cancel()
            if acceptPaused { listenSource?.resume() }
            listenSource = nil
        }
        logger.message("shutting down: no longer accepting, \(openConnections) connection(s) open")
        forEachConnection { $0.closeIfIdle() }

        if !waitForConnections(until: uptimeNanoseconds() + nanoseconds(grace), stopOnExpedite: true) {
            logger.message("shutdown grace period over: failing unfinished requests")
            onGraceExpired?()
            let failure = HTTPResponse.error(.serviceUnavailable, "server shut down before the request finished")
            forEachConnection {
                $0.answerOutstanding(with: failure)
                $0.closeIfIdle()
            }
            let flushWindow = min(config.writeTimeout, 5) + config.lingerTimeout
            if !waitForConnections(until: uptimeNanoseconds() + nanoseconds(flushWindow), stopOnExpedite: false) {
                for connection in snapshotConnections() { connection.queue.sync { connection.forceClose() } }
            }
        }
        lock.lock()
        state = .stopped
        lock.unlock()
        logger.message("shutdown complete")
    }

    /// Ends the grace period of a running `shutdown` now (e.g. on a second SIGINT).
    public func expediteShutdown() {
        lock.lock()
        expedite = true
        lock.unlock()
    }

    // MARK: - Accepting

    private func acceptPending() {
        while true {
            let client = accept(listenFD, nil, nil)
            if client >= 0 {
                Socket.configureAccepted(client)
                register(client)
                continue
            }
            let code = errno
            switch code {
            case EINTR, ECONNABORTED:
                continue
            case EAGAIN, EWOULDBLOCK:
                return
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // Out of descriptors: the listen source would fire in a busy loop, so pause it.
                logger.message("accept paused for 100 ms: \(String(cString: strerror(code)))")
                listenSource?.suspend()
                acceptPaused = true
                acceptQueue.asyncAfter(deadline: .now() + 0.1) { [weak self] in
                    guard let self, self.acceptPaused, let source = self.listenSource else { return }
                    self.acceptPaused = false
                    source.resume()
                }
                return
            default:
                logger.message("accept failed: \(String(cString: strerror(code)))")
                return
            }
        }
    }

    private func register(_ client: Int32) {
        lock.lock()
        guard state == .running else {
            lock.unlock()
            close(client)
            return
        }
        guard connections.count < config.maxConnections else {
            let open = connections.count
            lock.unlock()
            refuse(client, open: open)
            return
        }
        nextConnectionID += 1
        let connection = HTTPConnection(id: nextConnectionID, fd: client, context: context, targetQueue: ioQueue)
        connections[connection.id] = connection
        lock.unlock()
        connection.start()
    }

    /// Over the connection limit: one best-effort 503 and close, without queueing any work.
    private func refuse(_ client: Int32, open: Int) {
        let response = HTTPResponse.error(.serviceUnavailable, "too many open connections", headers: ["Retry-After": "1"])
        var bytes = response.serializedHead(contentLength: response.body.count, close: true, keepAliveHeader: false,
                                            extra: [])
        bytes.append(response.body)
        _ = bytes.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Socket.sendFlags) }
        Socket.shutdownWrite(client)
        close(client)
        logger.message("refused a connection from \(Socket.peerName(client)): \(open) connections open")
    }

    // MARK: - Connections

    private func connectionClosed(_ id: Int) {
        lock.lock()
        connections[id] = nil
        lock.unlock()
    }

    private func snapshotConnections() -> [HTTPConnection] {
        lock.lock()
        defer { lock.unlock() }
        return Array(connections.values)
    }

    private func forEachConnection(_ body: @escaping (HTTPConnection) -> Void) {
        for connection in snapshotConnections() {
            connection.queue.async { body(connection) }
        }
    }

    /// Polls until every connection has closed; false when the deadline passed first.
    private func waitForConnections(until deadline: UInt64, stopOnExpedite: Bool) -> Bool {
        while true {
            lock.lock()
            let empty = connections.isEmpty
            let expedited = expedite
            lock.unlock()
            if empty { return true }
            if uptimeNanoseconds() >= deadline || (stopOnExpedite && expedited) { return false }
            usleep(5_000)
        }
    }
}
