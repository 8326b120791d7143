import CImageCodecs
import Foundation

/// Encodings recognised by their leading bytes.
public enum ImageFormat: String, Sendable, Equatable {
    case png = "PNG", jpeg = "JPEG"
    case gif = "GIF", webp = "WebP", bmp = "BMP", tiff = "TIFF", heif = "HEIF/AVIF", qoi = "QOI"

    /// The format named by the data's magic bytes, or nil when none matches.
    public static func sniff(_ data: Data) -> ImageFormat? {
        let head = [UInt8](data.prefix(16))
        func starts(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            head.count >= offset + magic.count && Array(head[offset ..< offset + magic.count]) == magic
        }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return .gif }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .webp }
        if starts(Array("BM".utf8)) { return .bmp }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if starts(Array("ftyp".utf8), at: 4) { return .heif }
        if starts(Array("qoif".utf8)) { return .qoi }
        return nil
    }
}

/// Decodes PNG and JPEG data into 8-bit images (see `ic_png_decode` / `ic_jpeg_decode` for the colour rules).
public enum ImageDecoder {
    /// Default pixel limit: 8192 x 8192.
    public static let defaultMaxPixels = 8192 * 8192

    public static func decode(_ data: Data, maxPixels: Int = defaultMaxPixels) throws -> Image {
        guard maxPixels > 0 else { throw ImagingError.invalidArgument("maxPixels must be positive") }
        guard let format = ImageFormat.sniff(data) else {
            let head = data.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw ImagingError.unsupportedFormat(data.isEmpty ? "empty data" : "unknown (first bytes \(head))")
        }
        switch format {
        case .png: return try decode(data, format: format, maxPixels: maxPixels, with: ic_png_decode)
        case .jpeg: return try decode(data, format: format, maxPixels: maxPixels, with: ic_jpeg_decode)
        default: throw ImagingError.unsupportedFormat(format.rawValue)
        }
    }

    /// Decodes an image file; every error names the file.
    public static func decode(contentsOf url: URL, maxPixels: Int = defaultMaxPixels) throws -> Image {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ImagingError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        do { return try decode(data, maxPixels: maxPixels) } catch let error as ImagingError {
            throw ImagingError.inFile(path: url.path, error)
        }
    }

    private typealias CDecoder = (UnsafePointer<UInt8>?, Int, UInt64, UnsafeMutablePointer<ic_image>?,
                                  UnsafeMutablePointer<CChar>?, Int) -> Int32

    private static func decode(_ data: Data, format: ImageFormat, maxPixels: Int, with decoder: CDecoder) throws -> Image {
        var result = ic_image()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { bytes in
            decoder(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, UInt64(maxPixels), &result,
                    &message, message.count)
        }
        defer { ic_free(result.pixels) }
        guard status == Int32(IC_OK) else {
            throw CodecStatus.error(status, format: format.rawValue, message: message)
        }
        let count = Int(result.width) * Int(result.height) * Int(result.channels)
        let pixels = [UInt8](UnsafeBufferPointer(start: result.pixels, count: count))
        return Image(unchecked: Int(result.width), Int(result.height), Int(result.channels), pixels)
    }
}

/// Maps a C codec status and message to an `ImagingError`.
enum CodecStatus {
    static func error(_ status: Int32, format: String, message: [CChar]) -> ImagingError {
        let text = String(cString: message)
        switch status {
        case Int32(IC_ERR_TOO_LARGE): return .tooLarge(format: format, message: text)
        case Int32(IC_ERR_UNSUPPORTED): return .unsupportedContent(format: format, message: text)
        case Int32(IC_ERR_NO_MEMORY): return .outOfMemory(text)
        case Int32(IC_ERR_ARGUMENT): return .invalidArgument(text)
        default: return .corrupt(format: format, message: text.isEmpty ? "status \(status)" : text)
        }
    }
}

/// Encodes images as PNG (8-bit gray, RGB or RGBA).
public enum PNGEncoder {
    /// `compressionLevel` is zlib's 0 (store) ... 9 (smallest); 6 is zlib's default balance.
    public static func encode(_ image: Image, compressionLevel: Int = 6) throws -> Data {
        guard (0...9).contains(compressionLevel) else {
            throw ImagingError.invalidArgument("PNG compression level \(compressionLevel) outside 0...9")
        }
        guard image.width <= Int(UInt32.max), image.height <= Int(UInt32.max) else {
            throw ImagingError.invalidArgument("image \(image.width)x\(image.height) too large for PNG")
        }
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            ic_png_encode(pixels.baseAddress, UInt32(image.width), UInt32(image.height), UInt32(image.channels),
                          Int32(compressionLevel), &output, &size, &message, message.count)
        }
        guard status == Int32(IC_OK), let output else {
            throw CodecStatus.error(status, format: "PNG", message: message)
        }
        return Data(bytesNoCopy: output, count: size, deallocator: .custom { pointer, _ in ic_free(pointer) })
    }
}
