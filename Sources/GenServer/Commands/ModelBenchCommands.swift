import ArgumentParser
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

/// The whole job at real sizes with random weights: text -> FLUX -> BiRefNet -> TRELLIS -> PLY (and image prompts
/// from the RGBA test image), per-stage medians, total and peak memory, for the fast and quality presets.
struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline", abstract: "The whole generation job at real sizes (random weights): per-stage times and peak memory.")
    @Option(help: "Device: cuda, cuda:N (cpu works but takes minutes).") var device = "cuda"
    @Option(help: "Folder with the TRELLIS manifests (fixtures/trellis).") var manifests: String
    @Option(name: .customLong("birefnet-manifest"), help: "manifest_BiRefNet_general.json.") var birefnetManifest: String
    @Option(help: "Occupied voxels the TRELLIS structure is calibrated to.") var voxels = 20_000
    @Option(help: "Timed runs per configuration (median reported).") var runs = 3
    @Option(help: "RGBA image for the image-prompt route.") var image = "assets/smoke/test_rgba.png"

    func run() throws {
        guard let dev = Device(device) else { throw ValidationError("unknown device \(device)") }
        printBenchHeader("whole pipeline, real sizes, random weights", device: dev, dtype: .bfloat16)
        let assembled = try RandomRealSizePipeline.build(manifests: URL(fileURLWithPath: manifests),
                                                         birefnetManifest: URL(fileURLWithPath: birefnetManifest),
                                                         device: dev, targetVoxels: voxels)
        let rgba = try ImageDecoder.decode(Data(contentsOf: URL(fileURLWithPath: image)))
        for (label, settings) in [("fast 12/12", GaussianSettings.fast), ("quality 25/25", GaussianSettings.quality)] {
            for (route, prompt) in [("text", Prompt.text("a red leather armchair")), ("image", Prompt.image(rgba))] {
                var stages: [String: [Double]] = [:]
                var totals: [Double] = []
                var gaussians = 0
                if case .cuda(let i) = dev { try CUDA.resetPeakMemory(i) }
                for run in 0...runs {  // run 0 is the warm-up
                    let t0 = Date()
                    let out = try assembled.pipeline.run(GenerationJob(prompt: prompt, seed: UInt64(run), settings: settings,
                                                                       validate: false))
                    if case .cuda(let i) = dev { try CUDA.synchronize(i) }
                    guard run > 0 else { continue }
                    totals.append(Date().timeIntervalSince(t0))
                    for (name, s) in out.timings.entries { stages[name, default: []].append(s) }
                    gaussians = out.splat.count
                }
                func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] * 1e3 }
                let peak = dev.isCUDA ? String(format: "%.2f GiB", Double(try CUDA.memoryStats(0).peakAllocated) / 1_073_741_824) : "n/a"
                print("-- \(route) prompt, \(label): total \(String(format: "%.1f", median(totals))) ms, \(gaussians) Gaussians, peak \(peak)")
                for name in ["text-to-image", "background", "gaussians", "ply"] where stages[name] != nil {
                    print(String(format: "   %-14@ %9.1f ms", name, median(stages[name]!)))
                }
            }
        }
    }
}
