import Foundation
import XCTest
@testable import Imaging

/// The generated resources (scripts/make-imaging-test-data.py) and their manifest.
enum Resources {
    struct DecodeCase: Decodable {
        let file: String
        let width: Int
        let height: Int
        let channels: Int
        let hasAlpha: Bool
    }

    struct ResizeCase: Decodable {
        let file: String
        let source: String
        let filter: String
        let width: Int
        let height: Int
    }

    struct Manifest: Decodable {
        let pillow: String
        let decode: [DecodeCase]
        let resize: [ResizeCase]
    }

    static var directory: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
                throw ImagingError.invalidArgument("test resources folder missing from the bundle")
            }
            return url
        }
    }

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: data("manifest.json"))
    }
}

struct FixtureNotFound: Error, CustomStringConvertible {
    let searchedFrom: String
    var description: String { "no shared/fixtures directory above \(searchedFrom)" }
}

/// Finds `shared/fixtures` by walking up from this file (layout: <root>/main or <root>/wt/<name>, <root>/shared).
enum Fixtures {
    static func url(_ relativePath: String, file: StaticString = #filePath) throws -> URL {
        var directory = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("shared/fixtures")
            if FileManager.default.fileExists(atPath: candidate.path) {
                return candidate.appendingPathComponent(relativePath)
            }
            directory.deleteLastPathComponent()
        }
        throw FixtureNotFound(searchedFrom: "\(file)")
    }
}

/// Reads uint8 tensors from a safetensors file (8-byte header length, JSON header, raw data).
struct SafetensorsU8 {
    struct Malformed: Error { let reason: String }

    let data: Data
    let header: [String: Any]
    let dataStart: Int

    init(url: URL) throws {
        data = try Data(contentsOf: url)
        guard data.count >= 8 else { throw Malformed(reason: "shorter than 8 bytes") }
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard length > 0, 8 + length <= data.count,
              let json = try JSONSerialization.jsonObject(with: data.subdata(in: 8 ..< 8 + length)) as? [String: Any] else {
            throw Malformed(reason: "bad header")
        }
        header = json
        dataStart = 8 + length
    }

    func tensor(_ name: String) throws -> (shape: [Int], bytes: [UInt8]) {
        guard let entry = header[name] as? [String: Any], entry["dtype"] as? String == "U8",
              let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
            throw Malformed(reason: "no U8 tensor \(name)")
        }
        return (shape, [UInt8](data[(dataStart + offsets[0]) ..< (dataStart + offsets[1])]))
    }
}

/// Largest absolute difference between two byte arrays of equal length, and how many bytes differ.
func byteDifference(_ a: [UInt8], _ b: [UInt8]) -> (max: Int, count: Int) {
    precondition(a.count == b.count)
    var maximum = 0
    var count = 0
    for i in 0..<a.count where a[i] != b[i] {
        maximum = max(maximum, abs(Int(a[i]) - Int(b[i])))
        count += 1
    }
    return (maximum, count)
}

/// CRC-32 (PNG chunk checksum) for building test PNG chunks by hand.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

func pngChunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
    let tagged = Array(type.utf8) + body
    return bigEndian(UInt32(body.count)) + tagged + bigEndian(crc32(tagged))
}

let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

/// A deterministic pseudo-random image.
func randomImage(width: Int, height: Int, channels: Int, seed: UInt64) throws -> Image {
    var state = seed
    let pixels = (0 ..< width * height * channels).map { _ -> UInt8 in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 56)
    }
    return try Image(width: width, height: height, channels: channels, pixels: pixels)
}
