import ArgumentParser
import Foundation
import HTTPServer
import ModelStore
import Pipeline
import Service
import Diagnostics
import TorchShim

/// Which device and which weights: shared by `serve`, `generate` and `bench`.
struct ModelOptions: ParsableArguments {
    @Option(name: [.customLong("device"), .customLong("devices")],
            help: "Devices: auto (every CUDA GPU, else cpu), or a list such as cpu, cuda:0,cuda:1 or 0,2.")
    var device = "auto"
    @Option(name: .customLong("models-dir"), help: "Folder holding models already downloaded (repeatable).")
    var modelsDirs: [String] = []
    @Flag(help: "Use the smoke pipeline (tiny random-weight networks) even when real weights are present.")
    var smoke = false
    @Flag(name: .customLong("require-real"), help: "Fail instead of falling back to the smoke pipeline.")
    var requireReal = false
    @Option(name: .customLong("smoke-dir"), help: "Folder of the smoke networks (default: assets/smoke found upwards).")
    var smokeDir: String?
    @Option(name: .customLong("random-weights"), help: ArgumentHelp(
        "Timing only: every model at its real size with RANDOM weights from the manifests in DIR (fixtures/trellis + BiRefNet's).",
        valueName: "DIR")) var randomWeights: String?
    @Option(name: .customLong("flux-size"), help: "Side of the FLUX image in pixels (multiple of 16).") var fluxSize = 512
    @Flag(name: .customLong("flux-fp8"), help: "FLUX transformer weights in float8 e4m3 (fits 24 GB cards).")
    var fluxFP8 = false
    @OptionGroup var generation: GeneratorOptions

    func validate() throws {
        try OptionCheck.integer(fluxSize, "flux-size", in: 64...2048)
        guard fluxSize % 16 == 0 else { throw ValidationError("--flux-size must be a multiple of 16, got \(fluxSize)") }
    }

    /// The devices listed by `--device`, checked against this machine.
    func devices() throws -> [Device] {
        do {
            return try WorkerPlan.devices(device, cudaDeviceCount: CUDA.isAvailable ? CUDA.deviceCount : 0)
        } catch let error as WorkerPlanError {
            throw ValidationError(error.message)
        }
    }

    func assemble(on device: Device) throws -> AssembledPipeline {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let smokeURL = smokeDir.map { URL(fileURLWithPath: $0) } ?? PipelineAssembly.findSmokeDirectory(from: [cwd, exe])
        var options = AssemblyOptions(device: device, modelsDirectories: modelsDirs, smokeDirectory: smokeURL,
                                      forceSmoke: smoke, requireReal: requireReal, fluxSize: fluxSize, fluxFloat8: fluxFP8,
                                      generators: try generation.generators(), textRoute: try generation.route())
        options.memoryPlan = try generation.plan(for: device)
        if let randomWeights {
            return try RandomRealSizePipeline.build(options, manifests: URL(fileURLWithPath: randomWeights))
        }
        return try PipelineAssembly.build(options, store: ModelStore(modelsDirectories: modelsDirs))
    }
}

/// `serve` and `generate`: the weights, plus how each job is sampled and gated.
struct PipelineOptions: ParsableArguments {
    @OptionGroup var models: ModelOptions
    @Option(help: "Sampling preset: fast (12/12 steps) or quality (25/25).") var preset = "fast"
    @Flag(name: .customLong("no-validate"), help: "Do not score and gate the result.") var noValidate = false
    @Option(name: .customLong("min-score"), help: "Predicted validator score below which the answer is empty.")
    var minScore = 0.6
    @Option(name: .customLong("time-budget"), help: "Seconds within which retries with new seeds may start.")
    var timeBudget = 25.0

    func validate() throws {
        _ = try settings()
        try OptionCheck.number(minScore, "min-score", in: 0...1)
        try OptionCheck.number(timeBudget, "time-budget", in: 0...3600, unit: " s")
    }

    func devices() throws -> [Device] { try models.devices() }
    func assemble(on device: Device) throws -> AssembledPipeline { try models.assemble(on: device) }

    func settings() throws -> GaussianSettings {
        guard let s = GaussianSettings.preset(preset) else { throw ValidationError("unknown preset '\(preset)' (fast or quality)") }
        return s
    }
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the generation daemon: POST /generate/ (legacy miner), POST /generate (Competition 0), GET /health.")

    @Option(help: "Address to listen on (0.0.0.0 for every interface).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port, printed at start-up).") var port = 10006
    @OptionGroup var pipeline: PipelineOptions
    @Option(help: ArgumentHelp("Worker count, spread round-robin over the devices (default: one per device). "
                               + "Each worker loads its own copy of the pipeline: two on one GPU need twice its memory."))
    var workers: Int?
    @Option(help: "Jobs waiting beyond the running ones before 503.") var queue = 4
    @Option(name: .customLong("max-body-mb"), help: "Largest request body in MB.") var maxBodyMB = 64
    @Option(name: .customLong("read-timeout"), help: "Seconds to receive a whole request.") var readTimeout = 60.0
    @Option(name: .customLong("write-timeout"), help: "Seconds without progress writing a response.") var writeTimeout = 60.0
    @Option(help: "Seconds in-flight jobs get to finish on SIGTERM/SIGINT.") var grace = 30.0
    @Option(name: .customLong("api-key-file"), help: ArgumentHelp(
        "File holding an API key: every request must then send 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
        + "(else 401); /health stays open unless --protect-health.", valueName: "FILE"))
    var apiKeyFile: String?
    @Flag(name: .customLong("protect-health"), help: "With --api-key-file: /health needs the key too.")
    var protectHealth = false
    @Option(name: .customLong("inject-oom-worker"),
            help: ArgumentHelp("Failure drill: worker N's first jobs fail with a real allocator out-of-memory error.",
                               visibility: .hidden))
    var injectOOMWorker: Int?
    @Option(name: .customLong("inject-oom-jobs"),
            help: ArgumentHelp("Failure drill: how many jobs of --inject-oom-worker fail.", visibility: .hidden))
    var injectOOMJobs = 1

    /// Every numeric option is checked here, before anything loads (ArgumentParser calls it first), so
    /// nonsense fails at once with the option's name instead of trapping after minutes of loading.
    func validate() throws {
        guard !host.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--host must not be empty") }
        try OptionCheck.integer(port, "port", in: 0...65535)
        if let workers { try OptionCheck.integer(workers, "workers", in: 1...ServeLimits.maxWorkers) }
        try OptionCheck.integer(queue, "queue", in: 0...ServeLimits.maxQueue)
        try OptionCheck.integer(maxBodyMB, "max-body-mb", in: 1...ServeLimits.maxBodyMB)
        try OptionCheck.number(readTimeout, "read-timeout", in: ServeLimits.minTimeout...ServeLimits.maxSeconds, unit: " s")
        try OptionCheck.number(writeTimeout, "write-timeout", in: ServeLimits.minTimeout...ServeLimits.maxSeconds, unit: " s")
        try OptionCheck.number(grace, "grace", in: 0...ServeLimits.maxSeconds, unit: " s")
        if let injectOOMWorker { try OptionCheck.integer(injectOOMWorker, "inject-oom-worker", in: 0...ServeLimits.maxWorkers - 1) }
        try OptionCheck.integer(injectOOMJobs, "inject-oom-jobs", in: 0...1_000_000)
        if protectHealth, apiKeyFile == nil { throw ValidationError("--protect-health needs --api-key-file") }
        _ = try serverConfig()
    }

    /// The listener's settings, the API key read from its file: all before any model loads.
    func serverConfig() throws -> ServerConfig {
        var config = ServerConfig(host: host, port: port)
        config.limits.maxBodyBytes = maxBodyMB * 1_048_576
        config.readTimeout = readTimeout
        config.writeTimeout = writeTimeout
        if let apiKeyFile {
            do {
                config.apiKey = try APIKey.load(fromFile: apiKeyFile)
            } catch let error as APIKey.LoadError {
                throw ValidationError("--api-key-file: \(error.description)")
            }
            config.openPaths = protectHealth ? [] : ["/health"]
        }
        return config
    }

    func run() throws {
        let config = try serverConfig()
        let devices: [Device]
        do {
            devices = try WorkerPlan.assign(workers: workers, over: try pipeline.devices())
        } catch let error as WorkerPlanError {
            throw ValidationError(error.message)
        }
        if let injected = injectOOMWorker, !devices.indices.contains(injected) {
            throw ValidationError("--inject-oom-worker \(injected): there are \(devices.count) worker(s), 0 to \(devices.count - 1)")
        }
        var workers: [PipelineWorker] = []
        var first: AssembledPipeline? = nil
        for (index, d) in devices.enumerated() {
            log("loading the pipeline of worker \(index) on \(d)...")
            let a = try pipeline.assemble(on: d)
            let injectedJobs = index == injectOOMWorker ? injectOOMJobs : 0
            if injectedJobs > 0 { log("FAILURE DRILL: worker \(index)'s first \(injectedJobs) job(s) will fail out of memory") }
            workers.append(PipelineWorker(device: d, pipeline: a.pipeline, injectOutOfMemoryJobs: injectedJobs))
            if first == nil { first = a }
        }
        let assembled = first!
        if assembled.isSmoke {
            log("SMOKE PIPELINE: tiny random-weight networks, NOT real generation. Missing weights:")
        } else if !assembled.missing.isEmpty {
            log("pipeline \(assembled.name); not present (related requests answer 503):")
        }
        for m in assembled.missing { log("  \(m)") }
        for line in MemoryPlanReport.lines(assembled.memoryPlan, resident: assembled.residentSizes) { log(line) }

        // /health shows the models' ids; their host paths go to this log only.
        var models: [String: Any] = [:]
        for (k, v) in assembled.loaded.sorted(by: { $0.key < $1.key }) {
            models[k] = v.id
            log("  \(k): \(v.id) from \(v.path)")
        }
        var deviceList: [String] = []
        for d in devices where !deviceList.contains(d.description) { deviceList.append(d.description) }
        let status = ServiceStatus(pipelineName: assembled.name, isSmoke: assembled.isSmoke,
                                   device: deviceList.joined(separator: ","), models: models,
                                   missing: assembled.missing, version: Gen3D.version,
                                   memory: MemoryPlanReport.json(assembled.memoryPlan, resident: assembled.residentSizes,
                                                                 models: PipelineAssembly.models(generators: assembled.pipeline.loadedGenerators)))
        var defaults = PipelineService.ServiceDefaults()
        defaults.settings = try pipeline.settings()
        defaults.validate = !pipeline.noValidate
        defaults.minScore = pipeline.minScore
        defaults.timeBudget = pipeline.timeBudget
        let service = PipelineService(workers: workers, status: status, defaults: defaults)

        // Each GPU worker runs its jobs on a stream of its own (kept alive for the server's lifetime),
        // so two workers sharing a GPU overlap instead of queueing on one stream.
        let streams = devices.map { d -> CUDAStream? in
            if case .cuda(let i) = d { return try? CUDAStream(device: i) } else { return nil }
        }
        let workerInfo = devices.map { JobQueue.WorkerInfo(device: $0.description, pipeline: assembled.name) }
        let server = GenerationServer(config: config, service: service, workers: workerInfo, queueCapacity: queue,
                                      logger: LineLogger.stderr, onWorkerStart: { worker in
            try? streams[worker]?.makeCurrent()
        })
        try server.start()
        if config.apiKey != nil {
            log("API key required (Authorization: Bearer or X-API-Key)" + (protectHealth ? ", /health included" : "; /health open"))
        }
        log("listening on http://\(host):\(server.port) with \(devices.count) worker(s): "
            + devices.enumerated().map { "\($0.offset)=\($0.element)" }.joined(separator: " "))
        server.runUntilSignalled(grace: grace)
        log("stopped")
    }
}

/// Which generators a process loads, LGM's default text route, and how the models share the GPU: shared by `serve`,
/// `generate`, `bench` (through ModelOptions) and `microbench pipeline`.
struct GeneratorOptions: ParsableArguments {
    @Option(help: ArgumentHelp("3D generators to load, the default first: trellis, lgm (ImageDream + LGM, and MVDream "
                               + "when present), or both, e.g. trellis,lgm. A request may pick any loaded one (JSON option "
                               + "'generator').")) var generator = "trellis"
    @Option(name: .customLong("text-route"), help: ArgumentHelp(
        "How text prompts reach LGM by default: flux (FLUX -> BiRefNet -> ImageDream -> LGM) or mvdream (MVDream -> LGM). "
        + "TRELLIS always takes flux. Requests may override it (JSON option 'text_route').")) var textRoute = "flux"
    @Option(name: .customLong("memory-plan"), help: ArgumentHelp(
        "How the models share the GPU: auto (by card size: >= 38 GiB resident, >= 20 GiB 24gb, else image-only), "
        + "resident, 24gb (FLUX fp8 + T5 streamed from pinned host memory) or image-only.")) var memoryPlan = "auto"
    @Option(name: .customLong("cap-gib"), help: "CUDA only: cap the allocator at N GiB before loading (emulates a smaller card).")
    var capGiB: Double?

    func validate() throws {
        _ = try generators()
        _ = try route()
        _ = try MemoryPlanOption.parse(memoryPlan)
        if let capGiB {
            guard capGiB > 0 else { throw ValidationError("--cap-gib must be a positive number of GiB, got \(capGiB)") }
            try OptionCheck.number(capGiB, "cap-gib", in: 0...ServeLimits.maxCapGiB, unit: " GiB")
        }
    }

    func generators() throws -> [GeneratorID] { try GeneratorOptions.parseGenerators(generator) }

    /// `--generator` values (known names, no repeats) as a command-line error when they are not.
    static func parseGenerators(_ list: String) throws -> [GeneratorID] {
        do { return try AssemblyOptions.parseGenerators(list) } catch { throw ValidationError("\(error)") }
    }

    func route() throws -> TextRoute {
        guard let r = TextRoute(rawValue: textRoute.lowercased()) else {
            throw ValidationError("--text-route takes flux or mvdream, got '\(textRoute)'")
        }
        return r
    }

    /// The plan of `device`, after capping its allocator when --cap-gib says so.
    func plan(for device: Device) throws -> MemoryPlan {
        let cap = try capGiB.map { try MemoryPlanOption.cap(gib: $0, device: device) }
        return try MemoryPlan.forDevice(device, capBytes: cap, requested: MemoryPlanOption.parse(memoryPlan))
    }
}

/// `--memory-plan` and `--cap-gib`.
enum MemoryPlanOption {
    static func parse(_ text: String) throws -> MemoryPlan.Tier? {
        if text.lowercased() == "auto" { return nil }
        guard let tier = MemoryPlan.Tier(rawValue: text.lowercased()), tier != .host else {
            throw ValidationError("--memory-plan takes auto, resident, 24gb or image-only, got '\(text)'")
        }
        return tier
    }

    /// Caps the caching allocator of a CUDA device at `gib` (before anything is loaded, so loading counts too);
    /// returns the cap in bytes.
    static func cap(gib: Double, device: Device) throws -> Int64 {
        guard case .cuda(let index) = device else {
            throw ValidationError("--cap-gib caps the CUDA allocator; the device is \(device)")
        }
        let total = try CUDA.memoryStats(index).total
        let fraction = gib * GiB.bytes / Double(total)
        guard fraction <= 1 else {
            throw ValidationError(String(format: "--cap-gib %.1f exceeds the card's %.1f GiB", gib, GiB.value(total)))
        }
        try CUDA.setMemoryFraction(fraction, device: index)
        log(String(format: "allocator capped at %.1f GiB (%.3f of the card)", gib, fraction))
        return Int64(gib * GiB.bytes)
    }
}

/// Upper bounds of `serve`'s options: far above any real use, low enough that no arithmetic on them overflows.
enum ServeLimits {
    static let maxWorkers = 64
    static let maxQueue = 10_000
    /// Bodies are held in memory whole; 1 GiB is far beyond any image prompt.
    static let maxBodyMB = 1024
    static let minTimeout = 0.1
    static let maxSeconds = 86_400.0
    /// Larger than any GPU's memory.
    static let maxCapGiB = 4096.0
}

/// Range checks for numeric command-line options, with the option's name in the error.
enum OptionCheck {
    static func integer(_ value: Int, _ name: String, in range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("--\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
    }

    /// Also refuses nan and infinity.
    static func number(_ value: Double, _ name: String, in range: ClosedRange<Double>, unit: String = "") throws {
        guard value.isFinite, range.contains(value) else {
            throw ValidationError("--\(name) must be a number between \(format(range.lowerBound)) and "
                                  + "\(format(range.upperBound))\(unit), got \(value)")
        }
    }

    private static func format(_ value: Double) -> String { String(format: "%g", value) }
}

func log(_ message: String) {
    FileHandle.standardError.write(Data("[gen3d] \(message)\n".utf8))
}
