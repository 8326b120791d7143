import ArgumentParser
import CLIPValidate
import Foundation
import Splatting
import PLY
import TorchShim

struct RenderCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render-check",
        abstract: "Render a PLY's validator views with the CPU and the CUDA rasterizer: timings, max diff, PSNR.",
        discussion: """
            Exits 1 when a comparison is more than 2/255 apart or under 40 dB. --reference takes float images \
            [16, 518, 518, 3] of the same views, e.g. gsplat's from scripts/bench/gsplat_render.py.
            """)

    @Argument(help: "The PLY file.") var file: String
    @Option(help: "Reference renders (.npy, float32 [views, H, W, 3]) to compare both rasterizers with.") var reference: String?
    @Option(help: "Timed CUDA renders (median reported).") var repetitions = 20
    @Option(help: "CUDA device index.") var cudaDevice = 0
    @Option(parsing: .unconditional, help: "World up axis: y (legacy validators) or -y (TRELLIS / Competition 0).")
    var up = "y"

    func validate() throws {
        do { _ = try RenderJob.parseUp(up) } catch { throw ValidationError("\(error)") }
        if repetitions < 1 { throw ValidationError("--repetitions must be at least 1") }
    }

    func run() throws {
        let orientation = try RenderJob.parseUp(up)
        let splat = try PLYReader.read(contentsOf: URL(fileURLWithPath: file))
        let npy = try reference.map { try NPYArray(contentsOf: URL(fileURLWithPath: $0)) }
        var settings = RenderSettings()
        settings.orientation = orientation
        let check = RenderCheck(settings: settings, cudaDevice: cudaDevice, repetitions: repetitions)
        let report = try check.run(splat: splat, reference: npy)
        let card = (try? CUDA.deviceName(cudaDevice)) ?? "cuda:\(cudaDevice)"
        print("\(splat.count) Gaussians, \(settings.viewCount) views at \(settings.width)x\(settings.height)")
        print(String(format: "cpu:  %.1f ms (CPURasterizer, %d threads)", report.cpuSeconds * 1e3, ProcessInfo.processInfo.activeProcessorCount))
        print(String(format: "cuda: median %.3f ms, min %.3f ms of %d synced renders to GPU images (%@); "
                     + "%.1f ms host to host once", report.cudaMedianSeconds * 1e3, report.cudaMinSeconds * 1e3,
                     repetitions, card, report.cudaEndToEndSeconds * 1e3))
        func line(_ name: String, _ c: ImageComparison?) {
            guard let c else { return }
            print("\(name): \(c) [\(RenderCheck.meetsTolerance(c) ? "ok" : "FAIL")]")
        }
        line("cuda vs cpu", report.cudaVsCPU)
        line("cuda vs reference", report.cudaVsReference)
        line("cpu vs reference", report.cpuVsReference)
        if !report.passed { throw ExitCode(1) }
    }
}
