import Foundation
import Imaging
import Models
import TorchShim
import Tokenizers

/// Turns a prompt into token ids for FLUX's two text encoders.
public protocol FluxPromptTokenizer {
    func ids(_ text: String) throws -> (clip: [Int32], t5: [Int32])
}

/// The tokenizers shipped in the FLUX folder: CLIP BPE (`tokenizer/`, 77 tokens) and T5 (`tokenizer_2/`, 256 tokens).
public struct FluxFolderTokenizer: FluxPromptTokenizer {
    let clip: CLIPTokenizer
    let t5: T5Tokenizer
    let t5MaxLength: Int

    public init(folder: URL, t5MaxLength: Int = 256) throws {
        clip = try CLIPTokenizer(folder: folder.appendingPathComponent("tokenizer"))
        t5 = try T5Tokenizer(folder: folder.appendingPathComponent("tokenizer_2"))
        self.t5MaxLength = t5MaxLength
    }

    public func ids(_ text: String) throws -> (clip: [Int32], t5: [Int32]) {
        (try clip.encode(text, contextLength: 77), try t5.encode(text, maxLength: t5MaxLength))
    }
}

/// text -> image with FLUX.1-schnell (4 steps, guidance 0). The user's prompt is wrapped in a 3D-friendly template
/// (one centred object, plain background) for the image only; the prompt that is scored stays the user's.
public final class FluxTextToImageStage: TextToImageStage {
    public let name: String
    public let pipeline: FluxPipeline
    public let tokenizer: FluxPromptTokenizer
    public var template: FluxPromptTemplate
    public var size: Int
    public var steps: Int
    /// Smoke pipeline only: the tiny random CLIP's pooled width exceeds the tiny transformer's pooled width, so
    /// its leading channels are used. Real checkpoints always match (768 = 768) and leave this off.
    public var truncatePooledEmbedding = false
    let device: Device

    public init(pipeline: FluxPipeline, tokenizer: FluxPromptTokenizer, device: Device, template: FluxPromptTemplate = .objectFor3D,
                size: Int = 512, steps: Int = 4, name: String = "flux.1-schnell") {
        self.pipeline = pipeline
        self.tokenizer = tokenizer
        self.device = device
        self.template = template
        self.size = size
        self.steps = steps
        self.name = name
    }

    public func generateImage(prompt: String, seed: UInt64, steps: Int?) throws -> Image {
        let (clip, t5) = try tokenizer.ids(template.apply(prompt))
        let clipIds = try Tensor(clip.map(Int64.init), shape: [1, clip.count]).to(device)
        let t5Ids = try Tensor(t5.map(Int64.init), shape: [1, t5.count]).to(device)
        guard let encoders = pipeline.textEncoders else { throw PipelineError.badInput("FLUX was loaded without text encoders") }
        var embeddings = try encoders.encode(clipInputIds: clipIds, t5InputIds: t5Ids)
        let pooledWidth = pipeline.transformer.config.pooledProjectionDim
        if truncatePooledEmbedding && embeddings.pooledPromptEmbeds.size(-1) > pooledWidth {
            embeddings = FluxPromptEmbeddings(promptEmbeds: embeddings.promptEmbeds,
                                              pooledPromptEmbeds: try embeddings.pooledPromptEmbeds.narrow(-1, start: 0, length: pooledWidth))
        }
        let generator = try Generator(seed: seed, device: device)
        let out = try pipeline(embeddings: embeddings, options: FluxPipeline.Options(height: size, width: size, steps: steps ?? self.steps),
                               generator: generator)
        guard let rgb = try FluxPipeline.rgb8(out.images).first else { throw PipelineError.badInput("FLUX returned no image") }
        return try Image(width: rgb.width, height: rgb.height, channels: 3, pixels: rgb.pixels)
    }
}
