import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

/// The optional API key over real sockets, and loading it from a file.
final class APIKeyTests: XCTestCase {
    private let key = "k3y-0123456789-abcdefABCDEF_~"

    private func post(_ harness: TestHarness, _ prompt: String, headers: [(String, String)]) throws -> HTTPClientResponse {
        try harness.request("POST", "/generate/",
                            headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers,
                            body: Data(FormURLEncoded.encode([("prompt", prompt)]).utf8))
    }

    func testRequestsWithoutTheKeyGet401AndNeverReachTheService() throws {
        let apiKey = try APIKey(key)
        let harness = try TestHarness { $0.apiKey = apiKey }
        defer { harness.shutdown() }

        let missing = try post(harness, "no key", headers: [])
        assertJSONError(missing, 401, mentions: "API key is required")
        XCTAssertEqual(missing.headers["WWW-Authenticate"], "Bearer")

        let wrongKeys = ["wrong", String(key.dropLast()), key + "x", key.uppercased(), ""]
        for wrong in wrongKeys {
            let bearer = try post(harness, "wrong key", headers: [("Authorization", "Bearer \(wrong)")])
            assertJSONError(bearer, 401, mentions: "invalid API key")
            XCTAssertEqual(bearer.headers["WWW-Authenticate"], "Bearer error=\"invalid_token\"")
            assertJSONError(try post(harness, "wrong key", headers: [("X-API-Key", wrong)]), 401)
        }
        // The key in another scheme is not a bearer token.
        assertJSONError(try post(harness, "basic", headers: [("Authorization", "Basic \(key)")]), 401)
        // Unknown routes are not revealed without the key.
        assertJSONError(try harness.request("GET", "/nothing-here"), 401)
        XCTAssertTrue(harness.service.requests.isEmpty, "an unauthorized request reached the service")

        let bearer = try post(harness, "with bearer", headers: [("Authorization", "Bearer \(key)")])
        XCTAssertEqual(bearer.status, 200, bearer.text)
        XCTAssertEqual(bearer.text, "text:with bearer|seed:none|route:legacy")
        XCTAssertEqual(try post(harness, "lower-case scheme", headers: [("Authorization", "bearer \(key)")]).status, 200)
        XCTAssertEqual(try post(harness, "header", headers: [("X-API-Key", key)]).status, 200)
        assertJSONError(try harness.request("GET", "/nothing-here", headers: [("X-API-Key", key)]), 404)

        // Liveness stays open by default.
        XCTAssertEqual(try harness.request("GET", "/health").status, 200)
        XCTAssertTrue(harness.log.lines.contains { $0.contains("POST /generate/ 401") }, "\(harness.log.lines)")
    }

    func testProtectedHealthNeedsTheKey() throws {
        let apiKey = try APIKey(key)
        let harness = try TestHarness {
            $0.apiKey = apiKey
            $0.openPaths = []
        }
        defer { harness.shutdown() }
        let refused = try harness.request("GET", "/health")
        assertJSONError(refused, 401)
        XCTAssertEqual(refused.headers["WWW-Authenticate"], "Bearer")
        XCTAssertEqual(try harness.request("GET", "/health", headers: [("Authorization", "Bearer \(key)")]).status, 200)
    }

    func testKeyComparison() throws {
        let apiKey = try APIKey("abc123")
        XCTAssertTrue(apiKey.matches("abc123"))
        for wrong in ["", "abc12", "abc1234", "abc124", "ABC123", "xbc123", "abc123\0"] {
            XCTAssertFalse(apiKey.matches(wrong), wrong)
        }
        XCTAssertThrowsError(try APIKey(""))
        XCTAssertThrowsError(try APIKey("has space"))
        XCTAssertThrowsError(try APIKey("tab\there"))
        XCTAssertThrowsError(try APIKey("caf\u{E9}"))
        XCTAssertThrowsError(try APIKey(String(repeating: "a", count: APIKey.maxBytes + 1)))
    }

    func testKeyFileIsReadAndBadFilesAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apikey-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) throws -> String {
            let url = dir.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            return url.path
        }

        let good = try APIKey.load(fromFile: try write("good", "  secret-token-1\n"))
        XCTAssertTrue(good.matches("secret-token-1"))

        func assertFails(_ path: String, mentions: String, line: UInt = #line) {
            XCTAssertThrowsError(try APIKey.load(fromFile: path), line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(path), "the error does not name the file: \(text)", line: line)
                XCTAssertTrue(text.contains(mentions), text, line: line)
            }
        }
        assertFails(dir.appendingPathComponent("absent").path, mentions: "no such file")
        assertFails(try write("empty", ""), mentions: "empty")
        assertFails(try write("blank", " \n\t\n"), mentions: "empty")
        assertFails(try write("two-words", "two words\n"), mentions: "visible ASCII")
        assertFails(dir.path, mentions: "directory")
        let binary = dir.appendingPathComponent("binary")
        try Data([0xFF, 0xFE, 0x00, 0x41]).write(to: binary)
        assertFails(binary.path, mentions: "UTF-8")
    }

    func testDefaultsBindLoopbackOnly() throws {
        XCTAssertEqual(ServerConfig().host, "127.0.0.1")
        XCTAssertNil(ServerConfig().apiKey)
        var config = ServerConfig()
        config.port = 0
        let log = LogCapture()
        let server = HTTPServer(config: config, router: Router(), logger: log.logger)
        try server.start()
        defer { server.shutdown(grace: 1) }
        XCTAssertTrue(log.lines.contains("listening on 127.0.0.1:\(server.port)"), "\(log.lines)")
        XCTAssertEqual(try HTTPClient(host: "127.0.0.1", port: server.port).request(path: "/x").status, 404)
    }
}

/// Library users can set any duration: none may trap the server (the CLI refuses them earlier).
final class ServerConfigDurationTests: XCTestCase {
    func testInfiniteAndNaNTimeoutsDoNotTrap() throws {
        XCTAssertEqual(nanoseconds(.nan), 0)
        XCTAssertEqual(nanoseconds(-1), 0)
        XCTAssertEqual(nanoseconds(1.5), 1_500_000_000)
        XCTAssertEqual(nanoseconds(.infinity), nanoseconds(1e300))
        let harness = try TestHarness {
            $0.readTimeout = .infinity
            $0.writeTimeout = 1e300
            $0.keepAliveTimeout = .infinity
        }
        let answer = try harness.postForm("/generate/", [("prompt", "still fine")])
        XCTAssertEqual(answer.status, 200, answer.text)
        harness.shutdown(grace: .infinity)
    }
}
