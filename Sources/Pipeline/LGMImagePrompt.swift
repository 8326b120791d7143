import Foundation
import Imaging
import Models
import TorchShim

/// transformers' `CLIPImageProcessor` (the PIL path): RGB, resize so the shortest edge is `size` (Pillow resampling),
/// centre crop, rescale, normalise. Decoded from `preprocessor_config.json` (`feature_extractor/` of a diffusers folder).
public struct CLIPImageProcessor: Decodable, Sendable, Equatable {
    public var doResize: Bool
    public var shortestEdge: Int
    /// PIL resampling code: 1 lanczos, 2 bilinear, 3 bicubic, 4 box.
    public var resample: Int
    public var doCenterCrop: Bool
    public var cropHeight: Int
    public var cropWidth: Int
    public var doRescale: Bool
    public var rescaleFactor: Double
    public var doNormalize: Bool
    public var imageMean: [Double]
    public var imageStd: [Double]

    enum CodingKeys: String, CodingKey {
        case doResize = "do_resize", size, resample, doCenterCrop = "do_center_crop", cropSize = "crop_size"
        case doRescale = "do_rescale", rescaleFactor = "rescale_factor", doNormalize = "do_normalize"
        case imageMean = "image_mean", imageStd = "image_std"
    }

    enum SizeKeys: String, CodingKey { case shortestEdge = "shortest_edge", height, width }

    /// OpenAI CLIP's processor at `side` px (ImageDream's image encoder: 224).
    public init(side: Int = 224) {
        doResize = true
        shortestEdge = side
        resample = 3
        doCenterCrop = true
        cropHeight = side
        cropWidth = side
        doRescale = true
        rescaleFactor = 1.0 / 255
        doNormalize = true
        imageMean = [0.48145466, 0.4578275, 0.40821073]
        imageStd = [0.26862954, 0.26130258, 0.27577711]
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPImageProcessor()
        doResize = try c.decodeIfPresent(Bool.self, forKey: .doResize) ?? true
        // `size` / `crop_size`: an int (old configs) or {"shortest_edge"} / {"height", "width"}.
        if let side = try? c.decode(Int.self, forKey: .size) {
            shortestEdge = side
        } else if c.contains(.size) {
            let s = try c.nestedContainer(keyedBy: SizeKeys.self, forKey: .size)
            guard let side = try s.decodeIfPresent(Int.self, forKey: .shortestEdge) else {
                throw PipelineError.badInput("CLIP image processor: only size.shortest_edge resizing is implemented")
            }
            shortestEdge = side
        } else {
            shortestEdge = d.shortestEdge
        }
        resample = try c.decodeIfPresent(Int.self, forKey: .resample) ?? 3
        doCenterCrop = try c.decodeIfPresent(Bool.self, forKey: .doCenterCrop) ?? true
        if let side = try? c.decode(Int.self, forKey: .cropSize) {
            (cropHeight, cropWidth) = (side, side)
        } else if c.contains(.cropSize) {
            let s = try c.nestedContainer(keyedBy: SizeKeys.self, forKey: .cropSize)
            cropHeight = try s.decode(Int.self, forKey: .height)
            cropWidth = try s.decode(Int.self, forKey: .width)
        } else {
            (cropHeight, cropWidth) = (d.cropHeight, d.cropWidth)
        }
        doRescale = try c.decodeIfPresent(Bool.self, forKey: .doRescale) ?? true
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? d.rescaleFactor
        doNormalize = try c.decodeIfPresent(Bool.self, forKey: .doNormalize) ?? true
        imageMean = try c.decodeIfPresent([Double].self, forKey: .imageMean) ?? d.imageMean
        imageStd = try c.decodeIfPresent([Double].self, forKey: .imageStd) ?? d.imageStd
        guard imageMean.count == 3, imageStd.count == 3, shortestEdge > 0, cropWidth > 0, cropHeight > 0 else {
            throw PipelineError.badInput("CLIP image processor needs 3 means/stds and positive sizes")
        }
    }

    var filter: ResizeFilter {
        get throws {
            switch resample {
            case 1: return .lanczos
            case 2: return .bilinear
            case 3: return .bicubic
            case 4: return .box
            default: throw PipelineError.badInput("CLIP image processor resample \(resample) is not implemented (1-4)")
            }
        }
    }

    /// `pixel_values` [1, 3, crop_h, crop_w] float32 of an 8-bit image (converted to RGB first).
    public func pixelValues(_ image: Image) throws -> Tensor {
        var rgb = image.toRGB()
        if doResize {
            // transformers' get_resize_output_image_size(default_to_square=False): the short side becomes `size`,
            // the long side int(size * long / short).
            let (w, h) = (rgb.width, rgb.height)
            let (short, long) = w <= h ? (w, h) : (h, w)
            let newLong = Int(Double(shortestEdge) * Double(long) / Double(short))
            let (outW, outH) = w <= h ? (shortestEdge, newLong) : (newLong, shortestEdge)
            rgb = try rgb.resized(width: outW, height: outH, filter: filter)
        }
        if doCenterCrop {
            rgb = try rgb.cropped(x: (rgb.width - cropWidth) / 2, y: (rgb.height - cropHeight) / 2, width: cropWidth,
                                  height: cropHeight)
        }
        var x = try Tensor(rgb.pixels, shape: [1, rgb.height, rgb.width, 3]).permute([0, 3, 1, 2]).to(.float64)
        // transformers rescales in float64 and casts to float32, then normalises in float32.
        if doRescale { x = try x * rescaleFactor }
        x = try x.to(.float32)
        if doNormalize {
            let mean = try Tensor(imageMean.map(Float.init), shape: [1, 3, 1, 1])
            let std = try Tensor(imageStd.map(Float.init), shape: [1, 3, 1, 1])
            x = try (x - mean) / std
        }
        return try x.contiguous()
    }
}

/// The input image preparation of LGM's `infer.py` for ImageDream: recentre the object (alpha bounding box scaled to
/// 80% of a max(W, H) square canvas), composite on white in float, and build both image-prompt tensors.
public enum LGMImagePreparation {
    /// kiui `recenter(image, alpha > 0, border_ratio)` on an RGBA image: the object's alpha box (end-exclusive, as the
    /// reference slices it) is resized so its longer side is int(size * (1 - border_ratio)) and centred on a transparent
    /// size x size canvas. The resize uses Pillow's box filter when shrinking and bilinear when enlarging (the reference
    /// uses OpenCV's INTER_AREA), so edge pixels may differ slightly from the reference.
    public static func recenter(_ image: Image, borderRatio: Double = 0.2) throws -> Image {
        let rgba = image.toRGBA()
        let (w, h) = (rgba.width, rgba.height)
        var (top, bottom, left, right) = (h, -1, w, -1)
        rgba.pixels.withUnsafeBufferPointer { p in
            for y in 0..<h {
                for x in 0..<w where p[(y * w + x) * 4 + 3] > 0 {
                    top = min(top, y); bottom = max(bottom, y); left = min(left, x); right = max(right, x)
                }
            }
        }
        let (boxH, boxW) = (bottom - top, right - left)
        guard boxH > 0, boxW > 0 else {
            throw PipelineError.badInput("the image has no visible object (its alpha is empty or a single line); "
                                         + "send an RGBA image with the object cut out")
        }
        let size = max(w, h)
        let desired = Int(Double(size) * (1 - borderRatio))
        let scale = Double(desired) / Double(max(boxH, boxW))
        let (h2, w2) = (max(Int(Double(boxH) * scale), 1), max(Int(Double(boxW) * scale), 1))
        let object = try rgba.cropped(x: left, y: top, width: boxW, height: boxH)
        let resized = try object.resized(width: w2, height: h2, filter: w2 < boxW ? .box : .bilinear)
        var canvas = [UInt8](repeating: 0, count: size * size * 4)
        let (y0, x0) = ((size - h2) / 2, (size - w2) / 2)
        resized.pixels.withUnsafeBufferPointer { src in
            canvas.withUnsafeMutableBufferPointer { dst in
                for row in 0..<h2 {
                    let from = row * w2 * 4, to = ((y0 + row) * size + x0) * 4
                    (dst.baseAddress! + to).update(from: src.baseAddress! + from, count: w2 * 4)
                }
            }
        }
        return try Image(width: size, height: size, channels: 4, pixels: canvas)
    }

    /// RGBA (or RGB) 8-bit -> [H, W, 3] float32 in [0, 1]: x / 255, then rgb * a + (1 - a) (white background).
    public static func whiteComposite(_ image: Image) throws -> Tensor {
        let rgba = image.toRGBA()
        let x = try Tensor(rgba.pixels, shape: [rgba.height, rgba.width, 4]).to(.float32) / 255.0
        let alpha = try x.narrow(2, start: 3, length: 1)
        return try x.narrow(2, start: 0, length: 3) * alpha + (1 - alpha)
    }

    /// The image prompt for an [H, W, 3] float image in [0, 1]: the CLIP pixel values of `(image * 255).astype(uint8)`
    /// (truncation) and the image as [1, 3, H, W].
    public static func imagePrompt(_ image: Tensor, processor: CLIPImageProcessor, device: Device) throws -> MVDreamImagePrompt {
        guard image.ndim == 3, image.size(2) == 3 else {
            throw PipelineError.badInput("the ImageDream image must be [H, W, 3] float in [0, 1], got \(image.shape)")
        }
        let (h, w) = (image.size(0), image.size(1))
        let bytes = try (image.to(.cpu, dtype: .float32) * 255.0).to(.uint8).toArray(UInt8.self)
        let pixelValues = try processor.pixelValues(Image(width: w, height: h, channels: 3, pixels: bytes))
        return MVDreamImagePrompt(pixelValues: try pixelValues.to(device),
                                  image: try image.permute([2, 0, 1]).unsqueeze(0).contiguous().to(device))
    }
}
