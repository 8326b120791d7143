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

    /// The sampling steps a request may ask for, of any stage (text-to-image, structure, latent): checked once, where
    /// the request is decoded.
    public static let stepRange = 1...100

    public static func preset(_ name: String) -> GaussianSettings? {
        switch name.lowercased() {
        case "fast", "demo": return .fast
        case "quality", "default", "hub": return .quality
        default: return nil
        }
    }
}
