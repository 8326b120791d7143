import Foundation
import Imaging
import PLY

/// What the user asked for: a text prompt or an image prompt.
public enum Prompt {
    case text(String)
    case image(Image)

    public var kind: String {
        switch self {
        case .text: return "text"
        case .image: return "image"
        }
    }
}

/// Sampling settings of the image -> 3D stage (TRELLIS: structure and latent flows; LGM: diffusion steps).
public struct GaussianSettings: Sendable, Equatable {
    public var structureSteps: Int
    public var latentSteps: Int
    public var structureGuidance: Double
    public var latentGuidance: Double

    public init(structureSteps: Int, latentSteps: Int, structureGuidance: Double, latentGuidance: Double) {
        self.structureSteps = structureSteps
        self.latentSteps = latentSteps
        self.structureGuidance = structureGuidance
        self.latentGuidance = latentGuidance
    }

    /// The hub pipeline.json defaults of TRELLIS-image-large.
    public static let quality = GaussianSettings(structureSteps: 25, latentSteps: 25, structureGuidance: 5.0, latentGuidance: 5.0)
    /// The public demo's settings: 12/12 steps, cfg 7.5 / 3.0.
    public static let fast = GaussianSettings(structureSteps: 12, latentSteps: 12, structureGuidance: 7.5, latentGuidance: 3.0)

    public static func preset(_ name: String) -> GaussianSettings? {
        switch name.lowercased() {
        case "fast", "demo": return .fast
        case "quality", "default", "hub": return .quality
        default: return nil
        }
    }
}

/// text -> image (FLUX.1-schnell).
public protocol TextToImageStage: AnyObject {
    var name: String { get }
    func generateImage(prompt: String, seed: UInt64) throws -> Image
}

/// image -> RGBA with the object cut out (BiRefNet). Images that already carry a real alpha may pass unchanged.
public protocol BackgroundRemovalStage: AnyObject {
    var name: String { get }
    func removeBackground(_ image: Image) throws -> Image
    /// Several images at once (the MVDream route's four views): one batched forward where the model allows it.
    func removeBackground(batch images: [Image]) throws -> [Image]
}

extension BackgroundRemovalStage {
    public func removeBackground(batch images: [Image]) throws -> [Image] { try images.map { try removeBackground($0) } }
}

/// RGBA image -> Gaussians (TRELLIS or LGM).
public protocol GaussianStage: AnyObject {
    var name: String { get }
    /// The splat comes back in the PLY convention `output` asks for (orientation).
    func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat
}

/// text -> Gaussians without a single intermediate image (MVDream -> LGM): the generator sees several views that a
/// multi-view diffusion model drew from the text.
public protocol TextToGaussianStage: AnyObject {
    var name: String { get }
    /// The splat and a picture of what the 3D stage saw (the views side by side), with the stage's own timings.
    func generate(text: String, seed: UInt64, output: SplatOutputOptions, timings: inout StageTimings) throws
        -> (splat: GaussianSplat, views: Image)
}

/// How a text prompt reaches the 3D generator.
public enum TextRoute: String, Sendable, CaseIterable {
    /// FLUX.1-schnell -> background removal -> the image -> 3D generator (TRELLIS or LGM via ImageDream).
    case flux
    /// MVDream draws four views from the text -> LGM (LGM only; the reference app's text mode).
    case mvdream
}

/// The validators' verdict, predicted: renders the splat as they do and scores it.
public struct ValidationVerdict: Sendable {
    /// The predicted validator score, or nil when it cannot be predicted (scorers missing, image prompts).
    public var score: Double?
    public var alignment: Double?
    /// The validators' data checks (count, opacity, rotations): a failure means rejection whatever the score.
    public var passedChecks: Bool
    public var notes: [String]

    /// Whether the validators would accept this at `minScore`, as far as can be told.
    public func passes(minScore: Double) -> Bool { passedChecks && (score.map { $0 >= minScore } ?? true) }

    /// A ranking value for choosing among attempts (failed checks rank lowest; unknown scores above them).
    public var rank: Double { passedChecks ? (score ?? 0.5) : -1 }

    public init(score: Double?, alignment: Double?, passedChecks: Bool, notes: [String] = []) {
        self.score = score
        self.alignment = alignment
        self.passedChecks = passedChecks
        self.notes = notes
    }
}

public protocol ValidationStage: AnyObject {
    var name: String { get }
    /// Renders with the cameras of the validators that expect `orientation` and scores like them.
    func evaluate(_ splat: GaussianSplat, prompt: Prompt, orientation: SplatOrientation) throws -> ValidationVerdict
}

/// Measures named stages of one job.
public struct StageTimings: Sendable {
    public private(set) var entries: [(name: String, seconds: Double)] = []

    public init() {}

    public mutating func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { entries.append((name, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)) }
        return try body()
    }

    public mutating func append(_ name: String, seconds: Double) { entries.append((name, seconds)) }

    public var total: Double { entries.reduce(0) { $0 + $1.seconds } }
}
