import Foundation

/// A numpy `.npy` array read as float32 (C order; little-endian float32/float64 or uint8, which is scaled by
/// 1/255 to match float images). Enough for reference renders written by scripts/bench/gsplat_render.py.
public struct NPYArray: Sendable, Equatable {
    public let shape: [Int]
    public let values: [Float]

    public init(shape: [Int], values: [Float]) throws {
        guard shape.reduce(1, *) == values.count else {
            throw NPYError("shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        }
        self.shape = shape
        self.values = values
    }

    public init(contentsOf url: URL) throws {
        try self.init(data: try Data(contentsOf: url))
    }

    public init(data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
            throw NPYError("not a .npy file (no \\x93NUMPY magic)")
        }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw NPYError("truncated .npy header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw NPYError(".npy format version \(major) is not supported")
        }
        guard bytes.count >= headerStart + headerLength else { throw NPYError("truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        let descr = try Self.field("descr", in: header)
        guard try Self.field("fortran_order", in: header) == "False" else {
            throw NPYError("Fortran-ordered arrays are not supported")
        }
        let shapeText = try Self.field("shape", in: header)
        let shape = try shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { part -> Int in
                guard let n = Int(part.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                    throw NPYError("bad shape \(shapeText)")
                }
                return n
            }
        let count = shape.reduce(1, *)
        let body = bytes[(headerStart + headerLength)...]
        let width: Int
        switch descr {
        case "'<f4'": width = 4
        case "'<f8'": width = 8
        case "'|u1'", "'<u1'": width = 1
        default: throw NPYError("dtype \(descr) is not supported (float32, float64 or uint8)")
        }
        guard body.count >= count * width else {
            throw NPYError("the .npy body holds \(body.count) bytes, shape \(shape) needs \(count * width)")
        }
        var values = [Float](repeating: 0, count: count)
        body.withUnsafeBytes { raw in
            for i in 0..<count {
                switch width {
                case 4: values[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
                case 8: values[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian))
                default: values[i] = Float(raw[i]) / 255
                }
            }
        }
        try self.init(shape: shape, values: values)
    }

    /// The text after `'key':` up to the next top-level comma of the header dict.
    private static func field(_ key: String, in header: String) throws -> String {
        guard let range = header.range(of: "'\(key)':") else { throw NPYError("the .npy header has no '\(key)'") }
        var depth = 0
        var value = ""
        for ch in header[range.upperBound...] {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if (ch == "," && depth == 0) || ch == "}" { break }
            value.append(ch)
        }
        return value.trimmingCharacters(in: .whitespaces)
    }
}

public struct NPYError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
