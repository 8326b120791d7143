import Foundation
import NN
import TorchShim

/// Wraps a user prompt into a prompt that asks for an image a 3D reconstructor handles well.
public struct FluxPromptTemplate: Sendable, Equatable {
    /// Where the user's prompt goes in `template`.
    public static let placeholder = "{prompt}"
    /// One centred object, entirely in view, on a plain white background.
    public static let objectFor3D = FluxPromptTemplate(
        validated: "{prompt}, a single centered object, whole object in view, plain white background, studio lighting, 3d render")
    /// Passes prompts through unchanged.
    public static let disabled = FluxPromptTemplate(validated: placeholder, isEnabled: false)

    public let template: String
    public let isEnabled: Bool

    /// `template` must contain `{prompt}` exactly once.
    public init(template: String, isEnabled: Bool = true) throws {
        let count = template.components(separatedBy: FluxPromptTemplate.placeholder).count - 1
        guard count == 1 else {
            throw FluxError("a prompt template must contain \(FluxPromptTemplate.placeholder) exactly once, found \(count)")
        }
        self.init(validated: template, isEnabled: isEnabled)
    }

    private init(validated template: String, isEnabled: Bool = true) {
        self.template = template
        self.isEnabled = isEnabled
    }

    public func apply(_ prompt: String) -> String {
        let trimmed = prompt.trimmingCharacters(in: .whitespacesAndNewlines)
        guard isEnabled else { return trimmed }
        return template.replacingOccurrences(of: FluxPromptTemplate.placeholder, with: trimmed)
    }
}

/// What the transformer is conditioned on: T5 token states and the pooled CLIP vector.
public struct FluxPromptEmbeddings {
    /// [B, T, joint_attention_dim] (T5 last_hidden_state).
    public let promptEmbeds: Tensor
    /// [B, pooled_projection_dim] (CLIP pooler_output).
    public let pooledPromptEmbeds: Tensor

    public init(promptEmbeds: Tensor, pooledPromptEmbeds: Tensor) {
        self.promptEmbeds = promptEmbeds
        self.pooledPromptEmbeds = pooledPromptEmbeds
    }

    public var batchSize: Int { promptEmbeds.size(0) }
}

/// CLIP-L (pooled) and T5-XXL (per-token) text encoders of FLUX; token ids come from the Tokenizers target
/// (CLIP: 77 ids padded with max_length; T5: max_sequence_length ids, 256 for schnell, padded).
public final class FluxTextEncoders {
    public let clip: CLIPTextModel
    public let t5: T5EncoderModel

    public init(clip: CLIPTextModel, t5: T5EncoderModel) {
        self.clip = clip
        self.t5 = t5
    }

    /// clipInputIds [B, 77], t5InputIds [B, T] (integers, any device).
    public func encode(clipInputIds: Tensor, t5InputIds: Tensor) throws -> FluxPromptEmbeddings {
        guard clipInputIds.ndim == 2, t5InputIds.ndim == 2, clipInputIds.size(0) == t5InputIds.size(0) else {
            throw FluxError("CLIP ids \(clipInputIds.shape) and T5 ids \(t5InputIds.shape) must be [batch, length] with one batch size")
        }
        let pooled = try clip(clipInputIds).poolerOutput.to(clip.dtype)
        let states = try t5(t5InputIds).to(t5.dtype)
        return FluxPromptEmbeddings(promptEmbeds: states, pooledPromptEmbeds: pooled)
    }
}

/// An 8-bit RGB image, rows top to bottom, 3 bytes per pixel.
public struct FluxRGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let pixels: [UInt8]
}

/// diffusers `FluxPipeline` for text -> image with FLUX.1-schnell: packed latents, Euler flow matching,
/// VAE decode. Tensors stay on the device from the embeddings to the image.
public final class FluxPipeline {
    public struct Options: Sendable {
        public var height: Int
        public var width: Int
        public var steps: Int
        /// Only used by guidance-distilled transformers (FLUX.1-dev); schnell ignores it.
        public var guidanceScale: Double

        public init(height: Int = 1024, width: Int = 1024, steps: Int = 4, guidanceScale: Double = 0) {
            self.height = height
            self.width = width
            self.steps = steps
            self.guidanceScale = guidanceScale
        }
    }

    public struct Output {
        /// [B, 3, H, W] in [0, 1], float, on the device.
        public let images: Tensor
        /// The final packed latents [B, N, 4 * latent_channels].
        public let latents: Tensor
        public let sigmas: [Float]
        public let timesteps: [Float]
    }

    public let transformer: FluxTransformer2DModel
    public let vae: AutoencoderKL
    public let schedulerConfig: FlowMatchEulerScheduler.Config
    public let textEncoders: FluxTextEncoders?

    public init(transformer: FluxTransformer2DModel, vae: AutoencoderKL, schedulerConfig: FlowMatchEulerScheduler.Config,
                textEncoders: FluxTextEncoders? = nil) throws {
        guard transformer.config.inChannels == 4 * vae.config.latentChannels else {
            throw FluxError("transformer in_channels \(transformer.config.inChannels) must be 4 x VAE latent channels \(vae.config.latentChannels)")
        }
        self.transformer = transformer
        self.vae = vae
        self.schedulerConfig = schedulerConfig
        self.textEncoders = textEncoders
    }

    /// Pixels per latent side (8 for FLUX).
    public var vaeScaleFactor: Int { vae.config.spatialScale }

    // MARK: loading

    /// Loads a diffusers-format folder (model_index.json, scheduler/, transformer/, vae/, text_encoder/,
    /// text_encoder_2/; single or sharded safetensors). Every key of each component must be used.
    public static func load(folder: URL, device: Device, dtype: DType, transformerFormat: FluxWeightFormat = .dense,
                            textEncoders loadText: Bool = true, vaeEncoder: Bool = false,
                            t5Residency: T5EncoderModel.BlockResidency = .device) throws -> FluxPipeline {
        func config<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
            try ConfigFile.decode(T.self, from: folder.appendingPathComponent(path))
        }
        func weights(_ sub: String) throws -> WeightLoader {
            WeightLoader(try SafeTensors.open(folder.appendingPathComponent(sub)), device: device, dtype: dtype)
        }
        let tw = try weights("transformer")
        let transformer = try FluxTransformer2DModel(tw, config: config(FluxTransformer2DModel.Config.self,
                                                                         "transformer/config.json"),
                                                     format: transformerFormat)
        try tw.checkAllUsed()
        let vw = try weights("vae")
        let vae = try AutoencoderKL(vw, config: config(AutoencoderKL.Config.self, "vae/config.json"), withEncoder: vaeEncoder)
        try vw.checkAllUsed()
        var encoders: FluxTextEncoders? = nil
        if loadText {
            let cw = try weights("text_encoder")
            let clip = try CLIPTextModel(cw, config: config(CLIPTextModel.Config.self, "text_encoder/config.json"))
            try cw.checkAllUsed()
            let t5w = try weights("text_encoder_2")
            let t5 = try T5EncoderModel(t5w, config: config(T5EncoderModel.Config.self, "text_encoder_2/config.json"),
                                        blockResidency: t5Residency)
            try t5w.checkAllUsed()
            encoders = FluxTextEncoders(clip: clip, t5: t5)
        }
        let scheduler = try config(FlowMatchEulerScheduler.Config.self, "scheduler/scheduler_config.json")
        return try FluxPipeline(transformer: transformer, vae: vae, schedulerConfig: scheduler, textEncoders: encoders)
    }

    // MARK: latent layout

    /// [B, C, H, W] -> [B, (H/2)(W/2), 4C]: 2x2 patches, row-major over patches, channel-major inside.
    public static func packLatents(_ latents: Tensor) throws -> Tensor {
        let (b, c, h, w) = (latents.size(0), latents.size(1), latents.size(2), latents.size(3))
        guard h % 2 == 0, w % 2 == 0 else { throw FluxError("latent height and width must be even, got \(h)x\(w)") }
        return try latents.view([b, c, h / 2, 2, w / 2, 2]).permute([0, 2, 4, 1, 3, 5])
            .reshape([b, (h / 2) * (w / 2), c * 4])
    }

    /// The inverse of `packLatents` for latent size h x w.
    public static func unpackLatents(_ packed: Tensor, latentHeight h: Int, latentWidth w: Int) throws -> Tensor {
        let (b, n, c4) = (packed.size(0), packed.size(1), packed.size(2))
        guard n == (h / 2) * (w / 2), c4 % 4 == 0 else {
            throw FluxError("packed latents \(packed.shape) do not fit a \(h)x\(w) latent")
        }
        return try packed.view([b, h / 2, w / 2, c4 / 4, 2, 2]).permute([0, 3, 1, 4, 2, 5]).reshape([b, c4 / 4, h, w])
    }

    /// img_ids [(h/2)(w/2), 3]: (0, patch row, patch column).
    public static func latentImageIds(latentHeight h: Int, latentWidth w: Int, device: Device = .cpu,
                                      dtype: DType = .float32) throws -> Tensor {
        let rows = try Tensor.arange(0, Double(h / 2), dtype: .float32, device: device).view([h / 2, 1]).expand([h / 2, w / 2])
        let cols = try Tensor.arange(0, Double(w / 2), dtype: .float32, device: device).view([1, w / 2]).expand([h / 2, w / 2])
        let zeros = try Tensor.zeros([h / 2, w / 2], dtype: .float32, device: device)
        return try Tensor.stack([zeros, rows, cols], dim: -1).reshape([(h / 2) * (w / 2), 3]).to(dtype)
    }

    /// txt_ids [T, 3]: all zeros.
    public static func textIds(length: Int, device: Device = .cpu, dtype: DType = .float32) throws -> Tensor {
        try Tensor.zeros([length, 3], dtype: dtype, device: device)
    }

    /// The latent size for an image size, checking it divides into whole 2x2 latent patches.
    public func latentSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
        let unit = vaeScaleFactor * 2
        guard height > 0, width > 0, height % unit == 0, width % unit == 0 else {
            throw FluxError("image height and width must be positive multiples of \(unit), got \(height)x\(width)")
        }
        return (height / vaeScaleFactor, width / vaeScaleFactor)
    }

    // MARK: generation

    /// Initial packed latents: N(0, 1) of [B, latent_channels, h, w] drawn on the device from `generator`
    /// (torch's numbers for the same seed and device), then packed.
    public func randomLatents(batch: Int, height: Int, width: Int, generator: Generator?) throws -> Tensor {
        let (h, w) = try latentSize(height: height, width: width)
        let noise = try Tensor.randn([batch, vae.config.latentChannels, h, w], dtype: transformer.dtype,
                                     device: transformer.device, generator: generator)
        return try FluxPipeline.packLatents(noise)
    }

    /// Text -> image from token ids (needs text encoders).
    public func callAsFunction(clipInputIds: Tensor, t5InputIds: Tensor, options: Options = Options(),
                               generator: Generator? = nil) throws -> Output {
        guard let textEncoders else { throw FluxError("this pipeline was loaded without text encoders") }
        let embeddings = try textEncoders.encode(clipInputIds: clipInputIds, t5InputIds: t5InputIds)
        return try callAsFunction(embeddings: embeddings, options: options, generator: generator)
    }

    /// Embeddings -> image. `latents`: packed initial latents [B, N, 4C] (drawn from `generator` when nil).
    /// `onStep(i, latents)` sees the latents after each step (for tests and previews).
    public func callAsFunction(embeddings: FluxPromptEmbeddings, options: Options = Options(), latents: Tensor? = nil,
                               generator: Generator? = nil, onStep: ((Int, Tensor) throws -> Void)? = nil) throws -> Output {
        let batch = embeddings.batchSize
        let tc = transformer.config
        guard embeddings.promptEmbeds.ndim == 3, embeddings.promptEmbeds.size(2) == tc.jointAttentionDim,
              embeddings.pooledPromptEmbeds.shape == [batch, tc.pooledProjectionDim] else {
            throw FluxError("prompt embeddings \(embeddings.promptEmbeds.shape) / pooled \(embeddings.pooledPromptEmbeds.shape) do not fit the transformer (\(tc.jointAttentionDim), \(tc.pooledProjectionDim))")
        }
        let (lh, lw) = try latentSize(height: options.height, width: options.width)
        let device = transformer.device, dtype = transformer.dtype
        var x: Tensor
        if let latents {
            let expected = [batch, (lh / 2) * (lw / 2), tc.inChannels]
            guard latents.shape == expected else {
                throw FluxError("latents must be packed as \(expected) for \(options.height)x\(options.width), got \(latents.shape)")
            }
            x = try latents.to(device, dtype: dtype)
        } else {
            x = try randomLatents(batch: batch, height: options.height, width: options.width, generator: generator)
        }
        let promptEmbeds = try embeddings.promptEmbeds.to(device, dtype: dtype)
        let pooled = try embeddings.pooledPromptEmbeds.to(device, dtype: dtype)
        let rope = try transformer.rotaryEmbedding(
            txtIds: FluxPipeline.textIds(length: promptEmbeds.size(1), device: device, dtype: dtype),
            imgIds: FluxPipeline.latentImageIds(latentHeight: lh, latentWidth: lw, device: device, dtype: dtype))
        let scheduler = try FlowMatchEulerScheduler(config: schedulerConfig, steps: options.steps, imageSeqLen: x.size(1))
        let guidance = tc.guidanceEmbeds
            ? try Tensor.full([batch], value: options.guidanceScale, dtype: .float32, device: device) : nil

        for (i, t) in scheduler.timesteps.enumerated() {
            // As diffusers: t (float32) cast to the latents' dtype, divided by 1000 (the model multiplies back).
            let timestep = try Tensor.full([batch], value: Double(t), dtype: .float32, device: device).to(dtype) / 1000.0
            let velocity = try transformer.forward(hiddenStates: x, encoderHiddenStates: promptEmbeds,
                                                   pooledProjections: pooled, timestep: timestep, rope: rope,
                                                   guidance: guidance)
            x = try scheduler.step(velocity: velocity, sample: x, index: i)
            try onStep?(i, x)
        }
        let images = try decode(packedLatents: x, latentHeight: lh, latentWidth: lw)
        return Output(images: images, latents: x, sigmas: scheduler.sigmas, timesteps: scheduler.timesteps)
    }

    /// Packed latents -> images in [0, 1]: unpack, z / scaling + shift, VAE decode, x / 2 + 0.5 clamped.
    public func decode(packedLatents: Tensor, latentHeight: Int, latentWidth: Int) throws -> Tensor {
        let z = try vae.unscale(FluxPipeline.unpackLatents(packedLatents, latentHeight: latentHeight,
                                                            latentWidth: latentWidth))
        return try (vae.decode(z) / 2.0 + 0.5).clamp(min: 0, max: 1)
    }

    /// Images [B, 3, H, W] in [0, 1] -> 8-bit RGB (round(x * 255), as diffusers' numpy_to_pil).
    public static func rgb8(_ images: Tensor) throws -> [FluxRGBImage] {
        guard images.ndim == 4, images.size(1) == 3 else { throw FluxError("images must be [batch, 3, H, W], got \(images.shape)") }
        let (b, h, w) = (images.size(0), images.size(2), images.size(3))
        let bytes = try (images.to(.float32) * 255.0).round().clamp(min: 0, max: 255).to(.uint8)
            .permute([0, 2, 3, 1]).contiguous().to(.cpu).toArray(UInt8.self)
        let stride = h * w * 3
        return (0..<b).map { FluxRGBImage(width: w, height: h, pixels: Array(bytes[$0 * stride..<($0 + 1) * stride])) }
    }
}
