import ArgumentParser
import Foundation
import ModelStore
import Pipeline
import TorchShim

/// `gen3d bench`: every available configuration over a prompt set, then the one that fits the time budget.
struct BenchPipelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time each pipeline configuration over a prompt set and pick the one that fits the budget.",
        discussion: """
        Configurations: image generator (FLUX.1-schnell; SD3.5 not implemented) x 3D generator (TRELLIS fast 12/12 and \
        quality 25/25; LGM not implemented yet) for text prompts, and the 3D generators alone for image prompts. \
        Prompts: assets/bench/prompts.txt and assets/bench/images/*.png, or --prompts FILE.
        """)

    @Option(help: "Device: auto (cuda:0 when present, else cpu), cpu, cuda, cuda:N.") var device = "auto"
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
    @Flag(name: .customLong("flux-fp8"), help: "FLUX transformer weights in float8 e4m3.") var fluxFP8 = false

    @Option(help: "Prompt file: one text prompt a line, 'image: PATH' lines for images (default: assets/bench).")
    var prompts: String?
    @Option(help: "Use only the first N text prompts.") var limit: Int?
    @Option(help: "Use only the first N image prompts.") var images: Int?
    @Option(help: "Unmeasured warm-up runs per configuration.") var warmup = 1
    @Option(help: "Seed of every job.") var seed: UInt64 = 42
    @Option(help: "Run only configurations whose name contains this (repeatable), e.g. --only fast.")
    var only: [String] = []
    @Option(help: "Seconds a request may take (the validator's budget).") var budget = 30.0
    @Option(help: "Fraction of the budget kept free: a configuration fits when its p90 time <= budget x (1 - margin).")
    var margin = BudgetPolicy.defaultMargin
    @Option(name: .customLong("cap-gib"), help: "CUDA only: cap the allocator at N GiB (emulates a smaller card).")
    var capGiB: Double?
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Option(help: "Write report.md and time-per-stage.png into this folder.") var report: String?
    @Flag(help: "No per-job progress lines.") var quiet = false

    func validate() throws {
        guard limit.map({ $0 >= 0 }) ?? true, images.map({ $0 >= 0 }) ?? true else {
            throw ValidationError("--limit and --images must be >= 0")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be >= 0") }
        if let capGiB, !(capGiB > 0 && capGiB.isFinite) { throw ValidationError("--cap-gib must be a positive number") }
    }

    func run() throws {
        let policy = try BudgetPolicy(seconds: budget, margin: margin)
        let dev = try resolveDevice()
        let promptSet = try loadPrompts().prefix(texts: limit, images: images)
        if let capGiB { try cap(capGiB, device: dev) }

        log("loading the pipeline on \(dev)...")
        let assembled: AssembledPipeline
        do {
            assembled = try assemble(on: dev)
        } catch let error as TorchError where error.isOutOfMemory {
            log("does not fit: loading the pipeline ran out of memory"
                + (capGiB.map { String(format: " under the %.1f GiB cap", $0) } ?? "") + ": \(error.message)")
            throw ExitCode(3)
        }
        if assembled.isSmoke { log("SMOKE PIPELINE: tiny random-weight networks, NOT real generation") }
        for m in assembled.missing { log("not present: \(m)") }

        let options = BenchOptions(device: dev, isSmoke: assembled.isSmoke, warmup: warmup, seed: seed, only: only,
                                   budget: policy, memoryCapGiB: capGiB, progress: quiet ? nil : { log($0) })
        let runner = try BenchRunner(pipeline: assembled.pipeline, pipelineName: assembled.name, options: options)
        let result = try runner.run(prompts: promptSet)

        print(BenchReport.table(result))
        if let json {
            try BenchReport.writeJSON(result, to: URL(fileURLWithPath: json))
            log("wrote \(json)")
        }
        if let report {
            let written = try BenchReport.writeReport(result, directory: URL(fileURLWithPath: report))
            log("wrote \(written.markdown.path) and \(written.chart.path)")
        }
    }

    private func resolveDevice() throws -> Device {
        if device == "auto" { return CUDA.isAvailable && CUDA.deviceCount > 0 ? .cuda(0) : .cpu }
        guard let d = Device(device) else { throw ValidationError("unknown device '\(device)'") }
        return d
    }

    private func loadPrompts() throws -> BenchPromptSet {
        if let prompts { return try BenchPromptSet.load(file: URL(fileURLWithPath: prompts)) }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        guard let dir = BenchPromptSet.findDefaultDirectory(from: [cwd, exe]) else {
            throw ValidationError("no assets/bench found above \(cwd.path); pass --prompts FILE")
        }
        return try BenchPromptSet.loadDefault(directory: dir)
    }

    /// Caps the caching allocator before anything is loaded, so loading counts against the cap too.
    private func cap(_ gib: Double, device: Device) throws {
        guard case .cuda(let index) = device else {
            throw ValidationError("--cap-gib caps the CUDA allocator; the device is \(device)")
        }
        let total = try CUDA.memoryStats(index).total
        let fraction = gib * 1_073_741_824 / Double(total)
        guard fraction <= 1 else {
            throw ValidationError(String(format: "--cap-gib %.1f exceeds the card's %.1f GiB", gib, Double(total) / 1_073_741_824))
        }
        try CUDA.setMemoryFraction(fraction, device: index)
        log(String(format: "allocator capped at %.1f GiB (%.3f of the card)", gib, fraction))
    }

    private func assemble(on device: Device) throws -> AssembledPipeline {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let smokeURL = smokeDir.map { URL(fileURLWithPath: $0) } ?? PipelineAssembly.findSmokeDirectory(from: [cwd, exe])
        var options = AssemblyOptions(device: device, modelsDirectories: modelsDirs, smokeDirectory: smokeURL,
                                      forceSmoke: smoke, requireReal: requireReal, fluxSize: fluxSize, fluxFloat8: fluxFP8)
        options.randomWeightsManifests = randomWeights.map { URL(fileURLWithPath: $0) }
        return try PipelineAssembly.build(options, store: ModelStore(modelsDirectories: modelsDirs))
    }
}
