import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

final class ParserTests: XCTestCase {
    private func parseAll(_ text: String, limits: HTTPParserLimits = HTTPParserLimits()) throws -> [HTTPParserEvent] {
        var parser = HTTPRequestParser(limits: limits)
        parser.append(Array(text.utf8))
        var events: [HTTPParserEvent] = []
        while let event = try parser.next() { events.append(event) }
        return events
    }

    private func requests(_ text: String, limits: HTTPParserLimits = HTTPParserLimits()) throws -> [HTTPRequest] {
        try parseAll(text, limits: limits).compactMap {
            if case .request(let request) = $0 { return request }
            return nil
        }
    }

    private func assertError(_ text: String, _ status: Int, limits: HTTPParserLimits = HTTPParserLimits(),
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parseAll(text, limits: limits), file: file, line: line) { error in
            XCTAssertEqual((error as? HTTPError)?.status.code, status, "\(error)", file: file, line: line)
        }
    }

    func testRequestLineAndHeaders() throws {
        let request = try XCTUnwrap(requests("POST /generate/?x=1&y=2 HTTP/1.1\r\nHost: a\r\nX-Thing:   spaced value \t\r\n"
            + "x-thing: second\r\nContent-Length: 5\r\n\r\nhello").first)
        XCTAssertEqual(request.method, .post)
        XCTAssertEqual(request.target, "/generate/?x=1&y=2")
        XCTAssertEqual(request.path, "/generate/")
        XCTAssertEqual(request.query, "x=1&y=2")
        XCTAssertEqual(request.version, .http1_1)
        XCTAssertEqual(request.headers["X-THING"], "spaced value")
        XCTAssertEqual(request.headers.values("x-thing"), ["spaced value", "second"])
        XCTAssertEqual(String(decoding: request.body, as: UTF8.self), "hello")
        XCTAssertTrue(request.keepAlive)
    }

    func testAbsoluteFormTargetAndBareLF() throws {
        let request = try XCTUnwrap(requests("\r\n\r\nGET http://example.com:8093/health?q HTTP/1.0\nHost: x\n\n").first)
        XCTAssertEqual(request.path, "/health")
        XCTAssertEqual(request.query, "q")
        XCTAssertEqual(request.version, .http1_0)
        XCTAssertFalse(request.keepAlive)
    }

    func testKeepAliveRules() throws {
        XCTAssertFalse(try requests("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")[0].keepAlive)
        XCTAssertTrue(try requests("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")[0].keepAlive)
        XCTAssertTrue(try requests("GET / HTTP/1.1\r\nConnection: upgrade, keep-alive\r\n\r\n")[0].keepAlive)
    }

    func testMalformedRequestLines() {
        assertError("GARBAGE\r\n\r\n", 400)
        assertError("GET /\r\n\r\n", 400)
        assertError("GET  / HTTP/1.1\r\n\r\n", 400)
        assertError("G(T / HTTP/1.1\r\n\r\n", 400)
        assertError("GET / HTTX/1.1\r\n\r\n", 400)
        assertError("GET / HTTP/1.10\r\n\r\n", 400)
        assertError("GET nopath HTTP/1.1\r\n\r\n", 400)
        assertError("GET / HTTP/2.0\r\n\r\n", 505)
        assertError("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505)
        assertError("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\u{fc}\u{03}\u{03}\r\n\r\n", 400)
    }

    func testMalformedHeaders() {
        assertError("GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400)
        assertError("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400)
        assertError("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400)
        assertError("GET / HTTP/1.1\r\nA: b\u{01}c\r\n\r\n", 400)
        assertError("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 400)
        assertError("GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400)
    }

    func testFraming() {
        assertError("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
        assertError("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400)
        assertError("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400)
        assertError("POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400)
        assertError("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501)
        assertError("POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501)
        assertError("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413)
        assertError("GET / HTTP/1.1\r\nExpect: something-else\r\n\r\n", 417)
        XCTAssertEqual(try requests("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc")[0].body.count, 3)
    }

    func testLimits() {
        var limits = HTTPParserLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 4, maxBodyBytes: 10)
        assertError("GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\n\r\n", 414, limits: limits)
        assertError("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n", 431, limits: limits)
        assertError("GET / HTTP/1.1\r\n" + String(repeating: "A: b\r\n", count: 5) + "\r\n", 431, limits: limits)
        assertError("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 413, limits: limits)
        assertError("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nabcde\r\n0\r\n\r\n", 413,
                    limits: limits)
        // An incomplete head over the limit fails before its end arrives.
        assertError("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 300), 431, limits: limits)
        limits.maxBodyBytes = 11
        XCTAssertNoThrow(try parseAll("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world", limits: limits))
    }

    func testChunkedBodyWithExtensionsAndTrailers() throws {
        let text = "POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value;flag\r\nhello\r\n"
            + "1 ; ext=\"quoted\"\r\n \r\n"
            + "00006\r\nworld!\r\n"
            + "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
            + "GET /next HTTP/1.1\r\n\r\n"
        let all = try requests(text)
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(String(decoding: all[0].body, as: UTF8.self), "hello world!")
        XCTAssertEqual(all[0].trailers["x-checksum"], "abc")
        XCTAssertEqual(all[0].trailers["X-Other"], "1")
        XCTAssertEqual(all[1].path, "/next")
    }

    func testChunkedErrors() {
        assertError("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400)
        assertError("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n", 400)
        assertError("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", 400)
        assertError("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nBad trailer\r\n\r\n", 400)
    }

    /// Every request must come out the same whatever the split of the byte stream.
    func testByteByByteFeedingMatchesWholeFeeding() throws {
        let text = "POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
            + "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\nT: 1\r\n\r\n"
            + "GET /c HTTP/1.1\nA: b\n\n"
        var parser = HTTPRequestParser()
        var paths: [String] = []
        var bodies: [String] = []
        for byte in text.utf8 {
            parser.append([byte])
            while let event = try parser.next() {
                if case .request(let request) = event {
                    paths.append(request.path)
                    bodies.append(String(decoding: request.body, as: UTF8.self))
                }
            }
        }
        XCTAssertEqual(paths, ["/a", "/b", "/c"])
        XCTAssertEqual(bodies, ["body", "xy", ""])
        XCTAssertFalse(parser.isMidRequest)
    }

    func testMidRequestTracking() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("\r\n".utf8))
        XCTAssertNil(try parser.next())
        XCTAssertFalse(parser.isMidRequest, "blank lines between requests do not start a request")
        parser.append(Array("GET / HT".utf8))
        XCTAssertNil(try parser.next())
        XCTAssertTrue(parser.isMidRequest)
    }

    func testExpectContinue() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        guard case .continueExpected? = try parser.next() else { return XCTFail("expected continueExpected") }
        XCTAssertNil(try parser.next())
        parser.append(Array("abc".utf8))
        guard case .request(let request)? = try parser.next() else { return XCTFail("expected the request") }
        XCTAssertEqual(request.body.count, 3)

        // The body already arrived: no interim response needed.
        let events = try parseAll("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")
        XCTAssertEqual(events.count, 1)
        // HTTP/1.0 clients cannot expect 100 Continue.
        XCTAssertEqual(try parseAll("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\na").count, 1)
    }

    func testErrorIsSticky() {
        var parser = HTTPRequestParser()
        parser.append(Array("BAD\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8))
        XCTAssertThrowsError(try parser.next())
        XCTAssertThrowsError(try parser.next())
    }

    func testLargeBodyIsBinarySafe() throws {
        var body = [UInt8]()
        for index in 0..<300_000 { body.append(UInt8(truncatingIfNeeded: index &* 31)) }
        var parser = HTTPRequestParser()
        parser.append(Array("POST / HTTP/1.1\r\nContent-Length: \(body.count)\r\n\r\n".utf8))
        var offset = 0
        var result: HTTPRequest?
        while result == nil {
            parser.append(body[offset..<min(offset + 7000, body.count)])
            offset += 7000
            if case .request(let request)? = try parser.next() { result = request }
        }
        XCTAssertEqual(result.map { Array($0.body) }, body)
    }

    func testResponseSerializationSanitisesHeaders() {
        var response = HTTPResponse(status: .ok, headers: ["X-Score": "0.7\r\nInjected: yes", "Bad Name": "x",
                                                           "Content-Length": "999"], body: Data("abc".utf8))
        response.headers.add("X-Validation-Failed", "true")
        let head = String(decoding: response.serializedHead(contentLength: 3, close: true, keepAliveHeader: false,
                                                            extra: [("Server", "t")]), as: UTF8.self)
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\nServer: t\r\n"))
        XCTAssertTrue(head.contains("X-Score: 0.7  Injected: yes\r\n"))
        XCTAssertFalse(head.contains("Bad Name"))
        XCTAssertFalse(head.contains("999"))
        XCTAssertTrue(head.contains("Content-Length: 3\r\nConnection: close\r\n\r\n"))
        XCTAssertTrue(head.contains("X-Validation-Failed: true"))
    }

    func testJSONErrorBody() throws {
        let body = JSONError.body(.payloadTooLarge, "too \"big\"")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        XCTAssertEqual(object["error"] as? String, "too \"big\"")
        XCTAssertEqual(object["status"] as? Int, 413)
    }

    func testHTTPDateFormat() {
        XCTAssertEqual(HTTPResponse.httpDate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
