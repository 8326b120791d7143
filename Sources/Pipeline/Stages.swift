import Foundation
import Imaging
import PLY

// The stages a generation pipeline is made of; each implementation lives in its own file (FluxStage, BiRefNetRemover,
// TrellisStage, LGMStage, LGMTextStage, ValidatorGate).

/// text -> image (FLUX.1-schnell).
public protocol TextToImageStage: AnyObject {
    var name: String { get }
    /// `steps`: the sampling steps of this image (nil: the stage's own).
    func generateImage(prompt: String, seed: UInt64, steps: Int?) throws -> Image
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

public protocol ValidationStage: AnyObject {
    var name: String { get }
    /// Renders with the cameras of the validators that expect `orientation` and scores like them.
    func evaluate(_ splat: GaussianSplat, prompt: Prompt, orientation: SplatOrientation) throws -> ValidationVerdict
}
