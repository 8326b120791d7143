import Foundation

/// Body encoding named by the header's `format` line.
public enum PLYFormat: String, Sendable, Equatable {
    case ascii
    case binaryLittleEndian = "binary_little_endian"
    case binaryBigEndian = "binary_big_endian"
}

/// A PLY scalar type and its size in bytes in a binary body.
public enum PLYScalarType: String, Sendable, Equatable {
    case int8, uint8, int16, uint16, int32, uint32, float32, float64

    /// Accepts both the classic names (`char`, `uchar`, `float`, ...) and the sized ones (`int8`, `float32`, ...).
    public init?(plyName: String) {
        switch plyName {
        case "char", "int8": self = .int8
        case "uchar", "uint8": self = .uint8
        case "short", "int16": self = .int16
        case "ushort", "uint16": self = .uint16
        case "int", "int32": self = .int32
        case "uint", "uint32": self = .uint32
        case "float", "float32": self = .float32
        case "double", "float64": self = .float64
        default: return nil
        }
    }

    public var byteSize: Int {
        switch self {
        case .int8, .uint8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .float64: return 8
        }
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float64 }
}

/// One property of an element: a scalar, or a list (a count followed by that many items).
public struct PLYProperty: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case scalar(PLYScalarType)
        case list(count: PLYScalarType, item: PLYScalarType)
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// One `element` block of the header: its name, row count and properties in file order.
public struct PLYElement: Sendable, Equatable {
    public var name: String
    public var count: Int
    public var properties: [PLYProperty]

    public init(name: String, count: Int, properties: [PLYProperty]) {
        self.name = name
        self.count = count
        self.properties = properties
    }

    /// Bytes per row in a binary body, or nil when a list property makes rows variable-sized.
    public var fixedRowSize: Int? {
        var size = 0
        for property in properties {
            guard case let .scalar(type) = property.kind else { return nil }
            size += type.byteSize
        }
        return size
    }

    /// Smallest possible binary row: scalars plus the count field of every list (an empty list).
    public var minimumRowSize: Int {
        properties.reduce(0) { total, property in
            switch property.kind {
            case let .scalar(type): return total + type.byteSize
            case let .list(count, _): return total + count.byteSize
            }
        }
    }
}

/// A parsed PLY header and where the body starts.
public struct PLYHeader: Sendable, Equatable {
    /// Headers longer than this are treated as corrupt (no 3DGS header comes close).
    public static let maximumHeaderBytes = 1 << 20

    public var format: PLYFormat
    public var elements: [PLYElement]
    /// Byte offset of the first body byte (just after the `end_header` line).
    public var bodyOffset: Int

    public init(format: PLYFormat, elements: [PLYElement], bodyOffset: Int) {
        self.format = format
        self.elements = elements
        self.bodyOffset = bodyOffset
    }

    public func element(named name: String) -> PLYElement? {
        elements.first { $0.name == name }
    }

    /// Parses the header at the start of `data`.
    public static func parse(_ data: Data) throws -> PLYHeader {
        try data.withUnsafeBytes { try parse(UnsafeRawBufferPointer(rebasing: $0[...])) }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> PLYHeader {
        let magicLF: [UInt8] = Array("ply\n".utf8)
        let magicCRLF: [UInt8] = Array("ply\r\n".utf8)
        let startsLF = bytes.count >= magicLF.count && bytes.prefix(magicLF.count).elementsEqual(magicLF)
        let startsCRLF = bytes.count >= magicCRLF.count && bytes.prefix(magicCRLF.count).elementsEqual(magicCRLF)
        guard startsLF || startsCRLF else { throw PLYError.notPLY }

        var lines = HeaderLineScanner(bytes: bytes, start: startsLF ? magicLF.count : magicCRLF.count)
        var format: PLYFormat?
        var elements: [PLYElement] = []
        var lineNumber = 1

        while true {
            guard let line = lines.next() else { throw PLYError.truncatedHeader }
            lineNumber += 1
            let tokens = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = tokens.first else { continue }
            switch keyword {
            case "comment", "obj_info":
                continue
            case "format":
                guard format == nil, elements.isEmpty else {
                    throw PLYError.malformedHeader(line: lineNumber, reason: "'format' must come once, before any element")
                }
                guard tokens.count == 3 else {
                    throw PLYError.malformedHeader(line: lineNumber, reason: "expected 'format <type> 1.0'")
                }
                guard let parsed = PLYFormat(rawValue: String(tokens[1])), tokens[2] == "1.0" else {
                    throw PLYError.unsupportedFormat("\(tokens[1]) \(tokens[2])")
                }
                format = parsed
            case "element":
                guard tokens.count == 3, let count = Int(tokens[2]), count >= 0 else {
                    throw PLYError.malformedHeader(line: lineNumber, reason: "expected 'element <name> <non-negative count>'")
                }
                let name = String(tokens[1])
                guard !elements.contains(where: { $0.name == name }) else {
                    throw PLYError.malformedHeader(line: lineNumber, reason: "element '\(name)' declared twice")
                }
                elements.append(PLYElement(name: name, count: count, properties: []))
            case "property":
                guard !elements.isEmpty else {
                    throw PLYError.malformedHeader(line: lineNumber, reason: "'property' before any 'element'")
                }
                let property = try parseProperty(tokens.dropFirst(), line: lineNumber)
                guard !elements[elements.count - 1].properties.contains(where: { $0.name == property.name }) else {
                    throw PLYError.malformedHeader(line: lineNumber, reason: "property '\(property.name)' declared twice")
                }
                elements[elements.count - 1].properties.append(property)
            case "end_header":
                guard let format else {
                    throw PLYError.malformedHeader(line: lineNumber, reason: "'end_header' before a 'format' line")
                }
                return PLYHeader(format: format, elements: elements, bodyOffset: lines.position)
            default:
                throw PLYError.malformedHeader(line: lineNumber, reason: "unknown keyword '\(keyword)'")
            }
        }
    }

    private static func parseProperty(_ tokens: ArraySlice<Substring>, line: Int) throws -> PLYProperty {
        let words = Array(tokens)
        if words.first == "list" {
            guard words.count == 4 else {
                throw PLYError.malformedHeader(line: line, reason: "expected 'property list <count type> <item type> <name>'")
            }
            let name = String(words[3])
            guard let countType = PLYScalarType(plyName: String(words[1])) else {
                throw PLYError.unsupportedPropertyType(property: name, type: String(words[1]))
            }
            guard let itemType = PLYScalarType(plyName: String(words[2])) else {
                throw PLYError.unsupportedPropertyType(property: name, type: String(words[2]))
            }
            guard !countType.isFloatingPoint else {
                throw PLYError.unsupportedPropertyType(property: name, type: "list count \(words[1])")
            }
            return PLYProperty(name: name, kind: .list(count: countType, item: itemType))
        }
        guard words.count == 2 else {
            throw PLYError.malformedHeader(line: line, reason: "expected 'property <type> <name>'")
        }
        let name = String(words[1])
        guard let type = PLYScalarType(plyName: String(words[0])) else {
            throw PLYError.unsupportedPropertyType(property: name, type: String(words[0]))
        }
        return PLYProperty(name: name, kind: .scalar(type))
    }
}

/// Splits header bytes into lines (LF or CRLF), refusing to scan past `PLYHeader.maximumHeaderBytes`.
private struct HeaderLineScanner {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int

    init(bytes: UnsafeRawBufferPointer, start: Int) {
        self.bytes = bytes
        self.position = start
    }

    mutating func next() -> Substring? {
        let limit = min(bytes.count, PLYHeader.maximumHeaderBytes)
        var end = position
        while end < limit, bytes[end] != UInt8(ascii: "\n") { end += 1 }
        guard end < limit else { return nil }
        var lineEnd = end
        if lineEnd > position, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<lineEnd]), as: UTF8.self)
        position = end + 1
        return Substring(line)
    }
}
