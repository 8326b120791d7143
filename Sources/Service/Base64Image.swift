import Foundation
import HTTPServer

/// Image formats the service does not accept but recognises, so their data gets 422 instead of
/// being read as a text prompt.
enum OtherImageFormat: String {
    case gif, webp, tiff, bmp

    static func sniff(_ bytes: Data) -> OtherImageFormat? {
        if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) { return .gif }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)),
           bytes.dropFirst(8).starts(with: Array("WEBP".utf8)) { return .webp }
        if bytes.starts(with: [0x49, 0x49, 0x2A, 0x00]) || bytes.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return .tiff }
        if bytes.count >= 26, bytes.starts(with: Array("BM".utf8)) { return .bmp }
        return nil
    }
}

/// Image container formats the generation service accepts, recognised by their magic bytes.
public enum ImageFormat: String, Sendable, Equatable {
    case png
    case jpeg

    public var mimeType: String { self == .png ? "image/png" : "image/jpeg" }

    /// PNG (`89 50 4E 47 0D 0A 1A 0A`) or JPEG (`FF D8 FF`) by magic bytes.
    public static func sniff(_ bytes: Data) -> ImageFormat? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }
}

public enum Base64ImageError: Error, Equatable, CustomStringConvertible {
    /// The text claims to be a base64 image (data: URL, PNG/JPEG base64 signature) but does not decode.
    case invalidBase64(String)
    /// The text decodes, but the bytes are not a PNG or JPEG file.
    case notAnImage(String)

    public var description: String {
        switch self {
        case .invalidBase64(let message), .notAnImage(let message): return message
        }
    }
}

/// What a legacy `prompt` field holds.
public enum PromptContent: Equatable, Sendable {
    case text(String)
    case image(Data, ImageFormat)
}

/// Detects and decodes base64-encoded images in prompt fields. Tolerates a `data:` URL prefix,
/// whitespace and line breaks, the URL-safe alphabet (`-_`), missing `=` padding, and spaces
/// standing for `+` (what an un-encoded `curl -d prompt=$(base64 img)` turns `+` into).
public enum Base64Image {
    /// Text shorter than this is never taken for an image. (Base64 signatures of PNG and JPEG
    /// files, standard and URL-safe, are in `imageSignatures`.)
    private static let minimumImageTextLength = 16

    /// Classifies a legacy `prompt`: an image when it is base64 whose bytes are PNG/JPEG, text
    /// otherwise. Throws when the text is clearly meant as an image but is not a usable one.
    public static func classify(_ prompt: String) throws -> PromptContent {
        var text = prompt
        return try text.withUTF8 { all -> PromptContent in
            let bytes = trimASCIIWhitespace(all)
            if hasDataPrefix(bytes) {
                let (data, format) = try decodeImage(bytes)
                return .image(data, format)
            }
            // Base64 that opens like an image file is image data at any length, as on the JSON
            // `image` field and the upload route: it decodes to PNG/JPEG or is rejected.
            if imageSignatures.contains(where: { bytes.starts(with: $0) })
                || otherImageSignatures.contains(where: { bytes.starts(with: $0) }) {
                let (data, format) = try decodeImage(bytes)
                return .image(data, format)
            }
            guard bytes.count >= minimumImageTextLength else { return .text(prompt) }
            var hasPlus = false
            var hasSpace = false
            let allBase64 = decodeTable.withUnsafeBufferPointer { table -> Bool in
                for byte in bytes {
                    if table[Int(byte)] == invalid { return false }
                    if byte == UInt8(ascii: "+") { hasPlus = true }
                    if byte == HTTPSyntax.space { hasSpace = true }
                }
                return true
            }
            guard allBase64 else { return .text(prompt) }
            var decodedAny = false
            for spacesArePlus in hasSpace && !hasPlus ? [true, false] : [false] {
                if let data = decode(bytes, spacesArePlus: spacesArePlus) {
                    decodedAny = true
                    if let format = ImageFormat.sniff(data) { return .image(data, format) }
                    if OtherImageFormat.sniff(data) != nil {
                        throw Base64ImageError.notAnImage("base64 data is not a PNG or JPEG image")
                    }
                }
            }
            if decodedAny, !hasSpace, bytes.count >= 64 {
                throw Base64ImageError.notAnImage("prompt is base64 data but not a PNG or JPEG image")
            }
            return .text(prompt)
        }
    }

    /// Decodes text that must be a base64 PNG/JPEG (optionally a `data:` URL).
    public static func decode(_ text: String) throws -> (Data, ImageFormat) {
        var text = text
        return try text.withUTF8 { try decodeImage(trimASCIIWhitespace($0)) }
    }

    /// Tolerant base64 decoder (see the type comment). Nil when the text is not base64.
    public static func decodeBase64<Text: Collection>(_ text: Text, spacesArePlus: Bool = false) -> Data?
    where Text.Element == UInt8 {
        if let result = text.withContiguousStorageIfAvailable({ decode($0, spacesArePlus: spacesArePlus) }) {
            return result
        }
        return Array(text).withUnsafeBufferPointer { decode($0, spacesArePlus: spacesArePlus) }
    }

    // MARK: - Implementation

    private static let imageSignatures = ["iVBORw0KGgo", "/9j/", "_9j_"].map { Array($0.utf8) }
    /// Base64 openings of image files the service does not take: GIF87a/GIF89a, RIFF (WebP),
    /// TIFF little- and big-endian. Distinctive enough that no text prompt starts with them.
    private static let otherImageSignatures = ["R0lGODdh", "R0lGODlh", "UklGR", "SUkqA", "TU0AK"].map { Array($0.utf8) }
    private static let dataPrefix = Array("data:".utf8)

    private static func hasDataPrefix(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count >= 5 && zip(bytes.prefix(5), dataPrefix).allSatisfy { $0 | 0x20 == $1 }
    }

    private static func trimASCIIWhitespace(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        func isSpace(_ byte: UInt8) -> Bool {
            byte == HTTPSyntax.space || byte == HTTPSyntax.tab || byte == HTTPSyntax.cr || byte == HTTPSyntax.lf
                || byte == 0x0B || byte == 0x0C
        }
        var lower = 0
        var upper = bytes.count
        while lower < upper, isSpace(bytes[lower]) { lower += 1 }
        while upper > lower, isSpace(bytes[upper - 1]) { upper -= 1 }
        return UnsafeBufferPointer(rebasing: bytes[lower..<upper])
    }

    private static func decodeImage(_ bytes: UnsafeBufferPointer<UInt8>) throws -> (Data, ImageFormat) {
        var payload = bytes
        if hasDataPrefix(bytes) {
            guard let comma = bytes.firstIndex(of: UInt8(ascii: ",")) else {
                throw Base64ImageError.invalidBase64("data URL has no ',' before its payload")
            }
            let metadata = String(decoding: bytes[5..<comma], as: UTF8.self).lowercased()
            guard metadata.split(separator: ";").contains("base64") else {
                throw Base64ImageError.invalidBase64("data URL is not base64-encoded (missing ';base64')")
            }
            payload = UnsafeBufferPointer(rebasing: bytes[(comma + 1)...])
        }
        let spacesArePlus = !payload.contains(UInt8(ascii: "+"))
        guard let data = decode(payload, spacesArePlus: spacesArePlus) else {
            throw Base64ImageError.invalidBase64("image is not valid base64")
        }
        guard let format = ImageFormat.sniff(data) else {
            throw Base64ImageError.notAnImage("base64 data is not a PNG or JPEG image")
        }
        return (data, format)
    }

    private static func decode(_ input: UnsafeBufferPointer<UInt8>, spacesArePlus: Bool) -> Data? {
        var out = Data(count: input.count / 4 * 3 + 3)
        let written = out.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) -> Int? in
            let output = raw.bindMemory(to: UInt8.self)
            return decodeTable.withUnsafeBufferPointer { table -> Int? in
                var count = 0
                var accumulator: UInt32 = 0
                var sextets = 0
                var padding = 0
                for byte in input {
                    var value = table[Int(byte)]
                    if byte == HTTPSyntax.space, spacesArePlus { value = 62 }
                    if value == skip { continue }
                    if value == pad {
                        padding += 1
                        continue
                    }
                    guard value < 64, padding == 0 else { return nil }
                    accumulator = accumulator << 6 | UInt32(value)
                    sextets += 1
                    if sextets == 4 {
                        output[count] = UInt8(truncatingIfNeeded: accumulator >> 16)
                        output[count + 1] = UInt8(truncatingIfNeeded: accumulator >> 8)
                        output[count + 2] = UInt8(truncatingIfNeeded: accumulator)
                        count += 3
                        accumulator = 0
                        sextets = 0
                    }
                }
                switch sextets {
                case 0:
                    guard padding == 0 else { return nil }
                case 2:
                    guard padding == 0 || padding == 2 else { return nil }
                    output[count] = UInt8(truncatingIfNeeded: accumulator >> 4)
                    count += 1
                case 3:
                    guard padding <= 1 else { return nil }
                    output[count] = UInt8(truncatingIfNeeded: accumulator >> 10)
                    output[count + 1] = UInt8(truncatingIfNeeded: accumulator >> 2)
                    count += 2
                default:
                    return nil
                }
                return count
            }
        }
        guard let written, written > 0 else { return nil }
        out.count = written
        return out
    }

    private static let skip: UInt8 = 0xFE
    private static let pad: UInt8 = 0xFD
    private static let invalid: UInt8 = 0xFF

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (index, char) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8.enumerated() {
            table[Int(char)] = UInt8(index)
        }
        table[Int(UInt8(ascii: "+"))] = 62
        table[Int(UInt8(ascii: "-"))] = 62
        table[Int(UInt8(ascii: "/"))] = 63
        table[Int(UInt8(ascii: "_"))] = 63
        table[Int(UInt8(ascii: "="))] = pad
        for char in [HTTPSyntax.space, HTTPSyntax.tab, HTTPSyntax.cr, HTTPSyntax.lf] { table[Int(char)] = skip }
        return table
    }()
}
