import ArgumentParser
import Diagnostics
import Foundation
import Pipeline

/// `gen3d readiness URL`: proves a running daemon ready (exit 0) or not (exit 1).
struct ReadinessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readiness",
        abstract: "Check a running daemon: health, both /generate routes, a stress phase, health again; exit 0 when ready.",
        discussion: """
        Ready: healthy before and after, >= 95% of requests succeed (503s shed under stress not counted), p99 latency \
        of successful requests under --budget, and no 5xx except 503 under stress.
        """)

    @Argument(help: "The daemon, e.g. http://127.0.0.1:10006") var url: String
    @Option(help: "Prompt file for the text prompts (default: assets/bench/prompts.txt).") var prompts: String?
    @Option(help: "Text prompts in the batch (legacy route, form field 'prompt').") var texts = 4
    @Option(name: .customLong("png-images"), help: "PNG images in the batch (legacy route, base64 in 'prompt').")
    var pngImages = 2
    @Option(help: "JPEG uploaded through the Competition-0 route (default: assets/bench/photo.jpg).") var jpeg: String?
    @Option(name: .customLong("jpeg-requests"), help: "Competition-0 requests in the batch (seeds 1, 2, ...).")
    var jpegRequests = 2
    @Option(help: "Concurrent clients of the stress phase (0 skips it).") var clients = 4
    @Option(help: "Seconds of the stress phase.") var duration = 20.0
    @Option(name: .customLong("max-stress-requests"), help: "Upper bound on stress requests.") var maxStressRequests = 2000
    @Option(help: "Seconds the p99 latency must stay under.") var budget = 30.0
    @Option(help: "Seconds per request before it counts as failed.") var timeout = 120.0
    @Option(help: "Write the report as JSON to this file.") var json: String?

    func run() throws {
        let requests = try buildRequests()
        let options = ReadinessOptions(url: url, requests: requests, stressClients: clients, stressSeconds: duration,
                                       maxStressRequests: maxStressRequests, budgetSeconds: budget,
                                       requestTimeout: timeout, progress: { log($0) })
        let report = try ReadinessCheck.run(options)
        print(report.text)
        if let json {
            do {
                try report.json().write(to: URL(fileURLWithPath: json))
            } catch {
                throw ValidationError("cannot write \(json): \(error.localizedDescription)")
            }
        }
        if !report.ready { throw ExitCode(1) }
    }

    private func buildRequests() throws -> [ReadinessRequest] {
        guard texts >= 0, pngImages >= 0, jpegRequests >= 0, texts + pngImages + jpegRequests > 0 else {
            throw ValidationError("--texts, --png-images and --jpeg-requests must be >= 0 and not all 0")
        }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let assets = BenchPromptSet.findDefaultDirectory(from: [cwd, exe])
        let set: BenchPromptSet
        if let prompts {
            set = try BenchPromptSet.load(file: URL(fileURLWithPath: prompts))
        } else if let assets {
            set = try BenchPromptSet.load(file: assets.appendingPathComponent(BenchPromptSet.defaultFileName))
        } else {
            throw ValidationError("no assets/bench found above \(cwd.path); pass --prompts FILE and --jpeg FILE")
        }
        guard set.texts.count >= texts else {
            throw ValidationError("--texts \(texts) but the prompt file has \(set.texts.count) text prompts")
        }
        var requests = set.texts.prefix(texts).map(ReadinessRequest.legacyText)

        if pngImages > 0 {
            guard let assets else { throw ValidationError("no assets/bench/images found for the PNG requests") }
            let folder = assets.appendingPathComponent(BenchPromptSet.defaultImagesFolder)
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
                .filter { $0.lowercased().hasSuffix(".png") }.sorted()
            guard names.count >= pngImages else {
                throw ValidationError("--png-images \(pngImages) but \(folder.path) has \(names.count) PNGs")
            }
            for name in names.prefix(pngImages) {
                requests.append(.legacyImage(png: try read(folder.appendingPathComponent(name)), name: name))
            }
        }
        if jpegRequests > 0 {
            let path = jpeg.map { URL(fileURLWithPath: $0) } ?? assets?.appendingPathComponent("photo.jpg")
            guard let path else { throw ValidationError("no JPEG: pass --jpeg FILE") }
            let data = try read(path)
            guard data.starts(with: [0xFF, 0xD8, 0xFF]) else { throw ValidationError("\(path.path) is not a JPEG") }
            for seed in 1...jpegRequests {
                requests.append(.competitionImage(jpeg: data, name: path.lastPathComponent, seed: seed))
            }
        }
        return requests
    }

    private func read(_ url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url)
        } catch {
            throw ValidationError("cannot read \(url.path): \(error.localizedDescription)")
        }
    }
}
