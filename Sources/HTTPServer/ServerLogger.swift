import Foundation

/// One finished exchange, as the request log records it.
public struct RequestLogEntry: Sendable {
    public var requestID: String
    public var method: String
    /// The matched route pattern, or the raw path when no route matched.
    public var route: String
    /// Status sent; 0 when the connection closed before a response could be written.
    public var status: Int
    /// Bytes written for this response (head and body).
    public var bytesOut: Int
    /// Seconds from the complete request to the last response byte written.
    public var duration: Double
    public var stageTimings: [StageTiming]
    public var peer: String
    public var note: String?

    /// `req=ID METHOD ROUTE STATUS out=NB 12.3ms stages=[a=1.0ms b=2.0ms] peer=... note="..."`
    public var line: String {
        var text = "req=\(requestID) \(method) \(route) \(status) out=\(bytesOut)B \(Self.milliseconds(duration))"
        if !stageTimings.isEmpty {
            text += " stages=[" + stageTimings.map { "\($0.name)=\(Self.milliseconds($0.seconds))" }
                .joined(separator: " ") + "]"
        }
        text += " peer=\(peer)"
        if let note { text += " note=\"\(note.replacingOccurrences(of: "\"", with: "'"))\"" }
        return text
    }

    static func milliseconds(_ seconds: Double) -> String { String(format: "%.1fms", seconds * 1000) }
}

/// Where the server writes its request lines and operational messages. Must be thread-safe.
public protocol ServerLogger: Sendable {
    func request(_ entry: RequestLogEntry)
    func message(_ text: String)
}

/// Formats every event as one line and hands it to `write`, prefixed with a UTC timestamp.
public struct LineLogger: ServerLogger {
    private let write: @Sendable (String) -> Void
    private let timestamps: Bool

    public init(timestamps: Bool = true, _ write: @escaping @Sendable (String) -> Void) {
        self.write = write
        self.timestamps = timestamps
    }

    /// Lines to standard error, one `write(2)` each so concurrent lines never interleave.
    public static let stderr = LineLogger { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Discards everything.
    public static let silent = LineLogger(timestamps: false) { _ in }

    public func request(_ entry: RequestLogEntry) { emit(entry.line) }
    public func message(_ text: String) { emit(text) }

    private func emit(_ text: String) {
        guard timestamps else { return write(text) }
        var now = timeval()
        gettimeofday(&now, nil)
        write("\(HTTPResponse.isoTimestamp(now)) \(text)")
    }
}

extension HTTPResponse {
    static func isoTimestamp(_ now: timeval) -> String {
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec),
                      Int(now.tv_usec) / 1000)
    }
}
