import Foundation

/// Everything `HTTPServer` needs to listen and to protect itself from clients.
public struct ServerConfig: Sendable {
    /// Address to bind: `127.0.0.1` (the default: this machine only), `0.0.0.0` or `::` (every
    /// interface), a host name.
    public var host: String
    /// Port to bind; 0 picks an ephemeral port (read it back from `HTTPServer.port`).
    public var port: Int
    public var backlog: Int32
    /// Open connections beyond this are answered 503 and closed at once.
    public var maxConnections: Int
    /// Request line, header and body size limits.
    public var limits: HTTPParserLimits
    /// Time allowed from the first byte of a request until the whole request (head and body) has
    /// arrived; a slow or stalled client gets 408. Bounding the whole request, not each read, is
    /// what defeats slowloris-style dribbling.
    public var readTimeout: TimeInterval
    /// Time a response write may go without progress before the connection is dropped.
    public var writeTimeout: TimeInterval
    /// How long an idle keep-alive connection stays open. A fresh connection gets at most
    /// `readTimeout` to start its first request.
    public var keepAliveTimeout: TimeInterval
    /// After a response with `Connection: close`, how long unread client bytes are drained before
    /// the socket closes (closing with unread input would reset the connection and could destroy
    /// the response in flight).
    public var lingerTimeout: TimeInterval
    /// Requests served on one connection before it is closed; nil for no limit.
    public var maxRequestsPerConnection: Int?
    /// Value of the `Server` header; nil to omit it.
    public var serverName: String?
    /// When set, every request outside `openPaths` must present this key, or gets 401.
    public var apiKey: APIKey?
    /// Paths served without the key (liveness probes). Empty protects everything.
    public var openPaths: Set<String>

    public init(host: String = "127.0.0.1", port: Int = 10006, backlog: Int32 = 512, maxConnections: Int = 512,
                limits: HTTPParserLimits = HTTPParserLimits(), readTimeout: TimeInterval = 60,
                writeTimeout: TimeInterval = 60, keepAliveTimeout: TimeInterval = 75,
                lingerTimeout: TimeInterval = 2, maxRequestsPerConnection: Int? = nil,
                serverName: String? = "gen3d", apiKey: APIKey? = nil, openPaths: Set<String> = ["/health"]) {
        self.host = host
        self.port = port
        self.backlog = backlog
        self.maxConnections = maxConnections
        self.limits = limits
        self.readTimeout = readTimeout
        self.writeTimeout = writeTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.lingerTimeout = lingerTimeout
        self.maxRequestsPerConnection = maxRequestsPerConnection
        self.serverName = serverName
        self.apiKey = apiKey
        self.openPaths = openPaths
    }
}
