import Foundation

/// Size limits the parser enforces while bytes arrive (never after buffering everything).
public struct HTTPParserLimits: Sendable {
    /// Longest request line (method, target, version); longer -> 414.
    public var maxRequestLineBytes: Int
    /// Longest request head (request line + header fields), and separately the trailer section; longer -> 431.
    public var maxHeaderBytes: Int
    /// Most header fields; more -> 431.
    public var maxHeaderCount: Int
    /// Largest body (Content-Length or the sum of chunks); larger -> 413.
    public var maxBodyBytes: Int
    /// Longest chunk-size line including extensions; longer -> 400.
    public var maxChunkLineBytes: Int

    public init(maxRequestLineBytes: Int = 8 * 1024, maxHeaderBytes: Int = 32 * 1024, maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 64 * 1024 * 1024, maxChunkLineBytes: Int = 4 * 1024) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
    }
}

public enum HTTPParserEvent: Sendable {
    /// The head carried `Expect: 100-continue` and its body has not arrived yet: the caller should
    /// write `HTTP/1.1 100 Continue` now (the head already passed every limit check).
    case continueExpected
    /// A complete request, body de-chunked.
    case request(HTTPRequest)
}

/// Incremental HTTP/1.1 request parser: `append` bytes as they arrive, then call `next()` until
/// it returns nil. Pipelined requests come out one by one, in order. After a thrown `HTTPError`
/// the connection cannot be resynchronised, and every later `next()` rethrows it.
///
/// Accepts bare LF line endings and ignores empty lines before a request line (RFC 9112 2.2);
/// rejects obsolete line folding, whitespace before a header colon, control characters in values,
/// Content-Length together with Transfer-Encoding, and conflicting Content-Length values.
public struct HTTPRequestParser {
    public let limits: HTTPParserLimits

    private struct Head {
        var method: HTTPMethod
        var target: String
        var version: HTTPVersion
        var headers: HTTPHeaders
    }

    private enum State: Equatable {
        case head
        case fixedBody(length: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    /// Buffer capacity kept between requests; a big body's buffer is released after it (an idle
    /// keep-alive connection should not pin megabytes).
    private static let retainedCapacity = 64 * 1024

    private var buffer: [UInt8] = []
    private var start = 0            // first unconsumed byte
    private var scanFrom = 0         // where the search for an empty line resumes
    private var state = State.head
    private var head: Head?
    private var chunkedBody: [UInt8] = []
    private var failure: HTTPError?

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// Bytes received but not yet returned as part of a request.
    public var bufferedByteCount: Int { buffer.count - start }

    /// True while a request has started arriving but is not complete.
    public var isMidRequest: Bool { state != .head || start < buffer.count }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The next event, or nil when more bytes are needed.
    public mutating func next() throws -> HTTPParserEvent? {
        if let failure { throw failure }
        do {
            return try step()
        } catch let error as HTTPError {
            failure = error
            throw error
        }
    }

    // MARK: - States

    private mutating func step() throws -> HTTPParserEvent? {
        while true {
            switch state {
            case .head:
                while start < buffer.count, buffer[start] == HTTPSyntax.cr || buffer[start] == HTTPSyntax.lf {
                    start += 1
                }
                guard let (linesEnd, next) = findEmptyLine() else {
                    try checkIncompleteHead()
                    return nil
                }
                if next - start > limits.maxHeaderBytes {
                    throw HTTPError(.requestHeaderFieldsTooLarge,
                                    "request head exceeds the limit of \(limits.maxHeaderBytes) bytes")
                }
                let parsed = try parseHead(start..<linesEnd)
                start = next
                scanFrom = next
                if try frame(parsed) { return .continueExpected }

            case .fixedBody(let length):
                guard buffer.count - start >= length else { return nil }
                let body = Data(buffer[start..<start + length])
                start += length
                return .request(finish(body: body, trailers: HTTPHeaders()))

            case .chunkSize:
                try readChunkSizeLine()
                if state == .chunkSize { return nil }

            case .chunkData(let remaining):
                let take = min(remaining, buffer.count - start)
                if take == 0 { return nil }
                chunkedBody.append(contentsOf: buffer[start..<start + take])
                start += take
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)

            case .chunkDataEnd:
                guard let lineBreak = lineBreakLength(at: start) else {
                    throw HTTPError(.badRequest, "chunk data is not followed by CRLF")
                }
                if lineBreak == 0 { return nil }
                start += lineBreak
                state = .chunkSize

            case .trailers:
                if let lineBreak = lineBreakLength(at: start) {
                    if lineBreak == 0 { return nil }
                    start += lineBreak
                    return .request(finish(body: Data(chunkedBody), trailers: HTTPHeaders()))
                }
                guard let (linesEnd, next) = findEmptyLine() else {
                    if buffer.count - start > limits.maxHeaderBytes {
                        throw HTTPError(.requestHeaderFieldsTooLarge,
                                        "trailer section exceeds the limit of \(limits.maxHeaderBytes) bytes")
                    }
                    return nil
                }
                if next - start > limits.maxHeaderBytes {
                    throw HTTPError(.requestHeaderFieldsTooLarge,
                                    "trailer section exceeds the limit of \(limits.maxHeaderBytes) bytes")
                }
                var trailers = HTTPHeaders()
                for line in try lines(in: start..<linesEnd) {
                    try parseField(line, into: &trailers)
                }
                start = next
                return .request(finish(body: Data(chunkedBody), trailers: trailers))
            }
        }
    }

    private mutating func finish(body: Data, trailers: HTTPHeaders) -> HTTPRequest {
        let head = self.head!
        self.head = nil
        state = .head
        scanFrom = start
        chunkedBody = []
        if start == buffer.count, buffer.capacity > Self.retainedCapacity {
            buffer = []
            start = 0
            scanFrom = 0
        }
        return HTTPRequest(method: head.method, target: head.target, version: head.version,
                           headers: head.headers, body: body, trailers: trailers)
    }

    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.retainedCapacity)
            scanFrom -= start
            start = 0
        } else if start >= 1 << 16, start * 2 >= buffer.count {
            buffer.removeSubrange(0..<start)
            scanFrom -= start
            start = 0
        }
    }

    // MARK: - Head

    /// Finds the empty line that ends a header block starting at `start`. Returns the end of the
    /// last field line (after its LF) and the index after the empty line.
    private mutating func findEmptyLine() -> (Int, Int)? {
        var index = max(scanFrom, start)
        let end = buffer.count
        while index < end {
            if buffer[index] == HTTPSyntax.lf {
                if index + 1 < end, buffer[index + 1] == HTTPSyntax.lf { return (index + 1, index + 2) }
                if index + 2 < end, buffer[index + 1] == HTTPSyntax.cr, buffer[index + 2] == HTTPSyntax.lf {
                    return (index + 1, index + 3)
                }
                if index + 2 >= end {  // the empty line may still be arriving
                    scanFrom = index
                    return nil
                }
            }
            index += 1
        }
        scanFrom = end
        return nil
    }

    private func checkIncompleteHead() throws {
        let pending = buffer.count - start
        if pending > limits.maxRequestLineBytes,
           !buffer[start..<start + limits.maxRequestLineBytes + 1].contains(HTTPSyntax.lf) {
            throw HTTPError(.uriTooLong, "request line exceeds the limit of \(limits.maxRequestLineBytes) bytes")
        }
        if pending > limits.maxHeaderBytes {
            throw HTTPError(.requestHeaderFieldsTooLarge,
                            "request head exceeds the limit of \(limits.maxHeaderBytes) bytes")
        }
    }

    /// Splits `range` (which ends with LF) into lines without their CRLF/LF.
    private func lines(in range: Range<Int>) throws -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var lineStart = range.lowerBound
        for index in range where buffer[index] == HTTPSyntax.lf {
            var lineEnd = index
            if lineEnd > lineStart, buffer[lineEnd - 1] == HTTPSyntax.cr { lineEnd -= 1 }
            let line = buffer[lineStart..<lineEnd]
            if line.contains(HTTPSyntax.cr) { throw HTTPError(.badRequest, "bare CR in request head") }
            result.append(line)
            lineStart = index + 1
        }
        return result
    }

    private func parseHead(_ range: Range<Int>) throws -> Head {
        let headLines = try lines(in: range)
        let requestLine = headLines[0]
        if requestLine.count > limits.maxRequestLineBytes {
            throw HTTPError(.uriTooLong, "request line exceeds the limit of \(limits.maxRequestLineBytes) bytes")
        }
        var head = try parseRequestLine(requestLine)
        if headLines.count - 1 > limits.maxHeaderCount {
            throw HTTPError(.requestHeaderFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields")
        }
        for line in headLines.dropFirst() {
            try parseField(line, into: &head.headers)
        }
        return head
    }

    private func parseRequestLine(_ line: ArraySlice<UInt8>) throws -> Head {
        let parts = line.split(separator: HTTPSyntax.space, omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw HTTPError(.badRequest, "malformed request line \(Self.quoted(line))")
        }
        let (methodBytes, targetBytes, versionBytes) = (parts[0], parts[1], parts[2])
        guard HTTPSyntax.isToken(methodBytes) else {
            throw HTTPError(.badRequest, "malformed request method \(Self.quoted(methodBytes))")
        }
        let version = try parseVersion(versionBytes)
        let method = HTTPMethod(String(decoding: methodBytes, as: UTF8.self))
        if version.major != 1 {
            let message = method.rawValue == "PRI" && version.major == 2
                ? "HTTP/2 is not supported by this server; use HTTP/1.1"
                : "\(version) is not supported; use HTTP/1.1"
            throw HTTPError(.httpVersionNotSupported, message)
        }
        guard !targetBytes.isEmpty, targetBytes.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw HTTPError(.badRequest, "malformed request target")
        }
        let target = String(decoding: targetBytes, as: UTF8.self)
        let validForm = target.hasPrefix("/")
            || target.lowercased().hasPrefix("http://") || target.lowercased().hasPrefix("https://")
            || (target == "*" && method == .options)
            || method.rawValue == "CONNECT"
        guard validForm else { throw HTTPError(.badRequest, "malformed request target \(Self.quoted(targetBytes))") }
        return Head(method: method, target: target, version: version, headers: HTTPHeaders())
    }

    private func parseVersion(_ bytes: ArraySlice<UInt8>) throws -> HTTPVersion {
        let text = Array(bytes)
        func digit(_ byte: UInt8) -> Int? { (0x30...0x39).contains(byte) ? Int(byte - 0x30) : nil }
        guard text.count == 8, text.starts(with: Array("HTTP/".utf8)), text[6] == UInt8(ascii: "."),
              let major = digit(text[5]), let minor = digit(text[7]) else {
            throw HTTPError(.badRequest, "malformed HTTP version \(Self.quoted(bytes))")
        }
        return HTTPVersion(major: major, minor: minor)
    }

    private func parseField(_ line: ArraySlice<UInt8>, into headers: inout HTTPHeaders) throws {
        guard let first = line.first else { return }
        if first == HTTPSyntax.space || first == HTTPSyntax.tab {
            throw HTTPError(.badRequest, "obsolete header line folding is not allowed")
        }
        guard let colon = line.firstIndex(of: HTTPSyntax.colon) else {
            throw HTTPError(.badRequest, "header line without a colon: \(Self.quoted(line))")
        }
        let name = line[line.startIndex..<colon]
        guard HTTPSyntax.isToken(name) else {
            throw HTTPError(.badRequest, "malformed header name \(Self.quoted(name))")
        }
        var value = line[(colon + 1)...]
        while let byte = value.first, byte == HTTPSyntax.space || byte == HTTPSyntax.tab { value = value.dropFirst() }
        while let byte = value.last, byte == HTTPSyntax.space || byte == HTTPSyntax.tab { value = value.dropLast() }
        let nameText = String(decoding: name, as: UTF8.self)
        guard value.allSatisfy(HTTPSyntax.isFieldValueChar) else {
            throw HTTPError(.badRequest, "control character in the value of header '\(nameText)'")
        }
        headers.add(nameText, String(decoding: value, as: UTF8.self))
    }

    // MARK: - Framing

    /// Decides how the body is delimited and enters the matching state. Returns true when the
    /// caller should be told to send `100 Continue`.
    private mutating func frame(_ parsed: Head) throws -> Bool {
        head = parsed
        let headers = parsed.headers
        let lengths = headers.values("Content-Length")
        var hasBody: Bool
        if headers.contains("Transfer-Encoding") {
            guard lengths.isEmpty else {
                throw HTTPError(.badRequest, "request has both Transfer-Encoding and Content-Length")
            }
            let codings = headers.tokens("Transfer-Encoding")
            guard codings == ["chunked"] else {
                let list = headers.values("Transfer-Encoding").joined(separator: ", ")
                throw HTTPError(.notImplemented, "unsupported Transfer-Encoding '\(list)' (only chunked is supported)")
            }
            state = .chunkSize
            chunkedBody = []
            hasBody = true
        } else if !lengths.isEmpty {
            let length = try contentLength(lengths)
            if length > limits.maxBodyBytes {
                throw HTTPError(.payloadTooLarge,
                                "request body of \(length) bytes exceeds the limit of \(limits.maxBodyBytes) bytes")
            }
            state = .fixedBody(length: length)
            hasBody = length > 0
            // Fewer reallocations for big bodies, but never reserve much for a length only claimed.
            buffer.reserveCapacity(start + min(length, 8 << 20))
        } else {
            state = .fixedBody(length: 0)
            hasBody = false
        }

        guard let expectation = headers["Expect"], parsed.version.minor >= 1 else { return false }
        guard expectation.lowercased() == "100-continue" else {
            throw HTTPError(.expectationFailed, "unsupported expectation '\(expectation)'")
        }
        if case .fixedBody(let length) = state, buffer.count - start >= length { hasBody = false }
        if state == .chunkSize, start < buffer.count { hasBody = false }
        return hasBody
    }

    private func contentLength(_ values: [String]) throws -> Int {
        var result: Int?
        for element in values.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let digits = element.trimmingCharacters(in: .whitespaces)
            guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                throw HTTPError(.badRequest, "malformed Content-Length '\(values.joined(separator: ", "))'")
            }
            let significant = digits.drop { $0 == "0" }
            let value = significant.count > 15 ? Int.max : Int(significant) ?? 0
            if let result, result != value {
                throw HTTPError(.badRequest, "conflicting Content-Length values '\(values.joined(separator: ", "))'")
            }
            result = value
        }
        return result ?? 0
    }

    // MARK: - Chunked

    /// Parses `chunk-size [ chunk-ext ] CRLF` when the whole line has arrived.
    private mutating func readChunkSizeLine() throws {
        let searchEnd = min(buffer.count, start + limits.maxChunkLineBytes)
        guard let lf = buffer[start..<searchEnd].firstIndex(of: HTTPSyntax.lf) else {
            if buffer.count - start >= limits.maxChunkLineBytes {
                throw HTTPError(.badRequest, "chunk size line exceeds \(limits.maxChunkLineBytes) bytes")
            }
            return
        }
        var lineEnd = lf
        if lineEnd > start, buffer[lineEnd - 1] == HTTPSyntax.cr { lineEnd -= 1 }
        let line = buffer[start..<lineEnd]
        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let value = Self.hexValue(line[index]) {
            if digits > 0 || value != 0 { digits += 1 }
            if digits > 15 {
                throw HTTPError(.payloadTooLarge, "chunk size exceeds the body limit of \(limits.maxBodyBytes) bytes")
            }
            size = size * 16 + value
            index += 1
        }
        guard index > line.startIndex else {
            throw HTTPError(.badRequest, "malformed chunk size line \(Self.quoted(line))")
        }
        var rest = line[index...]
        while let byte = rest.first, byte == HTTPSyntax.space || byte == HTTPSyntax.tab { rest = rest.dropFirst() }
        if let byte = rest.first, byte != UInt8(ascii: ";") {
            throw HTTPError(.badRequest, "malformed chunk size line \(Self.quoted(line))")
        }
        if rest.contains(where: { !HTTPSyntax.isFieldValueChar($0) }) {
            throw HTTPError(.badRequest, "control character in chunk extension")
        }
        start = lf + 1
        if size == 0 {
            state = .trailers
            scanFrom = start
            return
        }
        if chunkedBody.count + size > limits.maxBodyBytes {
            throw HTTPError(.payloadTooLarge, "chunked request body exceeds the limit of \(limits.maxBodyBytes) bytes")
        }
        state = .chunkData(remaining: size)
    }

    /// 2 for CRLF, 1 for LF, 0 when only a CR has arrived so far, nil when no line break starts here.
    private func lineBreakLength(at index: Int) -> Int? {
        guard index < buffer.count else { return 0 }
        if buffer[index] == HTTPSyntax.lf { return 1 }
        guard buffer[index] == HTTPSyntax.cr else { return nil }
        guard index + 1 < buffer.count else { return 0 }
        return buffer[index + 1] == HTTPSyntax.lf ? 2 : nil
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: return Int(byte - 0x30)
        case 0x41...0x46: return Int(byte - 0x41 + 10)
        case 0x61...0x66: return Int(byte - 0x61 + 10)
        default: return nil
        }
    }

    /// A short, printable rendering of client bytes for error messages.
    static func quoted<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let shown = bytes.prefix(80).map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "?" }
        return "'" + String(shown) + (bytes.count > 80 ? "...'" : "'")
    }
}
