import Foundation

/// One complete request as the parser delivers it (body already de-chunked).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The request-target exactly as sent (`/generate/?a=b`, `http://host/path`, `*`).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: Data
    /// Trailer fields of a chunked body.
    public var trailers: HTTPHeaders

    public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1,
                headers: HTTPHeaders = HTTPHeaders(), body: Data = Data(), trailers: HTTPHeaders = HTTPHeaders()) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.trailers = trailers
    }

    /// The path part of the target (no query), still percent-encoded. Absolute-form targets are
    /// reduced to their path.
    public var path: String { splitTarget().path }

    /// The raw query string after `?`, if any.
    public var query: String? { splitTarget().query }

    /// Whether the client allows the connection to stay open after this exchange.
    public var keepAlive: Bool {
        let connection = headers.tokens("Connection")
        if version.major == 1 && version.minor >= 1 { return !connection.contains("close") }
        return connection.contains("keep-alive") && !connection.contains("close")
    }

    /// The parsed `Content-Type`, nil when absent or unparseable.
    public var contentType: MediaType? { headers["Content-Type"].flatMap(MediaType.init(parsing:)) }

    private func splitTarget() -> (path: String, query: String?) {
        var rest = Substring(target)
        if let schemeEnd = rest.range(of: "://"), rest.first != "/" {
            let afterScheme = rest[schemeEnd.upperBound...]
            rest = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }).map { afterScheme[$0...] } ?? "/"
            if rest.first == "?" { rest = "/" + rest }
        }
        if let mark = rest.firstIndex(of: "?") {
            return (String(rest[..<mark]), String(rest[rest.index(after: mark)...]))
        }
        return (String(rest), nil)
    }
}

extension HTTPRequest {
    /// Why the `Host` field breaks RFC 9112 section 3.2, nil when it is fine: an HTTP/1.1 request
    /// needs exactly one, no request may carry two, and the value must be `host[:port]`.
    public var hostFieldProblem: String? {
        let hosts = headers.values("Host")
        if hosts.count > 1 { return "request has \(hosts.count) Host header fields" }
        guard let host = hosts.first else {
            return version.major == 1 && version.minor >= 1 ? "HTTP/1.1 request has no Host header field" : nil
        }
        guard host.utf8.allSatisfy(Self.isAuthorityChar) else {
            return "malformed Host header field \(HTTPRequestParser.quoted(host.utf8))"
        }
        return nil
    }

    /// RFC 3986 reg-name, IP-literal and port characters (no userinfo, no path).
    private static func isAuthorityChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "-._~!$&'()*+,;=:[]%".utf8.contains(byte)
        }
    }
}
