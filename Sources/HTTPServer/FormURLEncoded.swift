import Foundation

/// `application/x-www-form-urlencoded` fields, in order. `+` decodes to a space and `%XX` to a
/// byte; decoded bytes must be UTF-8.
public struct FormURLEncoded: Sendable {
    public private(set) var fields: [(name: String, value: String)]

    public init(fields: [(String, String)]) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    /// Throws a 400 `HTTPError` naming the field with bad percent-encoding or bad UTF-8.
    public init(parsing body: Data) throws {
        var fields: [(name: String, value: String)] = []
        try body.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var pairStart = 0
            while pairStart < bytes.count {
                let pairEnd = Self.index(of: UInt8(ascii: "&"), in: bytes, from: pairStart) ?? bytes.count
                if pairEnd > pairStart {
                    let equals = Self.index(of: UInt8(ascii: "="), in: bytes, from: pairStart, to: pairEnd)
                    let nameEnd = equals ?? pairEnd
                    let name = try Self.decodeComponent(UnsafeBufferPointer(rebasing: bytes[pairStart..<nameEnd]),
                                                        what: "form field name")
                    let valueStart = equals.map { $0 + 1 } ?? pairEnd
                    let value = try Self.decodeComponent(UnsafeBufferPointer(rebasing: bytes[valueStart..<pairEnd]),
                                                         what: "form field '\(name)'")
                    fields.append((name: name, value: value))
                }
                pairStart = pairEnd + 1
            }
        }
        self.fields = fields
    }

    public init(parsing text: String) throws {
        try self.init(parsing: Data(text.utf8))
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? { fields.first { $0.name == name }?.value }

    public func values(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }

    /// Encodes fields for a request body: unreserved bytes as-is, space as `+`, the rest `%XX`.
    public static func encode(_ fields: [(String, String)]) -> String {
        fields.map { "\(encodeComponent($0.0))=\(encodeComponent($0.1))" }.joined(separator: "&")
    }

    public static func encodeComponent(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "*"):
                out.append(byte)
            case UInt8(ascii: " "):
                out.append(UInt8(ascii: "+"))
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeComponent(_ raw: UnsafeBufferPointer<UInt8>, what: String) throws -> String {
        let needsDecoding = index(of: UInt8(ascii: "%"), in: raw, from: 0) != nil
            || index(of: UInt8(ascii: "+"), in: raw, from: 0) != nil
        let decoded: String?
        if needsDecoding {
            let bytes = try [UInt8](unsafeUninitializedCapacity: raw.count) { output, count in
                var index = 0
                while index < raw.count {
                    let byte = raw[index]
                    if byte == UInt8(ascii: "+") {
                        output[count] = HTTPSyntax.space
                    } else if byte == UInt8(ascii: "%") {
                        guard index + 2 < raw.count,
                              let high = hexDigit(raw[index + 1]), let low = hexDigit(raw[index + 2]) else {
                            throw HTTPError(.badRequest, "malformed percent-encoding in \(what)")
                        }
                        output[count] = high << 4 | low
                        index += 2
                    } else {
                        output[count] = byte
                    }
                    count += 1
                    index += 1
                }
            }
            decoded = String(validating: bytes, as: UTF8.self)
        } else {
            decoded = String(validating: raw, as: UTF8.self)
        }
        guard let decoded else { throw HTTPError(.badRequest, "\(what) is not valid UTF-8") }
        return decoded
    }

    /// memchr over `bytes[from..<to]`.
    private static func index(of byte: UInt8, in bytes: UnsafeBufferPointer<UInt8>, from: Int, to: Int? = nil) -> Int? {
        let end = to ?? bytes.count
        guard from < end, let base = bytes.baseAddress,
              let hit = memchr(base + from, Int32(byte), end - from) else { return nil }
        return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}
