import Foundation
import TorchShim

/// Produces the alpha matte of an RGB image (rembg's role in the reference). None is wired in yet.
public protocol BackgroundRemover {
    /// One byte per pixel (0 = background ... 255 = foreground) for an RGB8 image (3 bytes per pixel, row-major).
    func alphaMask(rgb: [UInt8], width: Int, height: Int) throws -> [UInt8]
}

/// TRELLIS image preprocessing (`TrellisImageTo3DPipeline.preprocess_image` + `encode_image`), reproduced on plain
/// 8-bit buffers with PIL's arithmetic:
///
/// 1. Use the alpha channel if the RGBA image has any alpha < 255; otherwise remove the background (long side first
///    reduced to <= 1024 with Lanczos; the matte composited like rembg's naive cutout).
/// 2. bbox of alpha > 0.8·255; square box of half-side int(1.2·max(bbox w, bbox h)) // 2 around the bbox centre,
///    rounded half-to-even like PIL's `crop`; outside the image is transparent.
/// 3. Resize to 518x518 with PIL's Lanczos (on premultiplied RGBa, as PIL does for RGBA), unless already 518.
/// 4. RGB·alpha in float32, truncated to uint8.
/// 5. /255 and ImageNet normalisation -> [1, 3, 518, 518] fp32.
public enum TrellisPreprocess {
    public static let outputSize = 518
    public static let backgroundRemovalMissing =
        "an RGBA image or a mask is required until background removal lands"

    public enum PreprocessError: Error, CustomStringConvertible, Equatable {
        case badBuffer(String)
        case needsAlpha(String)
        case noForeground(String)

        public var description: String {
            switch self {
            case .badBuffer(let why): return "bad image buffer: \(why)"
            case .needsAlpha(let why): return why
            case .noForeground(let why): return "no foreground: \(why)"
            }
        }
    }

    /// An 8-bit interleaved image (row-major, `channels` bytes per pixel).
    public struct Pixels: Equatable {
        public var bytes: [UInt8]
        public var width: Int
        public var height: Int
        public var channels: Int

        public init(bytes: [UInt8], width: Int, height: Int, channels: Int) throws {
            guard width > 0, height > 0 else { throw PreprocessError.badBuffer("size \(width)x\(height)") }
            guard (1...4).contains(channels) else { throw PreprocessError.badBuffer("\(channels) channels") }
            guard bytes.count == width * height * channels else {
                throw PreprocessError.badBuffer("\(bytes.count) bytes for \(width)x\(height)x\(channels)")
            }
            self.bytes = bytes
            self.width = width
            self.height = height
            self.channels = channels
        }
    }

    // MARK: pipeline

    /// The image TRELLIS feeds DINOv2: RGB8 `size` x `size`, premultiplied by alpha (steps 1-4).
    /// `image` is RGBA (4 channels) or RGB (3 channels, which needs `remover`).
    public static func preprocessImage(_ image: Pixels, remover: BackgroundRemover? = nil,
                                       size: Int = outputSize) throws -> Pixels {
        let rgba = try foregroundRGBA(image, remover: remover)
        let (x0, y0, x1, y1) = try cropBox(alpha: rgba)
        var square = crop(rgba, x0: x0, y0: y0, x1: x1, y1: y1)
        if square.width != size || square.height != size {
            square = try Lanczos.resizeRGBA(square, width: size, height: size)
        }
        return try premultipliedRGB(square)
    }

    /// RGB8 [H, W, 3] -> [1, 3, H, W] fp32: /255 then (x - mean) / std per channel, in float32 as torch does.
    public static func pixelValues(_ rgb: Pixels) throws -> Tensor {
        guard rgb.channels == 3 else { throw PreprocessError.badBuffer("pixelValues needs RGB, got \(rgb.channels) channels") }
        let plane = rgb.width * rgb.height
        var out = [Float](repeating: 0, count: 3 * plane)
        rgb.bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for c in 0..<3 {
                    let mean = DINOv2.imagenetMean[c], std = DINOv2.imagenetStd[c]
                    for i in 0..<plane { dst[c * plane + i] = (Float(src[i * 3 + c]) / 255 - mean) / std }
                }
            }
        }
        return try Tensor(out, shape: [1, 3, rgb.height, rgb.width])
    }

    /// Steps 1-5: the DINOv2 input tensor for an RGBA (or RGB + remover) image.
    public static func conditioningInput(_ image: Pixels, remover: BackgroundRemover? = nil,
                                         device: Device = .cpu) throws -> Tensor {
        try pixelValues(preprocessImage(image, remover: remover)).to(device)
    }

    // MARK: steps

    /// Step 1: an RGBA image whose alpha marks the object.
    static func foregroundRGBA(_ image: Pixels, remover: BackgroundRemover?) throws -> Pixels {
        if image.channels == 4 {
            var hasAlpha = false
            for i in stride(from: 3, to: image.bytes.count, by: 4) where image.bytes[i] != 255 {
                hasAlpha = true
                break
            }
            if hasAlpha { return image }
        } else if image.channels != 3 {
            throw PreprocessError.badBuffer("expected an RGB or RGBA image, got \(image.channels) channels")
        }
        guard let remover else { throw PreprocessError.needsAlpha(backgroundRemovalMissing) }
        var rgb = image.channels == 3 ? image : try dropAlpha(image)
        let longSide = max(rgb.width, rgb.height)
        let scale = min(1, 1024 / Double(longSide))
        if scale < 1 {
            rgb = try Lanczos.resize(rgb, width: Int(Double(rgb.width) * scale), height: Int(Double(rgb.height) * scale))
        }
        let mask = try remover.alphaMask(rgb: rgb.bytes, width: rgb.width, height: rgb.height)
        guard mask.count == rgb.width * rgb.height else {
            throw PreprocessError.badBuffer("background mask has \(mask.count) bytes for \(rgb.width)x\(rgb.height)")
        }
        return try naiveCutout(rgb, mask: mask)
    }

    static func dropAlpha(_ rgba: Pixels) throws -> Pixels {
        var out = [UInt8](repeating: 0, count: rgba.width * rgba.height * 3)
        for i in 0..<(rgba.width * rgba.height) {
            out[i * 3] = rgba.bytes[i * 4]
            out[i * 3 + 1] = rgba.bytes[i * 4 + 1]
            out[i * 3 + 2] = rgba.bytes[i * 4 + 2]
        }
        return try Pixels(bytes: out, width: rgba.width, height: rgba.height, channels: 3)
    }

    /// rembg's `naive_cutout`: Image.composite(rgba(img), transparent, mask), i.e. every channel blended with the
    /// mask using PIL's rounded /255.
    static func naiveCutout(_ rgb: Pixels, mask: [UInt8]) throws -> Pixels {
        var out = [UInt8](repeating: 0, count: rgb.width * rgb.height * 4)
        for i in 0..<(rgb.width * rgb.height) {
            let m = Int(mask[i])
            for c in 0..<3 { out[i * 4 + c] = div255(Int(rgb.bytes[i * 3 + c]) * m) }
            out[i * 4 + 3] = div255(255 * m)
        }
        return try Pixels(bytes: out, width: rgb.width, height: rgb.height, channels: 4)
    }

    /// PIL's DIV255 / MULDIV255: round(v / 255) for v in 0...255·255.
    @inline(__always) static func div255(_ v: Int) -> UInt8 {
        let t = v + 128
        return UInt8((t + (t >> 8)) >> 8)
    }

    /// Step 2: the crop box (x0, y0, x1, y1), possibly extending past the image.
    static func cropBox(alpha rgba: Pixels) throws -> (Int, Int, Int, Int) {
        var (minX, minY, maxX, maxY) = (Int.max, Int.max, -1, -1)
        let threshold = 0.8 * 255
        for y in 0..<rgba.height {
            for x in 0..<rgba.width where Double(rgba.bytes[(y * rgba.width + x) * 4 + 3]) > threshold {
                minX = min(minX, x)
                maxX = max(maxX, x)
                minY = min(minY, y)
                maxY = max(maxY, y)
            }
        }
        guard maxX >= 0 else { throw PreprocessError.noForeground("no pixel has alpha > 0.8·255") }
        let centerX = Double(minX + maxX) / 2, centerY = Double(minY + maxY) / 2
        let side = Int(Double(max(maxX - minX, maxY - minY)) * 1.2)
        let half = Double(side / 2)
        func pilRound(_ v: Double) -> Int { Int(v.rounded(.toNearestOrEven)) }
        let box = (pilRound(centerX - half), pilRound(centerY - half), pilRound(centerX + half), pilRound(centerY + half))
        guard box.2 > box.0, box.3 > box.1 else {
            throw PreprocessError.noForeground("the object is a single pixel (crop box \(box))")
        }
        return box
    }

    /// PIL `crop`: the box's pixels, zero (transparent) outside the image.
    static func crop(_ image: Pixels, x0: Int, y0: Int, x1: Int, y1: Int) -> Pixels {
        let (w, h, ch) = (x1 - x0, y1 - y0, image.channels)
        var out = [UInt8](repeating: 0, count: w * h * ch)
        let xs = max(x0, 0), xe = min(x1, image.width)
        if xs < xe {
            for y in max(y0, 0)..<max(min(y1, image.height), max(y0, 0)) {
                let src = (y * image.width + xs) * ch
                let dst = ((y - y0) * w + (xs - x0)) * ch
                out.replaceSubrange(dst..<(dst + (xe - xs) * ch), with: image.bytes[src..<(src + (xe - xs) * ch)])
            }
        }
        // Sizes are positive by construction (cropBox checks them).
        return try! Pixels(bytes: out, width: w, height: h, channels: ch)
    }

    /// Step 4: RGB·(A/255) in float32, truncated: `(np.float32(rgba) / 255)[..., :3] * a * 255 -> uint8`.
    static func premultipliedRGB(_ rgba: Pixels) throws -> Pixels {
        let n = rgba.width * rgba.height
        var out = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n {
            let a = Float(rgba.bytes[i * 4 + 3]) / 255
            for c in 0..<3 { out[i * 3 + c] = UInt8((Float(rgba.bytes[i * 4 + c]) / 255 * a) * 255) }
        }
        return try Pixels(bytes: out, width: rgba.width, height: rgba.height, channels: 3)
    }
}

extension TrellisPreprocess {
    /// PIL's Lanczos resampling (`Image.resize(..., LANCZOS)`, Pillow's Resample.c): separable, horizontal pass then
    /// vertical pass, a = 3 window widened by the downscale factor, coefficients normalised then quantised to 22
    /// fractional bits, each pass rounded and clipped to uint8.
    public enum Lanczos {
        static let precisionBits = 22

        static func lanczos(_ x: Double) -> Double {
            func sinc(_ x: Double) -> Double {
                if x == 0 { return 1 }
                let px = x * Double.pi
                return Foundation.sin(px) / px
            }
            return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0
        }

        /// Per output index: first input index, tap count, and the fixed-point taps (`ksize` apart).
        struct Coefficients {
            var start: [Int]
            var count: [Int]
            var taps: [Int32]
            var ksize: Int
        }

        static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
            let scale = Double(inSize) / Double(outSize)
            let filterScale = max(scale, 1)
            let support = 3.0 * filterScale
            let ksize = Int(support.rounded(.up)) * 2 + 1
            var c = Coefficients(start: [], count: [], taps: [Int32](repeating: 0, count: outSize * ksize), ksize: ksize)
            var weights = [Double](repeating: 0, count: ksize)
            let one = Double(1 << precisionBits)
            for xx in 0..<outSize {
                let center = (Double(xx) + 0.5) * scale
                let ss = 1 / filterScale
                let xmin = max(Int(center - support + 0.5), 0)     // Int() truncates like C's (int)
                let xmax = min(Int(center + support + 0.5), inSize) - xmin
                var total = 0.0
                for x in 0..<xmax {
                    let w = lanczos((Double(x + xmin) - center + 0.5) * ss)
                    weights[x] = w
                    total += w
                }
                for x in 0..<xmax {
                    let w = total != 0 ? weights[x] / total : weights[x]
                    c.taps[xx * ksize + x] = Int32(w < 0 ? (-0.5 + w * one) : (0.5 + w * one))
                }
                c.start.append(xmin)
                c.count.append(xmax)
            }
            return c
        }

        @inline(__always) static func clip8(_ v: Int) -> UInt8 {
            let s = v >> precisionBits
            return s < 0 ? 0 : (s > 255 ? 255 : UInt8(s))
        }

        /// Resizes interleaved 8-bit channels independently (PIL's 8-bit path: L, RGB, RGBa, ...).
        public static func resize(_ image: Pixels, width: Int, height: Int) throws -> Pixels {
            guard width > 0, height > 0 else { throw PreprocessError.badBuffer("resize to \(width)x\(height)") }
            if width == image.width && height == image.height { return image }
            let ch = image.channels
            var src = image.bytes
            var (w, h) = (image.width, image.height)
            let rounding = 1 << (precisionBits - 1)
            if width != w {
                let k = coefficients(inSize: w, outSize: width)
                var out = [UInt8](repeating: 0, count: width * h * ch)
                src.withUnsafeBufferPointer { s in
                    out.withUnsafeMutableBufferPointer { d in
                        k.taps.withUnsafeBufferPointer { taps in
                            for y in 0..<h {
                                for xx in 0..<width {
                                    let (x0, n, base) = (k.start[xx], k.count[xx], xx * k.ksize)
                                    for c in 0..<ch {
                                        var acc = rounding
                                        for x in 0..<n { acc += Int(s[(y * w + x0 + x) * ch + c]) * Int(taps[base + x]) }
                                        d[(y * width + xx) * ch + c] = clip8(acc)
                                    }
                                }
                            }
                        }
                    }
                }
                src = out
                w = width
            }
            if height != h {
                let k = coefficients(inSize: h, outSize: height)
                var out = [UInt8](repeating: 0, count: w * height * ch)
                src.withUnsafeBufferPointer { s in
                    out.withUnsafeMutableBufferPointer { d in
                        k.taps.withUnsafeBufferPointer { taps in
                            for yy in 0..<height {
                                let (y0, n, base) = (k.start[yy], k.count[yy], yy * k.ksize)
                                for i in 0..<(w * ch) {
                                    var acc = rounding
                                    for y in 0..<n { acc += Int(s[(y0 + y) * w * ch + i]) * Int(taps[base + y]) }
                                    d[yy * w * ch + i] = clip8(acc)
                                }
                            }
                        }
                    }
                }
                src = out
                h = height
            }
            return try Pixels(bytes: src, width: w, height: h, channels: ch)
        }

        /// RGBA as PIL resizes it: convert to premultiplied RGBa, resize, convert back.
        public static func resizeRGBA(_ image: Pixels, width: Int, height: Int) throws -> Pixels {
            guard image.channels == 4 else { throw PreprocessError.badBuffer("resizeRGBA needs 4 channels") }
            if width == image.width && height == image.height { return image }
            var premultiplied = image
            for i in 0..<(image.width * image.height) {
                let a = Int(image.bytes[i * 4 + 3])
                for c in 0..<3 { premultiplied.bytes[i * 4 + c] = div255(Int(image.bytes[i * 4 + c]) * a) }
            }
            var out = try resize(premultiplied, width: width, height: height)
            for i in 0..<(width * height) {
                let a = Int(out.bytes[i * 4 + 3])
                guard a != 0 && a != 255 else { continue }
                for c in 0..<3 { out.bytes[i * 4 + c] = UInt8(min(255, 255 * Int(out.bytes[i * 4 + c]) / a)) }
            }
            return out
        }
    }
}
