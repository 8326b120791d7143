import Foundation

/// The one-shot reply channel of a request. `send` may be called from any thread; the first call
/// wins and later ones are ignored, so a request is never answered twice (e.g. when shutdown has
/// already answered 503 and the job finishes afterwards).
public final class Responder: @unchecked Sendable {
    public let requestID: String
    /// Cancelled by the connection when the client goes away before the answer (EOF or reset
    /// while the request is handled); a job queued or running for this request checks it.
    public let cancellation = CancellationToken()
    private let lock = NSLock()
    private var deliver: ((HTTPResponse) -> Void)?

    public init(requestID: String, deliver: @escaping (HTTPResponse) -> Void) {
        self.requestID = requestID
        self.deliver = deliver
    }

    /// Returns false when the request had already been answered.
    @discardableResult
    public func send(_ response: HTTPResponse) -> Bool {
        lock.lock()
        let deliver = self.deliver
        self.deliver = nil
        lock.unlock()
        guard let deliver else { return false }
        deliver(response)
        return true
    }

    public var isAnswered: Bool {
        lock.lock()
        defer { lock.unlock() }
        return deliver == nil
    }
}

/// Exact-path routing with 404 for unknown paths and 405 + `Allow` for known paths with another
/// method. `HEAD` falls back to the `GET` handler (the server drops the body). Register routes
/// before the server starts; handlers run on the connection's queue and must not block on a
/// long job (hand it to a `JobQueue` and answer through the responder later).
public final class Router: @unchecked Sendable {
    public typealias Handler = (HTTPRequest, Responder) -> Void

    public enum Match {
        case handler(Handler, route: String)
        case methodNotAllowed(allowed: [HTTPMethod], route: String)
        case notFound
    }

    private var routes: [String: [(method: HTTPMethod, handler: Handler)]] = [:]

    public init() {}

    public func add(_ method: HTTPMethod, _ path: String, _ handler: @escaping Handler) {
        routes[path, default: []].removeAll { $0.method == method }
        routes[path, default: []].append((method: method, handler: handler))
    }

    public func get(_ path: String, _ handler: @escaping Handler) { add(.get, path, handler) }
    public func post(_ path: String, _ handler: @escaping Handler) { add(.post, path, handler) }

    public func match(_ request: HTTPRequest) -> Match {
        let path = request.path
        guard let entries = routes[path] else { return .notFound }
        if let entry = entries.first(where: { $0.method == request.method }) {
            return .handler(entry.handler, route: path)
        }
        if request.method == .head, let entry = entries.first(where: { $0.method == .get }) {
            return .handler(entry.handler, route: path)
        }
        var allowed = entries.map(\.method)
        if allowed.contains(.get), !allowed.contains(.head) { allowed.append(.head) }
        return .methodNotAllowed(allowed: allowed, route: path)
    }

    /// Runs the matching handler or answers 404/405. Returns the route label for the log.
    @discardableResult
    public func handle(_ request: HTTPRequest, _ responder: Responder) -> String {
        switch match(request) {
        case .handler(let handler, let route):
            handler(request, responder)
            return route
        case .methodNotAllowed(let allowed, let route):
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            responder.send(.error(.methodNotAllowed, "method \(request.method) is not allowed on \(route); use \(allow)",
                                  headers: ["Allow": allow]))
            return route
        case .notFound:
            let path = String(request.path.prefix(200))
            responder.send(.error(.notFound, "no route for \(request.method) \(path)"))
            return path
        }
    }
}
