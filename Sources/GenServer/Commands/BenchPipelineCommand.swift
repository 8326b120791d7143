import ArgumentParser
import Diagnostics
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
        quality 25/25; LGM via ImageDream) for text prompts, MVDream -> LGM for text prompts, and the 3D generators alone \
        for image prompts. Load both generators with --generator trellis,lgm. \
        Prompts: assets/bench/prompts.txt and assets/bench/images/*.png, or --prompts FILE.
        """)

    @OptionGroup var models: ModelOptions

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
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Option(help: "Write report.md and time-per-stage.png into this folder.") var report: String?
    @Flag(help: "No per-job progress lines.") var quiet = false

    func validate() throws {
        guard limit.map({ $0 >= 0 }) ?? true, images.map({ $0 >= 0 }) ?? true else {
            throw ValidationError("--limit and --images must be >= 0")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must be >= 0") }
    }

    func run() throws {
        let policy = try BudgetPolicy(seconds: budget, margin: margin)
        let dev = try resolveDevice()
        let promptSet = try loadPrompts().prefix(texts: limit, images: images)

        log("loading the pipeline on \(dev)...")
        let assembled: AssembledPipeline
        do {
            assembled = try models.assemble(on: dev)
        } catch let error as TorchError where error.isOutOfMemory {
            log("does not fit: loading the pipeline ran out of memory"
                + (models.generation.capGiB.map { String(format: " under the %.1f GiB cap", $0) } ?? "") + ": \(error.message)")
            throw ExitCode(3)
        }
        for line in MemoryPlanReport.lines(assembled.memoryPlan, resident: assembled.residentSizes) { log(line) }
        if assembled.isSmoke { log("SMOKE PIPELINE: tiny random-weight networks, NOT real generation") }
        for m in assembled.missing { log("not present: \(m)") }

        let options = BenchOptions(device: dev, isSmoke: assembled.isSmoke, warmup: warmup, seed: seed, only: only,
                                   budget: policy, memoryCapGiB: models.generation.capGiB, progress: quiet ? nil : { log($0) })
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

    /// The first device of `--device` (bench runs on one).
    private func resolveDevice() throws -> Device {
        guard let d = try models.devices().first else { throw ValidationError("no device") }
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


}
