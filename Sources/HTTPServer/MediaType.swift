import Foundation

/// A parsed `Content-Type` value: `type/subtype; name=value; name="quoted value"`.
/// Type, subtype and parameter names are lowercased; parameter values keep their case.
public struct MediaType: Equatable, Sendable, CustomStringConvertible {
    public var type: String
    public var subtype: String
    public var parameters: [String: String]

    public init(type: String, subtype: String, parameters: [String: String] = [:]) {
        self.type = type.lowercased()
        self.subtype = subtype.lowercased()
        self.parameters = parameters
    }

    /// Returns nil when the value has no `type/subtype`.
    public init?(parsing value: String) {
        let (first, parameters) = HeaderParameters.split(value)
        let parts = first.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              parts.allSatisfy({ $0.utf8.allSatisfy(HTTPSyntax.isTokenChar) }) else { return nil }
        var dict: [String: String] = [:]
        for (name, value) in parameters where dict[name] == nil { dict[name] = value }
        self.init(type: String(parts[0]), subtype: String(parts[1]), parameters: dict)
    }

    /// `type/subtype` without parameters.
    public var essence: String { "\(type)/\(subtype)" }

    public var description: String {
        ([essence] + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
            .joined(separator: "; ")
    }
}

/// Splits header values of the shape `token; name=value; name="quoted \" value"` (Content-Type,
/// Content-Disposition). Parameter names are lowercased; quoted values are unescaped.
enum HeaderParameters {
    static func split(_ value: String) -> (first: String, parameters: [(String, String)]) {
        let chars = Array(value.unicodeScalars)
        var index = 0
        var first = ""
        while index < chars.count, chars[index] != ";" {
            first.unicodeScalars.append(chars[index])
            index += 1
        }
        var parameters: [(String, String)] = []
        while index < chars.count {
            index += 1  // skip ';'
            while index < chars.count, chars[index] == " " || chars[index] == "\t" { index += 1 }
            var name = ""
            while index < chars.count, chars[index] != "=", chars[index] != ";" {
                name.unicodeScalars.append(chars[index])
                index += 1
            }
            name = name.trimmingCharacters(in: .whitespaces).lowercased()
            var parameterValue = ""
            if index < chars.count, chars[index] == "=" {
                index += 1
                while index < chars.count, chars[index] == " " || chars[index] == "\t" { index += 1 }
                if index < chars.count, chars[index] == "\"" {
                    index += 1
                    while index < chars.count, chars[index] != "\"" {
                        if chars[index] == "\\", index + 1 < chars.count { index += 1 }
                        parameterValue.unicodeScalars.append(chars[index])
                        index += 1
                    }
                    index += 1  // closing quote (or end)
                    while index < chars.count, chars[index] != ";" { index += 1 }
                } else {
                    while index < chars.count, chars[index] != ";" {
                        parameterValue.unicodeScalars.append(chars[index])
                        index += 1
                    }
                    parameterValue = parameterValue.trimmingCharacters(in: .whitespaces)
                }
            }
            if !name.isEmpty { parameters.append((name, parameterValue)) }
        }
        return (first.trimmingCharacters(in: .whitespaces), parameters)
    }
}

/// Byte classes of RFC 9110/9112 syntax.
package enum HTTPSyntax {
    package static let cr: UInt8 = 0x0D
    package static let lf: UInt8 = 0x0A
    package static let space: UInt8 = 0x20
    package static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A

    private static let tokenTable: [Bool] = {
        var table = [Bool](repeating: false, count: 256)
        for byte in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(byte)] = true }
        for byte in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(byte)] = true }
        for byte in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(byte)] = true }
        for char in "!#$%&'*+-.^_`|~".utf8 { table[Int(char)] = true }
        return table
    }()

    static func isTokenChar(_ byte: UInt8) -> Bool { tokenTable[Int(byte)] }

    static func isToken<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        !bytes.isEmpty && bytes.allSatisfy(isTokenChar)
    }

    /// Field-value bytes: visible ASCII, obs-text, space and tab; no other control characters.
    static func isFieldValueChar(_ byte: UInt8) -> Bool {
        byte == tab || (byte >= 0x20 && byte != 0x7F)
    }
}
