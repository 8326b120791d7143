import Foundation
import Splatting
import Imaging
import PLY
import TorchShim

public struct RenderJobError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Which rasterizer a render job uses.
public enum RenderDevice: Equatable, Sendable, CustomStringConvertible {
    /// CUDA device 0 when the CUDA rasterizer can run, else the CPU.
    case automatic
    case cpu
    /// This CUDA device, or an error naming why it cannot be used.
    case cuda(Int)

    /// "auto", "cpu", "cuda", "cuda:N" (also "gpu").
    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "auto": self = .automatic
        case "cpu": self = .cpu
        default:
            guard let device = Device(text), case .cuda(let index) = device else {
                throw RenderJobError("unknown device '\(text)': use auto, cpu, cuda or cuda:N")
            }
            self = .cuda(index)
        }
    }

    public var description: String {
        switch self {
        case .automatic: return "auto"
        case .cpu: return "cpu"
        case .cuda(let index): return "cuda:\(index)"
        }
    }
}

/// `gen3d render`: a PLY drawn from the validator's cameras (or any orbit) into one PNG, a contact sheet or one PNG
/// per view. Built from the command's raw option values so that the parsing is tested here.
public struct RenderJob: Sendable, Equatable {
    public var input: String
    /// The PNG (one view) or contact sheet (several views) to write; with `each`, the stem of the per-view files.
    public var output: String
    public var settings: RenderSettings
    public var device: RenderDevice
    /// One PNG per view (`stem_00.png`, `stem_01.png`, ...) instead of a contact sheet.
    public var each: Bool

    /// Option values as the command line gives them; nil keeps the validator's scoring setup (16 views at
    /// 518x518, theta = linspace(0, 360, 16), phi = -15, radius 2.5, bounding box 1.5, vertical FOV 49.1,
    /// white background, +Y up).
    /// - Parameters:
    ///   - views: number of views on the orbit, theta = linspace(0, 360, views); must agree with `theta` when both
    ///     are given.
    ///   - theta: azimuths in degrees, "0,90,180".
    ///   - phi: elevations in degrees (validator sign: negative looks down), one value for all views or one per view.
    ///   - background: "R,G,B" with components in [0, 1].
    ///   - up: "y" (legacy validators) or "-y" (TRELLIS / Competition 0).
    ///   - device: "auto", "cpu", "cuda", "cuda:N".
    public init(input: String, output: String = "sheet.png", views: Int? = nil, size: Int? = nil,
                theta: String? = nil, phi: String? = nil, radius: Double? = nil, bbox: Double? = nil,
                fov: Double? = nil, background: String? = nil, up: String? = nil, device: String? = nil,
                each: Bool = false) throws {
        guard !input.isEmpty else { throw RenderJobError("no input PLY given") }
        guard !output.isEmpty else { throw RenderJobError("no output path given") }
        if let views, !(1...4096).contains(views) {
            throw RenderJobError("--views must be between 1 and 4096, got \(views)")
        }
        if let size, !(1...16384).contains(size) {
            throw RenderJobError("--size must be between 1 and 16384 pixels, got \(size)")
        }
        var thetas = RenderSettings.linspace(0, 360, count: views ?? RenderSettings.validatorViewCount)
        if let theta {
            thetas = try Self.parseNumbers(theta, flag: "--theta")
            if let views, views != thetas.count {
                throw RenderJobError("--views \(views) disagrees with --theta, which lists \(thetas.count) angle(s)")
            }
        }
        var phis = Array(repeating: -15.0, count: thetas.count)
        if let phi {
            let values = try Self.parseNumbers(phi, flag: "--phi")
            if values.count == 1 {
                phis = Array(repeating: values[0], count: thetas.count)
            } else if values.count == thetas.count {
                phis = values
            } else {
                throw RenderJobError("--phi lists \(values.count) angles for \(thetas.count) views: give one or \(thetas.count)")
            }
        }
        var settings = RenderSettings(thetasDegrees: thetas, phisDegrees: phis)
        if let size {
            settings.width = size
            settings.height = size
        }
        if let radius { settings.radius = radius }
        if let bbox { settings.targetExtent = bbox }
        if let fov { settings.fovYDegrees = fov }
        if let background { settings.background = try Self.parseBackground(background) }
        if let up { settings.orientation = try Self.parseUp(up) }
        do {
            try settings.validate()
        } catch let error as RenderSettingsError {
            throw RenderJobError(error.description)
        }
        self.input = input
        self.output = output
        self.settings = settings
        self.device = try RenderDevice(parsing: device ?? "auto")
        self.each = each
    }

    /// "0,90,-15.5" -> [0, 90, -15.5]; every entry a finite number.
    public static func parseNumbers(_ text: String, flag: String) throws -> [Double] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var values: [Double] = []
        for part in parts {
            guard let value = Double(part), value.isFinite else {
                throw RenderJobError("\(flag) takes comma-separated numbers; '\(part)' in '\(text)' is not one")
            }
            values.append(value)
        }
        return values
    }

    /// "R,G,B" with each component in [0, 1].
    public static func parseBackground(_ text: String) throws -> SIMD3<Float> {
        let values = try parseNumbers(text, flag: "--background")
        guard values.count == 3 else {
            throw RenderJobError("--background takes three components R,G,B, got \(values.count) in '\(text)'")
        }
        guard values.allSatisfy({ (0...1).contains($0) }) else {
            throw RenderJobError("--background components are in [0, 1] (1,1,1 is white), got '\(text)'")
        }
        return SIMD3(Float(values[0]), Float(values[1]), Float(values[2]))
    }

    /// "y" / "+y" -> `.yUp`, "-y" -> `.yDown`.
    public static func parseUp(_ text: String) throws -> SplatOrientation {
        switch text.lowercased() {
        case "y", "+y": return .yUp
        case "-y": return .yDown
        default: throw RenderJobError("--up must be y or -y, got '\(text)'")
        }
    }

    /// The files `run()` writes: the output itself, or with `each` one per view.
    public var outputPaths: [String] {
        guard each else { return [output] }
        // The path as given (relative stays relative): split the extension off the last component only.
        let name = output.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? output
        let dot = name.lastIndex(of: ".").flatMap { $0 == name.startIndex ? nil : $0 }
        let ext = dot.map { String(name[name.index(after: $0)...]) } ?? "png"
        let stem = String(output.dropLast(dot.map { name.distance(from: $0, to: name.endIndex) } ?? 0))
        let digits = max(2, String(settings.viewCount - 1).count)
        return (0..<settings.viewCount).map { index in
            let number = String(repeating: "0", count: max(0, digits - String(index).count)) + String(index)
            return "\(stem)_\(number).\(ext)"
        }
    }

    /// Columns of the contact sheet: about square.
    public var sheetColumns: Int {
        max(1, Int(Double(settings.viewCount).squareRoot().rounded(.up)))
    }

    /// The rasterizer for `device`; an explicitly requested CUDA device that cannot be used is an error.
    public func rasterizer() throws -> any Rasterizer {
        switch device {
        case .automatic: return makeRasterizer(device: .cuda(0))
        case .cpu: return CPURasterizer()
        case .cuda(let index):
            if let reason = CUDARasterizer.unavailableReason(device: index) {
                throw RenderJobError("cannot render on cuda:\(index): \(reason) (use --device cpu)")
            }
            return CUDARasterizer(device: index)
        }
    }

    /// Reads the PLY, renders every view and writes the PNG(s).
    public func run() throws -> RenderJobResult {
        let splat: GaussianSplat
        do {
            splat = try PLYReader.read(contentsOf: URL(fileURLWithPath: input))
        } catch {
            throw RenderJobError("cannot read \(input): \(error)")
        }
        let rasterizer = try self.rasterizer()
        let start = DispatchTime.now().uptimeNanoseconds
        let views = try rasterizer.render(splat: splat, settings: settings)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let paths = outputPaths
        if each {
            for (view, path) in zip(views, paths) {
                try Self.writePNG(rgb: view.rgb8, width: view.width, height: view.height, to: path)
            }
        } else if views.count == 1 {
            try Self.writePNG(rgb: views[0].rgb8, width: views[0].width, height: views[0].height, to: output)
        } else {
            let sheet = try ContactSheet(views: views, columns: sheetColumns, gap: 4, fill: SIMD3(0, 0, 0))
            try Self.writePNG(rgb: sheet.rgb, width: sheet.width, height: sheet.height, to: output)
        }
        return RenderJobResult(written: paths, viewCount: views.count, gaussians: splat.count,
                               rasterizer: rasterizer is CUDARasterizer ? "cuda" : "cpu", renderSeconds: seconds,
                               checks: SplatChecks.run(try ActivatedSplat(activating: splat)))
    }

    static func writePNG(rgb: [UInt8], width: Int, height: Int, to path: String) throws {
        let png = try PNGEncoder.encode(try Image(width: width, height: height, channels: 3, pixels: rgb))
        do {
            try png.write(to: URL(fileURLWithPath: path))
        } catch {
            throw RenderJobError("cannot write \(path): \(error.localizedDescription)")
        }
    }
}

public struct RenderJobResult: Sendable {
    public let written: [String]
    public let viewCount: Int
    public let gaussians: Int
    /// "cpu" or "cuda".
    public let rasterizer: String
    /// Activation, normalisation and drawing, without reading or writing files.
    public let renderSeconds: Double
    /// The validator's data checks on the same splat (a failing splat would score 0 however it looks).
    public let checks: SplatCheckResult
}
