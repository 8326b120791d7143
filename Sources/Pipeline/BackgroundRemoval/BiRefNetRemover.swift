import Foundation
import Imaging
import Models
import NN
import TorchShim

/// How the predicted mask is brought back to the image size (the two official recipes).
public enum BiRefNetMaskResize: Sendable, Equatable {
    /// `inference.py`: bilinear (align_corners=True) on the float mask, then ×255 truncated to uint8.
    /// The fixture README's exact path; the default.
    case bilinearFloat
    /// Hugging Face model card: ×255 truncated to uint8 at model size, then Pillow's BICUBIC resize of the
    /// 8-bit mask (`pred_pil.resize(image.size)`). Pillow 12 and 13 differ by a few levels here.
    case pillowBicubic
}

public struct BiRefNetRemoverOptions: Sendable, Equatable {
    /// Model input size (multiples of 32); the general model runs at 1024 × 1024.
    public var inputWidth: Int
    public var inputHeight: Int
    /// Pillow pass order for the (antialiased bilinear) input resize and the card's bicubic mask resize.
    /// `.horizontalFirst` is Pillow <= 12, which made the fixtures.
    public var resizePassOrder: ResizePassOrder
    public var maskResize: BiRefNetMaskResize
    /// An input whose alpha channel already carries a mask is returned as it is instead of being re-segmented.
    public var keepExistingAlpha: Bool
    /// Images per forward in `removeBackground(batch:)`. Four 1024^2 inputs take ~6 GiB of activations at fp16 on top of
    /// the weights; the 24 GB memory plan uses 1.
    public var maxBatch: Int

    public init(inputWidth: Int = 1024, inputHeight: Int = 1024, resizePassOrder: ResizePassOrder = .horizontalFirst,
                maskResize: BiRefNetMaskResize = .bilinearFloat, keepExistingAlpha: Bool = true, maxBatch: Int = 4) {
        self.maxBatch = max(1, maxBatch)
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.resizePassOrder = resizePassOrder
        self.maskResize = maskResize
        self.keepExistingAlpha = keepExistingAlpha
    }
}

/// Background removal with BiRefNet as the official inference does it: RGB, Pillow bilinear resize to the
/// model size, ToTensor + ImageNet normalisation, sigmoid of the logits, mask resized back, alpha = mask.
public final class BiRefNetRemover {
    public let model: BiRefNet
    public let options: BiRefNetRemoverOptions
    private let mean: Tensor
    private let std: Tensor

    public init(model: BiRefNet, options: BiRefNetRemoverOptions = BiRefNetRemoverOptions()) throws {
        let m = model.sizeMultiple
        guard options.inputWidth > 0, options.inputHeight > 0, options.inputWidth % m == 0, options.inputHeight % m == 0 else {
            throw BiRefNetError.badInput("model input \(options.inputWidth)x\(options.inputHeight) must be positive multiples of \(m)")
        }
        self.model = model
        self.options = options
        mean = try Tensor([Float(0.485), 0.456, 0.406], shape: [1, 3, 1, 1]).to(model.device)
        std = try Tensor([Float(0.229), 0.224, 0.225], shape: [1, 3, 1, 1]).to(model.device)
    }

    /// Loads a Hugging Face BiRefNet folder (model.safetensors + config.json) or a .safetensors file.
    public convenience init(checkpoint: URL, device: Device, dtype: DType,
                            options: BiRefNetRemoverOptions = BiRefNetRemoverOptions()) throws {
        try self.init(model: BiRefNet.load(checkpoint, device: device, dtype: dtype), options: options)
    }

    /// True when the image has an alpha channel that is not uniform (all 255 = opaque and all 0 are not masks,
    /// nor is any other single value).
    public static func hasMeaningfulAlpha(_ image: Image) -> Bool {
        guard image.channels == 4 else { return false }
        return image.pixels.withUnsafeBufferPointer { p in
            let first = p[3]
            return stride(from: 7, to: p.count, by: 4).contains { p[$0] != first }
        }
    }

    /// RGBA: the image's colours with the predicted mask as alpha. An image that already carries a meaningful
    /// alpha is returned unchanged (as RGBA) when `keepExistingAlpha` is set.
    public func removeBackground(_ image: Image) throws -> Image {
        if options.keepExistingAlpha && BiRefNetRemover.hasMeaningfulAlpha(image) { return image.toRGBA() }
        return try composite(image, alpha: alphaMask(for: image))
    }

    /// The images that need a mask go through the network in batches of up to `maxBatch`; each comes back as
    /// `removeBackground` would return it. A batch that runs out of GPU memory is retried one image at a time.
    public func removeBackground(batch images: [Image]) throws -> [Image] {
        let needMask = images.indices.filter { !(options.keepExistingAlpha && BiRefNetRemover.hasMeaningfulAlpha(images[$0])) }
        var out = images.map { $0.toRGBA() }
        for start in stride(from: 0, to: needMask.count, by: options.maxBatch) {
            let chunk = Array(needMask[start..<min(start + options.maxBatch, needMask.count)])
            let predictions: Tensor
            do {
                predictions = try prediction(Tensor.cat(chunk.map { try inputTensor(resizedRGB(images[$0])) }))
            } catch let error as TorchError where error.isOutOfMemory && chunk.count > 1 {
                if case .cuda = model.device { try CUDA.emptyCache() }
                for index in chunk { out[index] = try composite(images[index], alpha: alphaMask(for: images[index])) }
                continue
            }
            for (row, index) in chunk.enumerated() {
                let image = images[index]
                let alpha = try alpha(fromPrediction: predictions.narrow(0, start: row, length: 1), width: image.width,
                                      height: image.height)
                out[index] = try composite(image, alpha: alpha)
            }
        }
        return out
    }

    /// The image's colours with `alpha` (1 channel, same size) as the fourth channel.
    func composite(_ image: Image, alpha: Image) throws -> Image {
        let rgb = image.toRGB()
        let count = image.width * image.height
        let pixels = [UInt8](unsafeUninitializedCapacity: count * 4) { out, initialized in
            rgb.pixels.withUnsafeBufferPointer { src in
                alpha.pixels.withUnsafeBufferPointer { a in
                    for i in 0..<count {
                        out[4 * i] = src[3 * i]
                        out[4 * i + 1] = src[3 * i + 1]
                        out[4 * i + 2] = src[3 * i + 2]
                        out[4 * i + 3] = a[i]
                    }
                }
            }
            initialized = count * 4
        }
        return try Image(width: image.width, height: image.height, channels: 4, pixels: pixels)
    }

    /// The foreground mask (1 channel) at the image's size.
    public func alphaMask(for image: Image) throws -> Image {
        let pred = try prediction(inputTensor(resizedRGB(image)))
        return try alpha(fromPrediction: pred, width: image.width, height: image.height)
    }

    // MARK: stages (public for the fixtures and for callers that batch)

    /// `transforms.Resize((h, w))` on the RGB image: Pillow BILINEAR, antialiased when shrinking.
    public func resizedRGB(_ image: Image) throws -> Image {
        try image.toRGB().resized(width: options.inputWidth, height: options.inputHeight, filter: .bilinear,
                                  passOrder: options.resizePassOrder)
    }

    /// ToTensor + Normalize(ImageNet) of an RGB image: [1, 3, H, W] on the model's device, in its dtype.
    public func inputTensor(_ rgb: Image) throws -> Tensor {
        guard rgb.channels == 3 else { throw BiRefNetError.badInput("inputTensor needs an RGB image, got \(rgb.channels) channels") }
        let hwc = try Tensor(rgb.pixels, shape: [rgb.height, rgb.width, 3]).to(model.device)
        let chw = try hwc.permute([2, 0, 1]).unsqueeze(0).to(.float32) / 255.0
        let normalised = try (chw - mean) / std
        return normalised.dtype == model.dtype ? normalised : try normalised.to(model.dtype)
    }

    /// sigmoid(logits) [1, 1, H, W] in the model's dtype.
    public func prediction(_ input: Tensor) throws -> Tensor { try model.predict(input) }

    /// inference.py's float mask at the image size, before quantisation: [1, 1, height, width] float32.
    public func resizedPrediction(_ pred: Tensor, width: Int, height: Int) throws -> Tensor {
        let p = try pred.to(.float32)
        if p.size(2) == height && p.size(3) == width { return p }
        return try F.interpolate(p, size: [height, width], mode: .bilinear, alignCorners: true)
    }

    /// The 8-bit mask at the image size by `method` (default: the options').
    public func alpha(fromPrediction pred: Tensor, width: Int, height: Int,
                      method: BiRefNetMaskResize? = nil) throws -> Image {
        guard pred.ndim == 4, pred.size(0) == 1, pred.size(1) == 1 else {
            throw BiRefNetError.badInput("prediction \(pred.shape) must be [1, 1, H, W]")
        }
        switch method ?? options.maskResize {
        case .bilinearFloat:
            let mask = try BiRefNetRemover.quantise(resizedPrediction(pred, width: width, height: height))
            return try Image(width: width, height: height, channels: 1, pixels: mask.toArray(UInt8.self))
        case .pillowBicubic:
            let mask = try BiRefNetRemover.quantise(pred.to(.float32))
            let small = try Image(width: pred.size(3), height: pred.size(2), channels: 1, pixels: mask.toArray(UInt8.self))
            return try small.resized(width: width, height: height, filter: .bicubic, passOrder: options.resizePassOrder)
        }
    }

    /// `ToPILImage` of a float mask: `x.mul(255).byte()`, which truncates.
    public static func quantise(_ mask: Tensor) throws -> Tensor { try (mask * 255.0).to(.uint8) }
}

/// The generation pipeline's background-removal stage.
extension BiRefNetRemover: BackgroundRemovalStage {
    public var name: String { "BiRefNet" }
}

/// TRELLIS preprocessing's matte provider (rembg's role): the 8-bit mask of an RGB8 buffer.
extension BiRefNetRemover: BackgroundRemover {
    public func alphaMask(rgb: [UInt8], width: Int, height: Int) throws -> [UInt8] {
        try alphaMask(for: Image(width: width, height: height, channels: 3, pixels: rgb)).pixels
    }
}

