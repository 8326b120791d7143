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
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        if image != nil && prompt != nil { throw ValidationError("give --image or --prompt, not both") }
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
        let report = try LoadTest.run(url: url, path: request.path, method: request.method, body: request.body,
                                      contentType: request.contentType, concurrency: concurrency,
                                      duration: duration, requestTimeout: requestTimeout)
        if json {
            let object: [String: Any] = [
                "route": resolvedRoute.rawValue, "concurrency": concurrency, "duration_s": duration,
                "completed": report.completed, "succeeded": report.succeeded, "elapsed_s": report.elapsed,
                "requests_per_second": report.requestsPerSecond, "p50_s": report.latencyP50, "p90_s": report.latencyP90,
                "p99_s": report.latencyP99, "max_s": report.latencyMax, "errors": report.errors,
                "bytes_received": report.bytesReceived,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(resolvedRoute.rawValue) x\(concurrency) for \(duration) s against \(url)")
            print(report)
        }
    }

    private func makeRequest() throws -> (method: String, path: String, body: Data, contentType: String?) {
        let imageData = try image.map { path -> Data in
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read the image file '\(path)'")
            }
            return data
        }
        switch resolvedRoute {
        case .health:
            return ("GET", "/health", Data(), nil)
        case .competition:
            var form = MultipartFormBody()
            let isPNG = imageData!.starts(with: [0x89, 0x50, 0x4E, 0x47])
            form.addFile("prompt_image_file", filename: isPNG ? "prompt.png" : "prompt.jpg",
                         contentType: isPNG ? "image/png" : "image/jpeg", data: imageData!)
            form.addField("seed", String(seed))
            return ("POST", "/generate", form.body, form.contentType)
        case .legacy:
            let text = imageData?.base64EncodedString() ?? prompt!
            return ("POST", "/generate/", Data(FormURLEncoded.encode([("prompt", text)]).utf8),
                    "application/x-www-form-urlencoded")
        }
    }
}
