import Foundation
import Imaging
import Models
import PLY
import TorchShim
import Tokenizers

/// text -> Gaussians as LGM's `app.py` runs its text mode: MVDream (the prompt, the app's negative prompt, 30 DDIM
/// steps, guidance 7.5, elevation 0) -> four 256 px views -> per view: 8-bit, background removal, recentre (border
/// 0.2), white composite -> LGM 'big' -> Gaussians.
///
/// Differences from the app, on purpose: background removal is BiRefNet (the app uses rembg's u2net), and the
/// recentring box comes from the alpha channel (the app thresholds the red channel of rembg's output, which equals
/// the alpha box unless the object has no red). Without a background remover the views go to LGM as MVDream drew them.
public final class MVDreamLGMStage: TextToGaussianStage {
    /// The negative prompt of the LGM demo.
    public static let appNegativePrompt = "ugly, blurry, pixelated obscure, unnatural colors, poor lighting, dull, unclear, "
        + "cropped, lowres, low quality, artifacts, duplicate"

    public let name: String
    public let mvdream: MVDreamPipeline
    public let model: LGM
    public let backgroundRemoval: BackgroundRemovalStage?
    public var options: MVDreamPipeline.Options
    public var negativePrompt: String
    public var borderRatio: Double
    /// Text -> [77] token ids of the MVDream text encoder.
    let tokenize: (String) throws -> [Int32]
    let lift: LGMLift
    let device: Device

    public init(mvdream: MVDreamPipeline, model: LGM, tokenize: @escaping (String) throws -> [Int32],
                backgroundRemoval: BackgroundRemovalStage?, device: Device,
                options: MVDreamPipeline.Options = MVDreamPipeline.Options(guidanceScale: 7.5),
                negativePrompt: String = MVDreamLGMStage.appNegativePrompt, borderRatio: Double = 0.2,
                name: String = "mvdream + lgm") throws {
        guard !mvdream.isImageDream else {
            throw PipelineError.badInput("the MVDream text stage needs a text-only multi-view UNet (ip_dim 0), got ImageDream's")
        }
        guard options.views == model.views else {
            throw PipelineError.badInput("MVDream makes \(options.views) views, LGM takes \(model.views)")
        }
        self.mvdream = mvdream
        self.model = model
        self.tokenize = tokenize
        self.backgroundRemoval = backgroundRemoval
        self.options = options
        self.negativePrompt = negativePrompt
        self.borderRatio = borderRatio
        self.device = device
        self.name = name
        lift = try LGMLift(model: model, device: device)
    }

    /// `folder` = ashawkey/mvdream-sd2.1-diffusers (unet/, vae/, text_encoder/, tokenizer/, scheduler/); `model` is the
    /// LGM of the image stage (one copy serves both routes).
    public static func load(mvdream folder: URL, model: LGM, backgroundRemoval: BackgroundRemovalStage?, device: Device,
                            dtype: DType) throws -> MVDreamLGMStage {
        let pipeline = try MVDreamPipeline.load(folder: folder, device: device, dtype: dtype)
        let tokenizer = try CLIPTokenizer(folder: folder.appendingPathComponent("tokenizer"))
        return try MVDreamLGMStage(mvdream: pipeline, model: model, tokenize: { try tokenizer.encode($0, contextLength: 77) },
                                   backgroundRemoval: backgroundRemoval, device: device)
    }

    /// MVDream's four views [4, H, W, 3] in [0, 1] on the device, in the pipeline's order (azimuth 0, 90, 180, 270).
    public func views(text: String, seed: UInt64) throws -> Tensor {
        func ids(_ s: String) throws -> Tensor {
            let ids = try tokenize(s)
            return try Tensor(ids, shape: [1, ids.count]).to(device)
        }
        let generator = try Generator(seed: seed, device: device)
        return try mvdream(promptIds: ids(text), negativeIds: ids(negativePrompt), options: options, generator: generator).images
    }

    /// The app's per-view preparation: 8-bit (truncating), cut out, recentred, composited on white. [4, H, W, 3] float
    /// on the device. Without a background remover the views pass unchanged.
    public func prepare(_ views: Tensor) throws -> Tensor {
        guard let remover = backgroundRemoval else { return views }
        let (count, h, w) = (views.size(0), views.size(1), views.size(2))
        let bytes = try (views.to(.cpu, dtype: .float32) * 255.0).to(.uint8).contiguous().toArray(UInt8.self)
        let images = try (0..<count).map { v in
            try Image(width: w, height: h, channels: 3, pixels: Array(bytes[(v * h * w * 3)..<((v + 1) * h * w * 3)]))
        }
        let prepared = try remover.removeBackground(batch: images).map {
            try LGMImagePreparation.whiteComposite(LGMImagePreparation.recenter($0, borderRatio: borderRatio))
        }
        return try Tensor.stack(prepared).to(device)
    }

    public func generate(text: String, seed: UInt64, output: SplatOutputOptions, timings: inout StageTimings) throws
        -> (splat: GaussianSplat, views: Image) {
        let drawn = try timings.measure("multiview") { try views(text: text, seed: seed) }
        let seen = try timings.measure("background") { try prepare(drawn) }
        let gaussians = try timings.measure("gaussians") { try lift.gaussians(views: LGMInput.fromPipelineViews(seen)) }
        return (try LGMLift.splat(gaussians, output: output), try MVDreamLGMStage.grid(seen))
    }

    /// The views as the app shows them: [v1 v2; v3 v0], 8-bit RGB.
    static func grid(_ views: Tensor) throws -> Image {
        let v = try views.to(.cpu, dtype: .float32)
        func row(_ a: Int, _ b: Int) throws -> Tensor { try Tensor.cat([v.select(0, a), v.select(0, b)], dim: 1) }
        let grid = try Tensor.cat([row(1, 2), row(3, 0)], dim: 0)
        let pixels = try (grid * 255.0).round().clamp(min: 0, max: 255).to(.uint8).contiguous().toArray(UInt8.self)
        return try Image(width: grid.size(1), height: grid.size(0), channels: 3, pixels: pixels)
    }
}
