import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

/// Regression tests for issue 16's network-facing items, over real loopback sockets.
final class NetworkHardeningTests: XCTestCase {
    private func postJSON(_ harness: TestHarness, _ body: String) throws -> HTTPClientResponse {
        try harness.request("POST", "/generate", headers: [("Content-Type", "application/json")], body: Data(body.utf8))
    }

    // MARK: - Item 1: nested JSON must not reach a trap

    /// 513 `[` used to kill the process with SIGILL inside Foundation's parser.
    func testDeeplyNestedJSONGets400AndServerSurvives() throws {
        let harness = try TestHarness()
        let bodies = [
            String(repeating: "[", count: 512), String(repeating: "[", count: 513),
            String(repeating: "[", count: 513) + " ", String(repeating: "[", count: 1000),
            String(repeating: "[", count: 100_000), String(repeating: "{", count: 513),
            String(repeating: "{\"a\":", count: 513) + "1" + String(repeating: "}", count: 513),
            "{\"prompt\": \"x\", \"options\": " + String(repeating: "[", count: 40) + "}",
            "[" + String(repeating: "1,", count: 10_000) + "1]",
        ]
        for body in bodies {
            assertJSONError(try postJSON(harness, body), 400)
        }
        // Brackets inside strings do not count as nesting.
        let bracketsInPrompt = "{\"prompt\": \"" + String(repeating: "[{", count: 600) + "\", \"seed\": 2}"
        let response = try postJSON(harness, bracketsInPrompt)
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertEqual(try harness.request("GET", "/health").status, 200)
    }

    // MARK: - Item 2: a reset frees the connection at once

    /// A partial request followed by a TCP reset used to hold its socket and body until the
    /// read timeout; enough of them locked everyone out with 503.
    func testResetMidRequestFreesTheConnectionAtOnce() throws {
        let harness = try TestHarness { config in
            config.readTimeout = 30  // far beyond the test: only noticing the reset can free them
            config.maxConnections = 16
        }
        let partialBody = Data(repeating: UInt8(ascii: "a"), count: 200_000)
        for round in 0..<3 {
            for _ in 0..<40 {
                let client = try harness.client()
                // A connection over the limit is answered 503 and closed, so its send may fail.
                try? client.send("POST /generate/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                                 + "Content-Length: 1000000\r\n\r\n")
                try? client.send(partialBody)
                client.reset()
            }
            XCTAssertTrue(waitUntil(timeout: 3) { drained(harness) },
                          "round \(round): \(harness.server.http.openConnections) connection(s) still open after resets")
        }
        // Head only, no body yet, then a reset.
        for _ in 0..<40 {
            let client = try harness.client()
            try? client.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Partial: ")
            client.reset()
        }
        XCTAssertTrue(waitUntil(timeout: 3) { drained(harness) })
    }

    /// No connection open and `/health` answers 200. (Connections still in the accept backlog
    /// are not counted yet, so a zero count alone can come too early.)
    private func drained(_ harness: TestHarness) -> Bool {
        harness.server.http.openConnections == 0 && (try? harness.request("GET", "/health").status) == 200
    }

    /// Data and EOF that arrive together: the half-close must be noticed without waiting for the timeout.
    func testEndOfInputMidRequestClosesAtOnce() throws {
        let harness = try TestHarness { $0.readTimeout = 30 }
        for _ in 0..<20 {
            let client = try harness.client()
            try client.send("POST /generate/ HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n"
                            + String(repeating: "b", count: 300_000))
            client.shutdownWrite()
            XCTAssertTrue(client.waitForClose())
        }
        XCTAssertTrue(waitUntil(timeout: 3) { harness.server.http.openConnections == 0 })
    }

    // MARK: - Item 5: no 200 for malformed input

    func testLegacyRouteTakesBase64ImageSignaturesAsImages() throws {
        let harness = try TestHarness()
        let gif = Data("GIF89a".utf8) + Data([1, 0, 1, 0, 0x80, 0, 0]) + Data(repeating: 0, count: 20)
        for prompt in [gif.base64EncodedString(), Data("GIF87a\u{1}\u{0}".utf8).base64EncodedString(), "R0lGODlh"] {
            let response = try harness.postForm("/generate/", [("prompt", prompt)])
            assertJSONError(response, 422, mentions: "not a PNG or JPEG")
        }
        // The bare PNG and JPEG signatures are image data (too short to decode, which the service reports), not text.
        let png = try harness.postForm("/generate/", [("prompt", "iVBORw0KGgo=")])
        XCTAssertTrue(png.text.hasPrefix("image:png:8:"), png.text)
        let jpeg = try harness.postForm("/generate/", [("prompt", "/9j/")])
        XCTAssertTrue(jpeg.text.hasPrefix("image:jpeg:3:"), jpeg.text)
        // The same text on the JSON `image` field is decoded the same way.
        let viaJSON = try postJSON(harness, "{\"image\": \"iVBORw0KGgo=\"}")
        XCTAssertTrue(viaJSON.text.hasPrefix("image:png:8:"), viaJSON.text)
        assertJSONError(try harness.postForm("/generate/", [("prompt", "/9j/!!")]), 400, mentions: "base64")
        // Ordinary text still is text.
        XCTAssertEqual(try harness.postForm("/generate/", [("prompt", "a red chair")]).status, 200)
    }

    func testMultipartPartWithMalformedNameIs400() throws {
        let harness = try TestHarness()
        let dispositions = [
            "form-data; name=seed\"", "form-data; name seed", "form-data; name=\"seed", "form-data; name=\"\"",
            "form-data", "attachment; name=\"seed\"", "form-data; name=\"seed\"; name=\"x\"", "form-data; =seed",
        ]
        for disposition in dispositions {
            let body = "--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
                + "--b\r\nContent-Disposition: \(disposition)\r\n\r\n7\r\n--b--\r\n"
            let response = try harness.request("POST", "/generate/", headers: [("Content-Type", "multipart/form-data; boundary=b")],
                                               body: Data(body.utf8))
            assertJSONError(response, 400, mentions: "multipart part 2")
        }
        let noHeaders = "--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n--b\r\n\r\n7\r\n--b--\r\n"
        assertJSONError(try harness.request("POST", "/generate/", headers: [("Content-Type", "multipart/form-data; boundary=b")],
                                            body: Data(noHeaders.utf8)), 400, mentions: "no Content-Disposition")
        let good = "--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cat\r\n"
            + "--b\r\ncontent-disposition: Form-Data ; name=seed ; x=\"a;\\\"b\"\r\n\r\n7\r\n--b--\r\n"
        let response = try harness.request("POST", "/generate/", headers: [("Content-Type", "multipart/form-data; boundary=b")],
                                           body: Data(good.utf8))
        XCTAssertEqual(response.text, "text:a cat|seed:7|route:legacy")
    }

    func testNullSeedIs400() throws {
        let harness = try TestHarness()
        assertJSONError(try postJSON(harness, "{\"prompt\": \"a cat\", \"seed\": null}"), 400, mentions: "'seed'")
        XCTAssertEqual(try postJSON(harness, "{\"prompt\": \"a cat\", \"seed\": 3}").text, "text:a cat|seed:3|route:json")
        XCTAssertTrue(harness.service.requests.allSatisfy { $0.seed == 3 })
    }

    func testHostHeaderRules() throws {
        let harness = try TestHarness()
        let bad = [
            "GET /health HTTP/1.1\r\n\r\n",
            "GET /health HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET /health HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET /health HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET /health HTTP/1.1\r\nHost: user@host\r\n\r\n",
            "GET /health HTTP/1.1\r\nHost: a/b\r\n\r\n",
            "POST /generate/ HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\n\r\nprompt=x",
        ]
        for raw in bad {
            let client = try harness.client()
            try client.send(raw)
            let response = try client.readResponse()
            assertJSONError(response, 400, mentions: "Host")
            XCTAssertTrue(client.waitForClose(), raw)
        }
        XCTAssertTrue(harness.service.requests.isEmpty, "a request with a bad Host reached the service")
        let good = ["GET /health HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", "GET /health HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
                    "GET /health HTTP/1.1\r\nHost:\r\n\r\n", "GET /health HTTP/1.0\r\n\r\n"]
        for raw in good {
            let client = try harness.client()
            try client.send(raw)
            XCTAssertEqual(try client.readResponse().status, 200, raw)
        }
    }
}
