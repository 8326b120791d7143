import ArgumentParser
import Foundation
import Imaging
import Pipeline
import PLY

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prompt or image file -> PLY file, the daemon's pipeline without the server.")

    @Argument(help: "Text prompt (omit with --image).") var prompt: String?
    @Option(help: "Image prompt (PNG or JPEG; RGBA is used as the mask).") var image: String?
    @Option(name: .shortAndLong, help: "Output PLY path.") var out = "out.ply"
    @Option(name: .customLong("image-out"), help: "Also save the RGBA image the 3D stage saw.") var imageOut: String?
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "PLY orientation: -y (TRELLIS / Competition 0) or y (legacy validators).") var up = "-y"
    @Flag(name: .customLong("no-normals"), help: "Write no normal properties.") var noNormals = false
    @OptionGroup var pipeline: PipelineOptions

    func validate() throws {
        if (prompt == nil) == (image == nil) { throw ValidationError("give either a text prompt or --image FILE") }
        guard SplatOrientation(rawValue: up) != nil else { throw ValidationError("--up must be -y or y") }
    }

    func run() throws {
        guard let device = try pipeline.devices().first else { throw ValidationError("no device") }
        let assembled = try pipeline.assemble(on: device)
        if assembled.isSmoke { log("SMOKE PIPELINE: tiny random-weight networks, NOT real generation") }
        let p: Prompt
        if let image {
            p = .image(try ImageDecoder.decode(contentsOf: URL(fileURLWithPath: image)))
        } else {
            p = .text(prompt!)
        }
        let job = GenerationJob(prompt: p, seed: seed, settings: try pipeline.settings(),
                                output: SplatOutputOptions(orientation: SplatOrientation(rawValue: up)!, includeNormals: !noNormals),
                                validate: !pipeline.noValidate, minScore: pipeline.minScore, timeBudget: pipeline.timeBudget)
        let outcome = try assembled.pipeline.run(job)
        for (name, seconds) in outcome.timings.entries { log(String(format: "%-14@ %8.1f ms", name, seconds * 1e3)) }
        for n in outcome.notes { log(n) }
        if let imageOut { try PNGEncoder.encode(outcome.conditioningImage).write(to: URL(fileURLWithPath: imageOut)) }
        if outcome.gated {
            log(String(format: "predicted score %.3f < %.2f: no PLY written (the daemon would answer empty)",
                       outcome.verdict?.score ?? 0, pipeline.minScore))
            throw ExitCode(2)
        }
        try outcome.ply.write(to: URL(fileURLWithPath: out))
        log("wrote \(out): \(outcome.splat.count) Gaussians, \(outcome.ply.count) bytes (\(assembled.name))")
    }
}
