import ArgumentParser
import CLIPValidate
import Foundation

struct RenderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Render a splat PLY as the validator sees it: one PNG, a contact sheet, or one PNG per view.",
        discussion: """
            Defaults are the validator's scoring setup: 16 views at 518x518 on an orbit of radius 2.5 \
            (theta = linspace(0, 360, 16), phi = -15), vertical FOV 49.1, the splat centred and scaled to a 1.5 \
            bounding box, white background, +Y up (use --up -y for TRELLIS / Competition 0 PLYs).
            """)

    @Argument(help: "The PLY file.") var file: String
    @Option(name: .shortAndLong, help: "Output PNG (one view) or contact sheet (several).") var out = "sheet.png"
    @Option(help: "Views on the orbit: theta = linspace(0, 360, N).") var views: Int?
    @Option(help: "Image width and height in pixels.") var size: Int?
    @Option(parsing: .unconditional, help: "Azimuths in degrees, comma-separated (one view each).") var theta: String?
    @Option(parsing: .unconditional, help: "Elevations in degrees, one for all views or one per view (negative looks down).")
    var phi: String?
    @Option(help: "Camera distance from the centre.") var radius: Double?
    @Option(help: "Largest bounding-box extent after normalisation.") var bbox: Double?
    @Option(help: "Vertical field of view in degrees.") var fov: Double?
    @Option(help: "Background R,G,B in [0, 1].") var background: String?
    @Option(parsing: .unconditional, help: "World up axis: y (legacy validators) or -y (TRELLIS / Competition 0).")
    var up: String?
    @Option(help: "auto, cpu, cuda or cuda:N.") var device = "auto"
    @Flag(help: "Write one PNG per view (OUT_00.png, OUT_01.png, ...) instead of a contact sheet.") var each = false

    private func job() throws -> RenderJob {
        try RenderJob(input: file, output: out, views: views, size: size, theta: theta, phi: phi, radius: radius,
                      bbox: bbox, fov: fov, background: background, up: up, device: device, each: each)
    }

    func validate() throws {
        do { _ = try job() } catch let error as RenderJobError { throw ValidationError(error.description) }
    }

    func run() throws {
        let result = try job().run()
        for failure in result.checks.failures { log("validator data check fails: \(failure)") }
        log(String(format: "%d views of %d Gaussians on %@ in %.1f ms", result.viewCount, result.gaussians,
                   result.rasterizer, result.renderSeconds * 1e3))
        for path in result.written { print(path) }
    }
}
