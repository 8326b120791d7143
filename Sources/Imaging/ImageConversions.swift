/// Channel conversions, alpha handling and cropping. Rounding follows Pillow where Pillow has the same operation.
extension Image {
    /// RGB: gray is replicated, alpha is dropped (Pillow's `convert("RGB")`).
    public func toRGB() -> Image {
        switch channels {
        case 3: return self
        case 1: return mapPixels(to: 3) { src, dst in dst[0] = src[0]; dst[1] = src[0]; dst[2] = src[0] }
        default: return mapPixels(to: 3) { src, dst in dst[0] = src[0]; dst[1] = src[1]; dst[2] = src[2] }
        }
    }

    /// RGBA: missing alpha becomes 255.
    public func toRGBA() -> Image {
        switch channels {
        case 4: return self
        case 1: return mapPixels(to: 4) { src, dst in dst[0] = src[0]; dst[1] = src[0]; dst[2] = src[0]; dst[3] = 255 }
        default: return mapPixels(to: 4) { src, dst in dst[0] = src[0]; dst[1] = src[1]; dst[2] = src[2]; dst[3] = 255 }
        }
    }

    /// RGBA with colour multiplied by alpha, round(c * a / 255) (Pillow's "RGBa"). Images without alpha are unchanged.
    public func premultipliedAlpha() -> Image {
        guard channels == 4 else { return self }
        return mapPixels(to: 4) { src, dst in
            let alpha = UInt32(src[3])
            for c in 0..<3 { dst[c] = mulDiv255(UInt32(src[c]), alpha) }
            dst[3] = src[3]
        }
    }

    /// Inverse of `premultipliedAlpha` as Pillow does it: c * 255 / a truncated, clamped; alpha 0 or 255 unchanged.
    public func unpremultipliedAlpha() -> Image {
        guard channels == 4 else { return self }
        return mapPixels(to: 4) { src, dst in
            let alpha = UInt32(src[3])
            for c in 0..<3 {
                dst[c] = alpha == 0 || alpha == 255 ? src[c] : UInt8(min(255, 255 * UInt32(src[c]) / alpha))
            }
            dst[3] = src[3]
        }
    }

    /// RGB image of this one laid over an opaque background: round((c * a + bg * (255 - a)) / 255).
    /// Images without alpha are only converted to RGB.
    public func composited(on background: RGBColor) -> Image {
        guard channels == 4 else { return toRGB() }
        let bg = [UInt32(background.red), UInt32(background.green), UInt32(background.blue)]
        return mapPixels(to: 3) { src, dst in
            let alpha = UInt32(src[3])
            for c in 0..<3 {
                dst[c] = UInt8((UInt32(src[c]) * alpha + bg[c] * (255 - alpha) + 127) / 255)
            }
        }
    }

    /// The `width` x `height` region whose top-left corner is (x, y). Like Pillow's `crop`, the region may
    /// extend past the image: those pixels are zero (transparent black for RGBA).
    public func cropped(x: Int, y: Int, width outWidth: Int, height outHeight: Int) throws -> Image {
        guard outWidth > 0, outHeight > 0 else {
            throw ImagingError.invalidArgument("crop size \(outWidth)x\(outHeight) must be positive")
        }
        let (area, overflow) = outWidth.multipliedReportingOverflow(by: outHeight)
        guard !overflow, area <= Int(Int32.max), abs(x) <= Int(Int32.max), abs(y) <= Int(Int32.max) else {
            throw ImagingError.invalidArgument("crop \(outWidth)x\(outHeight) at (\(x), \(y)) is out of range")
        }
        var out = [UInt8](repeating: 0, count: area * channels)
        let left = max(x, 0), right = min(x + outWidth, width)
        let top = max(y, 0), bottom = min(y + outHeight, height)
        if left < right, top < bottom {
            let rowBytes = (right - left) * channels
            pixels.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for row in top..<bottom {
                        let from = (row * width + left) * channels
                        let to = ((row - y) * outWidth + (left - x)) * channels
                        (dst.baseAddress! + to).update(from: src.baseAddress! + from, count: rowBytes)
                    }
                }
            }
        }
        return Image(unchecked: outWidth, outHeight, channels, out)
    }

    /// Applies `body` to every pixel, producing an image with `outChannels` channels.
    private func mapPixels(to outChannels: Int,
                           _ body: (UnsafePointer<UInt8>, UnsafeMutablePointer<UInt8>) -> Void) -> Image {
        let count = width * height
        let out = [UInt8](unsafeUninitializedCapacity: count * outChannels) { dst, initialized in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<count {
                    body(src.baseAddress! + i * channels, dst.baseAddress! + i * outChannels)
                }
            }
            initialized = count * outChannels
        }
        return Image(unchecked: width, height, outChannels, out)
    }
}

/// round(a * b / 255) for bytes, Pillow's MULDIV255.
@inline(__always)
func mulDiv255(_ a: UInt32, _ b: UInt32) -> UInt8 {
    let t = a * b + 128
    return UInt8(truncatingIfNeeded: ((t >> 8) + t) >> 8)
}
