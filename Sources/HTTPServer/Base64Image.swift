import Foundation

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
    /// Base64 signatures of PNG and JPEG files (standard and URL-safe alphabets).
    private static let imageSignatures = ["iVBORw0KGgo", "/9j/", "_9j_"]

    /// Text shorter than this is never taken for an image.
    private static let minimumImageTextLength = 16

    /// Classifies a legacy `prompt`: an image when it is base64 whose bytes are PNG/JPEG, text
    /// otherwise. Throws when the text is clearly meant as an image but is not a usable one.
    public static func classify(_ prompt: String) throws -> PromptContent {
        let trimmed = prompt.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.utf8.count >= 5, trimmed.prefix(5).lowercased() == "data:" {
            let (data, format) = try decode(trimmed)
            return .image(data, format)
        }
        let utf8 = trimmed.utf8
        guard utf8.count >= minimumImageTextLength else { return .text(prompt) }
        let startsLikeImage = imageSignatures.contains(where: trimmed.hasPrefix)
        guard utf8.allSatisfy(isBase64TextByte) else {
            if startsLikeImage {
                throw Base64ImageError.invalidBase64("prompt starts like a base64 PNG/JPEG but is not valid base64")
            }
            return .text(prompt)
        }

        let hasPlus = utf8.contains(UInt8(ascii: "+"))
        let hasSpace = utf8.contains(HTTPSyntax.space)
        var decodedAny = false
        for spacesArePlus in hasSpace && !hasPlus ? [true, false] : [false] {
            if let data = decodeBase64(utf8, spacesArePlus: spacesArePlus) {
                decodedAny = true
                if let format = ImageFormat.sniff(data) { return .image(data, format) }
            }
        }
        if startsLikeImage {
            throw Base64ImageError.invalidBase64("prompt starts like a base64 PNG/JPEG but is not valid base64")
        }
        if decodedAny, !hasSpace, utf8.count >= 64 {
            throw Base64ImageError.notAnImage("prompt is base64 data but not a PNG or JPEG image")
        }
        return .text(prompt)
    }

    /// Decodes text that must be a base64 PNG/JPEG (optionally a `data:` URL).
    public static func decode(_ text: String) throws -> (Data, ImageFormat) {
        var payload = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if payload.utf8.count >= 5, payload.prefix(5).lowercased() == "data:" {
            guard let comma = payload.firstIndex(of: ",") else {
                throw Base64ImageError.invalidBase64("data URL has no ',' before its payload")
            }
            let metadata = payload[payload.index(payload.startIndex, offsetBy: 5)..<comma].lowercased()
            guard metadata.split(separator: ";").contains("base64") else {
                throw Base64ImageError.invalidBase64("data URL is not base64-encoded (missing ';base64')")
            }
            payload = payload[payload.index(after: comma)...]
        }
        let utf8 = payload.utf8
        let spacesArePlus = !utf8.contains(UInt8(ascii: "+"))
        guard let data = decodeBase64(utf8, spacesArePlus: spacesArePlus) else {
            throw Base64ImageError.invalidBase64("image is not valid base64")
        }
        guard let format = ImageFormat.sniff(data) else {
            throw Base64ImageError.notAnImage("base64 data is not a PNG or JPEG image")
        }
        return (data, format)
    }

    /// Tolerant base64 decoder (see the type comment). Nil when the text is not base64.
    public static func decodeBase64<Text: Collection>(_ text: Text, spacesArePlus: Bool = false) -> Data?
    where Text.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(text.count / 4 * 3 + 3)
        var accumulator: UInt32 = 0
        var sextets = 0
        var padding = 0
        for byte in text {
            var value = decodeTable[Int(byte)]
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
                out.append(UInt8(truncatingIfNeeded: accumulator >> 16))
                out.append(UInt8(truncatingIfNeeded: accumulator >> 8))
                out.append(UInt8(truncatingIfNeeded: accumulator))
                accumulator = 0
                sextets = 0
            }
        }
        switch sextets {
        case 0: guard padding == 0 else { return nil }
        case 2:
            guard padding == 0 || padding == 2 else { return nil }
            out.append(UInt8(truncatingIfNeeded: accumulator >> 4))
        case 3:
            guard padding <= 1 else { return nil }
            out.append(UInt8(truncatingIfNeeded: accumulator >> 10))
            out.append(UInt8(truncatingIfNeeded: accumulator >> 2))
        default: return nil
        }
        return out.isEmpty ? nil : Data(out)
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

    private static func isBase64TextByte(_ byte: UInt8) -> Bool { decodeTable[Int(byte)] != invalid }
}
