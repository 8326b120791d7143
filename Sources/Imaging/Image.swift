/// An 8-bit image, rows top to bottom, channels interleaved: 1 = gray, 3 = RGB, 4 = RGBA (straight alpha).
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw ImagingError.invalidArgument("image size \(width)x\(height) must be positive")
        }
        guard [1, 3, 4].contains(channels) else {
            throw ImagingError.invalidArgument("\(channels) channels (expected 1, 3 or 4)")
        }
        let (area, overflow1) = width.multipliedReportingOverflow(by: height)
        let (expected, overflow2) = area.multipliedReportingOverflow(by: channels)
        guard !overflow1, !overflow2, pixels.count == expected else {
            throw ImagingError.invalidArgument("\(pixels.count) bytes for a \(width)x\(height)x\(channels) image")
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image of one colour; `value` has `channels` entries (1, 3 or 4).
    public init(width: Int, height: Int, filledWith value: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw ImagingError.invalidArgument("image size \(width)x\(height) must be positive")
        }
        guard [1, 3, 4].contains(value.count) else {
            throw ImagingError.invalidArgument("\(value.count) channels (expected 1, 3 or 4)")
        }
        let (area, overflow1) = width.multipliedReportingOverflow(by: height)
        let (count, overflow2) = area.multipliedReportingOverflow(by: value.count)
        guard !overflow1, !overflow2, count <= Int(UInt32.max) else {
            throw ImagingError.invalidArgument("image size \(width)x\(height)x\(value.count) is too large")
        }
        var pixels = [UInt8](repeating: 0, count: count)
        if value.contains(where: { $0 != 0 }) {
            for i in stride(from: 0, to: pixels.count, by: value.count) {
                for c in 0..<value.count { pixels[i + c] = value[c] }
            }
        }
        try self.init(width: width, height: height, channels: value.count, pixels: pixels)
    }

    /// Skips validation: for results built inside this module with sizes known to be right.
    init(unchecked width: Int, _ height: Int, _ channels: Int, _ pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// True for RGBA images (the decoder returns 4 channels only when the file carried alpha).
    public var hasAlpha: Bool { channels == 4 }

    /// True when some pixel is not fully opaque (TRELLIS's test for "the input already has a mask").
    public var hasTransparency: Bool {
        guard channels == 4 else { return false }
        return pixels.withUnsafeBufferPointer { p in
            stride(from: 3, to: p.count, by: 4).contains { p[$0] != 255 }
        }
    }

    /// The samples of the pixel at (x, y).
    public func pixel(x: Int, y: Int) throws -> ArraySlice<UInt8> {
        guard x >= 0, x < width, y >= 0, y < height else {
            throw ImagingError.invalidArgument("pixel (\(x), \(y)) outside \(width)x\(height)")
        }
        let start = (y * width + x) * channels
        return pixels[start ..< start + channels]
    }
}

/// An opaque colour for compositing.
public struct RGBColor: Sendable, Equatable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    public static let white = RGBColor(red: 255, green: 255, blue: 255)
    public static let black = RGBColor(red: 0, green: 0, blue: 0)
}

/// Why an image could not be decoded, encoded or transformed.
public enum ImagingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not PNG or JPEG; the associated text names the format when it is recognised (GIF, WebP, ...).
    case unsupportedFormat(String)
    /// Malformed or truncated data, as reported by libpng/libjpeg.
    case corrupt(format: String, message: String)
    /// Declared dimensions exceed the caller's pixel limit (rejected before the pixel buffer is allocated).
    case tooLarge(format: String, message: String)
    /// A valid file using a feature this decoder does not handle.
    case unsupportedContent(format: String, message: String)
    case invalidArgument(String)
    case outOfMemory(String)
    /// A file that could not be read at all.
    case unreadableFile(path: String, reason: String)
    /// Any of the above, about the image file at `path`.
    indirect case inFile(path: String, ImagingError)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason): return "cannot read image file \(path): \(reason)"
        case let .inFile(path, error): return "image file \(path): \(error)"
        case let .unsupportedFormat(name): return "unsupported image format: \(name) (only PNG and JPEG are decoded)"
        case let .corrupt(format, message): return "corrupt \(format) image: \(message)"
        case let .tooLarge(format, message): return "\(format) image too large: \(message)"
        case let .unsupportedContent(format, message): return "unsupported \(format) content: \(message)"
        case let .invalidArgument(message): return "invalid image argument: \(message)"
        case let .outOfMemory(message): return "out of memory: \(message)"
        }
    }
}
