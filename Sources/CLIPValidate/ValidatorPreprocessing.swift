import Foundation
import Imaging
import NN
import TorchShim

/// The validator's image preprocessing (three-gen-subnet `validation/engine`, commit 5fc61f1b), quirks included.
/// Views are HWC uint8 RGB renders stacked as [N, H, W, 3]; every function keeps the views' device.
public enum ValidatorPreprocessing {
    /// OpenAI CLIP constants (alignment_scorer.py:26-27).
    public static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    /// The validator multiplies both by 3 (float32 products), so it computes (x - 3*mean) / (3*std): not the usual
    /// CLIP normalisation, but what its scores are calibrated on.
    public static let clipMeanTimes3: [Float] = clipMean.map { $0 * 3 }
    public static let clipStdTimes3: [Float] = clipStd.map { $0 * 3 }
    /// ImageNet constants of the DINOv2 quality model (quality_model.py).
    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// The text-alignment model's input size (alignment_scorer.py default `img_preproc_res`).
    public static let clipResolution = 224
    /// The quality model's input size.
    public static let dinoResolution = 518
    /// LPIPS input size (similarity_scorer.py).
    public static let lpipsResolution = 256

    /// RGB images of one size -> [N, H, W, 3] uint8 on the CPU (the validator's `torch.stack(images)`).
    public static func stack(_ images: [Image]) throws -> Tensor {
        guard let first = images.first else { throw ValidatorInputError("no views given") }
        var bytes = [UInt8]()
        bytes.reserveCapacity(images.count * first.width * first.height * 3)
        for (i, image) in images.enumerated() {
            guard image.channels == 3 else {
                throw ValidatorInputError("view \(i) has \(image.channels) channels; the validator's renders are RGB")
            }
            guard image.width == first.width, image.height == first.height else {
                throw ValidatorInputError("view \(i) is \(image.width)x\(image.height), view 0 is \(first.width)x\(first.height)")
            }
            bytes.append(contentsOf: image.pixels)
        }
        return try Tensor(bytes, shape: [images.count, first.height, first.width, 3])
    }

    /// CLIP preprocessing (alignment_scorer.py:51-58): u8 / 255 -> NCHW -> (fp16 when `halfPrecision`, as the
    /// validator does) -> bicubic resize to `resolution` x `resolution` (align_corners False, no antialias, no
    /// crop, aspect ignored) -> (x - 3*mean) / (3*std) in the working dtype (torchvision casts the constants to
    /// it). fp32 reproduces the fixtures; fp16 reproduces the validator on the GPU (up to 1.8e-3 from fp32).
    public static func clipPixels(_ views: Tensor, resolution: Int = clipResolution,
                                  halfPrecision: Bool = false) throws -> Tensor {
        try checkViews(views)
        let dtype: DType = halfPrecision ? .float16 : .float32
        let unit = try (views.to(.float32) / 255.0).permute([0, 3, 1, 2]).to(dtype)
        let resized = try F.interpolate(unit, size: [resolution, resolution], mode: .bicubic, alignCorners: false)
        let mean = try Tensor(clipMeanTimes3, shape: [1, 3, 1, 1]).to(views.device, dtype: dtype)
        let std = try Tensor(clipStdTimes3, shape: [1, 3, 1, 1]).to(views.device, dtype: dtype)
        return try (resized - mean) / std
    }

    /// DINOv2 quality-model preprocessing (quality_model.py `_tensor_transform`): u8 -> CHW float / 255 ->
    /// bilinear resize to `resolution` (align_corners False; commit 5fc61f1b without antialias, later commits
    /// with it; both are the identity for the validator's 518 px renders) -> ImageNet normalisation. [N, 3, R, R]
    /// fp32.
    public static func dinoPixels(_ views: Tensor, resolution: Int = dinoResolution,
                                  antialias: Bool = false) throws -> Tensor {
        try checkViews(views)
        let unit = try views.permute([0, 3, 1, 2]).to(.float32) / 255.0
        let resized = (unit.size(2) == resolution && unit.size(3) == resolution && !antialias)
            ? unit
            : try F.interpolate(unit, size: [resolution, resolution], mode: .bilinear, alignCorners: false,
                                antialias: antialias)
        let mean = try Tensor(imagenetMean, shape: [1, 3, 1, 1]).to(views.device)
        let std = try Tensor(imagenetStd, shape: [1, 3, 1, 1]).to(views.device)
        return try (resized - mean) / std
    }

    /// LPIPS input (similarity_scorer.py): u8 / 255 -> NCHW -> bicubic to 256 x 256 -> clip to [0, 1]. fp32.
    public static func lpipsPixels(_ views: Tensor) throws -> Tensor {
        try checkViews(views)
        let unit = try views.permute([0, 3, 1, 2]).to(.float32) / 255.0
        return try F.interpolate(unit, size: [lpipsResolution, lpipsResolution], mode: .bicubic, alignCorners: false)
            .clamp(min: 0, max: 1)
    }

    /// SSIM input: u8 / 255 -> NCHW fp32, full size.
    public static func ssimPixels(_ views: Tensor) throws -> Tensor {
        try checkViews(views)
        return try views.permute([0, 3, 1, 2]).to(.float32) / 255.0
    }

    static func checkViews(_ views: Tensor) throws {
        guard views.ndim == 4, views.size(3) == 3, views.size(0) > 0, views.size(1) > 0, views.size(2) > 0 else {
            throw ValidatorInputError("views must be [N, H, W, 3] uint8 RGB, got \(views.shape)")
        }
        guard views.dtype == .uint8 else { throw ValidatorInputError("views must be uint8, got \(views.dtype)") }
    }
}

/// Bad input to a validator scorer (wrong layout, size, count).
public struct ValidatorInputError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
