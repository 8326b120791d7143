import Foundation

/// One part of a `multipart/form-data` body.
public struct MultipartPart: Sendable {
    public var headers: HTTPHeaders
    /// `name` from `Content-Disposition: form-data; name="..."`.
    public var name: String?
    /// `filename` (or the RFC 5987 `filename*`) from `Content-Disposition`; set for file parts.
    public var filename: String?
    /// The part's own `Content-Type`, if sent.
    public var contentType: String?
    public var body: Data

    /// The body as UTF-8 text, nil when it is not valid UTF-8.
    public var text: String? { String(validating: body, as: UTF8.self) }
}

/// Parses a complete `multipart/form-data` body (RFC 7578 / RFC 2046). Part bodies are binary-safe:
/// a part ends only at CRLF `--boundary` followed by `--` or by optional whitespace and CRLF, so
/// boundary-like bytes inside a part do not end it.
public enum MultipartParser {
    public static let maxParts = 128
    public static let maxPartHeaderBytes = 16 * 1024

    /// The `boundary` parameter of a `multipart/*` Content-Type (quotes removed).
    public static func boundary(from contentType: MediaType) throws -> String {
        guard contentType.type == "multipart" else {
            throw HTTPError(.unsupportedMediaType, "expected a multipart Content-Type, got '\(contentType.essence)'")
        }
        guard let boundary = contentType.parameters["boundary"], !boundary.isEmpty else {
            throw HTTPError(.badRequest, "multipart Content-Type has no boundary parameter")
        }
        guard boundary.utf8.count <= 200 else {
            throw HTTPError(.badRequest, "multipart boundary is longer than 200 bytes")
        }
        return boundary
    }

    public static func parse(_ body: Data, boundary: String) throws -> [MultipartPart] {
        let dashBoundary = Array(("--" + boundary).utf8)
        let delimiter = [HTTPSyntax.cr, HTTPSyntax.lf] + dashBoundary
        return try body.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [MultipartPart] in
            let bytes = raw.bindMemory(to: UInt8.self)
            var position: Int
            if bytes.starts(with: dashBoundary) {
                position = 0
            } else if let first = find(delimiter, in: bytes, from: 0) {
                position = first + 2  // the preamble is ignored
            } else {
                throw HTTPError(.badRequest, "multipart body does not contain the boundary '\(boundary)'")
            }

            var parts: [MultipartPart] = []
            while true {
                let afterBoundary = position + dashBoundary.count
                if afterBoundary + 2 <= bytes.count, bytes[afterBoundary] == 0x2D, bytes[afterBoundary + 1] == 0x2D {
                    return parts  // closing delimiter; the epilogue is ignored
                }
                guard let partStart = lineEnd(afterPadding: afterBoundary, in: bytes) else {
                    throw HTTPError(.badRequest, "malformed multipart boundary line")
                }
                guard parts.count < maxParts else {
                    throw HTTPError(.badRequest, "multipart body has more than \(maxParts) parts")
                }
                let (headers, contentStart) = try partHeaders(in: bytes, from: partStart)
                guard let contentEnd = nextDelimiter(delimiter, in: bytes, from: contentStart) else {
                    throw HTTPError(.badRequest, "multipart body ends before the closing boundary")
                }
                parts.append(makePart(headers: headers, body: Data(bytes[contentStart..<contentEnd])))
                position = contentEnd + 2
            }
        }
    }

    /// The index after `[ SP / HT ]* CRLF` starting at `index`, nil if that is not what is there.
    private static func lineEnd(afterPadding index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = index
        while index < bytes.count, bytes[index] == HTTPSyntax.space || bytes[index] == HTTPSyntax.tab { index += 1 }
        guard index + 1 < bytes.count, bytes[index] == HTTPSyntax.cr, bytes[index + 1] == HTTPSyntax.lf else {
            return nil
        }
        return index + 2
    }

    private static func nextDelimiter(_ delimiter: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        var searchFrom = from
        while let candidate = find(delimiter, in: bytes, from: searchFrom) {
            let after = candidate + delimiter.count
            let closes = after + 2 <= bytes.count && bytes[after] == 0x2D && bytes[after + 1] == 0x2D
            if closes || lineEnd(afterPadding: after, in: bytes) != nil { return candidate }
            searchFrom = candidate + 1
        }
        return nil
    }

    private static func partHeaders(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) throws -> (HTTPHeaders, Int) {
        var headers = HTTPHeaders()
        var lineStart = start
        while true {
            guard let lineBreak = find([HTTPSyntax.cr, HTTPSyntax.lf], in: bytes, from: lineStart),
                  lineBreak - start <= maxPartHeaderBytes else {
                throw HTTPError(.badRequest, "malformed or oversized multipart part headers")
            }
            if lineBreak == lineStart { return (headers, lineBreak + 2) }
            let line = bytes[lineStart..<lineBreak]
            guard let colon = line.firstIndex(of: HTTPSyntax.colon), HTTPSyntax.isToken(line[lineStart..<colon]) else {
                throw HTTPError(.badRequest, "malformed multipart part header line")
            }
            let name = String(decoding: line[lineStart..<colon], as: UTF8.self)
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            headers.add(name, value)
            lineStart = lineBreak + 2
        }
    }

    private static func makePart(headers: HTTPHeaders, body: Data) -> MultipartPart {
        var name: String?
        var filename: String?
        if let disposition = headers["Content-Disposition"] {
            let (_, parameters) = HeaderParameters.split(disposition)
            for (key, value) in parameters {
                switch key {
                case "name": name = name ?? value
                case "filename": filename = filename ?? value
                case "filename*": filename = decodeExtendedValue(value) ?? filename
                default: break
                }
            }
        }
        return MultipartPart(headers: headers, name: name, filename: filename,
                             contentType: headers["Content-Type"], body: body)
    }

    /// RFC 5987 `charset'language'percent-encoded` (UTF-8 only).
    private static func decodeExtendedValue(_ value: String) -> String? {
        let pieces = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard pieces.count == 3, pieces[0].lowercased() == "utf-8" else { return nil }
        return String(pieces[2]).removingPercentEncoding
    }

    /// First index of `needle` in `bytes` at or after `from` (memchr on the first byte, then compare).
    static func find(_ needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard let base = bytes.baseAddress, !needle.isEmpty else { return nil }
        var index = from
        let last = bytes.count - needle.count
        while index <= last {
            guard let hit = memchr(base + index, Int32(needle[0]), last - index + 1) else { return nil }
            let offset = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + offset, needle, needle.count) == 0 { return offset }
            index = offset + 1
        }
        return nil
    }
}
