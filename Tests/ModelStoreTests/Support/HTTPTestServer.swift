import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A parsed request received by the test server.
struct ReceivedRequest {
    let method: String
    /// Path and query as sent (still percent-encoded).
    let target: String
    /// Header names lower-cased.
    let headers: [String: String]

    var path: String { String(target.split(separator: "?", maxSplits: 1)[0]) }
    var query: [String: String] {
        let parts = target.split(separator: "?", maxSplits: 1)
        guard parts.count == 2 else { return [:] }
        var result: [String: String] = [:]
        for pair in parts[1].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
            result[kv[0]] = kv.count > 1 ? kv[1].removingPercentEncoding ?? kv[1] : ""
        }
        return result
    }
}

/// What the test server sends back.
struct TestResponse {
    var status: Int
    var headers: [(String, String)] = []
    var body = Data()
    /// Send only this many body bytes (the declared Content-Length stays full), then close: a cut transfer.
    var cutAfter: Int?
}

/// A tiny HTTP/1.1 server on 127.0.0.1 and an ephemeral port: one thread per connection, one request per
/// connection (`Connection: close`). Enough for libcurl to talk to in tests.
final class HTTPTestServer: @unchecked Sendable {
    let port: Int
    private let listenFD: Int32
    private let handler: (ReceivedRequest) -> TestResponse
    private let stopped = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var isStopping = false

    init(handler: @escaping (ReceivedRequest) -> TestResponse) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestServerError.socket("socket: \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw TestServerError.socket("bind/listen: \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listenFD = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "test-http-accept"
        thread.start()
    }

    func stop() {
        lock.lock()
        let already = isStopping
        isStopping = true
        lock.unlock()
        guard !already else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        stopped.wait()
        close(listenFD)
    }

    deinit {
        stop()
    }

    private func acceptLoop() {
        defer { stopped.signal() }
        while true {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            lock.lock()
            let stopping = isStopping
            lock.unlock()
            if stopping {
                close(client)
                return
            }
            let thread = Thread { [self] in serve(client) }
            thread.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var received = Data()
        while received.range(of: Data("\r\n\r\n".utf8)) == nil {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { return }
            received.append(buffer, count: count)
            if received.count > 1 << 20 { return }
        }
        guard let request = Self.parse(received) else { return }
        let response = handler(request)
        var head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        guard sendAll(fd, Data(head.utf8)) else { return }
        if request.method == "HEAD" { return }
        let body = response.cutAfter.map { response.body.prefix($0) } ?? response.body
        _ = sendAll(fd, Data(body))
    }

    private func sendAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let sent = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if sent <= 0 { return false }
                offset += sent
            }
            return true
        }
    }

    private static func parse(_ data: Data) -> ReceivedRequest? {
        guard let end = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        let text = String(decoding: data[..<end.lowerBound], as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return ReceivedRequest(method: String(requestLine[0]), target: String(requestLine[1]), headers: headers)
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 206: return "Partial Content"
        case 302: return "Found"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 416: return "Range Not Satisfiable"
        case 500: return "Internal Server Error"
        default: return "Status"
        }
    }
}

enum TestServerError: Error {
    case socket(String)
}
