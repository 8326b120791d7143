import ArgumentParser
import Foundation
import Models
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
