import ArgumentParser
import Diagnostics
import Foundation
import Models
import CLIPValidate
import Imaging
import Pipeline
import TorchShim

struct FluxBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flux", abstract: "FLUX.1-schnell stages: T5, CLIP, transformer (bf16 and fp8), VAE, at 512^2 and 1024^2.")
    @OptionGroup var options: DeviceOptions

    func run() throws {
        let (device, dtype) = try options.resolved()
        printBenchHeader("FLUX.1-schnell, random weights at real size", device: device, dtype: dtype)
        for row in try FluxBenchmark.run(device: device, dtype: dtype) { print(row) }
    }
}

struct TrellisBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trellis",
        abstract: "TRELLIS-image-large stages: DINOv2-L at 518, SS flow/sampler/decoder, SLat flow, Gaussian decoder.")
    @OptionGroup var options: DeviceOptions
    @Option(help: "Folder with the full-size manifest_*.json of TRELLIS (fixtures/trellis).") var manifests = ""
    @Option(help: "Active voxels for the sparse stages.") var voxels = 20_000
    @Flag(help: "Only the dense stages.") var denseOnly = false
    @Flag(help: "Only the sparse stages.") var sparseOnly = false
    @Flag(help: "Only the coordinate-derived structures of a new voxel set and the PLY conversion (no weights).")
    var layoutsOnly = false

    func run() throws {
        let (device, dtype) = try options.resolved()
        let dir = URL(fileURLWithPath: manifests)
        if layoutsOnly {
            printBenchHeader("TRELLIS sparse layouts of a new voxel set", device: device, dtype: dtype)
            for row in try TrellisSparseBenchmark.layouts(device: device, voxels: voxels) { print(row) }
            return
        }
        guard !manifests.isEmpty else { throw ValidationError("--manifests is required (except with --layouts-only)") }
        printBenchHeader("TRELLIS-image-large, random weights at real size", device: device, dtype: dtype)
        if !sparseOnly {
            for row in try TrellisDenseBenchmark.run(device: device, dtype: dtype, manifestDir: dir) { print(row) }
        }
        if !denseOnly {
            for row in try TrellisSparseBenchmark.run(device: device, dtype: dtype, manifestDir: dir, voxels: voxels) { print(row) }
        }
    }
}

struct BiRefNetBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "birefnet", abstract: "BiRefNet (Swin-L) at 1024^2: backbone passes, decoder, whole forward.")
    @OptionGroup var options: DeviceOptions
    @Option(help: "manifest_BiRefNet_general.json (fixtures/birefnet).") var manifest: String

    func run() throws {
        let (device, dtype) = try options.resolved()
        printBenchHeader("BiRefNet general, random weights at real size", device: device, dtype: dtype)
        for row in try BiRefNetBenchmark.run(device: device, dtype: dtype, manifestPath: manifest) { print(row) }
    }
}

struct ScorerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scorers", abstract: "The validator scorers on 16 views at 518^2: CLIP convnext_large_d, DINOv2-small quality, SSIM, LPIPS.")
    @OptionGroup var options: DeviceOptions

    func run() throws {
        let (device, dtype) = try options.resolved()
        printBenchHeader("validator scorers, random weights at real size", device: device, dtype: dtype)
        for row in try ValidatorScorerBenchmark.run(device: device, dtype: dtype) { print(row) }
    }
}

/// The whole job at real sizes with random weights, every loaded generator and route in one process: text -> FLUX ->
/// BiRefNet -> TRELLIS / LGM -> PLY, text -> MVDream -> LGM, and image prompts; per-stage medians, totals and peak memory
/// per configuration, after the memory plan and each model's measured resident size.
struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline", abstract: "The whole generation job at real sizes (random weights): per-stage times and peak memory.")
    @Option(help: "Device: cuda, cuda:N (cpu works but takes minutes).") var device = "cuda"
    @Option(help: "Folder with the manifests of fixtures/trellis, fixtures/lgm and manifest_BiRefNet_general.json.")
    var manifests: String
    @OptionGroup var generation: GeneratorOptions
    @Option(help: "Occupied voxels the TRELLIS structure is calibrated to.") var voxels = 20_000
    @Option(help: "Timed runs per configuration (median reported).") var runs = 3
    @Flag(name: .customLong("fast-only"), help: "TRELLIS at 12/12 only (skip 25/25).") var fastOnly = false
    @Flag(name: .customLong("no-validate"), help: "Skip the validator gate (render + scorers) in every job.") var noValidate = false
    @Option(help: "RGBA image for the image-prompt route.") var image = "assets/smoke/test_rgba.png"

    func run() throws {
        guard let dev = Device(device) else { throw ValidationError("unknown device \(device)") }
        let plan = try generation.plan(for: dev)
        printBenchHeader("whole pipeline, real sizes, random weights", device: dev, dtype: .bfloat16)
        let (admitted, dropped) = plan.admit(generators: try generation.generators())
        for g in dropped { print(plan.notAdmitted(g)) }
        let assembled = try RandomRealSizePipeline.build(manifests: URL(fileURLWithPath: manifests), device: dev,
                                                         targetVoxels: voxels, generators: admitted,
                                                         textRoute: try generation.route(), plan: plan, withValidator: !noValidate)
        print(MemoryPlanReport.lines(assembled.memoryPlan, resident: assembled.residentSizes).joined(separator: "\n"))
        let rgba = try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: image))
        var cases: [(String, GenerationJob)] = []
        let text = Prompt.text("a red leather armchair"), picture = Prompt.image(rgba)
        for g in admitted {
            let presets: [(String, GaussianSettings)] = g == .lgm ? [("30 DDIM steps", .quality)]
                : fastOnly ? [("fast 12/12", .fast)] : [("fast 12/12", .fast), ("quality 25/25", .quality)]
            for (label, settings) in presets {
                // The gate runs once per job (random scorers: any score passes, no retry), so its time and memory count.
                func job(_ prompt: Prompt, _ route: TextRoute?) -> GenerationJob {
                    GenerationJob(prompt: prompt, settings: settings, validate: !noValidate, minScore: 0, maxAttempts: 1,
                                  generator: g.rawValue, textRoute: route)
                }
                if plan.loadsTextToImage { cases.append(("\(g.rawValue) \(label), text via flux", job(text, .flux))) }
                if assembled.pipeline.directText[g] != nil {
                    cases.append(("\(g) \(label), text via mvdream", job(text, .mvdream)))
                }
                cases.append(("\(g) \(label), image", job(picture, nil)))
            }
        }
        for (label, template) in cases {
            var stages: [String: [Double]] = [:]
            var totals: [Double] = []
            var gaussians = 0
            var failure: String? = nil
            if case .cuda(let i) = dev { try CUDA.emptyCache(); try CUDA.resetPeakMemory(i) }
            for run in 0...runs {  // run 0 is the warm-up
                var job = template
                job.seed = UInt64(run)
                let t0 = Date()
                let out: GenerationOutcome
                do { out = try assembled.pipeline.run(job) } catch {
                    failure = "\(error)"
                    break
                }
                if case .cuda(let i) = dev { try CUDA.synchronize(i) }
                guard run > 0 else { continue }
                totals.append(Date().timeIntervalSince(t0))
                for (name, s) in out.timings.entries { stages[name, default: []].append(s) }
                gaussians = out.splat.count
            }
            if let failure {
                print("-- \(label): FAILED: \(failure)")
                continue
            }
            func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] * 1e3 }
            var peak = "n/a"
            if case .cuda(let i) = dev { peak = GiB.text(try CUDA.memoryStats(i).peakAllocated) }
            print("-- \(label): total \(String(format: "%.1f", median(totals))) ms, \(gaussians) Gaussians, peak \(peak)")
            for name in ["text-to-image", "multiview", "background", "gaussians", "validate", "ply"] where stages[name] != nil {
                print(String(format: "   %-14@ %9.1f ms", name, median(stages[name]!)))
            }
        }
    }
}
