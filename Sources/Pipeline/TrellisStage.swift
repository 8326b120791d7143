import Foundation
import Imaging
import Models
import PLY
import TorchShim

/// The image -> Gaussians stage on TRELLIS-image-large: the reference preprocessing (alpha crop x1.2, 518 px
/// Lanczos, premultiply), DINOv2 conditioning, the two flows, the Gaussian decoder, and the PLY conventions.
public final class TrellisGaussianStage: GaussianStage {
    public let name: String
    public let model: TrellisImageTo3D

    public init(model: TrellisImageTo3D, name: String = "trellis") {
        self.model = model
        self.name = name
    }

    public func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
        let rgba = image.toRGBA()
        let pixels = try TrellisPreprocess.Pixels(bytes: rgba.pixels, width: rgba.width, height: rgba.height, channels: 4)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let input = try TrellisPreprocess.conditioningInput(pixels, remover: nil, device: model.device)
        if ProcessInfo.processInfo.environment["GEN3D_TRACE"] == "1" {
            FileHandle.standardError.write(Data(String(format: "[trace] %-28@ %8.1f ms\n", "preprocess (host)",
                                                       Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6).utf8))
        }
        let sampling = TrellisSampling(structureSteps: settings.structureSteps, latentSteps: settings.latentSteps,
                                       structureGuidance: settings.structureGuidance, latentGuidance: settings.latentGuidance)
        let gaussians = try model.generate(pixelValues: input, seed: seed, sampling: sampling)
        return try gaussians.splat(orientation: output.orientation,
                                   includeNormals: output.includeNormals)
    }
}
