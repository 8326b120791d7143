import Foundation
import NN
import TorchShim

/// The image prompt of ImageDream, prepared by the caller (the CLIP image processor lives with the image code):
/// `pixelValues` [1, 3, S, S] for the CLIP vision tower, `image` [1, 3, H, W] in [0, 1] (RGB, white background) for
/// the VAE.
public struct MVDreamImagePrompt {
    public let pixelValues: Tensor
    public let image: Tensor

    public init(pixelValues: Tensor, image: Tensor) {
        self.pixelValues = pixelValues
        self.image = image
    }
}

/// LGM's `MVDreamPipeline` (mvdream/pipeline_mvdream.py): MVDream (text -> 4 views) or ImageDream (image -> 4 views +
/// the reference view) with DDIM and classifier-free guidance in the official batch order
/// ([uncond frames..., cond frames...]). Tensors stay on the device from the prompt to the images.
public final class MVDreamPipeline {
    public struct Options: Sendable, Equatable {
        public var steps: Int
        public var guidanceScale: Double
        public var elevation: Double
        /// Views around the object (ImageDream adds the reference view as one more frame).
        public var views: Int
        public var height: Int
        public var width: Int
        /// Decode the ImageDream reference frame too (the pipeline's output has it; LGM does not use it).
        public var decodeReferenceView: Bool

        /// The LGM demo's ImageDream settings: 30 steps, guidance 5, elevation 0, 4 views at 256 px.
        public init(steps: Int = 30, guidanceScale: Double = 5, elevation: Double = 0, views: Int = 4, height: Int = 256,
                    width: Int = 256, decodeReferenceView: Bool = true) {
            self.steps = steps
            self.guidanceScale = guidanceScale
            self.elevation = elevation
            self.views = views
            self.height = height
            self.width = width
            self.decodeReferenceView = decodeReferenceView
        }
    }

    public struct Output {
        /// [frames, H, W, 3] float32 in [0, 1] on the device: the views at MVDream azimuths 0, 90, 180, 270
        /// (then the ImageDream reference view when decoded).
        public let images: Tensor
        /// Final latents [frames, 4, h, w] (model dtype).
        public let latents: Tensor
        public let timesteps: [Int]
    }

    /// Side of the reference image the VAE encodes (ImageDream always uses 256 px, i.e. 32 latent px).
    public static let referenceImageSide = 256

    public let unet: MultiViewUNetModel
    public let vae: AutoencoderKL
    public let textEncoder: CLIPTextModel
    public let imageEncoder: CLIPVisionModel?
    public let schedulerConfig: DDIMScheduler.Config

    public init(unet: MultiViewUNetModel, vae: AutoencoderKL, textEncoder: CLIPTextModel, imageEncoder: CLIPVisionModel?,
                schedulerConfig: DDIMScheduler.Config) throws {
        guard unet.config.contextDim == textEncoder.config.hiddenSize else {
            throw LGMError("UNet context_dim \(unet.config.contextDim) differs from the text encoder width \(textEncoder.config.hiddenSize)")
        }
        guard unet.config.inChannels == vae.config.latentChannels, unet.config.outChannels == vae.config.latentChannels else {
            throw LGMError("UNet channels \(unet.config.inChannels)/\(unet.config.outChannels) differ from the VAE's \(vae.config.latentChannels) latents")
        }
        if unet.config.ipDim > 0 {
            guard let imageEncoder else { throw LGMError("an ImageDream UNet (ip_dim > 0) needs the CLIP image encoder") }
            guard imageEncoder.config.hiddenSize == 1280 else {
                throw LGMError("ImageDream's Resampler reads 1280-wide image tokens; the image encoder is \(imageEncoder.config.hiddenSize) wide")
            }
        }
        self.unet = unet
        self.vae = vae
        self.textEncoder = textEncoder
        self.imageEncoder = imageEncoder
        self.schedulerConfig = schedulerConfig
    }

    /// ImageDream when the UNet takes an image prompt, else MVDream (text only).
    public var isImageDream: Bool { unet.config.ipDim > 0 }
    public var vaeScaleFactor: Int { vae.config.spatialScale }

    // MARK: loading

    /// A diffusers-format folder as the mvdream_diffusers converter writes it (`unet/`, `vae/`, `text_encoder/`,
    /// `scheduler/`, and for ImageDream `image_encoder/`; config JSON + safetensors in each). Every key must be used,
    /// except the image encoder's last layer and post_layernorm, which ImageDream never runs.
    public static func load(folder: URL, device: Device, dtype: DType) throws -> MVDreamPipeline {
        func config<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
            try ConfigFile.decode(T.self, from: folder.appendingPathComponent(path))
        }
        func weights(_ sub: String) throws -> WeightLoader {
            WeightLoader(try SafeTensors.open(folder.appendingPathComponent(sub)), device: device, dtype: dtype)
        }
        let uw = try weights("unet")
        let unet = try MultiViewUNetModel(uw, config: config(MultiViewUNetModel.Config.self, "unet/config.json"))
        try uw.checkAllUsed()
        let vw = try weights("vae")
        let vae = try AutoencoderKL(vw, config: config(AutoencoderKL.Config.self, "vae/config.json"),
                                    withEncoder: unet.config.ipDim > 0)
        try vw.checkAllUsed()
        let tw = try weights("text_encoder")
        let text = try CLIPTextModel(tw, config: config(CLIPTextModel.Config.self, "text_encoder/config.json"))
        try tw.checkAllUsed()
        var image: CLIPVisionModel? = nil
        if unet.config.ipDim > 0 {
            let iw = try weights("image_encoder")
            image = try CLIPVisionModel(iw, config: config(CLIPVisionModel.Config.self, "image_encoder/config.json"),
                                        usesPenultimateLayerOnly: true)
            try iw.checkAllUsed()
        }
        let scheduler = try config(DDIMScheduler.Config.self, "scheduler/scheduler_config.json")
        return try MVDreamPipeline(unet: unet, vae: vae, textEncoder: text, imageEncoder: image, schedulerConfig: scheduler)
    }

    // MARK: conditioning

    /// `_encode_prompt` for one prompt: token ids [1, L] -> last_hidden_state [1, L, D] (model dtype).
    public func encodePrompt(_ inputIds: Tensor) throws -> Tensor {
        guard inputIds.ndim == 2, inputIds.size(0) == 1 else {
            throw LGMError("prompt ids must be [1, length], got \(inputIds.shape)")
        }
        return try textEncoder(inputIds).lastHiddenState.to(unet.dtype)
    }

    /// `encode_image`: CLIP `hidden_states[-2]` of the processed image [1, tokens, 1280].
    public func imageEmbeddings(_ pixelValues: Tensor) throws -> Tensor {
        guard let imageEncoder else { throw LGMError("this pipeline has no image encoder (MVDream is text-only)") }
        return try imageEncoder.penultimateHiddenState(pixelValues).to(unet.dtype)
    }

    /// `encode_image_latents`: image [1, 3, H, W] in [0, 1] -> 2x - 1 -> bilinear 256 x 256 -> VAE posterior sample
    /// (noise from `generator`; nil = torch's global generator, as the reference) x scaling_factor.
    public func imageLatents(_ image: Tensor, generator: Generator? = nil) throws -> Tensor {
        guard image.ndim == 4, image.size(0) == 1, image.size(1) == 3 else {
            throw LGMError("the reference image must be [1, 3, H, W] in [0, 1], got \(image.shape)")
        }
        let side = MVDreamPipeline.referenceImageSide
        // The reference's image is a permuted HWC array, i.e. channels-last, and stays so through the encoder;
        // channels-last convolutions and norms round differently, so the same layout is used here.
        let channelsLast = try image.to(vae.device, dtype: .float32).permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
        let x = try F.interpolate(channelsLast * 2 - 1, size: [side, side], mode: .bilinear, alignCorners: false)
        let posterior = try vae.encode(x.to(vae.dtype))
        return try (posterior.sample(generator: generator) * vae.config.scalingFactor).to(unet.dtype)
    }

    // MARK: generation

    /// Views for a prompt. `promptIds` / `negativeIds`: [1, 77] token ids (the negative prompt is "" in LGM).
    /// `image`: the ImageDream prompt (required iff the UNet is ImageDream). `generator` draws the initial latents
    /// [frames, 4, h, w] on the UNet's device; `posteriorGenerator` the VAE posterior noise (nil = global generator).
    /// `observe(name, tensor)` sees the conditioning and each step (`step{i}.unet_t`, `.unet_x`, `.unet_out`, `.latents`).
    public func callAsFunction(promptIds: Tensor, negativeIds: Tensor, image: MVDreamImagePrompt? = nil,
                               options: Options = Options(), generator: Generator? = nil,
                               posteriorGenerator: Generator? = nil, latents initial: Tensor? = nil,
                               observe: ((String, Tensor) throws -> Void)? = nil) throws -> Output {
        guard (image != nil) == isImageDream else {
            throw LGMError(isImageDream ? "ImageDream needs an image prompt" : "MVDream is text-only; got an image prompt")
        }
        let s = vaeScaleFactor
        guard options.views >= 1, options.height > 0, options.width > 0, options.height % s == 0, options.width % s == 0 else {
            throw LGMError("views \(options.views) and image size \(options.height)x\(options.width) (multiples of \(s)) are required")
        }
        let (lh, lw) = (options.height / s, options.width / s)
        if isImageDream {
            let side = MVDreamPipeline.referenceImageSide / s
            guard lh == side, lw == side else {
                throw LGMError("ImageDream's reference latents are \(side) px: the views must be \(side * s) x \(side * s), got \(options.height)x\(options.width)")
            }
        }
        let scheduler = try DDIMScheduler(config: schedulerConfig, steps: options.steps)
        let device = unet.device, dtype = unet.dtype
        let frames = options.views + (isImageDream ? 1 : 0)
        let cfg = options.guidanceScale > 1

        var imageEmbeds: Tensor? = nil, referenceLatents: Tensor? = nil
        if let image {
            imageEmbeds = try imageEmbeddings(image.pixelValues)
            try observe?("image_embeds", imageEmbeds!)
            referenceLatents = try imageLatents(image.image, generator: posteriorGenerator)
            try observe?("image_latents", referenceLatents!)
        }
        let positive = try encodePrompt(promptIds)
        let negative = try encodePrompt(negativeIds)
        try observe?("prompt_embeds_pos", positive)
        try observe?("prompt_embeds_neg", negative)

        var x: Tensor
        let latentShape = [frames, unet.config.inChannels, lh, lw]
        if let initial {
            guard initial.shape == latentShape else { throw LGMError("latents must be \(latentShape), got \(initial.shape)") }
            x = try initial.to(device, dtype: dtype)
        } else {
            x = try Tensor.randn(latentShape, dtype: dtype, device: device, generator: generator)
        }
        try observe?("init_latents", x)

        // The batch of one forward: [uncond frames..., cond frames...] when guiding, else the cond frames.
        let copies = cfg ? 2 : 1
        let camera = try MultiViewCameras.cameras(frames: options.views, elevation: options.elevation, extraView: isImageDream)
            .to(device, dtype: dtype).repeated([copies, 1])
        try observe?("camera", camera)
        func perFrame(_ t: Tensor) throws -> Tensor { try t.expand([frames] + Array(t.shape.dropFirst())) }
        let context = cfg ? try Tensor.cat([perFrame(negative), perFrame(positive)]) : try perFrame(positive)
        var ip: Tensor? = nil, ipImage: Tensor? = nil
        if let imageEmbeds, let referenceLatents {
            ip = cfg ? try Tensor.cat([perFrame(imageEmbeds.zerosLike()), perFrame(imageEmbeds)]) : try perFrame(imageEmbeds)
            ipImage = cfg ? try Tensor.cat([referenceLatents.zerosLike(), referenceLatents]) : referenceLatents
        }

        for (i, t) in scheduler.timesteps.enumerated() {
            let input = cfg ? try Tensor.cat([x, x]) : x
            let timesteps = try Tensor.full([frames * copies], value: Double(t), dtype: dtype, device: device)
            try observe?("step\(i).unet_t", timesteps)
            let unetObserver: ((String, Tensor) throws -> Void)? = observe.map { o in
                { name, tensor in if name == "h_in" { try o("step\(i).unet_x", tensor) } }
            }
            var noise = try unet(input, timesteps: timesteps, context: context, camera: camera, frames: frames, ip: ip,
                                 ipImage: ipImage, observe: unetObserver)
            try observe?("step\(i).unet_out", noise)
            if cfg {
                let halves = try noise.chunk(2, dim: 0)
                noise = try halves[0] + (halves[1] - halves[0]) * options.guidanceScale
            }
            x = try scheduler.step(modelOutput: noise, timestep: t, sample: x)
            try observe?("step\(i).latents", x)
        }
        let decoded = options.decodeReferenceView || !isImageDream ? x : try x.narrow(0, start: 0, length: options.views)
        return Output(images: try decode(decoded), latents: x, timesteps: scheduler.timesteps)
    }

    /// `decode_latents`: latents / scaling_factor -> VAE -> (x / 2 + 0.5) clamped to [0, 1] -> [B, H, W, 3] float32.
    public func decode(_ latents: Tensor) throws -> Tensor {
        let pixels = try vae.decode(latents.to(vae.dtype) * (1 / vae.config.scalingFactor))
        return try (pixels / 2.0 + 0.5).clamp(min: 0, max: 1).permute([0, 2, 3, 1]).to(.float32).contiguous()
    }
}
