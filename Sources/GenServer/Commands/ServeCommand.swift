import ArgumentParser
import Foundation
import HTTPServer
import ModelStore
import Pipeline
import TorchShim

/// Options shared by `serve` and `generate`: which device and which weights.
struct PipelineOptions: ParsableArguments {
    @Option(help: "Device: auto (every CUDA GPU, else cpu), cpu, cuda, cuda:N.") var device = "auto"
    @Option(name: .customLong("models-dir"), help: "Folder holding models already downloaded (repeatable).")
    var modelsDirs: [String] = []
    @Flag(help: "Use the smoke pipeline (tiny random-weight networks) even when real weights are present.")
    var smoke = false
    @Flag(name: .customLong("require-real"), help: "Fail instead of falling back to the smoke pipeline.")
    var requireReal = false
    @Option(name: .customLong("smoke-dir"), help: "Folder of the smoke networks (default: assets/smoke found upwards).")
    var smokeDir: String?
    @Option(name: .customLong("flux-size"), help: "Side of the FLUX image in pixels (multiple of 16).") var fluxSize = 512
    @Flag(name: .customLong("flux-fp8"), help: "FLUX transformer weights in float8 e4m3 (fits 24 GB cards).")
    var fluxFP8 = false
    @Option(help: "Sampling preset: fast (12/12 steps) or quality (25/25).") var preset = "fast"
    @Flag(name: .customLong("no-validate"), help: "Do not score and gate the result.") var noValidate = false
    @Option(name: .customLong("min-score"), help: "Predicted validator score below which the answer is empty.")
    var minScore = 0.6
    @Option(name: .customLong("time-budget"), help: "Seconds within which retries with new seeds may start.")
    var timeBudget = 25.0

    /// The devices to run workers on.
    func devices() throws -> [Device] {
        if device == "auto" {
            let n = CUDA.isAvailable ? CUDA.deviceCount : 0
            return n > 0 ? (0..<n).map { .cuda($0) } : [.cpu]
        }
        let parts = device.split(separator: ",").map(String.init)
        return try parts.map { p in
            guard let d = Device(p) ?? Int(p).map({ .cuda($0) }) else { throw ValidationError("unknown device '\(p)'") }
            return d
        }
    }

    func settings() throws -> GaussianSettings {
        guard let s = GaussianSettings.preset(preset) else { throw ValidationError("unknown preset '\(preset)' (fast or quality)") }
        return s
    }

    func assemble(on device: Device) throws -> AssembledPipeline {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let smokeURL = smokeDir.map { URL(fileURLWithPath: $0) } ?? PipelineAssembly.findSmokeDirectory(from: [cwd, exe])
        let options = AssemblyOptions(device: device, modelsDirectories: modelsDirs, smokeDirectory: smokeURL,
                                      forceSmoke: smoke, requireReal: requireReal, fluxSize: fluxSize, fluxFloat8: fluxFP8)
        return try PipelineAssembly.build(options, store: ModelStore(modelsDirectories: modelsDirs))
    }
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the generation daemon: POST /generate/ (legacy miner), POST /generate (Competition 0), GET /health.")

    @Option(help: "Address to listen on (0.0.0.0 for every interface).") var host = "127.0.0.1"
    @Option(help: "Port.") var port = 10006
    @OptionGroup var pipeline: PipelineOptions
    @Option(help: "Jobs waiting beyond the running ones before 503.") var queue = 4
    @Option(name: .customLong("max-body-mb"), help: "Largest request body in MB.") var maxBodyMB = 64
    @Option(name: .customLong("read-timeout"), help: "Seconds to receive a whole request.") var readTimeout = 60.0
    @Option(name: .customLong("write-timeout"), help: "Seconds without progress writing a response.") var writeTimeout = 60.0
    @Option(help: "Seconds in-flight jobs get to finish on SIGTERM/SIGINT.") var grace = 30.0

    func run() throws {
        let devices = try pipeline.devices()
        var pipelines: [GenerationPipeline] = []
        var first: AssembledPipeline? = nil
        for d in devices {
            log("loading the pipeline on \(d)...")
            let a = try pipeline.assemble(on: d)
            pipelines.append(a.pipeline)
            if first == nil { first = a }
        }
        let assembled = first!
        if assembled.isSmoke {
            log("SMOKE PIPELINE: tiny random-weight networks, NOT real generation. Missing weights:")
        } else if !assembled.missing.isEmpty {
            log("pipeline \(assembled.name); not present (related requests answer 503):")
        }
        for m in assembled.missing { log("  \(m)") }

        var models: [String: Any] = [:]
        for (k, v) in assembled.loaded { models[k] = v }
        let status = ServiceStatus(pipelineName: assembled.name, isSmoke: assembled.isSmoke,
                                   device: devices.map(\.description).joined(separator: ","), models: models,
                                   missing: assembled.missing, version: Gen3D.version)
        var defaults = PipelineService.ServiceDefaults()
        defaults.settings = try pipeline.settings()
        defaults.validate = !pipeline.noValidate
        defaults.minScore = pipeline.minScore
        defaults.timeBudget = pipeline.timeBudget
        let service = PipelineService(pipelines: pipelines, status: status, defaults: defaults)

        var config = ServerConfig(host: host, port: port)
        config.limits.maxBodyBytes = maxBodyMB * 1_048_576
        config.readTimeout = readTimeout
        config.writeTimeout = writeTimeout
        // Each GPU worker runs its jobs on a stream of its own (kept alive for the server's lifetime).
        let streams = devices.map { d -> CUDAStream? in
            if case .cuda(let i) = d { return try? CUDAStream(device: i) } else { return nil }
        }
        let server = GenerationServer(config: config, service: service, workers: pipelines.count, queueCapacity: queue,
                                      logger: LineLogger.stderr, onWorkerStart: { worker in
            try? streams[worker % streams.count]?.makeCurrent()
        })
        try server.start()
        log("listening on http://\(host):\(server.port) with \(pipelines.count) worker(s) on \(status.device)")
        server.runUntilSignalled(grace: grace)
        log("stopped")
    }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("[gen3d] \(message)\n".utf8))
}
