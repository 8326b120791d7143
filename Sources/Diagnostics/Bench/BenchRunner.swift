import Pipeline
import CLIPValidate
import Foundation
import Splatting
import TorchShim

/// How a benchmark runs.
public struct BenchOptions {
    /// The device the pipeline was built on (for peak memory and the card's name).
    public var device: Device
    /// True for the smoke pipeline of random networks: scores mean nothing.
    public var isSmoke: Bool
    /// Unmeasured runs of each configuration's first prompt before its measured runs.
    public var warmup: Int
    public var seed: UInt64
    /// Run only configurations whose id contains one of these (case-insensitive); empty runs all.
    public var only: [String]
    public var budget: BudgetPolicy
    /// The allocator cap the caller set (reported; the caller applies it before building the pipeline).
    public var memoryCapGiB: Double?
    /// Called with one line per finished job.
    public var progress: ((String) -> Void)?

    public init(device: Device, isSmoke: Bool, warmup: Int = 1, seed: UInt64 = 42, only: [String] = [],
                budget: BudgetPolicy, memoryCapGiB: Double? = nil, progress: ((String) -> Void)? = nil) {
        self.device = device
        self.isSmoke = isSmoke
        self.warmup = warmup
        self.seed = seed
        self.only = only
        self.budget = budget
        self.memoryCapGiB = memoryCapGiB
        self.progress = progress
    }
}

/// Runs every available configuration over a prompt set (text prompts through the text configurations, images
/// through the image ones) and summarises each: per-stage and total time, Gaussians, PLY size, peak GPU memory,
/// the validator's data checks and the predicted score. Each job is one attempt (no retries) and is never gated,
/// so every configuration is timed on the same work.
public final class BenchRunner {
    public let planned: [PlannedConfiguration]
    public let pipelineName: String
    public let options: BenchOptions

    /// `gaussianStages`: the 3D stages to use (the pipeline's own by default); `trellisPresets` replaces the
    /// fast/quality pair (tests use tiny step counts).
    public init(pipeline: GenerationPipeline, pipelineName: String, gaussianStages: [GaussianStage]? = nil,
                trellisPresets: [BenchCatalogue.Preset] = BenchCatalogue.trellisPresets, options: BenchOptions) throws {
        guard options.warmup >= 0 else { throw BenchError.invalidArgument("warm-up runs must be >= 0, got \(options.warmup)") }
        guard !trellisPresets.isEmpty else { throw BenchError.invalidArgument("no TRELLIS preset to run") }
        self.planned = BenchCatalogue.plan(pipeline: pipeline, gaussianStages: gaussianStages, trellisPresets: trellisPresets)
        self.pipelineName = pipelineName
        self.options = options
    }

    public func run(prompts: BenchPromptSet) throws -> BenchResult {
        guard !prompts.texts.isEmpty || !prompts.images.isEmpty else {
            throw BenchError.emptyPromptSet("the prompt set has neither text prompts nor images")
        }
        var rows: [BenchRow] = []
        for (index, plan) in planned.enumerated() {
            let label = "[\(index + 1)/\(planned.count)] \(plan.configuration.id)"
            let row = runConfiguration(plan, prompts: prompts, label: label)
            if row.status != .measured {
                options.progress?("\(label): \(row.status.rawValue)" + (row.detail.map { " (\($0))" } ?? ""))
            }
            rows.append(row)
        }
        var notes: [String] = []
        if options.isSmoke {
            notes.append("random weights (the tiny smoke networks, or real sizes in timing mode): scores are not measured; "
                         + "with the smoke networks the times are those of toy networks, in timing mode those of the real "
                         + "sizes on meaningless inputs")
        }
        notes.append("each job is one attempt (no retry with a new seed) and is never gated, so every configuration "
                     + "is timed on the same work; the daemon's retries add attempts on top")
        let cardName: String
        if case .cuda(let i) = options.device { cardName = (try? CUDA.deviceName(i)) ?? "cuda" } else { cardName = "cpu" }
        return BenchResult(date: BenchResult.iso8601Now(), device: options.device.description, deviceName: cardName,
                           pipeline: pipelineName, isSmoke: options.isSmoke, memoryCapGiB: options.memoryCapGiB,
                           textPrompts: prompts.texts.count, imagePrompts: prompts.images.count,
                           warmupRuns: options.warmup, seed: options.seed, rows: rows, budget: options.budget,
                           choices: BudgetChooser.choose(rows: rows, policy: options.budget), notes: notes)
    }

    func selected(_ configuration: BenchConfiguration) -> Bool {
        options.only.isEmpty || options.only.contains { configuration.id.lowercased().contains($0.lowercased()) }
    }

    func runConfiguration(_ plan: PlannedConfiguration, prompts set: BenchPromptSet, label: String) -> BenchRow {
        let configuration = plan.configuration
        guard let pipeline = plan.pipeline else {
            return BenchRow(configuration: configuration, status: .unavailable, detail: configuration.unavailable)
        }
        guard selected(configuration) else {
            return BenchRow(configuration: configuration, status: .skipped, detail: "not selected by --only")
        }
        let prompts: [Prompt] = configuration.promptKind == .text ? set.texts.map { .text($0) } : set.images.map { .image($0.image) }
        guard !prompts.isEmpty else {
            return BenchRow(configuration: configuration, status: .skipped,
                            detail: "the prompt set has no \(configuration.promptKind.rawValue) prompts")
        }
        let scoreBasis: ScoreSummary.Basis = options.isSmoke ? .randomWeights : pipeline.validator == nil ? .noScorer : .scored
        let cudaIndex: Int? = { if case .cuda(let i) = options.device { return i } else { return nil } }()
        if let cudaIndex { try? CUDA.resetPeakMemory(cudaIndex) }

        var samples = JobSamples()
        var outOfMemory: String? = nil
        do {
            for _ in 0..<options.warmup { _ = try pipeline.run(job(prompts[0], plan.settings)) }
        } catch let error as TorchError where error.isOutOfMemory {
            outOfMemory = "warm-up: \(error.message)"
        } catch {
            samples.fail("warm-up: \(error)")
        }
        if outOfMemory == nil && samples.failures == 0 {
            for (number, prompt) in prompts.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                do {
                    let outcome = try pipeline.run(job(prompt, plan.settings))
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    samples.record(outcome, seconds: seconds)
                    options.progress?(String(format: "%@: prompt %d/%d %.2f s, %d Gaussians", label, number + 1,
                                             prompts.count, seconds, outcome.splat.count))
                } catch let error as TorchError where error.isOutOfMemory {
                    outOfMemory = error.message
                    break
                } catch {
                    samples.fail("\(error)")
                    options.progress?("\(label): prompt \(number + 1)/\(prompts.count) failed: \(error)")
                }
            }
        }
        if outOfMemory != nil, cudaIndex != nil { try? CUDA.emptyCache() }

        var row = samples.row(configuration: configuration, scoreBasis: scoreBasis)
        if let cudaIndex {
            let peak = (try? CUDA.memoryStats(cudaIndex))?.peakAllocated
            row.peakGPUMemoryBytes = peak
            row.peakGPUMemory = peak.map(GiB.text) ?? "n/a (no stats)"
        } else {
            row.peakGPUMemory = "n/a (cpu)"
        }
        if let outOfMemory {
            row.status = .doesNotFit
            let cap = options.memoryCapGiB.map { String(format: " under the %.1f GiB cap", $0) } ?? ""
            row.detail = "out of memory\(cap): \(outOfMemory.prefix(200))"
        } else if row.total == nil {
            row.status = .failed
            row.detail = row.failureMessages.first ?? "no job completed"
        }
        return row
    }

    func job(_ prompt: Prompt, _ settings: GaussianSettings) -> GenerationJob {
        GenerationJob(prompt: prompt, seed: options.seed, settings: settings, validate: true,
                      minScore: -Double.greatestFiniteMagnitude, timeBudget: 0, maxAttempts: 1)
    }

    /// Short, count-free name of a failed data check, for tallies.
    public static func checkKind(_ failure: SplatCheckFailure) -> String {
        switch failure {
        case .tooFewGaussians(_, let minimum): return "fewer than \(minimum) Gaussians"
        case .leadingCentreAtOnes: return "a leading centre at (1, 1, 1)"
        case .mostlyTransparent(_, let limit): return "over \(Int(limit))% transparent"
        case .allRotationsIdentity: return "every rotation the identity"
        }
    }
}

/// The measurements of one configuration's jobs, gathered as they finish.
struct JobSamples {
    var stageOrder: [String] = []
    var stageSeconds: [String: [Double]] = [:]
    var totals: [Double] = []
    var gaussians: [Double] = []
    var plyBytes: [Double] = []
    var scores: [Double] = []
    var checksPassed = 0
    var checksRun = 0
    var checkFailures: [String: Int] = [:]
    var failures = 0
    var failureMessages: [String] = []

    mutating func record(_ outcome: GenerationOutcome, seconds: Double) {
        totals.append(seconds)
        for (name, value) in outcome.timings.entries {
            if stageSeconds[name] == nil { stageOrder.append(name) }
            stageSeconds[name, default: []].append(value)
        }
        gaussians.append(Double(outcome.splat.count))
        plyBytes.append(Double(outcome.ply.count))
        if let score = outcome.verdict?.score { scores.append(score) }
        checksRun += 1
        do {
            let result = SplatChecks.run(try ActivatedSplat(activating: outcome.splat))
            if result.passed { checksPassed += 1 }
            for failure in result.failures { checkFailures[BenchRunner.checkKind(failure), default: 0] += 1 }
        } catch {
            checkFailures["malformed splat", default: 0] += 1
        }
    }

    mutating func fail(_ message: String) {
        failures += 1
        let short = String(message.prefix(300))
        if failureMessages.count < 3 && !failureMessages.contains(short) { failureMessages.append(short) }
    }

    func row(configuration: BenchConfiguration, scoreBasis: ScoreSummary.Basis) -> BenchRow {
        let stages = stageOrder.map { StageSummary(name: $0, seconds: SampleSummary(stageSeconds[$0]!)!) }
        return BenchRow(configuration: configuration, status: .measured, runs: totals.count + failures, failures: failures,
                        failureMessages: failureMessages, stages: stages, total: SampleSummary(totals),
                        gaussians: SampleSummary(gaussians), plyBytes: SampleSummary(plyBytes), checksPassed: checksPassed,
                        checksRun: checksRun, checkFailures: checkFailures,
                        score: ScoreSummary(basis: scoreBasis, scores: scoreBasis == .scored ? SampleSummary(scores) : nil))
    }
}
