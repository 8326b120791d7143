import ArgumentParser
import Foundation
import HTTPServer

/// Closed-loop load on a running daemon (HTTPServer's `LoadTest`): `--concurrency` clients, each on
/// its own keep-alive connection, send the same generation request back to back for `--duration`
/// seconds (requests in flight at the deadline still finish and count).
struct LoadTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Send concurrent generation requests to a running daemon; print throughput and latency percentiles.")

    enum Route: String, ExpressibleByArgument {
        /// POST /generate, multipart prompt_image_file + seed (image prompts).
        case competition
        /// POST /generate/, form field prompt: the text, or the image file in base64.
        case legacy
        /// GET /health (measures the HTTP path alone).
        case health
    }

    @Option(help: "Daemon URL.") var url = "http://127.0.0.1:10006"
    @Option(help: "Image prompt file (PNG or JPEG): image-to-3D.") var image: String?
    @Option(help: "Text prompt: text-to-3D (legacy route).") var prompt: String?
    @Option(help: "competition (image, multipart), legacy (form) or health. Default: competition for an image, legacy for text.")
    var route: Route?
    @Option(help: "Seed sent with every request (competition route).") var seed = 0
    @Option(help: "Concurrent clients.") var concurrency = 2
    @Option(help: "Seconds during which new requests start.") var duration = 60.0
    @Option(name: .customLong("request-timeout"), help: "Seconds one request may take.") var requestTimeout = 120.0
    @Flag(help: ArgumentHelp("Give every request its own X-Request-Id and seed and check that its answer carries both.",
                             discussion: "Mismatched answers are counted and make the command fail."))
    var verify = false
    @Option(name: .customLong("server-pid"), help: "Sample this local process's RSS and open descriptors (Linux /proc).")
    var serverPID: Int32?
    @Option(name: .customLong("sample-interval"), help: "Seconds between server samples.") var sampleInterval = 5.0
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        if image != nil && prompt != nil { throw ValidationError("give --image or --prompt, not both") }
        if verify && resolvedRoute == .health { throw ValidationError("--verify needs a generation route") }
        switch resolvedRoute {
        case .competition:
            if image == nil { throw ValidationError("the competition route needs --image") }
        case .legacy:
            if image == nil && prompt == nil { throw ValidationError("the legacy route needs --image or --prompt") }
        case .health:
            break
        }
    }

    private var resolvedRoute: Route { route ?? (image != nil ? .competition : prompt != nil ? .legacy : .health) }

    func run() throws {
        let request = try makeRequest()
        let route = resolvedRoute
        let (baseSeed, verify) = (seed, self.verify)
        let report = try LoadTest.run(url: url, path: request.path, concurrency: concurrency, duration: duration,
                                      requestTimeout: requestTimeout, serverPID: serverPID,
                                      sampleInterval: sampleInterval) { client, sequence in
            guard verify else { return request.fixed }
            let requestID = "lt-\(client)-\(sequence)"
            let seed = baseSeed &+ client &* 1_000_000 &+ sequence
            let (body, contentType) = request.withSeed(seed)
            return LoadRequest(method: "POST", headers: [("Content-Type", contentType), ("X-Request-Id", requestID)],
                               body: body, expectedRequestID: requestID, expectedSeed: seed)
        }
        if json {
            var object: [String: Any] = [
                "route": route.rawValue, "concurrency": concurrency, "duration_s": duration,
                "completed": report.completed, "succeeded": report.succeeded, "elapsed_s": report.elapsed,
                "requests_per_second": report.requestsPerSecond, "p50_s": report.latencyP50, "p90_s": report.latencyP90,
                "p99_s": report.latencyP99, "max_s": report.latencyMax, "errors": report.errors,
                "bytes_received": report.bytesReceived, "verified": verify, "mismatches": report.mismatches,
            ]
            if let first = report.serverSamples.first, let last = report.serverSamples.last {
                object["server"] = [
                    "samples": report.serverSamples.count, "rss_first_bytes": first.rssBytes, "rss_last_bytes": last.rssBytes,
                    "rss_max_bytes": report.serverSamples.map(\.rssBytes).max() ?? 0,
                    "rss_slope_mib_per_min": ProcessSample.rssSlopeMiBPerMinute(report.serverSamples),
                    "fds_first": first.openFDs, "fds_last": last.openFDs,
                    "fds_max": report.serverSamples.map(\.openFDs).max() ?? 0,
                ]
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(route.rawValue) x\(concurrency) for \(duration) s against \(url)\(verify ? " (verified)" : "")")
            print(report)
        }
        if !report.mismatches.isEmpty { throw ExitCode(2) }
    }

    /// The request every client sends, and how to rebuild its body with another seed.
    private struct RequestTemplate {
        var method: String
        var path: String
        var body: Data
        var contentType: String?
        var withSeed: @Sendable (Int) -> (Data, String)

        var fixed: LoadRequest {
            LoadRequest(method: method, headers: contentType.map { [("Content-Type", $0)] } ?? [], body: body)
        }
    }

    private func makeRequest() throws -> RequestTemplate {
        let imageData = try image.map { path -> Data in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read the image file '\(path)'")
            }
            return data
        }
        switch resolvedRoute {
        case .health:
            return RequestTemplate(method: "GET", path: "/health", body: Data(), contentType: nil,
                                   withSeed: { _ in (Data(), "") })
        case .competition:
            let image = imageData!
            let competition: @Sendable (Int) -> (Data, String) = { seed in
                var form = MultipartFormBody()
                let isPNG = image.starts(with: [0x89, 0x50, 0x4E, 0x47])
                form.addFile("prompt_image_file", filename: isPNG ? "prompt.png" : "prompt.jpg",
                             contentType: isPNG ? "image/png" : "image/jpeg", data: image)
                form.addField("seed", String(seed))
                return (form.body, form.contentType)
            }
            let (body, contentType) = competition(seed)
            return RequestTemplate(method: "POST", path: "/generate", body: body, contentType: contentType,
                                   withSeed: competition)
        case .legacy:
            let text = imageData?.base64EncodedString() ?? prompt!
            let form = "application/x-www-form-urlencoded"
            return RequestTemplate(method: "POST", path: "/generate/", body: Data(FormURLEncoded.encode([("prompt", text)]).utf8),
                                   contentType: form, withSeed: { seed in
                                       (Data(FormURLEncoded.encode([("prompt", text), ("seed", String(seed))]).utf8), form)
                                   })
        }
    }
}
