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
        fields = []
        var pairStart = body.startIndex
        while pairStart <= body.endIndex {
            let pairEnd = body[pairStart...].firstIndex(of: UInt8(ascii: "&")) ?? body.endIndex
            let pair = body[pairStart..<pairEnd]
            if !pair.isEmpty {
                let equals = pair.firstIndex(of: UInt8(ascii: "="))
                let rawName = pair[pair.startIndex..<(equals ?? pair.endIndex)]
                let rawValue = equals.map { pair[($0 + 1)...] } ?? pair[pair.endIndex...]
                let name = try Self.decodeComponent(rawName, what: "form field name")
                let value = try Self.decodeComponent(rawValue, what: "form field '\(name)'")
                fields.append((name: name, value: value))
            }
            pairStart = pairEnd + 1
        }
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

    static func decodeComponent(_ raw: Data, what: String) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var index = raw.startIndex
        while index < raw.endIndex {
            let byte = raw[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(HTTPSyntax.space)
            } else if byte == UInt8(ascii: "%") {
                guard index + 2 < raw.endIndex,
                      let high = hexDigit(raw[index + 1]), let low = hexDigit(raw[index + 2]) else {
                    throw HTTPError(.badRequest, "malformed percent-encoding in \(what)")
                }
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw HTTPError(.badRequest, "\(what) is not valid UTF-8")
        }
        return text
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
