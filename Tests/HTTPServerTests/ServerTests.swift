import Foundation
import XCTest
@testable import HTTPServer
@testable import Service

final class ServerTests: XCTestCase {
    // MARK: - Routes

    func testHealthReportsServiceAndQueue() throws {
        let harness = try TestHarness(workers: 2, capacity: 5)
        let response = try harness.request("GET", "/health")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["Content-Type"], "application/json")
        let json = try XCTUnwrap(response.json)
        XCTAssertEqual(json["status"] as? String, "ok")
        XCTAssertEqual(json["version"] as? String, "test-1")
        XCTAssertEqual((json["models"] as? [String: String])?["flux"], "missing")
        let queue = try XCTUnwrap(json["queue"] as? [String: Any])
        XCTAssertEqual(queue["capacity"] as? Int, 5)
        XCTAssertEqual(queue["depth"] as? Int, 0)
        let workers = try XCTUnwrap(queue["workers"] as? [[String: Any]])
        XCTAssertEqual(workers.map { $0["state"] as? String }, ["idle", "idle"])

        let head = try harness.client().request(method: "HEAD", path: "/health")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body.count, 0)
        XCTAssertEqual(head.headers["Content-Length"], String(response.body.count))

        harness.service.ready = false
        XCTAssertEqual(try harness.request("GET", "/health").status, 503)
    }

    func testLegacyTextPrompt() throws {
        let harness = try TestHarness()
        let response = try harness.postForm("/generate/", [("prompt", "a red car & a + sign")])
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertEqual(response.headers["Content-Type"], "application/octet-stream")
        XCTAssertEqual(response.text, "text:a red car & a + sign|seed:none|route:legacy")
        XCTAssertNotNil(response.headers["X-Request-Id"])
        XCTAssertNotNil(response.headers["Date"])
        XCTAssertEqual(response.headers["Server"], "gen3d")
    }

    func testLegacyBase64ImagePromptEncodedAndUnencoded() throws {
        let harness = try TestHarness()
        let png = Base64ImageTests.pngBytes
        let expected = "image:png:\(png.count):\(FakeService.fnv1a(png)):seed:9|route:legacy|file:-"
        let encoded = try harness.postForm("/generate/", [("prompt", png.base64EncodedString()), ("seed", "9")])
        XCTAssertEqual(encoded.text, expected)
        // `curl -d "prompt=$(base64 img)"` sends base64 without percent-encoding: '+' arrives as ' '.
        let raw = Data(("prompt=" + png.base64EncodedString() + "&seed=9").utf8)
        let unencoded = try harness.request("POST", "/generate/",
                                            headers: [("Content-Type", "application/x-www-form-urlencoded")], body: raw)
        XCTAssertEqual(unencoded.text, expected)
    }

    func testCompetitionMultipart() throws {
        let harness = try TestHarness()
        var jpeg = Base64ImageTests.jpegBytes
        jpeg += Data("\r\n--not-the-boundary\r\n\r\n".utf8)
        var form = MultipartFormBody()
        form.addFile("prompt_image_file", filename: "prompt.jpg", contentType: "image/jpeg", data: jpeg)
        form.addField("seed", "42")
        let response = try harness.request("POST", "/generate", headers: [("Content-Type", form.contentType)], body: form.body)
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertEqual(response.text,
                       "image:jpeg:\(jpeg.count):\(FakeService.fnv1a(jpeg)):seed:42|route:competition|file:prompt.jpg")
    }

    func testJSONRouteWithOptions() throws {
        let harness = try TestHarness()
        let body = Data("{\"prompt\": \"a chair\", \"seed\": 7, \"options\": {\"generator\": \"lgm\"}}".utf8)
        let response = try harness.request("POST", "/generate", headers: [("Content-Type", "application/json")], body: body)
        XCTAssertEqual(response.text, "text:a chair|seed:7|route:json|generator:lgm")

        let unknown = try harness.request("POST", "/generate/", headers: [("Content-Type", "application/json")],
                                          body: Data("{\"prompt\": \"x\", \"negative\": \"y\"}".utf8))
        assertJSONError(unknown, 400, mentions: "unknown field 'negative'")
    }

    func testValidationGateEmptyBodyWithHeaders() throws {
        let harness = try TestHarness()
        let response = try harness.postForm("/generate/", [("prompt", "gate")])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body.count, 0)
        XCTAssertEqual(response.headers["Content-Length"], "0")
        XCTAssertEqual(response.headers["X-Validation-Failed"], "true")
        XCTAssertEqual(response.headers["X-Score"], "0.41")
        XCTAssertEqual(response.headers["X-CLIP-Score"], "0.22")
    }

    // MARK: - Connections

    func testKeepAliveAndPipelining() throws {
        let harness = try TestHarness()
        let client = try harness.client()
        let first = try client.request(path: "/health")
        XCTAssertNil(first.headers["Connection"])
        let form = Data("prompt=second".utf8)
        let second = try client.request(method: "POST", path: "/generate/",
                                        headers: [("Content-Type", "application/x-www-form-urlencoded")], body: form)
        XCTAssertEqual(second.text, "text:second|seed:none|route:legacy")
        XCTAssertEqual(harness.server.http.openConnections, 1)

        // Three requests in one write come back in order.
        let pipelined = ["one", "two", "three"].map {
            "POST /generate/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + "Content-Length: \(7 + $0.count)\r\n\r\nprompt=\($0)"
        }.joined()
        try client.send(pipelined)
        for word in ["one", "two", "three"] {
            XCTAssertEqual(try client.readResponse().text, "text:\(word)|seed:none|route:legacy")
        }
    }

    func testChunkedRequestBodyAndExpectContinue() throws {
        let harness = try TestHarness()
        let client = try harness.client()
        try client.send("POST /generate/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n7;ext=1\r\nprompt=\r\n5\r\nchunk\r\n0\r\nX-Trailer: t\r\n\r\n")
        XCTAssertEqual(try client.readResponse().text, "text:chunk|seed:none|route:legacy")

        try client.send("POST /generate/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Expect: 100-continue\r\nContent-Length: 11\r\n\r\n")
        let interim = try client.readResponse(returnInterim: true)
        XCTAssertEqual(interim.status, 100)
        try client.send("prompt=late")
        XCTAssertEqual(try client.readResponse().text, "text:late|seed:none|route:legacy")

        // Too large for the limit: refused before the body is sent, no 100 Continue.
        let big = try harness.client()
        try big.send("POST /generate/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
        assertJSONError(try big.readResponse(returnInterim: true), 413)
    }

    func testHTTP10() throws {
        let harness = try TestHarness()
        let client = try harness.client()
        try client.send("GET /health HTTP/1.0\r\n\r\n")
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["Connection"], "close")
        XCTAssertTrue(client.waitForClose())

        let keepAlive = try harness.client()
        try keepAlive.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(try keepAlive.readResponse().headers["Connection"], "keep-alive")
        try keepAlive.send("GET /health HTTP/1.0\r\n\r\n")
        XCTAssertEqual(try keepAlive.readResponse().status, 200)
    }

    func testRequestIDIsEchoedAndLogged() throws {
        let harness = try TestHarness()
        let response = try harness.request("POST", "/generate/", headers: [
            ("Content-Type", "application/x-www-form-urlencoded"), ("X-Request-Id", "job-77"),
        ], body: Data("prompt=lamp".utf8))
        XCTAssertEqual(response.headers["X-Request-Id"], "job-77")
        XCTAssertTrue(waitUntil { harness.log.lines.contains { $0.hasPrefix("req=job-77 ") } })
        let line = try XCTUnwrap(harness.log.lines.first { $0.hasPrefix("req=job-77 ") })
        XCTAssertTrue(line.contains(" POST /generate/ 200 out="), line)
        XCTAssertTrue(line.contains("stages=[decode=1.5ms gaussians=250.0ms]"), line)
        XCTAssertTrue(line.contains("peer=127.0.0.1:"), line)
        XCTAssertNotNil(line.range(of: #"out=\d+B \d+\.\dms"#, options: .regularExpression), line)
    }

    // MARK: - Bad input

    /// Malformed HTTP is answered with the right status and a JSON error, the connection is
    /// closed, and the server keeps serving.
    func testMalformedRequestsGetStatusAndServerKeepsServing() throws {
        let harness = try TestHarness()
        let cases: [(String, Int)] = [
            ("GARBAGE\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nBad Header\r\n\r\n", 400),
            ("GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
            ("GET /health HTTP/3.0\r\n\r\n", 505),
            ("GET /health HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 5000) + "\r\n\r\n", 431),
            ("GET /" + String(repeating: "a", count: 2000) + " HTTP/1.1\r\n\r\n", 414),
            ("POST /generate/ HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413),
            ("POST /generate/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            ("POST /generate/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
            ("POST /generate/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n", 400),
            ("GET /health HTTP/1.1\r\nExpect: teapot\r\n\r\n", 417),
        ]
        for (raw, status) in cases {
            let client = try harness.client()
            try client.send(raw)
            let response = try client.readResponse()
            assertJSONError(response, status)
            XCTAssertEqual(response.headers["Connection"], "close", raw)
            XCTAssertTrue(client.waitForClose(), "connection stays open after \(status)")
        }
        XCTAssertEqual(try harness.request("GET", "/health").status, 200)
    }

    /// An oversized body that the client keeps sending still gets its 413 (lingering close).
    func testOversizedBodyWhileClientIsSending() throws {
        let harness = try TestHarness()
        let client = try harness.client()
        let body = Data(repeating: UInt8(ascii: "a"), count: 1_200_000)
        do {
            try client.sendRequest(method: "POST", path: "/generate/",
                                   headers: [("Content-Type", "application/x-www-form-urlencoded")], body: body)
        } catch {
            // The server may stop reading once it answered; the response must still be readable.
        }
        assertJSONError(try client.readResponse(), 413, mentions: "exceeds the limit")
    }

    func testRoutingAndInputErrors() throws {
        let harness = try TestHarness()
        let client = try harness.client()
        func post(_ path: String, _ contentType: String, _ body: String) throws -> HTTPClientResponse {
            try client.request(method: "POST", path: path, headers: [("Content-Type", contentType)], body: Data(body.utf8))
        }
        let form = "application/x-www-form-urlencoded"

        assertJSONError(try client.request(path: "/nope"), 404, mentions: "/nope")
        let wrongMethod = try client.request(path: "/generate/")
        assertJSONError(wrongMethod, 405)
        XCTAssertEqual(wrongMethod.headers["Allow"], "POST")
        let postHealth = try client.request(method: "POST", path: "/health")
        assertJSONError(postHealth, 405)
        XCTAssertEqual(postHealth.headers["Allow"], "GET, HEAD")
        assertJSONError(try post("/generate/", "text/plain", "prompt=x"), 415)
        assertJSONError(try post("/generate/", form, "seed=1"), 400, mentions: "missing field 'prompt'")
        assertJSONError(try post("/generate", form, "seed=1"), 400, mentions: "missing field 'prompt_image_file'")
        assertJSONError(try post("/generate/", form, "prompt=cat&seed=x1"), 400, mentions: "seed")
        assertJSONError(try post("/generate/", form, "prompt=%ZZ"), 400, mentions: "percent-encoding")
        assertJSONError(try post("/generate/", form, "prompt=iVBORw0KGgoAAAANSUhEUg%21%21%21"), 400, mentions: "base64")
        assertJSONError(try post("/generate/", form, "prompt=data%3Aimage%2Fpng%3Bbase64%2C%25%25%25"), 400,
                        mentions: "base64")
        var gif = MultipartFormBody()
        gif.addFile("prompt_image_file", filename: "p.gif", contentType: "image/gif", data: Data("GIF89a".utf8))
        assertJSONError(try client.request(method: "POST", path: "/generate", headers: [("Content-Type", gif.contentType)],
                                           body: gif.body), 422)
        assertJSONError(try post("/generate/", "multipart/form-data", "x"), 400, mentions: "boundary")

        // Still the same connection: 4xx answers do not close it.
        XCTAssertEqual(try client.request(path: "/health").status, 200)
        XCTAssertEqual(harness.service.requests.count, 0, "no bad request reached the service")
    }

    func testServiceErrorsFailOnlyTheirRequest() throws {
        let harness = try TestHarness()
        let corrupt = Base64ImageTests.pngBytes + Data("CORRUPT".utf8)
        assertJSONError(try harness.postForm("/generate/", [("prompt", corrupt.base64EncodedString())]), 422,
                        mentions: "does not decode")
        let oom = try harness.postForm("/generate/", [("prompt", "oom")])
        assertJSONError(oom, 503, mentions: "out of device memory")
        XCTAssertNotNil(oom.headers["Retry-After"].flatMap(Int.init))
        assertJSONError(try harness.postForm("/generate/", [("prompt", "unavailable")]), 503, mentions: "loading")
        assertJSONError(try harness.postForm("/generate/", [("prompt", "crash")]), 500, mentions: "kernel failed")
        assertJSONError(try harness.postForm("/generate/", [("prompt", "untyped")]), 500)
        assertJSONError(try harness.postForm("/generate/", [("prompt", "bad option")]), 400, mentions: "generator")
        XCTAssertEqual(try harness.postForm("/generate/", [("prompt", "fine")]).status, 200)
    }

    // MARK: - Load and limits

    func testTwentyConcurrentRequestsEachGetTheirOwnAnswer() throws {
        let harness = try TestHarness(workers: 2, capacity: 32)
        let answers = Locked([Int: String]())
        let group = DispatchGroup()
        for index in 0..<20 {
            group.enter()
            Thread {
                defer { group.leave() }
                let prompt = index % 2 == 0 ? "slow" : "prompt \(index)"
                let text: String
                do {
                    text = try harness.postForm("/generate/", [("prompt", prompt), ("seed", String(index))]).text
                } catch {
                    text = "error: \(error)"
                }
                answers.mutate { $0[index] = text }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        for index in 0..<20 {
            let prompt = index % 2 == 0 ? "slow" : "prompt \(index)"
            XCTAssertEqual(answers.value[index], "text:\(prompt)|seed:\(index)|route:legacy")
        }
        XCTAssertEqual(harness.service.requests.count, 20)
    }

    func testFullQueueAnswers503WithRetryAfter() throws {
        let harness = try TestHarness(workers: 1, capacity: 1)
        let service = harness.service
        let results = DispatchGroup()
        let texts = Locked([String]())
        func background(_ prompt: String) {
            results.enter()
            Thread {
                let text = (try? harness.postForm("/generate/", [("prompt", prompt)]).text) ?? "error"
                texts.mutate { $0.append(text) }
                results.leave()
            }.start()
        }
        background("block")
        XCTAssertEqual(service.started.wait(timeout: .now() + 5), .success)
        background("queued")
        XCTAssertTrue(waitUntil { harness.server.jobs.snapshot().waiting == 1 })

        let rejected = try harness.postForm("/generate/", [("prompt", "one too many")])
        assertJSONError(rejected, 503, mentions: "queue is full")
        XCTAssertEqual(rejected.headers["Retry-After"], "3")
        let health = try XCTUnwrap(try harness.request("GET", "/health").json?["queue"] as? [String: Any])
        XCTAssertEqual(health["depth"] as? Int, 1)
        XCTAssertEqual((health["workers"] as? [[String: Any]])?.first?["state"] as? String, "busy")

        service.release.signal()
        XCTAssertEqual(results.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(texts.value.sorted(), ["text:block|seed:none|route:legacy", "text:queued|seed:none|route:legacy"])
    }

    func testSlowClientTimesOutWithoutBlockingOthers() throws {
        let harness = try TestHarness { $0.readTimeout = 1 }
        let slowHead = try harness.client()
        try slowHead.send("POST /generate/ HTTP/1.1\r\nHost: x\r\nContent-Le")
        let slowBody = try harness.client()
        try slowBody.send("POST /generate/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + "Content-Length: 100\r\n\r\nprompt=dribb")
        let began = Date()
        // Others are served while both stall.
        let other = try harness.client()
        for index in 0..<5 {
            let response = try other.request(method: "POST", path: "/generate/",
                                              headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                              body: Data("prompt=fast\(index)".utf8))
            XCTAssertEqual(response.text, "text:fast\(index)|seed:none|route:legacy")
        }
        XCTAssertLessThan(Date().timeIntervalSince(began), 1, "other clients waited for the slow ones")
        for client in [slowHead, slowBody] {
            try? client.send("dle")  // dribbling one more byte does not extend the deadline
            assertJSONError(try client.readResponse(), 408)
            XCTAssertTrue(client.waitForClose())
        }
        let elapsed = Date().timeIntervalSince(began)
        XCTAssertGreaterThan(elapsed, 0.9)
        XCTAssertLessThan(elapsed, 3)
        XCTAssertTrue(harness.log.lines.contains { $0.contains(" - - 408 ") })
    }

    /// A response larger than the socket buffers goes out through the write source, intact.
    func testLargeResponseIsWrittenCompletely() throws {
        let harness = try TestHarness()
        let client = try harness.client()
        for _ in 0..<2 {
            let response = try client.request(method: "POST", path: "/generate/",
                                              headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                              body: Data("prompt=big+24000000".utf8))
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.body.count, 24_000_000)
            XCTAssertEqual(response.body, FakeService.pattern(count: 24_000_000))
        }
    }

    /// A client that stops reading a large response is dropped after the write timeout, and
    /// others are served meanwhile.
    func testStalledReaderHitsWriteTimeout() throws {
        let harness = try TestHarness { $0.writeTimeout = 0.5 }
        let stalled = try harness.client()
        try stalled.sendRequest(method: "POST", path: "/generate/",
                                headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                body: Data("prompt=big+64000000".utf8))
        XCTAssertTrue(waitUntil { harness.service.requests.count == 1 })
        XCTAssertEqual(try harness.request("GET", "/health").status, 200)
        XCTAssertTrue(waitUntil(timeout: 5) { harness.log.lines.contains { $0.contains("write made no progress") } },
                      harness.log.lines.joined(separator: "\n"))
        XCTAssertTrue(waitUntil { harness.server.http.openConnections == 0 })
        XCTAssertThrowsError(try stalled.readResponse(), "the truncated response must not parse as complete")
    }

    func testIdleKeepAliveConnectionIsClosed() throws {
        let harness = try TestHarness {
            $0.keepAliveTimeout = 0.3
            $0.readTimeout = 0.5
        }
        let idle = try harness.client()
        XCTAssertEqual(try idle.request(path: "/health").status, 200)
        let began = Date()
        XCTAssertTrue(idle.waitForClose())
        XCTAssertLessThan(Date().timeIntervalSince(began), 2)
        XCTAssertTrue(waitUntil { harness.server.http.openConnections == 0 })

        // A connection that never sends a byte gets the read timeout (0.5 s), not keep-alive.
        let silent = try harness.client()
        let opened = Date()
        XCTAssertTrue(silent.waitForClose())
        XCTAssertGreaterThan(Date().timeIntervalSince(opened), 0.25)
    }

    func testConnectionLimit() throws {
        let harness = try TestHarness { $0.maxConnections = 2 }
        let first = try harness.client()
        let second = try harness.client()
        XCTAssertTrue(waitUntil { harness.server.http.openConnections == 2 })
        let third = try harness.client()
        assertJSONError(try third.readResponse(), 503, mentions: "too many open connections")
        XCTAssertEqual(try first.request(path: "/health").status, 200)
        XCTAssertEqual(try second.request(path: "/health").status, 200)
    }

    func testLoadTestAgainstHealth() throws {
        let harness = try TestHarness()
        let report = try LoadTest.run(url: "http://127.0.0.1:\(harness.port)", path: "/health", concurrency: 4,
                                      duration: 0.3)
        XCTAssertGreaterThan(report.completed, 10)
        XCTAssertEqual(report.succeeded, report.completed)
        XCTAssertTrue(report.errors.isEmpty, "\(report.errors)")
        XCTAssertGreaterThan(report.requestsPerSecond, 0)
        XCTAssertLessThanOrEqual(report.latencyP50, report.latencyP99)
        XCTAssertLessThanOrEqual(report.latencyP99, report.latencyMax)

        let form = Data("prompt=x".utf8)
        let generate = try LoadTest.run(url: "http://127.0.0.1:\(harness.port)/generate/", method: "POST", body: form,
                                        contentType: "application/x-www-form-urlencoded", concurrency: 2, duration: 0.2)
        XCTAssertGreaterThan(generate.succeeded, 0)
        XCTAssertEqual(try LoadTest.parse(url: "http://[::1]:8093/generate/"),
                       LoadTest.Target(host: "::1", port: 8093, path: "/generate/"))
        XCTAssertThrowsError(try LoadTest.parse(url: "https://x"))
    }

    // MARK: - Shutdown

    func testGracefulShutdownLetsInFlightJobFinish() throws {
        let harness = try TestHarness(workers: 1, capacity: 4)
        let port = harness.port
        let answer = Locked<HTTPClientResponse?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread {
            let response = try? harness.postForm("/generate/", [("prompt", "block")])
            answer.mutate { $0 = response }
            finished.signal()
        }.start()
        XCTAssertEqual(harness.service.started.wait(timeout: .now() + 5), .success)
        let idle = try harness.client()
        XCTAssertEqual(try idle.request(path: "/health").status, 200)

        let shutdownDone = DispatchSemaphore(value: 0)
        Thread {
            harness.shutdown(grace: 5)
            shutdownDone.signal()
        }.start()
        XCTAssertTrue(waitUntil { (try? HTTPClient(host: "127.0.0.1", port: port, timeout: 1)) == nil },
                      "still accepting connections")
        XCTAssertTrue(idle.waitForClose(), "idle keep-alive connection not closed")
        XCTAssertEqual(shutdownDone.wait(timeout: .now() + 0.2), .timedOut, "shutdown did not wait for the job")

        harness.service.release.signal()
        XCTAssertEqual(finished.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(answer.value?.status, 200)
        XCTAssertEqual(answer.value?.text, "text:block|seed:none|route:legacy")
        XCTAssertEqual(answer.value?.headers["Connection"], "close")
        XCTAssertEqual(shutdownDone.wait(timeout: .now() + 5), .success)
    }

    func testShutdownAfterGraceFailsUnfinishedRequestsCleanly() throws {
        let harness = try TestHarness(workers: 1, capacity: 4)
        let statuses = Locked([Int]())
        let done = DispatchGroup()
        for prompt in ["block", "queued"] {
            done.enter()
            Thread {
                let status = (try? harness.postForm("/generate/", [("prompt", prompt)]).status) ?? -1
                statuses.mutate { $0.append(status) }
                done.leave()
            }.start()
            if prompt == "block" { XCTAssertEqual(harness.service.started.wait(timeout: .now() + 5), .success) }
        }
        XCTAssertTrue(waitUntil { harness.server.jobs.snapshot().waiting == 1 })
        let began = Date()
        harness.shutdown(grace: 0.2)
        XCTAssertLessThan(Date().timeIntervalSince(began), 3)
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(statuses.value, [503, 503])
        harness.service.release.signal()  // the abandoned job returns; its answer is dropped
        XCTAssertTrue(harness.server.jobs.waitUntilIdle(timeout: 5))
        XCTAssertEqual(harness.service.requests.map(\.prompt), [.text("block")], "the queued job never ran")
    }

    func testSignalTrapCallsHandler() throws {
        let received = Locked([Int32]())
        let trap = SignalTrap(signals: [SIGUSR2]) { signal in received.mutate { $0.append(signal) } }
        kill(getpid(), SIGUSR2)
        XCTAssertTrue(waitUntil { received.value == [SIGUSR2] })
        trap.cancel()
    }

    /// The daemon's main path: the first signal starts a graceful shutdown, a second one cuts the
    /// grace period short so a stuck job is answered 503 and `runUntilSignalled` returns.
    func testRunUntilSignalledShutsDownAndSecondSignalHurries() throws {
        let harness = try TestHarness(workers: 1, capacity: 2)
        let returned = DispatchSemaphore(value: 0)
        Thread {
            harness.server.runUntilSignalled(grace: 30, signals: [SIGUSR1])
            returned.signal()
        }.start()
        let status = Locked<Int?>(nil)
        Thread {
            let code = (try? harness.postForm("/generate/", [("prompt", "block")]).status) ?? -1
            status.mutate { $0 = code }
        }.start()
        XCTAssertEqual(harness.service.started.wait(timeout: .now() + 5), .success)
        XCTAssertTrue(waitUntil { SignalTrap.isHandled(SIGUSR1) }, "SIGUSR1 would kill the test process")
        kill(getpid(), SIGUSR1)
        XCTAssertTrue(waitUntil { (try? HTTPClient(host: "127.0.0.1", port: harness.port, timeout: 1)) == nil })
        XCTAssertEqual(returned.wait(timeout: .now() + 0.3), .timedOut, "the first signal must wait for the job")
        kill(getpid(), SIGUSR1)
        XCTAssertEqual(returned.wait(timeout: .now() + 5), .success)
        XCTAssertTrue(waitUntil { status.value != nil })
        XCTAssertEqual(status.value, 503)
        harness.service.release.signal()
        XCTAssertTrue(harness.server.jobs.waitUntilIdle(timeout: 5))
        XCTAssertTrue(harness.log.lines.contains { $0.contains("received signal") })
    }
}
