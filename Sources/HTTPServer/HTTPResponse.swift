import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A complete response. The server adds `Content-Length`, `Connection`, `Date`, `Server` and
/// `X-Request-Id`; handler-supplied values for the framing headers are replaced.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: Data
    /// Per-stage timings for the request log line; never sent to the client.
    public var stageTimings: [StageTiming]
    /// A short note for the request log line (the error message of an error response).
    public var logNote: String?

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: Data = Data(),
                stageTimings: [StageTiming] = [], logNote: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.stageTimings = stageTimings
        self.logNote = logNote
    }

    /// A JSON response from a JSONSerialization-compatible object (dictionaries, arrays, strings,
    /// numbers, booleans, NSNull). An object that cannot be encoded yields a 500 error response.
    public static func json(_ object: Any, status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        guard JSONSerialization.isValidJSONObject(object),
              let body = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return JSONError.response(.internalServerError, "response is not encodable as JSON")
        }
        var headers = headers
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    /// `{"error": message, "status": code}` (see `JSONError`).
    public static func error(_ status: HTTPStatus, _ message: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        JSONError.response(status, message, headers: headers)
    }

    /// Status line and header block, with the server's framing headers. Header names that are not
    /// tokens are dropped and control characters in values become spaces, so a handler can never
    /// split the response.
    func serializedHead(contentLength: Int, close: Bool, keepAliveHeader: Bool,
                        extra: [(String, String)]) -> Data {
        var text = "HTTP/1.1 \(status.code) \(Self.clean(status.reason))\r\n"
        let framing = ["content-length", "transfer-encoding", "connection"]
        for (name, value) in extra + headers.fields.map({ ($0.name, $0.value) }) {
            guard HTTPSyntax.isToken(name.utf8), !framing.contains(name.lowercased()) else { continue }
            text += "\(name): \(Self.clean(value))\r\n"
        }
        text += "Content-Length: \(contentLength)\r\n"
        if close {
            text += "Connection: close\r\n"
        } else if keepAliveHeader {
            text += "Connection: keep-alive\r\n"
        }
        text += "\r\n"
        return Data(text.utf8)
    }

    private static func clean(_ value: String) -> String {
        guard value.utf8.contains(where: { !HTTPSyntax.isFieldValueChar($0) }) else { return value }
        return String(decoding: value.utf8.map { HTTPSyntax.isFieldValueChar($0) ? $0 : HTTPSyntax.space }, as: UTF8.self)
    }

    /// The IMF-fixdate for `Date` headers.
    static func httpDate(_ now: time_t = time(nil)) -> String {
        var seconds = now
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let written = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[0..<written].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The error body every error response uses: `{"error": "...", "status": N}`.
public enum JSONError {
    private struct Body: Encodable {
        let error: String
        let status: Int
    }

    public static func body(_ status: HTTPStatus, _ message: String) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(Body(error: message, status: status.code))) ?? Data("{\"status\":\(status.code)}".utf8)
    }

    public static func response(_ status: HTTPStatus, _ message: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var headers = headers
        headers.set("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: headers, body: body(status, message), logNote: message)
    }

    public static func response(_ error: HTTPError, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        response(error.status, error.message, headers: headers)
    }
}
