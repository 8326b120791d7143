import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum HTTPClientError: Error, Equatable, CustomStringConvertible {
    case connect(String)
    case timeout
    /// The server closed the connection before a complete response.
    case closed
    case io(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .connect(let message): return "connect failed: \(message)"
        case .timeout: return "timed out"
        case .closed: return "connection closed by the server"
        case .io(let message): return "I/O error: \(message)"
        case .malformed(let message): return "malformed response: \(message)"
        }
    }

    /// Short category for load-test reports.
    public var kind: String {
        switch self {
        case .connect: return "connect"
        case .timeout: return "timeout"
        case .closed: return "closed"
        case .io: return "io"
        case .malformed: return "malformed"
        }
    }
}

public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    public var body: Data

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object, nil when it is not one.
    public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
}

/// A small blocking HTTP/1.1 client over one TCP connection, for tests and load tests. It sends
/// exactly the bytes it is given (so malformed requests can be produced) and reads
/// Content-Length, chunked and read-until-close responses.
public final class HTTPClient {
    public let host: String
    public let port: Int
    private var fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    /// Connects at once. `timeout` bounds the connect and every later send and receive.
    public init(host: String = "127.0.0.1", port: Int, timeout: TimeInterval = 10) throws {
        self.host = host
        self.port = port
        var lastError = "no address for \(host)"
        for (family, address) in (try? Socket.addresses(host: host, port: port, passive: false)) ?? [] {
            let fd = socket(family, Socket.streamType, 0)
            guard fd >= 0 else { continue }
            Socket.setTimeouts(fd, seconds: timeout)
            Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            #if !os(Linux)
            Socket.setOption(fd, SOL_SOCKET, SO_NOSIGPIPE, 1)
            #endif
            let status = address.withUnsafeBytes {
                connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
            }
            if status == 0 {
                self.fd = fd
                return
            }
            lastError = String(cString: strerror(errno))
            Socket.closeDescriptor(fd)
        }
        throw HTTPClientError.connect("\(host):\(port): \(lastError)")
    }

    deinit { close() }

    public func close() {
        if fd >= 0 {
            Socket.closeDescriptor(fd)
            fd = -1
        }
    }

    /// Closes with SO_LINGER 0, so the server gets a TCP reset instead of an orderly end of input.
    public func reset() {
        guard fd >= 0 else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    /// Half-closes: the server sees end of input, responses can still be read.
    public func shutdownWrite() { Socket.shutdownWrite(fd) }

    /// Closes with a TCP reset (SO_LINGER 0) instead of a FIN: how a killed or timed-out client leaves.
    public func closeWithReset() {
        guard fd >= 0 else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    public func send(_ text: String) throws { try send(Data(text.utf8)) }

    public func send(_ data: Data) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < raw.count {
                let sent = Socket.send(fd, raw.baseAddress! + offset, raw.count - offset)
                if sent > 0 {
                    offset += sent
                    continue
                }
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK { throw HTTPClientError.timeout }
                throw HTTPClientError.io(String(cString: strerror(code)))
            }
        }
    }

    /// Writes a well-formed request with `Host` and `Content-Length` added.
    public func sendRequest(method: String = "GET", path: String, headers: [(String, String)] = [],
                            body: Data = Data()) throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        var bytes = Data(head.utf8)
        bytes.append(body)
        try send(bytes)
    }

    public func request(method: String = "GET", path: String, headers: [(String, String)] = [],
                        body: Data = Data()) throws -> HTTPClientResponse {
        try sendRequest(method: method, path: path, headers: headers, body: body)
        return try readResponse(headOnly: method == "HEAD")
    }

    /// Reads one response. Interim (1xx) responses are skipped unless `returnInterim`.
    public func readResponse(headOnly: Bool = false, returnInterim: Bool = false) throws -> HTTPClientResponse {
        while true {
            let headEnd = try readHead()
            let lines = String(decoding: buffer[start..<headEnd], as: UTF8.self)
                .components(separatedBy: "\r\n").filter { !$0.isEmpty }
            start = headEnd
            guard let statusLine = lines.first else { throw HTTPClientError.malformed("empty head") }
            let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
                throw HTTPClientError.malformed("status line '\(statusLine)'")
            }
            var headers = HTTPHeaders()
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { throw HTTPClientError.malformed("header '\(line)'") }
                headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            var response = HTTPClientResponse(status: status, reason: parts.count > 2 ? String(parts[2]) : "",
                                              headers: headers, body: Data())
            if (100..<200).contains(status) {
                if returnInterim { return response }
                continue
            }
            if headOnly || status == 204 || status == 304 { return response }
            if headers.tokens("Transfer-Encoding").last == "chunked" {
                response.body = try readChunkedBody()
            } else if let length = headers["Content-Length"].flatMap(Int.init) {
                try fill(atLeast: length)
                response.body = Data(buffer[start..<start + length])
                start += length
            } else {
                while try readMore() {}
                response.body = Data(buffer[start...])
                start = buffer.count
            }
            return response
        }
    }

    /// True when the server closes the connection (EOF or reset) within the socket timeout;
    /// discards anything it sends first.
    public func waitForClose() -> Bool {
        start = buffer.count
        do {
            while try readMore() { start = buffer.count }
            return true
        } catch HTTPClientError.io {
            return true  // connection reset
        } catch {
            return false
        }
    }

    // MARK: - Reading

    private func readHead() throws -> Int {
        var scanned = 0  // bytes after `start` known not to complete the head (offsets survive compaction)
        while true {
            if buffer.count - start >= 4 {
                var index = start + max(scanned, 3)
                while index < buffer.count {
                    if buffer[index] == 0x0A, buffer[index - 1] == 0x0D, buffer[index - 2] == 0x0A,
                       buffer[index - 3] == 0x0D {
                        return index + 1
                    }
                    index += 1
                }
                scanned = buffer.count - start
            }
            guard try readMore() else { throw HTTPClientError.closed }
        }
    }

    private func readChunkedBody() throws -> Data {
        var body = Data()
        while true {
            let lineEnd = try readLine()
            let line = String(decoding: buffer[start..<lineEnd - 2], as: UTF8.self)
            start = lineEnd
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw HTTPClientError.malformed("chunk size '\(line)'")
            }
            if size == 0 {
                while true {  // trailers up to the empty line
                    let end = try readLine()
                    let empty = end - start == 2
                    start = end
                    if empty { return body }
                }
            }
            try fill(atLeast: size + 2)
            body.append(contentsOf: buffer[start..<start + size])
            start += size + 2
        }
    }

    private func readLine() throws -> Int {
        while true {
            if let lf = buffer[start...].firstIndex(of: 0x0A), lf > start, buffer[lf - 1] == 0x0D { return lf + 1 }
            guard try readMore() else { throw HTTPClientError.closed }
        }
    }

    private func fill(atLeast count: Int) throws {
        while buffer.count - start < count {
            guard try readMore() else { throw HTTPClientError.closed }
        }
    }

    /// Appends what the socket has; false at end of stream.
    private func readMore() throws -> Bool {
        if start > 0, start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
            if count == 0 { return false }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { throw HTTPClientError.timeout }
            throw HTTPClientError.io(String(cString: strerror(code)))
        }
    }
}

/// Builds a `multipart/form-data` body.
public struct MultipartFormBody {
    public let boundary: String
    public private(set) var data = Data()

    public init(boundary: String = "gen3d-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)) {
        self.boundary = boundary
    }

    public var contentType: String { "multipart/form-data; boundary=\(boundary)" }

    public mutating func addField(_ name: String, _ value: String) {
        data.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n".utf8))
        data.append(Data(value.utf8))
        data.append(Data("\r\n".utf8))
    }

    public mutating func addFile(_ name: String, filename: String, contentType: String, data file: Data) {
        data.append(Data(("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\n"
            + "Content-Type: \(contentType)\r\n\r\n").utf8))
        data.append(file)
        data.append(Data("\r\n".utf8))
    }

    /// The body with its closing delimiter.
    public var body: Data { data + Data("--\(boundary)--\r\n".utf8) }
}
